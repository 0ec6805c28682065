"""Decoder configurations, cross-validation of pipelines on trials, training and saving bundles.

Used by ``neurodeck train``, the Train page and the demo (``neurodeck evaluate`` compares
datasets x pipelines in parallel with :func:`app.workflow.evaluate.evaluate`).
"""
from __future__ import annotations

import dataclasses
import logging
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from neurodeck.app.workflow.datasets import Trials

logger = logging.getLogger(__name__)

#: Pipelines whose selector reads a user selection: name -> (spectral step, feature map kind).
SPECTRAL = {"psd-lda": ("psd", "psd"), "coh-lda": ("coh", "ns")}


def make_config(pipeline: str, *, events: Mapping[str, str], band: tuple[float, float] = (8.0, 32.0),
                tmin: float = 0.5, tmax: float = 2.5, pad: float = 1.0,
                picks: Sequence[str] | None = None, filter_passes: int = 2,
                selection: Sequence[str] | None = None, trials: Trials | None = None,
                dropped: list[str] | None = None, spectrum=None):
    """The :class:`decoders.pipelines.DecoderConfig` of ``pipeline``.

    ``spectrum`` (:class:`app.workflow.features.SpectrumSettings`, the Features page's Welch or
    Burg settings) sets the ``psd`` step of ``psd-lda`` (overrides, so the bundle keeps them).

    A user selection of features (``"C4:13-16"`` specs, for ``psd-lda`` / ``coh-lda``) becomes
    overrides of the selector. The selector needs the frequency grid of its spectral step to read
    the specs: it is taken from the step fitted on two windows of ``trials``. Selected items
    outside that grid (the Features page shows a wider band than the pipelines use) are left out
    and appended to ``dropped``; if none is left, the pipeline keeps its own top-10 selection.
    """
    from neurodeck.decoders.errors import DecoderError
    from neurodeck.decoders.pipelines import DecoderConfig
    from neurodeck.decoders.selection import parse_selection

    cfg = DecoderConfig(pipeline=pipeline, band=tuple(band), tmin=tmin, tmax=tmax,
                        picks=None if picks is None else tuple(picks), events=dict(events),
                        pad=pad, filter_passes=filter_passes)
    if spectrum is not None and SPECTRAL.get(pipeline, ("",))[0] == "psd":
        if trials is None:
            raise ValueError("spectrum settings need the trials (for the sampling rate)")
        cfg = dataclasses.replace(cfg, overrides=tuple(
            (f"psd__{k}", v) for k, v in spectrum.psd_params(trials.sfreq).items()))
    if selection and pipeline in SPECTRAL:
        if trials is None:
            raise ValueError("a feature selection needs the trials (for the frequency grid)")
        step, _ = SPECTRAL[pipeline]
        pipe = cfg.build(trials.sfreq, trials.ch_names)
        pipe[:2].fit(trials.X[:2])
        freqs = [float(f) for f in pipe.named_steps[step].freqs_]
        keep = []
        for item in selection:
            try:
                parse_selection([item], trials.ch_names, freqs)
            except DecoderError:
                if dropped is not None:
                    dropped.append(f"{pipeline}: {item}")
                continue
            keep.append(str(item))
        if keep:
            cfg = dataclasses.replace(cfg, overrides=cfg.overrides + (("select__selection", keep),
                                                                      ("select__freqs", freqs)))
    return cfg


@dataclasses.dataclass
class TrainResult:
    """Cross-validation of several pipelines on one dataset.

    Attributes
    ----------
    results : list of decoders.evaluation.CVResult
        With the out-of-fold predictions (``y_pred``).
    configs : dict of str to DecoderConfig
        The exact configuration of each pipeline (selection overrides included).
    trials : Trials
    confusion : dict of str to (labels, matrix)
        Out-of-fold confusion matrices (rows: true class, columns: predicted) asked for so far.
    optimistic : set of str
        Pipelines whose score is optimistic (a feature selection made on all trials): never
        ranked best by :func:`honest_best`.
    """

    results: list
    configs: dict
    trials: Trials
    cv: int
    seed: int
    confusion: dict = dataclasses.field(default_factory=dict)
    dropped: list = dataclasses.field(default_factory=list)
    notes: list = dataclasses.field(default_factory=list)
    optimistic: set = dataclasses.field(default_factory=set)

    def best(self) -> str:
        return max(self.results, key=lambda r: r.score).pipeline

    def result(self, name: str):
        return next(r for r in self.results if r.pipeline == name)


