"""fastlstm.LSTM (C kernels) against fastlstm.reference.LSTM (notebook 001's NumPy class).

The drop-in promise: the same ``np.random.seed`` gives the same weights; forward, the gate/state
lists, backward's loss and update, ``train``'s losses, printed lines and weights agree to 1e-12
(relative) in float64 and to float32 tolerance with ``dtype=np.float32``; the notebook's demo
runs unchanged; training that diverges stops with NonFiniteLossError and finite weights.
"""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest

import fastlstm
from fastlstm import reference

from conftest import (PARAM_NAMES, STATE_NAMES, assert_close, assert_params_close,
                      make_sequences, quiet, snapshot)

GRID_I = (1, 3)
GRID_H = (1, 4, 10)
GRID_O = (1, 2)
GRID_SEEDS = (0, 17)
LENGTHS = (1, 2, 7)  # T = 1 included on purpose: no recurrence, the forget gate has no effect


def pair(I, H, O, seed, lr=0.01, **fast_kw):
    """(fast, reference) built after the same np.random.seed."""
    np.random.seed(seed)
    fast = fastlstm.LSTM(I, H, O, learning_rate=lr, **fast_kw)
    np.random.seed(seed)
    ref = reference.LSTM(I, H, O, learning_rate=lr)
    return fast, ref


def seed_style(seq):
    """A sequence in the forms notebook code passes: a 1-D array of scalars for one feature
    (the demo's windows), a list of (I,) vectors otherwise."""
    seq = np.asarray(seq)
    return seq[:, 0].copy() if seq.shape[1] == 1 else list(seq)


def compare_forward(fast, ref, inputs, dtype=np.float64, label=""):
    h_fast, y_fast = fast.forward(inputs)
    h_ref, y_ref = ref.forward(inputs)
    T, H, O = len(h_ref), ref.hidden_size, ref.output_size
    assert isinstance(h_fast, list) and isinstance(y_fast, list)
    assert len(h_fast) == len(y_fast) == T
    for t in range(T):
        assert isinstance(h_fast[t], np.ndarray) and h_fast[t].shape == (H, 1)
        assert isinstance(y_fast[t], np.ndarray) and y_fast[t].shape == (O, 1)
        assert h_fast[t].dtype == y_fast[t].dtype == dtype
        assert_close(f"{label}h_states[{t}] (returned)", h_fast[t], h_ref[t], dtype)
        assert_close(f"{label}outputs[{t}]", y_fast[t], y_ref[t], dtype)
    for name in STATE_NAMES:
        states = getattr(fast, name)
        assert isinstance(states, list) and len(states) == T, name
        for t in range(T):
            assert states[t].shape == (H, 1), f"{name}[{t}] has shape {states[t].shape}"
            assert_close(f"{label}{name}[{t}]", states[t], getattr(ref, name)[t], dtype)
    return h_fast, y_fast


# ------------------------------------------------------------------------------------------------
# Initial weights
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("I,H,O", [(1, 10, 1), (3, 4, 2), (7, 5, 3)])
@pytest.mark.parametrize("seed", [0, 42, 1234])
def test_same_seed_gives_identical_initial_weights(I, H, O, seed):
    fast, ref = pair(I, H, O, seed)
    for name in PARAM_NAMES:
        assert getattr(fast, name).shape == getattr(ref, name).shape, name
        assert np.array_equal(getattr(fast, name), getattr(ref, name)), name
    # Same number of draws: the generator is left in the same state.
    np.random.seed(seed)
    fastlstm.LSTM(I, H, O)
    after_fast = np.random.random()
    np.random.seed(seed)
    reference.LSTM(I, H, O)
    assert after_fast == np.random.random()


def test_float32_initial_weights_are_the_float64_draws_cast():
    fast, ref = pair(3, 4, 2, seed=5, dtype=np.float32)
    for name in PARAM_NAMES:
        assert getattr(fast, name).dtype == np.float32, name
        assert np.array_equal(getattr(fast, name), getattr(ref, name).astype(np.float32)), name


def test_constructor_keeps_the_seed_attributes():
    fast = fastlstm.LSTM(3, 4, 2, learning_rate=0.05)
    assert (fast.input_size, fast.hidden_size, fast.output_size) == (3, 4, 2)
    assert fast.learning_rate == 0.05
    x = np.linspace(-30, 30, 13)
    assert_close("sigmoid", fast.sigmoid(x), reference.LSTM.sigmoid(None, x))


