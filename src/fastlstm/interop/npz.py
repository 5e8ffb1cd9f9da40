"""Save and load fastlstm models: one ``.npz`` file, no pickle.

A file holds the arrays of the model, a format version, the kind of object and its
configuration as JSON. It is written to a temporary file in the target folder and moved over the
target in one step (``os.replace``), so an interrupted save leaves any previous file intact.
Loading reads it with ``allow_pickle=False`` (nothing in a file is ever executed), rebuilds the
object from the configuration and checks every array's shape and dtype before using it.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile

import numpy as np

__all__ = ["save", "load", "FORMAT_VERSION"]

FORMAT_VERSION = 1
_META = ("__fastlstm_format__", "__kind__", "__config__")


def save(obj, path):
    """Write ``obj`` (``LSTM``, ``LSTMLayer`` or a fitted ``LSTMRegressor``) to ``path``.

    Parameters
    ----------
    obj : fastlstm.LSTM, fastlstm.LSTMLayer or fastlstm.LSTMRegressor
    path : str or os.PathLike
        The file to write (conventionally ending in ``.npz``; the name is used as given).
    """
    kind, config, arrays = _export(obj)
    payload = {"__fastlstm_format__": np.array(FORMAT_VERSION),
               "__kind__": np.array(kind), "__config__": np.array(json.dumps(config))}
    for name, value in arrays.items():
        payload["a/" + name] = np.asarray(value)
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".fastlstm-", suffix=".npz.tmp", dir=folder)
    try:
        # mkstemp makes the file 0600; give it the mode open() would have: 0666 less the umask
        os.chmod(tmp, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _umask():
    """The process's umask (read by setting it and putting it back: there is no getter)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def load(path):
    """Read a model written by :func:`save`; returns an object of the saved kind.

    Raises
    ------
    ValueError
        The file is not a fastlstm file, is truncated or corrupted, has another format version,
        holds pickled objects, or an array has the wrong shape or dtype (the message names it).
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such file")
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path}: not a readable fastlstm file (not an .npz archive; "
                         "truncated or corrupted?)")
    try:
        with np.load(path, allow_pickle=False) as data:
            files = {name: data[name] for name in data.files}
    except FileNotFoundError:
        raise
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise ValueError(f"{path}: holds pickled objects; fastlstm files never do and "
                             "are not loaded with pickle") from None
        raise ValueError(f"{path}: not a readable fastlstm file ({exc})") from None
    except (zipfile.BadZipFile, EOFError, OSError, KeyError, NotImplementedError,
            RuntimeError) as exc:  # zipfile: unknown compression, encrypted entries
        raise ValueError(f"{path}: not a readable fastlstm file (truncated or corrupted: "
                         f"{exc})") from None
    missing = [m for m in _META if m not in files]
    if missing:
        raise ValueError(f"{path}: not a fastlstm file (missing {', '.join(missing)})")
    version = files["__fastlstm_format__"]
    if version.shape != () or not np.issubdtype(version.dtype, np.integer) or \
            int(version) != FORMAT_VERSION:
        raise ValueError(f"{path}: format version {version!r}, this fastlstm reads version "
                         f"{FORMAT_VERSION}")
    kind = str(files["__kind__"])
    try:
        config = json.loads(str(files["__config__"]))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: the configuration is not valid JSON ({exc})") from None
    if not isinstance(config, dict):
        raise ValueError(f"{path}: the configuration must be a JSON object")
    arrays = {name[2:]: value for name, value in files.items() if name.startswith("a/")}
    builders = {"LSTM": _load_lstm, "LSTMLayer": _load_layer, "LSTMRegressor": _load_regressor}
    if kind not in builders:
        raise ValueError(f"{path}: unknown kind {kind!r} (expected one of {sorted(builders)})")
    try:
        return builders[kind](config, _Arrays(arrays, path))
    except (KeyError, TypeError) as exc:
        raise ValueError(f"{path}: invalid {kind} configuration ({exc})") from None


class _Arrays:
    """The saved arrays, handed out only with the expected shape and dtype."""

    def __init__(self, arrays, path):
        self._arrays, self._path = arrays, path

    def get(self, name, shape, dtype):
        if name not in self._arrays:
            raise ValueError(f"{self._path}: array {name!r} is missing")
        value = self._arrays[name]
        if tuple(value.shape) != tuple(shape):
            raise ValueError(f"{self._path}: array {name!r} has shape {tuple(value.shape)}, "
                             f"expected {tuple(shape)}")
        if value.dtype != np.dtype(dtype):
            raise ValueError(f"{self._path}: array {name!r} has dtype {value.dtype}, expected "
                             f"{np.dtype(dtype)}")
        return value

    def names(self, prefix):
        return [n for n in self._arrays if n.startswith(prefix)]


# --- export -----------------------------------------------------------------------------------

def _export(obj):
    from ..layer import LSTMLayer
    from ..lstm import LSTM

    if isinstance(obj, LSTM):
        config = {"input_size": obj.input_size, "hidden_size": obj.hidden_size,
                  "output_size": obj.output_size, "learning_rate": obj.learning_rate,
                  "clip": obj.clip, "verbose": obj.verbose, "dtype": obj.dtype.name}
        names = ("Wf", "Wi", "Wc", "Wo", "bf", "bi", "bc", "bo", "Wy", "by")
        return "LSTM", config, {n: getattr(obj, n) for n in names}
    if isinstance(obj, LSTMLayer):
        return "LSTMLayer", _layer_config(obj), obj.state_dict()
    if _is_regressor(obj):
        return _export_regressor(obj)
    raise TypeError(f"obj: expected fastlstm.LSTM, LSTMLayer or LSTMRegressor, got "
                    f"{type(obj).__name__}")


def _is_regressor(obj):
    """Whether obj is an LSTMRegressor (which needs scikit-learn: without it, none exists)."""
    try:
        from ..regressor import LSTMRegressor
    except ImportError:
        return False
    return isinstance(obj, LSTMRegressor)


def _layer_config(layer):
    return {"input_size": layer.input_size, "hidden_size": layer.hidden_size,
            "num_layers": layer.num_layers, "bidirectional": layer.bidirectional,
            "batch_first": layer.batch_first, "dtype": np.dtype(layer.dtype).name,
            "activation": layer.activation, "peepholes": layer.peepholes, "clip": layer.clip,
            "input_forget": layer.input_forget, "reverse": layer.reverse}


def _export_regressor(est):
    if not hasattr(est, "lstm_"):
        raise ValueError("obj: the LSTMRegressor is not fitted; fit it before saving")
    params = est.get_params()
    try:
        json.dumps(params)
    except TypeError:
        bad = [k for k, v in params.items() if not _jsonable(v)]
        raise ValueError(f"obj: parameters {bad} cannot be stored as JSON (pass names like "
                         "optimizer='adam' rather than objects to save the model)") from None
    fitted = {"n_features_in_": int(est.n_features_in_), "n_outputs_": int(est.n_outputs_),
              "fit_ndim": int(est.x_ndim_), "y_ndim": int(est.y_ndim_),
              "best_epoch_": int(est.best_epoch_), "layer": _layer_config(est.lstm_)}
    if hasattr(est, "feature_names_in_"):
        fitted["feature_names_in_"] = [str(n) for n in est.feature_names_in_]
    arrays = {"lstm/" + k: v for k, v in est.lstm_.state_dict().items()}
    arrays.update({"head/weight": est.head_.weight, "head/bias": est.head_.bias,
                   "x_mean_": est.x_mean_, "x_scale_": est.x_scale_, "y_mean_": est.y_mean_,
                   "y_scale_": est.y_scale_,
                   "history/loss": np.asarray(est.history_["loss"], np.float64),
                   "history/val_loss": np.asarray(est.history_["val_loss"], np.float64)})
    return "LSTMRegressor", {"params": params, "fitted": fitted}, arrays


def _jsonable(value):
    try:
        json.dumps(value)
        return True
    except TypeError:
        return False


# --- import -----------------------------------------------------------------------------------

def _load_lstm(config, arrays):
    from ..lstm import LSTM

    state = np.random.get_state()  # the constructor draws the seed's weights: keep the global RNG
    try:
        model = LSTM(config["input_size"], config["hidden_size"], config["output_size"],
                     config["learning_rate"], dtype=config["dtype"], verbose=config["verbose"],
                     clip=config["clip"])
    finally:
        np.random.set_state(state)
    H, I, O = model.hidden_size, model.input_size, model.output_size
    shapes = {"W": (H, H + I), "b": (H, 1)}
    for name in ("Wf", "Wi", "Wc", "Wo", "bf", "bi", "bc", "bo"):
        setattr(model, name, arrays.get(name, shapes[name[0]], model.dtype))
    model.Wy = arrays.get("Wy", (O, H), model.dtype)
    model.by = arrays.get("by", (O, 1), model.dtype)
    return model


def _build_layer(config):
    from ..layer import LSTMLayer

    return LSTMLayer(config["input_size"], config["hidden_size"], config["num_layers"],
                     bidirectional=config["bidirectional"], batch_first=config["batch_first"],
                     dtype=config["dtype"], activation=config["activation"],
                     peepholes=config.get("peepholes", False), clip=config.get("clip"),
                     input_forget=config.get("input_forget", False),
                     reverse=config.get("reverse", False))


def _fill_layer(layer, arrays, prefix=""):
    expected = {name: value.shape for name, value in layer.parameters()}
    extra = [n for n in arrays.names(prefix) if n[len(prefix):] not in expected] if prefix \
        else []
    if extra:
        raise ValueError(f"unexpected arrays {extra}")
    layer.load_state_dict({name: arrays.get(prefix + name, shape, layer.dtype)
                           for name, shape in expected.items()})


def _load_layer(config, arrays):
    layer = _build_layer(config)
    _fill_layer(layer, arrays)
    return layer


def _load_regressor(config, arrays):
    from ..regressor import LSTMRegressor
    from ..training import Dense

    est = LSTMRegressor(**config["params"])
    fitted = config["fitted"]
    est.lstm_ = _build_layer(fitted["layer"])
    _fill_layer(est.lstm_, arrays, "lstm/")
    dtype = est.lstm_.dtype
    k = fitted["n_outputs_"]
    est.head_ = Dense(est.lstm_.num_directions * est.lstm_.hidden_size, k, dtype=dtype)
    est.head_.weight[...] = arrays.get("head/weight", est.head_.weight.shape, dtype)
    est.head_.bias[...] = arrays.get("head/bias", (k,), dtype)
    F = est.lstm_.input_size
    for name, size in (("x_mean_", F), ("x_scale_", F), ("y_mean_", k), ("y_scale_", k)):
        setattr(est, name, arrays.get(name, (size,), np.float64))
    loss = arrays._arrays.get("history/loss", np.zeros(0))
    val = arrays._arrays.get("history/val_loss", np.zeros(0))
    est.history_ = {"loss": [float(v) for v in np.ravel(loss)],
                    "val_loss": [float(v) for v in np.ravel(val)]}
    est.n_features_in_ = fitted["n_features_in_"]
    est.n_outputs_ = k
    est.best_epoch_ = fitted["best_epoch_"]
    est.x_ndim_ = fitted["fit_ndim"]
    est.y_ndim_ = fitted["y_ndim"]
    if "feature_names_in_" in fitted:
        est.feature_names_in_ = np.asarray(fitted["feature_names_in_"], dtype=object)
    return est
