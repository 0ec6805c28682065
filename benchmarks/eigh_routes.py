"""The tangent space's eigendecomposition: routes and their cost, and float32 on real data.

ts-lr decides from ``upper(logm(P C P))`` (``P = C_ref^-1/2``): one symmetric eigendecomposition
per window, ~2/3 of a pseudo-online replay's CPU (docs/benchmarks.md). This script measures

1. one eigendecomposition of a 64 x 64 (and, without ``--quick``, 256 x 256) SPD matrix, thread
   CPU per matrix, for the exact routes at hand: numpy's ``eigh`` (LAPACK ``dsyevd``) on a stack
   and one by one, scipy's drivers (``evd``, ``evr``, ``ev``, ``evx``), LAPACK ``dsyevd``
   directly; the eigenvalues alone (``eigvalsh``: the tridiagonal reduction's floor); and in
   float32 (numpy's ``eigh`` on a float32 stack, LAPACK ``ssyevd`` directly);
2. float32 on real data: each EEGMMIDB subject's ts-lr (trained on runs 4 + 8, 2 s windows, as
   ``benchmarks.throughput``) replays run 12 pseudo-online (``--xdf DIR``: also bci-essentials'
   16-channel runs, trained on runs 1 + 2, run 3 replayed) with the float64 tangent space (what
   neurodeck does) and with an ``ssyevd`` one (the whitened matrix rounded to float32, eigenpairs
   back in float64): condition numbers of the whitened covariances, max |probability
   difference|, windows whose most probable class flips, and the replay's CPU (paired, in turns).

Nothing here changes what neurodeck computes.

Run: ``python -m benchmarks.eigh_routes [--quick] [--subjects 1,2,3] [--reps N] [--data DIR]
[--xdf DIR]``.
"""
from __future__ import annotations

import logging
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from benchmarks import _util as u

logger = logging.getLogger(__name__)

SUBJECTS = (1, 2, 3, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)


def _spd(c: int, n: int, rng) -> np.ndarray:
    A = rng.standard_normal((n, c, 2 * c))
    return A @ A.transpose(0, 2, 1) / (2 * c)


def routes(c: int, n: int, reps: int) -> list[list]:
    """Thread CPU per matrix (us, best of ``reps``) of each route on ``n`` SPD c x c matrices."""
    import scipy.linalg as sl
    from scipy.linalg import lapack

    M = _spd(c, n, np.random.default_rng(0))
    M32 = M.astype(np.float32)
    cases = [
        ("numpy eigh, stack (dsyevd; neurodeck)", lambda: np.linalg.eigh(M)),
        ("numpy eigh, one by one", lambda: [np.linalg.eigh(m) for m in M]),
        ("LAPACK dsyevd directly", lambda: [lapack.dsyevd(m, compute_v=1, lower=1) for m in M]),
        *[(f"scipy eigh driver={d}", lambda d=d: [sl.eigh(m, driver=d, check_finite=False)
                                                   for m in M]) for d in ("evd", "evr", "ev", "evx")],
        ("eigenvalues only (numpy eigvalsh)", lambda: np.linalg.eigvalsh(M)),
        ("float32: numpy eigh, stack", lambda: np.linalg.eigh(M32)),
        ("float32: LAPACK ssyevd directly", lambda: [lapack.ssyevd(m, compute_v=1, lower=1)
                                                     for m in M32]),
    ]
    rows = []
    base = None
    for label, fn in cases:
        fn()  # warm
        best = min(_cpu(fn) for _ in range(reps)) / n * 1e6
        base = best if base is None else base
        rows.append([f"{c} x {c}", label, best, best / base])
    return rows


def _cpu(fn) -> float:
    t0 = time.thread_time()
    fn()
    return time.thread_time() - t0


