"""The `fastlstm demo` command through the installed package's entry (``fastlstm.cli.main``; the
demo's own run also in a subprocess, the installed command itself)."""

import re

import pytest

from conftest import run_cli


def run(*args, cwd=None, in_subprocess=False):
    return run_cli(*args, cwd=cwd, in_subprocess=in_subprocess)


@pytest.mark.slow  # a subprocess that trains and plots; .ci/run runs it after the default suite
def test_demo_trains_prints_and_writes_pngs(tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "plots"
    proc = run("demo", "--epochs", "21", "--out", str(out), "--compare-epochs", "1",
               in_subprocess=True)
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    # the seed's epoch lines, every 10 epochs
    assert re.findall(r"^Epoch (\d+), Loss: \d+\.\d{6}$", text, re.M) == ["0", "10", "20"]
    assert re.search(r"^Final loss: \d+\.\d{6}$", text, re.M)
    assert re.search(r"^Training time: [\d.]+ s for 21 epochs", text, re.M)
    speedup = re.search(r"^Speed-up: (\d+)x", text, re.M)
    assert speedup and int(speedup.group(1)) >= 1
    # the losses of both classes agree on the compared epoch
    gap = float(re.search(r"largest relative difference ([\d.e+-]+)", text).group(1))
    assert gap < 1e-10
    import matplotlib.image as mpimg
    for name in ("loss.png", "predictions.png"):
        image = mpimg.imread(out / name)
        assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100


def test_demo_learns_with_the_default_pattern_not_with_the_seeds(tmp_path):
    """With 12 points per period the loss falls well below its start; the seed's
    pattern_length=3 is sin at 0, pi, 2 pi (all zero), i.e. noise, and its loss stays flat."""
    def losses(*extra):
        proc = run("demo", "--epochs", "41", "--no-plot", "--compare-epochs", "0", *extra)
        assert proc.returncode == 0, proc.stderr
        return [float(v) for v in re.findall(r"^Epoch \d+, Loss: ([\d.]+)$", proc.stdout, re.M)]

    default = losses()
    assert default[-1] < 0.2 * default[0]
    seed = losses("--pattern-length", "3")
    assert "all zeros" in run("demo", "--help").stdout
    assert seed[-1] > 0.5 * seed[0]


def test_demo_no_plot_writes_nothing(tmp_path):
    proc = run("demo", "--epochs", "1", "--no-plot", "--compare-epochs", "0", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("args, message", [
    (["demo", "--epochs", "ten"], "expected a whole number"),
    (["demo", "--epochs", "-1"], ">= 0"),
    (["demo", "--pattern-length", "1"], "at least 2 points"),
    (["frobnicate"], "invalid choice"),
])
def test_bad_arguments_exit_2_with_one_clear_line(args, message):
    proc = run(*args)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr


def test_console_script_and_version():
    proc = run("--version")
    assert proc.returncode == 0 and proc.stdout.startswith("fastlstm ")
