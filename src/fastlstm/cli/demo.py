"""``fastlstm demo``: notebook 001's pattern example as a program, on the fast class.

It trains :class:`fastlstm.LSTM` on a noisy repeating sine pattern, prints the seed's epoch
lines, the final loss, the training time and the speed-up over the NumPy reference class
(measured on a few epochs in the same run, from the same initial weights, with the losses
checked equal), and writes the loss curve and the prediction plot (one-step and 30-step
recursive predictions) as PNG files.

Why the default pattern length is 12: the notebook's ``pattern_length=3`` samples ``sin`` at
0, pi and 2 pi, which are all zero, so its data is pure noise and the loss cannot fall. With 12
points per period there is a pattern to learn. ``--pattern-length 3`` reproduces the notebook.
"""

from __future__ import annotations

import contextlib
import copy
import io
import os
import time
from dataclasses import dataclass, field

import numpy as np

from .. import reference
from ..lstm import LSTM

DEFAULT_PATTERN_LENGTH = 12


@dataclass
class DemoResult:
    """What a demo run produced (returned for tests and for programmatic use)."""

    losses: list
    train_seconds: float
    fast_epoch_seconds: float
    reference_epoch_seconds: float
    one_step_predictions: np.ndarray
    extended_predictions: np.ndarray
    test_mse: float
    files: list = field(default_factory=list)

    @property
    def speedup(self):
        return self.reference_epoch_seconds / self.fast_epoch_seconds


def _time_epochs(model, X, y, epochs):
    """Seconds per epoch of model.train over `epochs` epochs in one call, and the losses."""
    start = time.perf_counter()
    losses = model.train(X, y, epochs=epochs)
    return (time.perf_counter() - start) / epochs, losses


def extended_forecast(model, seq, steps):
    """Seed 001's "extended predictions": slide the window, feeding back the last prediction."""
    _, outputs = model.forward(seq)
    predictions = [float(out[0][0]) for out in outputs]
    current = np.asarray(seq, dtype=float).copy()
    for _ in range(steps):
        current = np.append(current[1:], predictions[-1])
        _, new_outputs = model.forward(current)
        predictions.append(float(new_outputs[-1][0][0]))
    return np.array(predictions)


def run_demo(epochs=200, pattern_length=DEFAULT_PATTERN_LENGTH, out="fastlstm-demo", plot=True,
             seed=42, compare_epochs=3, total_samples=200, seq_length=10, hidden_size=10,
             learning_rate=0.01, print_fn=print):
    """Run the demo; returns a :class:`DemoResult`. Parameters mirror the command's options."""
    np.random.seed(seed)
    data = reference.generate_pattern_data(total_samples, pattern_length)
    X, y = reference.prepare_sequences(data, seq_length)
    train_size = int(len(X) * 0.8)
    X_train, X_test = X[:train_size], X[train_size:]
    y_train, y_test = y[:train_size], y[train_size:]

    print_fn("fastlstm demo: an LSTM learning a repeating pattern (notebook 001)")
    print_fn("=" * 60)
    print_fn(f"Pattern length: {pattern_length}"
             + ("  (the notebook's value: sin at 0, pi, 2 pi is all zeros, the data is noise)"
                if pattern_length == 3 else ""))
    print_fn(f"Sequence length: {seq_length}")
    print_fn(f"Training sequences: {len(X_train)}")
    print_fn(f"Testing sequences: {len(X_test)}")
    print_fn("-" * 60)

    lstm = LSTM(input_size=1, hidden_size=hidden_size, output_size=1,
                learning_rate=learning_rate)

    # Speed-up over the reference, from the same initial weights, before training.
    ref_epoch = fast_epoch = float("nan")
    if compare_epochs > 0:
        ref_model = reference.LSTM(1, hidden_size, 1, learning_rate)
        for name in ("Wf", "Wi", "Wc", "Wo", "Wy", "bf", "bi", "bc", "bo", "by"):
            setattr(ref_model, name, np.array(getattr(lstm, name), dtype=np.float64))
        probe = copy.deepcopy(lstm)
        probe.verbose = False
        with contextlib.redirect_stdout(io.StringIO()):
            ref_epoch, ref_losses = _time_epochs(ref_model, X_train, y_train, compare_epochs)
        # The fast class is timed over more epochs: one epoch is well under a millisecond.
        fast_runs = max(compare_epochs, 50)
        fast_epoch, fast_losses = _time_epochs(probe, X_train, y_train, fast_runs)
        gap = max(abs(a - b) / max(abs(b), 1e-300)
                  for a, b in zip(fast_losses[:compare_epochs], ref_losses))
        print_fn(f"Reference (NumPy) class: {ref_epoch * 1e3:.2f} ms per epoch "
                 f"(mean of {compare_epochs})")
        print_fn(f"fastlstm.LSTM:           {fast_epoch * 1e3:.3f} ms per epoch "
                 f"(mean of {fast_runs})")
        print_fn(f"Speed-up: {ref_epoch / fast_epoch:.0f}x  (same losses: largest relative "
                 f"difference {gap:.1e})")
        print_fn("-" * 60)

    start = time.perf_counter()
    if print_fn is print:
        losses = lstm.train(X_train, y_train, epochs=epochs)
    else:  # route the seed's epoch lines through print_fn
        with contextlib.redirect_stdout(io.StringIO()) as captured:
            losses = lstm.train(X_train, y_train, epochs=epochs)
        for line in captured.getvalue().splitlines():
            print_fn(line)
    train_seconds = time.perf_counter() - start
    print_fn("-" * 60)
    if losses:
        print_fn(f"Final loss: {losses[-1]:.6f}")
    print_fn(f"Training time: {train_seconds:.3f} s for {epochs} epochs "
             f"({train_seconds / max(epochs, 1) * 1e3:.3f} ms per epoch)")

    test_seq, actual_future = X_test[0], y_test[0]
    extended = extended_forecast(lstm, test_seq, 30)
    one_step = extended[:seq_length]
    test_mse = float(np.mean((one_step - np.asarray(actual_future)) ** 2))
    print_fn(f"One-step prediction MSE on the first test sequence: {test_mse:.6f}")

    files = []
    if plot:
        files = _plots(out, data, losses, test_seq, actual_future, one_step, extended,
                       train_size, seq_length, pattern_length, total_samples, print_fn)
    return DemoResult(losses, train_seconds, fast_epoch, ref_epoch, one_step, extended,
                      test_mse, files)


