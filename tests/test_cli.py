"""The `fastlstm` subcommands walkthrough, trace and forecast, as a user runs them: through the
installed package's entry (``fastlstm.cli.main``, in this process; each subcommand's help also
in a subprocess, the installed command itself). (`demo`: test_demo_cli.py; `bench`:
test_cli_bench.py.)"""

import csv
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import SEED004_FUTURE, SEED004_PRINT_ATOL, SEED004_TABLE, run_cli

DATA = Path(__file__).resolve().parent / "data"


def run(*args, cwd=None, in_subprocess=False):
    return run_cli(*args, cwd=cwd, in_subprocess=in_subprocess)


def _png_ok(path):
    mpimg = pytest.importorskip("matplotlib.image")
    image = mpimg.imread(path)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100


@pytest.mark.parametrize("command", ["walkthrough", "trace", "forecast", "bench", "demo"])
def test_every_subcommand_has_help(command):
    proc = run(command, "--help", in_subprocess=True)  # the installed entry point itself
    assert proc.returncode == 0 and "usage: fastlstm " + command in proc.stdout


def test_walkthrough_prints_exactly_what_the_notebook_prints():
    """The notebook's own cell (tests/data/notebook000_full.py, verbatim; it uses tabulate) is
    the independent path: the outputs are identical, character for character."""
    pytest.importorskip("tabulate")
    notebook = subprocess.run([sys.executable, str(DATA / "notebook000_full.py")],
                              capture_output=True, text=True, timeout=120, check=True).stdout
    proc = run("walkthrough")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == notebook
    assert proc.stdout.count("--- Time step") == 16
    assert "Mean Squared Error" in proc.stdout


