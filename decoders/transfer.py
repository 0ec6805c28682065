"""Transfer between subjects and sessions: Riemannian re-centering with online adaptation.

Re-centering (Zanini et al., "Transfer learning: a Riemannian geometry framework with
applications to brain-computer interfaces", IEEE TBME 2018) whitens every covariance matrix of
a subject (or session) by that subject's reference, a Riemannian mean of its matrices::

    C_aligned = M^{-1/2} C M^{-1/2}

so that every subject's matrices are centred on the identity and a classifier trained on the
pooled, re-centred matrices of other subjects applies to a new one. The reference needs no
labels: for a new user it is the running Riemannian mean of the incoming windows, updated
causally (:func:`running_reference`), live and in pseudo-online replay by the same code
(:meth:`Recentering.adapt_transform`, called by :meth:`decoders.online.OnlineDecoder.decide_batch`
through :meth:`decoders.onnx.ModelBundle.predict_proba`).

:class:`Recentering` is a pipeline step (after the covariance step); its rule (``adapt``,
``memory``) and state (``reference_``, ``n_seen_``) are plain parameters and arrays that a model
bundle stores as JSON. :func:`fit_pooled` fits any pipeline on several subjects at once, each
re-centred by its own reference.

Riemannian Procrustes analysis (Rodrigues et al., "Riemannian Procrustes analysis: transfer
learning for brain-computer interfaces", IEEE TBME 2019) adds two steps after re-centering, as
options of :class:`Recentering` (``stretch``, ``rotate``) that apply when a pipeline is trained on
sources *and* the new user's labelled calibration trials: every subject's re-centred matrices are
stretched to unit dispersion around the identity, and every source subject's matrices are
rotated so that its class means match the new user's (pyriemann's ``TLRotate`` solves the
rotation). The user's own matrices are never rotated, so decoding only re-centres (and stretches).

``target_weight="auto"`` fine-tunes the classifier to the new user: the weight of the user's
calibration trials against the sources' is chosen by cross-validation on those calibration
trials (:func:`fit_pooled`).
"""
from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from pyriemann.geometry.base import invsqrtm, powm, sqrtm
from pyriemann.geometry.distance import distance_riemann
from pyriemann.geometry.mean import mean_riemann
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from neurodeck.decoders.errors import DecoderError

logger = logging.getLogger(__name__)

__all__ = ["Recentering", "fit_pooled", "recenter", "running_reference", "transform_steps"]

#: Values of :attr:`Recentering.target_weight`.
TARGET_WEIGHTS = ("trial", "half", "auto")

#: ``target_weight="auto"``: the candidate shares of the whole training weight held by the new
#: user's trials (None: every trial weighs the same, the share is the user's share of the trials;
#: 0.5 is ``"half"``).
TARGET_SHARES = (None, 0.1, 0.25, 0.5, 0.75)

#: Iterations of the rotation's manifold optimisation (pyriemann's default is 10 000 with a step
#: tolerance of 1e-9, minutes per 64-channel subject). On EEGMMIDB (S006's class means rotated
#: onto S001's first 5 trials per class, re-centred and stretched) the Euclidean loss is 0.648
#: unrotated, 0.600 at the warm start, 0.597 after 50 iterations, 0.594 after 200 and 0.590
#: after 5000: the rotation is settled early, the rest is slow polishing.
ROTATE_MAXITER = 100


def dispersion(C: np.ndarray) -> float:
    """Mean squared Riemannian distance of SPD matrices to the identity (their spread after
    re-centering)."""
    ev = np.linalg.eigvalsh(_check_spd(C))
    return float(np.mean(np.sum(np.log(ev) ** 2, axis=1)))


def stretch(C: np.ndarray, exponent: float) -> np.ndarray:
    """``C ** exponent`` (matrix power): moves re-centred matrices along the geodesics from the
    identity, multiplying their distance to it by ``exponent``."""
    if exponent == 1.0:
        return np.asarray(C, dtype=float)
    return powm(_check_spd(C), float(exponent))