def _plots(out, data, losses, test_seq, actual_future, one_step, extended, train_size,
           seq_length, pattern_length, total_samples, print_fn):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print_fn("Plots skipped: matplotlib is not installed (pip install 'fastlstm[plot]').")
        return []
    os.makedirs(out, exist_ok=True)
    loss_path = os.path.join(out, "loss.png")
    fig, ax = plt.subplots(figsize=(10, 5))
    ax.plot(losses)
    ax.set_title("LSTM Training Loss")
    ax.set_xlabel("Epoch")
    ax.set_ylabel("Mean Squared Error")
    ax.grid(True)
    fig.savefig(loss_path, dpi=100, bbox_inches="tight")
    plt.close(fig)

    pred_path = os.path.join(out, "predictions.png")
    fig, ax = plt.subplots(figsize=(12, 6))
    ax.plot(range(total_samples), data, "g-", alpha=0.3, label="Full Pattern")
    start = train_size + seq_length - 1
    ax.plot(range(start, start + len(test_seq)), test_seq, "b-", linewidth=2,
            label="Test Sequence")
    ax.plot(range(start + 1, start + 1 + len(actual_future)), actual_future, "k-", linewidth=2,
            label="Actual Future")
    ax.plot(range(start + 1, start + 1 + len(one_step)), one_step, "r--", linewidth=2,
            label="One-step Predictions")
    ax.plot(range(start + 1, start + 1 + len(extended)), extended, "m:", linewidth=2,
            label="Extended Predictions")
    for i in range(0, total_samples, pattern_length):
        ax.axvline(x=i, color="g", alpha=0.2, linestyle=":")
    ax.set_title("LSTM Pattern Prediction")
    ax.set_xlabel("Time Step")
    ax.set_ylabel("Value")
    ax.legend()
    ax.grid(True)
    fig.savefig(pred_path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    print_fn(f"Wrote {loss_path} and {pred_path}")
    return [loss_path, pred_path]


def add_parser(sub):
    from ._args import pattern_length, positive_int
    demo = sub.add_parser(
        "demo", help="train the notebook's pattern LSTM on the fast kernels",
        description="Notebook 001's pattern example on fastlstm.LSTM: trains, prints the epoch "
                    "lines, the training time and the speed-up over the NumPy reference class, "
                    "and writes loss.png and predictions.png.")
    demo.add_argument("--epochs", type=positive_int, default=200,
                      help="training epochs (default 200)")
    demo.add_argument("--out", default="fastlstm-demo",
                      help="folder for the PNG plots (default ./fastlstm-demo)")
    demo.add_argument("--no-plot", action="store_true", help="do not write plots")
    demo.add_argument("--pattern-length", type=pattern_length, default=DEFAULT_PATTERN_LENGTH,
                      help=f"points per period of the sine pattern (default "
                           f"{DEFAULT_PATTERN_LENGTH}; 3 is the notebook's, which is all zeros)")
    demo.add_argument("--seed", type=positive_int, default=42, help="np.random seed (42)")
    demo.add_argument("--compare-epochs", type=positive_int, default=3,
                      help="epochs of the reference class timed for the speed-up (default 3; "
                           "0 skips it)")
    demo.set_defaults(run=run)


def run(args):
    run_demo(epochs=args.epochs, pattern_length=args.pattern_length, out=args.out,
             plot=not args.no_plot, seed=args.seed, compare_epochs=args.compare_epochs)
    return 0
