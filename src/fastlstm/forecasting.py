"""``fastlstm forecast``: fit an LSTMRegressor to a series, score it on a holdout against the
persistence and seasonal-naive baselines, and forecast past the end of the series.

The model reads a window of ``lookback`` values relative to the window's last value and predicts
the next ``horizon`` values relative to it (directly, one output per step), in logs when the
series is positive: a level shift or a trend then needs no extrapolation, which a model fitted
on standardized levels cannot do. The baselines: persistence (the last value) and seasonal naive
(the value one season earlier).
"""

from __future__ import annotations

import csv
import os
import time
from dataclasses import dataclass

import numpy as np

__all__ = ["read_series", "ForecastResult", "run_forecast"]


def read_series(path, column=None):
    """Read one numeric column of a CSV file with a header row.

    Returns ``(labels, values)``: the first column's text when it is not the chosen one (dates,
    usually), else row numbers; and the values as float64. ``column`` None takes the last
    column. Errors name the file, the column and the row.
    """
    try:
        with open(path, newline="") as f:
            rows = list(csv.reader(f))
    except OSError as exc:
        raise ValueError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not a text CSV file") from None
    rows = [r for r in rows if any(cell.strip() for cell in r)]
    if len(rows) < 2:
        raise ValueError(f"{path}: expected a header row and at least one data row")
    header = [h.strip() for h in rows[0]]
    if all(_is_number(h) for h in header):
        raise ValueError(f"{path}: the first row {rows[0]} is all numbers; the file needs a "
                         "header row naming its columns (its first row would be lost)")
    if column is None:
        index = len(header) - 1
    elif column in header:
        index = header.index(column)
    else:
        raise ValueError(f"{path}: no column {column!r}; columns are {header}")
    values = []
    for line, row in enumerate(rows[1:], start=2):
        try:
            values.append(float(row[index]))
        except (IndexError, ValueError):
            cell = row[index] if index < len(row) else ""
            raise ValueError(f"{path}, row {line}: column {header[index]!r} holds {cell!r}, "
                             "not a number") from None
    labels = [r[0] for r in rows[1:]] if index != 0 else [str(i) for i in range(len(values))]
    return labels, np.array(values), header[index]


def _is_number(text):
    try:
        float(text)
    except ValueError:
        return False
    return True


@dataclass
class ForecastResult:
    labels: list
    series: np.ndarray
    holdout_origins: np.ndarray  # index of the last observed value of each holdout window
    holdout: dict                # method -> (n_windows, horizon) forecasts
    actual: np.ndarray           # (n_windows, horizon)
    scores: dict                 # method -> (rmse, mae)
    future: np.ndarray           # (horizon,) forecast past the end of the series
    fit_seconds: float


def _windows(z, lookback, horizon):
    origins = np.arange(lookback - 1, len(z) - horizon)
    X = np.stack([z[t - lookback + 1:t + 1] - z[t] for t in origins])[:, :, None]
    Y = np.stack([z[t + 1:t + horizon + 1] - z[t] for t in origins])
    return origins, X, Y


