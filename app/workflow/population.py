"""Population models: build one from several subjects, start a new user from it, and how many
calibration trials are enough (issue 14).

:func:`train_population` (``neurodeck train --population``) fits one model on several subjects,
each re-centred by its own mean, and saves its bundle. A population model (e.g. the shipped
``assets/population/eegmmidb-default``) is a bundle whose :class:`decoders.transfer.Recentering`
step re-centres the new user's covariances by the user's own reference. The model file holds no
other subject's data, so fine-tuning it with the session's trials means what Zanini et al. (2018)
do: the reference starts from the Riemannian mean of the user's calibration trials
(:meth:`Recentering.calibrate`) and keeps adapting to the incoming windows; the classifier stays
the population's.

:func:`learning_curve` measures, on the session's own trials in time order, the score after K
calibration trials per class (first K of each class calibrate, every later trial tests, as
:func:`decoders.evaluation.chronological_split` defines): for a pipeline trained from scratch
(:func:`decoders.evaluation.evaluate_chronological`) and for the population model fine-tuned with
those K trials. :func:`recommend` turns a curve into "N trials per class reach X % of the
plateau". :func:`fine_tune_population` writes the fine-tuned bundle.
"""
from __future__ import annotations

import copy
import dataclasses
import json
import logging
import shutil
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from neurodeck.app.errors import UserError
from neurodeck.app.workflow.datasets import Trials, dataset_name, load_trials
from neurodeck.app.workflow.evaluate import load_datasets

logger = logging.getLogger(__name__)


def train_population(datasets: Sequence[str], config, out_dir: str | Path, *, cv: int = 5,
                     seed: int = 42,
                     report: Callable[[str], None] | None = None) -> tuple[Path, dict[str, Any]]:
    """Fit one model on several subjects, each re-centred by its own mean, and save its bundle.

    Parameters
    ----------
    datasets : sequence of str
        One dataset per subject (or session), at least two.
    config : DecoderConfig
        Use a pipeline with a recentering step (e.g. ``default``): the bundle's reference then
        adapts to the new user's windows. Without one the subjects are pooled as they are (a
        warning says so).
    out_dir : path
        Bundle directory to write (ONNX + JSON sidecar).
    cv : int
        ``>= 2``: also score leave-one-subject-out without calibration (K = 0) and store it.
    seed : int
    report : callable or None
        ``report(line)`` with a summary of the data and the score as they come.

    Returns
    -------
    path : Path
        The bundle directory.
    scores : dict
        What the bundle records (``n_trials``, ``datasets``, ``population``, ``fit_time_s``, and
        ``loso_metric``, ``loso_k0_score``, ``loso_k0_scores`` when scored).
    """
    from neurodeck.decoders.evaluation import evaluate_loso
    from neurodeck.decoders.onnx import save_bundle
    from neurodeck.decoders.transfer import fit_pooled, recentering_steps

    say = report or logger.info
    if len(datasets) < 2:
        raise UserError(f"--population needs at least 2 datasets (one per subject), got {len(datasets)}")
    trials = load_datasets(datasets, config)
    parts = {dataset_name(spec): (tr.X, tr.y) for spec, tr in trials.items()}
    first = next(iter(trials.values()))
    ch_names, sfreq = first.ch_names, first.sfreq
    pipe = config.build(sfreq, ch_names, seed=seed)
    if not recentering_steps(pipe):
        logger.warning("pipeline %s has no recentering step: the subjects are pooled as they are",
                       config.pipeline)
    n = sum(len(y) for _, y in parts.values())
    say(f"population of {len(parts)} datasets, {n} trials, {len(ch_names)} channels at {sfreq:g} Hz")
    scores: dict[str, Any] = {"n_trials": int(n), "datasets": list(parts), "population": True}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        if cv and cv >= 2:
            res = evaluate_loso(parts, {config.pipeline: pipe}, [0], seed=seed)
            scores.update(loso_metric=res[0].metric,
                          loso_k0_score=float(np.mean([r.score for r in res])),
                          loso_k0_scores={r.dataset: r.score for r in res})
            say(f"{config.pipeline}: leave-one-subject-out, no calibration: {res[0].metric} "
                f"{scores['loso_k0_score']:.3f}")
        t0 = time.perf_counter()
        fit_pooled(pipe, list(parts.values()))
        scores["fit_time_s"] = time.perf_counter() - t0
        X0 = next(iter(parts.values()))[0]
        path = save_bundle(pipe, config, out_dir, ch_names=ch_names, sfreq=sfreq, X_check=X0[:8],
                           scores=scores)
    return Path(path), scores


