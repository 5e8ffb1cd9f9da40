"""The engine table: fastlstm.LSTMLayer against torch.nn.LSTM and onnxruntime's LSTM operator.

Two ways of timing, both printed in one table (rows: shape x dtype x mode):

* isolated: every (shape, dtype, mode, side) is timed in its own fresh process, which builds the
  workload (fixed seed), builds only that side, checks that side's output against the NumPy
  reference layer (a side that disagrees stops the script), makes two warm-up calls and reports
  the median seconds per call over 7 blocks of calls lasting about ``--budget`` seconds in all;
* together: one process imports numpy, torch and onnxruntime, alternates the sides within every
  repeat, and before every fastlstm block runs a numpy matmul, a torch op and an onnxruntime
  run, so that every thread pool is warm and competing; reported: fastlstm's median there and
  together / isolated (the target is at most 1.2).

Ratios are the peer's time / fastlstm's time (above 1: fastlstm is faster). Below the table the
targets are checked (printed, never asserted). Run, for numbers to publish:

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/engine_table.py --markdown

``--quick`` (S1, S2, float32, 0.3 s per side) is the smoke test. FASTLSTM_ISA, if set, reaches
every worker unchanged (it selects the kernel path when fastlstm is imported).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import time

import numpy as np

from fastlstm import benchmark

SIDES = ("fastlstm", "torch", "onnxruntime")
DTYPES = ("float32", "float64")
MODES = ("inference", "training")
#: Timed blocks per side and cell: the median of this many, so at least this many calls.
REPEATS = 7
#: Seed of every workload (the same inputs and weights in every process).
SEED = 0
#: Relative agreement (max abs error / max abs value) with the NumPy reference, per dtype.
RTOL = {"float32": 1e-3, "float64": 1e-9}
#: Together mode: target length of one timed block (short, so that the competing pools' spinning
#: after each interference run overlaps a real share of the fastlstm calls), and repeat cap.
TOGETHER_BLOCK = 0.02
TOGETHER_MAX_REPEATS = 200
OPENBLAS_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
QUICK = {"shapes": "S1,S2", "dtypes": "float32", "budget": 0.3}
DEFAULT_BUDGET = 2.0

#: The targets of the engine (printed below the table, never asserted).
TARGETS = (
    "f32 inference >= onnxruntime at S1-S5",
    "f32 inference and training >= 1.5x torch at S2-S5, >= 5x at S1",
    "f64 >= 3x torch everywhere",
    "S3/S4 f32 training >= 85 % of the SGEMM rate",
    "fastlstm together / isolated <= 1.2",
)


class Disagreement(AssertionError):
    """A side's output differs from the NumPy reference: timing it would time another function."""


# ------------------------------------------------------------------------------------------------
# Workers (run in a fresh process by the parent, or in-process by the tests)
# ------------------------------------------------------------------------------------------------

def _shape(name):
    for s in benchmark.SHAPES:
        if s.name == name:
            return s
    raise ValueError(f"unknown shape {name!r}")


def fastlstm_config():
    """``fastlstm.config()`` as a dict, or None when this fastlstm has no config()."""
    import fastlstm

    config = getattr(fastlstm, "config", None)
    if config is None:
        return None
    return {k: (v if isinstance(v, (str, int, float, bool, type(None))) else str(v))
            for k, v in dict(config()).items()}


@contextlib.contextmanager
def _thread_limits(threads):
    """fastlstm's own thread count (``fastlstm.set_num_threads`` where it exists) and every
    loaded BLAS/OpenMP pool (threadpoolctl) at ``threads``; both restored on exit."""
    import fastlstm

    set_threads = getattr(fastlstm, "set_num_threads", None)
    saved = None
    if set_threads is not None:
        get_threads = getattr(fastlstm, "get_num_threads", None)
        if get_threads is not None:
            saved = get_threads()
        else:
            saved = (fastlstm_config() or {}).get("threads")
        set_threads(threads)
    try:
        from threadpoolctl import threadpool_limits
        limits = threadpool_limits(limits=threads)
    except ImportError:
        limits = None
    try:
        yield
    finally:
        if limits is not None:
            limits.restore_original_limits()
        if set_threads is not None and isinstance(saved, int) and saved > 0:
            set_threads(saved)


