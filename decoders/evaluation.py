"""Honest offline evaluation: cross-validation of named pipelines and pseudo-online replay.

Inputs are arrays (this module never reads files): padded raw windows for cross-validation
(see :mod:`decoders.epochs`) and the continuous recording for pseudo-online evaluation.
Every selection (features, (order, lag), C) happens inside the pipelines, hence inside the
training folds.
"""
from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from sklearn.base import clone
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.model_selection import StratifiedKFold

from neurodeck.decoders.epochs import n_samples
from neurodeck.decoders.errors import DecoderError

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class CVResult:
    """One (dataset, pipeline) cross-validation result (``as_dict`` gives the JSON record).

    ``y_pred`` holds the out-of-fold predicted class of every trial (in the order of ``y``) when
    it was asked for; it is not part of the JSON record.
    """

    dataset: str
    pipeline: str
    metric: str
    score: float
    fold_scores: list[float]
    n_trials: int
    fit_time_s: float
    predict_time_s: float
    n_classes: int = 2
    n_folds: int = 5
    seed: int = 42
    protocol: str = "within"
    calib_trials: int | None = None
    n_train: int = 0
    n_test: int = 0
    y_pred: np.ndarray | None = dataclasses.field(default=None, repr=False, compare=False)
    #: chronological/loso: accuracy of the decisions (argmax of the outputs, what the live
    #: decoder would say) on the test trials; ROC-AUC ignores a constant bias, accuracy does not.
    accuracy: float | None = None

    def as_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d.pop("y_pred")
        return d


def _scores_for_auc(est, X: np.ndarray) -> np.ndarray:
    """Continuous score of the positive class (decision function if any, else probability)."""
    if hasattr(est, "decision_function"):
        try:
            s = np.asarray(est.decision_function(X))
            if s.ndim == 1:
                return s
        except AttributeError:
            pass
    return np.asarray(est.predict_proba(X))[:, 1]


class _FoldScorer:
    """Scorer for :func:`sklearn.model_selection.cross_validate`: ROC-AUC of ``positive`` (two
    classes) or accuracy, optionally reporting every scored fold (serial runs only)."""

    def __init__(self, metric: str, positive: Any, on_fold: Callable[[], None] | None = None):
        self.metric, self.positive, self.on_fold = metric, positive, on_fold

    def __call__(self, est, X: np.ndarray, y: np.ndarray) -> float:
        if self.metric == "roc_auc":
            score = roc_auc_score(y == self.positive, _scores_for_auc(est, X))
        else:
            score = accuracy_score(y, est.predict(X))
        if self.on_fold is not None:
            self.on_fold()
        return float(score)


