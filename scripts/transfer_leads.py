"""Issue 14 leads of docs/accuracy.md: pooling other subjects into within-session folds, and
soft-voting ensembles, on the 13 shared EEGMMIDB subjects.

Usage::

    OMP_NUM_THREADS=1 nice -n 15 python scripts/transfer_leads.py pooled OUT.jsonl [--bands full]
        [--stretch] [--targets S001,S006] [--data ../shared/data/eegmmidb] [--cache DIR]
    OMP_NUM_THREADS=1 nice -n 15 python scripts/transfer_leads.py ensembles OUT.jsonl
    OMP_NUM_THREADS=1 nice -n 10 python scripts/transfer_leads.py loso OUT.jsonl
        [--pipelines default,rc-ts-lr-rpa,rc-ts-lr-ft] [--calib-trials 0,5,10,20] [--targets ...]

Both write one JSON line per (subject, variant) with the ROC-AUC of the shuffled stratified
5-fold (seed 42) of that subject: the folds and test trials of ``neurodeck evaluate``.

The windows come from ``app.workflow.load_for`` (runs 4/8/12, T1 = left fist, T2 = right fist,
0.5-2.5 s, 1 s padding) and the covariances from the pipelines' own steps (causal 8-32 Hz
band-pass, 2 passes, then OAS; the 4 Hz sub-bands of the filter bank at order 2 as in
``fbts-lr``): they depend on one trial only, so they are computed once per subject and cached.

``pooled`` (a screen, marked "~" in the docs): each target's training fold is pooled with the
other 12 subjects, every subject re-centred by its own Riemannian mean (the target by its
training fold's mean, as ``decoders.transfer.fit_pooled``); heads ``lr`` (= ``default``) and
``lrw`` (the target's trials weigh as much as all the sources' = ``rc-ts-lr-half``). The one
approximation: the tangent-space reference of each band is the Riemannian mean of the 12
sources' re-centred matrices (once per target) instead of the mean of the whole training pool
(per fold); on the 13 subjects ``lr`` gives the per-subject AUCs of the exact
``cross_validate_with_sources`` run of ``default`` to two decimals. ``--bands`` lists cached
bands (``full`` = 8-32 Hz, ``b8`` ... ``b28`` = the 4 Hz sub-bands; several: concatenated and
standardised, LR with C = 1, 0.1, 0.01); ``--stretch`` stretches every subject's re-centred
matrices to unit dispersion (Rodrigues et al. 2019; ``C -> C ** (1 / sqrt(d))``, ``d`` the mean
squared distance to the identity, the target's from its training fold).

``loso`` (exact, not a screen): for each target, ``decoders.evaluation.evaluate_chronological``
with the other 12 subjects as sources (what ``neurodeck evaluate TARGET --protocol chronological
--sources OTHER-12`` and ``--protocol loso`` run), one JSON line per (target, pipeline, K) with
the CLI's record. The pipelines run from their re-centering step on the cached OAS covariances
of their own band-pass: both earlier steps are per trial and stateless, so the scores are those
of the whole pipeline on the windows. Resumable: (target, pipeline, K) rows already in OUT are
skipped.

``ensembles``: within one session alone, the shipped ``fgmdm``, ``ts-lda``, ``ts-lr``, ``ts-svm``
(their steps after band-pass and OAS, cloned per fold) and the mean of their probabilities for
every combination of 2, 3 and 4 of them.
"""
from __future__ import annotations

import argparse
import itertools
import json
import sys
import warnings
from pathlib import Path

import numpy as np
from pyriemann.geometry.base import powm
from pyriemann.geometry.mean import mean_riemann
from pyriemann.tangentspace import TangentSpace
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold
from sklearn.preprocessing import StandardScaler

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from neurodeck.app.workflow import load_for  # noqa: E402
from neurodeck.decoders import pipelines as P  # noqa: E402
from neurodeck.decoders.epochs import bandpass_sos, bandpass_windows, n_samples  # noqa: E402
from neurodeck.decoders.transfer import recenter  # noqa: E402