# ------------------------------------------------------------------------------------------------
# The float64 grid: forward, states, backward, train
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", GRID_SEEDS)
@pytest.mark.parametrize("O", GRID_O)
@pytest.mark.parametrize("H", GRID_H)
@pytest.mark.parametrize("I", GRID_I)
def test_float64_parity_grid(I, H, O, seed, capsys):
    fast, ref = pair(I, H, O, seed)
    rng = np.random.default_rng(1000 + seed)
    X, y = make_sequences(rng, I, O, LENGTHS)

    # forward + backward, sequence by sequence: outputs, states, loss, updated weights.
    for k, (inputs, targets) in enumerate(zip(X, y)):
        compare_forward(fast, ref, seed_style(inputs), label=f"seq {k}: ")
        loss_fast = fast.backward(seed_style(targets))
        loss_ref = ref.backward(seed_style(targets))
        assert isinstance(loss_fast, float)
        assert_close(f"seq {k}: backward loss", loss_fast, loss_ref)
        assert_params_close(fast, ref, prefix=f"after backward {k}: ")

    # train: several epochs over sequences of different lengths, printed lines included.
    capsys.readouterr()
    losses_fast = fast.train([seed_style(s) for s in X], [seed_style(s) for s in y], epochs=12)
    out_fast = capsys.readouterr().out
    losses_ref = ref.train([seed_style(s) for s in X], [seed_style(s) for s in y], epochs=12)
    out_ref = capsys.readouterr().out
    assert isinstance(losses_fast, list) and len(losses_fast) == 12
    assert all(isinstance(v, float) for v in losses_fast)
    assert_close("train losses", losses_fast, losses_ref)
    assert out_fast == out_ref
    assert out_ref.count("\n") == 2  # epochs 0 and 10
    assert_params_close(fast, ref, prefix="after train: ")

    # forward after training still agrees.
    compare_forward(fast, ref, seed_style(X[-1]), label="after train: ")


def test_parity_on_every_isa_path(isa):
    """I=32, H=64 on every ISA path this CPU has: several register tiles and k blocks in the
    products; every path must match the reference."""
    I, H, O = 32, 64, 3
    fast, ref = pair(I, H, O, seed=99, lr=0.05, verbose=False)
    X, y = make_sequences(np.random.default_rng(99), I, O, (12, 30))
    if True:
        compare_forward(fast, ref, X[1])
        assert_close("backward loss", fast.backward(y[1]), ref.backward(list(y[1])))
        assert_params_close(fast, ref, prefix="after backward: ")
        losses_fast = fast.train(X, y, epochs=2)
        with quiet():
            losses_ref = ref.train(X, y, epochs=2)
        assert_close("train losses", losses_fast, losses_ref)
        assert_params_close(fast, ref, prefix="after train: ")


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("I, H, O", [(1, 1, 1), (1, 2, 1), (1, 3, 1), (1, 10, 1), (2, 11, 1),
                                     (3, 17, 2), (1, 20, 1), (2, 32, 1), (1, 33, 1),
                                     (64, 32, 1)])
def test_train_on_the_small_model_path_on_every_isa_path(isa, I, H, O, dtype):
    """LSTM.train up to 32 units (and H + I <= 96) runs fl_seed_small.h, whose layout of the
    units in vectors differs per ISA path and width: whole blocks of 2 to 16 units, and the
    units past them either packed with all four gates in one or two vectors (lanes of both
    activations in one vector) or padded to a vector a gate. These sizes give every kind on
    every path; 33 units and H + I = 96 sit on both sides of the limits. Every path matches the
    reference, and so do the states the class exposes after train (the last sequence's
    forward)."""
    fast, ref = pair(I, H, O, seed=7, lr=0.05, verbose=False, dtype=dtype)
    X, y = make_sequences(np.random.default_rng(7), I, O, (3, 15))
    losses_fast = fast.train(X, y, epochs=3)
    with quiet():
        losses_ref = ref.train(X, y, epochs=3)
    assert_close("train losses", losses_fast, losses_ref, dtype)
    assert_params_close(fast, ref, dtype, prefix="after train: ")
    for name in ("h_states", "c_states", "i_gates", "f_gates", "c_tildes", "o_gates"):
        assert_close(name, np.array(getattr(fast, name), dtype=np.float64),
                     np.array(getattr(ref, name)), dtype)


def test_seed_sigmoid_clip_at_15_is_kept():
    """Preactivations beyond +-15: the seed's clipped sigmoid gives 1/(1+e^15) ~ 3.06e-7 where
    the exact sigmoid would give ~1e-13; the fast class must keep the seed's value."""
    fast, ref = pair(2, 3, 2, seed=13)
    for model in (fast, ref):
        model.Wf = 2.0 * np.sign(model.Wf)
        model.Wi = 2.0 * np.sign(model.Wi)
        model.Wo = 2.0 * np.sign(model.Wo)
    inputs = [np.array([15.0, 10.0]), np.array([-12.0, -9.0]), np.array([20.0, -20.0])]
    compare_forward(fast, ref, inputs)
    assert np.min(np.concatenate(ref.f_gates + ref.i_gates + ref.o_gates)) == pytest.approx(
        1 / (1 + np.exp(15.0)), rel=1e-12), "no preactivation reached the clip"
    targets = [np.array([0.5, -0.5])] * 3
    assert_close("backward loss", fast.backward(targets), ref.backward(targets))
    assert_params_close(fast, ref)


