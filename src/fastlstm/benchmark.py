"""Speed comparison of fastlstm.LSTMLayer with torch.nn.LSTM and onnxruntime's LSTM operator.

Used by ``bench/compare_layer.py`` (the README table and chart), ``bench/bench_layer.py``
(pytest-benchmark) and ``fastlstm bench``. Timing rules (docs/engine.md, "Measuring"): every side runs
in this one process, the sides alternate within each repeat, and the reported time is the median
over repeats of the per-call time of a block of calls. Nothing here asserts on time.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import numpy as np

__all__ = ["SHAPES", "Shape", "Workload", "runners", "measure", "gemm_rate", "lstm_flops",
           "format_time", "format_table"]


@dataclass(frozen=True)
class Shape:
    name: str
    T: int
    B: int
    I: int  # noqa: E741 (the papers' name)
    H: int
    why: str


SHAPES = (
    Shape("S1", 10, 1, 1, 10, "the seed demo: overhead-bound"),
    Shape("S2", 50, 32, 32, 64, "small model, batched"),
    Shape("S3", 100, 64, 256, 256, "mid-size"),
    Shape("S4", 100, 16, 512, 1024, "large: GEMM-bound"),
    Shape("S5", 1000, 1, 64, 128, "long sequence, batch 1: latency-bound"),
)


def lstm_flops(shape, training):
    """Multiply-add FLOPs of the GEMMs (2 per multiply-add): forward 2*T*B*4H*(I+H); a training
    step adds the input and recurrent gradient products and the weight gradients (3x in all).
    The elementwise gate work is not counted, so GFLOP/s is comparable with a GEMM rate."""
    fwd = 2.0 * shape.T * shape.B * 4 * shape.H * (shape.I + shape.H)
    return 3.0 * fwd if training else fwd


@dataclass
class Workload:
    """Inputs shared by every side, so the sides compute the same function."""

    shape: Shape
    dtype: np.dtype
    x: np.ndarray
    dy: np.ndarray
    state_dict: dict

    @classmethod
    def make(cls, shape, dtype, seed=0):
        from .layer import LSTMLayer

        dtype = np.dtype(dtype)
        rng = np.random.default_rng(seed)
        layer = LSTMLayer(shape.I, shape.H, dtype=dtype, seed=seed)
        x = rng.standard_normal((shape.T, shape.B, shape.I)).astype(dtype)
        dy = rng.standard_normal((shape.T, shape.B, shape.H)).astype(dtype)
        return cls(shape, dtype, x, dy, layer.state_dict())


def _fastlstm_runner(work, training):
    from .layer import LSTMLayer

    s = work.shape
    layer = LSTMLayer(s.I, s.H, dtype=work.dtype)
    layer.load_state_dict(work.state_dict)
    x, dy = work.x, work.dy
    if training:
        def run():
            y, _ = layer.forward(x)
            layer.backward(dy)
            return y
    else:
        def run():
            return layer.forward(x, training=False)[0]
    return run


def _torch_runner(work, training, threads):
    import torch

    torch.set_num_threads(threads)
    s = work.shape
    tdtype = torch.float64 if work.dtype == np.float64 else torch.float32
    module = torch.nn.LSTM(s.I, s.H, dtype=tdtype)
    module.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in work.state_dict.items()})
    x = torch.from_numpy(work.x.copy())
    dy = torch.from_numpy(work.dy.copy())
    if training:
        def run():
            module.zero_grad(set_to_none=True)
            y, _ = module(x)
            y.backward(dy)
            return y
    else:
        def run():
            with torch.inference_mode():
                return module(x)[0]
    return run


def _onnxruntime_runner(work, training, threads):
    import onnxruntime as ort

    if training or work.dtype != np.float32:
        return None  # onnxruntime has no LSTM training and no float64 LSTM kernel
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    from .layer import LSTMLayer
    from .interop.onnx import to_onnx

    s = work.shape
    layer = LSTMLayer(s.I, s.H, dtype=np.float32)
    layer.load_state_dict(work.state_dict)
    sess = ort.InferenceSession(to_onnx(layer).SerializeToString(), opts,
                                providers=["CPUExecutionProvider"])
    feed = {"x": work.x}

    def run():
        return sess.run(None, feed)[0]
    return run


def runners(work, training, threads=2, sides=("fastlstm", "torch", "onnxruntime")):
    """``{side: callable}`` for the sides that are installed and support the workload; each
    callable returns the output sequence y (T, B, H), so the caller can check agreement."""
    out = {}
    for side in sides:
        try:
            if side == "fastlstm":
                fn = _fastlstm_runner(work, training)
            elif side == "torch":
                fn = _torch_runner(work, training, threads)
            elif side == "onnxruntime":
                fn = _onnxruntime_runner(work, training, threads)
            else:
                raise ValueError(f"sides: unknown side {side!r}")
        except ImportError:
            continue
        if fn is not None:
            out[side] = fn
    return out


def _as_numpy(y):
    return y.detach().numpy() if hasattr(y, "detach") else np.asarray(y)


def check_agreement(runs, rtol):
    """Every side's output equals fastlstm's (a benchmark of different functions is void)."""
    ref = _as_numpy(runs["fastlstm"]())
    for side, fn in runs.items():
        got = _as_numpy(fn())
        err = np.max(np.abs(got - ref)) / max(np.max(np.abs(ref)), 1e-30)
        if not err <= rtol:
            raise AssertionError(f"{side} disagrees with fastlstm: relative error {err:.2e}")


def _block_size(fn, budget):
    """Calls per timed block so a block lasts about ``budget`` seconds."""
    t0 = time.perf_counter()
    fn()
    dt = max(time.perf_counter() - t0, 1e-7)
    return max(1, int(budget / dt))


def measure(runs, repeats=7, budget=0.05):
    """Median seconds per call of each side; sides alternate within every repeat."""
    for fn in runs.values():  # warm-up: allocations, oneDNN primitive caches, BLAS threads
        fn()
        fn()
    sizes = {side: _block_size(fn, budget) for side, fn in runs.items()}
    samples = {side: [] for side in runs}
    for rep in range(repeats):
        order = list(runs) if rep % 2 == 0 else list(reversed(runs))
        for side in order:
            fn, n = runs[side], sizes[side]
            t0 = time.perf_counter()
            for _ in range(n):
                fn()
            samples[side].append((time.perf_counter() - t0) / n)
    return {side: statistics.median(v) for side, v in samples.items()}


def gemm_rate(dtype, n=2048, repeats=7):
    """The machine's GEMM rate in GFLOP/s: numpy matmul of n x n, the best of ``repeats`` (the
    rate the machine reaches; on a shared machine a median would measure the neighbours)."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n)).astype(dtype)
    b = rng.standard_normal((n, n)).astype(dtype)
    a @ b
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t0)
    return 2.0 * n ** 3 / min(times) / 1e9


