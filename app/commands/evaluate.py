"""`neurodeck evaluate`: cross-validate named pipelines on recordings (and replay them pseudo-online).

Each positional argument is one dataset: a recording, or several recordings of one subject and
session joined by commas. Windows are cut from the raw signal in microvolts with the filter
padding in front (see :mod:`decoders.epochs`); every pipeline sees the same folds.
"""
from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

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


def load_dataset(spec: str, config, *, reference_filter: bool = False):
    """Load one dataset (comma-joined recordings) into padded raw windows.

    Returns
    -------
    X : ndarray, shape (n_trials, n_channels, window_samples)
        Microvolts.
    y : ndarray of str, shape (n_trials,)
    ch_names : list of str
    sfreq : float
    raws : list of (continuous microvolt data (n_channels, n_times), events (onset sample, label))

    With ``reference_filter`` the whole recording is band-passed zero-phase first (MNE's IIR:
    4th-order Butterworth forward-backward, as MOABB does) and ``config.pad`` should be 0; this
    reproduces the reference numbers but is not what the online decoder can do.
    """
    import numpy as np

    from neurodeck.acquisition.io import get_events, load_recording
    from neurodeck.app.errors import UserError
    from neurodeck.decoders.epochs import extract_epochs, pick_indices

    Xs, ys, conts = [], [], []
    ch_names = sfreq = None
    for part in [p for p in spec.split(",") if p]:
        path = Path(part)
        if not path.exists():
            raise UserError(f"recording {part!r} not found")
        raw = load_recording(path)
        raw.pick("eeg")
        if reference_filter:
            raw.filter(config.band[0], config.band[1], method="iir", verbose="error")
        if sfreq is None:
            sfreq = float(raw.info["sfreq"])
            ch_names = list(raw.ch_names)
            idx = pick_indices(ch_names, config.picks)
            ch_names = [ch_names[i] for i in idx]
        elif float(raw.info["sfreq"]) != sfreq:
            raise UserError(f"{part}: rate {raw.info['sfreq']} Hz differs from {sfreq} Hz of the "
                            "first recording of this dataset")
        idx = pick_indices(raw.ch_names, ch_names)
        data = raw.get_data()[idx] * 1e6  # volts -> microvolts (the LSL convention)
        events, event_id = get_events(raw, config.event_mapping)
        names = {v: k for k, v in event_id.items()}
        onsets = events[:, 0] - raw.first_samp
        labels = np.array([names[c] for c in events[:, 2]])
        X, kept = extract_epochs(data, sfreq, onsets, config.tmin, config.tmax, config.pad)
        Xs.append(X)
        ys.append(labels[kept])
        conts.append((data, onsets, labels))
    X = np.concatenate(Xs)
    y = np.concatenate(ys)
    if not len(y):
        raise UserError(
            f"{spec}: none of the {sum(len(c[1]) for c in conts)} trials fits in its recording with "
            f"--tmin {config.tmin:g} --tmax {config.tmax:g} s and {config.pad:g} s of padding "
            "before; expected a window that ends inside the recordings (a smaller --tmax / --pad)")
    return X, y, ch_names, sfreq, conts


def add_pipeline_files(args) -> None:
    """Register the pipelines of every ``--pipeline-file`` (validated; errors name key and value)."""
    from neurodeck.decoders.pipelines import add_pipeline_specs

    for path in getattr(args, "pipeline_file", None) or []:
        names = add_pipeline_specs(path)
        logger.info("pipelines %s added from %s", names, path)


def dataset_name(spec: str) -> str:
    parts = [Path(p).stem for p in spec.split(",") if p]
    return "+".join(parts)


def _events(args) -> dict[str, str]:
    from neurodeck.app.errors import UserError
    from neurodeck.app.events import EventMappingError, mapping_from_args

    try:
        return mapping_from_args(args)
    except EventMappingError as exc:
        raise UserError(str(exc)) from None


