"""Crash-safe multi-stream LSL recorder.

A :class:`Recorder` records several LSL streams at once (EEG, markers, further numeric streams).
While it runs, everything goes to an append-only *partial folder* ``<out>.partial/`` (see
:mod:`neurodeck.acquisition.partial`).

Listeners on the inlets' pull threads only put chunks on a queue; one writer thread appends them
and flushes + fsyncs every ``flush_every`` seconds, so a hard kill loses at most that much (plus
what liblsl had not yet delivered). :meth:`Recorder.stop` drains the inlets, closes the files and
*finalizes* (:mod:`neurodeck.acquisition.finalize`): the main EEG stream becomes ``<out>`` (a FIF
file), a JSON sidecar ``<out stem>.json`` holds the stream metadata, and every other numeric
stream goes to ``<out stem>.<stream>.npz``. :func:`~neurodeck.acquisition.finalize.recover`
finalizes a partial folder left behind by a crash the same way.

Errors (unwritable folder, disk full, ...) raise :class:`~acquisition.errors.RecordingError`;
background write errors are stored in :attr:`Recorder.error` and raised by :meth:`Recorder.stop`;
whatever was already flushed stays in the partial folder for ``recover``.
"""
from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import json
import logging
import queue
import shutil
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from neurodeck.acquisition.errors import RecordingError
from neurodeck.acquisition.finalize import check_outputs_free, finalize_partial, output_files
from neurodeck.acquisition.partial import (
    META_FILE,
    PartialStore,
    _oserror,
    _write_json_atomic,
    partial_dir_for,
)
from neurodeck.acquisition.stream_meta import _MARKER_INT_FORMATS, _disk_dtype, describe

logger = logging.getLogger(__name__)

_STOP = object()


@dataclasses.dataclass(frozen=True)
class StreamCounters:
    """What has been received from and written for one stream."""

    name: str
    kind: str  # "numeric" or "marker"
    received: int
    written: int
    state: str
    last_timestamp: float | None
    error: str | None = None  # the inlet's background error, if any


@dataclasses.dataclass(frozen=True)
class RecorderStatus:
    """A snapshot of a running recorder."""

    state: str  # idle, recording, stopping, finalizing, done, error
    elapsed: float
    streams: tuple[StreamCounters, ...]
    backlog: int
    error: str | None

    def line(self) -> str:
        parts = [f"{self.state} {self.elapsed:7.1f}s"]
        for s in self.streams:
            what = "markers" if s.kind == "marker" else "samples"
            parts.append(f"{s.name}: {s.written} {what} ({s.state.lower()})")
            if s.error:
                parts.append(f"{s.name} inlet error: {s.error}")
        if self.error:
            parts.append(f"ERROR: {self.error}")
        return " | ".join(parts)


class _Slot:
    """Per-stream runtime bookkeeping (inlet, counters)."""

    def __init__(self, key: str, source: Any):
        self.key = key
        self.source = source
        self.inlet: Any = None
        self.desc: dict = {}
        self.received = 0
        self.written = 0
        self.state = "IDLE"
        self.last_ts: float | None = None
        self.last_arrival = 0.0  # time.monotonic() of the last delivered chunk / marker
        self.lag_min = float("inf")  # smallest (local clock at arrival - timestamp), seconds
        self.clock_offset: float | None = None  # liblsl time_correction at start, seconds