def _check_spd(X: Any, where: str = "X") -> np.ndarray:
    X = np.asarray(X, dtype=float)
    if X.ndim != 3 or X.shape[1] != X.shape[2]:
        raise DecoderError(f"{where} must be (n_matrices, n_channels, n_channels), got shape {X.shape}")
    return X


def recenter(C: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Whiten SPD matrices by a reference: ``M^{-1/2} C M^{-1/2}``.

    Parameters
    ----------
    C : ndarray, shape (n_matrices, n_channels, n_channels)
    reference : ndarray, shape (n_channels, n_channels)
        SPD reference ``M``.

    Returns
    -------
    aligned : ndarray, shape (n_matrices, n_channels, n_channels)
    """
    W = invsqrtm(np.asarray(reference, dtype=float))
    return W @ _check_spd(C) @ W


def _geodesic_step(M: np.ndarray, C: np.ndarray, w: float) -> np.ndarray:
    """The point at ``w`` on the affine-invariant geodesic from ``M`` to ``C``."""
    if w >= 1.0:
        return C.copy()
    Ms, Mi = sqrtm(M), invsqrtm(M)
    out = Ms @ powm(Mi @ C @ Mi, w) @ Ms
    return (out + out.T) / 2


def running_reference(
    C: np.ndarray, reference: np.ndarray | None, n_seen: int, memory: int = 0
) -> tuple[np.ndarray, np.ndarray, int]:
    """Causal running Riemannian mean: one geodesic step towards each matrix, in order.

    ``M_n = M_{n-1} #_w C_n`` with ``w = 1 / n`` (cumulative mean; the mean of all matrices so
    far is approached without storing them) or ``w = max(1 / n, 1 / memory)`` when ``memory``
    > 0 (exponential forgetting over about ``memory`` matrices). The first matrix of an empty
    reference (``n_seen = 0``) becomes the reference.

    Parameters
    ----------
    C : ndarray, shape (n_matrices, n_channels, n_channels)
        Incoming SPD matrices in time order.
    reference : ndarray, shape (n_channels, n_channels) or None
        Reference before the first matrix (None when ``n_seen = 0``).
    n_seen : int
        Matrices already averaged into ``reference``.
    memory : int
        0: cumulative mean; > 0: effective number of matrices remembered.

    Returns
    -------
    refs : ndarray, shape (n_matrices, n_channels, n_channels)
        The reference after each matrix (``refs[i]`` has seen ``C[: i + 1]``).
    reference : ndarray, shape (n_channels, n_channels)
        The last reference.
    n_seen : int
    """
    C = _check_spd(C)
    refs = np.empty_like(C)
    M = None if reference is None or n_seen == 0 else np.asarray(reference, dtype=float)
    n = int(n_seen) if M is not None else 0
    for i, c in enumerate(C):
        n += 1
        w = 1.0 / n if memory <= 0 else max(1.0 / n, 1.0 / memory)
        M = c.copy() if M is None else _geodesic_step(M, c, w)
        refs[i] = M
    return refs, M, n


class Recentering(TransformerMixin, BaseEstimator):
    """Re-centre covariance matrices to the identity by a subject's reference (Zanini 2018).

    Parameters
    ----------
    adapt : bool
        Online adaptation: :meth:`adapt_transform` (what the online decoder calls) updates the
        reference causally with every incoming window before whitening it (no labels).
        :meth:`transform` never changes the state.
    memory : int
        0: the reference is the cumulative running mean of everything seen; > 0: exponential
        forgetting over about ``memory`` windows.
    target_weight : {"trial", "half", "auto"}
        How :func:`fit_pooled` weights the new user's own labelled trials against the sources'
        when the pipeline is trained on several subjects: ``"trial"``, every trial the same;
        ``"half"``, the target's trials together weigh as much as all the sources' trials;
        ``"auto"``, the share of the target's trials in :data:`TARGET_SHARES` that scores best
        in a cross-validation over the target's calibration trials (``sample_weight`` of the
        classifier; training only, decoding is unchanged).
    stretch : bool
        Riemannian Procrustes step 2 (Rodrigues 2019), with sources and the target's labelled
        trials: every subject's re-centred matrices are stretched to unit dispersion
        (``C ** (1 / sqrt(d))``, ``d`` the mean squared distance to the identity); the target's
        exponent (``exponent_``) comes from its calibration trials and is applied when decoding.
    rotate : bool
        Riemannian Procrustes step 3, with sources and the target's labelled trials: each
        source subject's matrices are rotated (``Q C Q^T``) so that its class means match the
        target's (pyriemann ``TLRotate``, Euclidean loss). Training only: the target is not
        rotated.

    Attributes
    ----------
    reference_ : ndarray, shape (n_channels, n_channels)
        The current reference (identity until a window or calibration trial is seen).
    n_seen_ : int
        Matrices averaged into ``reference_`` (0: none yet, e.g. a population model before its
        first window).
    origin_ : ndarray, shape (n_channels, n_channels)
        The reference at fit or calibration time (:meth:`drift` measures from it).
    exponent_ : float
        Stretch applied after whitening (1: none; see ``stretch``).
    target_share_ : float or None
        With ``target_weight="auto"``: the share of the training weight given to the target's
        trials (None: not chosen, or every trial the same).

    Notes
    -----
    ``fit(X, groups=g)`` (a population model: ``groups`` names the subject of each matrix, pass
    it as ``recentering__groups`` through a Pipeline) re-centres every group by its own mean in
    :meth:`fit_transform`, and leaves the reference empty (``n_seen_ = 0``) unless ``target``
    names the group whose reference to keep (the new user's calibration trials). Without
    ``groups`` the training matrices are one subject: the reference is their mean.
    """

    def __init__(self, adapt: bool = True, memory: int = 0, target_weight: str = "trial",
                 stretch: bool = False, rotate: bool = False) -> None:
        self.adapt = adapt
        self.memory = memory
        self.target_weight = target_weight
        self.stretch = stretch
        self.rotate = rotate

    def _check_params(self) -> None:
        if not isinstance(self.adapt, bool | np.bool_):
            raise DecoderError(f"adapt={self.adapt!r}; expected true or false")
        if isinstance(self.memory, bool) or not isinstance(self.memory, int | np.integer) or self.memory < 0:
            raise DecoderError(f"memory={self.memory!r}; expected an integer >= 0 (0: cumulative mean)")
        if self.target_weight not in TARGET_WEIGHTS:
            raise DecoderError(f"target_weight={self.target_weight!r}; expected one of {list(TARGET_WEIGHTS)}")
        for k in ("stretch", "rotate"):
            if not isinstance(getattr(self, k), bool | np.bool_):
                raise DecoderError(f"{k}={getattr(self, k)!r}; expected true or false")

    def _fit(self, X, y, groups, target) -> np.ndarray:
        self._check_params()
        X = _check_spd(X)
        n_ch = X.shape[1]
        out = np.empty_like(X)
        if groups is None:
            groups = np.zeros(len(X), dtype=int)
            target = 0
        groups = np.asarray(groups)
        if len(groups) != len(X):
            raise DecoderError(f"groups has {len(groups)} entries for {len(X)} matrices")
        self.reference_, self.n_seen_, self.exponent_ = np.eye(n_ch), 0, 1.0
        self.target_share_ = None
        domains = np.unique(groups)
        for g in domains:
            idx = np.flatnonzero(groups == g)
            M = mean_riemann(X[idx])
            out[idx] = recenter(X[idx], M)
            if target is not None and g == target:
                self.reference_, self.n_seen_ = M, len(idx)
        # Riemannian Procrustes: only with sources and the target's labelled trials
        if (self.stretch or self.rotate) and self.n_seen_ and len(domains) > 1:
            if y is None:
                raise DecoderError("stretch/rotate need the labels of the training matrices")
            out = self._procrustes(out, np.asarray(y), groups, target)
        self.origin_ = self.reference_.copy()
        self.n_channels_ = n_ch
        return out

    def _procrustes(self, R: np.ndarray, y: np.ndarray, groups: np.ndarray, target) -> np.ndarray:
        """Stretch every group to unit dispersion, then rotate the sources onto the target."""
        if self.stretch:
            for g in np.unique(groups):
                idx = groups == g
                e = 1.0 / np.sqrt(max(dispersion(R[idx]), 1e-12))
                R[idx] = stretch(R[idx], e)
                if g == target:
                    self.exponent_ = float(e)
        if self.rotate:
            from pyriemann.transfer import TLRotate, encode_domains

            tgt_classes = set(np.unique(y[groups == target]))
            names = np.array([f"d{g}" for g in groups])
            full = {g for g in np.unique(groups) if set(np.unique(y[groups == g])) == tgt_classes}
            ok = np.isin(groups, list(full))
            if len(tgt_classes) < 2:
                logger.warning("rotate: the target's calibration trials hold one class; not rotated")
                return R
            if not ok.all():
                logger.warning("rotate: %d source(s) miss a class of the target; not rotated",
                               len(np.unique(groups[~ok])))
            _, y_enc = encode_domains(R[ok], y[ok], names[ok])
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "Convergence not reached": see ROTATE_MAXITER
                rot = TLRotate(target_domain=f"d{target}", metric="euclid",
                               maxiter=ROTATE_MAXITER).fit(R[ok], y_enc)
            for d, Q in rot.rotations_.items():
                idx = names == d
                R[idx] = Q @ R[idx] @ Q.T
        return R

    def fit(self, X, y=None, groups=None, target=None):
        """Learn the reference(s).

        Parameters
        ----------
        X : ndarray, shape (n_matrices, n_channels, n_channels)
        y : ignored
        groups : array-like, shape (n_matrices,) or None
            Subject (domain) of each matrix; None: one subject.
        target : object or None
            The group whose reference is kept for transform (with ``groups``).

        Returns
        -------
        self
        """
        self._fit(X, y, groups, target)
        return self

    def fit_transform(self, X, y=None, groups=None, target=None):
        """Fit, and return every group's matrices re-centred by its own reference (then
        stretched and rotated with ``stretch``/``rotate``)."""
        return self._fit(X, y, groups, target)

    def transform(self, X):
        """Whiten by the current reference (no update).

        Parameters
        ----------
        X : ndarray, shape (n_matrices, n_channels, n_channels)

        Returns
        -------
        aligned : ndarray, shape (n_matrices, n_channels, n_channels)
        """
        check_is_fitted(self, "reference_")
        return stretch(recenter(X, self.reference_), getattr(self, "exponent_", 1.0))

    def partial_fit(self, X, y=None):  # noqa: ARG002
        """Update the reference with matrices in time order (no labels needed)."""
        check_is_fitted(self, "reference_")
        self._check_params()
        _, self.reference_, self.n_seen_ = running_reference(
            X, self.reference_, self.n_seen_, int(self.memory))
        return self

    def calibrate(self, X) -> Recentering:
        """Start a new user's reference from calibration matrices (their Riemannian mean)."""
        check_is_fitted(self, "reference_")
        X = _check_spd(X)
        if len(X):
            self.reference_, self.n_seen_ = mean_riemann(X), len(X)
            self.origin_ = self.reference_.copy()
        return self

    def adapt_transform(self, X) -> np.ndarray:
        """Causal online step: update the reference with each window, then whiten it.

        Window ``i`` is whitened by the reference that has seen windows ``0 .. i`` (and
        everything before this call), so deciding windows one at a time (live) or in batches
        (pseudo-online) gives the same outputs. With ``adapt=False`` this is :meth:`transform`.

        Parameters
        ----------
        X : ndarray, shape (n_windows, n_channels, n_channels)
            In time order.

        Returns
        -------
        aligned : ndarray, shape (n_windows, n_channels, n_channels)
        """
        check_is_fitted(self, "reference_")
        if not self.adapt:
            return self.transform(X)
        X = _check_spd(X)
        refs, self.reference_, self.n_seen_ = running_reference(
            X, self.reference_, self.n_seen_, int(self.memory))
        out = np.empty_like(X)
        for i, (c, M) in enumerate(zip(X, refs, strict=True)):
            W = invsqrtm(M)
            out[i] = W @ c @ W
        return stretch(out, getattr(self, "exponent_", 1.0))

    def drift(self) -> float:
        """Riemannian distance the reference has moved since fit/calibration (0: not at all)."""
        check_is_fitted(self, "reference_")
        return float(distance_riemann(self.origin_, self.reference_))


