"""Pseudo-online replay throughput (x real time) and offline CV time vs a plain pyriemann script.

1. Replay: each pipeline is trained on EEGMMIDB S001 runs 4 and 8 (64 ch, 160 Hz, 8-32 Hz,
   0.5-2.5 s windows + 1 s filter padding), saved as an ONNX bundle, and run 12 is replayed
   through :func:`decoders.evaluation.pseudo_online` (every 62.5 ms hop: the band-pass over the
   recording once, then batches of windows through the features and the head, what the live
   engine's stream computes). Real-time factor = recording length / compute time. Budgets:
   >= 300x (psd-lda), >= 150x (ts-lr).
2. Cross-validation: :func:`decoders.evaluation.cross_validate_pipelines` vs an equivalent plain
   script (scipy causal band-pass in a FunctionTransformer + pyriemann + scikit-learn
   ``cross_val_score``) on the same windows and the same shuffled stratified 5 folds; both
   ROC-AUC scores are printed to show they match, and the time ratio.

Medians over repetitions; the two sides of each comparison run one after the other in every
repetition.

``--baseline REV`` then runs the same with the neurodeck code of git revision REV (before/after
in one run); ``--no-cv`` skips part 2; ``--pipelines`` picks the replayed pipelines.

Run: ``python -m benchmarks.throughput [--quick] [--no-cv] [--pipelines a,b] [--baseline REV]``.
"""
from __future__ import annotations

import logging
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from benchmarks import _util as u

logger = logging.getLogger(__name__)

REPLAY = ("psd-lda", "csp-lda", "mdm", "ts-lr", "ts-lda", "acm-ts-svm")
QUICK_REPLAY = ("psd-lda", "ts-lr")
BUDGET = {"psd-lda": 300.0, "ts-lr": 150.0}
CV = ("csp-lda", "mdm", "ts-lr")
QUICK_CV = ("ts-lr",)


def windows(runs, cfg):
    from neurodeck.decoders.epochs import extract_epochs

    Xs, ys = [], []
    for path in runs:
        data, sf, names, onsets, labels = u._load_edf(str(path))
        X, kept = extract_epochs(data, sf, onsets, cfg.tmin, cfg.tmax, cfg.pad)
        Xs.append(X)
        ys.append(np.asarray(labels)[kept])
    return np.concatenate(Xs), np.concatenate(ys), list(names), sf


def bench_replay(pipes, reps: int, tmp: Path, threads=(1,)) -> list[list]:
    from neurodeck.decoders.evaluation import pseudo_online
    from neurodeck.decoders.online import OnlineDecoder
    from neurodeck.decoders.onnx import save_bundle

    runs = u.imagery_runs()
    rows = []
    test, sf, _, onsets, labels = u._load_edf(str(runs[2]))
    for name in pipes:
        cfg = u.decoder_config(name, window_s=2.0)
        X, y, names, sf = windows(runs[:2], cfg)
        pipe = cfg.build(sf, names)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pipe.fit(X, y)
        path = save_bundle(pipe, cfg, tmp / name, ch_names=names, sfreq=sf, X_check=X[:4])
        dec = OnlineDecoder(path)
        res = {t: [] for t in threads}
        ref = None  # the first run's outputs: every other run is compared with them
        for rep in range(reps):
            for t in threads if rep % 2 == 0 else threads[::-1]:  # alternate who goes first
                kw = {} if t == 1 else {"threads": t}  # (a --baseline revision may lack it)
                c0 = time.process_time()
                r = pseudo_online(dec, test, sf, (onsets, labels), step_s=0.0625, trial_s=4.0,
                                  **kw)
                cpu = time.process_time() - c0
                ref = r.outputs if ref is None else ref
                res[t].append({"rtf": r.realtime_factor, "compute": r.compute_s,
                               "rtf_cpu": r.duration_s / max(cpu, 1e-9),
                               "per_win": 1e3 * r.compute_s / max(len(r.ends), 1),
                               "acc": r.accuracy, "n": float(len(r.ends)), "dur": r.duration_s,
                               "diff": float(np.nanmax(np.abs(r.outputs - ref)))})
        budget = BUDGET.get(name)
        for t in threads:
            m = u.median_rows(res[t])
            ok = "" if budget is None else ("yes" if m["rtf"] >= budget else "NO")
            rows.append([name, t, m["dur"], m["n"], m["compute"], m["per_win"], m["rtf"],
                         m["rtf_cpu"], "" if budget is None else f">= {budget:g}x", ok, m["acc"],
                         f"{max(x['diff'] for x in res[t]):.1g}"])
    return rows


# ------------------------------------------------------------------------------ plain script
def _plain_bandpass(X, sos, n_pad):
    """Causal Butterworth band-pass of padded windows, padding dropped (plain scipy)."""
    from scipy import signal

    zi = signal.sosfilt_zi(sos)[:, None, None, :] * X[None, :, :, :1]
    return signal.sosfilt(sos, X, axis=-1, zi=zi)[0][..., n_pad:]