SUBJECTS = ["S001", "S002", "S003"] + [f"S{i:03d}" for i in range(6, 16)]


def covariances(data: Path, cache: Path, s: str, subbands: bool = True) -> dict[str, np.ndarray]:
    """8-32 Hz ('full') and 4 Hz sub-band ('b8'...) OAS covariances and labels of one subject."""
    f = cache / f"cov_{s}.npz"
    if not f.exists() and not subbands and (cache / f"covfull_{s}.npz").exists():
        f = cache / f"covfull_{s}.npz"
    if not f.exists():
        cfg = P.DecoderConfig(pipeline="ts-lr")
        tr = load_for(",".join(str(data / s / f"{s}R{r:02d}.edf") for r in (4, 8, 12)), cfg)
        out = {"full": cfg.build(tr.sfreq, tr.ch_names)[:2].fit_transform(tr.X, tr.y), "y": tr.y}
        if not subbands:
            f = cache / f"covfull_{s}.npz"
        for lo, hi in P.filter_bank(cfg.band)[:-1] if subbands else []:
            sos = bandpass_sos(tr.sfreq, lo, hi, P.FILTER_BANK_ORDER, cfg.filter_passes)
            out[f"b{int(lo)}"] = P.oas_covariances(bandpass_windows(tr.X, sos, n_samples(cfg.pad, tr.sfreq)))
        cache.mkdir(parents=True, exist_ok=True)
        np.savez(f, **out)
    return dict(np.load(f))


def _dispersion(C: np.ndarray) -> float:
    return float(np.mean(np.sum(np.log(np.linalg.eigvalsh(C)) ** 2, axis=1)))


def _stretch(C: np.ndarray, d: float) -> np.ndarray:
    return np.array([powm(c, np.sqrt(1.0 / d)) for c in C])


def pooled(D, bands, targets, stretch, write) -> None:
    RC = {b: {s: recenter(D[s][b], mean_riemann(D[s][b])) for s in D} for b in bands}
    if stretch:
        RC = {b: {s: _stretch(c, _dispersion(c)) for s, c in RC[b].items()} for b in bands}
    tag = ("fb" if len(bands) > 1 else "+".join(bands)) + ("+stretch" if stretch else "") + "~"
    for s in targets:
        y = D[s]["y"]
        pos = np.unique(y)[1]
        ys = np.concatenate([D[o]["y"] for o in D if o != s])
        ts, F = {}, {}
        for b in bands:
            src = np.concatenate([RC[b][o] for o in D if o != s])
            ts[b] = TangentSpace(metric="riemann").fit(src)
            F[b] = ts[b].transform(src)
        scores: dict[str, list[float]] = {}
        for tr, te in StratifiedKFold(5, shuffle=True, random_state=42).split(y, y):
            Ftr, Fte = [], []
            for b in bands:
                M = mean_riemann(D[s][b][tr])
                ctr, cte = recenter(D[s][b][tr], M), recenter(D[s][b][te], M)
                if stretch:
                    d = _dispersion(ctr)
                    ctr, cte = _stretch(ctr, d), _stretch(cte, d)
                Ftr.append(np.vstack([F[b], ts[b].transform(ctr)]))
                Fte.append(ts[b].transform(cte))
            Ftr, Fte = np.hstack(Ftr), np.hstack(Fte)
            if len(bands) > 1:
                sc = StandardScaler().fit(Ftr)
                Ftr, Fte = sc.transform(Ftr), sc.transform(Fte)
                heads = {f"lr{c:g}": (c, False) for c in (1.0, 0.1, 0.01)}
            else:
                heads = {"lr": (1.0, False), "lrw": (1.0, True)}
            w = np.concatenate([np.ones(len(ys)), np.full(len(tr), len(ys) / len(tr))])
            for h, (c, weigh) in heads.items():
                est = LogisticRegression(C=c).fit(Ftr, np.concatenate([ys, y[tr]]),
                                                  sample_weight=w if weigh else None)
                scores.setdefault(h, []).append(roc_auc_score(y[te] == pos, est.decision_function(Fte)))
        for h, f in scores.items():
            write(s, f"{tag}:{h}", f)


