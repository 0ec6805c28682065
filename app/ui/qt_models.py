"""Qt bridges: QObjects that own the Qt-free runtime objects and re-emit their news as signals.

* :class:`Background` runs slow calls (resolving LSL streams, starting a recorder, finalizing a
  recording) on a Python thread and delivers the result on the GUI thread; every thread is joined
  by :meth:`Background.wait_all` at shutdown, so nothing dangles.
* :class:`StreamModel` owns the data source (a simulator or a player it started) and the inlets
  (EEG + markers); it polls their state and loss counters on a GUI timer and emits them.
* :class:`ProtocolRunner` drives a :class:`app.protocol.CalibrationProtocol` from a precise GUI
  timer and emits its events.
* :class:`AppContext` is what every page receives: settings, session, stream model, and
  ``report_error`` so errors reach the window.
"""
from __future__ import annotations

import logging
import threading
import traceback
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PyQt6.QtCore import QObject, Qt, QTimer, pyqtSignal

from neurodeck.app.protocol import CalibrationProtocol, Phase, ProtocolEvent
from neurodeck.app.session import Session
from neurodeck.app.settings import Settings

logger = logging.getLogger(__name__)


def user_error_types() -> tuple[type[BaseException], ...]:
    """Errors that refuse what the user asked for (shown as one line, logged without traceback).

    The same set the CLI turns into ``error: MESSAGE`` and exit status 2 (:mod:`app.cli`).
    """
    from neurodeck.acquisition.errors import AcquisitionError
    from neurodeck.app.errors import UserError
    from neurodeck.decoders.errors import DecoderError

    return (UserError, AcquisitionError, DecoderError, FileNotFoundError)


def is_user_error(exc: BaseException) -> bool:
    """True for a refusal with a clear reason for the user, False for a bug (keep its traceback)."""
    return isinstance(exc, user_error_types())


def error_text(exc: BaseException) -> str:
    """One readable line for an exception (our errors already are; others get their type)."""
    if isinstance(exc, (*user_error_types(), ValueError)):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


class _Delivery(QObject):
    """Lives on the GUI thread; queued signals carry results back from worker threads."""

    done = pyqtSignal(object, object)  # callback, result
    failed = pyqtSignal(object, object)  # callback, exception


class Background(QObject):
    """Run callables on worker threads; callbacks run on the GUI thread."""

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._delivery = _Delivery(self)
        self._delivery.done.connect(lambda cb, res: cb(res) if cb else None,
                                    Qt.ConnectionType.QueuedConnection)
        self._delivery.failed.connect(lambda cb, exc: cb(exc) if cb else None,
                                      Qt.ConnectionType.QueuedConnection)

    def run(self, fn: Callable[[], Any], on_done: Callable[[Any], None] | None = None,
            on_error: Callable[[BaseException], None] | None = None, name: str = "task") -> threading.Thread:
        def target() -> None:
            try:
                result = fn()
            except BaseException as exc:  # delivered to the GUI, never lost
                if is_user_error(exc):
                    logger.debug("background %s refused: %s", name, exc)
                else:
                    logger.debug("background %s failed:\n%s", name, traceback.format_exc())
                self._delivery.failed.emit(on_error, exc)
            else:
                self._delivery.done.emit(on_done, result)

        t = threading.Thread(target=target, name=f"neurodeck-{name}", daemon=True)
        with self._lock:
            self._threads = [x for x in self._threads if x.is_alive()]
            self._threads.append(t)
        t.start()
        return t

    @property
    def active(self) -> int:
        with self._lock:
            return sum(t.is_alive() for t in self._threads)

    def wait_all(self, timeout: float = 10.0) -> bool:
        """Join every worker (True if all ended within ``timeout`` seconds in total)."""
        import time

        deadline = time.monotonic() + timeout
        with self._lock:
            threads = list(self._threads)
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in threads)


