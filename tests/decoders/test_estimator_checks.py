"""scikit-learn conventions for our 3-D feature estimators.

``parametrize_with_checks`` feeds 2-D data, which PSD, NodeStrength, AugmentedCovariances and
FeatureSelector reject by design (they take epochs or feature cubes), so we run scikit-learn's
data-free checks plus shared checks of our own: clone + refit forgets state, pickling round trip,
transform stores nothing, inputs untouched, batch == one-by-one, and use inside pipelines and
GridSearchCV with pyRiemann / scikit-learn steps.
"""
from __future__ import annotations

import pickle

import joblib
import numpy as np
import pytest
from pyriemann.classification import MDM
from pyriemann.tangentspace import TangentSpace
from scipy.signal import lfilter
from sklearn.base import clone
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from sklearn.utils import estimator_checks as ec

from neurodeck.decoders.errors import DecoderError
from neurodeck.decoders.features.connectivity import NodeStrength
from neurodeck.decoders.features.covariance import AugmentedCovariances, Covariances
from neurodeck.decoders.features.psd import PSD
from neurodeck.decoders.selection import FeatureSelector

FS = 160.0
CH = ["C3", "Cz", "C4", "Pz"]


def _epochs(n_epochs: int = 24, n_ch: int = 4, n_times: int = 320, seed: int = 0):
    """AR(2) 'mu rhythm' epochs; class 1 has more power on channel 2 (C4), most at 11 Hz."""
    rng = np.random.default_rng(seed)
    X = lfilter([1.0], [1.0, -1.6, 0.95], rng.standard_normal((n_epochs, n_ch, n_times)), axis=-1)
    X += rng.standard_normal(X.shape)
    y = np.arange(n_epochs) % 2
    t = np.arange(n_times) / FS
    c = min(2, n_ch - 1)
    X[y == 1, c] = 1.5 * X[y == 1, c] + 4 * np.sin(2 * np.pi * 11 * t)
    return X, y


def _coupled(n_epochs: int = 40, n_times: int = 320, seed: int = 0):
    """Class 1: channel 2 carries channel 0's rhythm 3 samples later (lagged coupling)."""
    X, _ = _epochs(n_epochs, 4, n_times + 3, seed)
    y = np.arange(n_epochs) % 2
    X[y == 1, 2] = (X[y == 1, 2] - 4 * np.sin(2 * np.pi * 11 * np.arange(n_times + 3) / FS)) / 1.5
    X[y == 1, 2, 3:] += 1.5 * X[y == 1, 0, :-3]
    return X[..., 3:], y