def run_forecast(series, labels=None, lookback=24, horizon=1, season=12, test_size=24,
                 epochs=100, hidden_size=32, learning_rate=0.01, batch_size=16, log=None,
                 random_state=0, verbose=1):
    """Fit, score on the last ``test_size`` points and forecast ``horizon`` steps ahead.

    Holdout windows are those whose targets all lie in the last ``test_size`` values; the model
    scored on them is fitted on the windows whose targets all lie before; the future forecast
    comes from a model refitted on every window.
    """
    from .regressor import LSTMRegressor

    y = np.asarray(series, dtype=np.float64)
    n = len(y)
    for name, value in (("lookback", lookback), ("horizon", horizon), ("season", season),
                        ("test_size", test_size), ("epochs", epochs)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name}: expected a positive whole number, got {value!r}")
    if not np.all(np.isfinite(y)):
        raise ValueError("series: holds NaN or infinite values; fill or drop them first")
    if log is None:
        log = bool(np.all(y > 0))
    elif log and not np.all(y > 0):
        raise ValueError("log: the series has values <= 0, which have no logarithm")
    needed = lookback + horizon + test_size + max(season, 1)
    if n < needed:
        raise ValueError(f"series: {n} values are too few for lookback={lookback}, "
                         f"horizon={horizon}, test_size={test_size} (need at least {needed})")
    z = np.log(y) if log else y
    origins, X, Y = _windows(z, lookback, horizon)
    # Holdout windows forecast only holdout values; training windows only values before it
    # (windows straddling the boundary are in neither).
    test = origins >= n - test_size - 1
    train = origins + horizon <= n - test_size - 1
    if test.sum() < 1:
        raise ValueError(f"test_size: {test_size} values cannot hold a {horizon}-step forecast")
    if train.sum() < 2:
        raise ValueError("series: not enough windows before the holdout to train on")

    def model():
        return LSTMRegressor(hidden_size=hidden_size, epochs=epochs, batch_size=batch_size,
                             learning_rate=learning_rate, random_state=random_state,
                             verbose=verbose)

    def target(Ysel):
        return Ysel if horizon > 1 else Ysel[:, 0]

    def back(base, rel):
        return np.exp(base[:, None] + rel) if log else base[:, None] + rel

    start = time.perf_counter()
    fitted = model().fit(X[train], target(Y[train]))
    fit_seconds = time.perf_counter() - start
    to = origins[test]
    lstm = back(z[to], fitted.predict(X[test]).reshape(len(to), horizon))
    actual = np.stack([y[t + 1:t + horizon + 1] for t in to])
    steps = np.arange(1, horizon + 1)
    lag = season * ((steps - 1) // season + 1)  # the latest value one or more seasons back
    holdout = {"LSTMRegressor": lstm,
               "persistence": np.repeat(y[to][:, None], horizon, axis=1),
               "seasonal naive": np.stack([y[t + steps - lag] for t in to])}
    scores = {name: (float(np.sqrt(np.mean((f - actual) ** 2))),
                     float(np.mean(np.abs(f - actual)))) for name, f in holdout.items()}
    full = model().fit(X, target(Y))
    last = z[-lookback:] - z[-1]
    future = back(z[-1:], full.predict(last[None, :, None]).reshape(1, horizon))[0]
    return ForecastResult(list(labels) if labels is not None else [str(i) for i in range(n)],
                          y, to, holdout, actual, scores, future, fit_seconds)


def write_outputs(result, out_dir, name="series", plot=True):
    """``forecast.csv`` (the future steps), ``holdout.csv`` (every holdout forecast next to the
    actual values) and ``forecast.png``; returns the paths written."""
    os.makedirs(out_dir, exist_ok=True)
    written = []
    path = os.path.join(out_dir, "forecast.csv")
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["step", f"{name}_forecast"])
        for k, v in enumerate(result.future, start=1):
            w.writerow([k, f"{v:.6g}"])
    written.append(path)
    path = os.path.join(out_dir, "holdout.csv")
    horizon = result.actual.shape[1]
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["origin", "target", "step", "actual"] + list(result.holdout))
        for i, t in enumerate(result.holdout_origins):
            for k in range(horizon):
                w.writerow([result.labels[t], result.labels[t + k + 1], k + 1,
                            f"{result.actual[i, k]:.6g}"]
                           + [f"{f[i, k]:.6g}" for f in result.holdout.values()])
    written.append(path)
    if plot:
        try:
            import matplotlib
        except ImportError:
            return written
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        n = len(result.series)
        fig, ax = plt.subplots(figsize=(9, 3.6))
        ax.plot(np.arange(n), result.series, color="0.3", lw=1.2, label=name)
        first = result.holdout_origins + 1  # the one-step-ahead forecasts of the holdout
        for (method, f), style in zip(result.holdout.items(), ("-", "--", ":")):
            ax.plot(first, f[:, 0], style, lw=1.5, label=f"{method} (holdout, 1 step ahead)")
        ax.plot(np.arange(n, n + horizon), result.future, "o-", ms=3, color="C3",
                label=f"forecast ({horizon} step{'s' if horizon > 1 else ''})")
        ticks = np.linspace(0, n - 1, 6).astype(int)
        ax.set_xticks(ticks, [result.labels[i] for i in ticks], fontsize=8)
        ax.legend(fontsize=7, loc="upper left")
        ax.set_title(f"fastlstm forecast: {name}")
        fig.tight_layout()
        path = os.path.join(out_dir, "forecast.png")
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written
