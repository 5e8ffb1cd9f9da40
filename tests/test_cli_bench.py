"""The `fastlstm bench` command.

Once ``bench`` is wired into ``fastlstm.cli``, the tests run the real command in a subprocess, as a
user would (``python -m fastlstm bench ...``); until then they go through a minimal argparse
harness around ``fastlstm.cli.bench`` with the same options. Nothing here asserts on speed: the
printed ratios and rates are only checked against the printed times they are derived from.
"""

import argparse
import re
import subprocess
import sys

import pytest

from fastlstm import benchmark
from fastlstm.cli import bench as bench_cli

ROW = re.compile(r"^S\d\s")
TIME = re.compile(r"^(\d+\.(\d+)) (us|ms)$")
RATIO = re.compile(r"^(\d+\.\d\d)x$")
COLUMNS = ["shape", "T,B,I,H", "dtype", "mode", "fastlstm", "numpy ref", "ref/fast", "torch",
           "torch/fast", "fastlstm GFLOP/s"]


def _cli_has_bench():
    from fastlstm import cli

    parser = cli.build_parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return "bench" in action.choices
    return False


CLI_WIRED = _cli_has_bench()


def _harness(argv, capsys):
    parser = argparse.ArgumentParser(prog="fastlstm")
    sub = parser.add_subparsers(dest="command")
    bench_cli.add_parser(sub)
    capsys.readouterr()
    try:
        code = bench_cli.run(parser.parse_args(argv))
    except SystemExit as exc:
        code = exc.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def bench(capsys, *args, in_process=False):
    """(exit status, stdout, stderr) of ``fastlstm bench *args``."""
    argv = ["bench", *args]
    if CLI_WIRED and not in_process:
        proc = subprocess.run([sys.executable, "-m", "fastlstm", *argv], capture_output=True,
                              text=True, timeout=120)
        return proc.returncode, proc.stdout, proc.stderr
    return _harness(argv, capsys)


def parse_time(cell):
    """'12.3 us' -> (seconds, half a unit of the last printed digit, in seconds)."""
    m = TIME.match(cell)
    assert m, f"not a time: {cell!r}"
    unit = 1e-6 if m.group(3) == "us" else 1e-3
    return float(m.group(1)) * unit, 0.5 * 10.0 ** -len(m.group(2)) * unit


def parse_ratio(cell):
    m = RATIO.match(cell)
    assert m, f"not a ratio: {cell!r}"
    return float(m.group(1))


def check_ratio(other_cell, fast_cell, ratio_cell):
    """The printed ratio is other/fast of the printed times, within their rounding."""
    other, h_other = parse_time(other_cell)
    fast, h_fast = parse_time(fast_cell)
    ratio = parse_ratio(ratio_cell)
    lo = (other - h_other) / (fast + h_fast)
    hi = (other + h_other) / (fast - h_fast)
    assert lo - 0.005 - 1e-9 <= ratio <= hi + 0.005 + 1e-9, (other_cell, fast_cell, ratio_cell)


def table(out):
    """The header cells and the rows of the printed table, each a dict by column."""
    lines = out.splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("shape  "))
    assert re.split(r"\s{2,}", lines[head].strip()) == COLUMNS
    assert set(lines[head + 1].replace(" ", "")) == {"-"}
    rows = []
    for line in lines[head + 2:]:
        if not ROW.match(line):
            break
        cells = re.split(r"\s{2,}", line.strip())
        assert len(cells) == len(COLUMNS), line
        rows.append(dict(zip(COLUMNS, cells)))
    return rows


def check_row(row):
    shape = next(s for s in benchmark.SHAPES if s.name == row["shape"])
    assert row["T,B,I,H"] == f"{shape.T},{shape.B},{shape.I},{shape.H}"
    assert row["mode"] in ("inference", "training")
    fast, h_fast = parse_time(row["fastlstm"])
    assert fast > 0
    # GFLOP/s is the layer's GEMM FLOPs over the fastlstm time
    flops = benchmark.lstm_flops(shape, row["mode"] == "training")
    gflops = float(row["fastlstm GFLOP/s"])
    assert (flops / (fast + h_fast) / 1e9 - 0.005 - 1e-9 <= gflops
            <= flops / (fast - h_fast) / 1e9 + 0.005 + 1e-9), row


