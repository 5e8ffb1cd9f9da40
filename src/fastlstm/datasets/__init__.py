"""Real series shipped with fastlstm, for examples, the ``fastlstm forecast`` command and tests.

* ``airline_passengers.csv``: monthly totals of international airline passengers (thousands),
  January 1949 to December 1960, 144 values. Source: Box, G. E. P., Jenkins, G. M. and Reinsel,
  G. C. (1976), *Time Series Analysis, Forecasting and Control*, Series G (the same data as R's
  ``datasets::AirPassengers``). Public domain; the classic benchmark of seasonal forecasting.
"""

from __future__ import annotations

import csv
from importlib import resources

import numpy as np

__all__ = ["load_airline_passengers"]


def load_airline_passengers(as_frame=False):
    """The airline passengers series.

    Parameters
    ----------
    as_frame : bool, default False
        Return a pandas DataFrame (columns ``month``, ``passengers``) instead of arrays.

    Returns
    -------
    months : ndarray of datetime64[M], shape (144,)
    passengers : ndarray of float64, shape (144,)
        Thousands of passengers per month.
    """
    text = resources.files(__name__).joinpath("airline_passengers.csv").read_text()
    rows = list(csv.DictReader(text.splitlines()))
    months = np.array([r["month"] for r in rows], dtype="datetime64[M]")
    passengers = np.array([float(r["passengers"]) for r in rows])
    if as_frame:
        import pandas as pd

        return pd.DataFrame({"month": months.astype("datetime64[ns]"),
                             "passengers": passengers})
    return months, passengers
