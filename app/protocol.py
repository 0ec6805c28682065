"""The Graz motor-imagery calibration protocol as a timed state machine (Qt-free).

One trial (Pfurtscheller/Graz style)::

    fixation (cross + optional beep) -> cue (arrow) -> imagery (cross, keep imagining) -> rest (blank)
    fixation_s                          cue_s          imagery_s                          uniform(rest_min_s, rest_max_s)

The machine has no thread and no timer of its own: a driver calls :meth:`CalibrationProtocol.tick`
with the current time (the GUI from a ``QTimer``, a headless run from :func:`run_blocking`, tests from
a fake clock), so timing is deterministic and tests run accelerated.

Markers (codes from :mod:`acquisition.markers`) emitted per phase:

=========  ==============================================  =====================================
phase      markers at its start                            notes
=========  ==============================================  =====================================
lead-in    ``experiment_start``                            state ``rest``, trial 0, ``lead_in_s``
fixation   ``trial_start``, ``fixation``, [``beep``]
cue        the class name (``left_hand`` = 769, ...)       the simulator is cued here
imagery    ``feedback_start``
rest       ``trial_end``                                   randomised inter-trial interval
paused     ``pause``                                       the interrupted trial is repeated
resume     ``resume`` (then a rest of ``rest_min_s``)
finished   ``experiment_stop``
aborted    ``abort``, ``experiment_stop``
=========  ==============================================  =====================================

A trial interrupted by a pause (a class marker followed by ``pause`` before ``trial_end``) is not
counted and is run again after :meth:`~CalibrationProtocol.resume`, so the classes stay balanced
and no data are lost (the recording runs on through the pause). :class:`SignalGuard` pauses a run
by itself while the EEG stream is stalled or lost and resumes it when the signal is back; the
interrupted trials are kept in :attr:`CalibrationProtocol.interrupted_trials` with the reason.
"""
from __future__ import annotations

import logging
import math
import time
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np

from neurodeck.acquisition.markers import CODES

logger = logging.getLogger(__name__)

#: Classes a calibration may cue, in display order.
PROTOCOL_CLASSES: tuple[str, ...] = ("left_hand", "right_hand", "feet", "rest", "tongue")


class ProtocolError(ValueError):
    """Invalid protocol configuration or an operation not allowed in the current state."""


class Phase(StrEnum):
    """States of the calibration state machine."""

    IDLE = "idle"
    FIXATION = "fixation"
    CUE = "cue"
    IMAGERY = "imagery"
    REST = "rest"
    PAUSED = "paused"
    FINISHED = "finished"
    ABORTED = "aborted"


