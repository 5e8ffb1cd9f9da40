"""fastlstm.trace against the NumPy references, its tables and plot, its frame."""

import numpy as np
import pytest

import fastlstm
from fastlstm import reference
from fastlstm._reference_layer import lstm_layer_forward


@pytest.mark.parametrize("batch_first", [False, True])
def test_layer_trace_equals_the_reference_intermediates(batch_first):
    T, B, I, H, L = 5, 3, 4, 6, 2
    layer = fastlstm.LSTMLayer(I, H, L, bidirectional=True, batch_first=batch_first,
                               dtype=np.float64, seed=1)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((B, T, I) if batch_first else (T, B, I))
    h0, c0 = rng.standard_normal((2, L * 2, B, H))
    params = layer.state_dict()
    _, _, cache = lstm_layer_forward(x, params, L, True, h0, c0, batch_first=batch_first)
    first = fastlstm.trace(layer, x, state=(h0, c0), layer=0, direction=1)
    assert (first.layer, first.direction) == (0, 1)
    assert set(first.parts) == {(0, 0), (0, 1), (1, 0), (1, 1)}
    for (lay, d), part in first.parts.items():
        ref = cache["steps"][lay * 2 + d]
        i, f, g, o = np.split(ref["gates"], 4, axis=-1)
        for name, expected in (("input", i), ("forget", f), ("candidate", g), ("output", o),
                               ("cell", ref["cell"]), ("hidden", ref["hidden"]),
                               ("cell_prev", ref["cell_prev"]),
                               ("hidden_prev", ref["hidden_prev"])):
            np.testing.assert_allclose(getattr(part, name), expected, rtol=1e-10, atol=1e-12,
                                       err_msg=f"{name} l{lay} d{d}")
        np.testing.assert_allclose(part.inputs, cache["inputs"][lay], rtol=1e-12)
        np.testing.assert_allclose(part.hidden_norm, np.linalg.norm(ref["hidden"], axis=-1),
                                   rtol=1e-10)


def test_single_sequence_gives_two_dimensional_arrays_and_keeps_the_model_cache():
    layer = fastlstm.LSTMLayer(3, 4, dtype=np.float64, seed=0)
    rng = np.random.default_rng(1)
    xb = rng.standard_normal((6, 2, 3))
    y, _ = layer.forward(xb)
    dx_before = layer.backward(np.ones_like(y))[0]
    layer.forward(xb)
    tr = fastlstm.trace(layer, xb[:, 0], state=(np.full((1, 4), 0.1), np.zeros((1, 4))))
    assert tr.hidden.shape == (6, 4) and tr.inputs.shape == (6, 3)
    np.testing.assert_allclose(tr.hidden_prev[0], 0.1)
    # the trace did not replace the cache of the model's own last forward
    np.testing.assert_array_equal(layer.backward(np.ones_like(y))[0], dx_before)


def test_seed_class_trace_equals_the_notebook_class():
    np.random.seed(3)
    ref = reference.LSTM(2, 5, 1)
    np.random.seed(3)
    fast = fastlstm.LSTM(2, 5, 1, verbose=False)
    x = np.random.default_rng(0).standard_normal((7, 2))
    ref.forward(list(x[:, :, None]))
    tr = fastlstm.trace(fast, x)
    for name, attr in (("forget", "f_gates"), ("input", "i_gates"), ("candidate", "c_tildes"),
                       ("output", "o_gates"), ("cell", "c_states"), ("hidden", "h_states")):
        expected = np.array(getattr(ref, attr))[-7:, :, 0]
        np.testing.assert_allclose(getattr(tr, name), expected, rtol=1e-12, atol=1e-15,
                                   err_msg=name)
    np.testing.assert_array_equal(tr.cell_prev[0], 0)