def honest_best(result: TrainResult) -> str:
    """Best pipeline whose score is not optimistic (``result.optimistic``: feature selection made
    on all trials); the best of all if every one is."""
    leaky = result.optimistic
    honest = [r for r in result.results if r.pipeline not in leaky] or result.results
    return max(honest, key=lambda r: r.score).pipeline


def chance_note(y: Sequence, metric: str) -> str:
    """Chance level of a score on ``y`` and the accuracy a classifier must beat (binomial,
    p < 0.05, Combrisson & Jerbi 2015)."""
    from scipy.stats import binom

    n, k = len(y), max(1, len(set(map(str, y))))
    threshold = binom.ppf(0.95, n, 1.0 / k) / n if n else float("nan")
    chance = "0.50 (ROC AUC)" if metric == "roc_auc" else f"{1.0 / k:.2f}"
    return (f"Chance: {chance}; with {n} trials an accuracy above {threshold:.2f} is better than "
            "chance (p < 0.05).")


def run_cross_validation(trials: Trials, names: Sequence[str], *, band=(8.0, 32.0), cv: int = 5,
                         seed: int = 42, selection: dict | None = None,
                         progress: Callable[[int, int, str], None] | None = None) -> TrainResult:
    """Cross-validate the named pipelines on the same shuffled stratified folds.

    ``selection`` maps a feature-map kind (``"psd"``, ``"ns"``) to selection specs (see
    :func:`make_config`), and ``"spectrum"`` to the Features page's spectrum settings
    (:meth:`app.workflow.features.SpectrumSettings.to_specs`) for ``psd-lda``. Fewer folds than
    ``cv`` are used when the smallest class has fewer trials (said in ``notes``).
    ``progress(done, total, text)`` is called after every fold and may raise to cancel.
    """
    if not names:
        raise ValueError("no pipeline chosen; tick at least one")
    from neurodeck.app.workflow.features import SpectrumSettings

    selection = selection or {}
    spectrum = (SpectrumSettings.from_specs(selection["spectrum"]) if selection.get("spectrum")
                else None)
    configs = {}
    dropped: list[str] = []
    for n in names:
        kind = SPECTRAL.get(n, (None, None))[1]
        configs[n] = make_config(n, events=trials.mapping, band=band, tmin=trials.tmin,
                                 tmax=trials.tmax, pad=trials.pad,
                                 selection=selection.get(kind) if kind else None, trials=trials,
                                 dropped=dropped, spectrum=spectrum)
    result = cross_validate_configs(trials, configs, cv=cv, seed=seed, progress=progress)
    result.dropped = dropped
    return result


def cross_validate_configs(trials: Trials, configs: Mapping[str, Any], *, cv: int = 5,
                           seed: int = 42,
                           progress: Callable[[int, int, str], None] | None = None) -> TrainResult:
    """Cross-validate decoder configurations (name -> DecoderConfig) on the same shuffled
    stratified folds, with out-of-fold predictions (for confusion matrices).

    Fewer folds than ``cv`` are used when the smallest class has fewer trials (said in
    ``notes``). ``progress(done, total, text)`` is called after every fold and may raise to cancel.

    Raises
    ------
    ValueError
        A class has fewer than 3 trials.
    """
    from neurodeck.decoders.evaluation import cross_validate_pipelines

    names = list(configs)
    _, counts = np.unique(trials.y, return_counts=True)
    if counts.min() < 3:
        raise ValueError(f"a class has only {counts.min()} usable trial(s); cross-validation needs "
                         "at least 3 per class (record more trials)")
    notes = []
    if counts.min() < cv:
        notes.append(f"{cv} folds asked, {counts.min()} used (the smallest class has "
                     f"{counts.min()} trials)")
        cv = int(counts.min())
    total = len(names) * cv
    done = [0]

    def step(name: str, what: str, k: int) -> None:
        done[0] += 1
        if progress is not None:
            progress(done[0], total, f"{name}: fold {k + 1}/{cv} done")

    results = []
    for n in names:
        pipe = configs[n].build(trials.sfreq, trials.ch_names, seed=seed)
        if progress is not None:
            progress(done[0], total, f"{n}: fitting fold 1/{cv}")
        results += cross_validate_pipelines(trials.X, trials.y, {n: pipe}, cv=cv, seed=seed,
                                            dataset=", ".join(Path(s).name for s in trials.sources),
                                            progress=step, predictions=True)
    return TrainResult(results, dict(configs), trials, cv, seed, notes=notes)


