"""What every subcommand's arguments share: whole numbers whose error names the bound they
check, and the --out check made before any work."""

from __future__ import annotations

import argparse
import os

__all__ = ["whole_number", "positive_int", "at_least_one", "pattern_length", "check_out"]


def whole_number(minimum, what=None):
    """An argparse type: a whole number >= minimum, the one bound its message names."""
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(what.format(value) if what else
                                             f"expected a number >= {minimum}, got {value}")
        return value
    parse.__name__ = f"whole number >= {minimum}"
    return parse


positive_int = whole_number(0)   # 0 allowed (seeds, epochs of the demo, compare-epochs)
at_least_one = whole_number(1)
pattern_length = whole_number(2, "the pattern needs at least 2 points, got {}")


def check_out(parser, args):
    """--out names a folder to write into: refuse a path that exists and is not a folder
    before any work starts (argument errors exit 2)."""
    out = getattr(args, "out", None)
    if out is not None and os.path.exists(out) and not os.path.isdir(out):
        parser.error(f"argument --out: {out!r} exists and is not a folder")
