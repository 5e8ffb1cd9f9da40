"""Forecast the airline passengers series (1949-1960) one month ahead with LSTMRegressor and
compare it with the persistence and seasonal-naive baselines on the last two years.

The LSTM reads the year-over-year growth of the log series (stationary, unlike the levels, whose
last two years lie above anything seen in training) over the past 12 months and predicts the
next month's growth; the forecast is then last year's value times exp(growth). The seasonal-naive
baseline is the same formula with a growth of zero.

    python examples/airline_forecast.py [--plot docs/airline_forecast.png]
"""

import argparse
import time

import numpy as np

from fastlstm import LSTMRegressor
from fastlstm.data import make_windows
from fastlstm.datasets import load_airline_passengers


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--plot", help="write the forecast plot to this PNG")
    args = parser.parse_args(argv)

    months, passengers = load_airline_passengers()
    log = np.log(passengers)
    growth = log[12:] - log[:-12]  # year-over-year log growth; growth[i] belongs to month i + 12
    lookback, holdout = 12, 24
    X, y = make_windows(growth, lookback)       # X[i] = growth[i:i+12], y[i] = growth[i+12]
    target_month = np.arange(len(y)) + lookback + 12
    test = target_month >= len(passengers) - holdout

    model = LSTMRegressor(hidden_size=32, epochs=100, batch_size=16, learning_rate=0.01,
                          random_state=0)
    start = time.perf_counter()
    model.fit(X[~test], y[~test])
    seconds = time.perf_counter() - start

    actual = passengers[target_month[test]]
    last_year = passengers[target_month[test] - 12]
    forecasts = {
        "LSTMRegressor": last_year * np.exp(model.predict(X[test])),
        "seasonal naive (same month last year)": last_year,
        "persistence (last month)": passengers[target_month[test] - 1],
    }
    print(f"Airline passengers, one-month-ahead forecasts of {months[target_month[test][0]]} .. "
          f"{months[-1]} ({holdout} months, thousands of passengers)")
    print(f"LSTMRegressor trained on {int((~test).sum())} windows in {seconds:.2f} s\n")
    print(f"{'method':40s} {'RMSE':>7s} {'MAE':>7s}")
    for name, forecast in forecasts.items():
        rmse = np.sqrt(np.mean((forecast - actual) ** 2))
        mae = np.mean(np.abs(forecast - actual))
        print(f"{name:40s} {rmse:7.2f} {mae:7.2f}")

    if args.plot:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(9, 3.6))
        ax.plot(months.astype("datetime64[D]"), passengers, color="0.3", lw=1.2, label="actual")
        dates = months[target_month[test]].astype("datetime64[D]")
        for (name, forecast), style in zip(forecasts.items(), ("-", ":", "--")):
            ax.plot(dates, forecast, style, lw=1.6, label=name)
        ax.axvline(dates[0], color="0.7", lw=0.8)
        ax.set_ylabel("passengers (thousands)")
        ax.set_title("Airline passengers: one-month-ahead forecasts of the last two years")
        ax.legend(fontsize=8, loc="upper left")
        fig.tight_layout()
        fig.savefig(args.plot, dpi=110)
        print(f"\nWrote {args.plot}")


if __name__ == "__main__":
    main()