def cross_validate_pipelines(
    X: np.ndarray,
    y: Sequence[Any],
    pipelines: Mapping[str, Any],
    cv: int = 5,
    seed: int = 42,
    dataset: str = "",
    progress: Callable[[str, str, int], None] | None = None,
    *,
    n_jobs: int | None = None,
    predictions: bool = False,
) -> list[CVResult]:
    """Shuffled stratified k-fold cross-validation of several pipelines on the same folds.

    Runs :func:`sklearn.model_selection.cross_validate` for every pipeline.

    Parameters
    ----------
    X : ndarray, shape (n_trials, n_channels, n_times)
        Padded raw windows (what the pipelines take).
    y : array-like, shape (n_trials,)
        Class labels.
    pipelines : mapping name -> estimator
        Unfitted scikit-learn estimators (cloned for every fold).
    cv : int
        Number of folds (``StratifiedKFold(cv, shuffle=True, random_state=seed)``).
    seed : int
        Shuffle seed.
    dataset : str
        Name written in the records.
    progress : callable or None
        Called as ``progress(pipeline_name, "fold", fold_index)`` after every fold (e.g. a tqdm
        update; it may raise to cancel). Only with ``n_jobs`` None or 1: folds that run in other
        processes cannot report back.
    n_jobs : int or None
        Folds fitted in parallel (joblib, as ``cross_validate``'s ``n_jobs``). The scores do not
        depend on it.
    predictions : bool
        Also keep the out-of-fold prediction of every trial (``CVResult.y_pred``), from the same
        fitted folds.

    Returns
    -------
    results : list of CVResult
        ROC-AUC for two classes, accuracy otherwise; ``score`` is the mean over folds.
    """
    from sklearn.model_selection import cross_validate

    X = np.asarray(X, dtype=float)
    y = np.asarray(y)
    if X.ndim != 3:
        raise DecoderError(f"X must be (n_trials, n_channels, n_times), got shape {X.shape}")
    if len(y) != len(X):
        raise DecoderError(f"y has {len(y)} labels for {len(X)} trials")
    classes, counts = np.unique(y, return_counts=True)
    if len(classes) < 2:
        raise DecoderError(f"need at least 2 classes, got {classes.tolist()}")
    if counts.min() < cv:
        raise DecoderError(
            f"class {classes[counts.argmin()]!r} has {counts.min()} trials, fewer than cv={cv} folds"
        )
    metric = "roc_auc" if len(classes) == 2 else "accuracy"
    folds = list(StratifiedKFold(cv, shuffle=True, random_state=seed).split(X, y))
    serial = n_jobs is None or n_jobs == 1
    results = []
    for name, pipe in pipelines.items():
        done = [0]

        def on_fold(_name=name, _done=done) -> None:
            progress(_name, "fold", _done[0])
            _done[0] += 1

        scorer = _FoldScorer(metric, classes[1], on_fold if progress is not None and serial else None)
        out = cross_validate(pipe, X, y, cv=folds, scoring=scorer, n_jobs=n_jobs,
                             error_score="raise", return_estimator=predictions,
                             return_indices=predictions)
        y_pred = None
        if predictions:
            y_pred = np.empty(len(y), dtype=y.dtype)
            for est, te in zip(out["estimator"], out["indices"]["test"], strict=True):
                y_pred[te] = est.predict(X[te])
        fold_scores = [float(s) for s in out["test_score"]]
        results.append(
            CVResult(
                dataset=dataset,
                pipeline=name,
                metric=metric,
                score=float(np.mean(fold_scores)),
                fold_scores=fold_scores,
                n_trials=len(y),
                fit_time_s=float(np.sum(out["fit_time"])),
                predict_time_s=float(np.sum(out["score_time"])),
                n_classes=len(classes),
                n_folds=cv,
                seed=seed,
                n_train=int(round(np.mean([len(tr) for tr, _ in folds]))),
                n_test=int(round(np.mean([len(te) for _, te in folds]))),
                y_pred=y_pred,
            )
        )
        logger.info("%s %s: %s %.3f", dataset, name, metric, results[-1].score)
    return results


@dataclasses.dataclass
class PseudoOnlineResult:
    """Sliding-window replay of a continuous recording.

    Attributes
    ----------
    ends : ndarray of int, shape (n_windows,)
        Sample index (exclusive) where each window ends; windows end on multiples of the hop.
    outputs : ndarray, shape (n_windows, n_outputs)
        Decoder outputs (NaN rows for windows with NaN/Inf).
    labels : list of str
        Output names.
    trial_correct : ndarray of bool, shape (n_trials,)
        Argmax of the mean output over the windows inside each trial == its label.
    time_to_decision : ndarray, shape (n_trials,)
        Seconds from the cue to the end of the first window from which the running mean output
        stays correct until the trial ends (NaN if never).
    accuracy : float
        Mean of ``trial_correct``.
    compute_s, duration_s, realtime_factor : float
        Decoding time, recording length and their ratio (duration / compute).
    """

    ends: np.ndarray
    outputs: np.ndarray
    labels: list
    trial_correct: np.ndarray
    time_to_decision: np.ndarray
    accuracy: float
    compute_s: float
    duration_s: float
    realtime_factor: float

    def summary(self) -> dict[str, Any]:
        ttd = self.time_to_decision
        return {
            "n_windows": int(len(self.ends)),
            "n_trials": int(len(self.trial_correct)),
            "trial_accuracy": float(self.accuracy),
            "median_time_to_decision_s": float(np.nanmedian(ttd)) if np.isfinite(ttd).any() else None,
            "decided_trials": int(np.isfinite(ttd).sum()),
            "compute_s": float(self.compute_s),
            "realtime_factor": float(self.realtime_factor),
        }



#: Tolerance (seconds) of the trial-window comparisons of :func:`score_trial`: absorbs the float
#: rounding of clock arithmetic (live LSL timestamps), far below one sample period.
TIME_TOL_S = 1e-6


