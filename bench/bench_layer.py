"""Benchmarks of the LSTMLayer issue: fastlstm.LSTMLayer vs torch.nn.LSTM and onnxruntime's LSTM
operator at the standard shapes S1-S5, inference and training step, float32 and float64.

Run (one group per shape, dtype and mode; compare the rows of a group):

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python -m pytest bench/bench_layer.py \
        --benchmark-enable --benchmark-group-by=group -k "S2"

bench/compare_layer.py prints the same comparison as one table with ratios and GFLOP/s. Every
side's output is checked against fastlstm's before it is timed.
"""

import numpy as np
import pytest

from fastlstm import benchmark as bm

SIDES = ["fastlstm", "torch", "onnxruntime"]


def _rounds(shape, training):
    flops = bm.lstm_flops(shape, training)
    return max(3, min(200, int(2e9 / flops)))


@pytest.fixture(scope="module")
def workloads():
    cache = {}

    def get(shape, dtype):
        key = (shape.name, dtype)
        if key not in cache:
            cache[key] = bm.Workload.make(shape, dtype)
        return cache[key]
    return get


@pytest.mark.parametrize("side", SIDES)
@pytest.mark.parametrize("mode", ["inference", "training"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape", bm.SHAPES, ids=[s.name for s in bm.SHAPES])
def test_layer(benchmark, workloads, shape, dtype, mode, side):
    if side != "fastlstm":
        pytest.importorskip(side)
    work = workloads(shape, dtype)
    training = mode == "training"
    runs = bm.runners(work, training, sides=("fastlstm", side))
    if side not in runs:
        pytest.skip(f"{side} has no {dtype} {mode} LSTM")
    bm.check_agreement(runs, 1e-3 if dtype == "float32" else 1e-9)
    benchmark.group = f"{shape.name} (T,B,I,H={shape.T},{shape.B},{shape.I},{shape.H}) " \
                      f"{dtype} {mode}"
    benchmark.extra_info["gflop"] = bm.lstm_flops(shape, training) / 1e9
    benchmark.pedantic(runs[side], rounds=_rounds(shape, training), iterations=1,
                       warmup_rounds=1)
    assert np.isfinite(benchmark.stats.stats.median)