@contextlib.contextmanager
def _torch_threads_restored(used):
    """The benchmark's torch runner sets torch's thread count; put it back (in-process use)."""
    saved = None
    if used:
        import torch
        saved = torch.get_num_threads()
    try:
        yield
    finally:
        if saved is not None:
            import torch
            torch.set_num_threads(saved)


def _reference_output(work):
    """y (T, B, H) of the NumPy reference layer on the workload, computed in float64."""
    from fastlstm.reference import lstm_layer_forward

    params = {k: np.asarray(v, dtype=np.float64) for k, v in work.state_dict.items()}
    return lstm_layer_forward(work.x.astype(np.float64), params, 1, False)[0]


def _check(label, fn, ref, rtol):
    """Relative error of ``fn()``'s output against ``ref``; Disagreement beyond ``rtol``."""
    y = fn()
    y = y.detach().numpy() if hasattr(y, "detach") else np.asarray(y)
    if y.shape != ref.shape:
        raise Disagreement(f"{label}: output shape {y.shape}, the NumPy reference's {ref.shape}")
    err = float(np.max(np.abs(y.astype(np.float64) - ref)) / max(float(np.max(np.abs(ref))),
                                                                  1e-30))
    if not err <= rtol:  # also catches NaN
        raise Disagreement(f"{label} disagrees with the NumPy reference layer: relative error "
                           f"{err:.2e} > {rtol:.0e}; not timing a different function")
    return err


def run_worker(spec):
    """Run one worker described by the dict ``spec`` and return its JSON-able result.

    ``spec["kind"] == "isolated"`` (default): keys ``shape``, ``dtype``, ``mode``, ``side``,
    ``threads``, ``budget`` (seconds of timed calls), optional ``seed`` and ``rtol`` (the
    agreement required, default ``RTOL[dtype]``). Returns ``seconds`` (the
    median per call; None with a ``reason`` if the side is not installed or does not support
    the workload), ``error`` (relative, against the NumPy reference), ``config`` (fastlstm's),
    ``fastlstm_isa_env``.

    ``spec["kind"] == "together"``: keys ``cells`` (list of [shape, dtype, mode]), ``threads``,
    ``budget``. Returns ``cells``, one dict per cell with each side's median per call.
    """
    kind = spec.get("kind", "isolated")
    if kind == "isolated":
        return _isolated(spec)
    if kind == "together":
        return _together(spec)
    raise ValueError(f"unknown worker kind {kind!r}")


def _isolated(spec):
    shape, dtype, mode, side = spec["shape"], spec["dtype"], spec["mode"], spec["side"]
    threads, budget = int(spec["threads"]), float(spec["budget"])
    if side not in SIDES:
        raise ValueError(f"unknown side {side!r}")
    label = f"{shape} {dtype} {mode} {side}"
    result = {"shape": shape, "dtype": dtype, "mode": mode, "side": side, "seconds": None,
              "config": fastlstm_config(), "fastlstm_isa_env": os.environ.get("FASTLSTM_ISA"),
              "pid": os.getpid()}
    work = benchmark.Workload.make(_shape(shape), dtype, seed=spec.get("seed", SEED))
    with _torch_threads_restored(side == "torch"
                                 and importlib.util.find_spec("torch") is not None):
        runs = benchmark.runners(work, mode == "training", threads, sides=(side,))
        if side not in runs:
            result["reason"] = ("not installed" if importlib.util.find_spec(side) is None
                                else "does not support this workload")
            return result
        with _thread_limits(threads):
            result["error"] = _check(label, runs[side], _reference_output(work),
                                     spec.get("rtol", RTOL[dtype]))
            # The reference ran on numpy's BLAS, whose workers keep spinning for a while after
            # a call: let them go idle, so that "isolated" times the side alone.
            time.sleep(0.5)
            result["seconds"] = benchmark.measure(runs, repeats=REPEATS,
                                                  budget=budget / REPEATS)[side]
    result["config"] = fastlstm_config()  # after set_num_threads: the threads it ran with
    return result


