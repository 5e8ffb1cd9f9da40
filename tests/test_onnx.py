"""ONNX export (run in onnxruntime) and import (ONNX's own LSTM test cases), and refusals."""

import numpy as np
import pytest

import fastlstm

onnx = pytest.importorskip("onnx")


def _session(model):
    ort = pytest.importorskip("onnxruntime")
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


LAYERS = [dict(), dict(num_layers=2, bidirectional=True), dict(batch_first=True, num_layers=2),
          dict(bidirectional=True, peepholes=True, clip=0.7),
          dict(reverse=True, input_forget=True), dict(activation="relu", num_layers=2),
          dict(activation="linear", bidirectional=True, batch_first=True)]


@pytest.mark.parametrize("kwargs", LAYERS, ids=[str(k) for k in LAYERS])
def test_layer_export_runs_in_onnxruntime_like_fastlstm(kwargs, capfd):
    layer = fastlstm.LSTMLayer(3, 5, seed=0, **kwargs)
    session = _session(fastlstm.to_onnx(layer))
    with_states = _session(fastlstm.to_onnx(layer, state_inputs=True))
    # x is the one input by default; the states only when asked, then required; and no
    # session prints a warning (ONNX Runtime's logger writes to stderr)
    assert [i.name for i in session.get_inputs()] == ["x"]
    assert [i.name for i in with_states.get_inputs()] == ["x", "h0", "c0"]
    assert capfd.readouterr().err == ""
    rng = np.random.default_rng(0)
    for T, B in ((7, 4), (2, 9)):  # dynamic sequence length and batch
        shape = (B, T, 3) if layer.batch_first else (T, B, 3)
        x = rng.standard_normal(shape).astype(np.float32)
        y, (h, c) = layer.forward(x, training=False)
        got = session.run(None, {"x": x})
        for name, ours, theirs in zip(("y", "h_n", "c_n"), (y, h, c), got):
            np.testing.assert_allclose(theirs, ours, rtol=1e-5, atol=1e-6, err_msg=name)
        L = layer.num_layers * layer.num_directions
        h0 = rng.standard_normal((L, B, 5)).astype(np.float32)
        c0 = rng.standard_normal((L, B, 5)).astype(np.float32)
        y, (h, c) = layer.forward(x, (h0, c0), training=False)
        got = with_states.run(None, {"x": x, "h0": h0, "c0": c0})
        for name, ours, theirs in zip(("y", "h_n", "c_n"), (y, h, c), got):
            np.testing.assert_allclose(theirs, ours, rtol=1e-5, atol=1e-6, err_msg=name)
    assert capfd.readouterr().err == ""


@pytest.mark.parametrize("kwargs", LAYERS, ids=[str(k) for k in LAYERS])
def test_layer_export_with_lengths_runs_like_forward_with_lengths(kwargs, capfd):
    layer = fastlstm.LSTMLayer(3, 5, seed=2, **kwargs)
    model = fastlstm.to_onnx(layer, lengths=True, state_inputs=True)
    session = _session(model)
    assert [i.name for i in session.get_inputs()] == ["x", "h0", "c0", "lengths"]
    rng = np.random.default_rng(1)
    L = layer.num_layers * layer.num_directions
    for T, B in ((7, 5), (3, 2)):
        shape = (B, T, 3) if layer.batch_first else (T, B, 3)
        x = rng.standard_normal(shape).astype(np.float32)
        h0, c0 = rng.standard_normal((2, L, B, 5)).astype(np.float32)
        lengths = rng.integers(1, T + 1, B).astype(np.int32)
        y, (h, c) = layer.forward(x, (h0, c0), lengths=lengths, training=False)
        got = session.run(None, {"x": x, "h0": h0, "c0": c0, "lengths": lengths})
        for name, ours, theirs in zip(("y", "h_n", "c_n"), (y, h, c), got):
            np.testing.assert_allclose(theirs, ours, rtol=1e-5, atol=1e-6, err_msg=name)
    back, lens = fastlstm.from_onnx(model, return_lengths=True)
    assert lens == "lengths"  # a graph input: the caller's at run time
    with pytest.raises(ValueError, match="return_lengths=True"):
        fastlstm.from_onnx(model)
    for name, value in layer.state_dict().items():
        np.testing.assert_array_equal(back.state_dict()[name], value, err_msg=name)
    assert capfd.readouterr().err == ""