def plain_pipeline(name: str, sf: float, pad: float = 1.0):
    """The pipeline as a user would write it with pyriemann + scikit-learn only."""
    from pyriemann.classification import MDM
    from pyriemann.estimation import Covariances
    from pyriemann.spatialfilters import CSP
    from pyriemann.tangentspace import TangentSpace
    from scipy import signal
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    sos = signal.butter(4, [8.0, 32.0], btype="bandpass", fs=sf, output="sos")
    bp = FunctionTransformer(_plain_bandpass, kw_args={"sos": sos, "n_pad": int(round(pad * sf))})
    if name == "ts-lr":
        return make_pipeline(bp, Covariances("oas"), TangentSpace(metric="riemann"), LogisticRegression())
    if name == "csp-lda":
        return make_pipeline(bp, Covariances("oas"), CSP(nfilter=8, log=True), LinearDiscriminantAnalysis())
    if name == "mdm":
        return make_pipeline(bp, Covariances("oas"), MDM(metric="riemann"))
    raise ValueError(name)


def bench_cv(pipes, reps: int) -> list[list]:
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    from neurodeck.decoders.evaluation import cross_validate_pipelines

    cfg = u.decoder_config("ts-lr", window_s=2.0)
    X, y, names, sf = windows(u.imagery_runs(), cfg)
    rows = []
    for name in pipes:
        ours = u.decoder_config(name, window_s=2.0).build(sf, names)
        plain = plain_pipeline(name, sf)
        res = []
        for _ in range(reps):
            t0 = time.perf_counter()
            r = cross_validate_pipelines(X, y, {name: ours}, cv=5, seed=42)[0]
            t1 = time.perf_counter()
            folds = StratifiedKFold(5, shuffle=True, random_state=42)
            s = cross_val_score(plain, X, y, cv=folds, scoring="roc_auc")
            t2 = time.perf_counter()
            res.append({"ours_s": t1 - t0, "plain_s": t2 - t1, "ours": r.score,
                        "plain": float(np.mean(s)),
                        "diff": float(np.max(np.abs(np.asarray(r.fold_scores) - s)))})
        m = u.median_rows(res)
        rows.append([name, len(y), m["ours"], m["plain"], f"{m['diff']:.1e}", m["ours_s"],
                     m["plain_s"], m["ours_s"] / m["plain_s"]])
    return rows


def main(argv: list[str] | None = None) -> int:
    p = u.parser(__doc__.splitlines()[0], blas_option=True)
    p.add_argument("--pipelines", default=None, help="replayed pipelines, comma separated")
    p.add_argument("--no-cv", action="store_true", help="skip the cross-validation comparison")
    p.add_argument("--threads", default="1,2", metavar="N,M",
                   help="replay threads to compare side by side (OnlineDecoder.replay threads)")
    u.add_baseline_option(p)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    u.print_header("throughput", args)
    reps = u.n_reps(args)
    pipes = args.pipelines.split(",") if args.pipelines else (
        QUICK_REPLAY if args.quick else REPLAY)
    with tempfile.TemporaryDirectory() as tmp:
        rows = bench_replay(pipes, reps, Path(tmp),
                            tuple(int(t) for t in args.threads.split(",")))
    u.print_table(
        f"Pseudo-online replay of S001R12 (trained on R04+R08), 64 ch @ 160 Hz, hop 62.5 ms "
        f"(medians of {reps} rep(s))",
        ["pipeline", "threads", "recording s", "windows", "compute s", "ms / window",
         "x real time", "x real time (CPU)", "budget", "met", "trial accuracy",
         "max |d output|"],
        rows,
        note="x real time = recording length / compute time of pseudo_online (OnlineDecoder."
             "replay: band-pass over the recording once, batches of 256 windows, `threads` "
             "batches at a time); (CPU) = recording length / this process's CPU time for it, "
             "all threads (less sensitive to a loaded machine; with 2 threads it shows the "
             "cost of the threads, not the speed). max |d output|: largest difference to the "
             "first run's outputs (0: the same numbers). Trial accuracy: argmax of the mean "
             "output over each trial's windows (4 s after the cue).",
    )
    if args.no_cv:
        if args.baseline:
            return u.run_baseline("throughput", sys.argv[1:] if argv is None else argv,
                                  args.baseline)
        return 0
    rows = bench_cv(QUICK_CV if args.quick else CV, reps)
    u.print_table(
        f"5-fold CV on S001 R04+R08+R12 (ROC-AUC, same shuffled stratified folds, seed 42; "
        f"medians of {reps} rep(s))",
        ["pipeline", "trials", "AUC neurodeck", "AUC plain script", "max fold |diff|",
         "neurodeck s", "plain s", "time ratio"],
        rows,
        note="neurodeck = decoders.evaluation.cross_validate_pipelines with the named pipeline; "
             "plain = scipy band-pass in a FunctionTransformer + pyriemann + scikit-learn "
             "cross_val_score. time ratio = neurodeck / plain (1.0 = same cost).",
    )
    if args.baseline:
        return u.run_baseline("throughput", sys.argv[1:] if argv is None else argv, args.baseline)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