def _log_map32(self, M: np.ndarray) -> np.ndarray:
    """``_CachedTangentSpace.log_map`` with LAPACK ``ssyevd`` (float32 eigenpairs)."""
    from scipy.linalg import lapack

    M32 = M.astype(np.float32)
    w = np.empty(M.shape[:2])
    V = np.empty(M.shape)
    for i in range(len(M)):
        wi, Vi, info = lapack.ssyevd(M32[i], compute_v=1, lower=1)
        if info:
            raise np.linalg.LinAlgError(f"ssyevd failed (info={info})")
        w[i], V[i] = wi, Vi
    L = (V * np.log(w)[:, None, :]) @ np.swapaxes(V, -1, -2)
    T = L.reshape(len(L), -1)[:, self.flat]
    T *= self.coeffs
    return T


def _xdf(path: Path) -> tuple[np.ndarray, float, tuple[str, ...], np.ndarray, tuple[str, ...]]:
    """(data µV, sfreq, names, onsets, labels) of a bci-essentials run (3 classes)."""
    from neurodeck.acquisition.io import get_events, load_recording

    raw = load_recording(path)
    raw.pick("eeg")
    events, event_id = get_events(raw, {f"switch,3,{k},2": f"class{k}" for k in range(3)})
    inv = {v: k for k, v in event_id.items()}
    return (raw.get_data() * 1e6, float(raw.info["sfreq"]), tuple(raw.ch_names),
            events[:, 0] - raw.first_samp, tuple(inv[c] for c in events[:, 2]))


def study(label: str, train: list, test: tuple, window_s: float, reps: int, tmp: Path) -> list:
    """One row: windows, condition numbers, max |dp|, flips, replay CPU f64 / f32.

    ``train`` and ``test`` hold ``(data, sfreq, names, onsets, labels)`` of recordings.
    """
    from neurodeck.decoders import online
    from neurodeck.decoders.epochs import extract_epochs
    from neurodeck.decoders.online import OnlineDecoder
    from neurodeck.decoders.onnx import save_bundle

    cfg = u.decoder_config("ts-lr", window_s=window_s)
    Xs, ys = [], []
    names, sf = train[0][2], train[0][1]
    for data, rate, _, onsets, labels in train:
        if rate != sf:
            raise ValueError(f"training recordings at {rate} and {sf} Hz; expected one rate")
        X, kept = extract_epochs(data, sf, onsets, cfg.tmin, cfg.tmax, cfg.pad)
        Xs.append(X)
        ys.append(np.asarray(labels)[kept])
    X, y = np.concatenate(Xs), np.concatenate(ys)
    if any(tuple(r[2]) != tuple(names) for r in train):
        raise ValueError("training recordings with different channels; expected the same")
    pipe = cfg.build(sf, list(names))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pipe.fit(X, y)
    path = save_bundle(pipe, cfg, tmp / label.replace(" ", "_"), ch_names=list(names), sfreq=sf,
                       X_check=X[:4])
    dec = OnlineDecoder(path)
    test_data, sf, names0, _, _ = test
    data = test_data[[list(names0).index(c) for c in dec.ch_names]]
    hop = dec.hop_samples(0.0625)
    f64 = online._CachedTangentSpace.log_map
    conds: list[np.ndarray] = []

    def log_map_cond(self, M):
        w = np.linalg.eigvalsh(M)
        conds.append(w[:, -1] / w[:, 0])
        return f64(self, M)

    try:
        online._CachedTangentSpace.log_map = log_map_cond
        _, o64 = dec.replay(data, hop)
        online._CachedTangentSpace.log_map = _log_map32
        _, o32 = dec.replay(data, hop)
        t = {f64: [], _log_map32: []}
        for k in range(reps):
            for fn in (f64, _log_map32) if k % 2 == 0 else (_log_map32, f64):
                online._CachedTangentSpace.log_map = fn
                t0 = time.thread_time()
                dec.replay(data, hop)
                t[fn].append(time.thread_time() - t0)
    finally:
        online._CachedTangentSpace.log_map = f64
    c = np.concatenate(conds)
    ok = np.isfinite(o64).all(axis=1)
    flips = int(np.sum(np.argmax(o64[ok], 1) != np.argmax(o32[ok], 1)))
    ratio = float(np.median(np.divide(t[f64], t[_log_map32])))
    return [label, int(ok.sum()), np.percentile(c, 50), np.percentile(c, 99),
            c.max(), f"{float(np.max(np.abs(o64[ok] - o32[ok]))):.1e}", flips,
            float(np.median(t[f64])), float(np.median(t[_log_map32])), ratio]


