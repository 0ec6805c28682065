"""Qt-free feedback logic of the Online page: smoothing, the Graz bar, the cursor task, scoring.

* :class:`OutputSmoother` smooths the classifier output (exponential moving average with a time
  constant in seconds, invalid decisions hold the last value).
* :func:`bar_value` turns class probabilities into the signed Graz-bar value in [-1, 1]
  (negative: the first class, e.g. left hand; positive: the second).
* :func:`class_bars` and :func:`class_directions`: the N-class bar (three or more classes), one
  bar per class pointing in that class's direction, its length the evidence above chance.
* :class:`CursorTask` is a 1-D or 2-D cursor-to-target task: targets, hits, misses (wrong target),
  time-outs and time to target. It is driven by a velocity (classifier output or DKF estimate).
* :class:`VelocityDKF` wraps :class:`decoders.dkf.DiscriminativeKalmanFilter` to map classifier
  outputs to a smooth cursor velocity, fitted on (output, intended velocity) pairs.
* :func:`adaptation_state` reads the unsupervised online adaptation of a model (the re-centering
  reference of the ``default`` pipeline, :class:`decoders.transfer.Recentering`): on or off, and
  how far the reference has moved (Riemannian distance).
* :class:`CuedRunScorer` scores a cued online run from the marker and decision streams (both on
  the LSL clock): per-trial predicted class, correctness and time to decision, and a summary,
  with the one trial rule of :func:`decoders.evaluation.score_trial` (what offline evaluation
  and the demo's final scores use).

Everything here is plain Python + numpy so it is tested headless and reused by the CLI.
"""
from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

__all__ = [
    "AdaptationState",
    "CuedRunScorer",
    "CursorConfig",
    "CursorTask",
    "OutputSmoother",
    "RunSummary",
    "TrialResult",
    "VelocityDKF",
    "adaptation_state",
    "bar_value",
    "class_bars",
    "class_directions",
    "velocity_from_probs",
]


# ---------------------------------------------------------------------------------- smoothing
class OutputSmoother:
    """Exponential moving average of decoder outputs with a time constant.

    ``y += alpha * (x - y)`` with ``alpha = 1 - exp(-dt / tau)``; ``dt`` is the time since the
    previous update (the hop), so the smoothing does not depend on the decision rate.

    Parameters
    ----------
    tau_s : float
        Time constant in seconds (>= 0; 0 means no smoothing).
    """

    def __init__(self, tau_s: float = 0.5):
        if not (isinstance(tau_s, int | float) and math.isfinite(tau_s) and tau_s >= 0):
            raise ValueError(f"tau_s={tau_s!r} invalid; expected a time constant >= 0 seconds")
        self.tau_s = float(tau_s)
        self.value: np.ndarray | None = None
        self._t: float | None = None

    def reset(self) -> None:
        self.value = None
        self._t = None

    def alpha(self, dt: float) -> float:
        """Weight of a new value after ``dt`` seconds."""
        if self.tau_s == 0 or self.value is None:
            return 1.0
        if dt <= 0:
            return 0.0
        return 1.0 - math.exp(-dt / self.tau_s)

    def update(self, values: Sequence[float] | np.ndarray, t: float) -> np.ndarray | None:
        """Add the output at time ``t`` (seconds); returns the smoothed output.

        Parameters
        ----------
        values : array-like, shape (n_outputs,)
            Decoder output; any NaN (an invalid decision) leaves the state unchanged.
        t : float
            Time of the output in seconds (e.g. the LSL timestamp of its window).

        Returns
        -------
        smoothed : ndarray, shape (n_outputs,) or None
            None until the first valid output.
        """
        x = np.asarray(values, dtype=float).ravel()
        if not np.isfinite(x).all():
            return None if self.value is None else self.value.copy()
        if self.value is None or self.value.shape != x.shape:
            self.value = x.copy()
        else:
            a = self.alpha(float(t) - float(self._t if self._t is not None else t))
            self.value = self.value + a * (x - self.value)
        self._t = float(t)
        return self.value.copy()


