"""fastlstm.LSTMRegressor: scikit-learn's estimator checks, model selection, behaviour, and one
epoch of training against Keras (same weights, same batches) when keras is installed."""

import os

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")

from sklearn.model_selection import GridSearchCV, TimeSeriesSplit  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import FunctionTransformer  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

from fastlstm import LSTMRegressor, NonFiniteLossError  # noqa: E402


def _sine_windows(n=200, T=12, seed=0, noise=0.05):
    rng = np.random.default_rng(seed)
    t = np.arange(n + T) * 0.3
    series = np.sin(t) + noise * rng.standard_normal(t.size)
    X = np.stack([series[i:i + T] for i in range(n)])
    y = series[T:T + n]
    return X[:, :, None], y


@parametrize_with_checks([LSTMRegressor(hidden_size=8, epochs=100, batch_size=16,
                                        learning_rate=0.01, random_state=0)])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def test_learns_a_sine_and_generalises():
    X, y = _sine_windows()
    est = LSTMRegressor(hidden_size=16, epochs=60, learning_rate=0.01, random_state=0)
    est.fit(X[:150], y[:150])
    assert est.score(X[150:], y[150:]) > 0.9
    assert est.history_["loss"][-1] < est.history_["loss"][0] / 5
    assert est.n_features_in_ == 1 and est.n_outputs_ == 1
    assert est.predict(X[150:]).shape == (50,)


def test_same_seed_same_model_and_different_seed_differs():
    X, y = _sine_windows(60)
    a = LSTMRegressor(hidden_size=6, epochs=5, random_state=3).fit(X, y).predict(X)
    b = LSTMRegressor(hidden_size=6, epochs=5, random_state=3).fit(X, y).predict(X)
    c = LSTMRegressor(hidden_size=6, epochs=5, random_state=4).fit(X, y).predict(X)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("kwargs", [dict(num_layers=2), dict(bidirectional=True),
                                    dict(num_layers=2, bidirectional=True, activation="relu"),
                                    dict(optimizer="sgd", momentum=0.9, learning_rate=0.01),
                                    dict(dtype="float64", clip_norm=1.0, clip_value=0.5)])
def test_variants_train(kwargs):
    X, y = _sine_windows(80)
    est = LSTMRegressor(hidden_size=8, epochs=15, random_state=0, **kwargs).fit(X, y)
    assert est.history_["loss"][-1] < est.history_["loss"][0]
    assert np.all(np.isfinite(est.predict(X)))


def test_multi_output_direct_forecast_and_multi_feature():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 7, 3))
    Y = np.stack([X[:, -1, 0], X[:, -2, 1] * 2.0, X[:, :, 2].sum(axis=1)], axis=1)
    est = LSTMRegressor(hidden_size=16, epochs=80, learning_rate=0.01, random_state=0)
    est.fit(X, Y)
    assert est.predict(X).shape == (64, 3)
    assert est.n_features_in_ == 3 and est.n_outputs_ == 3
    assert est.score(X, Y) > 0.8
    with pytest.raises(ValueError, match="X has 2 features, but LSTMRegressor is expecting 3"):
        est.predict(X[:, :, :2])
    assert est.predict(X[:, :4]).shape == (64, 3)  # 3-D input: any number of steps


def test_validation_split_is_the_last_part_and_early_stopping_restores_best():
    X, y = _sine_windows(100)
    est = LSTMRegressor(hidden_size=8, epochs=200, learning_rate=0.05, validation_split=0.2,
                        early_stopping=True, patience=3, random_state=0).fit(X, y)
    hist = est.history_
    assert len(hist["val_loss"]) == len(hist["loss"]) < 200
    assert est.best_epoch_ == int(np.argmin(hist["val_loss"]))
    # The restored weights are the best epoch's: recompute its validation loss.
    Xv, yv = X[80:], y[80:]
    pred = est.predict(Xv)
    scaled = np.mean(((pred - yv) / est.y_scale_[0]) ** 2)
    np.testing.assert_allclose(scaled, hist["val_loss"][est.best_epoch_], rtol=1e-4)
    # standardization comes from the training part only
    np.testing.assert_allclose(est.y_mean_, [y[:80].mean()], rtol=1e-12)