@dataclass(frozen=True)
class ProtocolConfig:
    """Timing and content of one Graz calibration run.

    Parameters
    ----------
    classes : tuple of str
        At least two distinct classes among ``left_hand``, ``right_hand``, ``feet``, ``rest``
        (``tongue`` is also accepted).
    trials_per_class : int
        Trials per class (>= 1); the run has ``len(classes) * trials_per_class`` trials.
    fixation_s, cue_s, imagery_s : float
        Phase durations in seconds (fixation and imagery >= 0, cue > 0).
    rest_min_s, rest_max_s : float
        Inter-trial rest, drawn uniformly in [rest_min_s, rest_max_s] for each trial.
    lead_in_s : float
        Quiet baseline after ``experiment_start`` before the first trial.
    beep : bool
        Emit a ``beep`` marker (and sound in the GUI) at fixation onset.
    seed : int or None
        Seed of the trial order and rest durations (None = random each run).
    """

    classes: tuple[str, ...] = ("left_hand", "right_hand")
    trials_per_class: int = 20
    fixation_s: float = 2.0
    cue_s: float = 1.25
    imagery_s: float = 2.75
    rest_min_s: float = 1.5
    rest_max_s: float = 3.0
    lead_in_s: float = 2.0
    beep: bool = True
    seed: int | None = None

    def __post_init__(self) -> None:
        classes = self.classes
        if isinstance(classes, str):
            raise ProtocolError(f"classes={classes!r} must be a list of class names, not a string")
        try:
            classes = tuple(str(c) for c in classes)
        except TypeError:
            raise ProtocolError(f"classes={classes!r} must be a list of class names") from None
        object.__setattr__(self, "classes", classes)
        unknown = [c for c in classes if c not in PROTOCOL_CLASSES]
        if unknown:
            raise ProtocolError(
                f"classes {unknown} unknown; expected names among {list(PROTOCOL_CLASSES)}"
            )
        if len(set(classes)) != len(classes):
            raise ProtocolError(f"classes={list(classes)} has duplicates; expected distinct names")
        if len(classes) < 2:
            raise ProtocolError(f"classes={list(classes)}: a calibration needs at least 2 classes")
        if isinstance(self.trials_per_class, bool) or not isinstance(self.trials_per_class, int | np.integer):
            raise ProtocolError(f"trials_per_class={self.trials_per_class!r} must be an integer >= 1")
        if self.trials_per_class < 1:
            raise ProtocolError(f"trials_per_class={self.trials_per_class!r} must be >= 1")
        for name in ("fixation_s", "cue_s", "imagery_s", "rest_min_s", "rest_max_s", "lead_in_s"):
            value = getattr(self, name)
            try:
                ok = math.isfinite(float(value)) and float(value) >= 0
            except (TypeError, ValueError):
                ok = False
            if not ok:
                raise ProtocolError(f"{name}={value!r} invalid; expected a finite number of seconds >= 0")
            object.__setattr__(self, name, float(value))
        if self.cue_s <= 0:
            raise ProtocolError(f"cue_s={self.cue_s!r} must be > 0 seconds (the arrow must show)")
        if self.rest_max_s < self.rest_min_s:
            raise ProtocolError(
                f"rest_max_s={self.rest_max_s!r} < rest_min_s={self.rest_min_s!r}; expected max >= min"
            )
        if self.seed is not None and (isinstance(self.seed, bool) or not isinstance(self.seed, int | np.integer)):
            raise ProtocolError(f"seed={self.seed!r} must be an integer or None")
        object.__setattr__(self, "beep", bool(self.beep))

    # ------------------------------------------------------------------ derived numbers
    @property
    def n_trials(self) -> int:
        return len(self.classes) * self.trials_per_class

    @property
    def trial_seconds_min(self) -> float:
        return self.fixation_s + self.cue_s + self.imagery_s + self.rest_min_s

    def expected_duration_s(self) -> float:
        """Mean run duration in seconds (with the mean rest)."""
        mean_rest = 0.5 * (self.rest_min_s + self.rest_max_s)
        return self.lead_in_s + self.n_trials * (self.fixation_s + self.cue_s + self.imagery_s + mean_rest)

    # ------------------------------------------------------------------ (de)serialisation
    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["classes"] = list(self.classes)
        if d["seed"] is None:
            del d["seed"]  # TOML has no null
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ProtocolConfig:
        known = {f.name for f in fields(cls)}
        extra = sorted(set(data) - known)
        if extra:
            raise ProtocolError(f"unknown protocol settings {extra}; expected keys among {sorted(known)}")
        data = dict(data)
        if "classes" in data and not isinstance(data["classes"], str):
            try:
                data["classes"] = tuple(data["classes"])
            except TypeError:
                raise ProtocolError(
                    f"classes={data['classes']!r} must be a list of class names"
                ) from None
        return cls(**data)

    def save(self, path: str | Path) -> Path:
        """Write the config as TOML (a ``[protocol]`` table)."""
        import tomli_w

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(tomli_w.dumps({"protocol": self.to_dict()}), encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: str | Path) -> ProtocolConfig:
        """Read a TOML file written by :meth:`save` (a ``[protocol]`` table, or top-level keys)."""
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ProtocolError(f"protocol file {str(path)!r} not found") from None
        except tomllib.TOMLDecodeError as exc:
            raise ProtocolError(f"protocol file {str(path)!r} is not valid TOML: {exc}") from None
        return cls.from_dict(data.get("protocol", data))