class StreamModel(QObject):
    """The EEG (+ marker) inlets and the source that feeds them, if we started it.

    Signals
    -------
    connection_changed()
        Inlets were connected or disconnected.
    state_changed(str)
        EEG stream state: ``none``, ``connecting``, ``connected``, ``stalled``, ``lost``,
        ``recovered``, ``stopped``.
    counters_changed(object)
        The EEG inlet's :class:`~acquisition.inlet.InletCounters` (polled, ~4 Hz).
    source_changed(str)
        ``"simulator"``, ``"replay"``, ``"lsl"`` or ``""``.
    busy_changed(bool)
        A connect / start is in progress.
    marker_posted(float, str)
        A marker the app itself sent (LSL time, marker name), e.g. a calibration cue: the
        signal view draws it on the traces.
    error(str)
    """

    connection_changed = pyqtSignal()
    state_changed = pyqtSignal(str)
    counters_changed = pyqtSignal(object)
    source_changed = pyqtSignal(str)
    busy_changed = pyqtSignal(bool)
    marker_posted = pyqtSignal(float, str)
    error = pyqtSignal(str)

    def __init__(self, background: Background, parent: QObject | None = None, poll_ms: int = 250):
        super().__init__(parent)
        self.background = background
        self.inlet: Any = None
        self.marker_inlet: Any = None
        self.simulator: Any = None
        self.player: Any = None
        self.source_kind = ""
        self.source_label = ""
        self._state = "none"
        self._last_counters: Any = None
        self._busy = False
        self._closed = False
        self._holds: dict[str, str] = {}
        #: gaps / missing samples that our own replay pause made (not lost data): not shown
        self._excused = (0, 0)
        self._resumed_at: tuple[int, int] | None = None
        self._timer = QTimer(self)
        self._timer.setInterval(poll_ms)
        self._timer.timeout.connect(self.poll)
        self._timer.start()

    # ------------------------------------------------------------------ properties
    @property
    def state(self) -> str:
        return self._state

    @property
    def connected(self) -> bool:
        return self.inlet is not None

    @property
    def busy(self) -> bool:
        return self._busy

    @property
    def description(self) -> Any:
        return None if self.inlet is None else self.inlet.description

    @property
    def marker_description(self) -> Any:
        return None if self.marker_inlet is None else self.marker_inlet.description

    def post_markers(self, event: Any) -> None:
        """Protocol listener: announce the markers of a :class:`app.protocol.ProtocolEvent`
        (sent by the app itself) with :attr:`marker_posted`."""
        for name in event.markers:
            self.marker_posted.emit(float(event.time), str(name))

    def hold(self, key: str, reason: str) -> None:
        """Keep the current source while ``reason`` holds (e.g. a calibration is recording it)."""
        self._holds[key] = reason

    def release(self, key: str) -> None:
        self._holds.pop(key, None)

    @property
    def held(self) -> str | None:
        """Why the source may not be changed now (None = free)."""
        return next(iter(self._holds.values()), None)

    def _refuse_if_held(self) -> bool:
        why = self.held
        if why is not None and not self._closed:
            self.error.emit(f"The stream cannot be changed now: {why}. Stop it first.")
            return True
        return False

    def _set_busy(self, busy: bool) -> None:
        self._busy = busy
        self.busy_changed.emit(busy)

    # ------------------------------------------------------------------ replay pause
    @property
    def replay_paused(self) -> bool:
        return self.player is not None and bool(getattr(self.player, "paused", False))

    def pause_replay(self) -> None:
        """Pause our own replay: the stream state reads ``paused`` (no amplifier alarm)."""
        if self.player is not None and not self.player.paused:
            self.player.pause()
            self.poll()

    def resume_replay(self) -> None:
        """Resume our replay; the one timestamp gap the pause leaves is not counted as lost."""
        if self.player is not None and self.player.paused:
            if self.inlet is not None:
                c = self.inlet.counters
                self._resumed_at = (c.gaps, c.samples_missing)
            self.player.resume()
            self.poll()

    def counters(self) -> Any:
        """The EEG inlet's counters without the gap of our own replay pauses (None: no inlet)."""
        if self.inlet is None:
            return None
        import dataclasses

        c = self.inlet.counters
        if self._resumed_at is not None and c.gaps > self._resumed_at[0]:
            # the first gap after a resume is the pause itself (the player's clock stood still)
            g0, m0 = self._resumed_at
            self._resumed_at = None
            self._excused = (self._excused[0] + c.gaps - g0, self._excused[1] + c.samples_missing - m0)
        eg, em = self._excused
        return dataclasses.replace(c, gaps=max(0, c.gaps - eg),
                                   samples_missing=max(0, c.samples_missing - em))

    # ------------------------------------------------------------------ polling
    def poll(self) -> None:
        """Read the inlet state and counters (GUI thread) and emit what changed."""
        if self.inlet is None:
            state = "none"
        else:
            state = self.inlet.state.value
            err = getattr(self.inlet, "error", None)
            if err is not None and err is not getattr(self, "_last_err", None):
                self._last_err = err
                self.error.emit(f"EEG stream: {error_text(err)}")
            if self.replay_paused and state in ("connected", "recovered", "stalled", "lost"):
                state = "paused"  # we paused our own replay: no data is expected
        if state != self._state:
            self._state = state
            self.state_changed.emit(state)
        if self.inlet is not None:
            c = self.counters()
            if c != self._last_counters:
                self._last_counters = c
                self.counters_changed.emit(c)
        if self.player is not None and getattr(self.player, "error", None) is not None:
            err, self.player.error = self.player.error, None
            self.error.emit(f"Replay stopped: {error_text(err)}")

    # ------------------------------------------------------------------ sources
    def start_simulator(self, *, n_channels: int = 64, srate: float = 512.0, classes=None,
                        on_done: Callable[[Any], None] | None = None, **config: Any) -> None:
        """Start the built-in simulator (external cue schedule) and connect to it."""
        name = f"neurodeck-sim-{uuid.uuid4().hex[:6]}"

        def work():
            from neurodeck.acquisition.simulator import Simulator, SimulatorConfig

            kwargs: dict[str, Any] = dict(n_channels=n_channels, srate=srate, name=name,
                                          mode="cued", schedule="external")
            if classes is not None:
                kwargs["classes"] = tuple(classes)
            kwargs.update(config)
            sim = Simulator(SimulatorConfig(**kwargs))
            sim.start()
            try:
                inlet = self._open_inlet(sim_stream_name(sim, name))
            except BaseException:
                sim.stop()
                raise
            return sim, inlet

        def done(result):
            sim, inlet = result
            self._adopt(inlet, None, "simulator", f"Simulator ({n_channels} ch @ {srate:g} Hz)",
                        simulator=sim)
            if on_done:
                on_done(result)

        self._begin(work, done, "simulator")

    def start_player(self, path: str | Path, *, speed: float = 1.0, loop: bool = True,
                     on_done: Callable[[Any], None] | None = None) -> None:
        """Replay a recording file as LSL and connect to its EEG (and marker) stream."""
        path = Path(path)
        name = f"neurodeck-replay-{uuid.uuid4().hex[:6]}"

        def work():
            from neurodeck.acquisition.player import Player

            player = Player(path, speed=speed, loop=loop, name=name)
            player.start()
            try:
                # an XDF holds other streams too (e.g. string replies of an online program)
                eeg_name = player.eeg_name or player.outlet_names[0]
                inlet = self._open_inlet(eeg_name)
                marker = None
                markers = sorted(player.marker_names, key=lambda n: "marker" not in n.lower())
                if markers:
                    from neurodeck.acquisition.inlet import MarkerInlet

                    marker = MarkerInlet(markers[0]).start()
            except BaseException:
                player.stop()
                raise
            return player, inlet, marker

        def done(result):
            player, inlet, marker = result
            self._adopt(inlet, marker, "replay", f"Replay of {path.name} (x{speed:g})", player=player)
            if on_done:
                on_done(result)

        self._begin(work, done, "player")

    def connect_streams(self, eeg: Any, markers: Any = None,
                        on_done: Callable[[Any], None] | None = None) -> None:
        """Connect to existing LSL streams (StreamDescription, StreamInfo or name).

        Streams picked from a list (StreamDescription with a source id) are looked up again by
        source id for :data:`LISTED_LOOKUP_S` first: one that has gone fails at once with a
        clear message instead of after the inlet's 5 s resolve.
        """

        def work():
            eeg_info = still_listed(eeg)
            marker_info = None if markers is None else still_listed(markers)
            inlet = self._open_inlet(eeg_info)
            marker = None
            if marker_info is not None:
                from neurodeck.acquisition.inlet import MarkerInlet

                try:
                    marker = MarkerInlet(marker_info).start()
                except BaseException:
                    inlet.stop()
                    raise
            return inlet, marker

        def done(result):
            inlet, marker = result
            label = getattr(eeg, "name", str(eeg))
            self._adopt(inlet, marker, "lsl", f"LSL stream {label}")
            if on_done:
                on_done(result)

        self._begin(work, done, "connect")

    @staticmethod
    def _open_inlet(source: Any) -> Any:
        from neurodeck.acquisition.inlet import Inlet

        inlet = Inlet(source, buffer_seconds=30.0)
        inlet.start()
        return inlet

    def _begin(self, work, done, name: str) -> None:
        if self._busy:
            self.error.emit("Please wait: a connection is already being set up.")
            return
        if self._refuse_if_held():
            return
        self.disconnect()
        self._set_busy(True)

        def ok(result):
            self._set_busy(False)
            if self._closed:  # the window closed while we were connecting: stop what started
                for obj in result if isinstance(result, tuple) else (result,):
                    if obj is not None and hasattr(obj, "stop"):
                        obj.stop()
                return
            done(result)

        def fail(exc):
            self._set_busy(False)
            self.error.emit(f"Could not start the {name}: {error_text(exc)}")

        self.background.run(work, ok, fail, name=name)

    def _adopt(self, inlet, marker, kind: str, label: str, simulator=None, player=None) -> None:
        self.inlet, self.marker_inlet = inlet, marker
        self.simulator, self.player = simulator, player
        self.source_kind, self.source_label = kind, label
        self._last_counters = None
        self._excused, self._resumed_at = (0, 0), None
        self.poll()
        self.connection_changed.emit()
        self.source_changed.emit(kind)
        logger.info("connected: %s", label)

    def disconnect(self) -> None:
        """Stop the inlets and any source we started (GUI thread; quick).

        Refused (with an error message) while something :meth:`hold` s the source, except at
        shutdown.
        """
        if self._refuse_if_held():
            return
        had = self.inlet is not None or self.simulator is not None or self.player is not None
        for obj in (self.marker_inlet, self.inlet, self.player, self.simulator):
            if obj is None:
                continue
            try:
                obj.stop()
            except Exception as exc:  # report, keep going: the rest must stop too
                logger.exception("stopping %r failed", obj)
                self.error.emit(f"Stopping {type(obj).__name__} failed: {error_text(exc)}")
        self.inlet = self.marker_inlet = self.simulator = self.player = None
        self.source_kind = self.source_label = ""
        if had:
            self.poll()
            self.connection_changed.emit()
            self.source_changed.emit("")

    def shutdown(self) -> None:
        """Stop polling and every source/inlet; later connection results are stopped on arrival."""
        self._closed = True
        self._timer.stop()
        self.disconnect()