def main(argv: list[str] | None = None) -> int:
    from threadpoolctl import threadpool_limits

    p = u.parser(__doc__.splitlines()[0], reps=3)
    p.add_argument("--subjects", default=None, help="EEGMMIDB subjects, e.g. 1,2,3 (all 13)")
    p.add_argument("--data", default=None, type=Path,
                   help=f"EEGMMIDB folder (S001/, S002/, ...; default {u.SHARED_EEGMMIDB})")
    p.add_argument("--xdf", default=None,
                   help="folder of the bci-essentials XDF runs 1-3 (16 ch @ 256 Hz, 3 classes): "
                        "trained on runs 1 + 2 (0.5-2 s after the cue), run 3 replayed")
    args = p.parse_args(argv)
    if args.data is not None:
        u.SHARED_EEGMMIDB = args.data
    logging.basicConfig(level=logging.WARNING)
    u.print_header("eigh_routes", args)
    reps = u.n_reps(args)
    subjects = ([int(s) for s in args.subjects.split(",")] if args.subjects
                else [1] if args.quick else list(SUBJECTS))
    limiter = threadpool_limits(1, user_api="blas")
    try:
        rows = [r for c, n in ([(64, 64)] if args.quick else [(64, 256), (256, 16)])
                for r in routes(c, n, reps)]
        u.print_table(
            "One symmetric eigendecomposition (eigenvalues and vectors), thread CPU per matrix, "
            "one BLAS thread",
            ["matrix", "route", "us / matrix", "vs numpy eigh"], rows,
            note=f"Best of {reps} runs over a stack of random SPD matrices; loadavg "
                 f"{u.machine_info().get('loadavg', '')}.",
        )
        with tempfile.TemporaryDirectory() as tmpd:
            srows = []
            for s in subjects:
                try:
                    runs = [u._load_edf(str(r)) for r in u.imagery_runs(s)]
                except FileNotFoundError as exc:
                    logger.warning("subject %d skipped: %s", s, exc)
                    continue
                srows.append(study(f"EEGMMIDB S{s:03d} R12", runs[:2], runs[2], 2.0, reps,
                                   Path(tmpd)))
            xdf = sorted(Path(args.xdf).glob("*run-00[123]_eeg.xdf")) if args.xdf else []
            if len(xdf) == 3:
                runs = [_xdf(r) for r in xdf]
                srows.append(study("bci-essentials run 3", runs[:2], runs[2], 1.5, reps,
                                   Path(tmpd)))
        u.print_table(
            "float32 eigenpairs in the ts-lr tangent space, pseudo-online (EEGMMIDB: run 12, "
            "trained on runs 4 + 8)",
            ["recording", "windows", "cond p50", "cond p99", "cond max", "max |d prob|",
             "argmax flips", "replay CPU f64 (s)", "f32 (s)", "f64 / f32 (paired median)"],
            srows,
            note="cond = largest / smallest eigenvalue of the whitened OAS covariance "
                 "C_ref^-1/2 C C_ref^-1/2 of every window. f32: the whitened matrix rounded to "
                 "float32, LAPACK ssyevd, logarithm and products in float64. Replay CPU: thread "
                 f"time of OnlineDecoder.replay, {reps} runs each in turns; loadavg "
                 f"{u.machine_info().get('loadavg', '')}.",
        )
    finally:
        limiter.unregister()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
