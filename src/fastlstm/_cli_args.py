"""The argument types of the ``fastlstm`` subcommands (cli.py, bench_cli.py): whole numbers
whose error names the bound they check."""

from __future__ import annotations

import argparse

__all__ = ["_whole_number", "_positive_int", "_at_least_one", "_pattern_length"]


def _whole_number(minimum, what=None):
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


_positive_int = _whole_number(0)   # 0 allowed (seeds, epochs of the demo, compare-epochs)
_at_least_one = _whole_number(1)
_pattern_length = _whole_number(2, "the pattern needs at least 2 points, got {}")
