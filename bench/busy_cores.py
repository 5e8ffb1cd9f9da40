"""fastlstm beside busy cores: ``LSTMLayer`` calls (the engine table's shapes) while other
processes keep CPUs busy, with the core check (each call's team cut to the cores the others
leave free, the default), with the team governor instead (``set_core_check(False)``: the
full team timed against one thread), and with one thread. Also the same without busy
processes. The busy processes are ``python -c "while True: pass"``, started before and killed
after each case; the three settings alternate block by block in one process (a setting is a
process-wide switch, and the point is that they see the same neighbours). Prints median
milliseconds per call. Run:

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/busy_cores.py
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/busy_cores.py --busy 0,1,2 --shapes S2,S3,S5
"""

import argparse
import statistics
import subprocess
import sys
import time

import numpy as np

from _sides import cpu_name

import fastlstm
from fastlstm import benchmark

SETTINGS = ("core check", "governor", "one thread")


def _apply(setting, threads):
    fastlstm.set_core_check(setting != "governor")
    fastlstm.set_num_threads(1 if setting == "one thread" else threads)


def measure(shape, mode, busy, threads, blocks, block_seconds):
    """{setting: median seconds per call} with ``busy`` busy processes beside."""
    work = benchmark.Workload.make({s.name: s for s in benchmark.SHAPES}[shape], "float32")
    fn = benchmark.runners(work, mode == "training", threads, sides=("fastlstm",))["fastlstm"]
    for setting in SETTINGS:  # warm-up: packing, buffers, OpenMP's pool
        _apply(setting, threads)
        fn()
    t0 = time.perf_counter()
    fn()
    calls = max(1, int(block_seconds / max(time.perf_counter() - t0, 1e-6)))
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(busy)]
    try:
        time.sleep(0.5)  # the busy processes running, numpy's pool asleep
        samples = {s: [] for s in SETTINGS}
        for rep in range(blocks):
            for setting in SETTINGS if rep % 2 == 0 else SETTINGS[::-1]:
                _apply(setting, threads)
                t0 = time.perf_counter()
                for _ in range(calls):
                    fn()
                samples[setting].append((time.perf_counter() - t0) / calls)
    finally:
        for p in procs:
            p.kill()
            p.wait()
        fastlstm.set_core_check(True)
        fastlstm.set_num_threads(None)
    return {s: statistics.median(v) for s, v in samples.items()}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--shapes", default="S2,S5")
    p.add_argument("--modes", default="inference,training")
    p.add_argument("--busy", default="0,1", help="numbers of busy processes, comma-separated")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--blocks", type=int, default=9)
    p.add_argument("--block-seconds", type=float, default=0.1)
    args = p.parse_args(argv)
    cfg = fastlstm.config()
    print(f"- {time.strftime('%Y-%m-%d %H:%M')}, {cpu_name()}, fastlstm isa {cfg['isa']}, "
          f"{args.threads} threads, core check {cfg['core_check']}, float32; median of "
          f"{args.blocks} blocks of ~{args.block_seconds} s per setting, settings alternating")
    print()
    print("| shape | mode | busy processes | " + " | ".join(SETTINGS) + " |")
    print("| --- | --- | ---: | " + " | ".join("---:" for _ in SETTINGS) + " |")
    for shape in args.shapes.split(","):
        for mode in args.modes.split(","):
            for busy in map(int, args.busy.split(",")):
                t = measure(shape, mode, busy, args.threads, args.blocks, args.block_seconds)
                print(f"| {shape} | {mode} | {busy} | "
                      + " | ".join(benchmark.format_time(t[s]) for s in SETTINGS) + " |",
                      flush=True)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
