"""Threaded LSL inlets: numeric streams into a ring buffer, marker streams into a queue.

:class:`Inlet` reads one numeric stream (EEG, EMG, decisions, ...). A single background thread
pulls with ``pull_chunk(dest_obj=<preallocated array>)`` (no per-sample Python objects), writes
every chunk to a :class:`~acquisition.buffer.RingBuffer` and hands it to the chunk listeners (the
recorder writes every sample through those). The pull waits inside liblsl for the first sample
(at most ``poll_interval`` s), then takes what is already there (``timeout=0.0``): the thread
wakes when data come, not on a polling clock (a 1 ms poll cost ~1000 wakeups/s and up to 1 ms of
delay; see benchmarks/acquisition_vs_mnelsl.py). :class:`MarkerInlet` reads string (or integer)
event streams and queues ``(timestamp, label)`` pairs.

Timestamps
    liblsl maps every timestamp to *this* machine's :func:`pylsl.local_clock` (processing flag
    ``proc_clocksync``, i.e. the inlet's ``time_correction``); ``dejitter=True`` adds
    ``proc_dejitter`` (smooths timestamps of regular streams; it also smooths over gaps, so the
    gap counters are most exact without it), ``monotonize=True`` adds ``proc_monotonize``.
    Samples that liblsl stamps relative to 0 when a connection starts in the middle of a pushed
    chunk are re-stamped from the next real timestamp (``counters.timestamps_repaired``). A source
    that stamps with its own device clock never sends such a "real" timestamp: after one second
    of samples (at most) the inlet takes its stamps as they are for the rest of the connection
    (logged once), and whatever is still held when the inlet stops is delivered, never dropped.

Gaps
    For regular-rate streams, consecutive timestamps further apart than one sample period plus
    ``gap_tolerance`` seconds count as a gap; ``samples_missing`` adds ``round(dt * srate) - 1``
    for each. A gap across a stream loss is counted too (it is never hidden).

States (:class:`StreamState`)
    ``STOPPED`` -> ``start()`` -> ``CONNECTING`` -> ``CONNECTED``. For a numeric :class:`Inlet`,
    no data for ``stall_after`` s -> ``STALLED``; for ``lost_after`` s (or liblsl reports the
    source lost) -> ``LOST``. When data flow again after ``LOST`` -> ``RECOVERED``, and after
    ``recovered_hold`` s of data -> ``CONNECTED``; after a mere stall data go straight back to
    ``CONNECTED``. ``stop()`` -> ``STOPPED``. Marker streams are silent most of the time, so a
    :class:`MarkerInlet` only goes ``LOST`` when liblsl reports the connection broken.

Recovery
    The numeric inlet is opened with ``recover=True``: when an outlet with the *same source id*
    comes back, liblsl reconnects on its own. While ``LOST`` (and ``follow_name=True``, the
    default) the inlet also re-resolves the stream *by name* every ``reresolve_interval`` s: an
    outlet with the same name but a *different* source id (or none), e.g. an amplifier program
    restarted without a fixed source id, is adopted if its channel count, format and rate match
    (an incompatible one is reported in :attr:`Inlet.error` and ignored). An outlet with our
    source id that liblsl has not reconnected to within ``switch_after`` s is re-opened by us.
    Each recovery counts in ``counters.reconnects``; :attr:`Inlet.description` then describes the
    new outlet (new ``uid``).
"""
from __future__ import annotations

import collections
import dataclasses
import enum
import logging
import math
import threading
import time
from collections.abc import Callable

import numpy as np
import pylsl
from pylsl.util import LostError
from pylsl.util import TimeoutError as LSLTimeoutError

from neurodeck.acquisition.buffer import RingBuffer
from neurodeck.acquisition.errors import AcquisitionError
from neurodeck.acquisition.streams import StreamDescription, _dispose, find_streams, resolve_stream

logger = logging.getLogger(__name__)

#: A stamp lead (s) larger than this is reported (smaller ones are clock-sync jitter).
LEAD_REPORT_S = 0.002
#: A stamp lead is reported only after every chunk for this long (s) and ...
LEAD_PERSIST_S = 0.3
#: ... at least this many chunks in a row arrived ahead of their stamps.
LEAD_PERSIST_CHUNKS = 5
#: Seconds between two reads of liblsl's clock offset (``Inlet.clock_offset``).
CLOCK_EVERY_S = 5.0
#: Clock offsets kept to measure their spread (``Inlet.clock_uncertainty``).
CLOCK_HISTORY = 6

_TIME_CORRECTION_EX = None


def _time_correction_ex(inlet: pylsl.StreamInlet, timeout: float = 0.0) -> tuple[float, float]:
    """liblsl's clock offset of ``inlet``'s source and its uncertainty, seconds.

    The uncertainty is half the round-trip time of the probe the estimate came from
    (``lsl_time_correction_ex``; pylsl exposes only the offset): the true offset lies within it.
    Raises pylsl's TimeoutError (no estimate yet) or LostError.
    """
    global _TIME_CORRECTION_EX
    import ctypes

    from pylsl.lib import lib
    from pylsl.util import handle_error

    if _TIME_CORRECTION_EX is None:
        proto = ctypes.CFUNCTYPE(ctypes.c_double, ctypes.c_void_p, ctypes.POINTER(ctypes.c_double),
                                 ctypes.POINTER(ctypes.c_double), ctypes.c_double,
                                 ctypes.POINTER(ctypes.c_int32))
        _TIME_CORRECTION_EX = proto(("lsl_time_correction_ex", lib))
    remote, unc, ec = ctypes.c_double(), ctypes.c_double(), ctypes.c_int32()
    offset = _TIME_CORRECTION_EX(inlet.obj, ctypes.byref(remote), ctypes.byref(unc), timeout,
                                 ctypes.byref(ec))
    handle_error(ec.value)
    return float(offset), float(unc.value)

