"""The NumPy reference is the oracle of every other test, so it is checked on its own first.

* ``reference.LSTM.backward`` against central finite differences of the loss it claims to
  differentiate, ``L = sum_t |Wy h_t + by - target_t|^2 / 2``, built from ``forward`` alone.
  The analytic gradient is read off the SGD update: with clipping inactive (asserted) the update
  is ``W_after = W_before - lr * dW``.
* With clipping active, the update equals the finite-difference gradient clipped to [-5, 5].
* ``reference.lstm_step`` and ``reference.lstm_process`` against the numbers printed in
  notebooks 003 and 004.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest

from fastlstm import reference

from conftest import (PARAM_NAMES, SEED003_C_NEXT, SEED003_H_NEXT, SEED003_PRINT_ATOL,
                      SEED004_FUTURE, SEED004_PARAMETERS, SEED004_PRINT_ATOL, SEED004_TABLE,
                      assert_close, seed003_inputs, snapshot)

# (input_size, hidden_size, output_size, T)
SIZES = [(2, 3, 2, 4), (3, 4, 3, 6), (1, 2, 1, 1)]

LR = 1.0  # W_after = W_before - 1.0 * dW: the gradient is read off with no amplified rounding
EPS = 1e-6  # central differences: truncation ~EPS^2, rounding ~1e-16 L / EPS
FD_RTOL, FD_ATOL = 1e-6, 1e-8


def seeded_model(I, H, O, seed, weight_scale=0.5, lr=LR):
    """A reference model with every parameter (biases too) drawn non-zero."""
    rng = np.random.default_rng(seed)
    model = reference.LSTM(I, H, O, learning_rate=lr)
    for name in PARAM_NAMES:
        setattr(model, name, weight_scale * rng.normal(size=getattr(model, name).shape))
    return model


def seeded_data(I, O, T, seed, target_scale=0.3):
    rng = np.random.default_rng(seed + 1000)
    inputs = list(rng.normal(size=(T, I)))
    targets = list(target_scale * rng.normal(size=(T, O)))
    return inputs, targets


def loss_via_forward(model, inputs, targets):
    """sum_t |y_t - target_t|^2 / 2 from forward's outputs (independent of backward)."""
    _, outputs = model.forward(inputs)
    return sum(0.5 * float(np.sum((y_t - np.reshape(target, (-1, 1))) ** 2))
               for y_t, target in zip(outputs, targets))


def analytic_gradients(model, inputs, targets):
    """(gradients read off one backward's SGD update, the loss backward returned)."""
    trained = copy.deepcopy(model)
    before = snapshot(trained)
    trained.forward(inputs)
    loss = trained.backward(targets)
    after = snapshot(trained)
    grads = {name: (before[name] - after[name]) / trained.learning_rate for name in PARAM_NAMES}
    return grads, loss


def finite_difference(model, name, inputs, targets, eps=EPS):
    """Central differences of loss_via_forward w.r.t. every entry of one parameter."""
    param = getattr(model, name)
    grad = np.zeros_like(param)
    for idx in np.ndindex(param.shape):
        orig = param[idx]
        param[idx] = orig + eps
        plus = loss_via_forward(model, inputs, targets)
        param[idx] = orig - eps
        minus = loss_via_forward(model, inputs, targets)
        param[idx] = orig
        grad[idx] = (plus - minus) / (2 * eps)
    return grad


@pytest.fixture(scope="module", params=SIZES, ids=lambda s: "I{}-H{}-O{}-T{}".format(*s))
def gradient_case(request):
    I, H, O, T = request.param
    seed = 7 * I + 11 * H + 13 * O + T
    model = seeded_model(I, H, O, seed)
    inputs, targets = seeded_data(I, O, T, seed)
    grads, loss = analytic_gradients(model, inputs, targets)
    return model, inputs, targets, grads, loss


def test_gradient_case_has_clipping_inactive(gradient_case):
    """Precondition of the gradient check: no |gradient| reaches the clip at 5, and every
    parameter gets a gradient that is not identically zero (the check would be vacuous)."""
    _, _, targets, grads, _ = gradient_case
    for name, grad in grads.items():
        assert np.max(np.abs(grad)) < 5.0, f"d{name} reaches the clip: {np.max(np.abs(grad))}"
        if len(targets) == 1 and name in ("Wf", "bf"):
            # One step from c_prev = 0: the forget gate has no effect, its gradient is 0.
            assert np.max(np.abs(grad)) == 0.0
            continue
        assert np.max(np.abs(grad)) > 1e-6, f"d{name} is (nearly) zero, the check is vacuous"