@pytest.mark.parametrize("form", ["list of (I,)", "list of (I,1)", "array (T,I)", "array (T,I,1)",
                                  "list of lists"])
def test_forward_accepts_the_seed_input_forms(form):
    fast, ref = pair(3, 4, 2, seed=8)
    data = np.random.default_rng(8).normal(size=(5, 3))
    inputs = {"list of (I,)": list(data), "list of (I,1)": [r.reshape(3, 1) for r in data],
              "array (T,I)": data, "array (T,I,1)": data[:, :, None],
              "list of lists": data.tolist()}[form]
    compare_forward(fast, ref, inputs, label=f"{form}: ")
    targets = list(np.random.default_rng(9).normal(size=(5, 2, 1)))
    assert_close("backward loss", fast.backward(targets), ref.backward(targets))
    assert_params_close(fast, ref)


def test_scalar_input_list_for_one_feature():
    fast, ref = pair(1, 10, 1, seed=3)
    inputs = [0.1, -0.4, 0.25, 0.9]
    compare_forward(fast, ref, inputs)
    targets = [0.2, 0.3, -0.1, 0.0]
    assert_close("backward loss", fast.backward(targets), ref.backward(targets))
    assert_params_close(fast, ref)


def test_train_with_sequences_of_different_lengths_in_one_call(capsys):
    fast, ref = pair(2, 5, 2, seed=11, lr=0.05)
    rng = np.random.default_rng(11)
    X, y = make_sequences(rng, 2, 2, (9, 1, 4, 13, 2))
    losses_fast = fast.train(X, y, epochs=21)
    losses_ref = ref.train(X, y, epochs=21)
    out = capsys.readouterr().out.splitlines()
    assert out[:3] == out[3:] and len(out) == 6
    assert_close("train losses", losses_fast, losses_ref)
    assert_params_close(fast, ref)


def test_train_zero_epochs_changes_nothing(capsys):
    fast, ref = pair(2, 3, 1, seed=2)
    X, y = make_sequences(np.random.default_rng(2), 2, 1, (4,))
    assert fast.train(X, y, epochs=0) == ref.train(X, y, epochs=0) == []
    assert capsys.readouterr().out == ""
    assert_params_close(fast, ref, rtol=0, atol=0)


def test_verbose_false_prints_nothing_and_trains_the_same(capsys):
    fast, ref = pair(2, 3, 2, seed=4)
    quiet_fast = copy.deepcopy(fast)
    quiet_fast.verbose = False
    X, y = make_sequences(np.random.default_rng(4), 2, 2, (3, 5))
    losses = quiet_fast.train(X, y, epochs=11)
    assert capsys.readouterr().out == ""
    assert_close("train losses", losses, ref.train(X, y, epochs=11))
    assert_params_close(quiet_fast, ref)


def test_nan_input_propagates_like_the_reference():
    fast, ref = pair(2, 3, 2, seed=6)
    inputs = [np.array([0.5, -0.2]), np.array([np.nan, 1.0]), np.array([0.3, 0.3])]
    h_fast, y_fast = fast.forward(inputs)
    h_ref, y_ref = ref.forward(inputs)
    assert np.all(np.isfinite(h_fast[0])) and np.all(np.isnan(y_fast[2]))
    for t in range(3):
        assert_close(f"h_states[{t}]", h_fast[t], h_ref[t])
        assert_close(f"outputs[{t}]", y_fast[t], y_ref[t])


# ------------------------------------------------------------------------------------------------
# float32
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("I,H,O", [(1, 10, 1), (3, 4, 2), (3, 1, 2)])
def test_float32_close_to_reference(I, H, O, capsys):
    fast, ref = pair(I, H, O, seed=21, dtype=np.float32)
    rng = np.random.default_rng(21)
    X, y = make_sequences(rng, I, O, LENGTHS)
    for k, (inputs, targets) in enumerate(zip(X, y)):
        compare_forward(fast, ref, seed_style(inputs), np.float32, label=f"float32 seq {k}: ")
        assert_close(f"float32 seq {k}: backward loss", fast.backward(targets),
                     ref.backward(targets), np.float32)
        for name in PARAM_NAMES:
            assert getattr(fast, name).dtype == np.float32, name
        assert_params_close(fast, ref, np.float32, prefix=f"float32 after backward {k}: ")
    losses_fast = fast.train(X, y, epochs=15)
    losses_ref = ref.train(X, y, epochs=15)
    assert_close("float32 train losses", losses_fast, losses_ref, np.float32)
    assert_params_close(fast, ref, np.float32, prefix="float32 after train: ")
    compare_forward(fast, ref, X[0], np.float32, label="float32 after train: ")


# ------------------------------------------------------------------------------------------------
# Clipping
# ------------------------------------------------------------------------------------------------

