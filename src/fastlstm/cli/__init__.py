"""The ``fastlstm`` command (also ``python -m fastlstm``): one module per subcommand, each with
``add_parser(sub)`` (its arguments; ``set_defaults(run=..., check=...)``) and ``run(args)``
(the work; an exit status). Argument errors exit 2 before any work, file errors exit 1."""

from __future__ import annotations

import argparse
import os
import sys

from . import bench, demo, forecast, trace, walkthrough
from ._args import check_out

SUBCOMMANDS = (demo, walkthrough, forecast, trace, bench)


def build_parser():
    parser = argparse.ArgumentParser(
        prog="fastlstm", description="Fast LSTMs on the CPU: demos and tools.")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in SUBCOMMANDS:
        module.add_parser(sub)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        from .._version import __version__
        print(f"fastlstm {__version__}")
        return 0
    if args.command is None:
        parser.print_help()
        return 2
    check_out(parser, args)
    if getattr(args, "check", None):
        args.check(parser, args)
    try:
        return args.run(args)
    except BrokenPipeError:  # `fastlstm walkthrough | head`: the reader left, not an error
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except (ValueError, TypeError, ImportError, OSError) as exc:
        print(f"fastlstm {args.command}: error: {exc}", file=sys.stderr)
        return 1