@pytest.mark.parametrize("kwargs", LAYERS, ids=[str(k) for k in LAYERS])
def test_round_trip_is_exact(kwargs, tmp_path):
    layer = fastlstm.LSTMLayer(3, 5, seed=1, **kwargs)
    path = tmp_path / "m.onnx"
    fastlstm.to_onnx(layer, path)
    back = fastlstm.from_onnx(path)
    for attr in ("num_layers", "bidirectional", "batch_first", "activation", "peepholes",
                 "input_forget", "reverse"):
        assert getattr(back, attr) == getattr(layer, attr), attr
    for name, value in layer.state_dict().items():
        np.testing.assert_array_equal(back.state_dict()[name], value, err_msg=name)


@pytest.mark.parametrize("kwargs, X_shape, y_shape", [
    (dict(), (30, 6, 2), (30,)),
    (dict(bidirectional=True, num_layers=2), (30, 6, 2), (30, 3)),
    (dict(activation="relu"), (30, 6), (30,)),
])
def test_regressor_export_predicts_like_predict(kwargs, X_shape, y_shape):
    pytest.importorskip("sklearn")
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal(X_shape) * 3 + 1, rng.standard_normal(y_shape) * 2 - 5
    est = fastlstm.LSTMRegressor(hidden_size=5, epochs=3, random_state=0, **kwargs).fit(X, y)
    session = _session(fastlstm.to_onnx(est))
    assert [i.name for i in session.get_inputs()] == ["x"]
    for rows in (slice(None), slice(0, 7)):  # dynamic batch
        got = session.run(None, {"x": X[rows].astype(np.float32)})[0]
        expected = est.predict(X[rows])
        assert got.shape == expected.shape
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())


def _onnx_lstm_cases(monkeypatch):
    """ONNX's own LSTM operator test cases (onnx.backend.test.case.node.lstm), captured."""
    from onnx.backend.test.case.node import lstm as cases

    captured = []
    monkeypatch.setattr(cases, "expect", lambda node, inputs, outputs, name, **kw:
                        captured.append((node, inputs, outputs, name)))
    for attr in dir(cases.LSTM):
        if attr.startswith("export"):
            getattr(cases.LSTM, attr)()
    assert len(captured) >= 6
    return captured