def _interference(threads):
    """A callable running a numpy matmul, a torch op and an onnxruntime run (whichever are
    installed), and the list of what it runs."""
    rng = np.random.default_rng(1)
    a = rng.standard_normal((512, 512)).astype(np.float32)
    b = rng.standard_normal((512, 512)).astype(np.float32)
    parts, names = [], ["numpy 512x512 float32 matmul x3"]

    def numpy_part():
        for _ in range(3):
            a @ b
    parts.append(numpy_part)
    try:
        import torch
    except ImportError:
        torch = None
    if torch is not None:
        ta, tb = torch.from_numpy(a.copy()), torch.from_numpy(b.copy())
        parts.append(lambda: torch.mm(ta, tb))
        names.append("torch.mm 512x512")
    ort = benchmark.runners(benchmark.Workload.make(_shape("S2"), "float32", seed=SEED), False,
                            threads, sides=("onnxruntime",)).get("onnxruntime")
    if ort is not None:
        parts.append(ort)
        names.append("onnxruntime LSTM run (S2)")

    def interfere():
        for part in parts:
            part()
    return interfere, names


def _alternate(runs, budget, interfere):
    """Median seconds per call of each side, the sides alternating in every repeat and
    ``interfere()`` run right before every fastlstm block."""
    per_call = {}
    for side, fn in runs.items():  # two warm-up calls, then one timed call to size the blocks
        fn()
        fn()
        t0 = time.perf_counter()
        fn()
        per_call[side] = max(time.perf_counter() - t0, 1e-7)
    block = min(budget / REPEATS, TOGETHER_BLOCK)
    sizes = {side: max(1, int(block / t)) for side, t in per_call.items()}
    fast_block = sizes["fastlstm"] * per_call["fastlstm"]
    repeats = max(REPEATS, min(TOGETHER_MAX_REPEATS, int(budget / fast_block)))
    samples = {side: [] for side in runs}
    for _ in range(repeats):
        for side, fn in runs.items():
            if side == "fastlstm":
                interfere()
            n = sizes[side]
            t0 = time.perf_counter()
            for _ in range(n):
                fn()
            samples[side].append((time.perf_counter() - t0) / n)
    return {side: statistics.median(v) for side, v in samples.items()}, repeats


def _together(spec):
    threads, budget = int(spec["threads"]), float(spec["budget"])
    for name in ("torch", "onnxruntime"):  # all of them loaded, as in a user's process
        if importlib.util.find_spec(name) is not None:
            importlib.import_module(name)
    cells = []
    with _torch_threads_restored(importlib.util.find_spec("torch") is not None):
        interfere, names = _interference(threads)
        for shape, dtype, mode in spec["cells"]:
            work = benchmark.Workload.make(_shape(shape), dtype, seed=spec.get("seed", SEED))
            runs = benchmark.runners(work, mode == "training", threads)
            with _thread_limits(threads):
                ref = _reference_output(work)
                for side, fn in runs.items():
                    _check(f"{shape} {dtype} {mode} {side} (together)", fn, ref, RTOL[dtype])
                times, repeats = _alternate(runs, budget, interfere)
            cells.append({"shape": shape, "dtype": dtype, "mode": mode, "repeats": repeats,
                          **times})
            print(f"  together {shape} {dtype} {mode}: "
                  + ", ".join(f"{k} {benchmark.format_time(v)}" for k, v in times.items()),
                  file=sys.stderr, flush=True)
    return {"cells": cells, "interference": names, "config": fastlstm_config(),
            "fastlstm_isa_env": os.environ.get("FASTLSTM_ISA"), "pid": os.getpid()}


# ------------------------------------------------------------------------------------------------
# Parent: spawn the workers
# ------------------------------------------------------------------------------------------------