def test_grid_search_with_time_series_split_and_pipeline():
    X, y = _sine_windows(90)
    X2 = X[:, :, 0]  # (n, T): one feature per step
    pipe = make_pipeline(FunctionTransformer(lambda a: a * 1.0),
                         LSTMRegressor(epochs=10, random_state=0))
    search = GridSearchCV(pipe, {"lstmregressor__hidden_size": [4, 8]},
                          cv=TimeSeriesSplit(n_splits=3))
    search.fit(X2, y)
    assert search.best_params_["lstmregressor__hidden_size"] in (4, 8)
    assert search.predict(X2).shape == (90,)


def test_non_finite_loss_stops_with_clear_error_keeping_finite_weights():
    X, y = _sine_windows(40)
    est = LSTMRegressor(hidden_size=4, epochs=5, standardize=False, optimizer="sgd",
                        learning_rate=1e30, random_state=0)
    with pytest.raises(NonFiniteLossError, match="learning_rate"):
        est.fit(X, y * 1e30)
    assert np.isfinite(est.lstm_.flat).all() and np.isfinite(est.head_.flat).all()


@pytest.mark.parametrize("kwargs, match", [
    (dict(hidden_size=0), "hidden_size"), (dict(epochs=1.5), "epochs"),
    (dict(validation_split=1.0), "validation_split"), (dict(dtype="float16"), "dtype"),
    (dict(activation="sigmoid"), "activation"), (dict(optimizer="rmsprop"), "optimizer"),
    (dict(validation_split=0.01), "validation_split"),
])
def test_bad_parameters_are_named(kwargs, match):
    X, y = _sine_windows(20)
    with pytest.raises(ValueError, match=match):
        LSTMRegressor(**{"epochs": 1, **kwargs}).fit(X, y)


def test_progress_bar_shows_losses(capsys):
    pytest.importorskip("tqdm")
    X, y = _sine_windows(30)
    LSTMRegressor(hidden_size=4, epochs=3, verbose=1, validation_split=0.2,
                  random_state=0).fit(X, y)
    err = capsys.readouterr().err
    assert "3/3" in err and "val_loss" in err


def _keras():
    os.environ.setdefault("KERAS_BACKEND", "torch")
    return pytest.importorskip("keras")