def reference_train_recording_gradients(ref, X, y, epochs):
    """The reference's train loop, recording max |update| / lr of every backward."""
    largest = 0.0
    for _ in range(epochs):
        for inputs, targets in zip(X, y):
            before = snapshot(ref)
            ref.forward(inputs)
            ref.backward(targets)
            after = snapshot(ref)
            for name in PARAM_NAMES:
                step = np.abs(before[name] - after[name]) / ref.learning_rate
                largest = max(largest, float(step.max()))
    return largest


def test_clip_none_equals_reference_when_clipping_is_inactive():
    fast, ref = pair(3, 6, 2, seed=31, lr=0.1, clip=None, verbose=False)
    assert fast.clip is None
    X, y = make_sequences(np.random.default_rng(31), 3, 2, (4, 6), scale=0.5)
    largest = reference_train_recording_gradients(ref, X, y, epochs=8)
    assert 0.05 < largest < 5, f"largest reference gradient {largest}: clipping not inactive"
    fast.train(X, y, epochs=8)
    assert_params_close(fast, ref)


def test_clipping_is_active_and_matches_reference():
    """Targets far from the outputs: gradients beyond 5 are clipped in both, and turning the
    clip off in the fast class changes the result."""
    fast, ref = pair(2, 4, 2, seed=32, lr=0.01, verbose=False)
    unclipped = copy.deepcopy(fast)
    unclipped.clip = None
    X, y = make_sequences(np.random.default_rng(32), 2, 2, (5, 3), scale=30.0)
    largest = reference_train_recording_gradients(ref, X, y, epochs=3)
    assert largest == pytest.approx(5.0, rel=1e-9), (
        f"largest reference gradient {largest}: the clip was not reached")
    fast.train(X, y, epochs=3)
    unclipped.train(X, y, epochs=3)
    assert_params_close(fast, ref)
    assert not np.allclose(unclipped.by, ref.by, rtol=1e-3), "clip=None had no effect"


def test_clip_zero_is_refused_or_freezes_the_weights():
    """clip bounds every gradient to [-clip, clip]: clip=0 either is refused or means no update
    (it must not silently mean 'no clipping')."""
    try:
        fast = fastlstm.LSTM(2, 3, 1, clip=0.0, verbose=False)
    except ValueError:
        return  # refusing clip=0 is a fine fix too
    before = snapshot(fast)
    fast.forward([[1.0, 2.0], [0.5, -1.0]])
    fast.backward([3.0, -3.0])
    for name in PARAM_NAMES:
        assert np.array_equal(getattr(fast, name), before[name]), (
            f"{name} changed although every gradient was clipped to [0, 0]")


# ------------------------------------------------------------------------------------------------
# The notebook's demo (seed 001, run_pattern_example), shortened
# ------------------------------------------------------------------------------------------------

def run_pattern_example(LSTM, plt, epochs):
    """Notebook 001's run_pattern_example, verbatim except: the class is a parameter, the
    epochs are fewer, and it returns what it computed (losses and both kinds of predictions)."""
    generate_pattern_data = reference.generate_pattern_data
    prepare_sequences = reference.prepare_sequences

    print("LSTM from Scratch: Learning a Repeating Pattern")
    print("=" * 50)

    # Generate data with a repeating pattern
    pattern_length = 3
    total_samples = 200
    data = generate_pattern_data(total_samples, pattern_length)

    # Prepare sequences
    seq_length = 10
    X, y = prepare_sequences(data, seq_length)

    # Split into train and test
    train_size = int(len(X) * 0.8)
    X_train, X_test = X[:train_size], X[train_size:]
    y_train, y_test = y[:train_size], y[train_size:]

    # Display information
    print(f"Pattern length: {pattern_length}")
    print(f"Sequence length: {seq_length}")
    print(f"Training sequences: {len(X_train)}")
    print(f"Testing sequences: {len(X_test)}")
    print("-" * 50)

    # Create and train LSTM
    lstm = LSTM(input_size=1, hidden_size=10, output_size=1, learning_rate=0.01)
    losses = lstm.train(X_train, y_train, epochs=epochs)

    # Plot training loss
    plt.figure(figsize=(10, 5))
    plt.plot(losses)
    plt.title('LSTM Training Loss')
    plt.xlabel('Epoch')
    plt.ylabel('Mean Squared Error')
    plt.grid(True)

    # Test with a sequence and predict future values
    test_seq = X_test[0]
    actual_future = y_test[0]

    # Initial prediction
    _, outputs = lstm.forward(test_seq)
    predictions = [out[0][0] for out in outputs]

    # Continue predicting beyond known data
    extended_predictions = predictions.copy()
    current_seq = test_seq.copy()

    for _ in range(30):  # Predict 30 steps into the future
        # Update sequence with the last prediction
        current_seq = np.append(current_seq[1:], extended_predictions[-1])

        # Get new prediction
        _, new_outputs = lstm.forward(current_seq)
        next_pred = new_outputs[-1][0][0]
        extended_predictions.append(next_pred)

    # Plot the results
    plt.figure(figsize=(12, 6))

    # Plot original full pattern for reference
    time_steps = range(total_samples)
    plt.plot(time_steps, data, 'g-', alpha=0.3, label='Full Pattern')

    # Plot the test sequence
    start_idx = train_size + seq_length - 1
    test_idxs = range(start_idx, start_idx + len(test_seq))
    plt.plot(test_idxs, test_seq, 'b-', linewidth=2, label='Test Sequence')

    # Plot actual future values
    future_idxs = range(start_idx + 1, start_idx + 1 + len(actual_future))
    plt.plot(future_idxs, actual_future, 'k-', linewidth=2, label='Actual Future')

    # Plot one-step predictions
    pred_idxs = range(start_idx + 1, start_idx + 1 + len(predictions))
    plt.plot(pred_idxs, predictions, 'r--', linewidth=2, label='One-step Predictions')

    # Plot extended predictions
    ext_pred_idxs = range(start_idx + 1, start_idx + 1 + len(extended_predictions))
    plt.plot(ext_pred_idxs, extended_predictions, 'm:', linewidth=2, label='Extended Predictions')

    plt.title('LSTM Pattern Prediction')
    plt.xlabel('Time Step')
    plt.ylabel('Value')
    plt.legend()
    plt.grid(True)

    # Highlight the pattern repeats
    for i in range(0, total_samples, pattern_length):
        plt.axvline(x=i, color='g', alpha=0.2, linestyle=':')

    plt.show()

    print("Pattern prediction demonstration complete!")
    print("-" * 50)
    print("Observations:")
    print("1. The LSTM learns to predict the repeating pattern")
    print("2. The model captures both the pattern and the slight noise in the data")
    print("3. For extended predictions, the LSTM maintains the pattern structure")
    print("   but may drift over time without correction")
    return losses, predictions, extended_predictions