class Recorder:
    """Record several LSL streams at once, crash-safely, into a FIF file + JSON sidecar.

    Parameters
    ----------
    sources : list of pylsl.StreamInfo or str
        Streams to record; strings are stream names resolved on the network (use unique names).
        String-format streams are recorded as markers; numeric streams as samples. The first
        regular-rate stream of type EEG (else the first regular-rate numeric stream) becomes the
        FIF file; other numeric streams are saved as ``<stem>.<name>.npz``.
    out : Path
        Output FIF path (``.fif`` is appended if missing).
    flush_every : float
        Seconds between flush + fsync of the partial files (> 0).
    resolve_timeout : float
        Seconds to wait for each named stream.
    drain_quiet : float
        On stop, a regular-rate stream is drained once its last timestamp reaches the stop time;
        a stream whose source stopped sending, and a marker stream, once nothing arrived for
        ``drain_quiet`` seconds (so :meth:`stop` takes about that long with a marker stream).
    drain_timeout : float
        Upper bound of the final drain, seconds.
    overwrite : bool
        Allow replacing an existing ``out``.
    xdf : bool
        Also write every stream to ``<out stem>.xdf`` (LabRecorder's format: stream headers,
        samples on the source clock, clock offsets, footers), at finalize or ``recover``.

    Examples
    --------
    >>> with Recorder(["MyEEG", "MyMarkers"], Path("run1_raw.fif")) as rec:  # doctest: +SKIP
    ...     time.sleep(60)
    >>> rec.path  # doctest: +SKIP
    """

    def __init__(self, sources: Sequence[Any], out: Path | str, *, flush_every: float = 0.5,
                 resolve_timeout: float = 5.0, drain_quiet: float = 1.0, drain_timeout: float = 5.0,
                 overwrite: bool = False, xdf: bool = False):
        if isinstance(sources, str | bytes) or not isinstance(sources, Sequence) or not sources:
            raise RecordingError(f"sources {sources!r} invalid; expected a non-empty list of stream names or StreamInfo")
        if not (flush_every > 0):
            raise RecordingError(f"flush_every={flush_every!r} invalid; expected seconds > 0")
        out = Path(out)
        if not out.name.endswith((".fif", ".fif.gz")):
            out = out.with_name(out.name + ".fif")
        self.out = out
        self.partial_dir = partial_dir_for(out)
        self.flush_every = float(flush_every)
        self.resolve_timeout = float(resolve_timeout)
        self.drain_quiet = float(drain_quiet)
        self.drain_timeout = float(drain_timeout)
        self.overwrite = bool(overwrite)
        self.xdf = bool(xdf)
        self.path: Path | None = None
        self._slots = [_Slot(f"s{i}", src) for i, src in enumerate(sources)]
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._store: PartialStore | None = None
        self._writer: threading.Thread | None = None
        self._lock = threading.Lock()
        self._state = "idle"
        self._error: RecordingError | None = None
        self._t_start = 0.0
        self._dropped = 0

    # -- public API -----------------------------------------------------------------------
    @property
    def error(self) -> RecordingError | None:
        """The first background error (write failure), or ``None``."""
        return self._error

    @property
    def state(self) -> str:
        return self._state

    @property
    def counters(self) -> dict[str, dict[str, int]]:
        """Per stream name: ``{"received": n, "written": n}`` (samples or markers)."""
        return {s.desc.get("name", s.key): {"received": s.received, "written": s.written}
                for s in self._slots}

    @property
    def status(self) -> RecorderStatus:
        el = time.monotonic() - self._t_start if self._t_start else 0.0
        streams = tuple(
            StreamCounters(s.desc.get("name", str(s.source)), "marker" if s.desc.get("is_marker") else "numeric",
                           s.received, s.written, s.state, s.last_ts, _inlet_error(s.inlet))
            for s in self._slots
        )
        return RecorderStatus(self._state, el, streams, self._queue.qsize(),
                              str(self._error) if self._error else None)

    def start(self) -> Recorder:
        """Resolve the streams, create the partial folder, start writer and inlets."""
        from neurodeck.acquisition.outlet import local_clock

        if self._state != "idle":
            raise RecordingError(f"recorder is {self._state}; expected a fresh recorder to start")
        if self.out.exists() and not self.overwrite:
            raise RecordingError(f"output {str(self.out)!r} already exists; expected a new file name (or --overwrite "
                                 "to replace it)")
        parent = self.out.parent
        if not parent.is_dir():
            raise RecordingError(f"output folder {str(parent)!r} does not exist or is not a folder; expected an existing writable folder")
        try:
            self._open_inlets()
            descs = []
            for s in self._slots:
                d = dict(s.desc)
                d["key"] = s.key
                d["clock_offset_at_start"] = s.clock_offset
                descs.append(d)
            files = output_files(self.out, descs, xdf=self.xdf)  # refuses streams without a FIF
            if not self.overwrite:
                check_outputs_free(files)
            now_wall, now_lsl = time.time(), local_clock()
            extra = {"start_wall_time": now_wall, "start_lsl_time": now_lsl,
                     "started_utc": _dt.datetime.fromtimestamp(now_wall, tz=_dt.UTC).isoformat(),
                     "flush_every": self.flush_every, "xdf": self.xdf}
            self._store = PartialStore(self.partial_dir, self.out, descs, extra)
        except BaseException:
            self._close_inlets()
            raise
        self._t_start = time.monotonic()
        self._state = "recording"
        self._writer = threading.Thread(target=self._write_loop, name="neurodeck-recorder-writer", daemon=True)
        self._writer.start()
        for s in self._slots:
            self._attach(s)
        try:
            for s in self._slots:
                s.inlet.start()
        except BaseException:
            # nothing was recorded: undo everything, leave no partial folder behind
            self.abort()
            shutil.rmtree(self.partial_dir, ignore_errors=True)
            raise
        logger.info("recording %s into %s", [s.desc["name"] for s in self._slots], self.partial_dir)
        return self

    def stop(self) -> Path:
        """Drain every stream, finalize and return the FIF path.

        Raises
        ------
        RecordingError
            If writing failed (the partial folder is kept for :func:`recover`).
        """
        if self._state == "done" and self.path is not None:
            return self.path
        if self._state != "recording":
            raise RecordingError(f"recorder is {self._state}; expected a started recorder to stop")
        self._state = "stopping"
        try:
            self._drain()
        finally:
            self._close_inlets()
            self._queue.put(_STOP)
            if self._writer is not None:
                self._writer.join()
            if self._store is not None:
                try:
                    self._store.flush(fsync=True)
                except OSError as exc:
                    self._set_error(_oserror(exc, self.partial_dir, "write to"))
                self._store.close(keep_lock=True)
        if self._error is not None:
            self._state = "error"
            self._unlock()
            raise RecordingError(f"{self._error}; data flushed so far kept in {str(self.partial_dir)!r} "
                                 f"(finish it with `neurodeck recover {self.partial_dir}`)") from self._error
        self._state = "finalizing"
        try:
            meta_path = self.partial_dir / META_FILE
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            meta["stopped_utc"] = _dt.datetime.now(_dt.UTC).isoformat()
            meta["inlet_counters"] = {s.key: _counters_dict(s.inlet) for s in self._slots}
            meta["lag_min"] = {s.key: s.lag_min for s in self._slots if np.isfinite(s.lag_min)}
            meta["inlet_errors"] = {s.key: _inlet_error(s.inlet) for s in self._slots}
            _write_json_atomic(meta_path, meta)
            self.path = finalize_partial(self.partial_dir, self.out, overwrite=self.overwrite, locked=True)
        except RecordingError as exc:
            self._set_error(exc, log=False)  # raised to the caller, who reports it
            self._state = "error"
            raise
        except OSError as exc:
            err = RecordingError(f"{_oserror(exc, self.out, 'finalize')}; the partial recording "
                                 f"{str(self.partial_dir)!r} is kept: run `neurodeck recover "
                                 f"{self.partial_dir} --out <another folder>/<name>.fif` to finish it")
            self._set_error(err, log=False)
            self._state = "error"
            raise err from exc
        finally:
            self._unlock()
        self._state = "done"
        return self.path

    def abort(self) -> None:
        """Stop inlets and writer without finalizing (the partial folder stays for recover)."""
        self._close_inlets()
        if self._writer is not None and self._writer.is_alive():
            self._queue.put(_STOP)
            self._writer.join()
        if self._store is not None:
            with contextlib.suppress(OSError):
                self._store.flush()
            self._store.close()
        self._unlock()
        self._state = "error" if self._error else "aborted"

    def __enter__(self) -> Recorder:
        return self.start()

    def __exit__(self, exc_type, exc, tb) -> None:
        if self._state == "recording":
            if exc_type is None or exc_type is KeyboardInterrupt:
                self.stop()
            else:
                self.abort()

    # -- internals ------------------------------------------------------------------------
    def _open_inlets(self) -> None:
        import pylsl

        from neurodeck.acquisition.inlet import Inlet, MarkerInlet
        from neurodeck.acquisition.streams import StreamDescription, resolve_stream

        for s in self._slots:
            info = s.source
            if isinstance(info, str):
                info = resolve_stream(name=info, timeout=self.resolve_timeout, unique=True)
            elif not isinstance(info, pylsl.StreamInfo):
                raise RecordingError(f"source {info!r} invalid; expected a stream name or a pylsl.StreamInfo")
            desc0 = StreamDescription.from_info(info)
            fmt = desc0.channel_format
            as_marker = fmt == "string" or (desc0.is_marker and fmt in _MARKER_INT_FORMATS)
            s.inlet = MarkerInlet(info) if as_marker else Inlet(info)
            desc = s.inlet.description  # connects and reads the full description
            full, s.clock_offset = _probe(info, self.resolve_timeout)
            s.desc = describe(desc, full)
            s.desc["is_marker"] = as_marker
            if not as_marker:
                _disk_dtype(s.desc)
            s.state = "CONNECTING"
        ids = [s.desc.get("uid") or s.desc["name"] for s in self._slots]
        dup = {s.desc["name"] for s, i in zip(self._slots, ids, strict=True) if ids.count(i) > 1}
        if dup:
            raise RecordingError(f"streams {sorted(dup)} given twice; expected each stream once")

    def _attach(self, s: _Slot) -> None:
        key = s.key
        q = self._queue

        def on_state(old: Any, new: Any) -> None:
            s.state = getattr(new, "name", str(new))
            q.put(("event", key, {"kind": "state", "stream": key, "t": _lsl_now(),
                                  "last_data_t": s.last_ts,
                                  "old": getattr(old, "name", str(old)), "new": s.state}))

        if s.desc["is_marker"]:
            def on_marker(timestamp: float, label: Any) -> None:
                s.received += 1
                s.last_ts = float(timestamp)
                s.last_arrival = time.monotonic()
                s.lag_min = min(s.lag_min, _lsl_now() - s.last_ts)
                # where each numeric stream was when the marker arrived: places the marker in
                # the right stretch of samples if the clock jumped back (same stamps twice)
                at = {o.key: o.received for o in self._slots if not o.desc.get("is_marker")}
                q.put(("marker", key, {"kind": "marker", "stream": key, "t": float(timestamp),
                                       "label": str(label), "at": at, "arrived": _lsl_now()}))

            s.inlet.add_marker_listener(on_marker)
        else:
            def on_chunk(data: np.ndarray, timestamps: np.ndarray) -> None:
                n = len(timestamps)
                if n == 0:
                    return
                s.received += n
                s.last_ts = float(timestamps[-1])
                s.last_arrival = time.monotonic()
                s.lag_min = min(s.lag_min, _lsl_now() - s.last_ts)
                q.put(("chunk", key, (np.array(data, copy=True), np.array(timestamps, dtype=np.float64))))

            s.inlet.add_chunk_listener(on_chunk)
        if hasattr(s.inlet, "add_state_listener"):
            s.inlet.add_state_listener(on_state)

    def _drain(self) -> None:
        """Wait until each stream delivered what was pushed before now (or went quiet)."""
        t_stop = _lsl_now()
        t0 = time.monotonic()
        pending = list(self._slots)
        while pending and time.monotonic() - t0 < self.drain_timeout:
            now = time.monotonic()
            still = []
            for s in pending:
                # a live stream has delivered a sample (a marker) taken at or after the stop time
                # (on the source's clock: stamps far off ours, a device clock, are compared by
                # their lag); a stopped source or a silent marker stream counts as drained after
                # drain_quiet s of silence
                srate = float(s.desc.get("srate") or 0.0)
                tol = 1.5 / srate if srate > 0 and not s.desc.get("is_marker") else 0.0
                lag = s.lag_min if abs(s.lag_min) > 0.5 else 0.0  # inf (nothing yet) -> never
                caught_up = s.last_ts is not None and s.last_ts >= t_stop - lag - tol
                # (data held back by the inlet for a trustworthy stamp count as arriving)
                flow = getattr(s.inlet, "last_data_at", 0.0)
                quiet = now - max(s.last_arrival, flow, t0) >= self.drain_quiet
                if not (caught_up or quiet):
                    still.append(s)
            pending = still
            if pending:
                time.sleep(0.01)
        if pending:
            logger.warning("final drain timed out for %s", [s.desc.get("name") for s in pending])

    def _close_inlets(self) -> None:
        for s in self._slots:
            if s.inlet is not None:
                try:
                    s.inlet.stop()
                except Exception:  # noqa: BLE001 - stopping must go on for the other streams
                    logger.exception("stopping inlet of %s failed", s.desc.get("name"))

    def _unlock(self) -> None:
        if self._store is not None:
            self._store.unlock()

    def _set_error(self, err: RecordingError, log: bool = True) -> None:
        with self._lock:
            if self._error is None:
                self._error = err
                if log:
                    logger.error("recorder: %s", err)

    def _write_loop(self) -> None:
        try:
            self._write_loop_inner()
        except BaseException as exc:  # noqa: BLE001 - surfaced through .error and stop()
            logger.exception("recorder writer thread crashed")
            self._set_error(RecordingError(f"recorder writer thread crashed: {exc!r}"))
            while True:  # keep consuming so nothing piles up; stop() ends this
                if self._queue.get() is _STOP:
                    break

    def _write_loop_inner(self) -> None:
        store = self._store
        assert store is not None
        slots = {s.key: s for s in self._slots}
        last_flush = time.monotonic()
        last_clock = 0.0
        last_lag = 0.0
        lags_written: dict[str, float] = {}
        dirty = False
        while True:
            try:
                item = self._queue.get(timeout=min(self.flush_every, 0.1))
            except queue.Empty:
                item = None
            if item is _STOP:
                if self._error is None:
                    self._write_clock_offsets(store)  # at least one per stream, however short
                break
            if item is not None:
                if self._error is not None:
                    self._dropped += 1
                else:
                    kind, key, payload = item
                    try:
                        if kind == "chunk":
                            store.append(key, payload[0], payload[1])
                            slots[key].written += len(payload[1])
                        else:
                            store.event(payload)
                            if kind == "marker":
                                slots[key].written += 1
                        dirty = True
                    except OSError as exc:
                        self._set_error(_oserror(exc, store.dir, "write to"))
                    except (ValueError, TypeError) as exc:  # a chunk that does not fit the stream
                        self._set_error(RecordingError(
                            f"chunk of stream {slots[key].desc.get('name')!r} cannot be stored ({exc}); "
                            f"expected {slots[key].desc.get('n_channels')} channels"))
            now = time.monotonic()
            if self._error is None and now - last_lag >= 1.0:
                last_lag = now
                self._write_lags(store, lags_written)
            if self._error is None and now - last_clock >= 5.0:
                last_clock = now
                for s in self._slots:
                    if s.desc.get("is_marker") and hasattr(s.inlet, "drain"):
                        s.inlet.drain()  # we take markers from the listener; keep its queue short
                self._write_clock_offsets(store)
            if dirty and self._error is None and now - last_flush >= self.flush_every:
                try:
                    store.flush(fsync=True)
                except OSError as exc:
                    self._set_error(_oserror(exc, store.dir, "write to"))
                last_flush = now
                dirty = False

    def _write_lags(self, store, written: dict[str, float]) -> None:
        """A ``lag`` event per numeric stream whose smallest (arrival - stamp) changed.

        Finalize compares marker streams' lags with the EEG's: markers on another clock than
        the EEG (Unix time) are placed by their arrival.
        """
        for s in self._slots:
            if s.desc.get("is_marker") or not np.isfinite(s.lag_min):
                continue
            if abs(written.get(s.key, np.inf) - s.lag_min) > 1e-3:
                written[s.key] = s.lag_min
                with contextlib.suppress(OSError):
                    store.event({"kind": "lag", "stream": s.key, "t": _lsl_now(), "lag": s.lag_min})

    def _write_clock_offsets(self, store) -> None:
        """One ``clock`` event per stream with the inlet's current clock offset (if known)."""
        for s in self._slots:
            off = _clock_offset(s.inlet)
            if off is not None:
                with contextlib.suppress(OSError):
                    store.event({"kind": "clock", "stream": s.key, "t": _lsl_now(), "offset": off})


