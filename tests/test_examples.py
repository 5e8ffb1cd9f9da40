"""The README's examples run as written (in a subprocess, as a user would run them)."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.mark.slow  # trains on the whole series; .ci/run runs it after the default suite
def test_airline_example_beats_both_baselines(tmp_path):
    pytest.importorskip("sklearn")
    pytest.importorskip("matplotlib")
    plot = tmp_path / "airline.png"
    out = subprocess.run([sys.executable, str(EXAMPLES / "airline_forecast.py"), "--plot",
                          str(plot)], capture_output=True, text=True, timeout=300, check=True)
    rows = dict(re.findall(r"^(LSTMRegressor|seasonal naive|persistence)\b.*?([\d.]+)\s+[\d.]+$",
                           out.stdout, re.M))
    assert set(rows) == {"LSTMRegressor", "seasonal naive", "persistence"}, out.stdout
    lstm = float(rows["LSTMRegressor"])
    assert lstm < float(rows["seasonal naive"]) and lstm < float(rows["persistence"])
    from matplotlib.image import imread

    assert imread(plot).shape[0] > 100