@pytest.mark.parametrize("name", PARAM_NAMES)
def test_backward_gradient_matches_finite_differences(gradient_case, name):
    model, inputs, targets, grads, _ = gradient_case
    fd = finite_difference(copy.deepcopy(model), name, inputs, targets)
    assert_close(f"d{name} (backward vs central differences)", grads[name], fd,
                 rtol=FD_RTOL, atol=FD_ATOL)


def test_backward_returns_mean_loss_over_steps(gradient_case):
    model, inputs, targets, _, loss = gradient_case
    expected = loss_via_forward(copy.deepcopy(model), inputs, targets) / len(targets)
    assert_close("backward loss", loss, expected)


def test_backward_clips_each_gradient_entry_to_five():
    """Large targets: the update is lr * clip(dL/dW, -5, 5), elementwise."""
    I, H, O, T = 2, 3, 2, 5
    model = seeded_model(I, H, O, seed=3, lr=1.0)
    inputs, _ = seeded_data(I, O, T, seed=3)
    targets = [np.full(O, 40.0) * (-1) ** t for t in range(T)]
    grads, _ = analytic_gradients(model, inputs, targets)
    n_clipped = 0
    for name in PARAM_NAMES:
        fd = finite_difference(copy.deepcopy(model), name, inputs, targets)
        n_clipped += int(np.sum(np.abs(fd) > 5))
        assert_close(f"d{name} (clipped)", grads[name], np.clip(fd, -5, 5),
                     rtol=FD_RTOL, atol=1e-6)
    assert n_clipped > 0, "no gradient entry exceeded 5: the clip was not exercised"


def test_forward_returns_column_lists_and_keeps_states():
    I, H, O, T = 3, 4, 2, 5
    model = seeded_model(I, H, O, seed=5)
    inputs, _ = seeded_data(I, O, T, seed=5)
    h_states, outputs = model.forward(inputs)
    assert len(h_states) == len(outputs) == T
    assert all(h.shape == (H, 1) for h in h_states)
    assert all(y.shape == (O, 1) for y in outputs)
    # The recurrence written out by hand for the first step (h_prev = c_prev = 0).
    concat = np.concatenate([np.zeros(H), inputs[0]]).reshape(-1, 1)
    sig = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    f = sig(model.Wf @ concat + model.bf)
    i = sig(model.Wi @ concat + model.bi)
    g = np.tanh(model.Wc @ concat + model.bc)
    o = sig(model.Wo @ concat + model.bo)
    c = i * g  # f * 0 + i * g
    h = o * np.tanh(c)
    for name, value in (("f_gates[0]", f), ("i_gates[0]", i), ("c_tildes[0]", g),
                        ("o_gates[0]", o), ("c_states[0]", c), ("h_states[0]", h)):
        attr, _ = name.split("[")
        assert_close(name, getattr(model, attr)[0], value)
    assert_close("outputs[0]", outputs[0], model.Wy @ h + model.by)


# ------------------------------------------------------------------------------------------------
# Notebooks 003 and 004: printed numbers
# ------------------------------------------------------------------------------------------------

def test_reference_lstm_step_reproduces_seed003():
    h_next, c_next = reference.lstm_step(*seed003_inputs())
    assert_close("h_next", h_next, SEED003_H_NEXT, atol=SEED003_PRINT_ATOL, rtol=0)
    assert_close("c_next", c_next, SEED003_C_NEXT, atol=SEED003_PRINT_ATOL, rtol=0)


def test_reference_lstm_process_reproduces_seed004():
    states, last_hidden = reference.lstm_process([1, 2, 3], SEED004_PARAMETERS)
    keys = ("Forget Gate", "Input Gate", "Candidate Cell", "Cell State", "Output Gate",
            "Hidden State")
    assert len(states) == 3
    for step, (state, row) in enumerate(zip(states, SEED004_TABLE), start=1):
        assert list(state) == list(("Forget Gate", "Input Gate", "Candidate Cell", "Cell State",
                                    "Output Gate", "Hidden State"))
        for key, printed in zip(keys, row):
            assert_close(f"step {step} {key}", state[key], printed, atol=SEED004_PRINT_ATOL,
                         rtol=0)
        # The printed line format of cell [67] reproduces the notebook's text.
        assert [f"  {key}: {state[key]:.4f}" for key in keys] == [
            f"  {key}: {value:.4f}" for key, value in zip(keys, row)]
    assert_close("Estimated Future Value", 4 * last_hidden, SEED004_FUTURE,
                 atol=SEED004_PRINT_ATOL, rtol=0)
    assert f"{4 * last_hidden:.4f}" == "3.4827"