def recentering_steps(pipeline: Any) -> list[tuple[str, Recentering]]:
    """The :class:`Recentering` steps of a (fitted or not) scikit-learn pipeline."""
    steps = getattr(pipeline, "steps", None) or []
    return [(n, s) for n, s in steps if isinstance(s, Recentering)]


def fit_pooled(
    pipeline: Any,
    parts: Sequence[tuple[np.ndarray, np.ndarray]],
    *,
    target: int | None = None,
) -> Any:
    """Fit a pipeline on several subjects' trials pooled, each re-centred by its own reference.

    Parameters
    ----------
    pipeline : sklearn Pipeline (unfitted)
        If it has a :class:`Recentering` step, that step gets ``groups`` (the part index) and
        ``target``; otherwise the trials are simply pooled.
    parts : sequence of (X, y)
        ``X`` shape (n_trials_k, n_channels, n_times) padded raw windows, ``y`` shape (n_trials_k,).
        Empty parts (e.g. no calibration trial) are skipped.
    target : int or None
        Index in ``parts`` of the new user's calibration trials: their reference is kept for
        decoding. None: the reference starts empty and adapts from the first window.
        With ``target_weight="half"`` in the :class:`Recentering` step, the target's trials
        get the weight ``n_sources / n_target`` each (sources 1) through the classifier's
        ``sample_weight``; with ``"auto"``, the weight of :func:`choose_target_share`.

    Returns
    -------
    pipeline : the fitted pipeline
    """
    keep = [(i, X, y) for i, (X, y) in enumerate(parts) if len(y)]
    if not keep:
        raise DecoderError("fit_pooled: no training trials")
    X = np.concatenate([X for _, X, _ in keep])
    y = np.concatenate([y for _, _, y in keep])
    groups = np.concatenate([np.full(len(y_), i) for i, _, y_ in keep])
    params = {}
    has_target = target is not None and any(i == target for i, _, _ in keep)
    pooled = has_target and len(keep) > 1
    auto = None
    for name, step in recentering_steps(pipeline):
        params[f"{name}__groups"] = groups
        params[f"{name}__target"] = target if has_target else None
        step._check_params()
        if step.target_weight == "half" and pooled:
            params[f"{pipeline.steps[-1][0]}__sample_weight"] = target_weights(groups == target, 0.5)
        elif step.target_weight == "auto" and pooled:
            auto = step
    if auto is None:
        return pipeline.fit(X, y, **params)
    # fine-tuning: the features once, then the head's weight of the target's trials chosen by
    # cross-validation over them, then the head on all the training trials with that weight
    head_name, head = pipeline.steps[-1]
    F = pipeline[:-1].fit_transform(X, y, **params)
    share = choose_target_share(head, F, y, groups == target)
    auto.target_share_ = share
    head.fit(F, y, sample_weight=target_weights(groups == target, share))
    logger.info("target_weight=auto: the target's %d trials get %s of the training weight",
                int(np.sum(groups == target)), "their share" if share is None else f"{share:g}")
    return pipeline