ChunkListener = Callable[[np.ndarray, np.ndarray], None]
StateListener = Callable[["StreamState", "StreamState"], None]
MarkerListener = Callable[[float, str], None]

_MARKER_FORMATS = ("string", "int32", "int16", "int8", "int64")


class StreamState(enum.Enum):
    """Where an inlet's connection is; what a GUI shows next to the stream."""

    CONNECTING = "connecting"
    CONNECTED = "connected"
    STALLED = "stalled"
    LOST = "lost"
    RECOVERED = "recovered"
    STOPPED = "stopped"


@dataclasses.dataclass
class InletCounters:
    """What an inlet has seen so far (a snapshot; :attr:`Inlet.counters` returns a copy).

    Attributes
    ----------
    samples_received : int
        Samples (or markers) received.
    chunks : int
        Non-empty pulls.
    gaps : int
        Timestamp jumps larger than one sample period + ``gap_tolerance`` (regular streams).
    samples_missing : int
        Samples missing in those gaps, estimated from their durations.
    overruns : int
        Ring-buffer reads that asked for already overwritten samples (readers too slow).
    reconnects : int
        Recoveries after the stream was lost.
    timestamps_repaired : int
        Timestamps liblsl deduced from 0 after a (re)connection, re-derived from the next
        trustworthy one (see :meth:`Inlet._repair_timestamps`).
    stamp_lead_s : float
        Largest amount (s) by which a chunk's last timestamp was *ahead* of the moment it was
        received on this machine's clock, once such a lead is established (0 until then): a
        source that stamps ahead of time, e.g. MNE-LSL's player stamps each chunk's last sample
        one chunk into the future. No sample can arrive before it was measured, so this is a
        stamping error; the online engine measures decision latency from stamps corrected by it
        (see :attr:`Inlet.stamp_lead`). Established means: every chunk for ``LEAD_PERSIST_S`` s
        and ``LEAD_PERSIST_CHUNKS`` chunks in a row arrived ahead of its stamp, by more than
        ``LEAD_REPORT_S`` plus the clock-offset uncertainty (:attr:`Inlet.clock_uncertainty`).
        A lead within that uncertainty is liblsl's clock offset misestimated (on a loaded
        machine the offset probes' round trips grow), not the source's stamping.
    """

    samples_received: int = 0
    chunks: int = 0
    gaps: int = 0
    samples_missing: int = 0
    overruns: int = 0
    reconnects: int = 0
    timestamps_repaired: int = 0
    stamp_lead_s: float = 0.0



def _describe_source(source) -> str:
    if isinstance(source, pylsl.StreamInfo):
        return f"{source.name()!r} (source_id={source.source_id()!r})"
    if isinstance(source, StreamDescription):
        return f"{source.name!r} (source_id={source.source_id!r})"
    return repr(source)