@pytest.mark.filterwarnings("ignore:.*non-interactive.*:UserWarning")
@pytest.mark.slow  # the seed demo twice; .ci/run runs it after the default suite
def test_seed_demo_runs_unchanged_with_the_fast_class(capsys):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    epochs = 11
    try:
        np.random.seed(42)  # the notebook seeds once at the top
        fast_result = run_pattern_example(fastlstm.LSTM, plt, epochs)
        fast_out = capsys.readouterr().out
        np.random.seed(42)
        ref_result = run_pattern_example(reference.LSTM, plt, epochs)
        ref_out = capsys.readouterr().out
    finally:
        plt.close("all")
    assert fast_out == ref_out
    assert "Epoch 10, Loss:" in fast_out and "demonstration complete" in fast_out
    for name, fast_vals, ref_vals in zip(("losses", "predictions", "extended_predictions"),
                                         fast_result, ref_result):
        assert len(fast_vals) == len(ref_vals), name
        assert all(np.isscalar(v) for v in fast_vals), name
        assert_close(name, np.array(fast_vals, dtype=np.float64), np.array(ref_vals))


# ------------------------------------------------------------------------------------------------
# Diverging training: NonFiniteLossError, weights left finite
# ------------------------------------------------------------------------------------------------

def reference_train_until_nonfinite(ref, X, y, epochs):
    """The seed's train loop on the reference, stopped at the first backward whose loss or
    updated weights are not finite.

    Returns (completed epoch losses, weights before that backward, (epoch, sequence)), or
    (losses, None, None) when it never happens.
    """
    losses = []
    with np.errstate(all="ignore"):
        for epoch in range(epochs):
            total = 0.0
            for k, (inputs, targets) in enumerate(zip(X, y)):
                before = snapshot(ref)
                ref.forward(inputs)
                loss = ref.backward(targets)
                finite = np.isfinite(loss) and all(
                    np.all(np.isfinite(getattr(ref, name))) for name in PARAM_NAMES)
                if not finite:
                    return losses, before, (epoch, k)
                total += loss
            losses.append(total / len(X))
    return losses, None, None


def test_nonfinite_loss_at_first_sequence_leaves_initial_weights(capsys):
    fast, _ = pair(2, 3, 2, seed=40)
    initial = snapshot(fast)
    X = [np.ones((3, 2)), np.ones((2, 2))]
    y = [np.full((3, 2), 1e200), np.zeros((2, 2))]  # error^2 overflows
    with pytest.raises(fastlstm.NonFiniteLossError, match="not finite") as info:
        fast.train(X, y, epochs=5)
    assert isinstance(info.value, FloatingPointError)
    assert info.value.losses == []
    assert capsys.readouterr().out == ""
    for name in PARAM_NAMES:
        assert np.array_equal(getattr(fast, name), initial[name]), name


