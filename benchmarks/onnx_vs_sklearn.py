"""onnxruntime vs scikit-learn, one window: classifier heads, Nadaraya-Watson f(x), DKF step.

Heads: each pipeline is fitted on EEGMMIDB S001 runs 4/8/12 (64 ch, 160 Hz, 8-32 Hz, 0.5-2.5 s),
saved as a model bundle, and one window's head input is timed through the fitted scikit-learn
head (``predict_proba``) and through the bundle's onnxruntime session (``run_head``; for MDM the
bundle's Riemannian-distance step is counted on the ONNX side). The whole window (feature stage +
head) is timed too: scikit-learn ``pipeline.predict_proba`` vs ``bundle.predict_proba``.

DKF: Nadaraya-Watson ``f(x), Q(x)`` for one time step in numpy vs the hand-built ONNX graph
(:mod:`decoders.dkf.export`), and one full ``step`` (f, Q + update) both ways, on the Flint
reaching data (10 features, 5000 training steps) when present, else on simulated features.

Every timing is the median per-call time of many calls; the table gives the median over
repetitions (the calls of the two sides are interleaved per repetition).

Run: ``python -m benchmarks.onnx_vs_sklearn [--quick]``.
"""
from __future__ import annotations

import logging
import tempfile
import warnings
from pathlib import Path

import numpy as np

from benchmarks import _util as u

logger = logging.getLogger(__name__)

PIPELINES = ("psd-lda", "csp-lda", "mdm", "ts-lr", "ts-svm", "ts-lda", "acm-ts-svm")
QUICK_PIPELINES = ("psd-lda", "mdm")
FLINT = u.ROOT.parent / "shared" / "data" / "flint_dkf"


def load_windows():
    """Padded raw windows of S001 R04/R08/R12 (µV), labels, channel names, rate."""
    from neurodeck.decoders.epochs import extract_epochs

    cfg = u.decoder_config("ts-lr", window_s=2.0)
    Xs, ys = [], []
    for path in u.imagery_runs():
        data, sf, names, onsets, labels = u._load_edf(str(path))
        X, kept = extract_epochs(data, sf, onsets, cfg.tmin, cfg.tmax, cfg.pad)
        Xs.append(X)
        ys.append(np.asarray(labels)[kept])
    return np.concatenate(Xs), np.concatenate(ys), list(names), sf


