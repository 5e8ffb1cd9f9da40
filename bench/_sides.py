"""What the comparison scripts of bench/ share: the CPU's name, each side measured in its own
fresh process (the script run again with ``--side NAME``, printing one JSON line), and all
sides alternating in one process, call by call. Times are medians in seconds."""

import argparse
import json
import statistics
import subprocess
import sys
import time


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            return next((ln.split(":", 1)[1].strip() for ln in f
                         if ln.startswith("model name")), "?")
    except OSError:
        return "?"


_SETTLED = []


def _settle():
    """Wait once per process before the first timed call: for about 0.25 s after NumPy is
    imported its OpenBLAS pool spins on the second core even without a BLAS call (measured
    with perf), so a fresh process timing 100 calls of 0.5 ms at once measures against it
    (fastlstm's S2 call with lengths: 0.45-0.5 ms there, 0.34 ms after the wait)."""
    if not _SETTLED:
        time.sleep(0.5)
        _SETTLED.append(True)


def own_processes(script, sides, args):
    """{side: {case: seconds}}: ``script --side S args...`` in a fresh interpreter per side."""
    return {s: json.loads(subprocess.run(
        [sys.executable, script, "--side", s, *map(str, args)], check=True,
        capture_output=True, text=True).stdout.strip().splitlines()[-1]) for s in sides}


def alternating(make, sides, cases, repeat):
    """{side: {case key: seconds}}: for each case, ``make(side, *case)`` gives the call to
    time; every side is called once to warm up, then the sides take turns ``repeat`` times."""
    res = {s: {} for s in sides}
    for case in cases:
        fns = {s: make(s, *case) for s in sides}
        for fn in fns.values():
            fn()
        _settle()
        runs = {s: [] for s in sides}
        for _ in range(repeat):
            for s, fn in fns.items():
                t0 = time.perf_counter()
                fn()
                runs[s].append(time.perf_counter() - t0)
        for s in sides:
            res[s][" ".join(case)] = statistics.median(runs[s])
    return res


def median_time(fn, repeat, warmup=1):
    """Median seconds of ``repeat`` calls of fn after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()
    _settle()
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t0)
    return statistics.median(runs)


def arguments(doc, repeat, run_side, argv=None):
    """The scripts' command line (--threads, --repeat, and the hidden --side of a worker
    process). A worker measures its side, prints the JSON line and gets None back."""
    p = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeat", type=int, default=repeat)
    p.add_argument("--side", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.side:
        print(json.dumps(run_side(args.side, args.threads, args.repeat)))
        return None
    return args