def test_trace_default_prints_the_notebook_004_table(tmp_path):
    proc = run("trace", "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    steps = re.findall(r"STEP (\d):\n((?:  .*\n)+)", proc.stdout)
    assert [s for s, _ in steps] == ["1", "2", "3"]
    for (_, body), expected in zip(steps, SEED004_TABLE):
        got = [float(v) for v in re.findall(r": (-?[\d.]+)", body)]
        np.testing.assert_allclose(got, expected, atol=SEED004_PRINT_ATOL)
    future = float(re.search(r"Estimated Future Value: ([\d.]+)", proc.stdout).group(1))
    assert abs(future - SEED004_FUTURE) <= SEED004_PRINT_ATOL
    _png_ok(tmp_path / "trace.png")


@pytest.mark.slow  # trains a model: seconds; .ci/run runs it after the default suite
def test_trace_of_a_saved_model(tmp_path):
    import fastlstm

    layer = fastlstm.LSTMLayer(2, 3, dtype=np.float64, seed=0)
    fastlstm.save(layer, tmp_path / "m.npz")
    x = np.random.default_rng(0).standard_normal((4, 2))
    np.save(tmp_path / "x.npy", x)
    np.savetxt(tmp_path / "x.csv", x, delimiter=",", header="a,b", comments="")
    expected = fastlstm.trace(layer, x)
    for name in ("x.npy", "x.csv"):
        proc = run("trace", "--model", str(tmp_path / "m.npz"), "--input", str(tmp_path / name),
                   "--out", str(tmp_path / name[:-4]))
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.count("--- Time step") == 4
        assert f"{expected.output[3]}" in proc.stdout
        _png_ok(tmp_path / name[:-4] / "trace.png")


@pytest.mark.parametrize("args, message", [
    (["trace", "--model", "missing.npz", "--input", "x.npy"], "missing.npz"),
    (["forecast", "missing.csv"], "missing.csv: cannot read"),
    (["forecast", "--column", "y"], "--column needs a CSV file"),
])
def test_bad_files_and_options_give_a_one_line_error(tmp_path, args, message):
    proc = run(*args, cwd=tmp_path)
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and message in proc.stderr and "Traceback" not in \
        proc.stderr


@pytest.mark.parametrize("args", [["forecast", "--horizon", "0"], ["forecast", "--epochs", "x"],
                                  ["trace", "--bogus"], ["nonsense"],
                                  ["trace", "--input", "x.npy"], ["trace", "--model", "m.npz"]])
def test_bad_arguments_exit_2(args):
    proc = run(*args)
    assert proc.returncode == 2 and "error:" in proc.stderr


@pytest.mark.parametrize("args, bound", [
    (["forecast", "--lookback", "-5"], ">= 1, got -5"), (["forecast", "--lookback", "0"],
                                                         ">= 1, got 0"),
    (["forecast", "--epochs", "-1"], ">= 1, got -1"), (["forecast", "--test-size", "0"], ">= 1"),
    (["forecast", "--season", "-2"], ">= 1, got -2"), (["forecast", "--horizon", "-3"], ">= 1"),
    (["forecast", "--seed", "-1"], ">= 0, got -1"), (["demo", "--epochs", "-1"], ">= 0"),
    (["demo", "--pattern-length", "-5"], "at least 2 points, got -5"),
    (["demo", "--pattern-length", "1"], "at least 2 points, got 1"),
    (["bench", "--threads", "0"], ">= 1, got 0"), (["bench", "--threads", "-4"], ">= 1"),
])
def test_bounds_are_named_as_they_are(args, bound):
    proc = run(*args)
    assert proc.returncode == 2 and bound in proc.stderr, proc.stderr


@pytest.mark.parametrize("command", [["forecast"], ["demo"], ["trace"]])
def test_out_naming_a_file_is_refused_before_any_work(tmp_path, command):
    (tmp_path / "taken").write_text("not a folder")
    proc = run(*command, "--out", "taken", cwd=tmp_path)
    assert proc.returncode == 2 and "exists and is not a folder" in proc.stderr
    assert proc.stdout == ""  # nothing ran


def test_trace_reads_csv_with_and_without_a_header(tmp_path):
    from fastlstm.cli.trace import read_sequence

    rows = np.arange(12.0).reshape(4, 3)
    (tmp_path / "plain.csv").write_text("\n".join(",".join(map(str, r)) for r in rows))
    (tmp_path / "named.csv").write_text("a,b,c\n" + "\n".join(",".join(map(str, r))
                                                                for r in rows))
    for name in ("plain.csv", "named.csv"):
        np.testing.assert_array_equal(read_sequence(str(tmp_path / name)), rows)


def test_forecast_refuses_a_csv_without_a_header(tmp_path):
    (tmp_path / "s.csv").write_text("\n".join(str(v) for v in range(60)))
    proc = run("forecast", "s.csv", "--no-plot", cwd=tmp_path)
    assert proc.returncode == 1 and "needs a header row" in proc.stderr


@pytest.mark.slow  # trains a model: seconds; .ci/run runs it after the default suite
def test_forecast_default_series_beats_the_baselines_and_writes_files(tmp_path):
    pytest.importorskip("sklearn")
    proc = run("forecast", "--out", str(tmp_path), "--epochs", "60")
    assert proc.returncode == 0, proc.stderr
    scores = {m: (float(r), float(a)) for m, r, a in re.findall(
        r"^(LSTMRegressor|persistence|seasonal naive)\s+([\d.e+]+)\s+([\d.e+]+)$",
        proc.stdout, re.M)}
    assert set(scores) == {"LSTMRegressor", "persistence", "seasonal naive"}
    assert scores["LSTMRegressor"][0] < min(scores["persistence"][0],
                                            scores["seasonal naive"][0])
    assert "epoch" in proc.stderr  # the tqdm progress bar
    with open(tmp_path / "holdout.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 24
    # the printed persistence RMSE recomputed from the written holdout (independent of the model)
    rmse = np.sqrt(np.mean([(float(r["persistence"]) - float(r["actual"])) ** 2 for r in rows]))
    assert rmse == pytest.approx(scores["persistence"][0], rel=1e-3)
    with open(tmp_path / "forecast.csv") as f:
        assert len(list(csv.DictReader(f))) == 1
    _png_ok(tmp_path / "forecast.png")


def test_forecast_reads_a_csv_column_and_forecasts_several_steps(tmp_path):
    pytest.importorskip("sklearn")
    t = np.arange(120)
    series = 10 + np.sin(2 * np.pi * t / 12) + 0.02 * t
    path = tmp_path / "s.csv"
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["day", "other", "load"])
        for i, v in enumerate(series):
            w.writerow([f"d{i}", 0, v])
    proc = run("forecast", str(path), "--column", "load", "--horizon", "3", "--epochs", "20",
               "--test-size", "12", "--lookback", "12", "--no-plot", "--quiet", "--out",
               str(tmp_path / "o"))
    assert proc.returncode == 0, proc.stderr
    assert "column 'load'" in proc.stdout and "d119" in proc.stdout
    with open(tmp_path / "o" / "forecast.csv") as f:
        assert len(list(csv.DictReader(f))) == 3
    assert not (tmp_path / "o" / "forecast.png").exists()
    bad = run("forecast", str(path), "--column", "nope")
    assert bad.returncode == 1 and "no column 'nope'" in bad.stderr