def trial_order(classes: Sequence[str], trials_per_class: int, rng: np.random.Generator) -> list[str]:
    """Balanced random order: every class exactly ``trials_per_class`` times, shuffled.

    Shuffled in blocks of one of each class so that the classes stay balanced over any part of the
    run (an aborted run still has about as many trials of each class).
    """
    order: list[str] = []
    for _ in range(trials_per_class):
        block = list(classes)
        rng.shuffle(block)
        order.extend(block)
    return order


@dataclass(frozen=True)
class ProtocolEvent:
    """One phase change of the protocol.

    Attributes
    ----------
    phase : Phase
        The state entered.
    markers : tuple of str
        Marker names (keys of :data:`acquisition.markers.CODES`) to emit, in order.
    time : float
        Clock time of the change (the LSL clock by default; use it as the marker timestamp).
    duration : float
        Planned duration of this phase in seconds (``inf`` for paused/finished/aborted).
    trial : int
        1-based index of the current trial (0 before the first trial).
    n_trials : int
        Trials in the run.
    class_name : str or None
        Class of the current trial (None outside a trial).
    """

    phase: Phase
    markers: tuple[str, ...]
    time: float
    duration: float
    trial: int
    n_trials: int
    class_name: str | None = None

    @property
    def codes(self) -> tuple[int, ...]:
        return tuple(CODES[m] for m in self.markers)


@dataclass
class TrialRecord:
    """A trial that ran to its ``trial_end`` (``cue_time`` is the class-marker time)."""

    index: int
    class_name: str
    cue_time: float
    imagery_end: float


@dataclass
class InterruptedTrial:
    """A trial cut by a pause: it is not counted and is run again (it is a bad trial).

    ``cue_time`` is NaN when the pause came before the cue; ``reason`` is ``"operator"`` or
    ``"signal: <stream state>"``.
    """

    class_name: str
    cue_time: float
    paused_at: float
    reason: str


Listener = Callable[[ProtocolEvent], None]