class _BaseInlet:
    """Shared machinery: resolving, opening, the pull thread, states, listeners, recovery."""

    _recover = True  # liblsl's own recovery (numeric inlets); markers reconnect themselves
    _kind = "stream"

    def __init__(
        self,
        source: pylsl.StreamInfo | StreamDescription | str,
        *,
        resolve_timeout: float = 5.0,
        follow_name: bool = True,
        reresolve_interval: float = 0.5,
        switch_after: float = 2.0,
        recovered_hold: float = 1.0,
        poll_interval: float = 0.02,
        processing_flags: int = pylsl.proc_clocksync,
        max_buflen: int = 360,
    ):
        if not isinstance(source, pylsl.StreamInfo | StreamDescription | str):
            raise AcquisitionError(
                f"inlet source {source!r} invalid; expected a pylsl.StreamInfo, a "
                "StreamDescription or a stream name"
            )
        if isinstance(source, str) and not source:
            raise AcquisitionError("inlet source is an empty stream name; expected a name")
        self._source = source
        self.resolve_timeout = float(resolve_timeout)
        self.follow_name = bool(follow_name)
        self.reresolve_interval = float(reresolve_interval)
        self.switch_after = float(switch_after)
        self.recovered_hold = float(recovered_hold)
        self.poll_interval = float(poll_interval)
        self._flags = int(processing_flags)
        self._max_buflen = int(max_buflen)

        self._open_lock = threading.RLock()
        self._inlet: pylsl.StreamInlet | None = None
        self._description: StreamDescription | None = None
        self._opened_stream = False
        self._thread: threading.Thread | None = None
        self._stop_evt = threading.Event()
        self._state = StreamState.STOPPED
        self._state_listeners: list[StateListener] = []
        self._counters = InletCounters()
        #: liblsl's latest clock offset of the source (seconds to add to its stamps to get this
        #: machine's clock; what LabRecorder stores as ClockOffset), read every few seconds while
        #: data flows; None before the first estimate.
        self.clock_offset: float | None = None
        #: (local time, offset, uncertainty) of the latest clock-offset reads
        self._clock_history: collections.deque[tuple[float, float, float]] = collections.deque(
            maxlen=CLOCK_HISTORY)
        self._next_clock = 0.0
        self._error: BaseException | None = None
        self._cond = threading.Condition()
        # loss bookkeeping (pull thread only)
        self._last_data = 0.0
        self._lost_since = 0.0
        self._recovered_at = 0.0
        self._next_reresolve = 0.0
        self._candidate_seen: dict[str, float] = {}
        self._rejected_uids: set[str] = set()

        if isinstance(source, pylsl.StreamInfo):
            self._check_format(StreamDescription.from_info(source))

    # ------------------------------------------------------------------ opening
    def _resolve_source(self) -> pylsl.StreamInfo:
        src = self._source
        if isinstance(src, pylsl.StreamInfo):
            return src
        if isinstance(src, StreamDescription):
            return resolve_stream(
                name=src.name, source_id=src.source_id or None, timeout=self.resolve_timeout
            )
        return resolve_stream(name=src, timeout=self.resolve_timeout)

    def _make_inlet(self, info: pylsl.StreamInfo) -> tuple[pylsl.StreamInlet, StreamDescription]:
        """A pylsl inlet on ``info`` and the full description; raises AcquisitionError."""
        try:
            inlet = pylsl.StreamInlet(
                info,
                max_buflen=self._max_buflen,
                max_chunklen=0,
                recover=self._recover,
                processing_flags=self._flags,
            )
            full = inlet.info(timeout=self.resolve_timeout)
        except (LostError, LSLTimeoutError, RuntimeError) as exc:
            raise AcquisitionError(
                f"could not open LSL stream {info.name()!r} (source_id={info.source_id()!r}): "
                f"{exc}"
            ) from exc
        desc = StreamDescription.from_info(full)
        self._check_format(desc)
        return inlet, desc

    def _check_format(self, desc: StreamDescription) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _ensure_inlet(self) -> None:
        """Resolve the source and create the liblsl inlet (once); reads the full description."""
        with self._open_lock:
            if self._inlet is not None:
                return
            info = self._resolve_source()
            self._inlet, desc = self._make_inlet(info)
            self._set_description(desc)

    def _set_description(self, desc: StreamDescription) -> None:
        self._description = desc

    def _open_stream(self) -> None:
        try:
            self._inlet.open_stream(timeout=self.resolve_timeout)
        except (LostError, LSLTimeoutError) as exc:
            raise AcquisitionError(
                f"LSL stream {self._description.name!r} did not accept the connection within "
                f"{self.resolve_timeout:g} s: {exc}"
            ) from exc

    def _take_inlet(self) -> list:
        """Detach the liblsl inlet; returns ``[inlet]`` (or ``[]``) for :func:`_dispose`."""
        with self._open_lock:
            box = [] if self._inlet is None else [self._inlet]
            self._inlet = None
        return box

    @property
    def description(self) -> StreamDescription:
        """The stream's full description (resolves and connects on first access)."""
        if self._description is None:
            self._ensure_inlet()
        return self._description

    # ------------------------------------------------------------------ life cycle
    def start(self) -> _BaseInlet:
        """Resolve, connect and start the pull thread. Returns ``self``.

        Raises
        ------
        StreamNotFoundError
            The source (a name) is not on the network.
        AcquisitionError
            The stream cannot be opened or has the wrong format for this inlet.
        """
        if self._thread is not None and self._thread.is_alive():
            raise AcquisitionError(f"{self._kind} inlet on {_describe_source(self._source)} is already running")
        self._stop_evt.clear()
        self._set_state(StreamState.CONNECTING)
        try:
            self._ensure_inlet()
            self._open_stream()
        except BaseException:
            self._set_state(StreamState.STOPPED)
            raise
        self._last_data = time.monotonic()
        self._set_state(StreamState.CONNECTED)
        self._thread = threading.Thread(
            target=self._run, name=f"neurodeck-{self._kind}-inlet-{self._description.name}", daemon=True
        )
        self._thread.start()
        logger.info("%s inlet started on %s", self._kind, self._description)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the pull thread and disconnect. Idempotent."""
        self._stop_evt.set()
        th = self._thread
        if th is not None and th is not threading.current_thread():
            th.join(timeout)
            if th.is_alive():
                logger.error("%s inlet thread did not stop within %.1f s", self._kind, timeout)
        self._thread = None
        _dispose(self._take_inlet())
        if self._state is not StreamState.STOPPED:
            self._set_state(StreamState.STOPPED)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        """True while the pull thread runs."""
        return self._thread is not None and self._thread.is_alive()

    # ------------------------------------------------------------------ state, errors
    @property
    def state(self) -> StreamState:
        return self._state

    @property
    def error(self) -> BaseException | None:
        """Last exception from the background thread or a listener (None if none)."""
        return self._error

    @property
    def counters(self) -> InletCounters:
        """A snapshot copy of the counters."""
        return dataclasses.replace(self._counters)

    def add_state_listener(self, fn: StateListener) -> None:
        """Call ``fn(old, new)`` on every state change (on the thread that made the change)."""
        self._state_listeners.append(fn)

    def remove_state_listener(self, fn: StateListener) -> None:
        self._state_listeners.remove(fn)

    def _set_state(self, new: StreamState) -> None:
        old = self._state
        if old is new:
            return
        self._state = new
        level = logging.WARNING if new in (StreamState.LOST, StreamState.STALLED) else logging.INFO
        note = ""
        if new is StreamState.STALLED and self._counters.samples_received == 0:
            # a source that has not started sending (an amplifier not yet acquiring, a replay
            # not yet started): the state says it, the log need not alarm
            level, note = logging.INFO, " (no data yet)"
        name = self._description.name if self._description else _describe_source(self._source)
        logger.log(level, "%s inlet %r: %s -> %s%s", self._kind, name, old.value, new.value, note)
        for fn in list(self._state_listeners):
            self._call_listener(fn, old, new)

    def _call_listener(self, fn, *args) -> None:
        try:
            fn(*args)
        except Exception as exc:  # noqa: BLE001 - listeners must never kill the pull thread
            self._error = exc
            logger.exception("listener %r raised (ignored, stored in .error)", fn)

    # ------------------------------------------------------------------ the thread
    def _wait_for_count(self, n: int, timeout: float) -> bool:
        """Block until the received count (samples or markers) reaches ``n``; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._counters.samples_received < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def _pull(self) -> int:  # pragma: no cover - abstract
        """Pull what is available; return how many samples came in."""
        raise NotImplementedError

    def _on_idle(self, now: float) -> None:
        """No data this round (state bookkeeping)."""

    def _on_stopping(self) -> None:
        """Hook on the pull thread after a stop request, before it ends."""

    @property
    def last_data_at(self) -> float:
        """``time.monotonic()`` of the last pull that brought data (delivered or held back)."""
        return self._last_data

    def _final_pull(self) -> None:
        """On stop: deliver what liblsl already holds for us (nothing received is dropped)."""
        inlet = self._inlet
        if inlet is None:
            return
        try:
            left = int(inlet.samples_available())
        except Exception:  # noqa: BLE001 - a lost stream: nothing to take
            return
        while left > 0:
            try:
                n = self._pull()
            except LostError:
                return
            if not n:
                return
            self._last_data = time.monotonic()
            left -= n

    def _run(self) -> None:
        try:
            while not self._stop_evt.is_set():
                try:
                    n = self._pull()
                except LostError:
                    self._on_lost_error()
                    continue
                now = time.monotonic()
                if n:
                    self._last_data = now
                    self._on_data(now)
                else:
                    self._on_idle(now)
                    if self._state is StreamState.LOST:
                        self._maybe_reresolve(now)
                    if self._inlet is None:  # otherwise the pull itself waited for data
                        self._stop_evt.wait(self.poll_interval)
            self._final_pull()
            self._on_stopping()
        except Exception as exc:  # noqa: BLE001 - surfaced through .error and the log
            self._error = exc
            logger.exception("%s inlet thread crashed; stopping", self._kind)
            self._set_state(StreamState.STOPPED)

    def _read_clock_offset(self, now: float) -> None:
        """Refresh :attr:`clock_offset` from liblsl (every ``CLOCK_EVERY_S`` while data flows)."""
        if now < self._next_clock or self._inlet is None:
            return
        self._next_clock = now + CLOCK_EVERY_S
        if self._sample_clock() is None:
            self._next_clock = now + 0.5

    def _sample_clock(self) -> tuple[float, float] | None:
        """Read liblsl's clock offset and its uncertainty now (history, :attr:`clock_offset`)."""
        try:
            offset, unc = _time_correction_ex(self._inlet, 0.0)
        except Exception as exc:  # noqa: BLE001 - no estimate yet (timeout) or a lost stream
            logger.debug("%s inlet: no clock offset yet (%s)", self._kind, exc)
            return None
        self.clock_offset = offset
        self._clock_history.append((pylsl.local_clock(), offset, unc))
        return offset, unc

    @property
    def clock_uncertainty(self) -> float | None:
        """Seconds the clock offset may be off: liblsl's own uncertainty of its latest estimate
        (half the probe's round trip), or the spread of the last ``CLOCK_HISTORY`` estimates if
        larger; None before the first estimate."""
        hist = list(self._clock_history)
        if not hist:
            return None
        offsets = [h[1] for h in hist]
        return max(hist[-1][2], max(offsets) - min(offsets))

    def _on_data(self, now: float) -> None:
        state = self._state
        if state is StreamState.LOST:
            self._counters.reconnects += 1
            self._recovered_at = now
            self._candidate_seen.clear()
            self._set_state(StreamState.RECOVERED)
        elif state is StreamState.STALLED or state is StreamState.CONNECTING:
            self._set_state(StreamState.CONNECTED)
        elif state is StreamState.RECOVERED and now - self._recovered_at >= self.recovered_hold:
            self._set_state(StreamState.CONNECTED)
        self._read_clock_offset(now)  # after the state: waiters see CONNECTED first

    def _go_lost(self, now: float) -> None:
        if self._state is not StreamState.LOST:
            self._lost_since = now
            self._next_reresolve = now
            self._set_state(StreamState.LOST)

    def _on_lost_error(self) -> None:
        """liblsl says the source is gone and it will not recover it by itself."""
        now = time.monotonic()
        self._go_lost(now)
        _dispose(self._take_inlet())

    def _maybe_reresolve(self, now: float) -> None:
        """While LOST: look for an outlet with our name and adopt it (see module docstring)."""
        if not (self.follow_name or self._inlet is None) or now < self._next_reresolve:
            return
        self._next_reresolve = now + self.reresolve_interval
        desc = self._description
        try:
            if self.follow_name:
                found = find_streams(name=desc.name, timeout=0.2)
            else:  # our inlet is dead (liblsl gave up): only the same source id may replace it
                found = find_streams(name=desc.name, source_id=desc.source_id, timeout=0.2)
        except Exception:  # noqa: BLE001
            logger.debug("re-resolve failed", exc_info=True)
            return
        for info in found:  # newest first
            uid = info.uid()
            if uid == desc.uid or uid in self._rejected_uids:
                continue
            same_source = bool(desc.source_id) and info.source_id() == desc.source_id
            if same_source and self._inlet is not None and self._recover:
                # liblsl reconnects to the same source id by itself; give it switch_after s.
                first = self._candidate_seen.setdefault(uid, now)
                if now - first < self.switch_after:
                    continue
            self._switch_to(info)
            return

    def _switch_to(self, info: pylsl.StreamInfo) -> None:
        old = self._description
        try:
            inlet, desc = self._make_inlet(info)
            self._check_compatible(old, desc)
            inlet.open_stream(timeout=self.resolve_timeout)
        except (AcquisitionError, LostError, LSLTimeoutError) as exc:
            self._rejected_uids.add(info.uid())
            err = AcquisitionError(f"not switching {old.name!r} to a new outlet: {exc}")
            self._error = err
            logger.error("%s", err)
            return
        logger.warning(
            "%s inlet %r: adopting outlet uid=%s source_id=%r (was uid=%s source_id=%r)",
            self._kind, old.name, desc.uid, desc.source_id, old.uid, old.source_id,
        )
        with self._open_lock:
            old = self._take_inlet()
            self._inlet = inlet
            self._description = desc
        del inlet
        _dispose(old)
        self._on_switched()

    def _on_switched(self) -> None:
        """Hook after adopting a new outlet."""
        self.clock_offset = None  # a new source, its own clock
        self._clock_history.clear()
        self._next_clock = 0.0

    def _check_compatible(self, old: StreamDescription, new: StreamDescription) -> None:
        if (new.n_channels, new.channel_format, new.srate) != (old.n_channels, old.channel_format, old.srate):
            raise AcquisitionError(
                f"outlet {new} differs from the original {old}; expected the same channel count, "
                "format and rate"
            )