def bar_value(probs: Sequence[float] | np.ndarray, labels: Sequence[str],
              negative: str | None = None, positive: str | None = None) -> float:
    """Signed Graz-bar value: ``p(positive) - p(negative)`` in [-1, 1].

    Parameters
    ----------
    probs : array-like, shape (n_classes,)
        Class probabilities in the order of ``labels``.
    labels : sequence of str
        Class labels.
    negative, positive : str or None
        Classes drawn to the left / right; default the first and the second label (for
        ``left_hand`` / ``right_hand`` exactly that). Other classes are ignored.

    Returns
    -------
    value : float
        NaN if ``probs`` holds NaN.
    """
    p = np.asarray(probs, dtype=float).ravel()
    labels = [str(lab) for lab in labels]
    if p.size != len(labels):
        raise ValueError(f"{p.size} outputs for {len(labels)} labels {labels}; expected one per label")
    if len(labels) < 2:
        raise ValueError(f"the Graz bar needs at least 2 classes, got {labels}")
    neg = labels.index(negative) if negative is not None else 0
    pos = labels.index(positive) if positive is not None else 1
    return float(np.clip(p[pos] - p[neg], -1.0, 1.0))


#: direction (degrees counter-clockwise from "right") of each class on the N-class bar, as the
#: Graz cues point: left hand left, right hand right, feet down, tongue (or rest) up
CLASS_DIRECTIONS = {"left_hand": 180.0, "right_hand": 0.0, "feet": 270.0, "tongue": 90.0,
                    "rest": 90.0}


def class_directions(labels: Sequence[str]) -> np.ndarray:
    """Direction of each class's bar, degrees counter-clockwise from the right.

    The Graz directions of :data:`CLASS_DIRECTIONS` when every label has one and no two share
    it; otherwise (any other vocabulary, e.g. ``a``, ``b``, ``c``) evenly spaced, the first class
    to the left, then clockwise.

    Returns
    -------
    degrees : ndarray, shape (n_classes,)
    """
    labels = [str(lab) for lab in labels]
    known = [CLASS_DIRECTIONS.get(lab) for lab in labels]
    if None not in known and len(set(known)) == len(known):
        return np.array(known, dtype=float)
    n = len(labels)
    return (180.0 - 360.0 * np.arange(n) / max(n, 1)) % 360.0


def class_bars(probs: Sequence[float] | np.ndarray) -> np.ndarray:
    """Length of each class's bar in [0, 1]: its probability above chance, ``(p - 1/N) / (1 - 1/N)``.

    At chance every bar is empty; a certain class fills its bar. With two classes the filled bar
    is exactly the Graz bar's ``|p(positive) - p(negative)|`` on the winning side.

    Parameters
    ----------
    probs : array-like, shape (n_classes,)
        Class probabilities (n_classes >= 2).

    Returns
    -------
    lengths : ndarray, shape (n_classes,)
        NaN everywhere if ``probs`` holds NaN (an invalid decision: no bar).
    """
    p = np.asarray(probs, dtype=float).ravel()
    if p.size < 2:
        raise ValueError(f"{p.size} probabilities; expected one per class, at least 2")
    if not np.isfinite(p).all():
        return np.full(p.size, np.nan)
    chance = 1.0 / p.size
    return np.clip((p - chance) / (1.0 - chance), 0.0, 1.0)


def velocity_from_probs(probs: Sequence[float] | np.ndarray, labels: Sequence[str],
                        dims: int = 1) -> np.ndarray:
    """Cursor velocity direction (unit scale) from class probabilities.

    1-D: ``[p(right_hand) - p(left_hand)]`` (without those: ``[p(second) - p(first)]``).
    2-D: towards each class's target (:func:`class_directions`, as the N-class bar draws it)
    by that class's evidence above chance (:func:`class_bars`), summed; with left and right
    hand only this is ``[p(right) - p(left), 0]``.

    Returns
    -------
    v : ndarray, shape (dims,)
    """
    labels = [str(lab) for lab in labels]
    p = np.asarray(probs, dtype=float).ravel()
    if dims == 1:  # left and right hand wherever they are among the classes
        sides = ("left_hand", "right_hand") if {"left_hand", "right_hand"} <= set(labels) \
            else (None, None)
        return np.array([bar_value(p, labels, *sides)])
    if p.size != len(labels):
        raise ValueError(f"{p.size} outputs for {len(labels)} labels {labels}; expected one per label")
    ang = np.radians(class_directions(labels))
    return np.clip(class_bars(p) @ np.stack([np.cos(ang), np.sin(ang)], axis=1), -1.0, 1.0)