def test_huge_inputs_train_without_error():
    """Inputs of 1e300: the seed's clipped sigmoid and tanh saturate, nothing overflows."""
    fast, ref = pair(2, 3, 1, seed=41, verbose=False)
    X = [np.full((3, 2), 1e300), np.full((2, 2), -1e300)]
    y = [np.ones(3), np.zeros(2)]
    with np.errstate(all="ignore"):  # the reference's products overflow to inf before clipping
        losses_ref = reference_train_until_nonfinite(ref, X, y, epochs=4)[0]
    losses_fast = fast.train(X, y, epochs=4)
    assert all(np.isfinite(losses_fast))
    assert_close("losses", losses_fast, losses_ref)
    assert_params_close(fast, ref)


def test_huge_learning_rate_stops_with_last_weights():
    """lr = 1e300: the first clipped update moves the weights by up to 5e300 (finite); the
    next loss overflows. The weights must be those before that failing update."""
    lr = 1e300
    fast, ref = pair(2, 3, 2, seed=0, lr=lr, verbose=False)
    rng = np.random.default_rng(0)
    X, y = make_sequences(rng, 2, 2, (4, 4, 4))
    losses_ref, expected, where = reference_train_until_nonfinite(ref, X, y, epochs=10)
    assert where == (0, 1)
    with pytest.raises(fastlstm.NonFiniteLossError) as info:
        fast.train(X, y, epochs=10)
    assert info.value.losses == losses_ref == []
    for name in PARAM_NAMES:
        value = getattr(fast, name)
        assert np.all(np.isfinite(value)), f"{name} is not finite after NonFiniteLossError"
        assert_close(f"{name} (before the failing update)", value, expected[name])


def growing_loss_setup(lr):
    """A model whose loss grows until it overflows after some epochs, without NaN on the way.

    Wc = bc = 0 and Wy = 0 keep h_t = 0 and every gate gradient 0, so only ``by`` moves; a
    negative learning rate (gradient ascent, which the seed class accepts) drives it away from
    the targets by lr * 5 per update (clipped), until the squared error overflows."""
    fast, ref = pair(2, 3, 2, seed=50, lr=lr, verbose=True)
    for model in (fast, ref):
        model.Wc = np.zeros_like(model.Wc)
        model.bc = np.zeros_like(model.bc)
        model.Wy = np.zeros_like(model.Wy)
    X = [np.ones((4, 2))] * 3
    y = [np.ones((4, 2))] * 3
    return fast, ref, X, y


@pytest.mark.parametrize("lr", [-1e152, -1e152 / 3])
def test_loss_overflow_in_a_later_epoch(lr):
    fast, ref, X, y = growing_loss_setup(lr)
    with np.errstate(all="ignore"):
        losses_ref, expected, where = reference_train_until_nonfinite(ref, X, y, epochs=30)
    assert where is not None and where[0] >= 1, where
    fast.verbose = False
    with pytest.raises(fastlstm.NonFiniteLossError) as info:
        fast.train(X, y, epochs=30)
    assert len(info.value.losses) == where[0]
    assert_close("losses of the completed epochs", info.value.losses, losses_ref)
    for name in PARAM_NAMES:
        value = getattr(fast, name)
        assert np.all(np.isfinite(value)), f"{name} is not finite after NonFiniteLossError"
        assert_close(f"{name} (before the failing update)", value, expected[name])


def test_nonfinite_error_names_the_failing_epoch():
    fast, ref, X, y = growing_loss_setup(-1e152 / 3)
    with np.errstate(all="ignore"):
        _, _, (epoch, sequence) = reference_train_until_nonfinite(ref, X, y, epochs=30)
    assert epoch >= 10
    fast.verbose = False
    with pytest.raises(fastlstm.NonFiniteLossError) as info:
        fast.train(X, y, epochs=30)
    assert len(info.value.losses) == epoch
    assert f"epoch {epoch}, sequence {sequence}" in str(info.value)
    assert info.value.epochs_done == epoch


def test_epoch_lines_printed_before_a_later_failure(capsys):
    fast, ref, X, y = growing_loss_setup(-1e152)
    with np.errstate(all="ignore"):
        losses_ref, _, (epoch, _) = reference_train_until_nonfinite(ref, X, y, epochs=30)
    assert 1 <= epoch < 10
    with pytest.raises(fastlstm.NonFiniteLossError):
        fast.train(X, y, epochs=30)
    assert capsys.readouterr().out == f"Epoch 0, Loss: {losses_ref[0]:.6f}\n"