def _lsl_now() -> float:
    from neurodeck.acquisition.outlet import local_clock

    return local_clock()


def _probe(info: Any, timeout: float) -> tuple[Any, float | None]:
    """Full info (for per-channel types) and the clock offset of a stream, via a temporary inlet.

    Returns ``(None, None)`` parts that could not be read (logged), never raises.
    """
    import pylsl

    full, offset = None, None
    try:
        tmp = pylsl.StreamInlet(info, max_buflen=1, recover=False)
        try:
            full = tmp.info(timeout=timeout)
            offset = float(tmp.time_correction(timeout=min(timeout, 2.0)))
        finally:
            del tmp
    except Exception as exc:  # noqa: BLE001 - metadata only; the recording goes on
        logger.warning("could not read channel types / clock offset of %r: %s", info.name(), exc)
    return full, offset


def _inlet_error(inlet: Any) -> str | None:
    err = getattr(inlet, "error", None)
    return None if err is None else str(err)


def _counters_dict(inlet: Any) -> dict:
    c = getattr(inlet, "counters", None)
    if c is None:
        return {}
    try:
        return {k: v for k, v in dataclasses.asdict(c).items() if isinstance(v, int | float)}
    except TypeError:
        return {}


def _clock_offset(inlet: Any) -> float | None:
    """The inlet's latest clock correction in seconds, if it exposes one."""
    for name in ("time_correction", "clock_offset"):
        v = getattr(inlet, name, None)
        if v is None:
            counters = getattr(inlet, "counters", None)
            v = getattr(counters, name, None) if counters is not None else None
        if callable(v):
            continue
        if isinstance(v, int | float) and np.isfinite(v):
            return float(v)
    return None

__all__ = ["Recorder", "RecorderStatus", "StreamCounters"]