@pytest.mark.parametrize("activation", ["tanh", "relu"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_training_matches_keras(activation, bidirectional):
    """Same initial weights, same batches (no shuffling), Adam: after two epochs the fitted
    model predicts what Keras's LSTM + Dense predicts (float32)."""
    keras = _keras()
    X, y = _sine_windows(48, T=6)
    X = X.astype(np.float32)
    y = y.astype(np.float32)
    H = 5
    est = LSTMRegressor(hidden_size=H, epochs=1, batch_size=16, shuffle=False,
                        standardize=False, activation=activation, bidirectional=bidirectional,
                        learning_rate=0.01, random_state=0).fit(X, y)
    keras.utils.set_random_seed(0)
    lstm = keras.layers.LSTM(H, activation=activation)
    inner = keras.layers.Bidirectional(lstm, merge_mode="concat") if bidirectional else lstm
    model = keras.Sequential([keras.Input((6, 1)), inner, keras.layers.Dense(1)])
    # Keras's weights -> ours (kernel (I, 4H) and recurrent (H, 4H) transposed; one bias).
    layers = [inner.forward_layer, inner.backward_layer] if bidirectional else [lstm]
    sd = {}
    for d, layer in enumerate(layers):
        kernel, recurrent, bias = layer.get_weights()
        sfx = "_reverse" if d else ""
        sd["weight_ih_l0" + sfx] = kernel.T
        sd["weight_hh_l0" + sfx] = recurrent.T
        sd["bias_ih_l0" + sfx] = bias
        sd["bias_hh_l0" + sfx] = np.zeros_like(bias)
    est.lstm_.load_state_dict(sd)
    dense_kernel, dense_bias = model.layers[-1].get_weights()
    est.head_.weight[...] = dense_kernel.T
    est.head_.bias[...] = dense_bias
    np.testing.assert_allclose(est.predict(X), model.predict(X, verbose=0)[:, 0], rtol=1e-4,
                               atol=1e-5)
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    model.fit(X, y, epochs=2, batch_size=16, shuffle=False, verbose=0)
    est.set_params(warm_start=True, epochs=2).fit(X, y)
    np.testing.assert_allclose(est.predict(X), model.predict(X, verbose=0)[:, 0], rtol=1e-3,
                               atol=1e-4)


def test_windows_of_different_lengths_read_each_at_its_own_last_step():
    """A list of windows of different lengths: fit and predict equal, window by window,
    the same model fed each window alone (the padded call at its own length)."""
    rng = np.random.default_rng(0)
    windows = [rng.standard_normal((int(n), 2)) for n in rng.integers(3, 12, 40)]
    y = np.array([w[:, 0].sum() for w in windows])
    est = LSTMRegressor(hidden_size=6, epochs=3, batch_size=8, random_state=0,
                        dtype="float64", validation_split=0.2).fit(windows, y)
    assert est.n_features_in_ == 2 and est.x_ndim_ == 3
    assert len(est.history_["loss"]) == 3 and len(est.history_["val_loss"]) == 3
    pred = est.predict(windows)
    alone = np.array([est.predict(w[None])[0] for w in windows])
    np.testing.assert_allclose(pred, alone, rtol=1e-10, atol=1e-12)
    # the standardization comes from the windows' own steps, not the padding
    train = np.concatenate(windows[:32])
    np.testing.assert_allclose(est.x_mean_, train.mean(axis=0), rtol=1e-12)
    # one feature: windows (T_i,)
    est1 = LSTMRegressor(hidden_size=4, epochs=2, random_state=0).fit(
        [w[:, 0] for w in windows], y)
    assert est1.predict([windows[0][:, 0], windows[1][:5, 0]]).shape == (2,)
    # one-feature windows of one length, or a single one, are windows too
    same = [windows[0][:3, 0], windows[1][:3, 0]]
    np.testing.assert_allclose(est1.predict(same), est1.predict(np.stack(same)[:, :, None]))
    assert est1.predict([windows[2][:, 0]]).shape == (1,)


def test_windows_of_different_lengths_train_like_one_window_at_a_time():
    """Plain SGD, batches of one window, no shuffling, no standardization: a fit on a list of
    windows of different lengths equals warm-started fits on each window alone (the padded
    one-call epoch kernel at that window's length)."""
    rng = np.random.default_rng(1)
    windows = [rng.standard_normal((int(n), 2)) for n in (5, 2, 7, 3, 6)]
    y = rng.standard_normal(5)
    kw = dict(hidden_size=4, epochs=1, batch_size=1, optimizer="sgd", learning_rate=0.05,
              shuffle=False, standardize=False, random_state=3, dtype="float64")
    ragged = LSTMRegressor(**kw).fit(windows, y)
    one = LSTMRegressor(warm_start=True, **kw)
    for w, t in zip(windows, y):
        one.fit(w[None], [t])
    np.testing.assert_allclose(ragged.lstm_.flat, one.lstm_.flat, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ragged.head_.flat, one.head_.flat, rtol=1e-10, atol=1e-12)


def test_windows_of_different_lengths_bad_input():
    with pytest.raises(ValueError, match=r"X\[1\] has 3 features"):
        LSTMRegressor(epochs=1).fit([np.zeros((3, 2)), np.zeros((4, 3))], [0.0, 1.0])
    with pytest.raises(ValueError, match=r"X\[0\]: expected a window"):
        LSTMRegressor(epochs=1).fit([np.zeros((0, 2)), np.zeros((4, 2))], [0.0, 1.0])
    with pytest.raises(ValueError, match=r"y: expected \(2,\)"):
        LSTMRegressor(epochs=1).fit([np.zeros((3, 2)), np.zeros((4, 2))], [0.0, 1.0, 2.0])
    with pytest.raises(ValueError, match=r"X\[1\] contains NaN"):
        LSTMRegressor(epochs=1).fit([np.zeros((3, 2)), np.full((4, 2), np.nan)], [0.0, 1.0])