class WorkerFailed(RuntimeError):
    pass


def spawn(spec, what):
    """Run ``spec`` in a fresh interpreter (environment passed through unchanged, FASTLSTM_ISA
    included); its result is the JSON of the last line of its stdout. The together worker's
    stderr (its progress) goes straight to ours; an isolated worker's is kept for the error."""
    live = spec.get("kind") == "together"
    proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--worker",
                           json.dumps(spec)], stdout=subprocess.PIPE,
                          stderr=None if live else subprocess.PIPE, text=True,
                          env=dict(os.environ))
    if proc.returncode != 0:
        detail = "(its messages are above)" if live else proc.stderr.strip()
        raise WorkerFailed(f"the worker for {what} failed (exit {proc.returncode}):\n{detail}")
    lines = [ln for ln in proc.stdout.splitlines() if ln.strip()]
    try:
        return json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError) as exc:
        raise WorkerFailed(f"the worker for {what} printed no result:\n{proc.stdout}") from exc


def applicable_sides(dtype, mode):
    """Sides that can run the cell (onnxruntime: float32 inference only) and are installed."""
    sides = ["fastlstm"]
    if importlib.util.find_spec("torch") is not None:
        sides.append("torch")
    if (dtype == "float32" and mode == "inference"
            and importlib.util.find_spec("onnxruntime") is not None):
        sides.append("onnxruntime")
    return sides


def run_isolated(cells, threads, budget, log=print):
    """``{(shape, dtype, mode): {side: seconds}}`` with one process per side and cell, and the
    worker results (for the configs they report)."""
    times, results = {}, []
    for shape, dtype, mode in cells:
        row = times.setdefault((shape, dtype, mode), {})
        for side in applicable_sides(dtype, mode):
            spec = {"kind": "isolated", "shape": shape, "dtype": dtype, "mode": mode,
                    "side": side, "threads": threads, "budget": budget, "seed": SEED}
            res = spawn(spec, f"{shape} {dtype} {mode} {side}")
            results.append(res)
            row[side] = res["seconds"]
            log(f"  isolated {shape} {dtype} {mode} {side}: "
                + (benchmark.format_time(res["seconds"]) if res["seconds"] is not None
                   else f"- ({res.get('reason')})"))
    return times, results


# ------------------------------------------------------------------------------------------------
# Header, table, targets
# ------------------------------------------------------------------------------------------------

def _ratio(num, den):
    return None if num is None or den is None else num / den


def _fmt_ratio(r):
    return "-" if r is None else f"{r:.2f}x"


def cell_rows(results):
    """Derived numbers of each cell of a result dict (see :func:`format_table`)."""
    rows = []
    peaks = results.get("peaks", {})
    for c in results["cells"]:
        shape = _shape(c["shape"])
        fast = c.get("fastlstm")
        gflops = (None if fast is None
                  else benchmark.lstm_flops(shape, c["mode"] == "training") / fast / 1e9)
        peak = peaks.get(c["dtype"])
        rows.append({**c, "shape_obj": shape, "gflops": gflops,
                     "torch_ratio": _ratio(c.get("torch"), fast),
                     "ort_ratio": _ratio(c.get("onnxruntime"), fast),
                     "peak_pct": None if gflops is None or not peak else 100 * gflops / peak,
                     "together_ratio": _ratio(c.get("together"), fast)})
    return rows


COLUMNS = ("shape", "T,B,I,H", "dtype", "mode", "fastlstm", "torch", "torch/fast",
           "onnxruntime", "ort/fast", "GFLOP/s", "% of GEMM", "together", "together/iso")