@dataclasses.dataclass(frozen=True)
class TrialScore:
    """The score of one cued trial (see :func:`score_trial`).

    Attributes
    ----------
    predicted : str or None
        Argmax of the mean output over the trial's decisions (None: no valid decision).
    correct : bool
        ``predicted`` is the cued class.
    time_to_decision_s : float
        Seconds from the cue to the end of the first window from which the running mean output
        stays correct until the trial ends (NaN if the trial is not correct).
    n_decisions : int
        Valid (finite) decisions of the trial.
    """

    predicted: str | None
    correct: bool
    time_to_decision_s: float
    n_decisions: int


def score_trial(
    times: np.ndarray | Sequence[float],
    outputs: np.ndarray,
    labels: Sequence[str],
    onset: float,
    label: str,
    *,
    start_s: float,
    trial_s: float,
) -> TrialScore:
    """Score one cued trial from window decisions: THE rule of neurodeck (offline and live).

    A trial's decisions are the windows whose signal part (after the filter padding) starts at
    or after the cue and that end within ``trial_s`` of it, i.e. ``start_s <= time - onset <=
    trial_s`` (within :data:`TIME_TOL_S`), with ``start_s`` the length of the signal part.
    Rows with NaN/Inf (invalid windows) are ignored. The trial is correct when the argmax of the
    mean output over its decisions is the cued class; its time to decision is the time from the
    cue to the end of the first window from which the running mean output stays correct until
    the trial ends (NaN if the trial is not correct).

    Parameters
    ----------
    times : array-like of float, shape (n_windows,)
        End of each decided window in seconds: one sample period after its last sample (sample
        index past the window / sfreq offline; last-sample LSL timestamp + 1 / sfreq live).
    outputs : ndarray, shape (n_windows, n_outputs)
        Decoder outputs (probabilities or scores, larger = more likely).
    labels : sequence of str, length n_outputs
        Output names.
    onset : float
        Cue time in seconds, same clock as ``times``.
    label : str
        The cued class (a trial whose class is not in ``labels`` is never correct).
    start_s : float
        Length of the window's signal part (window minus filter padding) in seconds.
    trial_s : float
        Seconds after the cue during which decisions count.

    Returns
    -------
    TrialScore
    """
    rel = np.asarray(times, dtype=float).ravel() - float(onset)
    outputs = np.asarray(outputs, dtype=float)
    outputs = outputs.reshape(len(rel), -1 if outputs.size else len(labels))
    labels = [str(v) for v in labels]
    sel = np.flatnonzero((rel >= start_s - TIME_TOL_S) & (rel <= trial_s + TIME_TOL_S))
    sel = sel[np.isfinite(outputs[sel]).all(axis=1)]  # only the trial's rows, not the whole run
    if not len(sel):
        return TrialScore(None, False, float("nan"), 0)
    running = np.cumsum(outputs[sel], axis=0) / np.arange(1, len(sel) + 1)[:, None]
    best = running.argmax(axis=1)
    predicted = labels[int(best[-1])]
    if predicted != str(label):
        return TrialScore(predicted, False, float("nan"), len(sel))
    wrong = np.flatnonzero(best != best[-1])
    first = 0 if not len(wrong) else wrong[-1] + 1
    return TrialScore(predicted, True, float(rel[sel[first]]), len(sel))


