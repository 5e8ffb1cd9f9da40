"""Grid tables as seed 000 prints them: ``tabulate(..., tablefmt="grid")``. tabulate is
imported on the first table (about 50 ms), not with fastlstm."""

from __future__ import annotations

__all__ = ["grid"]


def grid(rows, headers):
    """Rows of cells under ``headers``, boxed, as seed 000's ``tabulate(..., "grid")``."""
    from tabulate import tabulate

    return tabulate(rows, headers=headers, tablefmt="grid")