def format_table(results, markdown=False):
    """The engine table of a result dict: ``{"peaks": {"float32": SGEMM GFLOP/s, "float64":
    DGEMM GFLOP/s}, "cells": [{"shape": "S1", "dtype": "float32", "mode": "inference",
    "fastlstm": s, "torch": s, "onnxruntime": s, "together": s}, ...]}`` (seconds per call;
    a missing or None entry prints as "-"). One row per cell; aligned text, or Markdown."""
    body = []
    for r in cell_rows(results):
        s = r["shape_obj"]
        body.append([s.name, f"{s.T},{s.B},{s.I},{s.H}", r["dtype"], r["mode"],
                     benchmark.format_time(r.get("fastlstm")), benchmark.format_time(r.get("torch")),
                     _fmt_ratio(r["torch_ratio"]), benchmark.format_time(r.get("onnxruntime")),
                     _fmt_ratio(r["ort_ratio"]),
                     "-" if r["gflops"] is None else f"{r['gflops']:.1f}",
                     "-" if r["peak_pct"] is None else f"{r['peak_pct']:.0f} %",
                     benchmark.format_time(r.get("together")), _fmt_ratio(r["together_ratio"])])
    if markdown:
        lines = ["| " + " | ".join(COLUMNS) + " |",
                 "|" + "|".join(" --- " if i < 4 else " ---: " for i in range(len(COLUMNS)))
                 + "|"]
        lines += ["| " + " | ".join(b) + " |" for b in body]
    else:
        widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(COLUMNS)]

        def line(cells):
            return "  ".join(c.ljust(w) if i < 4 else c.rjust(w)
                             for i, (c, w) in enumerate(zip(cells, widths))).rstrip()
        lines = [line(COLUMNS), "  ".join("-" * w for w in widths)]
        lines += [line(b) for b in body]
    return "\n".join(lines)


def check_targets(results):
    """One line per target: met, missed (the cells and their numbers), or not measured."""
    rows = cell_rows(results)
    checks = [[] for _ in TARGETS]  # per target: (cell name, value, threshold, ok)

    def add(k, r, value, need, fmt, cmp=">="):
        if value is None:
            return
        ok = value >= need if cmp == ">=" else value <= need
        checks[k].append((f"{r['shape']} {r['dtype'][5:]} {r['mode'][:5]}", fmt(value), ok))

    def x(v):
        return f"{v:.2f}x"

    for r in rows:
        f32, name = r["dtype"] == "float32", r["shape"]
        if f32 and r["mode"] == "inference":
            add(0, r, r["ort_ratio"], 1.0, x)
        if f32:
            add(1, r, r["torch_ratio"], 5.0 if name == "S1" else 1.5, x)
        else:
            add(2, r, r["torch_ratio"], 3.0, x)
        if f32 and r["mode"] == "training" and name in ("S3", "S4"):
            add(3, r, r["peak_pct"], 85.0, lambda v: f"{v:.0f} %")
        add(4, r, r["together_ratio"], 1.2, x, cmp="<=")
    lines = []
    for target, found in zip(TARGETS, checks):
        missed = [f"{cell} ({value})" for cell, value, ok in found if not ok]
        if not found:
            status = "not measured"
        elif missed:
            status = f"MISSED at {len(missed)} of {len(found)}: " + ", ".join(missed)
        else:
            status = f"met ({len(found)} cells)"
        lines.append(f"{target}: {status}")
    return lines


def _cpuinfo():
    """(CPU model name, set of flags) from /proc/cpuinfo (first processor)."""
    model, flags = None, set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name" and model is None:
                    model = value.strip()
                elif key == "flags" and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    return model or platform.processor() or platform.machine() or "unknown CPU", flags


def _version(dist):
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def gemm_rates(dtypes, threads, quick):
    """numpy's GEMM rate per dtype (GFLOP/s) with numpy's BLAS at ``threads`` threads."""
    try:
        from threadpoolctl import threadpool_limits
        limits = threadpool_limits(limits=threads)
    except ImportError:
        limits = None
    try:
        return {dt: benchmark.gemm_rate(np.dtype(dt), repeats=3 if quick else 7)
                for dt in dtypes}
    finally:
        if limits is not None:
            limits.restore_original_limits()


