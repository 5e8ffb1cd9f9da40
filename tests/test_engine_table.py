"""bench/engine_table.py: its worker (run in-process here, not in a subprocess), its table
formatter and its targets check. Nothing here asserts on speed."""

import importlib.util
import math
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "bench" / "engine_table.py"


@pytest.fixture(scope="module")
def engine_table():
    if not SCRIPT.exists():
        pytest.skip("bench/engine_table.py is not in this tree")
    spec = importlib.util.spec_from_file_location("engine_table", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _spec(**kw):
    spec = {"kind": "isolated", "shape": "S1", "dtype": "float32", "mode": "inference",
            "side": "fastlstm", "threads": 2, "budget": 0.01}
    spec.update(kw)
    return spec


def test_worker_times_fastlstm_at_s1(engine_table):
    result = engine_table.run_worker(_spec())
    assert result["side"] == "fastlstm"
    assert math.isfinite(result["seconds"]) and result["seconds"] > 0
    assert 0 <= result["error"] <= engine_table.RTOL["float32"]


def test_worker_refuses_a_side_that_disagrees(engine_table):
    with pytest.raises(engine_table.Disagreement, match="disagrees with the NumPy reference"):
        engine_table.run_worker(_spec(rtol=0.0))  # float32 never matches float64 exactly


def _results():
    return {"peaks": {"float32": 100.0, "float64": 50.0}, "cells": [
        {"shape": "S1", "dtype": "float32", "mode": "inference", "fastlstm": 1e-5,
         "torch": 1e-4, "onnxruntime": 2e-5, "together": 1.1e-5},
        {"shape": "S1", "dtype": "float32", "mode": "training", "fastlstm": 4e-5,
         "torch": 1e-4, "onnxruntime": None, "together": 8e-5},
        {"shape": "S3", "dtype": "float64", "mode": "training", "fastlstm": 0.02,
         "torch": 0.1, "onnxruntime": None},  # no together entry at all
    ]}


def test_table_has_a_row_per_cell_and_dashes_for_missing_sides(engine_table):
    text = engine_table.format_table(_results())
    lines = text.splitlines()
    assert lines[0].split() == [w for c in engine_table.COLUMNS for w in c.split()]
    rows = [ln for ln in lines if ln.startswith("S")]
    assert len(rows) == 3
    s1_inf, s1_train, s3_train = (r.split() for r in rows)
    # time columns are "<number> <unit>", so split() gives 2 words per time
    assert s1_inf[:4] == ["S1", "10,1,1,10", "float32", "inference"]
    assert "-" not in s1_inf
    assert s1_inf[4:6] == ["10.0", "us"] and s1_inf[8] == "10.00x"  # torch / fastlstm
    assert s1_inf[11] == "2.00x" and s1_inf[-1] == "1.10x"  # ort / fastlstm, together / iso
    # training: onnxruntime and its ratio are "-"
    assert s1_train[9:11] == ["-", "-"] and s1_train[-1] == "2.00x"
    # no together entry: the last two columns are "-"
    assert s3_train[-2:] == ["-", "-"]
    gflops = 3 * 2.0 * 100 * 64 * 4 * 256 * (256 + 256) / 0.02 / 1e9
    assert f"{gflops:.1f}" in s3_train and f"{100 * gflops / 50.0:.0f}" in s3_train


def test_markdown_table(engine_table):
    lines = engine_table.format_table(_results(), markdown=True).splitlines()
    assert len(lines) == 2 + 3
    assert all(ln.startswith("| ") and ln.endswith(" |") for ln in lines)
    ncols = len(engine_table.COLUMNS)
    assert all(ln.count("|") == ncols + 1 for ln in lines)
    cells = [c.strip() for c in lines[3].strip("|").split("|")]
    assert cells[7] == "-" and cells[8] == "-"  # onnxruntime has no training


def test_targets_name_the_cells_that_miss(engine_table):
    lines = engine_table.check_targets(_results())
    assert len(lines) == len(engine_table.TARGETS)
    by_target = dict(zip(engine_table.TARGETS, lines))
    assert "met (1 cells)" in by_target["f32 inference >= onnxruntime at S1-S5"]
    torch_f32 = by_target["f32 inference and training >= 1.5x torch at S2-S5, >= 5x at S1"]
    assert "MISSED at 1 of 2" in torch_f32 and "S1 32 train (2.50x)" in torch_f32
    assert "met (1 cells)" in by_target["f64 >= 3x torch everywhere"]
    assert "not measured" in by_target["S3/S4 f32 training >= 85 % of the SGEMM rate"]
    together = by_target["fastlstm together / isolated <= 1.2"]
    assert "MISSED at 1 of 2" in together and "S1 32 train (2.00x)" in together
