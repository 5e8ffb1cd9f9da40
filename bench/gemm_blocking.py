"""The packed product's rate under cache blockings: which blocking suits this CPU.

Times fastlstm's own product (``_core.gemm``, the ISA path in use) on the shapes the engine
runs: the input projection of a whole sequence (X (T B, I) @ W_ih^T), one step's recurrence
(h (B, H) @ W_hh^T) and the weight gradients (X^T dG, A transposed). Each blocking is a set of
overrides (``_core._set_gemm_blocking``; an empty one is the path's own choice on this CPU);
the blockings alternate within every round, so a noisy neighbour slows them alike, and each is
checked to give the same bits as the first. Printed: GFLOP/s, the median over the rounds.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/gemm_blocking.py
    python bench/gemm_blocking.py --dtype float64 --threads 2 \\
        --blocking "" --blocking mr=12,kc_bytes=16384,mc_tiles=2,ncq=32

FASTLSTM_ISA selects the path (the blocking only changes the AVX-512 path's choice by CPU; an
override applies to any path).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from fastlstm import _core

# (m, n, k, trans_a, what): the S3 (T=100, B=64, I=H=256) and S4 (T=100, B=16, I=512,
# H=1024) products.
SHAPES = [
    (6400, 1024, 256, False, "S3 projection"),
    (64, 1024, 256, False, "S3 step"),
    (256, 1024, 6400, True, "S3 dW = X^T dG"),
    (6400, 256, 1024, False, "S3 dX = dG W_ih"),
    (64, 256, 1024, False, "S3 backward step"),
    (1600, 4096, 512, False, "S4 projection"),
    (16, 4096, 1024, False, "S4 step"),
    (1024, 4096, 1600, True, "S4 dW = H^T dG"),
    (1600, 512, 4096, False, "S4 dX = dG W_ih"),
]

DEFAULT_BLOCKINGS = [
    "",
    "mr=12,kc_bytes=16384,mc_tiles=2,ncq=32",
    "mr=12,kc_bytes=65536,kca_bytes=16384,mc_tiles=2,ncq=32",
    "mr=6,kc_bytes=32768,mc_tiles=2,ncq=16",
    "mr=6,kc_bytes=16384,mc_tiles=8,ncq=16777216",
]


def parse_blocking(text: str) -> dict:
    out = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, value = part.partition("=")
        if name not in ("mr", "kc_bytes", "mc_tiles", "ncq", "kca_bytes"):
            raise SystemExit(f"--blocking: unknown field {name!r} in {text!r}")
        out[name] = int(value)
    return out


def time_call(fn, budget: float) -> float:
    fn()
    n = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        dt = time.perf_counter() - t0
        if dt >= budget or n >= 1 << 16:
            return dt / n
        n *= 2


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--budget", type=float, default=0.15, help="seconds per timing")
    ap.add_argument("--blocking", action="append", default=None,
                    help="overrides as mr=..,kc_bytes=..,mc_tiles=..,ncq=..,kca_bytes=.. ('' = "
                         "the path's "
                         "choice); repeat to compare")
    ap.add_argument("--shapes", default="", help="indices into the shape list, e.g. 0,1")
    args = ap.parse_args()
    blockings = [parse_blocking(b) for b in (args.blocking or DEFAULT_BLOCKINGS)]
    shapes = [SHAPES[int(i)] for i in args.shapes.split(",")] if args.shapes else SHAPES
    dt = np.dtype(args.dtype)
    rng = np.random.default_rng(0)
    print(f"ISA path {_core.isa_name()}, {args.dtype}, {args.threads} thread(s), "
          f"L1d {_core.l1d_bytes()} bytes")
    names = []
    for b in blockings:
        previous = _core._set_gemm_blocking(**b)
        names.append(",".join(f"{k}={v}" for k, v in b.items()) or "path's choice")
        print(f"  {names[-1]}: runs {_core.gemm_blocking(dt)}")
        _core._set_gemm_blocking(**previous)
    for m, n, k, trans_a, what in shapes:
        a = rng.standard_normal((k, m) if trans_a else (m, k)).astype(dt)
        b = rng.standard_normal((k, n)).astype(dt)
        outs = [np.zeros((m, n), dt) for _ in blockings]
        rates: list[list[float]] = [[] for _ in blockings]
        for _ in range(args.rounds):
            for j, blk in enumerate(blockings):
                previous = _core._set_gemm_blocking(**blk)
                try:
                    sec = time_call(lambda: _core.gemm(a, b, outs[j], trans_a=trans_a,
                                                       threads=args.threads), args.budget)
                finally:
                    _core._set_gemm_blocking(**previous)
                rates[j].append(2.0 * m * n * k / sec / 1e9)
        for j in range(1, len(blockings)):
            if not _core.same_bytes(outs[0], outs[j]):
                raise SystemExit(f"{what}: blocking {names[j]} changed the bits")
        cells = "  ".join(f"{statistics.median(r):7.1f}" for r in rates)
        print(f"{what:16s} {m}x{n}x{k}{' A^T' if trans_a else ''}: {cells}")


if __name__ == "__main__":
    main()
