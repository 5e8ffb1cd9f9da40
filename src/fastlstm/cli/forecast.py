"""``fastlstm forecast``: fit an LSTMRegressor to a series, score it against the baselines,
forecast (the pipeline is fastlstm.forecasting)."""

from __future__ import annotations


def add_parser(sub):
    from ._args import at_least_one, positive_int

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
    fc.add_argument("--lookback", type=at_least_one, default=24,
                    help="steps the model reads (default 24)")
    fc.add_argument("--horizon", type=at_least_one, default=1,
                    help="steps to forecast at once (default 1)")
    fc.add_argument("--season", type=at_least_one, default=12,
                    help="season length of the seasonal-naive baseline (default 12)")
    fc.add_argument("--test-size", type=at_least_one, default=24,
                    help="holdout length at the end of the series (default 24)")
    fc.add_argument("--epochs", type=at_least_one, default=100,
                    help="training epochs (default 100)")
    fc.add_argument("--seed", type=positive_int, default=0, help="random_state (default 0)")
    fc.add_argument("--out", default="fastlstm-forecast",
                    help="folder for the CSV files and the plot (default ./fastlstm-forecast)")
    fc.add_argument("--no-plot", action="store_true", help="do not write forecast.png")
    fc.add_argument("--quiet", action="store_true", help="no progress bar")

    fc.set_defaults(run=run)


def run(args):
    from ..forecasting import read_series, run_forecast, write_outputs

    if args.csv is None:
        if args.column is not None:
            raise ValueError("--column needs a CSV file")
        from ..datasets import load_airline_passengers

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