class CalibrationProtocol:
    """Graz calibration state machine driven by ``tick(now)``.

    Parameters
    ----------
    config : ProtocolConfig
    clock : callable returning float seconds, optional
        Used when ``start``/``tick``/``pause``... are called without ``now``.
        Default: the LSL clock, so event times are valid LSL marker timestamps.

    Examples
    --------
    >>> proto = CalibrationProtocol(ProtocolConfig(seed=1), clock=fake_clock)  # doctest: +SKIP
    >>> proto.add_listener(print)                                              # doctest: +SKIP
    >>> proto.start(); proto.tick()                                            # doctest: +SKIP
    """

    def __init__(self, config: ProtocolConfig, clock: Callable[[], float] | None = None):
        if not isinstance(config, ProtocolConfig):
            raise ProtocolError(f"config must be a ProtocolConfig, got {type(config).__name__}")
        if clock is None:
            from neurodeck.acquisition.outlet import local_clock

            clock = local_clock
        self.config = config
        self._clock = clock
        self._rng = np.random.default_rng(config.seed)
        self.order: list[str] = trial_order(config.classes, config.trials_per_class, self._rng)
        self._listeners: list[Listener] = []
        self._error_listeners: list[Callable[[BaseException], None]] = []
        self.phase: Phase = Phase.IDLE
        self._deadline: float = math.inf
        self._queue: list[str] = list(self.order)  # classes still to run
        self._current: str | None = None
        self._cue_time: float = math.nan
        self.completed: list[TrialRecord] = []
        self.interrupted: int = 0
        self.interrupted_trials: list[InterruptedTrial] = []
        #: why the run is paused (None while not paused)
        self.pause_reason: str | None = None
        self.events: list[ProtocolEvent] = []
        self.errors: list[BaseException] = []
        self.started_at: float = math.nan
        self.ended_at: float = math.nan

    # ------------------------------------------------------------------ listeners
    def add_listener(self, fn: Listener) -> None:
        """Call ``fn(event)`` on every phase change (markers, cue display, simulator)."""
        self._listeners.append(fn)

    def remove_listener(self, fn: Listener) -> None:
        if fn in self._listeners:
            self._listeners.remove(fn)

    def add_error_listener(self, fn: Callable[[BaseException], None]) -> None:
        """Call ``fn(exc)`` when a listener raised (the run goes on; the error is also logged)."""
        self._error_listeners.append(fn)

    # ------------------------------------------------------------------ state
    @property
    def n_trials(self) -> int:
        return self.config.n_trials

    @property
    def trial(self) -> int:
        """1-based index of the running trial (completed + 1 inside a trial), 0 before the first."""
        if self._current is None:
            return len(self.completed)
        return len(self.completed) + 1

    @property
    def progress(self) -> tuple[int, int]:
        """``(completed trials, total trials)``."""
        return len(self.completed), self.n_trials

    @property
    def current_class(self) -> str | None:
        return self._current

    @property
    def next_deadline(self) -> float:
        """Clock time of the next phase change (``inf`` when idle, paused or done)."""
        return self._deadline

    @property
    def running(self) -> bool:
        return self.phase not in (Phase.IDLE, Phase.FINISHED, Phase.ABORTED)

    @property
    def done(self) -> bool:
        return self.phase in (Phase.FINISHED, Phase.ABORTED)

    # ------------------------------------------------------------------ commands
    def start(self, now: float | None = None) -> None:
        """Begin the run: ``experiment_start`` then a lead-in rest."""
        if self.phase is not Phase.IDLE:
            raise ProtocolError(f"cannot start: the protocol is {self.phase.value}, expected idle")
        now = self._now(now)
        self.started_at = now
        self._enter(Phase.REST, ("experiment_start",), now, self.config.lead_in_s)

    def tick(self, now: float | None = None) -> list[ProtocolEvent]:
        """Advance to ``now``; returns the events emitted (usually zero or one).

        Each phase lasts its full duration from the moment it was entered, so a late tick delays
        the following phases rather than shortening them.
        """
        now = self._now(now)
        emitted: list[ProtocolEvent] = []
        # the next deadline is counted from ``now``, so only zero-length phases chain here
        while self.running and self.phase is not Phase.PAUSED and now >= self._deadline:
            emitted.append(self._advance(now))
        return emitted

    def pause(self, now: float | None = None, reason: str = "operator",
              since: float | None = None) -> list[InterruptedTrial]:
        """Pause; a trial under way is dropped from the count and repeated after resume.

        ``reason`` (``"operator"``, ``"signal: lost"``, ...) is kept in :attr:`pause_reason` and
        with the interrupted trial. ``since``: the time the trouble began (e.g. the last sample
        received before a loss); trials completed after it lacked data too, so they are also
        taken back and repeated. Returns the trials interrupted by this pause.
        """
        if not self.running or self.phase is Phase.PAUSED:
            raise ProtocolError(f"cannot pause: the protocol is {self.phase.value}, expected running")
        now = self._now(now)
        n_before = len(self.interrupted_trials)
        if since is not None:
            while self.completed and self.completed[-1].imagery_end > since:
                t = self.completed.pop()
                self.interrupted_trials.append(InterruptedTrial(t.class_name, t.cue_time, now,
                                                                str(reason)))
                self._queue.insert(0, t.class_name)
                self.interrupted += 1
        if self._current is not None:
            cued = self.phase in (Phase.CUE, Phase.IMAGERY)
            self.interrupted_trials.append(InterruptedTrial(
                self._current, self._cue_time if cued else math.nan, now, str(reason)))
            self._queue.insert(0, self._current)
            self.interrupted += 1
            self._current = None
        self.pause_reason = str(reason)
        self._enter(Phase.PAUSED, ("pause",), now, math.inf)
        return self.interrupted_trials[n_before:]

    def resume(self, now: float | None = None) -> None:
        """Resume after a pause: ``resume`` marker, a short rest, then the next trial."""
        if self.phase is not Phase.PAUSED:
            raise ProtocolError(f"cannot resume: the protocol is {self.phase.value}, expected paused")
        now = self._now(now)
        self.pause_reason = None
        self._enter(Phase.REST, ("resume",), now, self.config.rest_min_s)

    def abort(self, now: float | None = None) -> None:
        """Stop the run now (``abort`` + ``experiment_stop``); completed trials stay valid."""
        if not self.running:
            raise ProtocolError(f"cannot abort: the protocol is {self.phase.value}, expected running")
        now = self._now(now)
        self._current = None
        self.ended_at = now
        self._enter(Phase.ABORTED, ("abort", "experiment_stop"), now, math.inf)

    # ------------------------------------------------------------------ internals
    def _now(self, now: float | None) -> float:
        return float(self._clock() if now is None else now)

    def _advance(self, now: float) -> ProtocolEvent:
        cfg = self.config
        if self.phase is Phase.REST:
            if not self._queue:
                self.ended_at = now
                return self._enter(Phase.FINISHED, ("experiment_stop",), now, math.inf)
            self._current = self._queue.pop(0)
            markers = ("trial_start", "fixation", "beep") if cfg.beep else ("trial_start", "fixation")
            return self._enter(Phase.FIXATION, markers, now, cfg.fixation_s)
        if self.phase is Phase.FIXATION:
            self._cue_time = now
            return self._enter(Phase.CUE, (self._current,), now, cfg.cue_s)
        if self.phase is Phase.CUE:
            return self._enter(Phase.IMAGERY, ("feedback_start",), now, cfg.imagery_s)
        if self.phase is Phase.IMAGERY:
            assert self._current is not None
            self.completed.append(TrialRecord(len(self.completed) + 1, self._current, self._cue_time, now))
            self._current = None
            rest = float(self._rng.uniform(cfg.rest_min_s, cfg.rest_max_s))
            return self._enter(Phase.REST, ("trial_end",), now, rest)
        raise ProtocolError(f"no transition from {self.phase.value}")  # pragma: no cover

    def _enter(self, phase: Phase, markers: tuple[str, ...], now: float, duration: float) -> ProtocolEvent:
        self.phase = phase
        self._deadline = now + duration
        event = ProtocolEvent(
            phase=phase,
            markers=markers,
            time=now,
            duration=duration,
            trial=self.trial,
            n_trials=self.n_trials,
            class_name=self._current,
        )
        self.events.append(event)
        logger.debug("protocol %s at %.3f markers=%s trial %d/%d", phase.value, now, markers,
                     event.trial, event.n_trials)
        for fn in list(self._listeners):
            try:
                fn(event)
            except Exception as exc:  # a broken sink must not stop the run; surface it
                logger.exception("protocol listener %r failed on %s", fn, phase.value)
                self.errors.append(exc)
                for efn in list(self._error_listeners):
                    try:
                        efn(exc)
                    except Exception:  # pragma: no cover
                        logger.exception("protocol error listener failed")
        return event