def cross_validate_recordings(paths: Sequence[str | Path], names: Sequence[str], *,
                              mapping: Mapping[str, str] | None = None, tmin: float = 0.5,
                              tmax: float = 2.5, band=(8.0, 32.0), cv: int = 5, seed: int = 42,
                              selection: dict | None = None,
                              progress: Callable[[int, int, str], None] | None = None
                              ) -> TrainResult:
    """Load recordings, cross-validate the named pipelines, and add the best one's confusion.

    What the Train page runs (in a child process, :func:`app.workflow.isolated.run_isolated`).
    Pipelines whose selector reads ``selection`` (chosen on these same trials) are marked
    ``optimistic`` and the confusion matrix is that of :func:`honest_best`.
    """
    from neurodeck.app.workflow.datasets import load_trials

    if progress is not None:
        progress(0, 1, "loading recordings")
    trials = load_trials(paths, mapping, tmin=tmin, tmax=tmax, baseline=True)
    selection = selection or {}
    result = run_cross_validation(trials, names, band=band, cv=cv, seed=seed, selection=selection,
                                  progress=progress)
    result.optimistic = {n for n in names if n in SPECTRAL and selection.get(SPECTRAL[n][1])}
    best = honest_best(result)
    if progress is not None:
        progress(1, 1, f"confusion matrix of {best}")
    result.confusion[best] = confusion(result, best)
    return result


def confusion(result: TrainResult, name: str) -> tuple[list[str], np.ndarray]:
    """Out-of-fold confusion matrix of ``name`` on the folds of the cross-validation.

    From the predictions of the cross-validation's own fitted folds (no refit).
    """
    from sklearn.metrics import confusion_matrix

    tr = result.trials
    r = result.result(name)
    if r.y_pred is None:  # a result made without predictions: refit on the same folds
        from sklearn.model_selection import StratifiedKFold, cross_val_predict

        pipe = result.configs[name].build(tr.sfreq, tr.ch_names, seed=result.seed)
        folds = StratifiedKFold(result.cv, shuffle=True, random_state=result.seed)
        r.y_pred = cross_val_predict(pipe, tr.X, tr.y, cv=folds)
    labels = tr.labels
    return labels, confusion_matrix(tr.y, r.y_pred, labels=labels)


def fit_bundle(trials: Trials, config, out_dir: str | Path, *, seed: int = 42,
               scores: dict | None = None, n_check: int | None = 8) -> tuple[Path, Any, dict]:
    """Fit ``config``'s pipeline on every trial and write its bundle (ONNX + JSON sidecar).

    Parameters
    ----------
    trials : Trials
    config : DecoderConfig
    out_dir : path
        Bundle directory (created; its model files are overwritten).
    seed : int
    scores : dict or None
        Cross-validation scores etc. to record; ``fit_time_s`` and ``train_score`` (accuracy on
        the training trials) are added.
    n_check : int or None
        Training windows on which the ONNX head is checked against scikit-learn (None: all).

    Returns
    -------
    path : Path
        The bundle directory.
    pipeline : sklearn Pipeline
        The fitted pipeline.
    scores : dict
        What was recorded.
    """
    from neurodeck.decoders.onnx import save_bundle

    scores = dict(scores or {})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        t0 = time.perf_counter()
        pipe = config.build(trials.sfreq, trials.ch_names, seed=seed).fit(trials.X, trials.y)
        scores["fit_time_s"] = time.perf_counter() - t0
        scores["train_score"] = float(pipe.score(trials.X, trials.y))
        X_check = trials.X if n_check is None else trials.X[: min(n_check, len(trials.X))]
        path = save_bundle(pipe, config, out_dir, ch_names=trials.ch_names, sfreq=trials.sfreq,
                           X_check=X_check, scores=scores)
    return Path(path), pipe, scores


def fit_and_save(result: TrainResult, name: str, out_dir: Path) -> Path:
    """Fit ``name`` of a cross-validation on every trial and write the bundle into ``out_dir``.

    The bundle records the cross-validation scores (and the confusion matrix if computed).
    """
    tr = result.trials
    r = result.result(name)
    scores = {"metric": r.metric, "cv_score": r.score, "fold_scores": r.fold_scores,
              "n_trials": r.n_trials, "n_folds": r.n_folds, "seed": r.seed,
              "recordings": [Path(s).name for s in tr.sources]}
    if name in result.confusion:
        labels, cm = result.confusion[name]
        scores["confusion"] = {"labels": labels, "matrix": cm.tolist()}
    return fit_bundle(tr, result.configs[name], out_dir, seed=result.seed, scores=scores)[0]