# ---------------------------------------------------------------------------------- cursor task
@dataclasses.dataclass(frozen=True)
class CursorConfig:
    """Cursor task settings (workspace is [-1, 1] on each axis).

    Parameters
    ----------
    dims : int
        1 (left/right) or 2 (plus up/down).
    speed : float
        Workspace units per second at full output (|v| = 1).
    target_radius : float
        Hit when the cursor centre is within this distance of the target centre.
    target_distance : float
        Distance of the targets from the centre.
    n_targets : int
        Targets evenly spaced on the circle (2-D; 1-D always has 2: left and right).
    directions : tuple of float
        2-D: the targets' directions in degrees counter-clockwise from the right (e.g. one per
        class, :func:`class_directions`), instead of ``n_targets`` evenly spaced.
    timeout_s : float
        A trial with no target reached ends as a time-out.
    """

    dims: int = 1
    speed: float = 0.5
    target_radius: float = 0.15
    target_distance: float = 0.8
    n_targets: int = 4
    timeout_s: float = 10.0
    directions: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if self.dims not in (1, 2):
            raise ValueError(f"dims={self.dims!r}; expected 1 or 2")
        for name in ("speed", "target_radius", "target_distance", "timeout_s"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v > 0):
                raise ValueError(f"{name}={v!r}; expected a positive number")
        if self.target_distance + self.target_radius > 1.0 + 1e-9:
            raise ValueError(
                f"target_distance + target_radius = {self.target_distance + self.target_radius:g}"
                " leaves the workspace; expected <= 1"
            )
        if self.dims == 2 and self.n_targets < 2:
            raise ValueError(f"n_targets={self.n_targets!r}; expected >= 2")
        object.__setattr__(self, "directions", tuple(float(d) for d in self.directions))
        if self.directions and (self.dims != 2 or len(self.directions) < 2
                                or not all(math.isfinite(d) for d in self.directions)):
            raise ValueError(f"directions={self.directions!r}; expected >= 2 finite angles in "
                             "degrees, in 2-D")

    def targets(self) -> np.ndarray:
        """Target centres, shape (n_targets, dims): 1-D left then right; 2-D right, up, ... or at
        :attr:`directions`."""
        if self.dims == 1:
            return np.array([[-self.target_distance], [self.target_distance]])
        ang = np.radians(self.directions) if self.directions else \
            2 * np.pi * np.arange(self.n_targets) / self.n_targets
        return self.target_distance * np.stack([np.cos(ang), np.sin(ang)], axis=1)


@dataclasses.dataclass(frozen=True)
class CursorTrial:
    """Outcome of one cursor trial: ``outcome`` is ``"hit"``, ``"miss"`` or ``"timeout"``."""

    target: int
    outcome: str
    reached: int | None
    duration_s: float
    path_length: float


