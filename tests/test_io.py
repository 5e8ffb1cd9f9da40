"""fastlstm.save / fastlstm.load: exact round trips without pickle, and clear refusals."""

import json
import os
import stat
import zipfile

import numpy as np
import pytest

import fastlstm
from fastlstm.interop import npz as io


def _layer(**kwargs):
    return fastlstm.LSTMLayer(3, 5, num_layers=2, bidirectional=True, seed=0, **kwargs)


@pytest.mark.parametrize("kwargs", [dict(), dict(dtype=np.float64, activation="relu",
                                                 batch_first=True)])
def test_layer_round_trip_is_exact(tmp_path, kwargs):
    layer = _layer(**kwargs)
    path = tmp_path / "layer.npz"
    fastlstm.save(layer, path)
    back = fastlstm.load(path)
    assert type(back) is fastlstm.LSTMLayer
    for attr in ("input_size", "hidden_size", "num_layers", "bidirectional", "batch_first",
                 "activation", "dtype"):
        assert getattr(back, attr) == getattr(layer, attr), attr
    x = np.random.default_rng(1).standard_normal((4, 2, 3))
    y, (h, c) = layer.forward(x, training=False)
    y2, (h2, c2) = back.forward(x, training=False)
    np.testing.assert_array_equal(y, y2)
    np.testing.assert_array_equal(c, c2)


def test_seed_lstm_round_trip_keeps_the_global_rng(tmp_path):
    np.random.seed(0)
    model = fastlstm.LSTM(2, 4, 1, learning_rate=0.05, verbose=False)
    path = tmp_path / "lstm.npz"
    fastlstm.save(model, path)
    np.random.seed(123)
    expected_next = np.random.rand()
    np.random.seed(123)
    back = fastlstm.load(path)
    assert np.random.rand() == expected_next  # loading drew nothing from np.random
    assert back.learning_rate == 0.05 and back.verbose is False
    x = list(np.random.default_rng(2).standard_normal((6, 2)))
    np.testing.assert_array_equal(np.array(model.forward(x)[1]), np.array(back.forward(x)[1]))


def test_fitted_regressor_round_trip_predicts_bit_identically(tmp_path):
    pytest.importorskip("sklearn")
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 6, 2))
    y = X[:, -1, 0] - X[:, 0, 1]
    est = fastlstm.LSTMRegressor(hidden_size=6, epochs=3, bidirectional=True,
                                 validation_split=0.25, random_state=0).fit(X, y)
    path = tmp_path / "reg.npz"
    fastlstm.save(est, path)
    back = fastlstm.load(path)
    np.testing.assert_array_equal(back.predict(X), est.predict(X))
    assert back.get_params() == est.get_params()
    assert back.history_ == est.history_
    assert back.n_features_in_ == 2 and back.best_epoch_ == est.best_epoch_


def test_save_is_atomic_when_interrupted(tmp_path, monkeypatch):
    path = tmp_path / "m.npz"
    fastlstm.save(_layer(), path)
    before = path.read_bytes()

    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", boom)
    with pytest.raises(KeyboardInterrupt):
        fastlstm.save(_layer(dtype=np.float64), path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]  # no temporary file left


def _rewrite(path, **changes):
    with np.load(path, allow_pickle=False) as data:
        files = {k: data[k] for k in data.files}
    files.update(changes)
    files = {k: v for k, v in files.items() if v is not None}
    np.savez(path, **files)


@pytest.mark.parametrize("change, match", [
    (dict(__fastlstm_format__=np.array(99)), "format version"),
    (dict(__kind__=np.array("GRU")), "unknown kind"),
    (dict(__config__=np.array("{not json")), "not valid JSON"),
    (dict(__kind__=None), "not a fastlstm file"),
    (dict(**{"a/weight_hh_l0": np.zeros((20, 4), np.float32)}), r"weight_hh_l0.*shape"),
    (dict(**{"a/bias_ih_l1": np.zeros(20, np.float64)}), r"bias_ih_l1.*dtype"),
    (dict(**{"a/weight_ih_l0": None}), "weight_ih_l0.*missing"),
    (dict(**{"a/bias_hh_l0": np.array([object()] * 20, dtype=object)}), "pickle"),
])
def test_load_refuses_bad_files_naming_the_problem(tmp_path, change, match):
    path = tmp_path / "m.npz"
    fastlstm.save(_layer(), path)
    if "a/bias_hh_l0" in change:
        with np.load(path) as data:
            files = {k: data[k] for k in data.files}
        files.update(change)
        np.savez(path, **files)  # an object array: stored with pickle
    else:
        _rewrite(path, **change)
    with pytest.raises(ValueError, match=match):
        fastlstm.load(path)


def test_load_refuses_truncated_and_foreign_files(tmp_path):
    path = tmp_path / "m.npz"
    fastlstm.save(_layer(), path)
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    with pytest.raises(ValueError, match="truncated or corrupted"):
        fastlstm.load(path)
    path.write_bytes(b"hello")
    with pytest.raises(ValueError, match="not a readable fastlstm file"):
        fastlstm.load(path)
    np.savez(path, x=np.zeros(3))
    with pytest.raises(ValueError, match="not a fastlstm file"):
        fastlstm.load(path)
    with pytest.raises(FileNotFoundError):
        fastlstm.load(tmp_path / "missing.npz")


def test_save_refuses_what_it_cannot_store(tmp_path):
    with pytest.raises(TypeError, match="obj: expected"):
        fastlstm.save({"a": 1}, tmp_path / "x.npz")
    pytest.importorskip("sklearn")
    with pytest.raises(ValueError, match="not fitted"):
        fastlstm.save(fastlstm.LSTMRegressor(), tmp_path / "x.npz")


def test_file_is_a_plain_zip_of_npy_with_json_config(tmp_path):
    path = tmp_path / "m.npz"
    fastlstm.save(_layer(), path)
    with zipfile.ZipFile(path) as z:
        names = set(z.namelist())
    assert {"__fastlstm_format__.npy", "__kind__.npy", "__config__.npy"} <= names
    with np.load(path, allow_pickle=False) as data:
        config = json.loads(str(data["__config__"]))
        assert int(data["__fastlstm_format__"]) == io.FORMAT_VERSION
    assert config["hidden_size"] == 5 and config["bidirectional"] is True


@pytest.mark.skipif(os.name != "posix", reason="file modes and the umask are POSIX")
@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002])
def test_save_gives_the_file_the_mode_the_umask_says(tmp_path, mask):
    previous = os.umask(mask)
    try:
        fastlstm.save(fastlstm.LSTMLayer(2, 3, seed=0), tmp_path / "m.npz")
        with open(tmp_path / "plain", "wb"):
            pass
    finally:
        os.umask(previous)
    mode = stat.S_IMODE(os.stat(tmp_path / "m.npz").st_mode)
    assert mode == 0o666 & ~mask == stat.S_IMODE(os.stat(tmp_path / "plain").st_mode)


def test_dir_lists_the_lazy_names():
    names = dir(fastlstm)
    for name in ("LSTMRegressor", "save", "load", "to_onnx", "from_onnx", "LSTM", "trace"):
        assert name in names, name
    assert set(fastlstm.__all__) <= set(names)
