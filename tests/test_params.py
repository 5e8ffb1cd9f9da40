"""The flat-parameter helper behind LSTM, LSTMLayer and Dense: views into one buffer, offsets,
pickling that keeps views tied to their buffer."""

import pickle

import numpy as np

import fastlstm
from fastlstm._params import FlatParams
from fastlstm.training import Dense


def test_views_offsets_and_pickling():
    p = FlatParams({"a": (2, 3), "b": (4,)}, np.float32)
    assert p.size == 10 and p.offsets == {"a": 0, "b": 6}
    p["a"][...] = 1.0
    p.grad_views["b"][...] = 2.0
    assert p.data[:6].sum() == 6 and p.grad[6:].sum() == 8
    q = pickle.loads(pickle.dumps(p))
    np.testing.assert_array_equal(q.data, p.data)
    q["b"][...] = 5.0  # a view of q's own buffer, not a copy apart from it
    assert q.data[6:].sum() == 20 and p.data[6:].sum() == 0
    assert FlatParams({"w": (3,)}, np.float64, grads=False).grad is None


def test_every_model_keeps_its_parameters_in_one_buffer():
    layer = fastlstm.LSTMLayer(3, 4, num_layers=2, bidirectional=True, seed=0)
    at = layer.offsets()
    for name, view in layer.parameters():
        assert np.shares_memory(view, layer.flat)
        np.testing.assert_array_equal(layer.flat[at[name]:at[name] + view.size], view.ravel())
    assert layer.grad_flat.shape == layer.flat.shape
    seed = fastlstm.LSTM(1, 5, 1, verbose=False)
    assert np.shares_memory(seed.Wf, seed.flat) and np.shares_memory(seed.by, seed.flat)
    head = Dense(4, 2, seed=0)
    assert np.shares_memory(head.weight, head.flat) and np.shares_memory(head.grads["bias"],
                                                                         head.grad_flat)
    for obj, view in ((layer, lambda m: m.grads and m._params["weight_hh_l1"]),
                      (seed, lambda m: m.Wf), (head, lambda m: m.weight)):
        back = pickle.loads(pickle.dumps(obj))
        np.testing.assert_array_equal(back.flat, obj.flat)
        back.flat[...] = 0
        assert not view(back).any()        # the copy's views are its buffer's
        assert np.abs(view(obj)).sum() > 0  # the original keeps its values