class CursorTask:
    """Move a cursor with a velocity; hit the cued target, avoid the others.

    Call :meth:`new_trial` with a target index (or let it cycle), then :meth:`step` with the
    velocity direction (|v| <= 1, scaled by ``config.speed``) every hop. A trial ends when the
    cursor enters any target (hit if it is the cued one, miss otherwise) or after
    ``config.timeout_s``; the cursor then returns to the centre.
    """

    def __init__(self, config: CursorConfig | None = None):
        self.config = config if config is not None else CursorConfig()
        self.targets = self.config.targets()
        self.position = np.zeros(self.config.dims)
        self.target: int | None = None
        self.elapsed = 0.0
        self.trials: list[CursorTrial] = []
        self._path = 0.0
        self._next = 0

    def new_trial(self, target: int | None = None) -> int:
        """Start a trial towards ``target`` (default: the next target in turn)."""
        n = len(self.targets)
        if target is None:
            target = self._next % n
        if not 0 <= int(target) < n:
            raise ValueError(f"target {target!r} out of range; expected 0..{n - 1}")
        self._next = int(target) + 1
        self.target = int(target)
        self.position = np.zeros(self.config.dims)
        self.elapsed = 0.0
        self._path = 0.0
        return self.target

    @property
    def active(self) -> bool:
        return self.target is not None

    def step(self, velocity: Sequence[float] | np.ndarray, dt: float) -> CursorTrial | None:
        """Advance ``dt`` seconds at ``velocity`` (clipped to unit length); a finished trial or None.

        NaN velocity (an invalid decision) keeps the cursor still but time runs on.
        """
        if self.target is None:
            return None
        v = np.asarray(velocity, dtype=float).ravel()[: self.config.dims]
        if v.size != self.config.dims:
            raise ValueError(f"velocity has {v.size} values; expected {self.config.dims}")
        if not np.isfinite(v).all():
            v = np.zeros(self.config.dims)
        norm = float(np.linalg.norm(v))
        if norm > 1.0:
            v = v / norm
        move = v * self.config.speed * float(dt)
        self.position = np.clip(self.position + move, -1.0, 1.0)
        self._path += float(np.linalg.norm(move))
        self.elapsed += float(dt)
        d = np.linalg.norm(self.targets - self.position[None, :], axis=1)
        inside = np.flatnonzero(d <= self.config.target_radius + 1e-9)
        if inside.size:
            reached = int(inside[np.argmin(d[inside])])
            outcome = "hit" if reached == self.target else "miss"
            return self._finish(outcome, reached)
        if self.elapsed >= self.config.timeout_s:
            return self._finish("timeout", None)
        return None

    def end_trial(self) -> CursorTrial | None:
        """End the active trial as a time-out (e.g. its cue period is over); None if none runs."""
        if self.target is None:
            return None
        return self._finish("timeout", None)

    def cancel(self) -> bool:
        """Drop the active trial without counting it (e.g. cut by a signal loss and repeated)."""
        if self.target is None:
            return False
        self.target = None
        self.position = np.zeros(self.config.dims)
        return True

    def _finish(self, outcome: str, reached: int | None) -> CursorTrial:
        trial = CursorTrial(int(self.target), outcome, reached, self.elapsed, self._path)
        self.trials.append(trial)
        self.target = None
        self.position = np.zeros(self.config.dims)
        return trial

    def summary(self) -> dict[str, Any]:
        """Counts, hit rate (over all trials) and mean time to target of the hits."""
        n = len(self.trials)
        hits = [t for t in self.trials if t.outcome == "hit"]
        return {
            "trials": n,
            "hits": len(hits),
            "misses": sum(t.outcome == "miss" for t in self.trials),
            "timeouts": sum(t.outcome == "timeout" for t in self.trials),
            "hit_rate": len(hits) / n if n else float("nan"),
            "mean_time_to_target_s": float(np.mean([t.duration_s for t in hits])) if hits else float("nan"),
        }


class VelocityDKF:
    """Classifier output -> cursor velocity through a Discriminative Kalman Filter.

    The DKF (:class:`decoders.dkf.DiscriminativeKalmanFilter`, Nadaraya-Watson ``f`` and ``Q``)
    is fitted on sequences of classifier outputs ``X`` and intended velocities ``Z`` (e.g. +1
    during right-hand cues, -1 during left-hand cues, 0 at rest), then filters live outputs.

    Parameters
    ----------
    dkf_params : dict
        Passed to ``DiscriminativeKalmanFilter``.
    """

    def __init__(self, **dkf_params: Any):
        from neurodeck.decoders.dkf import DiscriminativeKalmanFilter

        params = {"regressor": "nw", "loo_max_samples": 400, "q_criterion": "nll"}
        params.update(dkf_params)
        self.dkf = DiscriminativeKalmanFilter(**params)
        self.fitted = False

    def fit(self, X: np.ndarray, Z: np.ndarray) -> VelocityDKF:
        """Fit on outputs ``X`` (n_steps, n_outputs) and velocities ``Z`` (n_steps, dims)."""
        X = np.asarray(X, dtype=float)
        Z = np.asarray(Z, dtype=float)
        if Z.ndim == 1:
            Z = Z[:, None]
        ok = np.isfinite(X).all(axis=1) & np.isfinite(Z).all(axis=1)
        self.dkf.fit(X[ok], Z[ok])
        # the online step takes f(x), Q(x) from onnxruntime or numpy, whichever is faster here
        from neurodeck.decoders.dkf.export import select_backend

        self.backend = select_backend(self.dkf, self.dkf.to_onnx(), X[ok][:500], n=100)
        self.dkf.reset()
        self.fitted = True
        return self

    def reset(self) -> None:
        if self.fitted:
            self.dkf.reset()

    def step(self, x: Sequence[float] | np.ndarray) -> np.ndarray:
        """Filtered velocity after one output (NaN outputs return the prior's prediction)."""
        x = np.asarray(x, dtype=float).ravel()
        if not np.isfinite(x).all():
            return np.full(self.dkf.n_states_, np.nan)
        return np.clip(self.dkf.step(x), -1.0, 1.0)