def bench_heads(pipes, reps: int, n_calls: int, tmp: Path) -> list[list]:
    from pyriemann.classification import MDM

    from neurodeck.decoders.online import OnlineDecoder
    from neurodeck.decoders.onnx import save_bundle, split_pipeline

    X, y, names, sf = load_windows()
    rows = []
    for name in pipes:
        cfg = u.decoder_config(name, window_s=2.0)
        pipe = cfg.build(sf, names)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pipe.fit(X, y)
        path = save_bundle(pipe, cfg, tmp / name, ch_names=names, sfreq=sf, X_check=X[:4])
        bundle = OnlineDecoder(path).bundle
        features, head = split_pipeline(pipe)
        n_shared = len(features) - (1 if isinstance(head, MDM) else 0)
        w = X[:1]
        F_sk = w
        for _, step in features[:n_shared]:
            F_sk = step.transform(F_sk)
        extra = features[n_shared:]

        def onnx_head(F=F_sk, extra=extra, bundle=bundle):
            G = F
            for _, step in extra:
                G = step.transform(G)
            G = np.ascontiguousarray(np.asarray(G, float).reshape(1, -1), dtype=bundle.input_dtype)
            return bundle.run_head(G)

        def sk_head(F=F_sk, head=head):
            return head.predict_proba(F)

        diff = float(np.max(np.abs(onnx_head() - sk_head())))
        res = []
        for _ in range(reps):
            t_sk = np.median(u.timeit(sk_head, n_calls))
            t_ox = np.median(u.timeit(onnx_head, n_calls))
            t_pipe = np.median(u.timeit(lambda p=pipe, w=w: p.predict_proba(w), max(20, n_calls // 10)))
            t_bund = np.median(u.timeit(lambda b=bundle, w=w: b.predict_proba(w), max(20, n_calls // 10)))
            res.append({"sk": t_sk * 1e6, "ox": t_ox * 1e6, "pipe": t_pipe * 1e3,
                        "bund": t_bund * 1e3})
        m = u.median_rows(res)
        rows.append([name, type(head).__name__, m["sk"], m["ox"], m["sk"] / m["ox"],
                     "yes" if m["sk"] / m["ox"] >= 3 else "NO", m["pipe"], m["bund"],
                     m["pipe"] / m["bund"], f"{diff:.1e}"])
    return rows


def dkf_model(quick: bool):
    """(fitted DKF, test features, description)."""
    from neurodeck.decoders.dkf import DiscriminativeKalmanFilter

    if (FLINT / "x.csv").is_file():
        X = np.loadtxt(FLINT / "x.csv", delimiter=",")
        Z = np.loadtxt(FLINT / "z.csv", delimiter=",")
        n_train = 1000 if quick else 5000
        dkf = DiscriminativeKalmanFilter(regressor="nw", loo_max_samples=1000 if quick else 2000)
        dkf.fit(X[:n_train], Z[:n_train])
        return dkf, X[5000:6000], f"Flint 2012 reaching, 10 features, {n_train} training steps"
    dec = u.train_dkf(160.0, seconds=60.0 if quick else 120.0)
    rng = np.random.default_rng(0)
    Xt = dec.dkf.X_train_[:500] * dec.dkf.x_scale_ + dec.dkf.x_mean_ + 0.01 * rng.standard_normal(
        (500, dec.dkf.n_features_in_))
    return dec.dkf, Xt, "simulated motor log band power (13 features)"


def bench_dkf(reps: int, n_calls: int, quick: bool) -> tuple[list[list], str]:
    import onnxruntime as ort

    dkf, Xt, what = dkf_model(quick)
    model = dkf.to_onnx()
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    n_train = len(dkf.X_train_)
    rows_i = iter(range(10**9))

    def x_row():
        return Xt[next(rows_i) % len(Xt)][None, :]

    res = []
    for _ in range(reps):
        dkf.use_onnx(None)
        t_np = u.timeit(lambda: dkf._f_Q_numpy(x_row()), n_calls)
        dkf.reset()
        s_np = u.timeit(lambda: dkf.step(x_row()[0]), n_calls)
        dkf.use_onnx(sess)
        t_ox = u.timeit(lambda: sess.run(None, {"x": x_row()}), n_calls)
        dkf.reset()
        s_ox = u.timeit(lambda: dkf.step(x_row()[0]), n_calls)
        res.append({
            "f_np": np.median(t_np) * 1e6, "f_ox": np.median(t_ox) * 1e6,
            "s_np50": np.median(s_np) * 1e6, "s_np99": np.percentile(s_np, 99) * 1e6,
            "s_ox50": np.median(s_ox) * 1e6, "s_ox99": np.percentile(s_ox, 99) * 1e6,
        })
    m = u.median_rows(res)
    dkf.use_onnx(None)
    f1, Q1 = dkf._f_Q_numpy(Xt[:50])
    f2, Q2 = sess.run(None, {"x": Xt[:50]})
    diff = max(float(np.max(np.abs(f1 - f2))), float(np.max(np.abs(Q1 - Q2))))
    rows = [
        ["NW f(x), Q(x), 1 row", n_train, m["f_np"], m["f_ox"], m["f_np"] / m["f_ox"], "", f"{diff:.1e}"],
        ["DKF step p50 (f, Q + update)", n_train, m["s_np50"], m["s_ox50"], m["s_np50"] / m["s_ox50"],
         "yes" if m["s_ox50"] <= 200 else "NO", ""],
        ["DKF step p99", n_train, m["s_np99"], m["s_ox99"], m["s_np99"] / m["s_ox99"], "", ""],
    ]
    return rows, what


def main(argv: list[str] | None = None) -> int:
    p = u.parser(__doc__.splitlines()[0], blas_option=True)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    u.print_header("onnx_vs_sklearn", args)
    reps = u.n_reps(args)
    n_calls = 100 if args.quick else 1000
    pipes = QUICK_PIPELINES if args.quick else PIPELINES
    with tempfile.TemporaryDirectory() as tmp:
        rows = bench_heads(pipes, reps, n_calls, Path(tmp))
    u.print_table(
        f"ONNX vs scikit-learn head, one window (64 ch, 160 Hz, 2 s; medians of {reps} rep(s) x "
        f"{n_calls} calls)",
        ["pipeline", "head", "sklearn us", "onnx us", "speed-up", ">= 3x", "sklearn pipeline ms",
         "bundle ms", "pipeline speed-up", "max |diff|"],
        rows,
        note="Budget: onnxruntime head >= 3x faster than scikit-learn predict_proba. 'pipeline' = "
             "the whole window (band-pass + features + head) through the fitted scikit-learn "
             "pipeline vs the bundle (same numpy feature steps + ONNX head).",
    )
    rows, what = bench_dkf(reps, n_calls, args.quick)
    u.print_table(
        f"Nadaraya-Watson f(x) and DKF step, numpy vs ONNX ({what}; us, medians of {reps} rep(s))",
        ["what", "training points", "numpy us", "onnx us", "speed-up", "<= 200 us", "max |diff|"],
        rows,
        note="Budget: DKF step incl. ONNX f(z), Q(z) p50 <= 200 us. onnxruntime session: 1 thread.",
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
