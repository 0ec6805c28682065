"""Lead 3 of docs/accuracy.md: variants of the tangent-space pipeline on EEGMMIDB S001-S003.

Usage::

    OMP_NUM_THREADS=1 python scripts/accuracy_leads.py [--data ../shared/data/eegmmidb] [--only NAME ...]

Every variant uses the same data path as ``neurodeck evaluate`` (``app.workflow.load_for``: runs 4/8/12,
T1 = left fist, T2 = right fist, 0.5-2.5 s, 1 s of raw signal in front for the causal 8-32 Hz
band-pass of ``decoders.epochs.BandPass``, 2 passes) and the same folds
(``StratifiedKFold(5, shuffle=True, random_state=42)``); it prints ROC-AUC per subject and the
mean, one line per variant, ``ts-lda`` (= ``fgmdm`` here) first as the baseline. Everything that
is learned (reference point, classifier, selected channels, spatial filters, re-centring
matrices) is fitted on the training folds only. Takes about 15 minutes on one core.

This is an experiment log made runnable, not a product feature: the variants are written here
with plain numpy / pyriemann / scikit-learn so that the numbers in docs/accuracy.md can be
reproduced; none of them became a pipeline.
"""
from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np
from pyriemann.channelselection import ElectrodeSelection
from pyriemann.estimation import Covariances, XdawnCovariances
from pyriemann.geometry.base import invsqrtm
from pyriemann.geometry.mean import mean_riemann
from pyriemann.spatialfilters import CSP
from pyriemann.tangentspace import TangentSpace
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin
from sklearn.covariance import ledoit_wolf_shrinkage
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.ensemble import BaggingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import make_pipeline, make_union
from sklearn.preprocessing import StandardScaler

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from neurodeck.app.workflow import load_for  # noqa: E402
from neurodeck.decoders.epochs import BandPass  # noqa: E402
from neurodeck.decoders.features.covariance import AugmentedCovariances  # noqa: E402
from neurodeck.decoders.pipelines import DecoderConfig, OASCovariances, oas_covariances  # noqa: E402

SFREQ = 160.0
N_EPOCH = 321  # 0.5-2.5 s at 160 Hz, both ends included
RUN_TRIALS = 15  # cued trials per run (runs are concatenated in order by load_for)


def lda():
    return LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto")


def bandpass(pad: float = 1.0, band=(8.0, 32.0), order: int = 4) -> BandPass:
    return BandPass(sfreq=SFREQ, l_freq=band[0], h_freq=band[1], order=order, pad=pad, passes=2)


class DualLDA(ClassifierMixin, BaseEstimator):
    """Two-class Ledoit-Wolf shrinkage LDA solved in the dual (for n_trials << n_features).

    Same model as scikit-learn's ``LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto")``
    (standardise, Ledoit-Wolf shrinkage, rescale) but through the Woodbury identity, so that
    10 000 features cost an (n x n) solve instead of a (p x p) one.
    """

    def fit(self, X, y):
        X = np.asarray(X, dtype=float)
        y = np.asarray(y)
        self.classes_ = np.unique(y)
        m0, m1 = (X[y == c].mean(0) for c in self.classes_)
        Xc = np.concatenate([X[y == self.classes_[0]] - m0, X[y == self.classes_[1]] - m1])
        scale = Xc.std(0)
        scale[scale == 0] = 1.0
        Z = Xc / scale
        n, p = Z.shape
        s = ledoit_wolf_shrinkage(Z)
        Z = Z - Z.mean(0)
        a, b = s * (Z**2).sum() / n / p, (1 - s) / n
        d = (m1 - m0) / scale
        w = (d - b * Z.T @ np.linalg.solve(a * np.eye(n) + b * Z @ Z.T, Z @ d)) / a
        self.coef_ = w / scale
        prior = np.log(np.mean(y == self.classes_[1]) / np.mean(y == self.classes_[0]))
        self.intercept_ = -self.coef_ @ (m0 + m1) / 2 + prior
        return self

    def decision_function(self, X):
        return np.asarray(X, dtype=float) @ self.coef_ + self.intercept_

    def predict(self, X):
        return self.classes_[(self.decision_function(X) > 0).astype(int)]


class Segment(TransformerMixin, BaseEstimator):
    """Samples ``start:stop`` of each epoch."""

    def __init__(self, start: int = 0, stop: int | None = None) -> None:
        self.start = start
        self.stop = stop

    def fit(self, X, y=None):  # noqa: ARG002
        return self

    def transform(self, X):
        return X[:, :, self.start:self.stop]