def test_nonfinite_gradient_stops_before_the_update():
    """lr = 1e150 with the clip at 5: the loss stays finite, but an overflow in the recurrence
    (inf * 0) makes a gradient NaN, which np.clip keeps; the seed would write NaN into the
    weights. The fast class must stop with the weights before that update, i.e. the reference's
    weights before its first update that is not finite."""
    fast, ref = pair(2, 3, 2, seed=0, lr=1e150, verbose=False)
    X, y = make_sequences(np.random.default_rng(0), 2, 2, (4, 4, 4))
    losses_ref, expected, where = reference_train_until_nonfinite(ref, X, y, epochs=30)
    assert where is not None
    probe = reference.LSTM(2, 3, 2, learning_rate=1e150)
    for name in PARAM_NAMES:
        setattr(probe, name, expected[name].copy())
    with np.errstate(all="ignore"):
        probe.forward(X[where[1]])
        assert np.isfinite(probe.backward(y[where[1]])), "the loss itself overflowed: wrong case"
    assert not all(np.all(np.isfinite(getattr(probe, n))) for n in PARAM_NAMES)
    with pytest.raises(fastlstm.NonFiniteLossError) as info:
        fast.train(X, y, epochs=30)
    assert info.value.losses == losses_ref
    for name in PARAM_NAMES:
        value = getattr(fast, name)
        assert np.all(np.isfinite(value)), f"{name} is not finite after NonFiniteLossError"
        assert_close(f"{name} (before the failing update)", value, expected[name])


def test_unclipped_divergence_never_leaves_nonfinite_weights():
    """clip=None, lr=1, targets ~ N(0, 10): the weights blow up within 10 epochs; the error must
    come while they are still finite."""
    fast, _ = pair(2, 3, 2, seed=0, lr=1.0, verbose=False, clip=None)
    X, y = make_sequences(np.random.default_rng(0), 2, 2, (4, 4, 4), scale=10.0)
    with pytest.raises(fastlstm.NonFiniteLossError) as info:
        fast.train(X, y, epochs=30)
    assert all(np.isfinite(info.value.losses))
    for name in PARAM_NAMES:
        assert np.all(np.isfinite(getattr(fast, name))), (
            f"{name} is not finite after NonFiniteLossError: {getattr(fast, name)}")


def test_infinite_raw_gradient_is_clipped_like_the_seed():
    fast, ref = pair(2, 3, 1, seed=41, verbose=False)
    X = [np.full((3, 2), 1e308) * np.array([1, -1]), np.full((2, 2), -1e308)]
    y = [np.full(3, 1e9), np.full(2, -1e9)]
    with np.errstate(all="ignore"):
        # Precondition: some raw gradient is infinite (clipped to 5 by the seed).
        ref_probe = copy.deepcopy(ref)
        ref_probe.learning_rate = 1.0
        before = snapshot(ref_probe)
        ref_probe.forward(X[0])
        ref_probe.backward(y[0])
        steps = [np.abs(before[n] - getattr(ref_probe, n)) for n in PARAM_NAMES]
        assert max(float(np.max(s)) for s in steps) == pytest.approx(5.0)
        losses_ref, _, where = reference_train_until_nonfinite(ref, X, y, epochs=3)
    assert where is None, "the reference itself diverges: wrong case"
    losses_fast = fast.train(X, y, epochs=3)
    assert_close("train losses", losses_fast, losses_ref)
    assert_params_close(fast, ref)


def test_backward_with_nonfinite_loss_raises_and_keeps_weights():
    fast, _ = pair(2, 3, 2, seed=42)
    before = snapshot(fast)
    fast.forward(np.ones((3, 2)))
    with pytest.raises(fastlstm.NonFiniteLossError):
        fast.backward(np.full((3, 2), np.inf))
    for name in PARAM_NAMES:
        assert np.array_equal(getattr(fast, name), before[name]), name