def loso(D, names, ks, targets, out: Path) -> None:
    from neurodeck.decoders.evaluation import evaluate_chronological

    done = set()
    if out.exists():
        done = {(r["dataset"], r["pipeline"], r["calib_trials"])
                for r in map(json.loads, out.read_text().splitlines())}
    for s in targets:
        sources = [(D[o]["full"], D[o]["y"]) for o in D if o != s]
        for n, k in itertools.product(names, ks):
            if (s, n, k) in done:
                continue
            tail = P.make_pipeline(n, 160.0)
            assert [m for m, _ in tail.steps[:2]] == ["bandpass", "cov"], tail
            res = evaluate_chronological(D[s]["full"], D[s]["y"], {n: tail[2:]}, [k],
                                         sources=sources, dataset=s, protocol="loso")
            with out.open("a") as f:
                for r in res:
                    f.write(json.dumps(r.as_dict()) + "\n")
                    print(s, n, r.calib_trials, round(r.score, 3), round(r.accuracy, 3),
                          f"fit {r.fit_time_s:.1f} s", flush=True)


def ensembles(D, write) -> None:
    names = ["fgmdm", "ts-lda", "ts-lr", "ts-svm"]
    tails = {n: P.make_pipeline(n, 160.0)[2:] for n in names}  # after band-pass and OAS
    for s in D:
        C, y = D[s]["full"], D[s]["y"]
        pos = np.unique(y)[1]
        scores: dict[str, list[float]] = {}
        for tr, te in StratifiedKFold(5, shuffle=True, random_state=42).split(y, y):
            pr = {}
            for n, t in tails.items():
                e = clone(t).fit(C[tr], y[tr])
                pr[n] = e.predict_proba(C[te])[:, list(e.classes_).index(pos)]
            for k in (1, 2, 3, 4):
                for combo in itertools.combinations(names, k):
                    scores.setdefault("+".join(combo), []).append(
                        roc_auc_score(y[te] == pos, np.mean([pr[c] for c in combo], axis=0)))
        for v, f in scores.items():
            write(s, v, f)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("lead", choices=["pooled", "ensembles", "loso"])
    ap.add_argument("out", type=Path)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "eegmmidb")
    ap.add_argument("--cache", type=Path, default=Path("transfer-leads-cache"))
    ap.add_argument("--bands", default="full")
    ap.add_argument("--stretch", action="store_true")
    ap.add_argument("--targets", default=",".join(SUBJECTS))
    ap.add_argument("--pipelines", default="default,rc-ts-lr-rpa,rc-ts-lr-ft")
    ap.add_argument("--calib-trials", default="0,5,10,20")
    ap.add_argument("--pipeline-file", type=Path, action="append", default=[],
                    help="more pipelines (TOML, as `neurodeck evaluate --pipeline-file`)")
    a = ap.parse_args()
    warnings.simplefilter("ignore")
    for f in a.pipeline_file:
        P.add_pipeline_specs(f)
    D = {s: covariances(a.data, a.cache, s, subbands=a.lead != "loso") for s in SUBJECTS}

    def write(s: str, variant: str, folds: list[float]) -> None:
        with a.out.open("a") as f:
            f.write(json.dumps({"dataset": s, "variant": variant, "score": float(np.mean(folds)),
                                "fold_scores": [float(x) for x in folds]}) + "\n")
        print(s, variant, round(float(np.mean(folds)), 3), flush=True)

    if a.lead == "loso":
        loso(D, a.pipelines.split(","), [int(k) for k in a.calib_trials.split(",")],
             a.targets.split(","), a.out)
    elif a.lead == "pooled":
        pooled(D, a.bands.split(","), a.targets.split(","), a.stretch, write)
    else:
        ensembles(D, write)


if __name__ == "__main__":
    main()
