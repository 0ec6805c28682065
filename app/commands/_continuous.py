"""The continuous-decoding options and runs of `neurodeck train` / `neurodeck evaluate` (--target).

Kept apart from train.py / evaluate.py so those stay about classifiers; they call in here when
``--target`` is given. The work itself is :mod:`neurodeck.app.workflow.continuous`.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser, *, evaluate: bool = False) -> None:
    g = parser.add_argument_group(
        "continuous decoding (Kalman / Discriminative Kalman filter; active with --target)")
    g.add_argument("--target", default=None, metavar="STREAM_OR_FILE",
                   help="continuous target: a stream recorded with the EEG (e.g. NAME-truth), or a "
                   "timestamped .npz/.npy/.csv; for a feature table (.csv/.npy) FILE, a table "
                   "with one target row per feature row. Pipelines: dkf, dkf-nw, dkf-mlp, dkf-gp, "
                   "dkf-robust, kf")
    g.add_argument("--bands", default="8-13,18-26", metavar="LO-HI,...",
                   help="band-power bands in Hz (default: %(default)s); channels: --picks "
                   "(default: the motor channels present)")
    g.add_argument("--window", default="auto", metavar="S|S,S,...|auto",
                   help="window length for band power, s; several, or 'auto' (0.25,0.5,1): the "
                   "one whose features (with their --lags) a ridge regression predicts the target "
                   "from best, by blocked CV on the training part (default: %(default)s)")
    g.add_argument("--hop", type=float, default=0.0625, metavar="S",
                   help="seconds between two feature rows = filter steps (default: %(default)s)")
    g.add_argument("--lags", default="auto", metavar="auto|0,1,...",
                   help="feature history of the filter's input, in hops: 'auto' chooses among "
                   "none, 0,1,2,3 and rows one and two windows back (e.g. 0,8 and 0,8,16 for a "
                   "0.5 s window at a 0.0625 s hop) by blocked CV on the training part "
                   "(default: %(default)s)")
    g.add_argument("--features-from", default=None, type=Path, metavar="BUNDLE",
                   help="use a classifier bundle's outputs as features instead of band power")
    if evaluate:
        g.add_argument("--split", type=float, default=0.7, metavar="F",
                       help="chronological split: first fraction F (< 1) or first F hops (>= 1) "
                       "trains, the rest tests (default: %(default)s)")
        g.add_argument("--test-hops", type=int, default=None, metavar="N",
                       help="test only the N hops after the training part")
        g.add_argument("--test", nargs="+", default=None, metavar="FILE",
                       help="train on all FILES, test on these (another session) instead of a split")


def _load(args: argparse.Namespace, specs):
    from neurodeck.app.workflow.continuous import load_many

    picks = [p.strip() for p in args.picks.split(",")] if args.picks else None
    return load_many(specs, args.target, picks=picks, bands=args.bands, window_s=args.window,
                     pad_s=args.pad, hop_s=args.hop, classifier=args.features_from)


def run_train(args: argparse.Namespace) -> int:
    from neurodeck.app.workflow.continuous import check_pipelines, train_continuous

    check_pipelines([args.pipeline])
    datas = _load(args, args.datasets)
    d0 = datas[0]
    print(f"{sum(int(d.valid.sum()) for d in datas)} hops of {len(d0.stage.names)} features "
          f"({d0.stage.kind}) -> targets {d0.targets}")
    s = train_continuous(datas, args.pipeline, args.out, seed=args.seed,
                         classifier=args.features_from, lags=args.lags)
    t = s.get("step_timing_us") or {}
    timing = (f"; step p50 numpy {t['numpy_p50_us']:.0f} us, onnx {t['onnx_p50_us']:.0f} us"
              if t else "")
    window = "" if d0.stage.kind == "table" else f"window {s['window_s']:g} s, "
    print(f"continuous bundle ({args.pipeline}) written to {s['path']}: {window}lags "
          f"{','.join(map(str, s['lags']))}, backend {s['backend']}"
          f"{timing}; training corr {s['train_corr']:.3f}, nRMSE {s['train_nrmse']:.3f}")
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    from neurodeck.app.workflow.continuous import check_pipelines, evaluate_continuous

    names = check_pipelines(args.pipelines)
    datas = _load(args, args.datasets)
    test = _load(args, args.test) if args.test else None
    rows = evaluate_continuous(datas, names, split=args.split, test_hops=args.test_hops,
                               test=test, seed=args.seed, lags=args.lags)
    print(f"{'dataset':<24} {'pipeline':<11} {'corr':>6} {'nRMSE':>6} {'angle':>6}  train/test"
          "  window lags")
    for r in rows:
        ang = "-" if r["angle_error"] is None else f"{r['angle_error']:.3f}"
        win = "-" if r.get("window_s") is None else f"{r['window_s']:g}"
        print(f"{r['dataset'][:24]:<24} {r['pipeline']:<11} {r['corr']:>6.3f} {r['nrmse']:>6.3f} "
              f"{ang:>6}  {r['n_train']}/{r['n_test']}  {win:>6} {','.join(map(str, r['lags']))}")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=1), encoding="utf-8")
    return 0