class SignalGuard:
    """Pauses a running protocol while the EEG stream is bad and resumes it when it is back.

    Feed it every stream state (:meth:`on_state`); ``stalled``, ``lost`` and ``paused`` (our own
    replay paused) pause the run with reason ``"signal: <state>"``, ``connected`` / ``recovered``
    resume a run this guard paused (never one the operator paused). Each outage is kept in
    :attr:`outages` as ``[state, start, end]`` (end NaN while it lasts).

    Parameters
    ----------
    protocol : CalibrationProtocol
    """

    BAD = ("stalled", "lost", "paused")
    GOOD = ("connected", "recovered")

    def __init__(self, protocol: CalibrationProtocol):
        self.protocol = protocol
        self.outages: list[list] = []
        #: the trials the last pause took back (to mark them bad in the recording)
        self.last_interrupted: list[InterruptedTrial] = []

    @property
    def holding(self) -> bool:
        """The run is paused by this guard (waiting for the signal)."""
        reason = self.protocol.pause_reason
        return self.protocol.phase is Phase.PAUSED and bool(reason) and reason.startswith("signal")

    def on_state(self, state: str, now: float | None = None,
                 last_data: float | None = None) -> str | None:
        """Act on a stream state; returns ``"paused"``, ``"resumed"`` or None (nothing done).

        ``last_data``: clock time of the last sample received; a trial that completed after it
        is taken back too (its end had no data).
        """
        proto = self.protocol
        state = str(state)
        now = proto._now(now)
        if state in self.BAD:
            if not self.outages or not math.isnan(self.outages[-1][2]):
                self.outages.append([state, now if last_data is None else min(now, last_data),
                                     math.nan])
            if proto.running and proto.phase is not Phase.PAUSED:
                self.last_interrupted = proto.pause(now, reason=f"signal: {state}",
                                                    since=last_data)
                return "paused"
            return None
        if state in self.GOOD:
            if self.outages and math.isnan(self.outages[-1][2]):
                self.outages[-1][2] = now
            if self.holding:
                proto.resume(now)
                return "resumed"
        return None