class Inlet(_BaseInlet):
    """Threaded inlet for one numeric LSL stream, with a ring buffer and loss counters.

    Parameters
    ----------
    source : pylsl.StreamInfo or StreamDescription or str
        A resolve result, a description (resolved by name + source id), or a stream name.
    buffer_seconds : float
        Ring-buffer length in seconds (irregular-rate streams: ``buffer_seconds * 100`` samples).
    dejitter : bool
        Smooth timestamps of regular-rate streams (liblsl ``proc_dejitter``).
    stall_after, lost_after : float
        Seconds without data before ``STALLED`` / ``LOST`` (regular-rate streams only: for an
        irregular-rate numeric stream, e.g. decisions, silence is normal and only a loss that
        liblsl reports, i.e. a source without source id, gives ``LOST``).
    max_chunk : int, optional
        Most samples per pull (default: half a second of data, at least 32).
    gap_tolerance : float
        Seconds of timestamp jitter tolerated before a gap is counted.
    monotonize : bool
        Force monotonically increasing timestamps (liblsl ``proc_monotonize``).
    **kwargs
        ``resolve_timeout``, ``follow_name``, ``reresolve_interval``, ``switch_after``,
        ``recovered_hold``: see the module docstring. ``poll_interval``: longest wait (s) of one
        pull for data (data wake the thread at once; this paces the state checks while none
        come, and the retries while no outlet is open).

    Notes
    -----
    Chunk listeners run on the pull thread and receive, for *every* chunk in order, read-only
    ``data`` of shape (n_samples, n_channels) (a fresh copy they may keep) and ``timestamps`` of
    shape (n_samples,) on the local clock. They must be quick (queue the work elsewhere); an
    exception is logged, stored in :attr:`error`, and the thread goes on.
    """

    _kind = "data"

    def __init__(
        self,
        source: pylsl.StreamInfo | StreamDescription | str,
        buffer_seconds: float = 30.0,
        *,
        dejitter: bool = False,
        stall_after: float = 0.5,
        lost_after: float = 2.0,
        max_chunk: int | None = None,
        gap_tolerance: float = 0.02,
        monotonize: bool = False,
        **kwargs,
    ):
        if not buffer_seconds > 0:
            raise AcquisitionError(f"buffer_seconds={buffer_seconds!r} invalid; expected > 0")
        if not 0 < stall_after <= lost_after:
            raise AcquisitionError(
                f"stall_after={stall_after!r}, lost_after={lost_after!r} invalid; "
                "expected 0 < stall_after <= lost_after"
            )
        if max_chunk is not None and int(max_chunk) < 1:
            raise AcquisitionError(f"max_chunk={max_chunk!r} invalid; expected >= 1 or None")
        if gap_tolerance < 0:
            raise AcquisitionError(f"gap_tolerance={gap_tolerance!r} invalid; expected >= 0 s")
        flags = pylsl.proc_clocksync
        if dejitter:
            flags |= pylsl.proc_dejitter
        if monotonize:
            flags |= pylsl.proc_monotonize
        self.buffer_seconds = float(buffer_seconds)
        self.dejitter = bool(dejitter)
        self.stall_after = float(stall_after)
        self.lost_after = float(lost_after)
        self.max_chunk = None if max_chunk is None else int(max_chunk)
        self.gap_tolerance = float(gap_tolerance)
        self._buffer: RingBuffer | None = None
        self._scratch: np.ndarray | None = None
        self._chunk_listeners: list[ChunkListener] = []
        self._last_ts: float | None = None
        self._staged: tuple[np.ndarray, np.ndarray] | None = None
        self._stamps_as_sent = False  # this connection's stamps are not on our clock: no repair
        self._ahead: list | None = None
        self._lead_doubted = False
        super().__init__(source, processing_flags=flags, **kwargs)

    # ------------------------------------------------------------------ setup
    def _check_format(self, desc: StreamDescription) -> None:
        if not desc.is_numeric:
            raise AcquisitionError(
                f"stream {desc.name!r} has channel format {desc.channel_format!r}; Inlet reads "
                "numeric streams only (float32, double64, int*): use MarkerInlet for string markers"
            )

    def _set_description(self, desc: StreamDescription) -> None:
        super()._set_description(desc)
        if self._buffer is None:
            srate = desc.srate
            capacity = max(1, math.ceil(self.buffer_seconds * (srate if srate > 0 else 100.0)))
            dtype = np.dtype(pylsl.inlet.fmt2npdtype[_FORMAT_CONST[desc.channel_format]])
            self._buffer = RingBuffer(desc.n_channels, capacity, dtype=dtype)
            chunk = self.max_chunk or max(32, int(round(0.5 * srate)))
            self._max_chunk_eff = chunk
            self._scratch = np.empty((chunk, desc.n_channels), dtype=dtype)

    @property
    def buffer(self) -> RingBuffer:
        """The ring buffer (created on first access / start)."""
        if self._buffer is None:
            self._ensure_inlet()
        return self._buffer

    # ------------------------------------------------------------------ data access
    def latest(self, n_samples: int) -> tuple[np.ndarray, np.ndarray]:
        """Copy of the newest samples: data (n_channels, n_samples), timestamps (n_samples,).

        Raises :class:`~acquisition.buffer.BufferOverrunError` if fewer were received.
        """
        return self.buffer.latest(n_samples)

    @property
    def n_received(self) -> int:
        """Samples received since start (the absolute index of the next sample)."""
        return self._counters.samples_received

    @property
    def counters(self) -> InletCounters:
        c = dataclasses.replace(self._counters)
        if self._buffer is not None:
            c.overruns = self._buffer.n_overruns
        return c

    def wait_for_samples(self, n: int, timeout: float) -> bool:
        """Block until :attr:`n_received` >= ``n`` (a total, not "n more"); False on timeout."""
        return self._wait_for_count(n, timeout)

    def add_chunk_listener(self, fn: ChunkListener) -> None:
        """Call ``fn(data (n, n_channels), timestamps (n,))`` for every chunk, in order."""
        self._chunk_listeners.append(fn)

    def remove_chunk_listener(self, fn: ChunkListener) -> None:
        self._chunk_listeners.remove(fn)

    # ------------------------------------------------------------------ the thread
    def _pull(self) -> int:
        inlet = self._inlet
        if inlet is None:  # lost for good; wait for a re-resolve
            return 0
        scratch = self._scratch
        # wait (inside liblsl, GIL released) for one sample, then take what is already there
        try:
            _, ts = inlet.pull_chunk(timeout=self.poll_interval, max_samples=1, dest_obj=scratch,
                                     as_numpy=True)
        except LSLTimeoutError:  # liblsl reports a timed-out wait while it recovers the
            return 0  # connection: no data this round (it crashed the pull thread before)
        if len(ts) == 0:
            return 0
        if len(scratch) > 1:
            try:
                _, more = inlet.pull_chunk(timeout=0.0, max_samples=len(scratch) - 1,
                                           dest_obj=scratch[1:], as_numpy=True)
            except LostError:  # lost between the two pulls: deliver the sample already taken;
                more = ()  # the next pull reports the loss
            if len(more):
                ts = np.concatenate((ts, more))
        n = len(ts)
        data = scratch[:n]
        if self._description.srate > 0 and not self._stamps_as_sent:
            data, ts = self._repair_timestamps(data, ts)
            if len(ts) == 0:
                return n  # data flow (for the state), but held back until a trustworthy timestamp
        self._check_lead(float(ts[-1]))
        self._deliver(data, ts)
        return n

    @property
    def stamp_lead(self) -> float:
        """Seconds the source's stamps run ahead of their receipt (``counters.stamp_lead_s``)."""
        return self._counters.stamp_lead_s

    def _check_lead(self, last_ts: float) -> None:
        """Track how far a chunk's last stamp is ahead of its receipt (see ``stamp_lead_s``)."""
        now = pylsl.local_clock()
        lead = last_ts - now
        c = self._counters
        if lead <= LEAD_REPORT_S:  # arrived after its stamp: any run of leads ends
            self._ahead = None
            return
        if c.stamp_lead_s > 0.0:  # established: latency is corrected by the largest lead
            c.stamp_lead_s = max(c.stamp_lead_s, lead)
            return
        run = self._ahead
        if run is None:
            run = self._ahead = [now, 0, lead, lead]  # since, chunks, smallest, largest lead
        run[1] += 1
        run[2], run[3] = min(run[2], lead), max(run[3], lead)
        if run[1] < LEAD_PERSIST_CHUNKS or now - run[0] < LEAD_PERSIST_S:
            return
        self._sample_clock()
        unc = self.clock_uncertainty
        if unc is None:  # no clock estimate yet: wait for one (a few seconds at most)
            if now - run[0] < 5.0:
                return
            unc = 0.0
        if run[2] <= LEAD_REPORT_S + unc:
            if not self._lead_doubted:
                self._lead_doubted = True
                logger.info(
                    "inlet %r: timestamps ran %.1f-%.1f ms ahead of their arrival for %.1f s, "
                    "within liblsl's clock-offset uncertainty (%.1f ms; a loaded machine?): not "
                    "taken as a stamping error", self._description.name, run[2] * 1e3,
                    run[3] * 1e3, now - run[0], unc * 1e3,
                )
            self._ahead = None  # judge the next run afresh (with the clock's next estimate)
            return
        c.stamp_lead_s = run[3]
        logger.warning(
            "inlet %r: timestamps run %.1f-%.1f ms ahead of their arrival (%d chunks in a row, "
            "clock-offset uncertainty %.1f ms): the source stamps ahead of time, e.g. a chunk's "
            "last sample with a future time; decision latency is measured from stamps corrected "
            "by the largest lead seen",
            self._description.name, run[2] * 1e3, run[3] * 1e3, run[1], unc * 1e3,
        )

    def _repair_timestamps(self, data: np.ndarray, ts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Fix timestamps liblsl deduced from zero right after a (re)connection.

        liblsl sends only the first sample of a pushed chunk with its timestamp; the others are
        "deduced" by the receiver as previous + 1/srate. When a connection (first or recovered)
        starts in the middle of a chunk, the previous timestamp is 0, so the first samples are
        stamped ~0.01, 0.02, ... s (measured here; it made a 2500-s fake gap after a recovery).
        Such implausibly old stamps are re-derived from the next trustworthy one at the nominal
        rate; samples whose next trustworthy stamp has not arrived yet are held back (copies) until
        it does. Counted in ``counters.timestamps_repaired``. If none arrives within one second of
        samples (``2 * max_chunk``), the source stamps with a clock of its own (a device clock from
        0 or 100 s): the held samples are delivered as stamped and so is the rest of this
        connection.
        """
        now = pylsl.local_clock()
        floor = max(now - self._max_buflen - 60.0, min(10.0, now - 1.0))
        bad = ts < floor
        staged = self._staged
        if staged is None and not bad.any():
            return data, ts
        if staged is not None:
            data = np.concatenate([staged[0], data])
            ts = np.concatenate([staged[1], ts])
            bad = np.concatenate([np.ones(len(staged[1]), dtype=bool), bad])
            self._staged = None
        good = np.flatnonzero(~bad)
        if good.size == 0:
            if len(ts) >= 2 * self._max_chunk_eff:  # never trustworthy: a clock of its own
                logger.warning(
                    "inlet %r: timestamps are not on this machine's LSL clock (%.3f s, local clock "
                    "%.3f s; a device clock?); taking them as sent for this connection",
                    self._description.name, float(ts[0]), now,
                )
                self._stamps_as_sent = True
                return data, ts
            self._staged = (np.array(data, copy=True), np.array(ts, copy=True))
            return data[:0], ts[:0]
        last = good[-1]
        if last + 1 < len(ts):  # a bad tail: hold it back for the next pull
            self._staged = (np.array(data[last + 1 :], copy=True), np.array(ts[last + 1 :], copy=True))
            data, ts, bad = data[: last + 1], ts[: last + 1], bad[: last + 1]
        idx = np.flatnonzero(bad)
        if idx.size:
            ts = np.array(ts, copy=True)
            nxt = good[np.searchsorted(good, idx)]
            ts[idx] = ts[nxt] - (nxt - idx) / self._description.srate
            self._counters.timestamps_repaired += int(idx.size)
            logger.warning(
                "inlet %r: re-derived %d timestamp(s) that liblsl deduced from 0 after a (re)connection",
                self._description.name, int(idx.size),
            )
        return data, ts

    def _deliver(self, data: np.ndarray, ts: np.ndarray) -> None:
        """Ring buffer, counters, chunk listeners, waiters: every chunk, in order."""
        self._buffer.write(data, ts)
        self._count(ts)
        if self._chunk_listeners:
            chunk = data.copy()
            chunk.flags.writeable = False
            ts = ts.copy()
            ts.flags.writeable = False
            for fn in list(self._chunk_listeners):
                self._call_listener(fn, chunk, ts)
        with self._cond:
            self._cond.notify_all()

    def _count(self, ts: np.ndarray) -> None:
        c = self._counters
        n = len(ts)
        srate = self._description.srate
        if srate > 0:
            if self._last_ts is not None:
                d = np.diff(ts, prepend=self._last_ts)
            else:
                d = np.diff(ts)
            big = d > (1.0 / srate + self.gap_tolerance)
            if big.any():
                jumps = d[big]
                missing = int(np.sum(np.maximum(np.rint(jumps * srate) - 1, 0)))
                c.gaps += int(big.sum())
                c.samples_missing += missing
                logger.warning(
                    "inlet %r: %d gap(s) in timestamps, ~%d samples missing (largest %.3f s)",
                    self._description.name, int(big.sum()), missing, float(jumps.max()),
                )
        self._last_ts = float(ts[-1])
        c.chunks += 1
        c.samples_received += n

    def _on_idle(self, now: float) -> None:
        silence = now - self._last_data
        state = self._state
        if self._description.srate <= 0:  # irregular: silence is normal, only liblsl says "lost"
            if state is StreamState.RECOVERED and now - self._recovered_at >= self.recovered_hold:
                self._set_state(StreamState.CONNECTED)
            return
        if silence >= self.lost_after:
            self._go_lost(now)
        elif silence >= self.stall_after and state in (StreamState.CONNECTED, StreamState.RECOVERED):
            self._set_state(StreamState.STALLED)
        elif state is StreamState.RECOVERED and now - self._recovered_at >= self.recovered_hold:
            self._set_state(StreamState.CONNECTED)

    def _on_stopping(self) -> None:
        self._flush_held()

    def _flush_held(self) -> None:
        """Deliver samples still held for a trustworthy timestamp (the inlet stops)."""
        staged, self._staged = self._staged, None
        if staged is not None and len(staged[1]):
            logger.warning("inlet %r: delivering %d held sample(s) with the timestamps they were sent with",
                           self._description.name, len(staged[1]))
            self._deliver(*staged)

    def _on_switched(self) -> None:
        self._flush_held()
        self._stamps_as_sent = False
        self._counters.stamp_lead_s = 0.0  # a new source: its own stamping
        self._ahead = None
        super()._on_switched()

    def start(self) -> Inlet:
        self._last_ts = None
        self._staged = None
        self._stamps_as_sent = False
        self._ahead: list | None = None  # the current run of chunks ahead of their stamps
        self._lead_doubted = False  # a run within the clock's uncertainty was logged
        return super().start()


_FORMAT_CONST = {
    "float32": pylsl.cf_float32,
    "double64": pylsl.cf_double64,
    "int32": pylsl.cf_int32,
    "int16": pylsl.cf_int16,
    "int8": pylsl.cf_int8,
    "int64": pylsl.cf_int64,
    "string": pylsl.cf_string,
}


class MarkerInlet(_BaseInlet):
    """Threaded inlet for a string (or integer) marker stream.

    Markers are kept until :meth:`drain` and passed to marker listeners as
    ``fn(timestamp, label)`` (local-clock timestamp, label as str) on the pull thread, every marker
    in order. For multi-channel marker streams the label is the channel values joined by ``"|"``.

    The liblsl inlet is opened with ``recover=False`` so a broken connection is reported at once
    (``LOST``); the inlet then re-resolves by source id / name (see the module docstring) and
    reconnects (``RECOVERED``, then ``CONNECTED``). Markers sent while no outlet is connected
    cannot be received.

    Parameters
    ----------
    source : pylsl.StreamInfo or StreamDescription or str
        As for :class:`Inlet`.
    max_chunk : int
        Most markers per pull.
    max_pending : int
        Most markers kept for :meth:`drain` (the oldest go first; listeners see all).
    **kwargs
        As for :class:`Inlet` (``resolve_timeout``, ``follow_name``, ...).
    """

    _recover = False
    _kind = "marker"

    def __init__(
        self,
        source: pylsl.StreamInfo | StreamDescription | str,
        *,
        max_chunk: int = 1024,
        max_pending: int = 100_000,
        **kwargs,
    ):
        self.max_chunk = int(max_chunk)
        # kept until drain(); bounded so a listener-only user (the recorder) never grows memory
        self._pending: collections.deque[tuple[float, str]] = collections.deque(maxlen=max_pending)
        self._marker_listeners: list[MarkerListener] = []
        super().__init__(source, processing_flags=pylsl.proc_clocksync, **kwargs)

    def _check_format(self, desc: StreamDescription) -> None:
        if desc.channel_format not in _MARKER_FORMATS:
            raise AcquisitionError(
                f"stream {desc.name!r} has channel format {desc.channel_format!r}; MarkerInlet "
                f"reads {', '.join(_MARKER_FORMATS)} markers: use Inlet for float streams"
            )

    def _check_compatible(self, old: StreamDescription, new: StreamDescription) -> None:
        if (new.n_channels, new.channel_format) != (old.n_channels, old.channel_format):
            raise AcquisitionError(
                f"outlet {new} differs from the original {old}; expected the same channel count "
                "and format"
            )

    def _on_switched(self) -> None:
        now = time.monotonic()
        self._counters.reconnects += 1
        self._recovered_at = now
        self._candidate_seen.clear()
        self._set_state(StreamState.RECOVERED)

    def _on_data(self, now: float) -> None:
        self._on_idle(now)
        self._read_clock_offset(now)

    def _on_idle(self, now: float) -> None:
        if self._state is StreamState.RECOVERED and now - self._recovered_at >= self.recovered_hold:
            self._set_state(StreamState.CONNECTED)

    @property
    def n_markers(self) -> int:
        """Markers received since start."""
        return self._counters.samples_received

    def add_marker_listener(self, fn: MarkerListener) -> None:
        """Call ``fn(timestamp, label)`` for every marker, in order, on the pull thread."""
        self._marker_listeners.append(fn)

    def remove_marker_listener(self, fn: MarkerListener) -> None:
        self._marker_listeners.remove(fn)

    def drain(self) -> list[tuple[float, str]]:
        """Markers received since the last drain: ``[(local-clock timestamp, label), ...]``."""
        out = []
        pending = self._pending
        while pending:
            out.append(pending.popleft())
        return out

    def wait_for_markers(self, n: int, timeout: float) -> bool:
        """Block until :attr:`n_markers` >= ``n`` (a total); False on timeout."""
        return self._wait_for_count(n, timeout)

    def _pull(self) -> int:
        inlet = self._inlet
        if inlet is None:
            return 0
        samples, ts = inlet.pull_chunk(timeout=self.poll_interval, max_samples=1)
        if ts and self.max_chunk > 1:  # woken by one marker: take the others already there
            more, more_ts = inlet.pull_chunk(timeout=0.0, max_samples=self.max_chunk - 1)
            samples, ts = samples + more, ts + more_ts
        n = len(ts)
        if n == 0:
            return 0
        single = self._description.n_channels == 1
        c = self._counters
        for sample, t in zip(samples, ts, strict=True):
            label = str(sample[0]) if single else "|".join(map(str, sample))
            item = (float(t), label)
            self._pending.append(item)
            for fn in list(self._marker_listeners):
                self._call_listener(fn, *item)
        c.chunks += 1
        c.samples_received += n
        with self._cond:
            self._cond.notify_all()
        return n
