"""``fastlstm trace``: gate and state tables and heatmaps of an LSTM's forward pass."""

from __future__ import annotations

import os


def add_parser(sub):
    tr = sub.add_parser(
        "trace", help="gate and state tables and heatmaps of an LSTM's forward pass",
        description="Without --model: notebook 004's scalar LSTM over [1, 2, 3] with its "
                    "gate table (the same numbers). With --model FILE.npz (saved by "
                    "fastlstm.save: an LSTM, LSTMLayer or LSTMRegressor) and --input "
                    "FILE (.npy or .csv, one row per step): the model's trace. Writes "
                    "trace.png into --out.")
    tr.add_argument("--model", help="a model saved with fastlstm.save (with --input)")
    tr.add_argument("--input", help="the sequence: .npy (T, I) or (T,), or .csv with one row "
                                    "per step (a first row that is not all numbers is taken "
                                    "as the header)")
    tr.add_argument("--out", default="fastlstm-trace",
                    help="folder for trace.png (default ./fastlstm-trace)")
    tr.add_argument("--no-plot", action="store_true", help="do not write trace.png")

    tr.set_defaults(run=run, check=check)


def check(parser, args):
    """--model and --input go together (argument errors exit 2, before any work)."""
    if (args.model is None) != (args.input is None):
        parser.error("trace: --model and --input go together (a saved model and the "
                     "sequence to trace), or neither (notebook 004's example)")


def read_sequence(path):
    """A (T, I) or (T,) sequence from .npy, or from a CSV of numbers with or without a header
    row (a first row that is not all numbers is the header)."""
    import numpy as np

    if path.endswith(".npy"):
        try:
            x = np.load(path, allow_pickle=False)
        except (ValueError, OSError) as exc:
            raise ValueError(f"{path}: not a readable .npy array ({exc})") from None
        return x
    with open(path, encoding="utf-8-sig") as f:
        first = f.readline()
    try:
        [float(cell) for cell in first.split(",")]
        header = 0
    except ValueError:
        header = 1
    try:
        x = np.loadtxt(path, delimiter=",", skiprows=header, ndmin=2)
    except (ValueError, OSError) as exc:
        raise ValueError(f"{path}: expected a CSV of numbers (with or without a header row) "
                         f"({exc})") from None
    if x.size == 0:
        raise ValueError(f"{path}: no rows of numbers")
    return x


def run(args):
    import numpy as np

    from ..tracing import trace

    if args.model is None:
        from ..layer import LSTMLayer
        from ..reference import lstm_process

        print("Notebook 004: a scalar LSTM (one input, one unit) over the sequence [1, 2, 3]")
        params = {"forget": (0.5, 0.1, 0), "input": (0.6, 0.2, 0), "cell": (0.7, 0.3, 0),
                  "output": (0.8, 0.4, 0)}
        order = ("input", "forget", "cell", "output")  # LSTMLayer's rows i, f, g, o
        model = LSTMLayer(1, 1, dtype=np.float64)
        model.load_state_dict({
            "weight_ih_l0": np.array([[params[g][0]] for g in order], float),
            "weight_hh_l0": np.array([[params[g][1]] for g in order], float),
            "bias_ih_l0": np.array([params[g][2] for g in order], float),
            "bias_hh_l0": np.zeros(4)})
        result = trace(model, np.array([[1.0], [2.0], [3.0]]))
        print()
        for t in range(result.steps):
            print(f"STEP {t + 1}:")
            for label, value in (("Forget Gate", result.forget), ("Input Gate", result.input),
                                 ("Candidate Cell", result.candidate),
                                 ("Cell State", result.cell), ("Output Gate", result.output),
                                 ("Hidden State", result.hidden)):
                print(f"  {label}: {value[t, 0]:.4f}")
            print()
        print(f"Estimated Future Value: {4 * result.hidden[-1, 0]:.4f}")
        _, ref_last = lstm_process([1, 2, 3], params)
        print(f"(the NumPy reference of the notebook gives {4 * ref_last:.4f})")
        title = "Notebook 004: scalar LSTM over [1, 2, 3]"
    else:
        from ..interop.npz import load
        from ..layer import LSTMLayer
        from ..lstm import LSTM

        obj = load(args.model)
        model = obj if isinstance(obj, (LSTM, LSTMLayer)) else getattr(obj, "lstm_", None)
        if model is None:
            raise ValueError(f"{args.model}: holds a {type(obj).__name__}, which has no LSTM")
        x = read_sequence(args.input)
        if x.ndim == 1:
            x = x[:, None]
        if getattr(obj, "lstm_", None) is model:  # a regressor: its own standardization
            x = (x - obj.x_mean_) / obj.x_scale_
        expected = model.input_size
        if x.ndim != 2 or x.shape[1] != expected:
            raise ValueError(f"{args.input}: expected a sequence of shape (T, {expected}), got "
                             f"{x.shape}")
        result = trace(model, x)
        result.table()
        title = f"trace of {os.path.basename(args.model)}"
    if not args.no_plot:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            print("matplotlib is not installed: no trace.png (pip install 'fastlstm[plot]')")
            return 0
        os.makedirs(args.out, exist_ok=True)
        path = os.path.join(args.out, "trace.png")
        result.plot(path, title=title)
        print(f"Wrote {path}")
    return 0