def default_population() -> Path:
    """The population bundle shipped with neurodeck (EEGMMIDB, 12 subjects; S001 not in it)."""
    import neurodeck.assets

    return Path(neurodeck.assets.__file__).resolve().parent / "population" / "eegmmidb-default"


def load_population(path: str | Path):
    """Load a population model bundle and check it can be fine-tuned.

    Raises
    ------
    UserError
        The folder is not a model bundle, or the model has no re-centering step.
    """
    from neurodeck.decoders.errors import ModelBundleError
    from neurodeck.decoders.onnx import load_bundle
    from neurodeck.decoders.transfer import Recentering

    try:
        bundle = load_bundle(path)
    except ModelBundleError as exc:
        raise UserError(f"population model: {exc}") from exc
    if not any(isinstance(s, Recentering) for _, s in bundle.features):
        raise UserError(f"{path} is a model without a re-centering step (pipeline "
                        f"{bundle.meta.get('pipeline')!r}); expected a population model made "
                        "with `neurodeck train --population --pipeline default`")
    return bundle


def population_trials(bundle, paths: Sequence[str | Path],
                      mapping: Mapping[str, str] | None = None) -> Trials:
    """The session's trials cut as the population model expects them: its window, padding and
    channels (matched by name: case, ``C3..``, ``EEG C3-REF``, 10-20 aliases), in its order.

    Raises
    ------
    UserError
        Another sampling rate, model channels missing, or classes the model does not know.
    """
    from neurodeck.decoders.channels import match_channels

    cfg = bundle.meta["config"]
    trials = load_trials(paths, mapping, tmin=float(cfg["tmin"]), tmax=float(cfg["tmax"]),
                         pad=float(cfg["pad"]))
    if abs(trials.sfreq - bundle.sfreq) > 1e-6:
        raise UserError(f"the recordings are sampled at {trials.sfreq:g} Hz, the population model "
                        f"at {bundle.sfreq:g} Hz; expected the same rate")
    match = match_channels(bundle.ch_names, trials.ch_names)
    if not match.ok:
        raise UserError(f"the population model's channels are not all in the recordings: "
                        f"{match.summary()}")
    unknown = sorted(set(trials.labels) - set(bundle.classes))
    if unknown:
        raise UserError(f"the population model knows the classes {bundle.classes}; the recordings' "
                        f"mapping gives {unknown} too (map the markers to the model's classes)")
    trials.X = trials.X[:, list(match.picks)]
    trials.ch_names = [trials.ch_names[i] for i in match.picks]
    return trials


def calibrated(bundle, X_calib: np.ndarray):
    """A copy of ``bundle`` whose re-centering reference starts from calibration windows.

    Parameters
    ----------
    bundle : decoders.onnx.ModelBundle
    X_calib : ndarray, shape (n_calib, n_channels, n_times)
        Padded windows in the bundle's channel order; none (``n_calib = 0``): the reference stays
        as shipped (empty: it starts from the first decoded window).

    Returns
    -------
    bundle : decoders.onnx.ModelBundle
        Its feature steps are copies; the ONNX session is shared.
    """
    from neurodeck.decoders.transfer import Recentering, transform_steps

    out = copy.copy(bundle)
    out.features = copy.deepcopy(bundle.features)
    if len(X_calib):
        for i, (_, step) in enumerate(out.features):
            if isinstance(step, Recentering):
                step.calibrate(transform_steps(out.features[:i], np.asarray(X_calib, float)))
    return out


