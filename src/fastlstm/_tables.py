"""Grid tables as seed 000 prints them (``tabulate(..., tablefmt="grid")``), without the
dependency: the trace tables and the ``walkthrough`` command need nothing else. The tests check
the output against tabulate itself when it is installed."""

from __future__ import annotations

__all__ = ["grid"]


def _is_number(text):
    try:
        float(text)
    except ValueError:
        return False
    return text.strip() == text and text.lower() not in ("nan", "inf", "-inf", "infinity")


def _as_tabulate(text):
    """A numeric cell as tabulate shows it: integers as they are, other numbers in ``"g"``
    format (so "0.2390" shows as 0.239, as in the notebook's printed tables)."""
    try:
        return str(int(text))
    except ValueError:
        return format(float(text), "g")


def _align_decimal(column):
    """Numbers lined up on their decimal point (integers on their last digit), as tabulate's
    default numeric alignment does."""
    heads = [c.split(".")[0] if "." in c else c for c in column]
    tails = [c[len(h):] for c, h in zip(column, heads)]
    wh, wt = max(map(len, heads)), max(map(len, tails))
    return [h.rjust(wh) + t.ljust(wt) for h, t in zip(heads, tails)]


def grid(rows, headers):
    """Rows of cells (anything ``str`` accepts, one line each) under ``headers``, boxed.

    Text columns are left aligned; columns whose cells are all numbers are shown as tabulate
    shows them (integers as they are, other numbers in ``"g"`` format) and right aligned on
    their decimal points. Cells are padded by one space and separated by ``|``; the header is
    underlined with ``=``, the rows with ``-``.
    """
    header = [str(h) for h in headers]
    body = [[str(c) for c in row] for row in rows]
    columns = [[row[i] for row in body] for i in range(len(header))]
    numeric = [bool(col) and all(_is_number(c) for c in col) for col in columns]
    columns = [_align_decimal([_as_tabulate(c) for c in col]) if num else col
               for col, num in zip(columns, numeric)]
    # As tabulate: a header is at least two characters narrower than its column.
    widths = [max([len(header[i]) + 2] + [len(c) for c in columns[i]])
              for i in range(len(header))]

    def rule(char):
        return "+" + "+".join(char * (w + 2) for w in widths) + "+"

    def line(cells):
        return "| " + " | ".join((c.rjust(w) if num else c.ljust(w))
                                 for c, w, num in zip(cells, widths, numeric)) + " |"

    out = [rule("-"), line(header), rule("=")]
    for r in range(len(body)):
        out += [line([columns[i][r] for i in range(len(header))]), rule("-")]
    return "\n".join(out)
