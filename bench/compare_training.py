"""Training and prediction speed of LSTMRegressor vs the same model in PyTorch (and Keras).

Seed 002's energy example: an hourly series over three years, windows of 24 hours,
``LSTM(50, activation='relu') + Dense(1)``, Adam, batch 32, validation split 0.2. Times one
training epoch (the mean over ``--epochs`` epochs, median over repeats) and ``predict`` on
10,000 windows, each side in its own fresh process and all alternating in one. Run:

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/compare_training.py

PyTorch's model is ``nn.LSTM(1, 50)`` with relu in place of tanh written as the LSTM cell
equations (torch's LSTM has no activation argument) would be unfair to torch, so the PyTorch
side runs ``nn.LSTM`` with tanh (its fast path) while fastlstm runs relu as in the seed; the
work per step is the same. Keras (torch backend) runs the seed's exact model when installed.
"""

import argparse
import os
import statistics
import time

import numpy as np


def energy_windows(seed=0, lookback=24):
    """Seed 002's simulated hourly consumption 2020-01-01 .. 2022-12-31, as windows."""
    rng = np.random.default_rng(seed)
    hours = (np.datetime64("2022-12-31T00") - np.datetime64("2020-01-01T00")).astype(int) + 1
    consumption = np.sin(np.arange(hours) * 2 * np.pi / 24) * 100 + 200
    series = consumption + rng.normal(0, 20, hours)
    X = np.stack([series[i:i + lookback] for i in range(hours - lookback)])[:, :, None]
    y = series[lookback:]
    return X.astype(np.float32), y.astype(np.float32)


def time_fastlstm(X, y, epochs):
    from fastlstm import LSTMRegressor

    est = LSTMRegressor(hidden_size=50, activation="relu", epochs=epochs, batch_size=32,
                        validation_split=0.2, random_state=0)
    t0 = time.perf_counter()
    est.fit(X, y)
    return (time.perf_counter() - t0) / epochs, est


def time_torch(X, y, epochs, threads):
    import torch

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    n_val = int(len(X) * 0.2)
    mean, std = X[:-n_val].mean(), X[:-n_val].std()
    Xt = torch.from_numpy((X - mean) / std)
    yt = torch.from_numpy((y - y[:-n_val].mean()) / y[:-n_val].std())[:, None]
    X_train, y_train, X_val, y_val = Xt[:-n_val], yt[:-n_val], Xt[-n_val:], yt[-n_val:]

    class Model(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = torch.nn.LSTM(1, 50, batch_first=True)
            self.head = torch.nn.Linear(50, 1)

        def forward(self, x):
            _, (h, _) = self.lstm(x)
            return self.head(h[-1])

    model = Model()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.MSELoss()
    gen = torch.Generator().manual_seed(0)
    t0 = time.perf_counter()
    for _ in range(epochs):
        perm = torch.randperm(len(X_train), generator=gen)
        for i in range(0, len(perm), 32):
            idx = perm[i:i + 32]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(X_train[idx]), y_train[idx])
            loss.backward()
            opt.step()
        with torch.no_grad():
            loss_fn(model(X_val), y_val)
    return (time.perf_counter() - t0) / epochs, model


def time_keras(X, y, epochs):
    os.environ.setdefault("KERAS_BACKEND", "torch")
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((X.shape[1], 1)),
                              keras.layers.LSTM(50, activation="relu"), keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    t0 = time.perf_counter()
    model.fit(X, y, epochs=epochs, batch_size=32, validation_split=0.2, verbose=0)
    return (time.perf_counter() - t0) / epochs, model