def make_config(args, pipeline: str):
    from neurodeck.decoders.pipelines import DecoderConfig

    picks = None if not args.picks else tuple(p.strip() for p in args.picks.split(",") if p.strip())
    return DecoderConfig(
        pipeline=pipeline,
        band=tuple(args.band),
        tmin=args.tmin,
        tmax=args.tmax,
        picks=picks,
        events=_events(args),
        pad=args.pad,
        filter_passes=getattr(args, "filter_passes", 2),
    )


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


def pseudo_online_loro(args, pipeline: str, ch_names, sfreq: float, spec: str) -> dict | None:
    """Leave-one-recording-out pseudo-online replay of one pipeline on one dataset.

    For each recording: fit on the others' epochs, save a bundle to a temporary directory, replay
    the held-out continuous recording through :class:`decoders.online.OnlineDecoder` (batched).
    Returns per-trial accuracy, median time to decision and speed, pooled over recordings.
    """
    import tempfile
    import time

    import numpy as np

    from neurodeck.decoders.evaluation import pseudo_online
    from neurodeck.decoders.onnx import save_bundle

    config = make_config(args, pipeline)
    _, _, _, _, conts = load_dataset(spec, config)
    if len(conts) < 2:
        logger.warning("pseudo-online needs >= 2 recordings per dataset; skipped for %s", spec)
        return None
    from neurodeck.decoders.epochs import extract_epochs

    per_run = [extract_epochs(d, sfreq, o, config.tmin, config.tmax, config.pad) for d, o, _ in conts]
    correct, ttd, compute, duration, n_windows = [], [], 0.0, 0.0, 0
    for k, (data, onsets, labels) in enumerate(conts):
        Xtr = np.concatenate([per_run[j][0] for j in range(len(conts)) if j != k])
        ytr = np.concatenate([conts[j][2][per_run[j][1]] for j in range(len(conts)) if j != k])
        pipe = config.build(sfreq, ch_names, seed=args.seed).fit(Xtr, ytr)
        with tempfile.TemporaryDirectory() as tmp:
            save_bundle(pipe, config, tmp, ch_names=ch_names, sfreq=sfreq, X_check=Xtr[:8])
            t0 = time.process_time()
            r = pseudo_online(tmp, data, sfreq, (onsets, labels), step_s=args.step,
                              trial_s=args.trial)
            compute += time.process_time() - t0
        correct.append(r.trial_correct)
        ttd.append(r.time_to_decision)
        duration += r.duration_s
        n_windows += len(r.ends)
    correct_a, ttd_a = np.concatenate(correct), np.concatenate(ttd)
    return {
        "scheme": "leave-one-recording-out",
        "step_s": args.step,
        "n_trials": int(len(correct_a)),
        "trial_accuracy": float(correct_a.mean()),
        "median_time_to_decision_s": float(np.nanmedian(ttd_a)) if np.isfinite(ttd_a).any() else None,
        "n_windows": n_windows,
        "cpu_s": compute,
        "realtime_factor_cpu": duration / max(compute, 1e-9),
    }