@dataclasses.dataclass
class Trained:
    """What :func:`train` made.

    Attributes
    ----------
    path : Path
        The bundle directory.
    scores : dict
        What the bundle records (cross-validation, ``fit_time_s``, ``train_score``).
    trials : Trials
        The training trials.
    pseudo_online : list of dict
        One :meth:`PseudoOnlineResult.summary` per training recording, if asked (optimistic:
        the model saw these trials).
    """

    path: Path
    scores: dict
    trials: Trials
    pseudo_online: list = dataclasses.field(default_factory=list)


def train(datasets: Sequence[str], config, out_dir: str | Path, *, cv: int = 5, seed: int = 42,
          pseudo_online: bool = False, report: Callable[[str], None] | None = None,
          progress: Callable[[], None] | None = None,
          report_html: str | Path | None = None) -> Trained:
    """Fit ``config``'s pipeline on all trials of ``datasets`` together and save its bundle.

    Parameters
    ----------
    datasets : sequence of str
        Each a recording or recordings joined by commas; all are pooled.
    config : DecoderConfig
    out_dir : path
        Bundle directory to write (ONNX + JSON sidecar).
    cv : int
        ``>= 2``: first score shuffled stratified ``cv``-fold cross-validation and store it.
    seed : int
    pseudo_online : bool
        Also replay each training recording through the saved bundle.
    report : callable or None
        ``report(line)``: the data, the scores and the replays as they come.
    progress : callable or None
        Called after each cross-validation fold.
    report_html : path or None
        Also write the HTML calibration report of the cross-validation there (the Train page's
        report, :func:`app.workflow.report.write_report`); needs ``cv >= 2``.
    """
    from neurodeck.app.workflow.datasets import dataset_name, dataset_paths
    from neurodeck.app.workflow.evaluate import load_for
    from neurodeck.app.workflow.report import write_report
    from neurodeck.decoders.evaluation import pseudo_online as replay

    if report_html is not None and not (cv and cv >= 2):
        raise ValueError(f"an HTML report needs a cross-validation (cv >= 2), got cv={cv}")
    say = report or logger.info
    trials = load_for([p for s in datasets for p in dataset_paths(s)], config,
                      baseline=report_html is not None)
    y = trials.y
    counts = ", ".join(f"{c}: {n}" for c, n in zip(*np.unique(y, return_counts=True), strict=True))
    say(f"{len(y)} trials ({counts}), {len(trials.ch_names)} channels at {trials.sfreq:g} Hz")
    scores: dict = {"n_trials": int(len(y)), "datasets": [dataset_name(s) for s in datasets]}
    if cv and cv >= 2:
        folds_done = [0]

        def fold(done: int, total: int, text: str) -> None:
            if progress is not None and done > folds_done[0]:
                folds_done[0] = done
                progress()

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            result = cross_validate_configs(trials, {config.pipeline: config}, cv=cv, seed=seed,
                                            progress=fold)
        res = result.results[0]
        scores.update(cv_metric=res.metric, cv_score=res.score, cv_fold_scores=res.fold_scores,
                      cv_folds=result.cv, seed=seed)
        for note in result.notes:
            say(f"note: {note}")
        say(f"{config.pipeline}: {result.cv}-fold {res.metric} {res.score:.3f}")
        if report_html is not None:
            result.confusion[config.pipeline] = confusion(result, config.pipeline)
            write_report(result, Path(report_html),
                         subject=", ".join(dataset_name(s) for s in datasets))
            say(f"report written to {report_html}")
    path, _, scores = fit_bundle(trials, config, out_dir, seed=seed, scores=scores, n_check=None)
    say(f"model bundle written to {path} (training accuracy {scores['train_score']:.3f})")
    out = Trained(path, scores, trials)
    if pseudo_online:
        for run in trials.runs:
            s = replay(path, run.data, trials.sfreq, (run.onsets, run.labels)).summary()
            out.pseudo_online.append(s)
            say(f"pseudo-online: {s['n_trials']} trials, accuracy {s['trial_accuracy']:.3f}, "
                f"median time to decision {s['median_time_to_decision_s']} s, "
                f"{s['realtime_factor']:.0f}x real time")
    return out