def header(args, peaks, config, isa_seen, interference):
    import fastlstm

    model, flags = _cpuinfo()
    try:
        load = f", load average {os.getloadavg()[0]:.2f}"
    except (AttributeError, OSError):
        load = ""
    isa_flags = ", ".join(f"{f} {'yes' if f in flags else 'no'}"
                          for f in ("avx2", "fma", "avx512f"))
    env_isa = os.environ.get("FASTLSTM_ISA")
    if config is None:
        engine = "unknown (fastlstm has no config())"
    else:
        keys = ["isa", "threads", "blas", "openmp", "version"]
        engine = ", ".join(f"{k} {config.get(k, '?')}" for k in keys) + "".join(
            f", {k} {v}" for k, v in config.items() if k not in keys)
    lines = [
        f"fastlstm engine table, {time.strftime('%Y-%m-%d %H:%M')}",
        f"CPU: {model}, {os.cpu_count()} logical CPUs{load}; ISA flags: {isa_flags}",
        f"fastlstm {fastlstm.__version__}: {engine}",
        f"ISA used: {', '.join(isa_seen) if isa_seen else 'unknown, fastlstm has no config()'}"
        " (FASTLSTM_ISA "
        + (f"= {env_isa!r}, passed to every worker)" if env_isa is not None
           else "not set: fastlstm's own choice)"),
        f"threads: {args.threads} per side (fastlstm.set_num_threads "
        f"{'called' if hasattr(fastlstm, 'set_num_threads') else 'absent'}; "
        f"torch.set_num_threads; onnxruntime intra_op_num_threads; BLAS/OpenMP via "
        f"threadpoolctl)",
        f"Python {platform.python_version()}, numpy {np.__version__}, torch {_version('torch')}, "
        f"onnxruntime {_version('onnxruntime')}",
        "numpy GEMM rate (2048^2 matmul, best of repeats, "
        f"{args.threads} threads): " + ", ".join(
            f"{'SGEMM' if dt == 'float32' else 'DGEMM'} {v:.1f} GFLOP/s"
            for dt, v in peaks.items()),
    ]
    set_vars = [v for v in OPENBLAS_VARS if v in os.environ]
    if set_vars:
        lines.append(f"WARNING: {' and '.join(f'{v}={os.environ[v]}' for v in set_vars)} set: "
                     f"they slow OpenBLAS; run under env -u OPENBLAS_CORETYPE -u "
                     f"OPENBLAS_L2_SIZE python bench/engine_table.py ...")
    else:
        lines.append("OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE not set")
    if args.mode in ("isolated", "both"):
        lines.append(f"isolated: one fresh process per (shape, dtype, mode, side); median per "
                     f"call of {REPEATS} blocks, ~{args.budget:g} s of calls per side and cell, "
                     f"after 2 warm-up calls; every output checked against the NumPy reference")
    if args.mode in ("together", "both"):
        lines.append(f"together: one process with numpy, torch and onnxruntime loaded; sides "
                     f"alternate, blocks of ~{TOGETHER_BLOCK * 1e3:.0f} ms, and before every "
                     f"fastlstm block: {', '.join(interference or ['?'])}")
    lines.append("ratios: peer time / fastlstm time (above 1: fastlstm faster); GFLOP/s: GEMM "
                 "FLOPs of the layer per second of fastlstm (isolated) vs the GEMM rate above; "
                 "inference = forward, training = forward + backward")
    return lines


# ------------------------------------------------------------------------------------------------
# main
# ------------------------------------------------------------------------------------------------

