"""`neurodeck evaluate`: cross-validate named pipelines on recordings (and replay them pseudo-online).

Each positional argument is one dataset: a recording, or several recordings of one subject and
session joined by commas. Windows are cut from the raw signal in microvolts with the filter
padding in front (see :mod:`decoders.epochs`); every pipeline sees the same folds.
"""
from __future__ import annotations

import argparse
import json
import logging

from neurodeck.app import argtypes
from neurodeck.app.commands import _continuous

NAME = "evaluate"
HELP = ("cross-validate decoding pipelines on recordings (ROC-AUC for 2 classes, accuracy "
        "otherwise) and print a results table")

logger = logging.getLogger(__name__)

def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags shared by ``evaluate`` and ``train``."""
    parser.add_argument("datasets", nargs="+", metavar="FILES", type=argtypes.dataset,
                        help="a recording, or recordings of one session joined by commas "
                        "(e.g. S001R04.edf,S001R08.edf,S001R12.edf)")
    from neurodeck.app.events import add_event_arguments

    add_event_arguments(parser)
    parser.add_argument("--tmin", type=argtypes.offset_seconds, default=0.5, help="epoch start after the cue, s (0.5)")
    parser.add_argument("--tmax", type=argtypes.offset_seconds, default=2.5, help="epoch end after the cue, s (2.5)")
    parser.add_argument("--band", type=argtypes.hertz, nargs=2, default=(8.0, 32.0), metavar=("LOW", "HIGH"),
                        help="band-pass in Hz (8 32)")
    parser.add_argument("--picks", default=None, type=argtypes.name_list, help="channels, comma separated (default: all EEG)")
    parser.add_argument("--pad", type=argtypes.pad_seconds, default=1.0,
                        help="seconds of signal before each window used to settle the causal "
                        "band-pass (1.0)")
    parser.add_argument("--filter-passes", type=int, default=2, choices=(1, 2),
                        help="causal passes of the 4th-order Butterworth band-pass: 2 (default) has "
                        "the magnitude response of the reference's zero-phase filter, 1 is the "
                        "plain 4th-order Butterworth")
    parser.add_argument("--seed", type=argtypes.seed, default=42, help="random seed (42)")
    parser.add_argument("--pipeline-file", type=argtypes.in_file, action="append", default=[], metavar="TOML",
                        help="add the pipelines declared in this TOML file (the format of "
                        "assets/pipelines/pipelines.toml; repeatable)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(parser)
    parser.add_argument("--pipelines", default="csp-lda,mdm,fgmdm,ts-lr,ts-svm,ts-lda", type=argtypes.name_list,
                        help="pipelines to compare, comma separated (see --list)")
    parser.add_argument("--cv", type=argtypes.cv_folds, default=5, help="stratified shuffled folds (5)")
    parser.add_argument("--json", type=argtypes.out_file, default=None, metavar="OUT",
                        help="write the results as JSON to OUT")
    parser.add_argument("--list", action="store_true", help="list the pipelines and exit")
    parser.add_argument("--list-steps", action="store_true",
                        help="list the step kinds a pipeline file may use and exit")
    parser.add_argument("--pseudo-online", action="store_true",
                        help="also leave-one-recording-out pseudo-online replay: fit on the other "
                        "recordings of the dataset, save a model bundle, slide windows over the "
                        "held-out continuous recording through the online decoder (batched)")
    parser.add_argument("--reference-filter", action="store_true",
                        help="reproduce MOABB-style reference numbers: zero-phase IIR band-pass of "
                        "each whole recording, no in-pipeline filter (not usable online)")
    parser.add_argument("--step", type=argtypes.seconds, default=0.0625,
                        help="hop between pseudo-online windows in seconds (0.0625)")
    parser.add_argument("--trial", type=argtypes.seconds, default=4.0,
                        help="seconds after a cue whose windows count for that trial (4.0)")
    parser.add_argument("--protocol", choices=("within", "chronological", "loso"), default="within",
                        help="within: stratified k-fold inside each dataset (default); "
                        "chronological: the first K trials of each class calibrate, all later "
                        "trials test (with --sources: pooled with other subjects, each re-centred); "
                        "loso: chronological on each dataset with all the other datasets as sources")
    parser.add_argument("--calib-trials", type=calib_trials, default=(0, 5, 10, 20), metavar="K[,K...]",
                        help="calibration trials per class of the chronological/loso protocols "
                        "(0,5,10,20; 0 = no labelled calibration, needs sources)")
    parser.add_argument("--sources", nargs="+", type=argtypes.dataset, default=[], metavar="DATASET",
                        help="recordings of other subjects or sessions to pretrain on (dataset syntax "
                        "as the positional arguments; never the target): pooled with each "
                        "training fold (within) or with the calibration trials (chronological)")
    parser.add_argument("--n-jobs", type=argtypes.n_jobs, default=1, metavar="N",
                        help="(dataset, pipeline) pairs evaluated in parallel: worker processes "
                        "(-1: every core), or jobs on the Dask cluster (1). Same scores for any N")
    parser.add_argument("--backend", choices=("loky", "dask"), default="loky",
                        help="where the pairs run: local worker processes (loky, default) or a "
                        "Dask cluster (needs --scheduler; pip install 'neurodeck[dask]')")
    parser.add_argument("--scheduler", default=None, type=argtypes.name, metavar="ADDRESS",
                        help="Dask scheduler address for --backend dask (e.g. tcp://10.0.0.5:8786); "
                        "the workers need neurodeck installed, the recordings are read here")
    _continuous.add_arguments(parser, evaluate=True)


def calib_trials(text: str) -> tuple[int, ...]:
    """``--calib-trials``: comma-separated integers >= 0."""
    try:
        ks = tuple(int(t) for t in text.split(","))
    except ValueError:
        ks = ()
    if not ks or any(k < 0 for k in ks):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a list of calibration trial counts; expected integers >= 0 "
            "separated by commas (e.g. 0,5,10,20)")
    return ks


def add_pipeline_files(args) -> None:
    """Register the pipelines of every ``--pipeline-file`` (validated; errors name key and value)."""
    from neurodeck.decoders.pipelines import add_pipeline_specs

    for path in getattr(args, "pipeline_file", None) or []:
        names = add_pipeline_specs(path)
        logger.info("pipelines %s added from %s", names, path)


def _events(args) -> dict[str, str]:
    from neurodeck.app.errors import UserError
    from neurodeck.app.events import EventMappingError, mapping_from_args

    try:
        return mapping_from_args(args)
    except EventMappingError as exc:
        raise UserError(str(exc)) from None


def config_from_args(args: argparse.Namespace, pipeline: str):
    """The DecoderConfig that the flags shared by ``evaluate`` and ``train`` describe."""
    from neurodeck.app.workflow.training import make_config

    picks = None if not args.picks else tuple(p.strip() for p in args.picks.split(",") if p.strip())
    return make_config(pipeline, events=_events(args), band=tuple(args.band), tmin=args.tmin,
                       tmax=args.tmax, picks=picks, pad=args.pad,
                       filter_passes=getattr(args, "filter_passes", 2))


def print_table(results) -> None:
    datasets = list(dict.fromkeys(r["dataset"] for r in results))
    pipes = list(dict.fromkeys(r["pipeline"] for r in results))
    score = {(r["dataset"], r["pipeline"]): r["score"] for r in results}
    metric = results[0]["metric"] if results else ""
    w = max([len(d) for d in datasets] + [7])
    print(f"{metric:<{w}}  " + "  ".join(f"{p:>10}" for p in pipes))
    for d in datasets:
        print(f"{d:<{w}}  " + "  ".join(f"{score.get((d, p), float('nan')):>10.3f}" for p in pipes))
    if len(datasets) > 1:
        import numpy as np

        means = [np.mean([score[(d, p)] for d in datasets if (d, p) in score]) for p in pipes]
        print(f"{'mean':<{w}}  " + "  ".join(f"{m:>10.3f}" for m in means))


def run_transfer(args: argparse.Namespace, names: list[str]) -> int:
    """``--protocol chronological``/``loso``, or ``within`` with ``--sources`` (pooled folds)."""
    from neurodeck.app.workflow.transfer import evaluate_transfer

    results = evaluate_transfer(args.datasets, names, config_from_args(args, names[0]),
                                protocol=args.protocol, sources=args.sources,
                                calib_trials=args.calib_trials, cv=args.cv, seed=args.seed)
    print_table([{**d, "pipeline": d["pipeline"] if d["calib_trials"] is None else
                  f"{d['pipeline']} K={d['calib_trials']}"} for d in results])
    write_json(args.json, results)
    return 0


def write_json(path, results: list[dict]) -> None:
    """``--json OUT``: the result rows as ``{"results": [...]}`` (nothing when OUT is None)."""
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"results": results}, indent=2))
        print(f"results written to {path}")


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from neurodeck.app.errors import UserError
    from neurodeck.app.workflow.evaluate import evaluate
    from neurodeck.decoders.pipelines import PIPELINES, STEPS

    add_pipeline_files(args)
    if args.list_steps:
        for kind, step in STEPS.items():
            params = ", ".join(step.params) or "-"
            print(f"{kind:<26} {step.doc} (parameters: {params})")
        return 0
    if args.list:
        from neurodeck.decoders.continuous import PIPELINES as CONTINUOUS

        for name, desc in PIPELINES.items():
            print(f"{name:<12} {desc}")
        for name, (desc, _, _) in CONTINUOUS.items():
            print(f"{name:<12} {desc} (continuous: --target)")
        return 0
    if args.target is not None:
        return _continuous.run_evaluate(args)
    names = [p.strip() for p in args.pipelines.split(",") if p.strip()]
    unknown = [n for n in names if n not in PIPELINES]
    if unknown:
        raise UserError(f"unknown pipelines {unknown}; expected some of {sorted(PIPELINES)}")
    if args.cv < 2:
        raise UserError(f"--cv must be >= 2, got {args.cv}")
    if args.protocol != "within":
        if args.pseudo_online or args.reference_filter:
            raise UserError(f"--protocol {args.protocol} cannot be combined with --pseudo-online "
                            "or --reference-filter (within-session options)")
        return run_transfer(args, names)
    if args.sources:
        if args.pseudo_online or args.reference_filter:
            raise UserError("--sources cannot be combined with --pseudo-online or --reference-filter")
        return run_transfer(args, names)
    if args.reference_filter:
        if args.pseudo_online:
            raise UserError("--reference-filter cannot be combined with --pseudo-online (the "
                            "zero-phase whole-recording filter does not exist online)")
    if args.backend == "dask" and not args.scheduler:
        raise UserError("--backend dask needs --scheduler ADDRESS (e.g. tcp://10.0.0.5:8786)")
    base = config_from_args(args, names[0])
    bar = tqdm(total=len(args.datasets) * len(names) * args.cv, unit="fold",
               disable=args.no_progress, desc="evaluate")

    def progress(dataset: str, pipeline: str, folds: int) -> None:
        bar.set_postfix_str(f"{dataset} {pipeline}")
        bar.update(folds)

    results = evaluate(args.datasets, names, base, cv=args.cv, seed=args.seed,
                       reference_filter=args.reference_filter, pseudo_online=args.pseudo_online,
                       step_s=args.step, trial_s=args.trial, n_jobs=args.n_jobs,
                       backend=args.backend, scheduler=args.scheduler, progress=progress)
    bar.close()
    print_table(results)
    if args.pseudo_online:
        print("pseudo-online (leave one recording out): per-trial accuracy, median time to "
              "decision, CPU real-time factor")
        for d in results:
            p = d.get("pseudo_online")
            if p:
                ttd = p["median_time_to_decision_s"]
                print(f"  {d['dataset']} {d['pipeline']}: {p['trial_accuracy']:.3f}, "
                      f"{'-' if ttd is None else f'{ttd:.2f} s'}, {p['realtime_factor_cpu']:.0f}x")
    write_json(args.json, results)
    return 0
