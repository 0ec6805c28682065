"""`neurodeck train`: fit one pipeline on recordings and write a model bundle (ONNX + JSON)."""
from __future__ import annotations

import argparse
import logging

from neurodeck.app import argtypes
from neurodeck.app.commands import _continuous
from neurodeck.app.commands.evaluate import add_common_arguments

NAME = "train"
HELP = "fit a decoding pipeline on recordings and save it as a model bundle (ONNX + JSON sidecar)"

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(parser)
    parser.add_argument("--pipeline", default="ts-lda", type=argtypes.name, help="pipeline name (ts-lda; see "
                        "`neurodeck evaluate --list`)")
    parser.add_argument("--out", type=argtypes.out_dir, required=True, metavar="DIR",
                        help="bundle directory to write (model.onnx + model.json)")
    parser.add_argument("--cv", type=argtypes.folds, default=5,
                        help="folds of the cross-validation score stored in the bundle (0: none)")
    parser.add_argument("--population", action="store_true",
                        help="a population model: each positional dataset is one subject (or "
                        "session), re-centred by its own reference before pooling (use a pipeline "
                        "with a recentering step, e.g. --pipeline default); the bundle's reference "
                        "then adapts to the new user's windows. With --cv >= 2 the stored score is "
                        "leave-one-subject-out without calibration (K = 0)")
    parser.add_argument("--pseudo-online", action="store_true",
                        help="also replay the training recordings through the saved bundle and "
                        "print per-trial accuracy, time to decision and speed (optimistic: "
                        "training data)")
    _continuous.add_arguments(parser)


def run(args: argparse.Namespace) -> int:
    import warnings

    import numpy as np
    from tqdm import tqdm

    from neurodeck.app.commands.evaluate import add_pipeline_files, config_from_args
    from neurodeck.app.errors import UserError
    from neurodeck.app.workflow.datasets import dataset_name, dataset_paths
    from neurodeck.app.workflow.evaluate import load_for
    from neurodeck.app.workflow.training import fit_bundle
    from neurodeck.decoders.evaluation import cross_validate_pipelines, pseudo_online
    from neurodeck.decoders.pipelines import PIPELINES

    add_pipeline_files(args)
    if args.target is not None:
        return _continuous.run_train(args)
    if args.pipeline not in PIPELINES:
        raise UserError(f"unknown pipeline {args.pipeline!r}; expected one of {sorted(PIPELINES)}")
    if len(args.datasets) != 1:
        # several positional datasets: train on all of them together
        logger.info("training on %d datasets together", len(args.datasets))
    config = config_from_args(args, args.pipeline)
    if args.population:
        return run_population(args, config)
    trials = load_for([p for s in args.datasets for p in dataset_paths(s)], config)
    X, y, ch_names, sfreq = trials.X, trials.y, trials.ch_names, trials.sfreq
    counts = ", ".join(f"{c}: {n}" for c, n in zip(*np.unique(y, return_counts=True), strict=True))
    print(f"{len(y)} trials ({counts}), {len(ch_names)} channels at {sfreq:g} Hz")
    scores: dict = {"n_trials": int(len(y)), "datasets": [dataset_name(s) for s in args.datasets]}
    if args.cv and args.cv >= 2:
        bar = tqdm(total=args.cv, unit="fold", desc=f"cv {args.pipeline}", disable=args.no_progress)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            res = cross_validate_pipelines(
                X, y, {args.pipeline: config.build(sfreq, ch_names, seed=args.seed)}, cv=args.cv,
                seed=args.seed, progress=lambda *a: bar.update(1))[0]
        bar.close()
        scores.update(cv_metric=res.metric, cv_score=res.score, cv_fold_scores=res.fold_scores,
                      cv_folds=args.cv, seed=args.seed)
        print(f"{args.pipeline}: {args.cv}-fold {res.metric} {res.score:.3f}")
    path, _, scores = fit_bundle(trials, config, args.out, seed=args.seed, scores=scores,
                                 n_check=None)
    print(f"model bundle written to {path} (training accuracy {scores['train_score']:.3f})")
    if args.pseudo_online:
        for run in trials.runs:
            r = pseudo_online(path, run.data, sfreq, (run.onsets, run.labels))
            s = r.summary()
            print(f"pseudo-online: {s['n_trials']} trials, accuracy {s['trial_accuracy']:.3f}, "
                  f"median time to decision {s['median_time_to_decision_s']} s, "
                  f"{s['realtime_factor']:.0f}x real time")
    return 0


def run_population(args: argparse.Namespace, config) -> int:
    """``train --population``: one model from several subjects, each re-centred by its own mean."""
    import time
    import warnings

    import numpy as np

    from neurodeck.app.errors import UserError
    from neurodeck.app.workflow.datasets import dataset_name
    from neurodeck.app.workflow.evaluate import load_datasets
    from neurodeck.decoders.evaluation import evaluate_loso
    from neurodeck.decoders.onnx import save_bundle
    from neurodeck.decoders.transfer import fit_pooled, recentering_steps

    if len(args.datasets) < 2:
        raise UserError(f"--population needs at least 2 datasets (one per subject), got {len(args.datasets)}")
    if args.pseudo_online:
        raise UserError("--population cannot be combined with --pseudo-online")
    trials = load_datasets(args.datasets, config)
    parts = {dataset_name(spec): (tr.X, tr.y) for spec, tr in trials.items()}
    first = next(iter(trials.values()))
    ch_names, sfreq = first.ch_names, first.sfreq
    pipe = config.build(sfreq, ch_names, seed=args.seed)
    if not recentering_steps(pipe):
        logger.warning("pipeline %s has no recentering step: the subjects are pooled as they are",
                       args.pipeline)
    n = sum(len(y) for _, y in parts.values())
    print(f"population of {len(parts)} datasets, {n} trials, {len(ch_names)} channels at {sfreq:g} Hz")
    scores: dict = {"n_trials": int(n), "datasets": list(parts), "population": True}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        if args.cv and args.cv >= 2:
            res = evaluate_loso(parts, {args.pipeline: pipe}, [0], seed=args.seed)
            scores.update(loso_metric=res[0].metric, loso_k0_score=float(np.mean([r.score for r in res])),
                          loso_k0_scores={r.dataset: r.score for r in res})
            print(f"{args.pipeline}: leave-one-subject-out, no calibration: {res[0].metric} "
                  f"{scores['loso_k0_score']:.3f}")
        t0 = time.perf_counter()
        fit_pooled(pipe, list(parts.values()))
        scores["fit_time_s"] = time.perf_counter() - t0
        X0 = next(iter(parts.values()))[0]
        path = save_bundle(pipe, config, args.out, ch_names=ch_names, sfreq=sfreq, X_check=X0[:8],
                           scores=scores)
    print(f"population model bundle written to {path}")
    return 0
