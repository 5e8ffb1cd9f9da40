"""The ``fastlstm`` command (also ``python -m fastlstm``)."""

from __future__ import annotations

import argparse
import os
import sys

from ._cli_args import _at_least_one, _pattern_length, _positive_int


def _check_out(parser, args):
    """--out names a folder to write into: refuse a path that exists and is not a folder
    before any work starts (argument errors exit 2)."""
    out = getattr(args, "out", None)
    if out is not None and os.path.exists(out) and not os.path.isdir(out):
        parser.error(f"argument --out: {out!r} exists and is not a folder")


def build_parser():
    from .demo import DEFAULT_PATTERN_LENGTH

    parser = argparse.ArgumentParser(
        prog="fastlstm", description="Fast LSTMs on the CPU: demos and tools.")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    demo = sub.add_parser(
        "demo", help="train the notebook's pattern LSTM on the fast kernels",
        description="Notebook 001's pattern example on fastlstm.LSTM: trains, prints the epoch "
                    "lines, the training time and the speed-up over the NumPy reference class, "
                    "and writes loss.png and predictions.png.")
    demo.add_argument("--epochs", type=_positive_int, default=200,
                      help="training epochs (default 200)")
    demo.add_argument("--out", default="fastlstm-demo",
                      help="folder for the PNG plots (default ./fastlstm-demo)")
    demo.add_argument("--no-plot", action="store_true", help="do not write plots")
    demo.add_argument("--pattern-length", type=_pattern_length, default=DEFAULT_PATTERN_LENGTH,
                      help=f"points per period of the sine pattern (default "
                           f"{DEFAULT_PATTERN_LENGTH}; 3 is the notebook's, which is all zeros)")
    demo.add_argument("--seed", type=_positive_int, default=42, help="np.random seed (42)")
    demo.add_argument("--compare-epochs", type=_positive_int, default=3,
                      help="epochs of the reference class timed for the speed-up (default 3; "
                           "0 skips it)")

    sub.add_parser(
        "walkthrough", help="notebook 000: an LSTM step by step on weather data",
        description="Notebook 000 as a program: 10 days of weather data, windows of 2 days, "
                    "one LSTM with 4 units whose states persist across windows; prints the "
                    "inputs, gate values and state updates of every step (grid tables), the "
                    "predictions, MSE/MAE and the state norms. The notebook's numbers: its "
                    "random draws are replayed, its [x, h] weights converted.")

    fc = sub.add_parser(
        "forecast", help="fit an LSTM to a series, score it against baselines, forecast",
        description="Fits an LSTMRegressor to a series (a CSV column; by default the airline "
                    "passengers 1949-1960 shipped with fastlstm), prints holdout RMSE/MAE next "
                    "to the persistence and seasonal-naive baselines, and writes "
                    "forecast.csv, holdout.csv and forecast.png into --out. Needs "
                    "scikit-learn (pip install 'fastlstm[sklearn]').")
    fc.add_argument("csv", nargs="?", help="CSV file with a header row (default: the airline "
                                           "passengers series)")
    fc.add_argument("--column", help="the column to forecast (default: the last one)")
    fc.add_argument("--lookback", type=_at_least_one, default=24,
                    help="steps the model reads (default 24)")
    fc.add_argument("--horizon", type=_at_least_one, default=1,
                    help="steps to forecast at once (default 1)")
    fc.add_argument("--season", type=_at_least_one, default=12,
                    help="season length of the seasonal-naive baseline (default 12)")
    fc.add_argument("--test-size", type=_at_least_one, default=24,
                    help="holdout length at the end of the series (default 24)")
    fc.add_argument("--epochs", type=_at_least_one, default=100,
                    help="training epochs (default 100)")
    fc.add_argument("--seed", type=_positive_int, default=0, help="random_state (default 0)")
    fc.add_argument("--out", default="fastlstm-forecast",
                    help="folder for the CSV files and the plot (default ./fastlstm-forecast)")
    fc.add_argument("--no-plot", action="store_true", help="do not write forecast.png")
    fc.add_argument("--quiet", action="store_true", help="no progress bar")

    tr = sub.add_parser(
        "trace", help="gate and state tables and heatmaps of an LSTM's forward pass",
        description="Without --model: notebook 004's scalar LSTM over [1, 2, 3] with its "
                    "gate table (the same numbers). With --model FILE.npz (saved by "
                    "fastlstm.save: an LSTM, LSTMLayer or LSTMRegressor) and --input "
                    "FILE (.npy or .csv, one row per step): the model's trace. Writes "
                    "trace.png into --out.")
    tr.add_argument("--model", help="a model saved with fastlstm.save (with --input)")
    tr.add_argument("--input", help="the sequence: .npy (T, I) or (T,), or .csv with one row "
                                    "per step (a first row that is not all numbers is taken "
                                    "as the header)")
    tr.add_argument("--out", default="fastlstm-trace",
                    help="folder for trace.png (default ./fastlstm-trace)")
    tr.add_argument("--no-plot", action="store_true", help="do not write trace.png")

    from . import bench_cli
    bench_cli.add_parser(sub)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        from ._version import __version__
        print(f"fastlstm {__version__}")
        return 0
    if args.command is None:
        parser.print_help()
        return 2
    _check_out(parser, args)
    if args.command == "trace" and (args.model is None) != (args.input is None):
        parser.error("trace: --model and --input go together (a saved model and the "
                     "sequence to trace), or neither (notebook 004's example)")
    try:
        if args.command == "demo":
            from .demo import run_demo
            run_demo(epochs=args.epochs, pattern_length=args.pattern_length, out=args.out,
                     plot=not args.no_plot, seed=args.seed, compare_epochs=args.compare_epochs)
            return 0
        if args.command == "walkthrough":
            from .walkthrough import run_walkthrough
            run_walkthrough()
            return 0
        if args.command == "forecast":
            return _forecast(args)
        if args.command == "trace":
            return _trace(args)
        if args.command == "bench":
            from . import bench_cli
            return bench_cli.run(args)
    except BrokenPipeError:  # `fastlstm walkthrough | head`: the reader left, not an error
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except (ValueError, TypeError, ImportError, OSError) as exc:
        print(f"fastlstm {args.command}: error: {exc}", file=sys.stderr)
        return 1
    parser.error(f"unknown command {args.command!r}")
    return 2


