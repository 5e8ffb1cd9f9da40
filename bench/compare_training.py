"""Training and prediction speed of LSTMRegressor vs the same model in PyTorch (and Keras).

Seed 002's energy example: an hourly series over three years, windows of 24 hours,
``LSTM(50, activation='relu') + Dense(1)``, Adam, batch 32, validation split 0.2. Times one
training epoch (the mean over ``--epochs`` epochs, median over repeats) and ``predict`` on
10,000 windows, each side in this process, alternating. Run:

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


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=2, help="epochs per timed fit")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--keras", action="store_true", help="also time Keras (slow)")
    args = p.parse_args(argv)
    from threadpoolctl import threadpool_limits

    threadpool_limits(args.threads)
    X, y = energy_windows()
    print(f"# energy windows: {X.shape}, {args.threads} threads, epochs of "
          f"{int(len(X) * 0.8)} training windows in batches of 32")
    fit = {"fastlstm": [], "torch": [], "keras": []}
    pred = {"fastlstm": [], "torch": []}
    Xp = X[:10000]
    for rep in range(args.repeats):
        t, est = time_fastlstm(X, y, args.epochs)
        fit["fastlstm"].append(t)
        try:
            import torch
            t, model = time_torch(X, y, args.epochs, args.threads)
            fit["torch"].append(t)
        except ImportError:
            model = None
        if args.keras and rep == 0:
            try:
                fit["keras"].append(time_keras(X, y, 1)[0])
            except ImportError:
                pass
        for _ in range(3):
            t0 = time.perf_counter()
            est.predict(Xp)
            pred["fastlstm"].append(time.perf_counter() - t0)
            if model is not None:
                xt = torch.from_numpy(Xp)
                t0 = time.perf_counter()
                with torch.inference_mode():
                    model(xt)
                pred["torch"].append(time.perf_counter() - t0)
    print("| task | fastlstm | PyTorch | PyTorch / fastlstm | Keras (torch backend) |")
    print("| --- | --- | --- | --- | --- |")
    med = {k: statistics.median(v) if v else None for k, v in fit.items()}
    ratio = f"{med['torch'] / med['fastlstm']:.1f}x" if med["torch"] else "-"
    keras_t = f"{med['keras']:.2f} s" if med["keras"] else "-"
    torch_t = f"{med['torch']:.2f} s" if med["torch"] else "-"
    print(f"| one training epoch | {med['fastlstm']:.2f} s | {torch_t} | {ratio} | {keras_t} |")
    pm = {k: statistics.median(v) if v else None for k, v in pred.items()}
    ratio = f"{pm['torch'] / pm['fastlstm']:.1f}x" if pm["torch"] else "-"
    torch_p = f"{pm['torch'] * 1e3:.1f} ms" if pm["torch"] else "-"
    print(f"| predict 10,000 windows | {pm['fastlstm'] * 1e3:.1f} ms | {torch_p} | {ratio} | - |")


if __name__ == "__main__":
    main()
