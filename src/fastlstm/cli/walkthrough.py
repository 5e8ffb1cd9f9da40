"""``fastlstm walkthrough``: notebook 000 as a program.

The notebook's weather data (10 days of temperature, humidity and wind speed; power consumption
as the target, with noise drawn after ``np.random.seed(42)``), windows of 2 days, one LSTM with
4 units whose states persist from window to window, the gate and state tables of every step,
the prediction of each window, MSE/MAE and the state norms. Its random draws are replayed in
the notebook's order, so the numbers are the notebook's.

The notebook's weights ``W_f, W_i, W_c, W_o`` (4, 7) act on ``[x_t, h_{t-1}]``; here they are
converted, not changed: ``weight_ih`` is their first 3 columns, ``weight_hh`` the last 4, stacked
in the gate order i, f, g, o of :class:`fastlstm.LSTMLayer`, which runs the steps in C.
"""

from __future__ import annotations

import numpy as np

from .._tables import grid
from ..layer import LSTMLayer
from ..tracing import trace

__all__ = ["notebook_setup", "run_walkthrough"]

FEATURES = ("Temperature", "Humidity", "Wind Speed")
UNITS = ("°C", "%", " km/h")


def notebook_setup(seed=42):
    """The notebook's data and weights, drawn in its order.

    Returns
    -------
    dict with ``X`` (10, 3), ``y`` (10,), ``X_sequences`` (8, 2, 3), ``y_sequences`` (8,),
    ``W`` (dict of ``W_f, W_i, W_c, W_o`` (4, 7) on ``[x, h]``, ``W_y`` (1, 4)) and zero biases.
    """
    rng_state = np.random.get_state()
    try:
        np.random.seed(seed)
        temperature = np.array([18.2, 19.5, 20.1, 22.4, 23.8, 25.0, 23.2, 21.5, 19.8, 17.5])
        humidity = np.array([65.2, 62.8, 58.5, 55.0, 45.2, 42.1, 48.5, 52.3, 60.5, 67.8])
        wind_speed = np.array([5.2, 6.8, 8.5, 10.2, 12.5, 14.8, 13.2, 11.5, 9.2, 6.5])
        X = np.column_stack((temperature, humidity, wind_speed))
        y = 2.5 * temperature - 0.5 * humidity + 1.2 * wind_speed + np.random.normal(0, 5, 10)
        n_features, n_hidden, n_output = 3, 4, 1
        W = {}
        for name in ("W_f", "W_i", "W_c", "W_o"):
            W[name] = np.random.randn(n_hidden, n_features + n_hidden) * 0.01
        W["W_y"] = np.random.randn(n_output, n_hidden) * 0.01
    finally:
        np.random.set_state(rng_state)
    lookback = 2
    X_seq = np.stack([X[i:i + lookback] for i in range(len(X) - lookback)])
    y_seq = y[lookback:]
    return {"X": X, "y": y, "X_sequences": X_seq, "y_sequences": y_seq, "W": W,
            "b_y": np.zeros(n_output)}


def notebook_layer(W):
    """An LSTMLayer computing the notebook's cell: ``[x, h]`` weights split into
    ``weight_ih`` / ``weight_hh``, rows in gate order i, f, g, o, zero biases."""
    I = 3  # noqa: E741
    blocks = [W["W_i"], W["W_f"], W["W_c"], W["W_o"]]
    layer = LSTMLayer(I, W["W_f"].shape[0], dtype=np.float64)
    layer.load_state_dict({
        "weight_ih_l0": np.concatenate([b[:, :I] for b in blocks]),
        "weight_hh_l0": np.concatenate([b[:, I:] for b in blocks]),
        "bias_ih_l0": np.zeros(4 * layer.hidden_size),
        "bias_hh_l0": np.zeros(4 * layer.hidden_size)})
    return layer


