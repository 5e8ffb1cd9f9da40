"""``fastlstm.torch.LSTM`` against ``torch.nn.LSTM`` inside plain PyTorch: a training step
(``zero_grad``, the LSTM, a ``Linear`` head on the last hidden state, MSE, ``backward``, an
Adam step) and inference under ``torch.inference_mode()``, time major, float32 (and float64
for training). Prints median milliseconds per step, each side in its own fresh process and both
alternating in one. Run:

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/torch_module.py
"""


from _sides import alternating, arguments, cpu_name, median_time, own_processes

SHAPES = {"seed002": (24, 32, 1, 50), "S2": (50, 32, 32, 64), "S3": (100, 64, 256, 256),
          "S4": (100, 16, 512, 1024), "S5": (1000, 1, 64, 128)}  # T, B, I, H
CASES = [(s, "training", "float32") for s in ("seed002", "S2", "S3", "S5")] + \
        [(s, "training", "float64") for s in ("seed002", "S2", "S3", "S5")] + \
        [(s, "inference", "float32") for s in ("S2", "S3", "S4", "S5")]
SIDES = ("torch.nn.LSTM", "fastlstm.torch.LSTM")


def job(side, shape, mode, dtype, threads):
    import torch
    import fastlstm
    import fastlstm.torch
    torch.set_num_threads(threads)
    fastlstm.set_num_threads(threads)
    T, B, I, H = SHAPES[shape]
    dt = getattr(torch, dtype)
    torch.manual_seed(0)
    cls = torch.nn.LSTM if side == SIDES[0] else fastlstm.torch.LSTM
    lstm = cls(I, H, dtype=dt)
    head = torch.nn.Linear(H, 1, dtype=dt)
    x = torch.randn(T, B, I, dtype=dt)
    y = torch.randn(B, 1, dtype=dt)
    if mode == "inference":
        def infer():
            with torch.inference_mode():
                lstm(x)
        return infer
    opt = torch.optim.Adam(list(lstm.parameters()) + list(head.parameters()), lr=1e-3)

    def step():
        opt.zero_grad()
        _, (h, _) = lstm(x)
        torch.nn.functional.mse_loss(head(h[-1]), y).backward()
        opt.step()
    return step


def run_side(side, threads, repeat):
    return {" ".join(c): median_time(job(side, *c, threads), repeat, warmup=2)
            for c in CASES}


def main(argv=None):
    args = arguments(__doc__, 15, run_side, argv)
    if args is None:
        return
    import fastlstm
    print(f"# {cpu_name()}; fastlstm ISA path {fastlstm.config()['isa']}; {args.threads} "
          f"thread(s) each side; median of {args.repeat} steps, milliseconds")
    for how in ("own process", "one process"):
        if how == "own process":
            res = own_processes(__file__, SIDES, ["--threads", args.threads,
                                                  "--repeat", args.repeat])
        else:
            res = alternating(lambda s, *case: job(s, *case, args.threads), SIDES, CASES,
                              args.repeat)
        print(f"\n{how}:\n")
        print("| shape (T,B,I,H) | mode | dtype | torch.nn.LSTM | fastlstm.torch.LSTM | ratio |")
        print("| --- | --- | --- | --- | --- | --- |")
        for shape, mode, dtype in CASES:
            key = f"{shape} {mode} {dtype}"
            a, b = res[SIDES[0]][key], res[SIDES[1]][key]
            dims = ",".join(map(str, SHAPES[shape]))
            print(f"| {shape} {dims} | {mode} | {dtype} | {a * 1e3:.2f} | {b * 1e3:.2f} | "
                  f"{a / b:.2f}x |")


if __name__ == "__main__":
    main()