# ------------------------------------------------------------------------------------------------
# Copies: pickle and deepcopy keep working views
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("how", ["deepcopy", "pickle"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_copies_are_independent_and_working(how, dtype):
    original, ref = pair(3, 4, 2, seed=60, dtype=dtype, verbose=False)
    rng = np.random.default_rng(60)
    X, y = make_sequences(rng, 3, 2, (5, 2))
    original.forward(X[0])  # a cache from forward travels with the copy
    clone = copy.deepcopy(original) if how == "deepcopy" else pickle.loads(pickle.dumps(original))

    # Same weights, same forward, and backward of the copied cache works.
    assert_params_close(clone, original, rtol=0, atol=0)
    assert clone.dtype == original.dtype and clone.learning_rate == original.learning_rate
    h_clone, y_clone = clone.forward(X[0])
    h_orig, y_orig = original.forward(X[0])
    for t in range(len(h_orig)):
        assert_close(f"clone outputs[{t}]", y_clone[t], y_orig[t], dtype, rtol=0, atol=0)
    assert clone.backward(y[0]) == original.backward(y[0])
    assert_params_close(clone, original, rtol=0, atol=0)
    snapshot_after_one_backward = snapshot(original)

    # Modifying the copy's Wf in place changes the copy's forward, not the original.
    original_wf = original.Wf.copy()
    clone.Wf[...] += 0.5
    assert np.array_equal(original.Wf, original_wf)
    assert not np.array_equal(clone.Wf, original.Wf)
    clone_out = clone.forward(X[1])[1]
    orig_out = original.forward(X[1])[1]
    assert not np.allclose(clone_out[-1], orig_out[-1], rtol=1e-6, atol=0)

    # Assigning through the copy's property reaches the copy's kernels.
    clone.Wf = original.Wf
    assert_close("clone outputs after resetting Wf", clone.forward(X[1])[1][-1], orig_out[-1],
                 dtype, rtol=0, atol=0)

    # train on the copy updates the same parameters the properties show (views intact): the
    # copy has had one backward on (X[0], y[0]), then trains like the reference does.
    ref.forward(X[0])
    ref.backward(y[0])
    clone.train(X, y, epochs=3)
    with quiet():
        ref.train(X, y, epochs=3)
    assert_params_close(clone, ref, dtype, prefix="clone after train: ")
    for name in PARAM_NAMES:  # and the original did not move
        assert np.array_equal(getattr(original, name), snapshot_after_one_backward[name]), name


def test_states_after_train_are_those_of_the_last_sequence():
    """The seed's train leaves the attributes of its last forward (the last sequence, computed
    before that sequence's update): inputs, the gate/state lists."""
    fast, ref = pair(2, 3, 1, seed=70, verbose=False)
    X, y = make_sequences(np.random.default_rng(70), 2, 1, (3, 4))
    fast.train(X, y, epochs=2)
    with quiet():
        ref.train(X, y, epochs=2)
    assert fast.inputs is X[-1]
    for name in STATE_NAMES:
        states = getattr(fast, name)
        assert len(states) == len(getattr(ref, name)) == 4, name
        for t, value in enumerate(getattr(ref, name)):
            assert_close(f"{name}[{t}] after train", states[t], value)


@pytest.mark.parametrize("after", ["backward", "train"])
def test_backward_without_a_new_forward_uses_current_weights(after):
    fast, ref = pair(2, 3, 2, seed=71, verbose=False)
    X, y = make_sequences(np.random.default_rng(71), 2, 2, (4, 5))
    if after == "backward":
        fast.forward(X[0])
        ref.forward(X[0])
        assert_close("first backward loss", fast.backward(y[0]), ref.backward(y[0]))
    else:
        fast.train(X, y, epochs=2)
        with quiet():
            ref.train(X, y, epochs=2)
    assert_close(f"backward loss after {after}", fast.backward(y[-1] if after == "train"
                                                               else y[0]),
                 ref.backward(y[-1] if after == "train" else y[0]))
    assert_params_close(fast, ref, prefix=f"after a second backward ({after}): ")


@pytest.mark.parametrize("odd", ["none", "strided", "float32", "list", "big-endian",
                                 "misaligned", "2-d items", "one 2-d item", "memoryview",
                                 "subclass", "read-only"])
def test_train_on_a_list_of_windows_equals_train_on_their_array(odd):
    """train copies a list of equal arrays in one Cython loop (fastlstm.lstm._stack_equal:
    NumPy's C API for exact ndarrays, the buffer protocol from the first other item on) and
    falls back to NumPy's conversion for any other list: both give what the stacked array
    gives, whatever one odd item the list holds."""
    rng = np.random.default_rng(31)
    data = rng.standard_normal((6, 5))
    X = [row.copy() for row in data]
    y = [0.5 * row for row in X]
    k = 3
    if odd == "strided":
        X[k] = np.repeat(data[k], 2)[::2]
    elif odd == "float32":
        X[k] = data[k].astype(np.float32)
    elif odd == "list":
        X[k] = data[k].tolist()
    elif odd == "big-endian":
        X[k] = data[k].astype(">f8")
    elif odd == "misaligned":
        raw = np.zeros(5 * 8 + 1, np.uint8)[1:].view(np.float64)
        raw[:] = data[k]
        X[k] = raw
    elif odd == "2-d items":
        X = [x[:, None] for x in X]
        y = [t[:, None] for t in y]
    elif odd == "one 2-d item":
        X[k] = data[k][:, None]
    elif odd == "memoryview":  # a buffer that is no ndarray: the items after it too
        X[k] = memoryview(data[k].copy())
    elif odd == "subclass":
        X[k] = data[k].copy().view(np.recarray)
    elif odd == "read-only":
        X[k] = data[k].copy()
        X[k].flags.writeable = False
    stacked = np.stack([np.asarray(x, dtype=np.float64).reshape(5, 1) for x in X])
    a, _ = pair(1, 4, 1, seed=31, verbose=False)
    b, _ = pair(1, 4, 1, seed=31, verbose=False)
    losses_list = a.train(X, y, epochs=2)
    losses_array = b.train(stacked, np.stack([np.reshape(t, (5, 1)) for t in y]), epochs=2)
    assert losses_list == losses_array
    assert np.array_equal(a.flat, b.flat)
    if odd in ("none", "memoryview", "subclass", "read-only"):  # copied, not converted
        out = np.empty((len(X), 5), np.float64)
        assert fastlstm._core.stack_equal(X, out)
        assert np.array_equal(out, stacked[:, :, 0])