def _cube(n_epochs: int = 24, n_ch: int = 4, n_freqs: int = 23, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = np.arange(n_epochs) % 2
    F = rng.standard_normal((n_epochs, n_ch, n_freqs))
    F[y == 1, 1, 3] += 2.0
    return F, y


# (estimator, data maker, fitted attributes that depend on the data)
CASES = {
    "psd-welch": (lambda: PSD(FS), _epochs, ["freqs_", "n_channels_"]),
    "psd-burg": (lambda: PSD(FS, method="burg", order=10), _epochs, ["freqs_", "n_channels_"]),
    "nodestrength": (lambda: NodeStrength(FS, kind="imcoh"), _epochs, ["freqs_", "n_channels_"]),
    "acm": (lambda: AugmentedCovariances(order=3, lag=2), _epochs, ["order_", "n_channels_"]),
    "acm-auto": (
        lambda: AugmentedCovariances(order="auto", lag="auto", max_order=4),
        _epochs,
        ["order_", "lag_", "n_channels_"],
    ),
    "selector": (lambda: FeatureSelector(n_features=3), _cube, ["selected_", "r2_"]),
}
IDS = list(CASES)


@pytest.fixture(params=IDS)
def case(request):
    make, data, attrs = CASES[request.param]
    return request.param, make, data, attrs


# --------------------------------------------------------------- scikit-learn's data-free checks
@pytest.mark.parametrize(
    "check",
    [
        ec.check_no_attributes_set_in_init,
        ec.check_get_params_invariance,
        ec.check_set_params,
        ec.check_estimator_cloneable,
        ec.check_estimator_repr,
        ec.check_do_not_raise_errors_in_init_or_set_params,
        ec.check_mixin_order,
        ec.check_transformers_unfitted,
        ec.check_valid_tag_types,
    ],
    ids=lambda c: c.__name__,
)
@pytest.mark.parametrize("name", IDS)
def test_sklearn_data_free_checks(name, check):
    est = CASES[name][0]()
    check(type(est).__name__, est)


# --------------------------------------------------------------------------- shared checks
def test_unfitted_transform_raises_not_fitted(case):
    _, make, data, _ = case
    X, _ = data()
    with pytest.raises(NotFittedError):
        make().transform(X)


def test_fit_returns_self_and_leaves_input_untouched(case):
    _, make, data, _ = case
    X, y = data()
    X.setflags(write=False)  # read-only input must work and never be written
    before = X.copy()
    est = make()
    assert est.fit(X, y) is est
    est.transform(X)
    np.testing.assert_array_equal(X, before)


def test_transform_does_not_modify_self(case):
    _, make, data, _ = case
    X, y = data()
    est = make().fit(X, y)
    state = joblib.hash(est.__dict__)
    est.transform(X)
    est.transform(X[:3])
    assert joblib.hash(est.__dict__) == state


def test_clone_is_unfitted_and_refit_forgets_state(case):
    name, make, data, attrs = case
    X, y = data()
    est = make().fit(X, y)
    cl = clone(est)
    assert not any(hasattr(cl, a) for a in attrs)
    assert cl.get_params() == make().get_params()
    # refit on other data with fewer channels: same result as a fresh fit, nothing left over
    X2, y2 = data(n_epochs=20, n_ch=3, seed=1) if name != "selector" else data(20, 3, 10, 1)
    refit = est.fit(X2, y2).transform(X2)
    fresh = make().fit(X2, y2).transform(X2)
    np.testing.assert_allclose(refit, fresh)
    other = make().fit(X2, y2)
    for a in attrs:
        np.testing.assert_equal(getattr(est, a), getattr(other, a))


def test_pickle_round_trip(case):
    _, make, data, _ = case
    X, y = data()
    est = make().fit(X, y)
    back = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(back.transform(X), est.transform(X))
    assert back.get_params() == est.get_params()


def test_fit_is_idempotent_and_batch_equals_one_by_one(case):
    _, make, data, _ = case
    X, y = data()
    est = make().fit(X, y)
    out = est.transform(X)
    np.testing.assert_array_equal(make().fit(X, y).transform(X), out)
    # the online decoder transforms one window at a time: it must get the batch's numbers
    one = np.concatenate([est.transform(X[i : i + 1]) for i in range(len(X))])
    np.testing.assert_allclose(one, out, rtol=1e-10, atol=1e-12)
    assert out.shape[0] == len(X)


def test_float32_and_list_input(case):
    _, make, data, _ = case
    X, y = data()
    est = make().fit(X, y)
    np.testing.assert_allclose(est.transform(X.astype(np.float32)), est.transform(X), rtol=1e-4,
                               atol=1e-4)
    np.testing.assert_array_equal(est.transform(X[:2].tolist()), est.transform(X[:2]))


def test_bad_input_errors(case):
    _, make, data, _ = case
    X, y = data()
    est = make()
    with pytest.raises(DecoderError, match="3-D"):
        est.fit(X[0], y)
    with pytest.raises(DecoderError, match="3-D"):
        est.fit(X[..., None], y)
    bad = X.copy()
    bad[1, 0, 2] = np.nan
    with pytest.raises(DecoderError, match="1 NaN"):
        est.fit(bad, y)
    with pytest.raises(DecoderError, match="dtype"):
        est.fit(np.full(X.shape, "a"), y)
    est.fit(X, y)
    with pytest.raises(DecoderError, match="channels"):
        est.transform(X[:, :2])


# ----------------------------------------------------------------------- inside pipelines
def test_pipelines_with_pyriemann_and_sklearn_steps():
    X, y = _epochs(40)
    cv = StratifiedKFold(4, shuffle=True, random_state=42)
    pipes = {
        "psd-lda": make_pipeline(
            PSD(FS, 8, 30), FeatureSelector(CH, np.arange(8.0, 31.0), n_features=4),
            LinearDiscriminantAnalysis(),
        ),
        "burg-lda": make_pipeline(
            PSD(FS, 8, 30, method="burg"), FeatureSelector(n_features=4),
            StandardScaler(), LinearDiscriminantAnalysis(),
        ),
        "coh-lda": make_pipeline(
            NodeStrength(FS, kind="imcoh"), FeatureSelector(n_features=4),
            LinearDiscriminantAnalysis(),
        ),
        "cov-mdm": make_pipeline(Covariances(estimator="oas"), MDM()),
        "acm-ts-svm": make_pipeline(
            AugmentedCovariances(order=3, lag=2), TangentSpace(metric="riemann"), SVC()
        ),
        "acm-auto-ts-lr": make_pipeline(
            AugmentedCovariances("auto", "auto", max_order=4), TangentSpace(), LogisticRegression()
        ),
    }
    Xc, yc = _coupled(40)
    for name, pipe in pipes.items():
        Xp, yp = (Xc, yc) if name == "coh-lda" else (X, y)
        scores = cross_val_score(pipe, Xp, yp, cv=cv, scoring="roc_auc", n_jobs=1)
        # planted 11 Hz power on C4 (coupling C3 -> C4 for coh-lda) is easy: all must find it
        assert scores.mean() > 0.8, (name, scores)


def test_gridsearch_over_augmented_order_and_lag():
    X, y = _epochs(32, n_ch=3)
    pipe = make_pipeline(AugmentedCovariances(), TangentSpace(), LogisticRegression())
    grid = GridSearchCV(
        pipe,
        {"augmentedcovariances__order": [1, 2, 3], "augmentedcovariances__lag": [1, 3]},
        cv=StratifiedKFold(3, shuffle=True, random_state=0),
        scoring="roc_auc",
        n_jobs=1,
    ).fit(X, y)
    best = grid.best_estimator_[0]
    assert (best.order_, best.lag_) == (
        grid.best_params_["augmentedcovariances__order"],
        grid.best_params_["augmentedcovariances__lag"],
    )
    assert grid.best_estimator_.predict(X).shape == (32,)
    assert grid.best_estimator_[0].transform(X).shape[1] == 3 * best.order_