def run_side(side, X, y, epochs, threads, repeats):
    """Fit and predict times of one side: (list of epoch times, list of predict times)."""
    fit, pred = [], []
    Xp = X[:10000]
    for _ in range(repeats):
        if side == "fastlstm":
            t, est = time_fastlstm(X, y, epochs)
            predict = lambda: est.predict(Xp)  # noqa: E731
        elif side == "torch":
            import torch
            t, model = time_torch(X, y, epochs, threads)
            xt = torch.from_numpy(Xp)

            def predict():
                with torch.inference_mode():
                    model(xt)
        else:
            t, _ = time_keras(X, y, 1)
            predict = None
        fit.append(t)
        for _ in range(3 if predict else 0):
            t0 = time.perf_counter()
            predict()
            pred.append(time.perf_counter() - t0)
    return fit, pred


def _isolated(side, args):
    """One side in a fresh process (nothing else loaded, no other thread pool)."""
    import json
    import subprocess
    import sys
    cmd = [sys.executable, __file__, "--side", side, "--epochs", str(args.epochs),
           "--repeats", "1", "--threads", str(args.threads)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def _table(title, fit, pred):
    print(f"\n{title}\n")
    print("| task | fastlstm | PyTorch | PyTorch / fastlstm | Keras (torch backend) | "
          "Keras / fastlstm |")
    print("| --- | --- | --- | --- | --- | --- |")
    med = {k: statistics.median(v) if v else None for k, v in fit.items()}
    f = med["fastlstm"]
    torch_t = f"{med['torch']:.3f} s | {med['torch'] / f:.1f}x" if med["torch"] else "- | -"
    keras_t = f"{med['keras']:.2f} s | {med['keras'] / f:.0f}x" if med["keras"] else "- | -"
    print(f"| one training epoch | {f:.3f} s | {torch_t} | {keras_t} |")
    pm = {k: statistics.median(v) if v else None for k, v in pred.items()}
    p = pm["fastlstm"]
    torch_p = f"{pm['torch'] * 1e3:.1f} ms | {pm['torch'] / p:.1f}x" if pm["torch"] else "- | -"
    print(f"| predict 10,000 windows | {p * 1e3:.1f} ms | {torch_p} | - | - |")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=2, help="epochs per timed fit")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--keras", action="store_true", help="also time Keras (slow)")
    p.add_argument("--side", choices=["fastlstm", "torch", "keras"],
                   help=argparse.SUPPRESS)  # one side, its times as JSON (for --isolated runs)
    p.add_argument("--mode", choices=["both", "isolated", "together"], default="both",
                   help="each side in its own fresh process, all alternating in this one, or "
                        "both (default)")
    args = p.parse_args(argv)
    from threadpoolctl import threadpool_limits

    threadpool_limits(args.threads)
    X, y = energy_windows()
    if args.side:
        import json
        if args.side == "fastlstm":
            import fastlstm
            fastlstm.set_num_threads(args.threads)
        print(json.dumps(run_side(args.side, X, y, args.epochs, args.threads, args.repeats)))
        return
    import platform
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                if line.startswith("model name")), platform.processor()) \
        if platform.system() == "Linux" else platform.processor()
    import fastlstm
    print(f"# {cpu}; fastlstm ISA path {fastlstm.config()['isa']}; {args.threads} threads; "
          f"energy windows {X.shape}, epochs of {int(len(X) * 0.8)} training windows in "
          "batches of 32; medians")
    sides = ["fastlstm", "torch"] + (["keras"] if args.keras else [])
    try:
        import torch  # noqa: F401
    except ImportError:
        sides.remove("torch")
    def collect(run):
        """Times of every side over the repeats (Keras once: it is slow), from run(side)."""
        fit = {k: [] for k in ("fastlstm", "torch", "keras")}
        pred = {k: [] for k in ("fastlstm", "torch", "keras")}
        for rep in range(args.repeats):
            for side in sides:
                if side == "keras" and rep:
                    continue
                f, q = run(side)
                fit[side] += f
                pred[side] += q
        return fit, pred

    if args.mode in ("both", "isolated"):
        _table("Each side in its own fresh process:", *collect(lambda s: _isolated(s, args)))
    if args.mode in ("both", "together"):
        _table("All sides alternating in one process:", *collect(
            lambda s: run_side(s, X, y, args.epochs, args.threads, 1)))

if __name__ == "__main__":
    main()
