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
    parser.add_argument("--report", type=argtypes.out_file, metavar="FILE.html",
                        help="also write the HTML calibration report of the cross-validation (the "
                        "Train page's report: per-fold scores, confusion matrix, R\u00b2 maps, "
                        "ERD/ERS); needs --cv >= 2")
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
    from tqdm import tqdm

    from neurodeck.app.commands.evaluate import add_pipeline_files, config_from_args
    from neurodeck.app.errors import UserError
    from neurodeck.app.workflow.population import train_population
    from neurodeck.app.workflow.training import train
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
    if args.report is not None and (args.population or not args.cv or args.cv < 2):
        raise UserError("--report needs a cross-validation (--cv >= 2) and no --population; "
                        f"got --cv {args.cv}{' --population' if args.population else ''}")
    if args.report is not None and args.report.suffix.lower() not in (".html", ".htm"):
        raise UserError(f"--report {str(args.report)!r}: expected an .html file name")
    if args.population:
        if args.pseudo_online:
            raise UserError("--population cannot be combined with --pseudo-online")
        path, _ = train_population(args.datasets, config, args.out, cv=args.cv, seed=args.seed,
                                   report=lambda line: print(line, flush=True))
        print(f"population model bundle written to {path}")
        return 0
    bars = []

    def progress() -> None:
        if not bars:
            bars.append(tqdm(total=args.cv, unit="fold", desc=f"cv {args.pipeline}",
                             disable=args.no_progress))
        bars[0].update(1)

    def report(line: str) -> None:
        for bar in bars:
            bar.close()
        print(line, flush=True)

    train(args.datasets, config, args.out, cv=args.cv, seed=args.seed,
          pseudo_online=args.pseudo_online, report=report, progress=progress,
          report_html=args.report)
    return 0