def test_table_plot_and_frame(tmp_path, capsys):
    layer = fastlstm.LSTMLayer(2, 3, dtype=np.float64, seed=0)
    x = np.array([[1.0, -1.0], [0.5, 2.0]])
    tr = fastlstm.trace(layer, x)
    text = tr.table(feature_names=["a", "b"])
    assert text == capsys.readouterr().out.rstrip("\n")
    assert "--- Time step 2 ---" in text and "| a " in text
    assert f"{tr.forget[1]}" in text  # numpy's own print of the values, as the notebook shows
    assert f"{tr.hidden[1] - tr.hidden[0]}" in text
    norms = [f"{v:.4f}".rstrip("0").rstrip(".") for v in tr.cell_norm]
    assert all(n in text for n in norms)
    one = tr.table(step=-1, print_=False)
    assert "Time step 2" in one and "Time step 1 " not in one
    mpimg = pytest.importorskip("matplotlib.image")
    path = tr.plot(tmp_path / "t.png")
    assert mpimg.imread(path).shape[0] > 100
    pd = pytest.importorskip("pandas")
    frame = tr.to_frame()
    assert isinstance(frame, pd.DataFrame) and len(frame) == 2 * 3
    np.testing.assert_allclose(frame["output"].to_numpy(), tr.output.reshape(-1))
    batched = fastlstm.trace(layer, np.stack([x, x], axis=1)).to_frame()
    assert list(batched.columns[:3]) == ["step", "sample", "unit"] and len(batched) == 12


@pytest.mark.parametrize("call, match", [
    (lambda m, s: fastlstm.trace(m, np.zeros((3, 2)), layer=1), "layer"),
    (lambda m, s: fastlstm.trace(m, np.zeros((3, 2)), direction=1), "direction"),
    (lambda m, s: fastlstm.trace(m, np.zeros((3, 5))), "features"),
    (lambda m, s: fastlstm.trace(m, np.zeros((3, 2)), state=(np.zeros((2, 3)),
                                                             np.zeros((1, 3)))), "h0"),
    (lambda m, s: fastlstm.trace(s, np.zeros((3, 2)), state=(0, 0)), "zero states"),
    (lambda m, s: fastlstm.trace("model", np.zeros((3, 2))), "model"),
    (lambda m, s: fastlstm.trace(m, np.zeros((3, 2))).table(step=3), "step"),
])
def test_bad_input(call, match):
    model = fastlstm.LSTMLayer(2, 3)
    seed = fastlstm.LSTM(2, 3, 1, verbose=False)
    with pytest.raises((ValueError, TypeError), match=match):
        call(model, seed)


def test_plot_of_one_unit_has_whole_number_ticks_and_the_values_in_its_cells(tmp_path,
                                                                             monkeypatch):
    pytest.importorskip("matplotlib")
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figures = []
    monkeypatch.setattr(plt, "close", lambda fig=None: figures.append(fig))
    layer = fastlstm.LSTMLayer(1, 1, dtype=np.float64, seed=0)
    result = fastlstm.trace(layer, np.array([[1.0], [2.0], [3.0]]))
    result.plot(tmp_path / "trace.png")
    heatmap = figures[0].axes[0]
    assert list(heatmap.get_yticks()) == [0]
    assert list(heatmap.get_xticks()) == [1, 2, 3]
    assert [t.get_text() for t in heatmap.texts] == [f"{v:.2f}" for v in result.forget[:, 0]]


def test_record_returns_named_fields_and_leaves_backward_its_own_forward():
    layer = fastlstm.LSTMLayer(3, 4, num_layers=2, bidirectional=True, dtype=np.float64,
                               seed=1)
    rng = np.random.default_rng(0)
    x1, x2 = rng.standard_normal((5, 2, 3)), rng.standard_normal((7, 2, 3))
    y1, _ = layer.forward(x1)
    rec = layer.record(x2)
    assert (rec.steps, rec.batch, len(rec.layers)) == (7, 2, 2)
    assert rec.layers[1].inputs.shape == (7, 2, 8) and rec.layers[0].outputs.shape == (7, 2, 8)
    assert [d.gates.shape for d in rec.layers[0].directions] == [(7, 2, 16)] * 2
    dx, _ = layer.backward(np.ones_like(y1))          # the gradient of x1's forward
    fresh = fastlstm.LSTMLayer(3, 4, num_layers=2, bidirectional=True, dtype=np.float64,
                               seed=1)
    fresh.forward(x1)
    dx_ref, _ = fresh.backward(np.ones_like(y1))
    np.testing.assert_array_equal(dx, dx_ref)

    seed = fastlstm.LSTM(1, 3, 1, verbose=False)
    seed.forward([0.5, 0.25])
    seed_rec = seed.record([1.0, 2.0, 3.0])
    assert seed_rec.hidden.shape == (3, 3) and len(seed.h_states) == 2
