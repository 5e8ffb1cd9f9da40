"""The ``fastlstm`` command (also ``python -m fastlstm``)."""

from __future__ import annotations

import argparse
import sys


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {value}")
    return value


def _pattern_length(text):
    value = _positive_int(text)
    if value < 2:
        raise argparse.ArgumentTypeError(f"the pattern needs at least 2 points, got {value}")
    return value


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
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        from . import __version__
        print(f"fastlstm {__version__}")
        return 0
    if args.command is None:
        parser.print_help()
        return 2
    if args.command == "demo":
        from .demo import run_demo
        run_demo(epochs=args.epochs, pattern_length=args.pattern_length, out=args.out,
                 plot=not args.no_plot, seed=args.seed, compare_epochs=args.compare_epochs)
        return 0
    parser.error(f"unknown command {args.command!r}")
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