class ShrunkCovariances(TransformerMixin, BaseEstimator):
    """Covariance shrunk towards mean(diag) * I: a fixed amount, or OAS with a smaller sample size.

    ``shrinkage=None`` is OAS computed with ``n_eff = frac * n_times`` samples (band-limited
    samples are not independent: 8-32 Hz at 160 Hz is ~0.3 of the Nyquist band).
    """

    def __init__(self, shrinkage: float | None = None, frac: float = 1.0) -> None:
        self.shrinkage = shrinkage
        self.frac = frac

    def fit(self, X, y=None):  # noqa: ARG002
        return self

    def transform(self, X):
        n_ch, n_t = X.shape[1], X.shape[2]
        Xc = X - X.mean(axis=2, keepdims=True)
        emp = np.einsum("ect,edt->ecd", Xc, Xc) / n_t
        mu = np.trace(emp, axis1=1, axis2=2) / n_ch
        if self.shrinkage is None:
            alpha = np.mean(emp**2, axis=(1, 2))
            n = self.frac * n_t
            s = np.minimum((alpha + mu**2) / ((n + 1) * (alpha - mu**2 / n_ch)), 1.0)
        else:
            s = np.full(len(X), float(self.shrinkage))
        covs = (1 - s)[:, None, None] * emp
        covs[:, np.arange(n_ch), np.arange(n_ch)] += (s * mu)[:, None]
        return covs


class Cropped(ClassifierMixin, BaseEstimator):
    """Tangent space + shrinkage LDA trained on every crop of ``length`` samples (hop ``hop``);
    a trial's score is the mean decision over its crops."""

    def __init__(self, length: int = 161, hop: int = 20) -> None:
        self.length = length
        self.hop = hop

    def _covs(self, X):
        starts = np.arange(0, X.shape[2] - self.length + 1, self.hop)
        return np.stack([oas_covariances(X[:, :, s:s + self.length]) for s in starts], axis=1)

    def fit(self, X, y):
        C = self._covs(X)
        flat = C.reshape(-1, *C.shape[2:])
        self.ts_ = TangentSpace().fit(flat)
        self.lda_ = lda().fit(self.ts_.transform(flat), np.repeat(np.asarray(y), C.shape[1]))
        self.classes_ = self.lda_.classes_
        return self

    def decision_function(self, X):
        C = self._covs(X)
        d = self.lda_.decision_function(self.ts_.transform(C.reshape(-1, *C.shape[2:])))
        return d.reshape(C.shape[:2]).mean(axis=1)


def band_ts(lo: float, hi: float, order: int):
    return make_pipeline(bandpass(band=(lo, hi), order=order), OASCovariances(), TangentSpace())


def variants() -> dict[str, tuple[str, object]]:
    """name -> (input, estimator factory). Input: "epochs" (filtered 0.5-2.5 s) or "raw" (padded)."""
    inner = StratifiedKFold(3, shuffle=True, random_state=42)
    v: dict[str, tuple[str, object]] = {
        "ts-lda (baseline, OAS)": ("epochs", lambda: make_pipeline(OASCovariances(), TangentSpace(), lda())),
        "Ledoit-Wolf covariance": ("epochs", lambda: make_pipeline(Covariances("lwf"), TangentSpace(), lda())),
        "sample covariance": ("epochs", lambda: make_pipeline(Covariances("scm"), TangentSpace(), lda())),
        "OAS, n_eff = 0.3 n": ("epochs", lambda: make_pipeline(ShrunkCovariances(frac=0.3), TangentSpace(), lda())),
    }
    for s in (0.05, 0.1, 0.2, 0.5):
        v[f"fixed shrinkage {s}"] = ("epochs", lambda s=s: make_pipeline(ShrunkCovariances(s), TangentSpace(), lda()))
    for k in (8, 16, 32):
        v[f"Riemannian electrode selection, {k} ch"] = (
            "epochs", lambda k=k: make_pipeline(OASCovariances(), ElectrodeSelection(k), TangentSpace(), lda()))
    for k in (6, 12, 24):
        v[f"CSP to {k} sources, then TS"] = (
            "epochs", lambda k=k: make_pipeline(OASCovariances(), CSP(k, log=False), TangentSpace(), lda()))
    for length, hop in ((121, 20), (161, 40), (201, 30), (241, 20), (281, 10)):
        v[f"cropped training, {length / SFREQ:.2f} s crops"] = ("epochs", lambda a=length, b=hop: Cropped(a, b))
    for k in (2, 4):
        v[f"Xdawn covariances ({k} filters)"] = (
            "epochs", lambda k=k: make_pipeline(XdawnCovariances(k, estimator="oas"), TangentSpace(), lda()))
    v["mu 8-13 + beta 13-32 Hz, TS concatenated"] = (
        "raw", lambda: make_pipeline(make_union(band_ts(8, 13, 2), band_ts(13, 32, 2)), DualLDA()))
    v["mu + beta + 8-32 Hz, TS concatenated"] = (
        "raw", lambda: make_pipeline(make_union(band_ts(8, 13, 2), band_ts(13, 32, 2), band_ts(8, 32, 4)), DualLDA()))
    half = (N_EPOCH + 1) // 2
    v["whole epoch + its two halves, TS concatenated"] = ("epochs", lambda: make_pipeline(make_union(
        make_pipeline(OASCovariances(), TangentSpace()),
        make_pipeline(Segment(0, half), OASCovariances(), TangentSpace()),
        make_pipeline(Segment(half - 1, None), OASCovariances(), TangentSpace())), DualLDA()))
    v["augmented covariance, 64 ch, order 2, lag 1"] = (
        "epochs", lambda: make_pipeline(AugmentedCovariances(order=2, lag=1, estimator="oas"), TangentSpace(), DualLDA()))
    v["bagged TS-LDA (50 bootstraps)"] = (
        "epochs", lambda: make_pipeline(OASCovariances(), TangentSpace(),
                                        BaggingClassifier(DualLDA(), n_estimators=50, random_state=42)))
    v["TS + elastic-net LR (l1_ratio 0.5, C inner CV)"] = ("epochs", lambda: make_pipeline(
        OASCovariances(), TangentSpace(), StandardScaler(),
        GridSearchCV(LogisticRegression(penalty="elasticnet", solver="saga", l1_ratio=0.5, max_iter=3000),
                     {"C": [0.01, 0.1, 1, 10]}, cv=inner, scoring="roc_auc")))
    return v


