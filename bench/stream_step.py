"""Streaming inference, one step at a time at batch 1: fastlstm's ``LSTMLayer.stream().step``
against ``torch.nn.LSTM`` called on one step with its state and an ONNX Runtime session run per
step (the exported layer with ``state_inputs=True``), float32. Prints steps per second, each
side in its own fresh process and all alternating in one. Run:

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/stream_step.py
"""

import argparse
import json
import statistics
import subprocess
import sys
import time

import numpy as np

SHAPES = [(64, 128), (512, 512)]  # (I, H)


def _time(step, n):
    """Median seconds per step over 5 runs of n steps."""
    runs = []
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(n):
            step()
        runs.append((time.perf_counter() - t0) / n)
    return statistics.median(runs)


def stepper(side, I, H, threads):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(I).astype(np.float32)
    import fastlstm
    import fastlstm.interop
    fastlstm.set_num_threads(threads)
    layer = fastlstm.LSTMLayer(I, H, seed=0)
    if side == "fastlstm":
        stream = layer.stream()
        return lambda: stream.step(x)
    if side == "torch":
        import torch
        torch.set_num_threads(threads)
        m = fastlstm.interop.to_torch(layer)
        xt = torch.from_numpy(x).reshape(1, 1, I)
        state = [None]

        def step():
            with torch.inference_mode():
                _, state[0] = m(xt, state[0])
        return step
    import onnxruntime as ort
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(fastlstm.to_onnx(layer, state_inputs=True).SerializeToString(),
                                opts, providers=["CPUExecutionProvider"])
    feed = {"x": x.reshape(1, 1, I), "h0": np.zeros((1, 1, H), np.float32),
            "c0": np.zeros((1, 1, H), np.float32)}

    def step():
        _, h, c = sess.run(None, feed)
        feed["h0"], feed["c0"] = h, c
    return step


def run_side(side, threads, n):
    return {f"{I},{H}": _time(stepper(side, I, H, threads), n) for I, H in SHAPES}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--side", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.side:
        print(json.dumps(run_side(args.side, args.threads, args.steps)))
        return
    import fastlstm
    cpu = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo")
                if ln.startswith("model name")), "?")
    print(f"# {cpu}; fastlstm ISA path {fastlstm.config()['isa']}; {args.threads} thread(s); "
          f"batch 1, float32; median of 5 runs of {args.steps} steps")
    sides = ["fastlstm"]
    for name, module in (("torch", "torch"), ("onnxruntime", "onnxruntime")):
        try:
            __import__(module)
            sides.append(name)
        except ImportError:
            pass
    for mode in ("own process", "one process"):
        if mode == "own process":
            res = {s: json.loads(subprocess.run(
                [sys.executable, __file__, "--side", s, "--threads", str(args.threads),
                 "--steps", str(args.steps)], check=True, capture_output=True,
                text=True).stdout.strip().splitlines()[-1]) for s in sides}
        else:
            res = {s: run_side(s, args.threads, args.steps) for s in sides}
        print(f"\n{mode}:\n")
        print("| I, H | fastlstm steps/s | torch steps/s | torch / fastlstm time | "
              "onnxruntime steps/s | onnxruntime / fastlstm time |")
        print("| --- | --- | --- | --- | --- | --- |")
        for I, H in SHAPES:
            key = f"{I},{H}"
            f = res["fastlstm"][key]
            cells = [f"{I}, {H}", f"{1 / f:,.0f}"]
            for s in ("torch", "onnxruntime"):
                if s in res:
                    cells += [f"{1 / res[s][key]:,.0f}", f"{res[s][key] / f:.1f}x"]
                else:
                    cells += ["-", "-"]
            print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