def score_trials(
    ends: np.ndarray,
    outputs: np.ndarray,
    labels: Sequence[str],
    onsets: Sequence[int],
    trial_labels: Sequence[str],
    *,
    window: int,
    n_pad: int,
    trial_len: int,
    sfreq: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Score cued trials from a sequence of window decisions on the sample axis.

    Applies :func:`score_trial` (the one rule, also used live by
    :class:`app.feedback_model.CuedRunScorer`) to every trial.

    Parameters
    ----------
    ends : ndarray of int, shape (n_windows,)
        Sample index (exclusive) where each decided window ends.
    outputs : ndarray, shape (n_windows, n_outputs)
        Decoder outputs; rows with NaN (invalid windows) are ignored.
    labels : sequence of str, length n_outputs
        Output names.
    onsets : sequence of int, length n_trials
        Cue onsets, in samples on the same axis as ``ends``.
    trial_labels : sequence of str, length n_trials
        The cued class of each trial.
    window, n_pad : int
        Window length and its filter padding, in samples. A trial's decisions are those of the
        windows whose signal part (after the padding) starts at or after the cue and that end
        within ``trial_len`` samples of it.
    trial_len : int
    sfreq : float

    Returns
    -------
    correct : ndarray of bool, shape (n_trials,)
        Argmax of the mean output over the trial's decisions == the cued class.
    time_to_decision : ndarray, shape (n_trials,)
        Seconds from the cue to the end of the first window from which the running mean stays
        correct until the trial ends (NaN if never).
    """
    ends = np.asarray(ends, dtype=int)
    onsets = np.asarray(onsets, dtype=int)
    correct = np.zeros(len(onsets), bool)
    ttd = np.full(len(onsets), np.nan)
    for i, (o, lab) in enumerate(zip(onsets, trial_labels, strict=True)):
        # times relative to the cue, from integer sample differences (exact at the boundaries)
        s = score_trial((ends - o) / sfreq, outputs, labels, 0.0, str(lab),
                        start_s=(window - n_pad) / sfreq, trial_s=trial_len / sfreq)
        correct[i], ttd[i] = s.correct, s.time_to_decision_s
    return correct, ttd

def sliding_windows(data: np.ndarray, window: int, step: int, batch: int = 256):
    """Yield (ends, windows) batches of windows ending on multiples of ``step``.

    ``windows`` has shape (n, n_channels, window) and is a view-backed copy per batch.
    """
    n_times = data.shape[1]
    first = -(-window // step) * step
    ends = np.arange(first, n_times + 1, step)
    view = np.lib.stride_tricks.sliding_window_view(data, window, axis=1)  # (ch, n_pos, window)
    for i in range(0, len(ends), batch):
        e = ends[i:i + batch]
        yield e, np.ascontiguousarray(view[:, e - window, :].transpose(1, 0, 2))


def pseudo_online(
    model: Any,
    data: np.ndarray,
    sfreq: float,
    events: tuple[Sequence[int], Sequence[Any]],
    window_s: float | None = None,
    step_s: float = 0.0625,
    trial_s: float = 4.0,
    batch: int = 256,
    progress: Callable[[int], None] | None = None,
    threads: int = 1,
) -> PseudoOnlineResult:
    """Replay a continuous recording through a decoder, window by window, in batches.

    Parameters
    ----------
    model : OnlineDecoder, ModelBundle, path or fitted pipeline
        Bundles/decoders go through :meth:`OnlineDecoder.replay` (the band-pass over the whole
        recording once, then the windows: what the live engine's stream gets); a fitted pipeline
        through ``predict_proba`` on padded raw windows (then ``window_s`` is required and is
        the padded window length).
    data : ndarray, shape (n_channels, n_times)
        The continuous raw recording, model channels in order, same unit as training.
    sfreq : float
    events : (onsets, labels)
        Cue onsets in samples and their class labels.
    window_s : float or None
        Padded window length in seconds; checked against the model's when it has one.
    step_s : float
        Hop between windows.
    trial_s : float
        Seconds after a cue during which decisions count for that trial (EEGMMIDB: 4 s). A
        trial's decisions are those of the windows whose signal part (after the filter padding)
        starts at or after the cue and that end within ``trial_s``; the trial's decision is the
        argmax of their running mean at the end of the trial.
    batch : int
        Windows decided per call.
    progress : callable or None
        Called as ``progress(n_windows_done)`` after every batch (it may raise to cancel).
    threads : int
        Batches computed at the same time by a decoder (:meth:`OnlineDecoder.replay`; the
        same outputs for any value). A plain pipeline runs one batch at a time.

    Returns
    -------
    PseudoOnlineResult
    """
    from pathlib import Path

    from neurodeck.decoders.online import OnlineDecoder
    from neurodeck.decoders.onnx import ModelBundle

    data = np.asarray(data, dtype=float)
    if data.ndim != 2:
        raise DecoderError(f"data must be (n_channels, n_times), got shape {data.shape}")
    if isinstance(model, ModelBundle | str | Path):
        model = OnlineDecoder(model)
    if isinstance(model, OnlineDecoder):
        if abs(model.sfreq - sfreq) > 1e-6 * sfreq:
            from neurodeck.decoders.errors import ChannelMismatchError

            raise ChannelMismatchError(f"data rate {sfreq} Hz differs from the model's {model.sfreq} Hz")
        window = model.window_samples
        if window_s is not None and n_samples(window_s, sfreq) != window:
            raise DecoderError(f"window_s={window_s} s ({n_samples(window_s, sfreq)} samples) differs "
                               f"from the model's window of {window} samples")
        decide = None  # the stream path: OnlineDecoder.replay
        labels = list(model.labels)
        n_pad = model.pad_samples
    else:
        if window_s is None:
            raise DecoderError("window_s is required with a plain pipeline")
        window = n_samples(window_s, sfreq)
        decide = model.predict_proba
        labels = [str(c) for c in model.classes_]
        # the first step filters the padded window (BandPass, or the filter bank of fbts-*)
        steps = getattr(model, "steps", None)
        first = steps[0][1] if steps else None
        n_pad = n_samples(first.pad, sfreq) if hasattr(first, "pad") else 0
    # whole working samples when the model decimates (what the online engine uses)
    step = model.hop_samples(step_s) if decide is None else max(1, n_samples(step_s, sfreq))
    ends_l, outs = [], []
    t0 = time.perf_counter()
    if decide is None:
        # the band-pass over the whole recording once, then the windows (what a live stream gets)
        ends, outputs = model.replay(data, step, batch, progress, threads=threads)
    else:
        done = 0
        for e, W in sliding_windows(data, window, step, batch):
            ends_l.append(e)
            outs.append(np.asarray(decide(W), dtype=float))
            done += len(e)
            if progress is not None:
                progress(done)
        ends = np.concatenate(ends_l) if ends_l else np.zeros(0, int)
        outputs = np.concatenate(outs) if outs else np.zeros((0, len(labels)))
    compute = time.perf_counter() - t0
    onsets, ylab = np.asarray(events[0], dtype=int), [str(v) for v in events[1]]
    correct, ttd = score_trials(ends, outputs, labels, onsets, ylab, window=window, n_pad=n_pad,
                                trial_len=n_samples(trial_s, sfreq), sfreq=sfreq)
    duration = data.shape[1] / sfreq
    return PseudoOnlineResult(
        ends=ends, outputs=outputs, labels=labels, trial_correct=correct, time_to_decision=ttd,
        accuracy=float(correct.mean()) if len(correct) else float("nan"), compute_s=compute,
        duration_s=duration, realtime_factor=duration / max(compute, 1e-12),
    )


# ------------------------------------------------------------------ protocols across time and subjects

#: Evaluation protocols of ``neurodeck evaluate --protocol``.
PROTOCOLS = ("within", "chronological", "loso")


def chronological_split(y: Sequence[Any], k: int) -> tuple[np.ndarray, np.ndarray]:
    """First ``k`` trials of each class calibrate; every trial after the last of them tests.

    As in a real session: the user performs trials in the recorded order, and the decoder is
    calibrated once every class has ``k`` labelled trials. Trials between a class's k-th trial
    and the end of calibration (the other classes' later ones) are in neither set.

    Parameters
    ----------
    y : array-like, shape (n_trials,)
        Labels in time order.
    k : int
        Calibration trials per class (0: none, every trial tests).

    Returns
    -------
    calib : ndarray of int, shape (n_classes * k,)
        Indices of the calibration trials, in time order.
    test : ndarray of int
        Indices of the test trials, in time order.
    """
    y = np.asarray(y)
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 0:
        raise DecoderError(f"calibration trials per class must be an integer >= 0, got {k!r}")
    classes = np.unique(y)
    calib = []
    for c in classes:
        idx = np.flatnonzero(y == c)
        if len(idx) <= k:
            raise DecoderError(f"class {str(c)!r} has {len(idx)} trials: none left to test after "
                               f"{k} calibration trials")
        calib.extend(idx[:k])
    calib = np.sort(np.asarray(calib, dtype=int))
    test = np.arange(calib.max() + 1 if len(calib) else 0, len(y))
    if len(np.unique(y[test])) < len(classes):
        raise DecoderError(f"after {k} calibration trials per class the test trials miss a class")
    return calib, test


def evaluate_chronological(
    X: np.ndarray,
    y: Sequence[Any],
    pipelines: Mapping[str, Any],
    calib_trials: Sequence[int],
    *,
    sources: Sequence[tuple[np.ndarray, np.ndarray]] = (),
    dataset: str = "",
    protocol: str = "chronological",
    seed: int = 42,
    progress: Callable[[str, str, int], None] | None = None,
) -> list[CVResult]:
    """Calibrate on the first ``K`` trials per class (plus sources), test on every later trial.

    For each pipeline and each ``K``: the pipeline (cloned) is fitted on the source datasets
    and the target's ``K`` calibration trials per class pooled (:func:`decoders.transfer.fit_pooled`:
    a :class:`~decoders.transfer.Recentering` step re-centres every dataset by its own
    reference and keeps the target's, from its calibration trials; with ``K = 0`` the reference
    starts empty). The later trials are then decided one after the other in time order, with
    online adaptation of the re-centering reference (:func:`decoders.transfer.predict_proba_adaptive`,
    the rule the live decoder runs). Every selection (grids, references) sees training data only.

    Parameters
    ----------
    X : ndarray, shape (n_trials, n_channels, n_times)
        The target's padded raw windows, in time order.
    y : array-like, shape (n_trials,)
    pipelines : mapping name -> estimator
        Unfitted pipelines.
    calib_trials : sequence of int
        Values of ``K`` (calibration trials per class).
    sources : sequence of (X, y)
        Other subjects' or sessions' windows (same channels and length), never the target.
    dataset : str
        Name of the target in the records.
    protocol : str
        Written in the records (``"chronological"`` or ``"loso"``).
    seed : int
        Written in the records (the pipelines carry their own seeds).
    progress : callable or None
        Called as ``progress(pipeline_name, "K", k)`` after every fit.

    Returns
    -------
    results : list of CVResult
        One per (pipeline, K): ``score`` is the ROC-AUC (2 classes) or accuracy on the test
        trials; ``fold_scores`` holds that one score.
    """
    from neurodeck.decoders.transfer import fit_pooled, predict_proba_adaptive, recentering_steps

    X = np.asarray(X, dtype=float)
    y = np.asarray(y)
    if X.ndim != 3 or len(y) != len(X):
        raise DecoderError(f"X must be (n_trials, n_channels, n_times) with one label per trial, "
                           f"got X {X.shape} and {len(y)} labels")
    for i, (Xs, ys) in enumerate(sources):
        if np.asarray(Xs).shape[1:] != X.shape[1:] or len(ys) != len(Xs):
            raise DecoderError(f"source {i} has windows of shape {np.asarray(Xs).shape[1:]}, the "
                               f"target {X.shape[1:]} (same channels and window length needed)")
    classes = np.unique(y)
    metric = "roc_auc" if len(classes) == 2 else "accuracy"
    n_src = int(sum(len(ys) for _, ys in sources))
    results = []
    for name, pipe in pipelines.items():
        for k in calib_trials:
            calib, test = chronological_split(y, int(k))
            if not len(calib) and not sources:
                raise DecoderError("K = 0 calibration trials needs sources (--sources or --protocol loso)")
            est = clone(pipe)
            t0 = time.perf_counter()
            parts = [(np.asarray(Xs, dtype=float), np.asarray(ys)) for Xs, ys in sources]
            parts.append((X[calib], y[calib]))
            fit_pooled(est, parts, target=len(parts) - 1 if len(calib) else None)
            t1 = time.perf_counter()
            if recentering_steps(est):
                proba = predict_proba_adaptive(est, X[test])
            else:
                proba = np.asarray(est.predict_proba(X[test]))
            acc = accuracy_score(y[test], np.asarray(est.classes_)[proba.argmax(axis=1)])
            if metric == "roc_auc":
                pos = list(est.classes_).index(classes[1])
                score = roc_auc_score(y[test] == classes[1], proba[:, pos])
            else:
                score = acc
            t2 = time.perf_counter()
            results.append(CVResult(
                dataset=dataset, pipeline=name, metric=metric, score=float(score),
                fold_scores=[float(score)], n_trials=len(y), fit_time_s=t1 - t0,
                predict_time_s=t2 - t1, n_classes=len(classes), n_folds=1, seed=seed,
                protocol=protocol, calib_trials=int(k), n_train=len(calib) + n_src,
                n_test=len(test), accuracy=float(acc),
            ))
            logger.info("%s %s %s K=%d: %s %.3f", protocol, dataset, name, k, metric, score)
            if progress is not None:
                progress(name, "K", int(k))
    return results


def evaluate_loso(
    datasets: Mapping[str, tuple[np.ndarray, np.ndarray]],
    pipelines: Mapping[str, Any],
    calib_trials: Sequence[int],
    *,
    seed: int = 42,
    progress: Callable[[str, str, int], None] | None = None,
) -> list[CVResult]:
    """Leave one subject out: each dataset in turn is the target, all the others the sources.

    Parameters
    ----------
    datasets : mapping name -> (X, y)
        One entry per subject (or session), windows in time order.
    pipelines, calib_trials, seed, progress
        As in :func:`evaluate_chronological`.

    Returns
    -------
    results : list of CVResult
        ``protocol = "loso"``; one per (target, pipeline, K).
    """
    if len(datasets) < 2:
        raise DecoderError(f"leave-one-subject-out needs at least 2 datasets, got {len(datasets)}")
    results = []
    for target, (X, y) in datasets.items():
        sources = [d for name, d in datasets.items() if name != target]
        results += evaluate_chronological(X, y, pipelines, calib_trials, sources=sources,
                                          dataset=target, protocol="loso", seed=seed,
                                          progress=progress)
    return results


def cross_validate_with_sources(
    X: np.ndarray,
    y: Sequence[Any],
    pipelines: Mapping[str, Any],
    sources: Sequence[tuple[np.ndarray, np.ndarray]],
    cv: int = 5,
    seed: int = 42,
    dataset: str = "",
) -> list[CVResult]:
    """Within-session k-fold of the target, each fold's training part pooled with sources.

    The folds are those of :func:`cross_validate_pipelines` (same seed, same test trials). In
    every fold the pipeline is fitted on the sources and the fold's training trials
    (:func:`decoders.transfer.fit_pooled`, each dataset re-centred by its own reference, the
    target's reference from its training trials only) and scores the fold's test trials
    without adaptation (shuffled folds have no time order).

    Parameters
    ----------
    X : ndarray, shape (n_trials, n_channels, n_times)
    y : array-like, shape (n_trials,)
    pipelines : mapping name -> estimator
    sources : sequence of (X, y)
        Other subjects' or sessions' windows, never the target.
    cv, seed, dataset
        As in :func:`cross_validate_pipelines`.

    Returns
    -------
    results : list of CVResult
        ``protocol = "within"``, ``n_train`` counts the sources too.
    """
    from neurodeck.decoders.transfer import fit_pooled

    X = np.asarray(X, dtype=float)
    y = np.asarray(y)
    classes = np.unique(y)
    metric = "roc_auc" if len(classes) == 2 else "accuracy"
    folds = list(StratifiedKFold(cv, shuffle=True, random_state=seed).split(X, y))
    src = [(np.asarray(Xs, dtype=float), np.asarray(ys)) for Xs, ys in sources]
    n_src = int(sum(len(ys) for _, ys in src))
    results = []
    for name, pipe in pipelines.items():
        fold_scores, fit_t, pred_t = [], 0.0, 0.0
        for tr, te in folds:
            est = clone(pipe)
            t0 = time.perf_counter()
            fit_pooled(est, [*src, (X[tr], y[tr])], target=len(src))
            t1 = time.perf_counter()
            if metric == "roc_auc":
                score = roc_auc_score(y[te] == classes[1], _scores_for_auc(est, X[te]))
            else:
                score = accuracy_score(y[te], est.predict(X[te]))
            pred_t += time.perf_counter() - t1
            fit_t += t1 - t0
            fold_scores.append(float(score))
        results.append(CVResult(
            dataset=dataset, pipeline=name, metric=metric, score=float(np.mean(fold_scores)),
            fold_scores=fold_scores, n_trials=len(y), fit_time_s=fit_t, predict_time_s=pred_t,
            n_classes=len(classes), n_folds=cv, seed=seed, protocol="within",
            n_train=int(round(np.mean([len(tr) for tr, _ in folds]))) + n_src,
            n_test=int(round(np.mean([len(te) for _, te in folds]))),
        ))
        logger.info("%s %s with %d source trials: %s %.3f", dataset, name, n_src, metric,
                    results[-1].score)
    return results