def cue_velocity(labels_at: Sequence[str | None], dims: int = 1,
                 classes: Sequence[str] | None = None) -> np.ndarray:
    """Intended velocity for each step's cued class (``None``: no cue -> 0).

    Towards the class's target: 1-D ``left_hand`` -> -1, ``right_hand`` -> +1, anything else 0;
    2-D the unit vector of the class's direction among ``classes`` (:func:`class_directions`:
    left, right, feet down, tongue up, other vocabularies evenly spaced), as the cursor's
    targets and the N-class bar lie.

    Parameters
    ----------
    labels_at : sequence of str or None, shape (n_steps,)
    dims : {1, 2}
    classes : sequence of str or None
        The decoder's classes (default: the distinct labels of ``labels_at``).

    Returns
    -------
    Z : ndarray, shape (n_steps, dims)
    """
    if dims == 1:
        table = {"left_hand": -1.0, "right_hand": 1.0}
        return np.array([[table.get(str(lab), 0.0)] for lab in labels_at], dtype=float
                        ).reshape(-1, 1)
    if classes is None:
        classes = sorted({str(lab) for lab in labels_at if lab is not None})
    classes = [str(c) for c in classes]
    ang = np.radians(class_directions(classes)) if classes else np.zeros(0)
    unit = {c: (math.cos(a), math.sin(a)) for c, a in zip(classes, ang)}
    return np.array([unit.get(str(lab), (0.0, 0.0)) if lab is not None else (0.0, 0.0)
                     for lab in labels_at], dtype=float).reshape(-1, 2)


# ---------------------------------------------------------------------------------- adaptation
@dataclasses.dataclass(frozen=True)
class AdaptationState:
    """Where a model's unsupervised online adaptation stands.

    Attributes
    ----------
    adapting : bool
        The reference follows the incoming windows (the model's rule; off: it stays fixed).
    drift : float
        Riemannian distance of the current reference from the model's own (its training mean, or
        identity for a population model that starts empty).
    moved : float
        Riemannian distance from the reference at the start of this run (NaN without one).
    n_seen : int
        Windows (and calibration trials) averaged into the reference.
    """

    adapting: bool
    drift: float
    moved: float
    n_seen: int

    def line(self) -> str:
        if not self.adapting:
            return (f"Adaptation: off (this model's rule) \u00b7 reference fixed, {self.drift:.3f} "
                    "from the model's own")
        return (f"Adaptation: on \u00b7 reference moved {self.drift:.3f} from the model's "
                "(Riemannian distance)" + (f", {self.moved:.3f} this run"
                                          if math.isfinite(self.moved) else "")
                + f" \u00b7 {self.n_seen:,} windows seen")


def adaptation_state(bundle: Any, since: np.ndarray | None = None) -> AdaptationState | None:
    """The online adaptation of a classifier bundle's feature steps (None: it has none).

    Parameters
    ----------
    bundle : decoders.onnx.ModelBundle
        Its ``features`` are read, never changed (the live engine updates them).
    since : ndarray, shape (n_channels, n_channels) or None
        A reference to measure :attr:`AdaptationState.moved` from (e.g. the one at the start).
    """
    from pyriemann.geometry.distance import distance_riemann

    st = _adaptive_step(bundle)
    if st is None:
        return None
    ref = st.reference_  # swapped, never written in place, by the decoding thread: one read
    moved = float("nan") if since is None else float(distance_riemann(since, ref))
    return AdaptationState(bool(st.adapt), float(distance_riemann(st.origin_, ref)), moved,
                           int(st.n_seen_))