def _forecast(args):
    from .forecasting import read_series, run_forecast, write_outputs

    if args.csv is None:
        if args.column is not None:
            raise ValueError("--column needs a CSV file")
        from .datasets import load_airline_passengers

        months, values = load_airline_passengers()
        labels, name = [str(m) for m in months], "passengers"
        source = "airline passengers 1949-1960 (Box & Jenkins, Series G; shipped with fastlstm)"
    else:
        labels, values, name = read_series(args.csv, args.column)
        source = f"{args.csv}, column {name!r}"
    print(f"fastlstm forecast: {source}, {len(values)} values")
    print(f"lookback {args.lookback}, horizon {args.horizon}, holdout of the last "
          f"{args.test_size} values, season {args.season}, {args.epochs} epochs")
    result = run_forecast(values, labels, lookback=args.lookback, horizon=args.horizon,
                          season=args.season, test_size=args.test_size, epochs=args.epochs,
                          random_state=args.seed, verbose=0 if args.quiet else 1)
    print(f"\nHoldout: {len(result.holdout_origins)} forecasts of {args.horizon} step(s); "
          f"LSTMRegressor fitted in {result.fit_seconds:.2f} s")
    print(f"{'method':16s} {'RMSE':>10s} {'MAE':>10s}")
    for method, (rmse, mae) in result.scores.items():
        print(f"{method:16s} {rmse:10.4g} {mae:10.4g}")
    print(f"\nForecast of the {args.horizon} step(s) after {labels[-1]}: "
          + ", ".join(f"{v:.4g}" for v in result.future))
    for path in write_outputs(result, args.out, name=name, plot=not args.no_plot):
        print(f"Wrote {path}")
    return 0


