"""Issue 14, fourth pass of docs/accuracy.md: within-session leads on the 13 shared EEGMMIDB subjects.

Usage::

    OMP_NUM_THREADS=1 nice -n 15 python scripts/within_leads.py OUT.jsonl [--subjects S001,S006]
        [--only NAME ...] [--cache /tmp/acc14-cache] [--data ../shared/data/eegmmidb] [--check]

The variants (fixed before running; every one that ran is a row of docs/accuracy.md):

- the shipped ``fgmdm``, ``ts-lda``, ``ts-lr`` and ``ts-svm`` (64 channels, one 0.5-2.5 s window
  per training trial): reproduces the within-session table of the first pass;
- ``crops``: each *training* trial contributes its six 2-s windows starting 0.25, 0.5, 0.75, 1.0,
  1.25 and 1.5 s after the cue (all inside the ~4.1 s imagery period; every crop has its own 1 s
  of raw signal in front for the causal band-pass, as ``decoders.epochs.BandPass`` does), heads
  ts-lr / ts-lda / ts-svm;
- ``sm21``: the 21 a-priori sensorimotor channels FC5..FC6, C5..C6, CP5..CP6 (not chosen from
  data), same heads;
- ``crops+sm21``: both.

Protocol: the reference's. Each subject's trials (runs 4, 8, 12 pooled, ``app.workflow.load_for``
with the ``neurodeck evaluate`` configuration) are split by ``StratifiedKFold(5, shuffle=True,
random_state=42)`` exactly as ``decoders.evaluation.cross_validate_pipelines`` does; each test
trial is decided on its one 0.5-2.5 s window (nothing else of the test trial is used) and the
fold's ROC-AUC is computed from the pipeline's decision function (else its probability) as there.
Everything is learned from the training fold only; the crops of a training trial are all in that
training fold. The ts-svm head's inner 3-fold C search is grouped by trial for the crop variants
(the three inner folds split the training *trials*, each trial's crops go together).

Speed: the band-pass and the OAS covariance are per-window and stateless, so each subject's
covariances of every crop (64 and 21 channels) are computed once with the pipelines' own steps
(``pipeline[:2]``) and cached in ``--cache``; the pipelines' remaining steps are fitted per fold.
``--check`` runs ``cross_validate_pipelines`` on the raw windows for fgmdm and ts-lr and asserts
the same fold scores (the cache is the CLI's path).

Writes one JSON line per (variant, subject) to OUT.jsonl (resumable: rows already there are
skipped) and prints the table. This is an experiment log made runnable, not a product feature.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.base import clone
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from neurodeck.app.workflow.evaluate import load_for  # noqa: E402
from neurodeck.decoders.epochs import extract_epochs, pick_indices  # noqa: E402
from neurodeck.decoders.evaluation import _scores_for_auc, cross_validate_pipelines  # noqa: E402
from neurodeck.decoders.pipelines import DecoderConfig  # noqa: E402

SUBJECTS = ("S001", "S002", "S003", "S006", "S007", "S008", "S009", "S010", "S011", "S012", "S013",
            "S014", "S015")
RUNS = (4, 8, 12)
EVENTS = {"T1": "left_hand", "T2": "right_hand"}
TEST_OFFSET = 0.5  # the reference's test window: 0.5-2.5 s after the cue
LENGTH = 2.0
OFFSETS = (0.25, 0.5, 0.75, 1.0, 1.25, 1.5)  # training crops (2 s each, start after the cue)
SM21 = ("FC5", "FC3", "FC1", "FCz", "FC2", "FC4", "FC6", "C5", "C3", "C1", "Cz", "C2", "C4", "C6",
        "CP5", "CP3", "CP1", "CPz", "CP2", "CP4", "CP6")
HEADS = ("ts-lr", "ts-lda", "ts-svm")
#: name -> (pipeline, channel set, crop offsets of the training trials)
VARIANTS: dict[str, tuple[str, str, tuple[float, ...]]] = {
    "fgmdm": ("fgmdm", "all", (TEST_OFFSET,)),
    "ts-lda": ("ts-lda", "all", (TEST_OFFSET,)),
    "ts-lr": ("ts-lr", "all", (TEST_OFFSET,)),
    "ts-svm": ("ts-svm", "all", (TEST_OFFSET,)),
    **{f"crops {h}": (h, "all", OFFSETS) for h in HEADS},
    **{f"sm21 {h}": (h, "sm21", (TEST_OFFSET,)) for h in HEADS},
    **{f"crops+sm21 {h}": (h, "sm21", OFFSETS) for h in HEADS},
}


def config(pipeline: str = "ts-lda", tmin: float = TEST_OFFSET) -> DecoderConfig:
    """The ``neurodeck evaluate`` configuration (8-32 Hz, 1 s pad, 2 causal passes)."""
    return DecoderConfig(pipeline=pipeline, band=(8.0, 32.0), tmin=tmin, tmax=tmin + LENGTH, events=EVENTS)


def spec_of(data: Path, subject: str) -> str:
    return ",".join(str(data / subject / f"{subject}R{r:02d}.edf") for r in RUNS)


def crops(trials, offset: float) -> np.ndarray:
    """Padded raw windows ``offset``..``offset + 2`` s of every trial of ``trials`` (same order)."""
    out = []
    for run in trials.runs:
        X, kept = extract_epochs(run.data, trials.sfreq, run.onsets, offset, offset + LENGTH, trials.pad)
        if not np.isin(run.kept, kept).all():
            raise RuntimeError(f"{trials.name}: a trial has no {offset:g}-{offset + LENGTH:g} s window")
        out.append(X[np.searchsorted(kept, run.kept)])
    return np.concatenate(out)


def subject_cache(data: Path, cache: Path, subject: str) -> dict[str, np.ndarray]:
    """y and the OAS covariances (band-passed as the pipelines do) of every crop, 64 and 21 ch."""
    path = cache / f"{subject}.npz"
    if path.exists():
        with np.load(path) as z:
            return dict(z)
    trials = load_for(spec_of(data, subject), config())
    front = config().build(trials.sfreq, trials.ch_names)[:2]  # bandpass, OAS covariance
    sm = pick_indices(trials.ch_names, SM21)
    out = {"y": trials.y, "ch_names": np.array(trials.ch_names), "sm21": sm}
    for off in OFFSETS:
        X = crops(trials, off)
        if off == TEST_OFFSET and not np.array_equal(X, trials.X):
            raise RuntimeError("the 0.5 s crop is not load_for's window")
        out[f"all@{off:g}"] = front.fit_transform(X)
        out[f"sm21@{off:g}"] = front.fit_transform(X[:, sm])
    cache.mkdir(parents=True, exist_ok=True)
    np.savez(path, **out)
    return out


def grouped_inner_cv(y_trials: np.ndarray, n_crops: int, seed: int = 42) -> list:
    """Inner 3-fold splits of a crop-augmented training set, grouped by trial (rows are ordered
    trial-major: trial i's crops are rows i * n_crops ... (i + 1) * n_crops - 1)."""
    rows = np.arange(len(y_trials) * n_crops).reshape(len(y_trials), n_crops)
    return [(rows[a].ravel(), rows[b].ravel())
            for a, b in StratifiedKFold(3, shuffle=True, random_state=seed).split(y_trials, y_trials)]


def score_variant(c: dict[str, np.ndarray], name: str) -> tuple[float, list[float]]:
    pipeline, chans, offsets = VARIANTS[name]
    y = c["y"]
    head = config(pipeline).build(160.0, None)[2:]  # steps after bandpass and covariance
    C = np.stack([c[f"{chans}@{o:g}"] for o in offsets], axis=1)  # (n_trials, n_crops, ch, ch)
    Ctest = c[f"{chans}@{TEST_OFFSET:g}"]
    positive = np.unique(y)[1]
    scores = []
    for tr, te in StratifiedKFold(5, shuffle=True, random_state=42).split(Ctest, y):
        est = clone(head)
        if len(offsets) > 1 and "svm" in est.named_steps:
            est.set_params(svm__cv=grouped_inner_cv(y[tr], len(offsets)))
        est.fit(C[tr].reshape(-1, *C.shape[2:]), np.repeat(y[tr], len(offsets)))
        scores.append(float(roc_auc_score(y[te] == positive, _scores_for_auc(est, Ctest[te]))))
    return float(np.mean(scores)), scores


def check(data: Path, cache: Path, subject: str) -> None:
    """The cached path gives cross_validate_pipelines' fold scores on the raw windows."""
    trials = load_for(spec_of(data, subject), config())
    pipes = {p: config(p).build(trials.sfreq, trials.ch_names) for p in ("fgmdm", "ts-lr")}
    ref = {r.pipeline: r.fold_scores for r in cross_validate_pipelines(trials.X, trials.y, pipes)}
    c = subject_cache(data, cache, subject)
    for p, folds in ref.items():
        mine = score_variant(c, p)[1]
        print(f"check {subject} {p}: cross_validate_pipelines {np.round(folds, 4).tolist()} "
              f"cached {np.round(mine, 4).tolist()}", flush=True)
        assert np.allclose(folds, mine, atol=1e-12), (p, folds, mine)


def table(rows: list[dict], subjects: list[str]) -> str:
    by = {(r["variant"], r["subject"]): r["score"] for r in rows}
    later = [s for s in subjects if s >= "S006"]
    head = ("| variant | " + " | ".join(subjects) + f" | mean S006-S015 | mean ({len(subjects)}) |\n|---|"
            + "---|" * (len(subjects) + 2))
    lines = [head]
    for name in VARIANTS:
        vals = [by.get((name, s)) for s in subjects]
        if all(v is None for v in vals):
            continue
        cells = " | ".join("—" if v is None else f"{v:.2f}" for v in vals)
        done = [v for v in vals if v is not None]
        late = [by[(name, s)] for s in later if (name, s) in by]
        m_late = f"{np.mean(late):.3f}" if len(late) == len(later) and late else "—"
        m_all = f"**{np.mean(done):.3f}**" if len(done) == len(subjects) else f"({np.mean(done):.3f}, {len(done)})"
        lines.append(f"| {name} | {cells} | {m_late} | {m_all} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="JSON-lines results (appended, resumable)")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "eegmmidb")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/acc14-cache"))
    parser.add_argument("--subjects", default=",".join(SUBJECTS), help="comma-separated, e.g. S001,S006")
    parser.add_argument("--only", nargs="*", default=None, help="variant names to run (default: all)")
    parser.add_argument("--check", action="store_true",
                        help="first assert the cached path equals cross_validate_pipelines on the first subject")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", category=FutureWarning)
    subjects = [s for s in args.subjects.split(",") if s]
    unknown = [s for s in subjects if s not in SUBJECTS]
    if unknown:
        parser.error(f"unknown subjects {unknown}; expected some of {','.join(SUBJECTS)}")
    names = list(VARIANTS) if args.only is None else args.only
    bad = [n for n in names if n not in VARIANTS]
    if bad:
        parser.error(f"unknown variants {bad}; expected some of {list(VARIANTS)}")
    if args.check:
        check(args.data, args.cache, subjects[0])
    rows = [json.loads(line) for line in args.out.read_text().splitlines()] if args.out.exists() else []
    done = {(r["variant"], r["subject"]) for r in rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    for s in subjects:
        c = subject_cache(args.data, args.cache, s)
        for name in names:
            if (name, s) in done:
                continue
            t0 = time.process_time()
            score, folds = score_variant(c, name)
            row = {"variant": name, "subject": s, "score": score, "fold_scores": folds,
                   "cpu_s": round(time.process_time() - t0, 2)}
            rows.append(row)
            with args.out.open("a") as f:
                f.write(json.dumps(row) + "\n")
            print(f"{s} {name}: {score:.3f} ({row['cpu_s']} s CPU)", flush=True)
    print(table([r for r in rows if r["subject"] in subjects], subjects))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
