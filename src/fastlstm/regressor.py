"""fastlstm.LSTMRegressor: sequence-to-value regression with scikit-learn's conventions.

The model is seed 002's Keras model: ``LSTM(hidden_size, activation=...)`` (stacked and/or
bidirectional) whose last hidden state feeds a ``Dense(n_outputs)`` head, trained on the MSE with
Adam or SGD over seeded mini-batches. scikit-learn is needed for the estimator machinery
(``pip install "fastlstm[sklearn]"``); the kernels are fastlstm's.
"""

from __future__ import annotations

import sys

import numpy as np

from ._governor import TeamGovernor as _TeamGovernor
from .layer import LSTMLayer
from .training import SGD, Adam, Dense, make_optimizer, mse_loss

try:
    from sklearn.base import BaseEstimator, RegressorMixin
    from sklearn.utils.validation import check_array, check_is_fitted, validate_data
except ImportError as exc:  # pragma: no cover - exercised only without scikit-learn
    raise ImportError("fastlstm.LSTMRegressor needs scikit-learn>=1.6: "
                      "pip install 'fastlstm[sklearn]'") from exc

from . import _core
from ._buffers import aligned_empty
from ._validation import dtype_name

__all__ = ["LSTMRegressor"]

_DTYPES = {"float32": np.float32, "float64": np.float64}


