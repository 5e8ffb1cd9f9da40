"""The ``fastlstm bench`` subcommand: fastlstm.LSTMLayer against the NumPy reference and
torch.nn.LSTM at the standard shapes, on this machine.

The short, user-facing cousin of ``bench/compare_layer.py``: same shapes, workloads and timing
rules (:mod:`fastlstm.benchmark`: every side in this process, fastlstm and torch alternating, the
median over repeats of the per-call time of a block of calls). Every side's output is checked
against fastlstm's before anything is timed. Nothing here asserts on time.

``add_parser(sub)`` registers it with the command's parser (``fastlstm.cli``), ``run(args)``
does the work.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time

import numpy as np

__all__ = ["add_parser", "run"]

#: Shapes of ``--quick`` (the small and latency-bound ones: seconds, not minutes).
QUICK_SHAPES = ("S1", "S2", "S5")
#: Shapes at which the NumPy reference is not timed unless ``--shapes`` names them.
SLOW_REFERENCE_SHAPES = ("S3", "S4")
#: Relative agreement with fastlstm required of every side before timing.
RTOL = {"float32": 1e-3, "float64": 1e-9}
#: Timing effort: (repeats, seconds per block) of fastlstm/torch, repeats of the reference.
EFFORT = {"quick": (3, 0.02, 1), "full": (7, 0.05, 3)}
OPENBLAS_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def _shape_names():
    from ..benchmark import SHAPES
    return [s.name for s in SHAPES]


def _shape_list(text):
    """``"S1,S2"`` -> ``["S1", "S2"]``; unknown names are an argparse error naming them."""
    known = _shape_names()
    names = [n.strip().upper() for n in text.split(",") if n.strip()]
    if not names:
        raise argparse.ArgumentTypeError(
            f"expected a comma-separated list of shapes from {', '.join(known)}, got {text!r}")
    unknown = [n for n in names if n not in known]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown shape{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} "
            f"(choose from {', '.join(known)})")
    return list(dict.fromkeys(names))  # drop repeats, keep the order given


def add_parser(subparsers):
    """Add the ``bench`` subcommand to ``subparsers`` (from ``parser.add_subparsers()``)."""
    from ..benchmark import SHAPES
    from ._args import at_least_one

    shapes = "; ".join(f"{s.name} T={s.T} B={s.B} I={s.I} H={s.H} ({s.why})" for s in SHAPES)
    p = subparsers.add_parser(
        "bench", help="time fastlstm against the NumPy reference and torch on this machine",
        description="Times fastlstm.LSTMLayer (inference: forward; training: forward + "
                    "backward) against the NumPy reference layer and torch.nn.LSTM, if "
                    "installed, at the standard shapes, after checking that every side "
                    "computes the same output. Ratios are the other side's time / fastlstm's "
                    "time (above 1: fastlstm is faster). Shapes: " + shapes + ".",
        epilog="For numbers to publish, run bench/compare_layer.py from the source tree (it "
               "also times onnxruntime and the machine's GEMM rate).")
    p.add_argument("--quick", action="store_true",
                   help=f"only {', '.join(QUICK_SHAPES)} in float32, with fewer repeats "
                        f"(well under a minute)")
    p.add_argument("--shapes", type=_shape_list, default=None, metavar="S1,S2,...",
                   help=f"comma-separated shapes (default all; {','.join(QUICK_SHAPES)} with "
                        f"--quick); the NumPy reference is only timed at "
                        f"{'/'.join(SLOW_REFERENCE_SHAPES)} when they are named here")
    p.add_argument("--dtype", choices=("float32", "float64", "both"), default="float32",
                   help="precision of the computation (default float32)")
    p.add_argument("--threads", type=at_least_one, default=2, metavar="N",
                   help="BLAS and torch threads (default 2)")
    p.add_argument("--no-torch", action="store_true", help="do not time torch even if installed")
    p.set_defaults(run=run)
    return p


# ------------------------------------------------------------------------------------------------
# Header
# ------------------------------------------------------------------------------------------------

def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def _header(threads, torch_status):
    from .._version import __version__

    try:
        load = f", load average {os.getloadavg()[0]:.2f}"
    except (AttributeError, OSError):
        load = ""
    lines = [
        f"# fastlstm bench, {time.strftime('%Y-%m-%d %H:%M')}",
        f"# CPU: {_cpu_model()}, {os.cpu_count()} logical CPUs{load}; {threads} thread"
        f"{'s' if threads != 1 else ''}",
        f"# fastlstm {__version__}, Python {platform.python_version()}, numpy {np.__version__}, "
        f"torch {torch_status}",
    ]
    set_vars = [v for v in OPENBLAS_VARS if v in os.environ]
    if set_vars:
        lines.append(
            f"# warning: {' and '.join(set_vars)} "
            f"{'is set; it slows' if len(set_vars) == 1 else 'are set; they slow'} OpenBLAS "
            f"(the NumPy reference, and fastlstm where it calls BLAS). "
            f"Run with: env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE fastlstm bench ...")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------
# The NumPy reference side
# ------------------------------------------------------------------------------------------------

def _reference_runner(work, training):
    """Callable returning y (T, B, H) of the NumPy reference layer on the workload."""
    from ..reference import lstm_layer_backward, lstm_layer_forward

    params = {k: np.asarray(v, dtype=work.dtype) for k, v in work.state_dict.items()}
    x, dy = work.x, work.dy
    if training:
        def run():
            y, _, cache = lstm_layer_forward(x, params, 1, False)
            lstm_layer_backward(dy, cache)
            return y
    else:
        def run():
            return lstm_layer_forward(x, params, 1, False)[0]
    return run


def _time_reference(fn, repeats):
    """Median over ``repeats`` of one call (a block of one: the reference is slow). The
    agreement check has already run it, so it is warm."""
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


# ------------------------------------------------------------------------------------------------
# Table
# ------------------------------------------------------------------------------------------------

COLUMNS = ("shape", "T,B,I,H", "dtype", "mode", "fastlstm", "numpy ref", "ref/fast", "torch",
           "torch/fast", "fastlstm GFLOP/s")


def _format_time(seconds):
    from ..benchmark import format_time
    return format_time(seconds)


def _fmt_ratio(other, fast):
    return "-" if other is None else f"{other / fast:.2f}x"


def _table(rows):
    body = []
    for r in rows:
        s = r["shape"]
        body.append([s.name, f"{s.T},{s.B},{s.I},{s.H}", r["dtype"], r["mode"],
                     _format_time(r["fastlstm"]), _format_time(r["reference"]),
                     _fmt_ratio(r["reference"], r["fastlstm"]), _format_time(r["torch"]),
                     _fmt_ratio(r["torch"], r["fastlstm"]), f"{r['gflops']:.2f}"])
    widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(COLUMNS)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(COLUMNS, widths)).rstrip(),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.ljust(w) for c, w in zip(b, widths)).rstrip() for b in body]
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------
# run
# ------------------------------------------------------------------------------------------------

def _torch_status(no_torch):
    """(torch importable and wanted, text for the header)."""
    if no_torch:
        return False, "not timed (--no-torch)"
    try:
        import torch
    except ImportError:
        return False, "not installed"
    return True, torch.__version__


def run(args):
    """Run the benchmark the parsed ``args`` describe, print header and table; returns the exit
    status (0; 1 if a side disagrees with fastlstm, which voids the comparison)."""
    from .. import benchmark

    quick = bool(getattr(args, "quick", False))
    names = args.shapes if args.shapes is not None else (
        list(QUICK_SHAPES) if quick else _shape_names())
    explicit = set(args.shapes or ())
    shapes = [s for n in names for s in benchmark.SHAPES if s.name == n]
    dtypes = ["float32", "float64"] if args.dtype == "both" else [args.dtype]
    threads = args.threads
    repeats, budget, ref_repeats = EFFORT["quick" if quick else "full"]
    use_torch, torch_status = _torch_status(args.no_torch)
    sides = ("fastlstm", "torch") if use_torch else ("fastlstm",)

    print(_header(threads, torch_status), flush=True)

    limits = None
    try:
        from threadpoolctl import threadpool_limits
        limits = threadpool_limits(threads)
    except ImportError:
        pass
    torch_threads = None
    if use_torch:
        import torch
        torch_threads = torch.get_num_threads()
        torch.set_num_threads(threads)

    progress = sys.stderr.isatty()
    rows, skipped_reference = [], []
    try:
        for shape in shapes:
            time_reference = shape.name not in SLOW_REFERENCE_SHAPES or shape.name in explicit
            if not time_reference:
                skipped_reference.append(shape.name)
            for dt in dtypes:
                work = benchmark.Workload.make(shape, dt)
                for mode in ("inference", "training"):
                    training = mode == "training"
                    if progress:
                        print(f"  {shape.name} {dt} {mode} ...", file=sys.stderr, flush=True)
                    runs = benchmark.runners(work, training, threads, sides=sides)
                    checked = dict(runs)
                    if time_reference:
                        checked["reference"] = _reference_runner(work, training)
                    try:
                        benchmark.check_agreement(checked, RTOL[dt])
                    except AssertionError as exc:
                        print(f"fastlstm bench: {shape.name} {dt} {mode}: {exc}; not timing a "
                              f"different function", file=sys.stderr)
                        return 1
                    times = benchmark.measure(runs, repeats=repeats, budget=budget)
                    ref = (_time_reference(checked["reference"], ref_repeats)
                           if time_reference else None)
                    rows.append({"shape": shape, "dtype": dt, "mode": mode,
                                 "fastlstm": times["fastlstm"], "reference": ref,
                                 "torch": times.get("torch"),
                                 "gflops": benchmark.lstm_flops(shape, training)
                                 / times["fastlstm"] / 1e9})
    finally:
        if limits is not None:
            limits.restore_original_limits()
        if torch_threads is not None:
            import torch
            torch.set_num_threads(torch_threads)

    print(_table(rows))
    notes = [
        f"times: median per call ({'--quick: ' if quick else ''}{repeats} repeats for fastlstm "
        f"and torch, alternating; "
        f"{'one call' if ref_repeats == 1 else f'median of {ref_repeats} calls'} for the NumPy "
        f"reference); inference = forward, training = forward + backward",
        "ratios: the other side's time / fastlstm's time (above 1: fastlstm is faster); every "
        "side's output was checked against fastlstm's first",
        "GFLOP/s: the GEMM multiply-adds of the layer (2 FLOPs each) per second of fastlstm",
    ]
    if skipped_reference:
        notes.append(f"numpy ref '-' at {', '.join(skipped_reference)}: the reference is slow "
                     f"there and is not timed unless --shapes names "
                     f"{'it' if len(skipped_reference) == 1 else 'them'}")
    if not use_torch:
        notes.append(f"torch '-': {torch_status}")
    print("\n".join("# " + n for n in notes))
    return 0
