"""Replay a recording as LSL streams, at real time or faster, optionally in a loop.

* MNE formats (FIF, EDF/BDF, GDF, BrainVision) or an ``mne.io.Raw``: one EEG stream (name given or
  the file stem; labels, rate and units in the desc; volts become microvolts) and one marker stream
  ``<name>-markers`` carrying the annotation descriptions. Names of :mod:`acquisition.markers`
  travel as their code (``"left_hand"`` -> ``"769"``), as live neurodeck marker streams do; other
  labels (``"T1"``) pass unchanged.
* XDF: every non-empty stream of the file becomes its own outlet with its original name (prefixed
  by ``name + "-"`` when ``name`` is given), type, channel labels, units, format and rate, replayed
  with the file's relative timing after pyxdf's clock sync, clock-reset handling and dejitter.
  Empty streams are skipped with a warning.

Timing: the player fixes ``t0`` = the LSL time at which file time 0 is played. An item at file
time ``t`` (sample ``i`` of a regular MNE stream: ``t = i / sfreq``; an XDF item: its timestamp minus
the file's first timestamp; a marker: its onset) is pushed when ``local_clock() >= t0 + t / speed``
and carries exactly that timestamp, so data and markers share one sample clock and a receiver sees
a marker on the timestamp of the sample it belongs to. Pause shifts ``t0`` by the paused time (the
receiver sees a gap, as it would live); each loop shifts it by the loop length, so timestamps keep
increasing across loops.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pylsl

from neurodeck.acquisition.errors import AcquisitionError, RecordingError
from neurodeck.acquisition.markers import CODES
from neurodeck.acquisition.outlet import DataOutlet, MarkerOutlet, local_clock, make_stream_info

logger = logging.getLogger(__name__)

_LSL_FORMATS = {
    "float32": "float32", "double64": "double64", "int16": "int16", "int32": "int32",
    "int8": "int16", "int64": "double64", "string": "string",
}
_BLOCK_S = 1.0  # read-ahead block for lazily loaded MNE recordings
_BUFFER_WALL_S = 360.0  # outlets keep this much *wall-clock* time for slow consumers, at any speed


@dataclass
class _Track:
    """One outlet and what it plays. ``times`` are file seconds (None: regular ``i / srate``)."""

    name: str
    outlet: Any
    n_items: int
    srate: float
    times: np.ndarray | None = None
    data: Any = None  # ndarray (n, n_ch), list of rows (strings), or None with ``fetch``
    fetch: Any = None  # callable(start, stop) -> ndarray (stop - start, n_ch)
    kind: str = "numeric"  # "numeric" | "string" | "marker"
    pos: int = 0
    cache: tuple[int, np.ndarray] | None = field(default=None, repr=False)

    def time_of(self, idx: np.ndarray) -> np.ndarray:
        return idx / self.srate if self.times is None else self.times[idx]

    def n_due(self, position: float) -> int:
        if self.times is None:
            return int(min(self.n_items, np.floor(position * self.srate + 1e-9) + 1)) if position >= 0 else 0
        return int(np.searchsorted(self.times, position, side="right"))

    def rows(self, start: int, stop: int) -> Any:
        if self.fetch is None:
            return self.data[start:stop]
        out = []
        while start < stop:  # serve from a read-ahead block so the disk sees large reads
            if self.cache is None or not (self.cache[0] <= start < self.cache[0] + len(self.cache[1])):
                block = max(int(_BLOCK_S * self.srate), stop - start)
                self.cache = (start, self.fetch(start, min(self.n_items, start + block)))
            c0, arr = self.cache
            take = min(stop, c0 + len(arr)) - start
            out.append(arr[start - c0 : start - c0 + take])
            start += take
        return np.concatenate(out) if len(out) > 1 else out[0]


class Player:
    """Replay a recording file (or an ``mne.io.Raw``) as LSL outlets in a background thread.

    Outlets are created in the constructor, so consumers can resolve and connect before
    :meth:`start`; nothing is pushed until then.

    Parameters
    ----------
    path_or_raw : str, Path or mne.io.BaseRaw
        Any format of :data:`acquisition.io.SUPPORTED`, or a Raw object (volts).
    speed : float
        Playback speed factor (> 0), 1 = real time.
    loop : bool
        Start over at the end, forever, with increasing timestamps.
    name : str, optional
        MNE formats: EEG stream name (default: file stem); XDF: prefix ``name + "-"`` for every
        stream name (default: original names).
    chunk_ms : float
        Interval of the push loop; a chunk holds the samples due in that interval.
    streams : sequence of str, optional
        XDF only: replay only the streams with these names.

    Attributes
    ----------
    outlet_names, source_ids : list of str
        One per outlet, in creation order.
    eeg_name : str or None
        Outlet carrying the EEG: the Raw's data, or for XDF the stream
        :func:`acquisition.io.choose_eeg_stream` picks (None if the file has no EEG-typed stream).
    marker_names : list of str
        Outlets of string or irregular streams (the marker stream of an MNE file).
    duration_s : float
        Length of one pass in file seconds.
    error : BaseException or None
        What stopped the background thread, if it failed (also logged).
    """

    def __init__(
        self,
        path_or_raw: Any,
        *,
        speed: float = 1.0,
        loop: bool = False,
        name: str | None = None,
        chunk_ms: float = 20,
        streams: Sequence[str] | None = None,
    ):
        if not np.isfinite(speed) or speed <= 0:
            raise AcquisitionError(f"speed {speed!r} invalid; expected a positive number (1 = real time)")
        if not np.isfinite(chunk_ms) or chunk_ms <= 0:
            raise AcquisitionError(f"chunk_ms {chunk_ms!r} invalid; expected a positive number of milliseconds")
        self.speed = float(speed)
        self.loop = bool(loop)
        self.chunk_s = float(chunk_ms) / 1000.0
        self.error: BaseException | None = None
        self._tracks: list[_Track] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._resume = threading.Event()
        self._resume.set()
        self._finished = threading.Event()
        self._thread: threading.Thread | None = None
        self._t0 = 0.0
        self._pause_clock: float | None = None
        self._position = 0.0
        self.loops_done = 0

        from neurodeck.acquisition.io import is_xdf

        if isinstance(path_or_raw, (str, Path)) and is_xdf(path_or_raw):
            self.source = str(path_or_raw)
            self._setup_xdf(Path(path_or_raw), name, streams)
        else:
            if streams is not None:
                raise RecordingError(f"streams={list(streams)!r} only applies to XDF files")
            self._setup_raw(path_or_raw, name)
        if not self._tracks:
            raise RecordingError(f"{self.source}: nothing to replay (every selected stream is empty)")
        self.outlet_names = [t.name for t in self._tracks]
        self.marker_names = [t.name for t in self._tracks if t.kind in ("marker", "string") or t.srate == 0]

    # ------------------------------------------------------------------------------------ setup
    def _max_buffered(self) -> int:
        """liblsl's buffer is counted in seconds at the nominal rate; at ``speed`` X that is X times
        less wall-clock time, so scale it (capped at 10x) to keep slow consumers lossless."""
        return int(np.ceil(_BUFFER_WALL_S * min(max(self.speed, 1.0), 10.0)))

    def _setup_raw(self, path_or_raw: Any, name: str | None) -> None:
        import mne
        from mne.io.constants import FIFF

        from neurodeck.acquisition.io import load_recording

        if isinstance(path_or_raw, mne.io.BaseRaw):
            raw = path_or_raw
            stem = Path(raw.filenames[0]).stem if raw.filenames and raw.filenames[0] else "raw"
            self.source = str(raw.filenames[0]) if raw.filenames and raw.filenames[0] else "<Raw>"
        else:
            raw = load_recording(path_or_raw, preload=False)
            stem = Path(path_or_raw).name.split(".")[0]
            self.source = str(path_or_raw)
            try:  # a truncated file reads its header fine and fails mid-replay: read the end now
                raw.get_data(start=max(raw.n_times - 1, 0), stop=raw.n_times)
            except (OSError, ValueError, EOFError) as exc:
                raise RecordingError(f"{str(path_or_raw)!r} cannot be read to its end ({exc}); "
                                     "expected a complete recording (truncated?)") from exc
        name = name or stem
        sfreq = float(raw.info["sfreq"])
        scales, units, types = [], [], []
        for ch, ctype in zip(raw.info["chs"], raw.get_channel_types(), strict=True):
            if ch["unit"] == FIFF.FIFF_UNIT_V:
                scales.append(1e6)
                units.append("microvolts")
            else:
                scales.append(1.0)
                units.append("")
            types.append(ctype.upper())
        scale = np.asarray(scales)[None, :]
        uid = f"neurodeck-player:{name}"
        self.source_ids = [uid, f"{uid}-markers"]
        self.eeg_name = name
        info = make_stream_info(name, "EEG", raw.ch_names, sfreq, source_id=uid, units=units,
                                ch_types=types, replay_speed=self.speed)
        self.duration_s = raw.n_times / sfreq

        def fetch(start: int, stop: int) -> np.ndarray:
            return (raw.get_data(start=start, stop=stop).T * scale).astype(np.float32)

        self._tracks.append(
            _Track(name, DataOutlet(info, max_buffered=self._max_buffered()), raw.n_times, sfreq, fetch=fetch)
        )
        ann = raw.annotations
        # onsets count from the recording's sample 0 (orig_time None) or from orig_time; the data
        # played start at raw.first_samp (non-zero after a crop)
        onsets = np.asarray(ann.onset, dtype=np.float64) - raw.first_time
        meas = raw.info["meas_date"]
        if len(ann) and ann.orig_time is not None and meas is not None:
            onsets = onsets + (ann.orig_time - meas).total_seconds()
        keep = (onsets >= 0) & (onsets < self.duration_s)
        if (~keep).any():
            logger.warning("%s: %d annotations outside the recording are not replayed", self.source, int((~keep).sum()))
        order = np.argsort(onsets[keep], kind="stable")
        labels = [str(CODES.get(d, d)) for d in np.asarray(ann.description, dtype=object)[keep][order]]
        self._tracks.append(
            _Track(f"{name}-markers", MarkerOutlet(f"{name}-markers", source_id=f"{uid}-markers"),
                   len(labels), 0.0, times=onsets[keep][order], data=labels, kind="marker")
        )
        self._loop_len = self.duration_s

    def _setup_xdf(self, path: Path, name: str | None, wanted: Sequence[str] | None) -> None:
        from neurodeck.acquisition.io import choose_eeg_stream, read_xdf_streams

        all_streams = read_xdf_streams(path)
        self.eeg_name = None
        if wanted is not None:
            names = [s.name for s in all_streams]
            unknown = [w for w in wanted if w not in names]
            if unknown:
                raise RecordingError(f"{path}: no stream named {unknown}; the file has {names}")
            all_streams = [s for s in all_streams if s.name in set(wanted)]
        streams = []
        for s in all_streams:
            if s.n_samples == 0:
                logger.warning("%s: stream %r is empty (0 samples); not replayed", path, s.name)
            else:
                streams.append(s)
        self.source_ids = []
        if not streams:
            return
        first = min(float(s.timestamps[0]) for s in streams)
        last = max(float(s.timestamps[-1]) for s in streams)
        period = 1.0 / max((s.srate for s in streams if s.srate > 0), default=1000.0)
        self._loop_len = last - first + period
        self.duration_s = self._loop_len
        self.xdf_t0 = first
        try:
            eeg = choose_eeg_stream(streams)
        except RecordingError:
            eeg = None
        for i, s in enumerate(streams):
            out_name = f"{name}-{s.name}" if name else s.name
            uid = f"neurodeck-player:{name or path.stem}:{i}:{s.source_id or s.name}"
            fmt = _LSL_FORMATS.get(s.fmt)
            if fmt is None:
                raise RecordingError(f"{path}: stream {s.name!r} has channel format {s.fmt!r}; cannot replay it")
            info = make_stream_info(
                out_name, s.type or "unknown", s.labels, s.srate, fmt=fmt, source_id=uid,
                units=s.units, ch_types=s.ch_types, replay_speed=self.speed,
            )
            times = np.asarray(s.timestamps, dtype=np.float64) - first
            if s.is_string:
                outlet = pylsl.StreamOutlet(info, 0, self._max_buffered())
                track = _Track(out_name, outlet, s.n_samples, s.srate, times=times, data=s.rows, kind="string")
            else:
                data = np.asarray(s.data)
                data = data.astype(np.float64) if data.dtype != np.float32 else data
                outlet = DataOutlet(info, max_buffered=self._max_buffered())
                track = _Track(out_name, outlet, s.n_samples, s.srate, times=times, data=data)
            self._tracks.append(track)
            self.source_ids.append(uid)
            if s is eeg:
                self.eeg_name = out_name

    # ----------------------------------------------------------------------------------- control
    def start(self) -> Player:
        """Start playing in a background thread; returns immediately."""
        if self._thread is not None:
            raise AcquisitionError("player already started; create a new Player to replay again")
        self._t0 = local_clock()
        self._thread = threading.Thread(target=self._run, name=f"player-{self.outlet_names[0]}", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 2.0) -> None:
        """Stop the thread (if running) and destroy the outlets; safe to call twice."""
        self._stop.set()
        self._resume.set()
        if self._thread is not None and self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        for t in self._tracks:
            outlet = t.outlet
            if hasattr(outlet, "close"):
                outlet.close()
            t.outlet = None
        self._finished.set()

    def pause(self) -> None:
        with self._lock:
            if self._pause_clock is None:
                self._pause_clock = local_clock()
                self._resume.clear()

    def resume(self) -> None:
        with self._lock:
            if self._pause_clock is not None:
                self._t0 += local_clock() - self._pause_clock
                self._pause_clock = None
                self._resume.set()

    @property
    def paused(self) -> bool:
        return self._pause_clock is not None

    @property
    def finished(self) -> bool:
        """True once the last item was pushed (never while looping), or after stop / an error."""
        return self._finished.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until finished; returns :attr:`finished`."""
        return self._finished.wait(timeout)

    @property
    def position_s(self) -> float:
        """File seconds played in the current pass."""
        return self._position

    @property
    def progress(self) -> float:
        """Fraction (0..1) of the current pass that was played."""
        return float(min(1.0, self._position / self.duration_s)) if self.duration_s > 0 else 1.0

    def wait_for_consumers(self, timeout: float) -> bool:
        """Wait until every outlet has at least one consumer."""
        deadline = local_clock() + timeout
        for t in self._tracks:
            if not t.outlet.wait_for_consumers(max(0.0, deadline - local_clock())):
                return False
        return True

    def __enter__(self) -> Player:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---------------------------------------------------------------------------------- thread
    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                if not self._resume.is_set():
                    self._resume.wait(0.1)
                    continue
                with self._lock:
                    t0 = self._t0
                    position = (local_clock() - t0) * self.speed
                done = True
                for track in self._tracks:
                    self._push_due(track, t0, position)
                    done &= track.pos >= track.n_items
                self._position = min(position, self.duration_s)
                if done:
                    if not self.loop:
                        self._position = self.duration_s
                        break
                    with self._lock:
                        self._t0 += self._loop_len / self.speed
                    for track in self._tracks:
                        track.pos = 0
                    self.loops_done += 1
                    continue
                self._stop.wait(self.chunk_s)
        except BaseException as exc:  # surfaced via .error and the log, never swallowed
            self.error = exc
            logger.error("player %s stopped by an error: %s", self.outlet_names[0], exc)
            logger.debug("player error", exc_info=True)
        finally:
            self._finished.set()

    def _push_due(self, track: _Track, t0: float, position: float) -> None:
        stop = track.n_due(position)
        if stop <= track.pos or track.outlet is None:
            return
        idx = np.arange(track.pos, stop)
        stamps = (t0 + track.time_of(idx) / self.speed).tolist()
        if track.kind == "marker":
            for label, ts in zip(track.data[track.pos : stop], stamps, strict=True):
                track.outlet.push(label, ts)
        elif track.kind == "string":
            track.outlet.push_chunk(list(track.data[track.pos : stop]), stamps)
        else:
            track.outlet.push_chunk(track.rows(track.pos, stop), stamps)
        track.pos = stop