def run_walkthrough(out=print):
    """Print the walkthrough; returns ``(predictions, mse, mae, norms)`` with ``norms`` the
    (day, cell norm, hidden norm) rows."""
    setup = notebook_setup()
    X_seq, y_seq, W = setup["X_sequences"], setup["y_sequences"], setup["W"]
    layer = notebook_layer(W)
    H = layer.hidden_size
    h_t, c_t = np.zeros(H), np.zeros(H)
    rule = "=" * 80
    out(rule)
    out("LSTM FORWARD PASS WITH STATE PERSISTENCE ACROSS SEQUENCES")
    out(rule)
    out(f"Processing {len(X_seq)} sequences with lookback=2")
    out(f"Initial states: h_0={h_t}, C_0={c_t}")
    out(rule)
    predictions, norms = [], []
    for s, sequence in enumerate(X_seq):
        out(f"\n{'=' * 30} SEQUENCE {s + 1} {'=' * 30}")
        out(f"Days {s + 1}-{s + 2} → Predicting Day {s + 3}")
        tr = trace(layer, sequence, state=(h_t[None], c_t[None]))
        for t in range(tr.steps):
            x_t = tr.inputs[t]
            day = s + t + 1
            out(f"\n--- Time step {t + 1} (Day {day}) ---")
            out("Input Features:")
            out(grid([[n, f"{v:.2f}{u}"] for n, v, u in zip(FEATURES, x_t, UNITS)],
                     ["Feature", "Value"]))
            out("\nGate Values:")
            out(grid([["Forget Gate (f_t)", f"{tr.forget[t]}"],
                      ["Input Gate (i_t)", f"{tr.input[t]}"],
                      ["Cell Candidate (c_tilde)", f"{tr.candidate[t]}"],
                      ["Output Gate (o_t)", f"{tr.output[t]}"]], ["Gate", "Values"]))
            out("\nState Updates:")
            c_prev, h_prev = tr.cell_prev[t], tr.hidden_prev[t]
            out(grid([["Previous Cell State", f"{c_prev}"],
                      ["New Cell State", f"{tr.cell[t]}"],
                      ["Change in Cell State", f"{tr.cell[t] - c_prev}"],
                      ["Previous Hidden State", f"{h_prev}"],
                      ["New Hidden State", f"{tr.hidden[t]}"],
                      ["Change in Hidden State", f"{tr.hidden[t] - h_prev}"]],
                     ["State", "Values"]))
            norms.append((day, float(tr.cell_norm[t]), float(tr.hidden_norm[t])))
        h_t, c_t = tr.hidden[-1], tr.cell[-1]
        y_pred = float((W["W_y"] @ h_t + setup["b_y"])[0])
        predictions.append(y_pred)
        out(f"\n--- Prediction for Day {s + 3} ---")
        out(grid([["Predicted Power Consumption", f"{y_pred:.2f} kWh"],
                  ["Actual Power Consumption", f"{y_seq[s]:.2f} kWh"],
                  ["Prediction Error", f"{y_pred - y_seq[s]:.2f} kWh"]], ["Metric", "Value"]))
        out(f"\nFinal states after sequence {s + 1}:")
        out(grid([["Cell State (C_t)", f"{c_t}"], ["Hidden State (h_t)", f"{h_t}"]],
                 ["State", "Values"]))
        if s < len(X_seq) - 1:
            out("\n→ These states will be used as initial states for the next sequence")
    predictions = np.array(predictions)
    mse = float(np.mean((predictions - y_seq) ** 2))
    mae = float(np.mean(np.abs(predictions - y_seq)))
    out("\n" + rule)
    out("OVERALL PREDICTION PERFORMANCE")
    out(rule)
    out(grid([["Mean Squared Error", f"{mse:.4f}"], ["Mean Absolute Error", f"{mae:.4f}"]],
             ["Metric", "Value"]))
    out("\n" + rule)
    out("SUMMARY OF STATE EVOLUTION ACROSS ALL SEQUENCES")
    out(rule)
    out(grid([[d, f"{c:.4f}", f"{h:.4f}"] for d, c, h in norms],
             ["Day", "Cell State Norm", "Hidden State Norm"]))
    out("\nNote: The norm values show how the 'magnitude' of the states changes over time")
    out("Higher values indicate more information is being stored in the states")
    return predictions, mse, mae, norms


def add_parser(sub):
    p = sub.add_parser(
        "walkthrough", help="notebook 000: an LSTM step by step on weather data",
        description="Notebook 000 as a program: 10 days of weather data, windows of 2 days, "
                    "one LSTM with 4 units whose states persist across windows; prints the "
                    "inputs, gate values and state updates of every step (grid tables), the "
                    "predictions, MSE/MAE and the state norms. The notebook's numbers: its "
                    "random draws are replayed, its [x, h] weights converted.")
    p.set_defaults(run=run)


def run(args):
    run_walkthrough()
    return 0