@pytest.mark.slow  # times every side in a subprocess; .ci/run runs it after the default suite
def test_quick_no_torch_prints_header_and_table(capsys, monkeypatch):
    for var in bench_cli.OPENBLAS_VARS:
        monkeypatch.delenv(var, raising=False)
    code, out, err = bench(capsys, "--quick", "--no-torch")
    assert code == 0, err
    assert re.search(r"^# fastlstm bench, \d{4}-\d\d-\d\d", out, re.M)
    assert re.search(r"^# CPU: .+; 2 threads$", out, re.M)
    assert re.search(r"numpy \d+\.\d+", out)
    assert "torch not timed (--no-torch)" in out
    assert "warning" not in out
    rows = table(out)
    assert [(r["shape"], r["dtype"], r["mode"]) for r in rows] == [
        (s, "float32", m) for s in ("S1", "S2", "S5") for m in ("inference", "training")]
    for row in rows:
        check_row(row)
        check_ratio(row["numpy ref"], row["fastlstm"], row["ref/fast"])
        assert row["torch"] == "-" and row["torch/fast"] == "-"
    assert re.search(r"^# torch '-': not timed \(--no-torch\)$", out, re.M)


@pytest.mark.slow  # times every side in a subprocess; .ci/run runs it after the default suite
def test_torch_column(capsys):
    torch = pytest.importorskip("torch")
    code, out, err = bench(capsys, "--quick", "--shapes", "S1", "--threads", "1")
    assert code == 0, err
    assert f"torch {torch.__version__}" in out
    assert re.search(r"^# CPU: .+; 1 thread$", out, re.M)
    rows = table(out)
    assert [(r["shape"], r["mode"]) for r in rows] == [("S1", "inference"), ("S1", "training")]
    for row in rows:
        check_row(row)
        check_ratio(row["numpy ref"], row["fastlstm"], row["ref/fast"])
        check_ratio(row["torch"], row["fastlstm"], row["torch/fast"])


def test_both_dtypes_and_shape_list(capsys):
    code, out, err = bench(capsys, "--quick", "--no-torch", "--shapes", "S1,s1", "--dtype",
                           "both")
    assert code == 0, err
    rows = table(out)
    assert [(r["shape"], r["dtype"], r["mode"]) for r in rows] == [
        ("S1", d, m) for d in ("float32", "float64") for m in ("inference", "training")]
    for row in rows:
        check_row(row)
        check_ratio(row["numpy ref"], row["fastlstm"], row["ref/fast"])


def test_reference_not_timed_at_slow_shapes_unless_named(capsys, monkeypatch):
    """In-process (patches the module): the full run skips the reference at S3/S4; here S1 plays
    that part so the test stays short."""
    monkeypatch.setattr(bench_cli, "QUICK_SHAPES", ("S1",))
    monkeypatch.setattr(bench_cli, "SLOW_REFERENCE_SHAPES", ("S1",))
    code, out, err = bench(capsys, "--quick", "--no-torch", in_process=True)
    assert code == 0, err
    rows = table(out)
    assert len(rows) == 2
    for row in rows:
        check_row(row)
        assert row["numpy ref"] == "-" and row["ref/fast"] == "-"
    assert re.search(r"^# numpy ref '-' at S1: .*--shapes names it$", out, re.M)
    code, out, err = bench(capsys, "--quick", "--no-torch", "--shapes", "S1", in_process=True)
    assert code == 0, err
    assert all(r["numpy ref"] != "-" for r in table(out))
    assert "numpy ref '-'" not in out


@pytest.mark.parametrize("args, option, detail", [
    (["--shapes", "S9"], "--shapes", "S9"),
    (["--shapes", "S1,S9,S0"], "--shapes", "S9, S0"),
    (["--threads", "0"], "--threads", ">= 1"),
    (["--threads", "two"], "--threads", "whole number"),
    (["--dtype", "float16"], "--dtype", "float16"),
])
def test_bad_options_are_one_line_argparse_errors(capsys, args, option, detail):
    code, out, err = bench(capsys, *args, in_process=True)
    assert code == 2
    assert out == ""
    error = [line for line in err.splitlines() if "error:" in line]
    assert len(error) == 1, err
    assert f"argument {option}" in error[0] and detail in error[0], error[0]


@pytest.mark.parametrize("variables", [("OPENBLAS_CORETYPE",),
                                       ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")])
def test_openblas_variables_warned_about(capsys, monkeypatch, variables):
    for var in bench_cli.OPENBLAS_VARS:
        monkeypatch.delenv(var, raising=False)
    values = {"OPENBLAS_CORETYPE": "Haswell", "OPENBLAS_L2_SIZE": "524288"}
    for var in variables:
        monkeypatch.setenv(var, values[var])
    code, out, err = bench(capsys, "--quick", "--no-torch", "--shapes", "S1", in_process=True)
    assert code == 0, err
    warning = [line for line in out.splitlines() if line.startswith("# warning:")]
    assert len(warning) == 1, out
    assert all(var in warning[0] for var in variables)
    assert "slow OpenBLAS" in warning[0] or "slows OpenBLAS" in warning[0]
    assert "env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE" in warning[0]
    assert len(table(out)) == 2