class LSTMRegressor(RegressorMixin, BaseEstimator):
    """LSTM regressor: windows ``X`` to one value or a vector of values ``y`` (e.g. a direct
    k-step forecast).

    Parameters
    ----------
    hidden_size : int, default 50
        LSTM units per layer and direction.
    num_layers : int, default 1
        Stacked LSTM layers (Keras: ``LSTM(..., return_sequences=True)`` before each extra one).
    bidirectional : bool, default False
        Keras's ``Bidirectional(LSTM(...))`` with ``merge_mode='concat'``.
    activation : {'tanh', 'relu', 'linear'}, default 'tanh'
        Keras's ``activation`` of the LSTM (candidate and cell output).
    epochs : int, default 100
    batch_size : int, default 32
    optimizer : {'adam', 'sgd'}, default 'adam'
        Keras's rules and defaults (Adam: betas 0.9/0.999, epsilon 1e-7).
    learning_rate : float, default 1e-3
    momentum : float, default 0.0
        SGD's momentum (ignored by Adam).
    validation_split : float in [0, 1), default 0.0
        The last fraction of the samples (in the order given, i.e. time order, as Keras takes
        it) is held out to compute ``val_loss`` each epoch.
    early_stopping : bool, default False
        Stop when the monitored loss (``val_loss`` if there is a validation split, else
        ``loss``) has not improved by more than ``min_delta`` for ``patience`` epochs, and
        restore the weights of the best epoch.
    patience : int, default 10
    min_delta : float, default 0.0
    clip_norm : float or None, default None
        Clip the gradients by their global norm before each update.
    clip_value : float or None, default None
        Clip every gradient element to ``[-clip_value, clip_value]``.
    shuffle : bool, default True
        Shuffle the training samples every epoch (seeded by ``random_state``).
    standardize : bool, default True
        Scale each input feature and each target to zero mean and unit variance with the
        training data's statistics, and undo it on the predictions.
    warm_start : bool, default False
        Continue from the fitted weights (if their sizes fit the data) instead of new ones;
        the optimizer starts afresh, as a new ``compile`` does in Keras.
    random_state : int or None, default None
        Seeds the initial weights and the shuffling: the same seed gives the same model.
    dtype : {'float32', 'float64'}, default 'float32'
    verbose : int, default 0
        1 shows a progress bar over the epochs (tqdm) with ``loss`` and ``val_loss``.

    Attributes
    ----------
    n_features_in_ : int
        For 3-D ``X (n, T, F)``, ``F``. For 2-D ``X (n, T)`` scikit-learn's convention holds:
        the ``T`` columns are the features (``n_features_in_ == T``); the LSTM reads them as
        ``T`` steps of one feature, and ``predict`` needs the same ``T``.
    n_outputs_ : int
    x_ndim_, y_ndim_ : int
        The dimensions of ``X`` (2 or 3) and ``y`` (1 or 2) in ``fit``: ``predict`` takes ``X``
        and returns values shaped alike; the converters read them.
    history_ : dict
        ``'loss'`` and ``'val_loss'`` (empty without a validation split): one value per epoch,
        in the standardized units the model is trained in.
    best_epoch_ : int
        The epoch whose weights the model holds (the last one without early stopping).
    lstm_ : LSTMLayer
    head_ : fastlstm.training.Dense
    x_mean_, x_scale_, y_mean_, y_scale_ : ndarray
        The standardization (zeros and ones when ``standardize=False``).
    """

    def __init__(self, hidden_size=50, num_layers=1, bidirectional=False, activation="tanh",
                 epochs=100, batch_size=32, optimizer="adam", learning_rate=1e-3, momentum=0.0,
                 validation_split=0.0, early_stopping=False, patience=10, min_delta=0.0,
                 clip_norm=None, clip_value=None, shuffle=True, standardize=True,
                 warm_start=False, random_state=None, dtype="float32", verbose=0):
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bidirectional = bidirectional
        self.activation = activation
        self.epochs = epochs
        self.batch_size = batch_size
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.momentum = momentum
        self.validation_split = validation_split
        self.early_stopping = early_stopping
        self.patience = patience
        self.min_delta = min_delta
        self.clip_norm = clip_norm
        self.clip_value = clip_value
        self.shuffle = shuffle
        self.standardize = standardize
        self.warm_start = warm_start
        self.random_state = random_state
        self.dtype = dtype
        self.verbose = verbose

    # --- scikit-learn protocol ---------------------------------------------------------------

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        tags.input_tags.three_d_array = True
        return tags

    def fit(self, X, y):
        """Train on windows ``X`` (n, T, F) or (n, T) and targets ``y`` (n,) or (n, k).

        ``X`` may also be a list of windows of different lengths, each (T_i, F) (or (T_i,)
        for one feature): each window's prediction is read at its own last step, as a Keras
        model with ``Masking`` reads right-padded windows. Such data trains in the same one
        kernel call per epoch, each batch's windows sorted by length so that its steps cost
        their real length (PyTorch's packed sequences); ``predict`` then takes such lists too
        (and (n, T, F) arrays).

        Returns
        -------
        self
        """
        self._check_params()
        dtype = _DTYPES[self.dtype]
        ragged = _ragged(X)
        if ragged:
            X3, lengths = _pad_windows(X, "X")
            self.x_ndim_, self.n_features_in_ = 3, X3.shape[2]
            y = check_array(y, ensure_2d=False, dtype=[np.float64, np.float32])
            if y.ndim not in (1, 2) or len(y) != len(X3):
                raise ValueError(f"y: expected ({len(X3)},) or ({len(X3)}, k) targets for "
                                 f"{len(X3)} windows, got shape {y.shape}")
            if not np.isfinite(y).all():
                raise ValueError("Input y contains NaN or infinity.")
        else:
            X, y = validate_data(self, X, y, allow_nd=True, multi_output=True, y_numeric=True,
                                 dtype=[np.float64, np.float32])
            X3 = self._as_sequences(X, fitting=True)
            lengths = None
        y2 = y.reshape(len(y), -1)
        self.y_ndim_ = y.ndim
        self.n_outputs_ = y2.shape[1]

        n = len(X3)
        n_val = int(np.floor(n * self.validation_split))
        if self.validation_split > 0 and (n_val == 0 or n_val == n):
            raise ValueError(f"validation_split={self.validation_split} leaves "
                             f"{n - n_val} training and {n_val} validation samples out of {n}; "
                             "both need at least one")
        X_train, y_train = X3[:n - n_val], y2[:n - n_val]
        X_val, y_val = X3[n - n_val:], y2[n - n_val:]
        len_train = len_val = None
        if ragged:
            len_train, len_val = lengths[:n - n_val], lengths[n - n_val:]

        if self.standardize:
            # over the steps that are the windows' own (all of them for an array)
            real = X_train if not ragged else X_train[_real_steps(X_train, len_train)][None]
            self.x_mean_ = real.mean(axis=(0, 1), dtype=np.float64)
            self.x_scale_ = _scale(real.std(axis=(0, 1), dtype=np.float64))
            self.y_mean_ = y_train.mean(axis=0, dtype=np.float64)
            self.y_scale_ = _scale(y_train.std(axis=0, dtype=np.float64))
        else:
            self.x_mean_ = np.zeros(X3.shape[2])
            self.x_scale_ = np.ones(X3.shape[2])
            self.y_mean_ = np.zeros(self.n_outputs_)
            self.y_scale_ = np.ones(self.n_outputs_)
        Xs_train = self._scale_x(X_train, dtype)
        ys_train = ((y_train - self.y_mean_) / self.y_scale_).astype(dtype)
        Xs_val = self._scale_x(X_val, dtype)
        ys_val = ((y_val - self.y_mean_) / self.y_scale_).astype(dtype)

        rng = np.random.default_rng(self.random_state)
        seeds = rng.integers(0, 2 ** 63, size=2)
        directions = 2 if self.bidirectional else 1
        if not (self.warm_start and self._weights_fit(X3.shape[2], dtype)):
            self.lstm_ = LSTMLayer(X3.shape[2], self.hidden_size, self.num_layers,
                                   bidirectional=self.bidirectional, batch_first=True,
                                   dtype=dtype, seed=int(seeds[0]), activation=self.activation)
            _keras_init(self.lstm_, np.random.default_rng(seeds[0]))
            self.head_ = Dense(directions * self.hidden_size, self.n_outputs_, dtype=dtype,
                               seed=int(seeds[1]))
        optimizer = make_optimizer(self.optimizer, self.learning_rate, self.momentum,
                                   self.clip_value, self.clip_norm)
        params = [self.lstm_.flat, self.head_.flat]

        self.history_ = {"loss": [], "val_loss": []}
        monitor = "val_loss" if n_val else "loss"
        best, best_params, wait = np.inf, None, 0
        self.best_epoch_ = -1
        # One C call per epoch (csrc/model.c) for the optimizers it knows; a user's own
        # optimizer object runs the loop below in Python, batch by batch.
        epoch = (_EpochKernel(self, optimizer, Xs_train, ys_train, Xs_val, ys_val, len_train,
                              len_val)
                 if getattr(self, "_kernel_loop", True) and type(optimizer) in (Adam, SGD)
                 else _EpochLoop(self, optimizer, Xs_train, ys_train, Xs_val, ys_val,
                                 len_train, len_val))
        bar = self._progress_bar()
        try:
            for e in range(self.epochs):
                order = rng.permutation(len(Xs_train)) if self.shuffle \
                    else np.arange(len(Xs_train))
                loss, val_loss = epoch.run(order, e)
                self.history_["loss"].append(loss)
                if n_val:
                    self.history_["val_loss"].append(val_loss)
                current = self.history_[monitor][-1]
                if bar is not None:
                    bar.set_postfix({k: f"{v[-1]:.4g}" for k, v in self.history_.items() if v})
                    bar.update(1)
                elif self.verbose:
                    print(f"Epoch {e + 1}/{self.epochs} "
                          + " ".join(f"{k}: {v[-1]:.6f}" for k, v in self.history_.items() if v),
                          file=sys.stderr)
                if current < best - self.min_delta:
                    best, wait, self.best_epoch_ = current, 0, e
                    if self.early_stopping:
                        best_params = [p.copy() for p in params]
                elif self.early_stopping:
                    wait += 1
                    if wait >= self.patience:
                        break
        finally:
            if bar is not None:
                bar.close()
        if self.early_stopping and best_params is not None:
            for p, b in zip(params, best_params):
                p[...] = b
        else:
            self.best_epoch_ = len(self.history_["loss"]) - 1
        return self

    def predict(self, X):
        """Predictions for windows ``X``: (n,) if ``y`` was 1-D in ``fit``, else (n, k)."""
        check_is_fitted(self, "lstm_")
        if _ragged(X) or (self.x_ndim_ == 3 and isinstance(X, (list, tuple)) and X
                          and all(np.ndim(w) == 1 for w in X)):
            # windows of different lengths, or one-feature windows (T_i,) of a 3-D model
            if self.x_ndim_ != 3:
                raise ValueError("X: windows of different lengths need a model fitted on "
                                 "(n, T, F) windows or on such a list")
            X3, lengths = _pad_windows(X, "X")
            if X3.shape[2] != self.n_features_in_:
                raise ValueError(f"X has {X3.shape[2]} features, but LSTMRegressor is "
                                 f"expecting {self.n_features_in_} features as input")
            dtype = self.lstm_.dtype
            pred = self._predict_scaled(self._scale_x(X3, dtype), lengths).astype(np.float64)
            pred = pred * self.y_scale_ + self.y_mean_
            return pred[:, 0] if self.y_ndim_ == 1 else pred
        if self.x_ndim_ == 2:
            X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        else:
            X = check_array(X, allow_nd=True, dtype=[np.float64, np.float32])
        X3 = self._as_sequences(X, fitting=False)
        dtype = self.lstm_.dtype
        pred = self._predict_scaled(self._scale_x(X3, dtype)).astype(np.float64)
        pred = pred * self.y_scale_ + self.y_mean_
        return pred[:, 0] if self.y_ndim_ == 1 else pred

    # --- internals ---------------------------------------------------------------------------

    def _check_params(self):
        def positive_int(name):
            value = getattr(self, name)
            if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) \
                    or value < 1:
                raise ValueError(f"{name}: expected a positive whole number, got {value!r}")

        for name in ("hidden_size", "num_layers", "epochs", "batch_size", "patience"):
            positive_int(name)
        if not 0.0 <= float(self.validation_split) < 1.0:
            raise ValueError(f"validation_split: expected a number in [0, 1), got "
                             f"{self.validation_split!r}")
        if self.dtype not in _DTYPES:
            raise ValueError(f"dtype: expected 'float32' or 'float64', got {self.dtype!r}")
        if self.activation not in _core.ACTIVATIONS:
            raise ValueError(f"activation: expected one of {sorted(_core.ACTIVATIONS)}, got "
                             f"{self.activation!r}")
        if float(self.min_delta) < 0:
            raise ValueError(f"min_delta: expected a number >= 0, got {self.min_delta!r}")

    def _weights_fit(self, n_features, dtype):
        """Whether the fitted weights can continue training on this data (warm_start)."""
        lstm, head = getattr(self, "lstm_", None), getattr(self, "head_", None)
        return (lstm is not None and head is not None and lstm.input_size == n_features
                and lstm.hidden_size == self.hidden_size and lstm.num_layers == self.num_layers
                and lstm.bidirectional == bool(self.bidirectional)
                and lstm.activation == self.activation and lstm.dtype == np.dtype(dtype)
                and head.out_features == self.n_outputs_)

    def _as_sequences(self, X, fitting):
        """(n, T) -> (n, T, 1); (n, T, F) kept; anything else refused."""
        if X.ndim == 2:
            X3 = X[:, :, None]
        elif X.ndim == 3:
            X3 = X
        else:
            raise ValueError(f"X: expected (n_samples, n_steps, n_features) or (n_samples, "
                             f"n_steps), got shape {X.shape}")
        if fitting:
            self.x_ndim_ = X.ndim
            if X.ndim == 3:
                self.n_features_in_ = X.shape[2]
        elif X.ndim != self.x_ndim_:
            raise ValueError(f"X: the model was fitted on {self.x_ndim_}-D X, got shape "
                             f"{X.shape}")
        elif X.ndim == 3 and X.shape[2] != self.n_features_in_:
            raise ValueError(f"X has {X.shape[2]} features, but LSTMRegressor is expecting "
                             f"{self.n_features_in_} features as input")
        if X3.shape[1] == 0:
            raise ValueError(f"X: expected at least one step, got shape {X.shape}")
        return X3

    def _scale_x(self, X3, dtype):
        return np.ascontiguousarray((X3 - self.x_mean_) / self.x_scale_, dtype=dtype)

    def _model_dims(self):
        """The model's shape as the kernels take it (one bias per gate: b_hh held at 0)."""
        lstm = self.lstm_
        return (lstm.num_layers, lstm.num_directions, lstm.input_size, lstm.hidden_size,
                self.head_.out_features, _core.ACTIVATIONS[lstm.activation], 1)

    def _predict_scaled(self, Xs, lengths=None):
        """Standardized windows (n, T, F) (right-padded to the given lengths, or all T) ->
        standardized predictions (n, k): one kernel call (csrc/model.c), in chunks of rows
        inside it."""
        lstm = self.lstm_
        packed = [lstm._packed(l, d) for l in range(lstm.num_layers)
                  for d in range(lstm.num_directions)]
        isa = packed[0][0]
        n, T = Xs.shape[0], Xs.shape[1]
        dims = self._model_dims()
        out = np.empty((n, dims[4]), lstm.dtype)
        if n == 0:
            return out
        scratch = lstm._take_scratch(_core.model_predict_scratch_size(
            dtype_name(lstm.dtype), dims, T, n, isa))
        gov, key = lstm._governor, ("model predict", n, T)
        try:
            gov.report(key, _core.model_predict(
                lstm.flat, _weight_offsets(lstm), self.head_.flat, [p for _, p in packed],
                Xs.reshape(-1), out.reshape(-1), scratch, dims, n, T, isa_code=isa,
                threads=gov.threads(key), lengths=_lengths32(lengths)))
        finally:
            lstm._give_scratch(scratch)
        return out

    def _predict_lengths(self, Xs, lengths):
        """Standardized padded windows (n, T, F) of the given lengths -> standardized
        predictions (n, k), in chunks of windows (LSTMLayer.forward with lengths): the Python
        loop's path, independent of the kernel's."""
        n = len(Xs)
        out = np.empty((n, self.head_.out_features), self.lstm_.dtype)
        step = max(1, (1 << 22) // max(1, Xs.shape[1] * 4 * self.hidden_size))
        for a in range(0, n, step):
            out[a:a + step] = self._forward(Xs[a:a + step], training=False,
                                            lengths=lengths[a:a + step])
        return out

    def _forward(self, Xs, training, lengths=None):
        """Standardized windows (B, T, F) -> standardized predictions (B, k)."""
        _, (h_n, _) = self.lstm_.forward(Xs, training=training, lengths=lengths)
        D = 2 if self.bidirectional else 1
        # The last layer's final states, [forward, reverse]: Keras's return_sequences=False.
        features = np.concatenate(list(h_n[-D:]), axis=1) if D == 2 else h_n[-1]
        return self.head_.forward(features)

    def _backward(self, d_pred):
        """Gradients of every parameter from d(loss)/d(predictions); bias_hh's are zeroed: the
        model has one bias per gate (Keras's), kept in bias_ih, with bias_hh fixed at 0."""
        d_features = self.head_.backward(d_pred)
        lstm = self.lstm_
        L, D, H = lstm.num_layers, lstm.num_directions, lstm.hidden_size
        B = d_features.shape[0]
        dh_n = np.zeros((L * D, B, H), lstm.dtype)
        for d in range(D):
            dh_n[(L - 1) * D + d] = d_features[:, d * H:(d + 1) * H]
        # the loss reads the final hidden states only: no dy, no dc_n, no dx
        lstm._backward_of(lstm._cache, None, (dh_n, None), need_dx=False)
        for name, grad in lstm.grads.items():
            if name.startswith("bias_hh"):
                grad[...] = 0

    def _progress_bar(self):
        if not self.verbose:
            return None
        try:
            from tqdm.auto import tqdm
        except ImportError:
            return None
        return tqdm(total=self.epochs, desc="LSTMRegressor.fit", unit="epoch", leave=True)


def _ragged(X):
    """Whether X is a list (or tuple) of windows of different lengths."""
    if not isinstance(X, (list, tuple)) or not X:
        return False
    try:
        lens = {np.shape(w)[0] if np.ndim(w) else -1 for w in X}
    except (TypeError, ValueError, IndexError):
        return False
    return len(lens) > 1


def _pad_windows(X, name):
    """A list of windows (T_i, F) or (T_i,) -> right-padded (n, T_max, F) float64 and the
    lengths (n,); every window checked (numbers, finite, at least one step, same F)."""
    windows = []
    for i, w in enumerate(X):
        try:
            a = np.asarray(w, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{name}[{i}] could not be read as numbers: {exc}") from exc
        if a.ndim == 1:
            a = a[:, None]
        if a.ndim != 2 or a.shape[0] == 0 or a.shape[1] == 0:
            raise ValueError(f"{name}[{i}]: expected a window (steps, features) or (steps,) "
                             f"with at least one step, got shape {a.shape}")
        if not np.isfinite(a).all():
            raise ValueError(f"{name}[{i}] contains NaN or infinity.")
        windows.append(a)
    F = windows[0].shape[1]
    bad = next((i for i, a in enumerate(windows) if a.shape[1] != F), None)
    if bad is not None:
        raise ValueError(f"{name}[{bad}] has {windows[bad].shape[1]} features, {name}[0] {F}: "
                         "every window needs the same features")
    lengths = np.array([len(a) for a in windows], np.int64)
    out = np.zeros((len(windows), int(lengths.max()), F))
    for i, a in enumerate(windows):
        out[i, :len(a)] = a
    return out, lengths


def _lengths32(lengths):
    """Window lengths as the kernels take them (contiguous int32), or None."""
    return None if lengths is None else np.ascontiguousarray(lengths, dtype=np.int32)


def _real_steps(X3, lengths):
    """(n, T) booleans: the steps of each padded window that are its own."""
    return np.arange(X3.shape[1])[None, :] < lengths[:, None]


def _keras_init(layer, rng):
    """Keras's LSTM initialisation (seed 002's model): kernel Glorot-uniform, recurrent kernel
    orthogonal, bias zeros with the forget gate's at 1 (``unit_forget_bias``); one bias, so
    bias_hh is 0 (and stays 0 in training)."""
    H = layer.hidden_size
    for name, value in layer.parameters():
        if name.startswith("weight_ih"):
            limit = np.sqrt(6.0 / (value.shape[1] + value.shape[0]))
            value[...] = rng.uniform(-limit, limit, value.shape)
        elif name.startswith("weight_hh"):
            # Keras: an orthogonal (H, 4H) kernel; ours is its transpose.
            q, r = np.linalg.qr(rng.standard_normal((4 * H, H)))
            value[...] = q * np.sign(np.diag(r))
        else:
            value[...] = 0
            if name.startswith("bias_ih"):
                value[H:2 * H] = 1.0  # gate order i, f, g, o


def _scale(std):
    """Standard deviations as divisors: constant features (std 0, or so small that dividing by
    them would overflow float32, as from rounding noise) are left unscaled."""
    std = np.asarray(std, dtype=np.float64)
    return np.where(std > 1e-30, std, 1.0)


def _weight_offsets(lstm):
    """Where w_ih, w_hh, b_ih, b_hh of each layer and direction start in ``lstm.flat``, in
    the kernels' order ((layer * D + direction) * 4 + which)."""
    at = lstm.offsets()
    return np.asarray([at[name] for layer in range(lstm.num_layers)
                       for d in range(lstm.num_directions)
                       for name in lstm._names_of(layer, d)], dtype=np.int64)


def _nonfinite(kind, epoch, loss):
    if kind == "loss":
        return _core.NonFiniteLossError(
            f"LSTMRegressor.fit: the loss became {loss} in epoch {epoch}; the model keeps the "
            "weights of the last finite update (try a smaller learning_rate, clip_norm, or "
            "standardize=True)")
    return _core.NonFiniteLossError(
        f"LSTMRegressor.fit: an update in epoch {epoch} made weights NaN or infinite; the model "
        "keeps the weights before it (try a smaller learning_rate, clip_norm, or "
        "standardize=True)")


class _EpochKernel:
    """Training epochs as single kernel calls (csrc/model.c fl_model_train_epoch): every
    batch's gather, forward, loss, backward, clipping, update and checks, and the validation
    loss, without Python in between. The optimizer object keeps its state (its slots and
    iteration count), so it can go on in Python or here alike."""

    def __init__(self, est, optimizer, X, y, X_val, y_val, lengths=None, lengths_val=None):
        lstm = est.lstm_
        self.est, self.opt = est, optimizer
        self.lengths = _lengths32(lengths)
        self.lengths_val = _lengths32(lengths_val) if len(X_val) else None
        self.dims = est._model_dims()
        self.X, self.y = X.reshape(-1), y.reshape(-1)
        self.X_val = X_val.reshape(-1) if len(X_val) else None
        self.y_val = y_val.reshape(-1) if len(y_val) else None
        self.N, self.T, self.N_val = X.shape[0], X.shape[1], X_val.shape[0]
        self.offsets = _weight_offsets(lstm)
        self.isa = _core.isa()
        self.scratch = aligned_empty(_core.model_train_scratch_size(
            dtype_name(lstm.dtype), self.dims, lstm.flat.size, self.T, est.batch_size, self.N_val,
            self.isa), lstm.dtype)
        params = [lstm.flat, est.head_.flat]
        if optimizer._slots is None:
            optimizer._slots = [optimizer._new_slots(p) for p in params]
        if isinstance(optimizer, Adam):
            (m_p, v_p), (m_h, v_h) = optimizer._slots
            self.kind, extra = 1, (optimizer.beta_1, optimizer.beta_2, optimizer.epsilon, 0.0,
                                   False)
        else:
            (m_p, m_h), v_p, v_h = optimizer._slots, None, None
            self.kind, extra = 0, (0.0, 0.0, 0.0, optimizer.momentum, optimizer.nesterov)
        self.slots = (m_p, v_p, m_h, v_h)
        self.settings = (optimizer.learning_rate,) + extra + (
            optimizer.clipvalue or 0.0, optimizer.global_clipnorm or 0.0)
        self.governor = _TeamGovernor()

    def run(self, order, epoch):
        est, lstm, opt = self.est, self.est.lstm_, self.opt
        key = ("epoch", self.N, self.T)
        loss, val_loss, _, failed, opt.iterations, team, wall = _core.model_train_epoch(
            lstm.flat, self.offsets, est.head_.flat, lstm.grad_flat, est.head_.grad_flat,
            self.kind, *self.settings, opt.iterations, *self.slots, self.X, self.y,
            np.ascontiguousarray(order, dtype=np.int64), self.N, self.T, est.batch_size,
            self.X_val, self.y_val, self.N_val, self.scratch, self.dims, isa_code=self.isa,
            threads=self.governor.threads(key), lengths=self.lengths,
            lengths_val=self.lengths_val)
        self.governor.report(key, (team, wall))
        if failed:
            raise _nonfinite("loss" if failed == 1 else "weights", epoch, loss)
        return loss, val_loss


class _EpochLoop:
    """Training epochs batch by batch in Python (LSTMLayer.forward/backward, the head and the
    optimizer in NumPy): for an optimizer object of the user's own, and the tests' independent
    path to the kernel's epochs."""

    def __init__(self, est, optimizer, X, y, X_val, y_val, lengths=None, lengths_val=None):
        self.est, self.opt = est, optimizer
        self.X, self.y, self.X_val, self.y_val = X, y, X_val, y_val
        self.lengths, self.lengths_val = lengths, lengths_val
        self.params = [est.lstm_.flat, est.head_.flat]
        self.grads = [est.lstm_.grad_flat, est.head_.grad_flat]
        self.last_finite = [np.empty_like(p) for p in self.params]

    def run(self, order, epoch):
        est, params = self.est, self.params
        batch = est.batch_size
        total = 0.0
        for start in range(0, len(order), batch):
            idx = order[start:start + batch]
            lens = None if self.lengths is None else self.lengths[idx]
            pred = est._forward(self.X[idx], training=True, lengths=lens)
            loss, d_pred = mse_loss(pred, self.y[idx])
            if not np.isfinite(loss):
                raise _nonfinite("loss", epoch, loss)
            est._backward(d_pred)
            for kept, p in zip(self.last_finite, params):
                kept[...] = p
            self.opt.step(params, self.grads)
            if not all(np.isfinite(p).all() for p in params):
                for kept, p in zip(self.last_finite, params):
                    p[...] = kept
                raise _nonfinite("weights", epoch, loss)
            total += loss * len(idx)
        val_loss = None
        if len(self.X_val):
            pred = (est._forward(self.X_val, training=False) if self.lengths_val is None
                    else est._predict_lengths(self.X_val, self.lengths_val))
            val_loss = mse_loss(pred, self.y_val)[0]
        return total / len(self.X), val_loss