#: How long a stream picked from the list is looked up again by source id before connecting.
LISTED_LOOKUP_S = 1.0


def still_listed(stream: Any) -> Any:
    """The LSL stream info of a listed stream (``StreamDescription`` with a source id), looked
    up again by name and source id; other sources are returned as they are.

    Raises
    ------
    StreamNotFoundError
        The stream did not answer within :data:`LISTED_LOOKUP_S` (it has gone).
    """
    from neurodeck.acquisition.errors import StreamNotFoundError
    from neurodeck.acquisition.streams import StreamDescription, find_streams

    if not isinstance(stream, StreamDescription) or not stream.source_id:
        return stream
    found = find_streams(name=stream.name, source_id=stream.source_id, timeout=LISTED_LOOKUP_S,
                         minimum=1)
    if not found:
        raise StreamNotFoundError(
            f"stream {stream.name!r} (source id {stream.source_id!r}) is no longer on the network "
            f"(no answer within {LISTED_LOOKUP_S:g} s); the list was refreshed: choose a stream "
            "that is there, or start its source again")
    return found[0]


def sim_stream_name(sim: Any, default: str) -> str:
    """EEG stream name of a started simulator (its config name)."""
    cfg = getattr(sim, "config", None)
    return str(getattr(cfg, "name", None) or default)


