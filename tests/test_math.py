"""The gate math's vector sigmoid and tanh (csrc/fl_math.h) on every ISA path the CPU has,
against NumPy's long-double functions: error in ulp over a dense sample of [-10, 10], the special
values, and saturation (|tanh| never above 1, exactly +-1 far out).

The values come out of the kernels through one cell step with I = 1, h_{t-1} = 0, unit input
weights and zero biases: every gate's preactivation in row b is x[b] exactly, so the activated
gates are sigmoid(x[b]) (i, f, o) and tanh(x[b]) (g)."""

import numpy as np
import pytest

from fastlstm import _core

H = 16  # one AVX-512 vector of float32 units per gate
# Bounds in ulp of the result's type, a little above what was measured on every path
# (float32 tanh: 4.3 with fused multiply-adds, 4.8 on the generic path; float64 tanh 1.5;
# sigmoid 4.1 in both: three sigmoids share one division).
TANH_ULP = {np.float32: 6.0, np.float64: 2.0}
SIGMOID_ULP = 5.0


def activated_gates(z, dtype):
    """(sigmoid as the i, f and o gates computed it (B, 3), tanh (B,)) of every value of z,
    through the kernels' cell step. The three sigmoids share one division, so they may differ
    in the last bits."""
    z = np.asarray(z, dtype)
    B, G = z.size, 4 * H
    out = np.empty((B, G), dtype)
    _core.cell_step(np.empty(B * H, dtype), np.empty(B * H, dtype), out.reshape(-1),
                    np.empty(B * G, dtype), z, np.zeros(B * H, dtype), np.zeros(B * H, dtype),
                    np.ones(G, dtype), np.zeros(G * H, dtype), np.zeros(G, dtype), B, 1, H)
    gates = out.reshape(B, 4, H)
    same = (gates == gates[:, :, :1]) | (np.isnan(gates) & np.isnan(gates[:, :, :1]))
    assert np.all(same), "every unit of a row saw the same preactivation"
    return gates[:, [0, 1, 3], 0], gates[:, 2, 0]


def ulp_error(got, ref, dtype):
    spacing = np.spacing(np.abs(ref).astype(dtype)).astype(np.longdouble)
    return np.abs(got.astype(np.longdouble) - ref) / spacing


def dense_sample(dtype):
    """Values of [-10, 10] evenly spaced in their bit patterns (so every binade of small values
    is as well covered as the large ones), both signs."""
    itype = np.int32 if dtype == np.float32 else np.int64
    top = int(np.array(10, dtype).view(itype))
    z = np.linspace(0, top, 100_001).astype(itype).view(dtype)
    return np.concatenate([z, -z])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_and_tanh_are_within_a_few_ulp(dtype, isa):
    z = dense_sample(dtype)
    sig, tanh = activated_gates(z, dtype)
    zl = z.astype(np.longdouble)
    tanh_err = ulp_error(tanh, np.tanh(zl), dtype)
    sig_err = ulp_error(sig, (1 / (1 + np.exp(-zl)))[:, None], dtype).max(axis=1)
    worst = int(np.argmax(tanh_err))
    assert tanh_err[worst] <= TANH_ULP[dtype], \
        f"tanh({z[worst]!r}) = {tanh[worst]!r}: {tanh_err[worst]:.2f} ulp ({isa})"
    worst = int(np.argmax(sig_err))
    assert sig_err[worst] <= SIGMOID_ULP, \
        f"sigmoid({z[worst]!r}) = {sig[worst]!r} (i, f, o): {sig_err[worst]:.2f} ulp ({isa})"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_tanh_saturates_at_one_and_never_exceeds_it(dtype, isa):
    z = np.linspace(0, 30, 30_001).astype(dtype)
    _, tanh = activated_gates(np.concatenate([z, -z]), dtype)
    assert np.abs(tanh).max() <= 1
    pos, neg = tanh[:z.size], tanh[z.size:]
    np.testing.assert_array_equal(pos[z >= 20], 1)
    np.testing.assert_array_equal(neg, -pos)  # odd, exactly


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_special_values(dtype, isa):
    tiny = np.finfo(dtype).smallest_subnormal
    z = np.array([0.0, -0.0, tiny, -tiny, np.inf, -np.inf, np.nan, 1e30, -1e30], dtype)
    sig, tanh = activated_gates(z, dtype)
    # (-0.0 reaches the gates as +0.0: the projection adds it to a zero bias)
    np.testing.assert_array_equal(tanh[:2], [0.0, 0.0])
    np.testing.assert_array_equal(tanh[2:4], [tiny, -tiny])  # tanh(x) = x for tiny x
    np.testing.assert_array_equal(tanh[[4, 5, 7, 8]], [1, -1, 1, -1])
    for gate in range(3):
        np.testing.assert_array_equal(sig[[0, 1, 4, 5, 7, 8], gate], [0.5, 0.5, 1, 0, 1, 0])
    assert np.isnan(tanh[6]) and np.all(np.isnan(sig[6])), "NaN propagates"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("H", [72, 13])
def test_sequence_gate_pass_special_values(dtype, H, isa):
    """The sequence kernel's gate pass (the panel step's, in chunks of vectors, and its ragged
    end) on the special values: the same h and c as the cell step's gate math, NaN included,
    and the NumPy reference where that is finite."""
    import fastlstm
    from fastlstm.reference import lstm_layer_forward

    tiny = np.finfo(dtype).smallest_subnormal
    z = np.array([0.0, tiny, -tiny, np.inf, -np.inf, np.nan, 1e30, -1e30, 3.5, -7.25, 9.5,
                  -20.0, 0.125], dtype)
    layer = fastlstm.LSTMLayer(1, H, dtype=dtype, seed=0)
    sd = {k: np.zeros_like(v) for k, v in layer.state_dict().items()}
    sd["weight_ih_l0"] = np.ones_like(sd["weight_ih_l0"])
    layer.load_state_dict(sd)
    x = z.reshape(1, -1, 1)
    y, (h, c) = layer.forward(x, training=False)
    y2, (h2, c2) = layer.forward(x, training=True)  # keeps the gates: the other branch
    sig, tanh = activated_gates(z, dtype)
    c_want = sig[:, 0] * tanh  # c_0 = 0: c_1 = i g
    with np.errstate(invalid="ignore", over="ignore"):
        ref = lstm_layer_forward(x.astype(np.float64), {k: v.astype(np.float64)
                                                        for k, v in sd.items()}, 1, False)[0]
    for got_h, got_c in ((y[0], c[0]), (y2[0], c2[0])):
        np.testing.assert_array_equal(got_h, np.broadcast_to(got_h[:, :1], got_h.shape))
        np.testing.assert_array_equal(got_c[:, 0], c_want)
        np.testing.assert_array_equal(np.isnan(got_h[:, 0]), np.isnan(z))
        finite = np.isfinite(ref[0, :, 0])
        np.testing.assert_allclose(got_h[finite, 0], ref[0, finite, 0], rtol=1e-5, atol=1e-30)