def format_time(seconds):
    """A per-call time for the tables: milliseconds down to 0.1 ms, microseconds below."""
    if seconds is None:
        return "-"
    if seconds >= 1e-4:
        return f"{seconds * 1e3:.3f} ms"
    return f"{seconds * 1e6:.1f} us"


def format_table(rows, markdown=True):
    """Rows are dicts with shape, dtype, mode, fastlstm/torch/onnxruntime seconds, gflops, peak."""
    head = ["shape", "T,B,I,H", "dtype", "mode", "fastlstm", "torch", "torch/fast",
            "onnxruntime", "ort/fast", "fastlstm GFLOP/s", "% of GEMM"]
    lines = []

    ms = format_time
    def ratio(a, b):
        return "-" if a is None or b is None else f"{a / b:.2f}x"

    body = []
    for r in rows:
        s = r["shape"]
        fast = r.get("fastlstm")
        body.append([s.name, f"{s.T},{s.B},{s.I},{s.H}", r["dtype"], r["mode"], ms(fast),
                     ms(r.get("torch")), ratio(r.get("torch"), fast), ms(r.get("onnxruntime")),
                     ratio(r.get("onnxruntime"), fast), f"{r['gflops']:.1f}",
                     f"{100 * r['gflops'] / r['peak']:.0f} %"])
    if markdown:
        lines.append("| " + " | ".join(head) + " |")
        lines.append("|" + "|".join(" --- " for _ in head) + "|")
        lines += ["| " + " | ".join(b) + " |" for b in body]
    else:
        widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(head)]
        lines.append("  ".join(h.ljust(w) for h, w in zip(head, widths)))
        lines += ["  ".join(c.ljust(w) for c, w in zip(b, widths)) for b in body]
    return "\n".join(lines)


def run_comparison(shapes=SHAPES, dtypes=("float32", "float64"), modes=("inference", "training"),
                   threads=2, repeats=7, budget=0.05, progress=None):
    """Measure every (shape, dtype, mode); returns (rows, peaks)."""
    peaks = {dt: gemm_rate(np.dtype(dt)) for dt in dtypes}
    rows = []
    for shape in shapes:
        for dt in dtypes:
            work = Workload.make(shape, dt)
            for mode in modes:
                training = mode == "training"
                runs = runners(work, training, threads)
                check_agreement(runs, 1e-3 if dt == "float32" else 1e-9)
                times = measure(runs, repeats=repeats, budget=budget)
                row = {"shape": shape, "dtype": dt, "mode": mode, **times,
                       "gflops": lstm_flops(shape, training) / times["fastlstm"] / 1e9,
                       "peak": peaks[dt]}
                rows.append(row)
                if progress is not None:
                    progress(row)
    return rows, peaks
