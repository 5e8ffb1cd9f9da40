"""fastlstm.LSTMLayer vs torch.nn.LSTM (and onnxruntime's LSTM operator) at the standard shapes.

Prints the table that goes into the README and draws a bar chart of the speed ratios. Run:

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/compare_layer.py --chart bench/layer.png

Ratios are time of the other side / time of fastlstm (above 1: fastlstm is faster); every side
runs in this process, the sides alternate, and each time is a median over repeats.
"""

import argparse
import os
import platform
import sys
import time

import numpy as np

from fastlstm import benchmark


def machine():
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} logical CPUs"


def chart(rows, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"{r['shape'].name} {r['dtype'][5:]}\n{r['mode'][:5]}" for r in rows]
    xs = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(max(8, 0.55 * len(rows)), 4.2))
    torch_r = [r["torch"] / r["fastlstm"] if r.get("torch") else np.nan for r in rows]
    ort_r = [r["onnxruntime"] / r["fastlstm"] if r.get("onnxruntime") else np.nan for r in rows]
    # Bars grow from 1 (parity): up where fastlstm is faster, down where it is slower.
    ax.bar(xs - 0.2, np.array(torch_r) - 1, 0.4, bottom=1,
           label="torch.nn.LSTM time / fastlstm time")
    ax.bar(xs + 0.2, np.array(ort_r) - 1, 0.4, bottom=1,
           label="onnxruntime LSTM time / fastlstm time")
    ax.axhline(1.0, color="k", lw=0.8)
    ax.set_yscale("log")
    ax.set_xticks(xs, labels, fontsize=7)
    ax.set_ylabel("speed-up of fastlstm (log)")
    ax.set_title("fastlstm.LSTMLayer vs PyTorch and ONNX Runtime on the CPU (above 1: faster)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--shapes", default="S1,S2,S3,S4,S5", help="comma-separated shape names")
    p.add_argument("--dtypes", default="float32,float64")
    p.add_argument("--modes", default="inference,training")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--budget", type=float, default=0.05, help="seconds per timed block")
    p.add_argument("--chart", help="write the bar chart of the ratios to this PNG")
    args = p.parse_args(argv)

    from threadpoolctl import threadpool_info, threadpool_limits

    threadpool_limits(args.threads)
    names = args.shapes.split(",")
    shapes = [s for s in benchmark.SHAPES if s.name in names]
    unset = [v for v in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if v in os.environ]
    print(f"# {time.strftime('%Y-%m-%d')}, {machine()}, {args.threads} threads, "
          f"Python {platform.python_version()}, numpy {np.__version__}")
    for pool in threadpool_info():
        print(f"# thread pool: {pool.get('internal_api')} {pool.get('version') or ''} "
              f"{pool.get('architecture') or ''} ({os.path.basename(pool.get('filepath', ''))})")
    if unset:
        print(f"# warning: {', '.join(unset)} set; they slow OpenBLAS (see docs/engine.md, Measuring)")
    try:
        import torch
        print(f"# torch {torch.__version__}")
    except ImportError:
        print("# torch not installed")
    try:
        import onnxruntime
        print(f"# onnxruntime {onnxruntime.__version__}")
    except ImportError:
        print("# onnxruntime not installed")

    def progress(r):
        print(f"  {r['shape'].name} {r['dtype']} {r['mode']}: "
              + ", ".join(f"{k} {r[k] * 1e3:.3f} ms" for k in ("fastlstm", "torch", "onnxruntime")
                          if r.get(k)), file=sys.stderr, flush=True)

    rows, peaks = benchmark.run_comparison(
        shapes, args.dtypes.split(","), args.modes.split(","), args.threads, args.repeats,
        args.budget, progress)
    print("# GEMM rate (numpy matmul 2048^2): "
          + ", ".join(f"{dt} {v:.0f} GFLOP/s" for dt, v in peaks.items()))
    print(benchmark.format_table(rows))
    if args.chart:
        chart(rows, args.chart)
        print(f"# chart: {args.chart}")


if __name__ == "__main__":
    main()