def target_weights(is_target: np.ndarray, share: float | None) -> np.ndarray:
    """Sample weights giving the target's trials together ``share`` of the total weight (each
    source trial 1; None: every trial 1)."""
    is_target = np.asarray(is_target, bool)
    w = np.ones(len(is_target))
    n_t, n_s = int(is_target.sum()), int((~is_target).sum())
    if share is not None and n_t and n_s:
        w[is_target] = share / (1.0 - share) * n_s / n_t
    return w


def choose_target_share(head: Any, F: np.ndarray, y: np.ndarray, is_target: np.ndarray,
                        shares: Sequence[float | None] = TARGET_SHARES, n_folds: int = 5) -> float | None:
    """The share of the training weight for the new user's trials, by cross-validation on them.

    The target's trials are split in stratified folds (``min(n_folds, trials of the rarest
    class)``, shuffled, seed 0); for every candidate share the head is fitted on all the source
    trials and the other folds' target trials (:func:`target_weights`) and scores the held-out
    ones. The out-of-fold scores of all the target's trials give one ROC-AUC (2 classes) or
    accuracy per share; the best wins, ties going to the earlier (smaller) share: with few
    trials the sources' prior is kept unless the user's trials say otherwise.

    Parameters
    ----------
    head : classifier
        Cloned for every fit; must accept ``sample_weight``.
    F : ndarray, shape (n_trials, n_features)
        Features of all the training trials (sources and target).
    y : ndarray, shape (n_trials,)
    is_target : ndarray of bool, shape (n_trials,)
    shares : sequence of float or None
    n_folds : int

    Returns
    -------
    share : float or None
    """
    from sklearn.base import clone
    from sklearn.metrics import accuracy_score, roc_auc_score
    from sklearn.model_selection import StratifiedKFold

    is_target = np.asarray(is_target, bool)
    tgt, src = np.flatnonzero(is_target), np.flatnonzero(~is_target)
    yt = y[tgt]
    classes, counts = np.unique(yt, return_counts=True)
    k = int(min(n_folds, counts.min()))
    if len(classes) < 2 or k < 2:
        return shares[0]
    folds = list(StratifiedKFold(k, shuffle=True, random_state=0).split(yt, yt))
    best, best_score = shares[0], -np.inf
    for share in shares:
        oof = None
        for tr, te in folds:
            idx = np.concatenate([src, tgt[tr]])
            w = target_weights(np.isin(idx, tgt), share)
            est = clone(head).fit(F[idx], y[idx], sample_weight=w)
            p = np.asarray(est.predict_proba(F[tgt[te]]))
            if oof is None:
                oof = np.zeros((len(tgt), p.shape[1]))
            oof[te] = p
        if len(classes) == 2:
            score = roc_auc_score(yt == est.classes_[1], oof[:, 1])
        else:
            score = accuracy_score(yt, np.asarray(est.classes_)[oof.argmax(axis=1)])
        if score > best_score + 1e-12:
            best, best_score = share, score
    return best