def _score(y_true: np.ndarray, proba: np.ndarray, classes: Sequence[str]) -> tuple[float, str]:
    from sklearn.metrics import accuracy_score, roc_auc_score

    present = np.unique(y_true)
    acc = float(accuracy_score(y_true, np.asarray(classes)[proba.argmax(axis=1)]))
    if len(present) == 2 and len(classes) == 2:
        pos = list(classes).index(present[1])
        return float(roc_auc_score(y_true == present[1], proba[:, pos])), "roc_auc"
    return acc, "accuracy"


@dataclasses.dataclass
class LearningCurve:
    """Score after K calibration trials per class, on later trials of the session (in time order).

    Attributes
    ----------
    metric : str
        ``roc_auc`` (2 classes) or ``accuracy``.
    chance : float
    pipeline : str
        The pipeline trained from scratch.
    scratch : dict of int to float
        K -> score of ``pipeline`` fitted on the first K trials per class (K where it could be fitted).
    population : dict of int to float
        K -> score of the population model fine-tuned with the first K trials per class (K = 0:
        no calibration, adaptation only); empty without a population model.
    n_test : dict of int to int
        K -> trials tested.
    population_path : str
    notes : list of str
    """

    metric: str
    chance: float
    pipeline: str
    scratch: dict
    population: dict
    n_test: dict
    population_path: str = ""
    notes: list = dataclasses.field(default_factory=list)


#: The learning curve stops where a class would have fewer later trials to test than this.
MIN_TEST_PER_CLASS = 3


def learning_curve(paths: Sequence[str | Path], pipeline: str, *,
                   mapping: Mapping[str, str] | None = None, tmin: float = 0.5,
                   tmax: float = 2.5, band=(8.0, 32.0), population: str | Path | None = None,
                   seed: int = 42,
                   progress: Callable[[int, int, str], None] | None = None) -> LearningCurve:
    """Score vs calibration trials per class on the session's recordings (chronological).

    For every K from 0 (population model only) or 1 up to the largest K that leaves every
    class :data:`MIN_TEST_PER_CLASS` later trials to test: ``pipeline`` fitted on the first K trials per class
    (:func:`decoders.evaluation.evaluate_chronological`), and the population model fine-tuned with
    them (:func:`calibrated`, then decided in time order with online adaptation, as live).
    Both are scored on the same test trials.
    """
    from neurodeck.app.workflow.training import make_config
    from neurodeck.decoders.evaluation import chronological_split, evaluate_chronological

    trials = load_trials(paths, mapping, tmin=tmin, tmax=tmax)
    y = trials.y
    _, counts = np.unique(y, return_counts=True)
    ks = []
    for k in range(0, int(counts.min())):
        try:
            _, test = chronological_split(y, k)
        except Exception:  # noqa: BLE001 - the test trials miss a class: the curve ends
            break
        if min(int(np.sum(y[test] == c)) for c in trials.labels) < MIN_TEST_PER_CLASS:
            break
        ks.append(k)
    if len(ks) < 3:
        raise UserError(f"{len(y)} trials ({', '.join(f'{n} {c}' for c, n in zip(trials.labels, counts, strict=True))}) "
                        "are too few for a learning curve; expected at least 3 trials per class")
    bundle = load_population(population) if population is not None else None
    ptrials = population_trials(bundle, paths, mapping) if bundle is not None else None
    if ptrials is not None and not np.array_equal(ptrials.y, y):
        raise UserError("the population model's window finds other trials than the page's window; "
                        "use the model's window "
                        f"({bundle.meta['config']['tmin']}-{bundle.meta['config']['tmax']} s)")
    config = make_config(pipeline, events=trials.mapping, band=band, tmin=tmin, tmax=tmax,
                         pad=trials.pad)
    pipe = config.build(trials.sfreq, trials.ch_names, seed=seed)
    n_classes = len(trials.labels)
    metric = "roc_auc" if n_classes == 2 else "accuracy"
    curve = LearningCurve(metric, 0.5 if metric == "roc_auc" else 1.0 / n_classes, pipeline, {},
                          {}, {}, str(population or ""))
    total = 2 * len(ks) if bundle is not None else len(ks)
    done = 0
    for k in ks:
        _, test = chronological_split(y, k)
        curve.n_test[k] = int(len(test))
        if k > 0:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    r = evaluate_chronological(trials.X, y, {pipeline: pipe}, [k], seed=seed)[0]
                curve.scratch[k] = float(r.score)
            except Exception as exc:  # noqa: BLE001 - e.g. too few trials for this pipeline
                curve.notes.append(f"{pipeline} with {k} trial(s) per class: {exc}")
        done += 1
        if progress is not None:
            progress(done, total, f"{pipeline}: {k} calibration trial(s) per class")
        if bundle is not None:
            calib, test = chronological_split(y, k)
            b = calibrated(bundle, ptrials.X[calib])
            proba = b.predict_proba(ptrials.X[test], adapt=True)
            curve.population[k] = _score(y[test], proba, b.classes)[0]
            done += 1
            if progress is not None:
                progress(done, total, f"population model: {k} calibration trial(s) per class")
    return curve