class ProtocolRunner(QObject):
    """Drives a :class:`CalibrationProtocol` from a precise GUI timer.

    Signals
    -------
    phase_changed(object)
        Every :class:`~app.protocol.ProtocolEvent`.
    progress(int, int)
        Completed trials, total trials.
    finished(str)
        ``"finished"`` or ``"aborted"``.
    error(str)
        A protocol listener failed (marker outlet, simulator, ...).
    """

    phase_changed = pyqtSignal(object)
    progress = pyqtSignal(int, int)
    finished = pyqtSignal(str)
    error = pyqtSignal(str)

    def __init__(self, protocol: CalibrationProtocol, parent: QObject | None = None, interval_ms: int = 5):
        super().__init__(parent)
        self.protocol = protocol
        protocol.add_listener(self._on_event)
        protocol.add_error_listener(lambda exc: self.error.emit(f"Calibration: {error_text(exc)}"))
        self._timer = QTimer(self)
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self._tick)

    def start(self) -> None:
        self.protocol.start()
        self._timer.start()

    def pause(self) -> None:
        self.protocol.pause()

    def resume(self) -> None:
        self.protocol.resume()

    def abort(self) -> None:
        if self.protocol.running:
            self.protocol.abort()

    def _tick(self) -> None:
        self.protocol.tick()

    def _on_event(self, ev: ProtocolEvent) -> None:
        self.phase_changed.emit(ev)
        done, total = self.protocol.progress
        self.progress.emit(done, total)
        if ev.phase in (Phase.FINISHED, Phase.ABORTED):
            self._timer.stop()
            self.finished.emit(ev.phase.value)

    def stop(self) -> None:
        self._timer.stop()