#: Annotation written at the cue of a trial cut by a signal loss (the trial was repeated).
BAD_TRIAL = "BAD_interrupted"


def drop_interrupted(raw: Any, events: np.ndarray) -> np.ndarray:
    """The events of ``raw`` without the cues of trials cut by a signal loss.

    Parameters
    ----------
    raw : mne.io.BaseRaw
        With a :data:`BAD_TRIAL` annotation at the cue of every interrupted trial.
    events : ndarray of int, shape (n_events, 3)
        Samples including ``raw.first_samp`` (as :func:`mne.events_from_annotations`).

    Returns
    -------
    events : ndarray of int, shape (n_kept, 3)
    """
    ann = raw.annotations
    bad = np.array([o for o, d in zip(ann.onset, ann.description) if d == BAD_TRIAL])
    if not len(bad) or not len(events):
        return events
    # the same sample rule as mne.events_from_annotations (events hold raw.first_samp)
    bad_samples = raw.time_as_index(bad, use_rounding=True, origin=ann.orig_time)
    if ann.orig_time is not None:
        bad_samples = bad_samples + raw.first_samp
    keep = np.array([np.min(np.abs(bad_samples - e)) > 1 for e in events[:, 0]])
    logger.info("left out %d interrupted trial(s)", int((~keep).sum()))
    return events[keep]


# ---------------------------------------------------------------------- sinks
class MarkerSink:
    """Listener pushing every event's markers to a :class:`acquisition.outlet.MarkerOutlet`.

    Markers go out as the decimal GDF code string (``"769"``) timestamped with the event time.
    """

    def __init__(self, outlet: Any):
        self.outlet = outlet
        self.sent: list[tuple[float, str]] = []

    def __call__(self, event: ProtocolEvent) -> None:
        for name, code in zip(event.markers, event.codes):
            self.outlet.push(str(code), event.time)
            self.sent.append((event.time, name))


class SimulatorCueSink:
    """Listener telling a :class:`acquisition.simulator.Simulator` what to imagine.

    At each cue the simulated brain imagines the cued class for ``cue_s + imagery_s`` seconds
    (``mark=False``: the protocol's own marker stream carries the cue).
    """

    def __init__(self, simulator: Any, config: ProtocolConfig):
        self.simulator = simulator
        self.duration = config.cue_s + config.imagery_s

    def __call__(self, event: ProtocolEvent) -> None:
        if event.phase is Phase.CUE and event.class_name is not None:
            # our marker outlet carries the cue; the simulator must not mark it a second time
            self.simulator.cue(event.class_name, self.duration, mark=False)


@dataclass
class EventLog:
    """Listener that keeps every event (handy for tests and reports)."""

    events: list[ProtocolEvent] = field(default_factory=list)

    def __call__(self, event: ProtocolEvent) -> None:
        self.events.append(event)

    def marker_names(self) -> list[str]:
        return [m for e in self.events for m in e.markers]


def run_blocking(
    protocol: CalibrationProtocol,
    *,
    poll_s: float = 0.005,
    sleep: Callable[[float], None] = time.sleep,
    should_stop: Callable[[], bool] | None = None,
) -> None:
    """Run ``protocol`` to the end on the calling thread (headless runs, ``neurodeck demo``).

    ``should_stop()`` returning True aborts the run.
    """
    if protocol.phase is Phase.IDLE:
        protocol.start()
    while not protocol.done:
        if should_stop is not None and should_stop():
            protocol.abort()
            break
        protocol.tick()
        if protocol.phase is Phase.PAUSED:
            sleep(poll_s)
            continue
        wait = protocol.next_deadline - protocol._now(None)
        sleep(min(max(wait, 0.0), poll_s) if wait > 0 else 0.0)