def _read_sequence(path):
    """A (T, I) or (T,) sequence from .npy, or from a CSV of numbers with or without a header
    row (a first row that is not all numbers is the header)."""
    import numpy as np

    if path.endswith(".npy"):
        try:
            x = np.load(path, allow_pickle=False)
        except (ValueError, OSError) as exc:
            raise ValueError(f"{path}: not a readable .npy array ({exc})") from None
        return x
    with open(path, encoding="utf-8-sig") as f:
        first = f.readline()
    try:
        [float(cell) for cell in first.split(",")]
        header = 0
    except ValueError:
        header = 1
    try:
        x = np.loadtxt(path, delimiter=",", skiprows=header, ndmin=2)
    except (ValueError, OSError) as exc:
        raise ValueError(f"{path}: expected a CSV of numbers (with or without a header row) "
                         f"({exc})") from None
    if x.size == 0:
        raise ValueError(f"{path}: no rows of numbers")
    return x


def _trace(args):
    import numpy as np

    from .tracing import trace

    if args.model is None:
        from .layer import LSTMLayer
        from .reference import lstm_process

        print("Notebook 004: a scalar LSTM (one input, one unit) over the sequence [1, 2, 3]")
        params = {"forget": (0.5, 0.1, 0), "input": (0.6, 0.2, 0), "cell": (0.7, 0.3, 0),
                  "output": (0.8, 0.4, 0)}
        order = ("input", "forget", "cell", "output")  # LSTMLayer's rows i, f, g, o
        model = LSTMLayer(1, 1, dtype=np.float64)
        model.load_state_dict({
            "weight_ih_l0": np.array([[params[g][0]] for g in order], float),
            "weight_hh_l0": np.array([[params[g][1]] for g in order], float),
            "bias_ih_l0": np.array([params[g][2] for g in order], float),
            "bias_hh_l0": np.zeros(4)})
        result = trace(model, np.array([[1.0], [2.0], [3.0]]))
        print()
        for t in range(result.steps):
            print(f"STEP {t + 1}:")
            for label, value in (("Forget Gate", result.forget), ("Input Gate", result.input),
                                 ("Candidate Cell", result.candidate),
                                 ("Cell State", result.cell), ("Output Gate", result.output),
                                 ("Hidden State", result.hidden)):
                print(f"  {label}: {value[t, 0]:.4f}")
            print()
        print(f"Estimated Future Value: {4 * result.hidden[-1, 0]:.4f}")
        _, ref_last = lstm_process([1, 2, 3], params)
        print(f"(the NumPy reference of the notebook gives {4 * ref_last:.4f})")
        title = "Notebook 004: scalar LSTM over [1, 2, 3]"
    else:
        from .io import load
        from .layer import LSTMLayer
        from .lstm import LSTM

        obj = load(args.model)
        model = obj if isinstance(obj, (LSTM, LSTMLayer)) else getattr(obj, "lstm_", None)
        if model is None:
            raise ValueError(f"{args.model}: holds a {type(obj).__name__}, which has no LSTM")
        x = _read_sequence(args.input)
        if x.ndim == 1:
            x = x[:, None]
        if getattr(obj, "lstm_", None) is model:  # a regressor: its own standardization
            x = (x - obj.x_mean_) / obj.x_scale_
        expected = model.input_size
        if x.ndim != 2 or x.shape[1] != expected:
            raise ValueError(f"{args.input}: expected a sequence of shape (T, {expected}), got "
                             f"{x.shape}")
        result = trace(model, x)
        result.table()
        title = f"trace of {os.path.basename(args.model)}"
    if not args.no_plot:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            print("matplotlib is not installed: no trace.png (pip install 'fastlstm[plot]')")
            return 0
        os.makedirs(args.out, exist_ok=True)
        path = os.path.join(args.out, "trace.png")
        result.plot(path, title=title)
        print(f"Wrote {path}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