class AppContext(QObject):
    """Shared state handed to every page.

    Signals
    -------
    session_changed(object)
        The current :class:`~app.session.Session` (or None).
    error_reported(str)
        An error to show in the window.
    info_reported(str)
        A short success note ("Saved to ...").
    session_requested()
        A page wants the user to pick or create a session (the window opens its dialog).
    """

    session_changed = pyqtSignal(object)
    error_reported = pyqtSignal(str)
    info_reported = pyqtSignal(str)
    #: a page asks the window to show the new/open session dialog
    session_requested = pyqtSignal()

    def __init__(self, settings: Settings | None = None, parent: QObject | None = None):
        super().__init__(parent)
        self.settings = settings if settings is not None else Settings.load()
        self.background = Background(self)
        self.streams = StreamModel(self.background, self)
        self.streams.error.connect(self.report_error)
        self.session: Session | None = None

    def report_error(self, message: str) -> None:
        """Show ``message`` in the window's banner; logged as one WARNING line (bugs log their
        traceback at ERROR where they are caught, e.g. :class:`app.ui.workers.JobRunner`)."""
        logger.warning("%s", message)
        self.error_reported.emit(str(message))

    def report_info(self, message: str) -> None:
        logger.info("%s", message)
        self.info_reported.emit(str(message))

    def set_session(self, session: Session | None) -> None:
        self.session = session
        if session is not None:
            self.settings.last_session = str(session.path)
            try:
                self.settings.save()
            except OSError as exc:
                self.report_error(f"Could not save settings: {exc}")
        self.session_changed.emit(session)

    def shutdown(self, timeout: float = 10.0) -> None:
        """Join background threads (recordings get saved), then stop the streams."""
        from PyQt6.QtCore import QCoreApplication

        # finish background work (a recording being finalized) while the sources still stream,
        # so the recording ends after its last markers; results of late connections get stopped
        self.streams._closed = True
        if not self.background.wait_all(timeout):
            logger.warning("background tasks still running after %.1f s", timeout)
        QCoreApplication.processEvents()
        self.streams.shutdown()