def _list(text, known, what, parser):
    names = [n.strip() for n in text.split(",") if n.strip()]
    if what == "shape":
        names = [n.upper() for n in names]
    unknown = [n for n in names if n not in known]
    if not names or unknown:
        parser.error(f"--{what}s: expected a comma-separated list from {','.join(known)}, "
                     f"got {text!r}")
    return list(dict.fromkeys(names))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shapes", help="comma-separated, from S1..S5 (default all; --quick: S1,S2)")
    p.add_argument("--dtypes", help="float32,float64 (default both; --quick: float32)")
    p.add_argument("--modes", default="inference,training")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--budget", type=float,
                   help=f"seconds of timed calls per side and cell (default {DEFAULT_BUDGET:g}; "
                        f"--quick: {QUICK['budget']:g})")
    p.add_argument("--quick", action="store_true",
                   help="smoke test: S1,S2 float32 with 0.3 s per side (explicit options win)")
    p.add_argument("--mode", choices=("isolated", "together", "both"), default="both")
    p.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    p.add_argument("--worker", metavar="JSON", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker is not None:
        return args
    if args.threads < 1:
        p.error("--threads must be at least 1")
    quick = args.quick
    args.shapes = _list(args.shapes or (QUICK["shapes"] if quick else
                                        ",".join(s.name for s in benchmark.SHAPES)),
                        [s.name for s in benchmark.SHAPES], "shape", p)
    args.dtypes = _list(args.dtypes or (QUICK["dtypes"] if quick else ",".join(DTYPES)),
                        DTYPES, "dtype", p)
    args.modes = _list(args.modes, MODES, "mode", p)
    if args.budget is None:
        args.budget = QUICK["budget"] if quick else DEFAULT_BUDGET
    if not args.budget > 0:
        p.error("--budget must be positive")
    return args


def _worker_main(text):
    try:
        result = run_worker(json.loads(text))
    except Disagreement as exc:
        print(f"engine_table worker: {exc}", file=sys.stderr)
        return 3
    print(json.dumps(result), flush=True)
    return 0


def main(argv=None):
    args = parse_args(argv)
    if args.worker is not None:
        return _worker_main(args.worker)
    started = time.perf_counter()

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    cells = [(s, dt, m) for s in args.shapes for dt in args.dtypes for m in args.modes]
    set_vars = [v for v in OPENBLAS_VARS if v in os.environ]
    if set_vars:
        log(f"engine_table: WARNING: {', '.join(set_vars)} set (they slow OpenBLAS); run under "
            f"env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE")
    log(f"engine_table: GEMM rates ({args.threads} threads) ...")
    peaks = gemm_rates(args.dtypes, args.threads, args.quick)
    isolated, together, worker_results, interference = {}, {}, [], None
    try:
        if args.mode in ("isolated", "both"):
            isolated, worker_results = run_isolated(cells, args.threads, args.budget, log)
        if args.mode in ("together", "both"):
            log("engine_table: together mode (one process) ...")
            res = spawn({"kind": "together", "cells": [list(c) for c in cells],
                         "threads": args.threads, "budget": args.budget, "seed": SEED},
                        "together mode")
            worker_results.append(res)
            interference = res["interference"]
            together = {(c["shape"], c["dtype"], c["mode"]): c for c in res["cells"]}
    except WorkerFailed as exc:
        print(f"engine_table: FAILED: {exc}", file=sys.stderr)
        return 1

    results = {"peaks": peaks, "cells": []}
    for key in cells:
        iso = isolated.get(key, {})
        results["cells"].append({"shape": key[0], "dtype": key[1], "mode": key[2],
                                 "fastlstm": iso.get("fastlstm"), "torch": iso.get("torch"),
                                 "onnxruntime": iso.get("onnxruntime"),
                                 "together": together.get(key, {}).get("fastlstm")})

    configs = [r["config"] for r in worker_results if r.get("config")]
    config = configs[0] if configs else fastlstm_config()
    isa_seen = sorted({str(c.get("isa")) for c in configs}) if configs else (
        [str(config.get("isa"))] if config else [])
    prefix = "- " if args.markdown else "# "
    out = [prefix + line for line in header(args, peaks, config, isa_seen, interference)]
    if len(isa_seen) > 1:
        out.append(prefix + f"WARNING: the workers reported different ISA paths: {isa_seen}")
    out.append("")
    out.append(format_table(results, markdown=args.markdown))
    out.append("")
    out.append("Targets (printed, not asserted):\n" if args.markdown else
               "# targets (printed, not asserted):")
    out += [prefix + line for line in check_targets(results)]
    out.append(prefix + f"wall time {time.perf_counter() - started:.0f} s")
    print("\n".join(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