def recommend(scores: Mapping[int, float], chance: float, *, fraction: float = 0.9,
              metric: str = "roc_auc") -> tuple[int | None, str]:
    """How many calibration trials per class are enough, from a learning curve.

    The curve is smoothed (mean of each point and its neighbours: single test trials make it
    jumpy); the plateau is its highest smoothed value; the answer is the smallest K whose
    smoothed score reaches ``fraction`` of the plateau's gain over chance (``chance +
    fraction * (plateau - chance)``).

    Returns
    -------
    k : int or None
        None when the plateau is not clearly above chance (within 0.05).
    text : str
        One sentence for the user.
    """
    ks = sorted(scores)
    if not ks:
        return None, "No point of the learning curve could be computed."
    v = np.array([scores[k] for k in ks], dtype=float)
    smooth = np.array([v[max(0, i - 1): i + 2].mean() for i in range(len(v))])
    i_top = int(np.argmax(smooth))
    plateau = float(smooth[i_top])
    name = "AUC" if metric == "roc_auc" else "accuracy"
    if plateau - chance < 0.05:
        return None, (f"No number of trials reaches a {name} clearly above chance here (best "
                      f"{plateau:.2f}, chance {chance:.2f}): record more trials or change the "
                      "pipeline, band or window.")
    target = chance + fraction * (plateau - chance)
    i = int(np.flatnonzero(smooth >= target)[0])
    return ks[i], (f"{ks[i]} trials per class reach {fraction:.0%} of the plateau "
                   f"({name} {smooth[i]:.2f}; plateau {plateau:.2f}).")


def fine_tune_population(population: str | Path, paths: Sequence[str | Path],
                         out_dir: str | Path, *, mapping: Mapping[str, str] | None = None) -> Path:
    """Write the population model fine-tuned with every trial of the session's recordings.

    The bundle keeps the population's classifier (``model.onnx`` copied); its re-centering
    reference is the Riemannian mean of the session's trials and adapts on from there; the
    sidecar records the population it came from, the recordings and the number of trials.
    """
    from neurodeck.decoders.calibration import STATISTIC, amplitude_scale
    from neurodeck.decoders.onnx import MODEL_FILE, SIDECAR_FILE, encode_estimator, load_bundle

    bundle = load_population(population)
    trials = population_trials(bundle, paths, mapping)
    tuned = calibrated(bundle, trials.X)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(Path(population) / MODEL_FILE, out / MODEL_FILE)
    meta = dict(bundle.meta)
    meta["feature_steps"] = [{"name": n, **encode_estimator(s, n)} for n, s in tuned.features]
    meta["training_scores"] = {
        **{k: v for k, v in bundle.meta.get("training_scores", {}).items()},
        "fine_tuned_from": str(population), "fine_tuned_on": [Path(s).name for s in trials.sources],
        "calibration_trials": int(len(trials.y))}
    meta["calibration"] = {"amplitude": amplitude_scale(trials.X[:8]), "statistic": STATISTIC,
                           "n_windows": int(min(8, len(trials.X)))}
    (out / SIDECAR_FILE).write_text(json.dumps(meta, indent=1))
    load_bundle(out)  # it loads back (sidecar and ONNX agree)
    return out
