"""Variable-length batches: ``LSTMLayer.forward(x, lengths=...)`` against the padded
full-length call, and against ``torch.nn.LSTM`` on ``pack_padded_sequence`` (unsorted
lengths, ``enforce_sorted=False``). Lengths uniform in 1..T (seeded), float32, inference
(``training=False`` / ``torch.inference_mode()``) and training (forward + backward of the
sum of the outputs). Prints median milliseconds, each side in its own fresh process and all
alternating in one. Run:

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/lengths.py
"""


import numpy as np

from _sides import alternating, arguments, cpu_name, median_time, own_processes

SHAPES = {"S2": (50, 32, 32, 64), "S3": (100, 64, 256, 256)}  # T, B, I, H
SIDES = ("fastlstm padded", "fastlstm lengths", "torch padded", "torch packed")


def _inputs(T, B, I):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((T, B, I)).astype(np.float32)
    lengths = rng.integers(1, T + 1, B)
    return x, lengths


def job(side, shape, mode, threads):
    """The function one measurement times."""
    T, B, I, H = SHAPES[shape]
    x, lengths = _inputs(T, B, I)
    import fastlstm
    import fastlstm.interop
    fastlstm.set_num_threads(threads)
    layer = fastlstm.LSTMLayer(I, H, seed=0)
    if side.startswith("fastlstm"):
        lens = lengths if side.endswith("lengths") else None
        if mode == "inference":
            return lambda: layer.forward(x, lengths=lens, training=False)
        gy = np.ones((T, B, H), np.float32)

        def train():
            layer.forward(x, lengths=lens)
            layer.backward(gy)
        return train
    import torch
    from torch.nn.utils.rnn import pack_padded_sequence
    torch.set_num_threads(threads)
    m = fastlstm.interop.to_torch(layer)
    xt = torch.from_numpy(x)
    lt = torch.from_numpy(lengths)
    packed = side.endswith("packed")

    def call():
        inp = pack_padded_sequence(xt, lt, enforce_sorted=False) if packed else xt
        out, _ = m(inp)
        return out.data if packed else out
    if mode == "inference":
        def infer():
            with torch.inference_mode():
                call()
        return infer

    def train():
        m.zero_grad()
        call().sum().backward()
    return train


def run_side(side, threads, repeat):
    return {f"{s} {mode}": median_time(job(side, s, mode, threads), repeat)
            for s in SHAPES for mode in ("inference", "training")}  # keys as alternating()'s


def main(argv=None):
    args = arguments(__doc__, 21, run_side, argv)
    if args is None:
        return
    import fastlstm
    print(f"# {cpu_name()}; fastlstm ISA path {fastlstm.config()['isa']}; {args.threads} "
          f"thread(s); float32; lengths uniform in 1..T; median of {args.repeat} calls, "
          "milliseconds")
    try:
        import torch  # noqa: F401
        sides = SIDES
    except ImportError:
        sides = SIDES[:2]
    cases = [(s, mode) for s in SHAPES for mode in ("inference", "training")]
    for how in ("own process", "one process"):
        if how == "own process":
            res = own_processes(__file__, sides, ["--threads", args.threads,
                                                  "--repeat", args.repeat])
        else:
            res = alternating(lambda side, s, mode: job(side, s, mode, args.threads), sides,
                              cases, args.repeat)
        print(f"\n{how}:\n")
        print("| shape, mode | " + " | ".join(sides) +
              " | lengths / padded | torch packed / fastlstm lengths |")
        print("| --- " * (len(sides) + 3) + "|")
        for key in res[sides[0]]:
            cells = [key] + [f"{res[s][key] * 1e3:.2f}" for s in sides]
            fl = res["fastlstm lengths"][key]
            cells.append(f"{fl / res['fastlstm padded'][key]:.2f}")
            cells.append(f"{res['torch packed'][key] / fl:.1f}x" if "torch packed" in res
                         else "-")
            print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