def run_transfer(args: argparse.Namespace, names: list[str]) -> int:
    """``--protocol chronological``/``loso``, or ``within`` with ``--sources`` (pooled folds)."""
    import warnings

    from neurodeck.app.errors import UserError
    from neurodeck.decoders.evaluation import (
        cross_validate_with_sources,
        evaluate_chronological,
        evaluate_loso,
    )

    base = make_config(args, names[0])
    if args.protocol == "loso" and args.sources:
        raise UserError("--protocol loso uses the positional datasets as each other's sources; "
                        "give --sources with --protocol chronological")
    loaded = {}
    ch_names = sfreq = None
    for spec in list(args.datasets) + list(args.sources):
        if spec in loaded:
            continue
        X, y, ch, sf, _ = load_dataset(spec, base)
        if ch_names is not None and (ch != ch_names or sf != sfreq):
            raise UserError(f"{spec}: channels/rate ({len(ch)} channels at {sf:g} Hz) differ from "
                            f"the first dataset ({len(ch_names)} at {sfreq:g} Hz); use --picks")
        ch_names, sfreq = ch, sf
        loaded[spec] = (X, y)
    overlap = set(args.datasets) & set(args.sources)
    if overlap:
        raise UserError(f"{sorted(overlap)} are both target and source; a target is never a source")
    pipes = {n: make_config(args, n).build(sfreq, ch_names, seed=args.seed) for n in names}
    results = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        if args.protocol == "within":
            res = []
            for spec in args.datasets:
                res += cross_validate_with_sources(*loaded[spec], pipes,
                                                   [loaded[s] for s in args.sources], cv=args.cv,
                                                   seed=args.seed, dataset=dataset_name(spec))
        elif args.protocol == "loso":
            res = evaluate_loso({dataset_name(s): loaded[s] for s in args.datasets}, pipes,
                                args.calib_trials, seed=args.seed)
        else:
            sources = [loaded[s] for s in args.sources]
            res = []
            for spec in args.datasets:
                res += evaluate_chronological(*loaded[spec], pipes, args.calib_trials,
                                              sources=sources, dataset=dataset_name(spec),
                                              seed=args.seed)
    for r in res:
        d = r.as_dict()
        d.update(sources=[dataset_name(s) for s in args.sources] if args.protocol != "loso" else
                 [dataset_name(s) for s in args.datasets if dataset_name(s) != r.dataset],
                 sfreq=sfreq, n_channels=len(ch_names), band=list(base.band), tmin=base.tmin,
                 tmax=base.tmax, pad=base.pad)
        results.append(d)
    print_table([{**d, "pipeline": d["pipeline"] if d["calib_trials"] is None else
                  f"{d['pipeline']} K={d['calib_trials']}"} for d in results])
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"results": results}, indent=2))
        print(f"results written to {args.json}")
    return 0


def run(args: argparse.Namespace) -> int:
    import warnings

    from tqdm import tqdm

    from neurodeck.app.errors import UserError
    from neurodeck.decoders.evaluation import cross_validate_pipelines
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
        args.pad = 0.0
    base = make_config(args, names[0])
    results = []
    bar = tqdm(total=len(args.datasets) * len(names) * args.cv, unit="fold",
               disable=args.no_progress, desc="evaluate")
    for spec in args.datasets:
        X, y, ch_names, sfreq, _ = load_dataset(spec, base, reference_filter=args.reference_filter)
        name = dataset_name(spec)
        pipes = {n: make_config(args, n).build(sfreq, ch_names, seed=args.seed) for n in names}
        if args.reference_filter:
            for n, p in list(pipes.items()):
                if "bandpass" in p.named_steps:
                    p.set_params(bandpass="passthrough")
                else:  # the filter bank filters inside the pipeline: no reference equivalent
                    raise UserError(f"--reference-filter does not apply to {n!r} (it filters its "
                                    "own sub-bands)")

        def progress(pipe, what, k, _name=name):
            bar.set_postfix_str(f"{_name} {pipe}")
            bar.update(1)

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            res = cross_validate_pipelines(X, y, pipes, cv=args.cv, seed=args.seed, dataset=name,
                                           progress=progress)
        po = {}
        if args.pseudo_online:
            for n in names:
                po[n] = pseudo_online_loro(args, n, ch_names, sfreq, spec)
                bar.set_postfix_str(f"{name} {n} pseudo-online")
        for r in res:
            d = r.as_dict()
            if r.pipeline in po:
                d["pseudo_online"] = po[r.pipeline]
            d.update(files=[p for p in spec.split(",") if p], sfreq=sfreq, n_channels=len(ch_names),
                     band=list(base.band), tmin=base.tmin, tmax=base.tmax, pad=base.pad,
                     filter="zero-phase IIR on the whole recording (reference)" if args.reference_filter
                     else f"causal 4th-order Butterworth x{base.filter_passes} per padded window "
                     "(as online)")
            results.append(d)
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
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"results": results}, indent=2))
        print(f"results written to {args.json}")
    return 0