def adaptation_reference(bundle: Any) -> np.ndarray | None:
    """A copy of the current adaptation reference (None: no adaptive step)."""
    st = _adaptive_step(bundle)
    return None if st is None else np.array(st.reference_, copy=True)


def _adaptive_step(bundle: Any) -> Any:
    """The first re-centering step (:class:`decoders.transfer.Recentering`) of a bundle, or None."""
    for _, st in getattr(bundle, "features", ()):
        if hasattr(st, "drift") and hasattr(st, "reference_"):
            return st
    return None


# ---------------------------------------------------------------------------------- cued runs
@dataclasses.dataclass(frozen=True)
class TrialResult:
    """One scored cued trial (scored by :func:`decoders.evaluation.score_trial`).

    Attributes
    ----------
    label : str
        Cued class.
    onset : float
        Cue time (LSL seconds).
    predicted : str or None
        Class with the largest mean output over the trial's decisions (None: no decision).
    correct : bool
    time_to_decision_s : float or None
        From the cue to the end of the first window from which the running mean output stays
        correct until the trial ends (None if the trial is not correct).
    n_decisions : int
        Valid decisions of the trial.
    """

    label: str
    onset: float
    predicted: str | None
    correct: bool
    time_to_decision_s: float | None
    n_decisions: int


@dataclasses.dataclass(frozen=True)
class RunSummary:
    n_trials: int
    n_correct: int
    accuracy: float
    chance: float
    median_time_to_decision_s: float
    n_undecided: int
    n_without_decisions: int = 0  # trials that ended without one valid decision (not scored)

    def line(self) -> str:
        k = self.n_without_decisions
        missed = ("" if not k else
                  f" \u00b7 {k} trial{'s' if k > 1 else ''} without a decision, not scored")
        if not self.n_trials:
            return "no trial scored yet" + missed
        ttd = (f"{self.median_time_to_decision_s:.2f} s"
               if math.isfinite(self.median_time_to_decision_s) else "n/a")
        return (f"{self.n_correct}/{self.n_trials} correct ({100 * self.accuracy:.0f} %, chance "
                f"{100 * self.chance:.0f} %) \u00b7 median time to decision {ttd}{missed}")