def transform_steps(steps: Sequence[tuple[str, Any]], X: np.ndarray, *, adapt: bool = False) -> np.ndarray:
    """Run feature steps in order; with ``adapt`` the adaptive steps update their state.

    THE feature stage of neurodeck, offline and live: ``adapt=True`` calls
    :meth:`Recentering.adapt_transform` (causal reference update per window, in the windows'
    order) where ``transform`` would be called; every other step is ``transform``.

    Parameters
    ----------
    steps : sequence of (name, estimator)
        Fitted feature steps.
    X : ndarray, shape (n_windows, ...)
        Input of the first step, windows in time order.
    adapt : bool

    Returns
    -------
    features : ndarray
        Output of the last step.
    """
    for _, step in steps:
        X = step.adapt_transform(X) if adapt and hasattr(step, "adapt_transform") else step.transform(X)
    return X


def predict_proba_adaptive(pipeline: Any, X: np.ndarray) -> np.ndarray:
    """``predict_proba`` of a fitted pipeline with causal online adaptation over ``X``'s windows.

    The pipeline's :class:`Recentering` state moves (as it does live); windows are taken in order.

    Returns
    -------
    proba : ndarray, shape (n_windows, n_classes)
    """
    F = transform_steps(pipeline.steps[:-1], X, adapt=True)
    return np.asarray(pipeline.steps[-1][1].predict_proba(F))