@pytest.mark.parametrize("lens_as_input", [False, True])
def test_onnx_operator_test_cases(monkeypatch, lens_as_input):
    """Every LSTM case of ONNX's own operator tests imports and gives its expected outputs,
    with sequence_lens (where a case has one) as an initializer or as a graph input."""
    from onnx import helper, numpy_helper

    with_lens = 0
    for node, inputs, outputs, name in _onnx_lstm_cases(monkeypatch):
        names = [n for n in node.input if n]
        feeds = dict(zip(names, inputs))
        seq = node.input[4] if len(node.input) > 4 and node.input[4] else None
        runtime = {node.input[0]} | ({seq} if seq and lens_as_input else set())
        inits = [numpy_helper.from_array(v, k) for k, v in feeds.items() if k not in runtime]
        graph = helper.make_graph(
            [node], name, [helper.make_tensor_value_info(k, 1 if k == node.input[0] else 6,
                                                         None) for k in sorted(runtime)],
            [helper.make_tensor_value_info(o, 1, None) for o in node.output if o],
            initializer=inits)
        layer, (h0, c0), lengths = fastlstm.from_onnx(helper.make_model(graph),
                                                      return_state=True, return_lengths=True)
        if seq:
            with_lens += 1
            if lens_as_input:
                assert lengths == seq  # the name of the graph input
                lengths = feeds[seq]
            else:
                np.testing.assert_array_equal(lengths, feeds[seq])
        X = feeds[node.input[0]]
        layer_state = None if h0 is None else (h0, c0)
        y, (h_n, c_n) = layer.forward(X.astype(layer.dtype), layer_state, training=False,
                                      lengths=lengths)
        expected = dict(zip([o for o in node.output if o], outputs))
        D, H = layer.num_directions, layer.hidden_size
        compared = 0
        if node.output[0]:
            if layer.batch_first:  # ONNX: (B, T, D, H); ours (B, T, D*H)
                want = expected[node.output[0]].reshape(y.shape)
            else:  # ONNX: (T, D, B, H)
                want = expected[node.output[0]].transpose(0, 2, 1, 3).reshape(y.shape)
            np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-6, err_msg=name)
            compared += 1
        for k, ours in ((1, h_n), (2, c_n)):
            if len(node.output) > k and node.output[k]:
                want = expected[node.output[k]]
                want = want.swapaxes(0, 1) if layer.batch_first else want
                np.testing.assert_allclose(ours, want, rtol=1e-5, atol=1e-6,
                                           err_msg=f"{name} {node.output[k]}")
                compared += 1
        assert compared, name
    assert with_lens >= 1  # test_lstm_with_peepholes


def _single_node_model(**attrs):
    from onnx import helper, numpy_helper

    H, I = 3, 2
    rng = np.random.default_rng(0)
    extra_inputs = attrs.pop("extra_inputs", [])
    inits = [numpy_helper.from_array(rng.standard_normal((1, 4 * H, I)).astype(np.float32), "W"),
             numpy_helper.from_array(rng.standard_normal((1, 4 * H, H)).astype(np.float32), "R")]
    inputs = ["X", "W", "R"] + extra_inputs
    if "seq" in extra_inputs:
        inits.append(numpy_helper.from_array(np.array([2, 3], np.int32), "seq"))
    node = helper.make_node("LSTM", inputs, ["Y"], hidden_size=H, **attrs)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("X", 1, None)],
                              [helper.make_tensor_value_info("Y", 1, None)], initializer=inits)
    return helper.make_model(graph)


@pytest.mark.parametrize("attrs, match", [
    (dict(activations=["HardSigmoid", "Tanh", "Tanh"]), "HardSigmoid"),
    (dict(activations=["Sigmoid", "Tanh", "Relu"]), "cell activations"),
    (dict(activations=["Sigmoid", "Elu", "Elu"]), "Elu"),
    (dict(activations=["Sigmoid", "Affine", "Affine"], activation_alpha=[2.0, 2.0],
          activation_beta=[0.0, 0.0]), "activation_alpha"),
    (dict(direction="sideways"), "direction='sideways'"),
    (dict(layout=2), "layout=2"),
    (dict(input_forget=2), "input_forget=2"),
    (dict(extra_inputs=["", "seq"]), "return_lengths=True"),
    (dict(extra_inputs=["Bdyn"]), "input B"),
])
def test_from_onnx_refuses_what_it_cannot_run_naming_it(attrs, match):
    with pytest.raises(ValueError, match=match):
        fastlstm.from_onnx(_single_node_model(**attrs))


def test_from_onnx_and_to_onnx_bad_arguments():
    from onnx import helper

    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", 1, None)],
                              [helper.make_tensor_value_info("y", 1, None)])
    with pytest.raises(ValueError, match="no LSTM node"):
        fastlstm.from_onnx(helper.make_model(graph))
    with pytest.raises(TypeError, match="obj: expected"):
        fastlstm.to_onnx(fastlstm.LSTM(1, 2, 1, verbose=False))
    pytest.importorskip("sklearn")
    with pytest.raises(ValueError, match="not fitted"):
        fastlstm.to_onnx(fastlstm.LSTMRegressor())