def cv_scores(Z, y, make) -> float:
    folds = StratifiedKFold(5, shuffle=True, random_state=42).split(Z, y)
    scores = []
    for tr, te in folds:
        est = make().fit(Z[tr], y[tr])
        s = est.decision_function(Z[te])
        scores.append(roc_auc_score(y[te] == est.classes_[1], s))
    return float(np.mean(scores))


def recentred_scores(C, y, mode: str) -> float:
    """TS-LDA after re-centring each run's covariances to the identity (per-run Riemannian mean
    of its training trials, or of all its trials without labels: ``transductive``)."""
    run = np.arange(len(y)) // RUN_TRIALS
    scores = []
    for tr, te in StratifiedKFold(5, shuffle=True, random_state=42).split(C, y):
        R = C.copy()
        for r in np.unique(run):
            src = np.flatnonzero(run == r) if mode == "transductive" else tr[run[tr] == r]
            W = invsqrtm(mean_riemann(C[src]))
            R[run == r] = W @ C[run == r] @ W
        ts = TangentSpace().fit(R[tr])
        clf = lda().fit(ts.transform(R[tr]), y[tr])
        scores.append(roc_auc_score(y[te] == clf.classes_[1], clf.decision_function(ts.transform(R[te]))))
    return float(np.mean(scores))


def baseline_scores(X2, y, b0: float, b1: float) -> float:
    """TS-LDA on covariances whose channels are scaled by 1/std of a per-trial baseline
    ``[b0, b1]`` s around the cue (ERD as power relative to a reference interval).
    ``X2``: raw epochs with 2 s of padding (start at -1.5 s)."""
    G = bandpass(pad=0.25).fit_transform(X2)  # starts at -1.25 s
    C = oas_covariances(G[:, :, -N_EPOCH:])
    i0, i1 = (int(round((b + 1.25) * SFREQ)) for b in (b0, b1))
    d = 1 / np.sqrt(np.diagonal(oas_covariances(G[:, :, i0:i1]), axis1=1, axis2=2))
    C = C * d[:, :, None] * d[:, None, :]
    return cv_scores(C, y, lambda: make_pipeline(TangentSpace(), lda()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "eegmmidb")
    parser.add_argument("--only", nargs="*", default=None, help="substrings of the variant names to run")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", category=FutureWarning)
    cfg = DecoderConfig(pipeline="ts-lda", band=(8.0, 32.0), tmin=0.5, tmax=2.5,
                        events={"T1": "left_hand", "T2": "right_hand"})
    cfg2 = DecoderConfig(pipeline="ts-lda", band=(8.0, 32.0), tmin=0.5, tmax=2.5, pad=2.0,
                         events={"T1": "left_hand", "T2": "right_hand"})
    subjects = []
    for s in ("S001", "S002", "S003"):
        spec = ",".join(str(args.data / s / f"{s}R{r:02d}.edf") for r in (4, 8, 12))
        tr, tr2 = load_for(spec, cfg), load_for(spec, cfg2)
        X, y, X2, y2 = tr.X, tr.y, tr2.X, tr2.y
        assert (y == y2).all()
        subjects.append((X, bandpass().fit_transform(X), X2, y))

    def report(name: str, scores: list[float]) -> None:
        print(f"| {name} | " + " | ".join(f"{v:.2f}" for v in scores) + f" | {np.mean(scores):.3f} |", flush=True)

    def wanted(name: str) -> bool:
        return args.only is None or any(o.lower() in name.lower() for o in args.only)

    print("| variant | S001 | S002 | S003 | mean |\n|---|---|---|---|---|")
    for name, (kind, make) in variants().items():
        if wanted(name):
            report(name, [cv_scores(raw if kind == "raw" else ep, y, make) for raw, ep, _, y in subjects])
    for mode in ("train-only", "transductive"):
        name = f"per-run re-centring ({mode})"
        if wanted(name):
            report(name, [recentred_scores(oas_covariances(ep), y, mode) for _, ep, _, y in subjects])
    for b0, b1 in ((-1.25, 0.0), (-1.0, 0.0), (-0.5, 0.0), (-1.0, 0.5), (-0.25, 0.5)):
        name = f"per-trial baseline [{b0:g}, {b1:g}] s"
        if wanted(name):
            report(name, [baseline_scores(X2, y, b0, b1) for _, _, X2, y in subjects])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