class CuedRunScorer:
    """Scores a cued online run from cue markers and decisions (same clock), live.

    The incremental front end of :func:`decoders.evaluation.score_trial`, the rule that
    :func:`decoders.evaluation.score_trials` applies offline: the same decisions give the same
    predicted class, correctness and time to decision. A trial starts at a cue marker whose label
    maps to a class and lasts ``trial_s`` seconds; a new cue ends it early (so trials closer than
    ``trial_s`` lose the decisions after the next cue, which the offline rule keeps). Its
    decisions are the windows whose signal part starts at or after the cue (window end ``>=
    onset + start_s``) and that end by ``onset + trial_s``. Trials are scored when they end
    (:meth:`advance` with the current time, a later decision or cue, or :meth:`finish`).

    Parameters
    ----------
    labels : sequence of str
        Class labels in the decoder's output order.
    events : mapping of str to str
        Marker label -> class label (e.g. ``{"T1": "left_hand"}``); class names map to
        themselves.
    sfreq : float
        Sampling rate of the decoded stream: a decision's window ends one sample period after
        the timestamp of its last sample (what :meth:`on_decision` receives).
    trial_s : float
        Imagery duration after the cue in seconds.
    start_s : float
        Length of the window's signal part (window minus filter padding) in seconds: earlier
        decisions still hold pre-cue EEG.
    """

    def __init__(self, labels: Sequence[str], events: Mapping[str, str] | None = None, *,
                 sfreq: float, trial_s: float = 4.0, start_s: float = 0.0):
        self.labels = [str(lab) for lab in labels]
        self.events = {str(k): str(v) for k, v in (events or {}).items()}
        for lab in self.labels:
            self.events.setdefault(lab, lab)
        if not (math.isfinite(sfreq) and sfreq > 0):
            raise ValueError(f"sfreq={sfreq!r}; expected a positive sampling rate in Hz")
        if not (math.isfinite(trial_s) and trial_s > 0 and math.isfinite(start_s) and start_s >= 0):
            raise ValueError(f"trial_s={trial_s!r}, start_s={start_s!r}; expected trial_s > 0 "
                             "and start_s >= 0 seconds")
        self.sfreq = float(sfreq)
        self.trial_s = float(trial_s)
        self.start_s = float(start_s)
        self.results: list[TrialResult] = []
        self._current: dict[str, Any] | None = None

    def class_of(self, marker: str) -> str | None:
        """Class label of a marker (None if it is no cue)."""
        cls = self.events.get(str(marker))
        return cls if cls in self.labels else None

    def on_marker(self, marker: str, t: float) -> TrialResult | None:
        """A marker at ``t``; returns the trial it ended, if any."""
        cls = self.class_of(marker)
        if cls is None:
            return None
        ended = self._close(float(t), force=True)
        self._current = {"label": cls, "onset": float(t), "ends": [], "values": []}
        return ended

    def on_decision(self, values: Sequence[float] | np.ndarray, t: float) -> TrialResult | None:
        """A decision whose window's last sample is at ``t``; returns a trial that ended before it.

        Invalid decisions (NaN values) are ignored, as offline.
        """
        end = float(t) + 1.0 / self.sfreq
        ended = self._close(end)
        cur = self._current
        if cur is None:
            return ended
        p = np.asarray(values, dtype=float).ravel()
        if p.size != len(self.labels):
            return ended
        cur["ends"].append(end)
        cur["values"].append(p)
        return ended

    def advance(self, t: float) -> TrialResult | None:
        """Close the current trial if no decision after ``t`` can still count for it.

        ``t`` is the last-sample time of the latest decision received (or later).
        """
        return self._close(float(t) + 1.0 / self.sfreq)

    def finish(self) -> TrialResult | None:
        """End of the run: score the open trial."""
        return self._close(math.inf, force=True)

    def _close(self, end: float, force: bool = False) -> TrialResult | None:
        from neurodeck.decoders.evaluation import TIME_TOL_S, score_trial

        cur = self._current
        if cur is None or (not force and end <= cur["onset"] + self.trial_s + TIME_TOL_S):
            return None
        self._current = None
        values = np.reshape(cur["values"], (len(cur["values"]), len(self.labels)))
        s = score_trial(cur["ends"], values, self.labels, cur["onset"], cur["label"],
                        start_s=self.start_s, trial_s=self.trial_s)
        ttd = s.time_to_decision_s if math.isfinite(s.time_to_decision_s) else None
        res = TrialResult(cur["label"], cur["onset"], s.predicted, s.correct, ttd, s.n_decisions)
        self.results.append(res)
        return res

    @property
    def current_label(self) -> str | None:
        return None if self._current is None else self._current["label"]

    def discard(self, onsets: Sequence[float] = ()) -> int:
        """Drop the open trial and the scored trials cued at ``onsets`` (cut by a signal loss:
        they are repeated, not scored). Returns the number of trials dropped."""
        n = int(self._current is not None)
        self._current = None
        keep = [r for r in self.results
                if not any(abs(r.onset - float(o)) < 1e-6 for o in onsets)]
        n += len(self.results) - len(keep)
        self.results = keep
        return n

    def summary(self) -> RunSummary:
        """Over the trials with decisions: accuracy, median time to decision of the correct ones."""
        scored = [r for r in self.results if r.n_decisions > 0]
        n = len(scored)
        correct = sum(r.correct for r in scored)
        ttd = [r.time_to_decision_s for r in scored if r.time_to_decision_s is not None]
        return RunSummary(
            n_trials=n,
            n_correct=correct,
            accuracy=correct / n if n else float("nan"),
            chance=1.0 / len(self.labels),
            median_time_to_decision_s=float(np.median(ttd)) if ttd else float("nan"),
            n_undecided=sum(r.time_to_decision_s is None for r in scored),
            n_without_decisions=len(self.results) - n,
        )
