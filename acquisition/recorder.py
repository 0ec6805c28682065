"""Crash-safe multi-stream LSL recorder.

A :class:`Recorder` records several LSL streams at once (EEG, markers, further numeric streams).
While it runs, everything goes to an append-only *partial folder* ``<out>.partial/``::

    meta.json          written (atomically) at start: format version, output path, start times,
                       one description per stream (name, type, channels, units, types, rate, ...)
    s0.data.bin        numeric stream 0: raw samples, row-major (n_samples, n_channels), native dtype
    s0.ts.bin          numeric stream 0: float64 LSL timestamps (local clock), one per sample
    events.jsonl       one JSON object per line: markers of every marker stream, stream state
                       changes (lost / recovered), clock offsets

Listeners on the inlets' pull threads only put chunks on a queue; one writer thread appends them
and flushes + fsyncs every ``flush_every`` seconds, so a hard kill loses at most that much (plus
what liblsl had not yet delivered). :meth:`Recorder.stop` drains the inlets, closes the files and
*finalizes*: the main EEG stream becomes ``<out>`` (a FIF file, volts, markers as annotations), a
JSON sidecar ``<out stem>.json`` holds the stream metadata, and every other numeric stream goes to
``<out stem>.<stream>.npz``. The partial folder is deleted only after the FIF has been read back
and checked. :func:`recover` finalizes a partial folder left behind by a crash the same way.

Errors (unwritable folder, disk full, ...) raise :class:`~acquisition.errors.RecordingError`;
background write errors are stored in :attr:`Recorder.error` and raised by :meth:`Recorder.stop`;
whatever was already flushed stays in the partial folder for :func:`recover`.
"""
from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import errno
import json
import logging
import os
import queue
import re
import shutil
import threading
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from neurodeck.acquisition.errors import AcquisitionError, RecordingError
from neurodeck.acquisition.markers import name_of, onsets_on_samples

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
PARTIAL_SUFFIX = ".partial"
META_FILE = "meta.json"
EVENTS_FILE = "events.jsonl"

#: numpy dtype used on disk for each LSL channel format (numeric streams).
_DISK_DTYPES = {
    "float32": "<f4",
    "double64": "<f8",
    "int32": "<i4",
    "int16": "<i2",
    "int8": "<i1",
    "int64": "<i8",
}
#: unit string (lower case) -> factor to volts.
_VOLT_FACTORS = {
    "microvolts": 1e-6, "microvolt": 1e-6, "uv": 1e-6, "µv": 1e-6, "μv": 1e-6,
    "millivolts": 1e-3, "millivolt": 1e-3, "mv": 1e-3,
    "nanovolts": 1e-9, "nanovolt": 1e-9, "nv": 1e-9,
    "volts": 1.0, "volt": 1.0, "v": 1.0,
}
_VOLTAGE_TYPES = {"eeg", "eog", "emg", "ecg", "seeg", "ecog", "dbs", "bio"}
_MNE_TYPES = _VOLTAGE_TYPES | {"misc", "stim", "resp", "gsr", "temperature", "syst"}
_STATE_ANNOTATIONS = {"LOST": "stream_lost", "RECOVERED": "stream_recovered"}
_STOP = object()
_MARKER_INT_FORMATS = ("int32", "int16", "int8", "int64")


# --------------------------------------------------------------------------------------------
# stream descriptions
# --------------------------------------------------------------------------------------------
def _channel_types_from_info(info: Any, n_channels: int) -> list[str]:
    """Per-channel ``<type>`` entries of a full ``pylsl.StreamInfo`` desc ("" where absent)."""
    types: list[str] = []
    try:
        ch = info.desc().child("channels").child("channel")
        while not ch.empty() and len(types) < n_channels:
            types.append(ch.child_value("type") or "")
            ch = ch.next_sibling("channel")
    except Exception:  # a foreign StreamInfo-like object without a desc
        types = []
    if len(types) != n_channels:
        types = [""] * n_channels
    return types


def describe(description: Any, info: Any = None) -> dict:
    """Plain-JSON dict of a stream description (``StreamDescription`` or dict).

    Parameters
    ----------
    description : acquisition.streams.StreamDescription or dict
        Name, type, n_channels, srate, channel_format, source_id, hostname, uid, labels, units,
        is_marker.
    info : pylsl.StreamInfo, optional
        Full info (with desc) to read per-channel types from.
    """
    if dataclasses.is_dataclass(description):
        d = dataclasses.asdict(description)
        d["is_marker"] = bool(getattr(description, "is_marker", False))
    elif isinstance(description, dict):
        d = dict(description)
    else:
        d = {k: getattr(description, k) for k in (
            "name", "type", "n_channels", "srate", "channel_format", "source_id", "hostname",
            "uid", "labels", "units", "is_marker") if hasattr(description, k)}
    n = int(d.get("n_channels") or len(d.get("labels") or []) or 1)
    out = {
        "name": str(d.get("name", "")),
        "type": str(d.get("type", "")),
        "n_channels": n,
        "srate": float(d.get("srate") or 0.0),
        "channel_format": str(d.get("channel_format", "float32")),
        "source_id": str(d.get("source_id", "") or ""),
        "hostname": str(d.get("hostname", "") or ""),
        "uid": str(d.get("uid", "") or ""),
        "labels": [str(x) for x in (d.get("labels") or [])] or [f"ch{i + 1}" for i in range(n)],
        "units": [str(x or "") for x in (d.get("units") or [])] or [""] * n,
        "is_marker": bool(d.get("is_marker", False)),
    }
    types = d.get("types") or d.get("ch_types")
    if not types and info is not None:
        types = _channel_types_from_info(info, n)
    out["types"] = [str(t or "") for t in (types or [])] or [""] * n
    for key in ("labels", "units", "types"):
        vals = out[key]
        if len(vals) != n:
            out[key] = (vals + [""] * n)[:n] if key != "labels" else [f"ch{i + 1}" for i in range(n)]
    return out


def _disk_dtype(desc: dict) -> np.dtype:
    fmt = desc["channel_format"].lower()
    if fmt not in _DISK_DTYPES:
        raise RecordingError(
            f"stream {desc['name']!r} has channel format {fmt!r}; a numeric stream needs one of "
            f"{sorted(_DISK_DTYPES)} (string streams are recorded as markers)"
        )
    return np.dtype(_DISK_DTYPES[fmt])


def _stem(path: Path) -> str:
    """File name without ``.fif`` / ``.fif.gz``."""
    for suffix in (".fif.gz", ".fif"):
        if path.name.endswith(suffix):
            return path.name[: -len(suffix)]
    return path.stem


def sidecar_path(fif_path: Path | str) -> Path:
    """The JSON sidecar of a recording: ``<stem>.json`` next to ``<stem>.fif``."""
    fif_path = Path(fif_path)
    return fif_path.with_name(_stem(fif_path) + ".json")


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "stream"


# --------------------------------------------------------------------------------------------
# the partial folder
# --------------------------------------------------------------------------------------------
def partial_dir_for(out: Path | str) -> Path:
    """``<out>.partial`` next to ``out``."""
    out = Path(out)
    return out.with_name(out.name + PARTIAL_SUFFIX)


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _write_json_atomic(path: Path, obj: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _oserror(exc: OSError, path: Path | str, what: str) -> RecordingError:
    reason = "disk full" if exc.errno == errno.ENOSPC else (exc.strerror or str(exc))
    return RecordingError(f"cannot {what} {str(path)!r}: {reason}; expected a writable folder with free space")


class PartialStore:
    """Append-only storage of one recording in ``<out>.partial/`` (not thread-safe: one writer).

    Parameters
    ----------
    partial_dir : Path
        Folder to create (must not exist).
    out : Path
        Final output path, stored in ``meta.json`` for :func:`recover`.
    streams : list of dict
        Output of :func:`describe`, one per stream, in recording order.
    extra_meta : dict, optional
        More fields for ``meta.json`` (e.g. start times).
    """

    def __init__(self, partial_dir: Path, out: Path, streams: list[dict], extra_meta: dict | None = None):
        self.dir = Path(partial_dir)
        self.out = Path(out)
        self.streams = streams
        self._data: dict[str, Any] = {}
        self._ts: dict[str, Any] = {}
        self._dtypes: dict[str, np.dtype] = {}
        self._events = None
        try:
            self.dir.mkdir(parents=False, exist_ok=False)
        except FileExistsError:
            raise RecordingError(
                f"partial recording {str(self.dir)!r} already exists; expected no leftover: run "
                f"`neurodeck recover {self.dir}` or remove it"
            ) from None
        except OSError as exc:
            raise _oserror(exc, self.dir, "create the recording folder") from exc
        try:
            for s in streams:
                if not s["is_marker"]:
                    self._dtypes[s["key"]] = _disk_dtype(s)
            meta = {
                "format": "neurodeck-partial",
                "version": FORMAT_VERSION,
                "out": str(self.out.resolve()),
                "streams": streams,
                **(extra_meta or {}),
            }
            _write_json_atomic(self.dir / META_FILE, meta)
            for s in streams:
                if not s["is_marker"]:
                    key = s["key"]
                    self._data[key] = open(self.dir / f"{key}.data.bin", "ab")
                    self._ts[key] = open(self.dir / f"{key}.ts.bin", "ab")
            self._events = open(self.dir / EVENTS_FILE, "ab")
            _fsync_dir(self.dir)
        except OSError as exc:
            self.close()
            raise _oserror(exc, self.dir, "write to the recording folder") from exc

    def append(self, key: str, data: np.ndarray, timestamps: np.ndarray) -> None:
        """Append samples ``data`` (n, n_channels) and ``timestamps`` (n,) of numeric stream ``key``."""
        arr = np.ascontiguousarray(data, dtype=self._dtypes[key])
        self._data[key].write(arr.tobytes())
        self._ts[key].write(np.ascontiguousarray(timestamps, dtype="<f8").tobytes())

    def event(self, record: dict) -> None:
        """Append one event (marker, state change, clock offset) as a JSON line."""
        self._events.write((json.dumps(record) + "\n").encode("utf-8"))

    def flush(self, fsync: bool = True) -> None:
        for f in [*self._data.values(), *self._ts.values(), self._events]:
            if f is not None and not f.closed:
                f.flush()
                if fsync:
                    os.fsync(f.fileno())

    def close(self) -> None:
        for f in [*self._data.values(), *self._ts.values(), self._events]:
            if f is not None and not f.closed:
                with contextlib.suppress(OSError):
                    f.close()


@dataclasses.dataclass
class _Loaded:
    meta: dict
    data: dict[str, np.ndarray]  # key -> (n, n_channels), memory-mapped from the partial folder
    ts: dict[str, np.ndarray]  # key -> (n,)
    events: list[dict]
    truncated: dict[str, int]  # key -> number of trailing bytes dropped


def load_partial(partial_dir: Path | str) -> _Loaded:
    """Read a partial folder, dropping an incomplete trailing sample / JSON line."""
    pdir = Path(partial_dir)
    if not pdir.is_dir():
        raise RecordingError(f"partial recording {str(pdir)!r} not found; expected a folder <out>{PARTIAL_SUFFIX}/")
    try:
        meta = json.loads((pdir / META_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RecordingError(
            f"{str(pdir / META_FILE)!r} missing or unreadable ({exc}); expected the meta.json a "
            f"neurodeck recorder writes at start"
        ) from exc
    if meta.get("format") != "neurodeck-partial":
        raise RecordingError(f"{str(pdir)!r} is not a neurodeck partial recording (format {meta.get('format')!r})")
    data: dict[str, np.ndarray] = {}
    ts: dict[str, np.ndarray] = {}
    truncated: dict[str, int] = {}
    for s in meta["streams"]:
        if s["is_marker"]:
            continue
        key = s["key"]
        dtype = _disk_dtype(s)
        nch = int(s["n_channels"])
        dpath, tpath = pdir / f"{key}.data.bin", pdir / f"{key}.ts.bin"
        dbytes = dpath.stat().st_size if dpath.exists() else 0
        tbytes = tpath.stat().st_size if tpath.exists() else 0
        row = nch * dtype.itemsize
        n = min(dbytes // row, tbytes // 8)
        truncated[key] = (dbytes - n * row) + (tbytes - n * 8)
        if n:  # mapped, not read: finalizing an hour of 256 ch @ 2048 Hz must fit in memory
            data[key] = np.memmap(dpath, dtype=dtype, mode="r", shape=(n, nch))
            ts[key] = np.fromfile(tpath, dtype="<f8", count=n)
        else:
            data[key] = np.zeros((0, nch), dtype=dtype)
            ts[key] = np.zeros(0)
    events: list[dict] = []
    epath = pdir / EVENTS_FILE
    if epath.exists():
        lines = epath.read_bytes().split(b"\n")
        for i, line in enumerate(lines):
            if not line.strip():
                continue
            try:
                events.append(json.loads(line))
            except ValueError:
                if i < len(lines) - 1:
                    logger.warning("skipping corrupt line %d of %s", i + 1, epath)
    return _Loaded(meta, data, ts, events, truncated)


# --------------------------------------------------------------------------------------------
# finalize
# --------------------------------------------------------------------------------------------
def _gaps(ts: np.ndarray, srate: float) -> list[dict]:
    """Gaps where consecutive timestamps are more than 1.5 nominal periods apart."""
    if srate <= 0 or ts.size < 2:
        return []
    d = np.diff(ts)
    idx = np.flatnonzero(d > 1.5 / srate)
    return [
        {"after_sample": int(i), "timestamp": float(ts[i]), "duration": float(d[i]),
         "missing_samples": int(round(d[i] * srate)) - 1}
        for i in idx
    ]


def _pick_primary(streams: list[dict], data: dict[str, np.ndarray]) -> dict:
    numeric = [s for s in streams if not s["is_marker"] and s["srate"] > 0]
    if not numeric:
        raise RecordingError(
            "no regular-rate numeric stream was recorded; expected at least one EEG-like stream "
            f"to write a FIF file (streams: {[s['name'] for s in streams]})"
        )
    eeg = [s for s in numeric if s["type"].lower() == "eeg"]
    return (eeg or numeric)[0]


def _mne_types_and_scales(s: dict) -> tuple[list[str], np.ndarray]:
    types, scales = [], []
    stream_is_eeg = s["type"].lower() == "eeg"
    for t, u in zip(s["types"], s["units"]):
        t, u = (t or "").strip().lower(), (u or "").strip().lower()
        if t in _MNE_TYPES:
            mt = t
        elif t:
            mt = "misc"
        elif u in _VOLT_FACTORS or (not u and stream_is_eeg):
            mt = "eeg" if stream_is_eeg else "misc"
        else:
            mt = "misc"
        if mt in _VOLTAGE_TYPES:
            # LSL convention: EEG streams carry microvolts unless the desc says otherwise.
            scales.append(_VOLT_FACTORS.get(u, 1e-6))
        else:
            scales.append(1.0)
        types.append(mt)
    return types, np.asarray(scales)


def _meas_date(meta: dict, first_ts: float) -> _dt.datetime | None:
    try:
        wall = float(meta["start_wall_time"]) + (first_ts - float(meta["start_lsl_time"]))
        return _dt.datetime.fromtimestamp(wall, tz=_dt.UTC)
    except (KeyError, TypeError, ValueError, OverflowError, OSError):
        return None


def _partial_raw(info, path: Path, shape: tuple[int, int], dtype: np.dtype, scales: np.ndarray):
    """An ``mne.io.Raw`` that reads the partial data file ``path`` block by block on demand.

    ``raw.save`` then writes the FIF one buffer (1 s) at a time (a RawArray would hold the whole
    stream as float64: ~15 GB for an hour of 256 ch @ 2048 Hz). The file holds ``shape``
    (n_times, n_channels) samples of ``dtype``; values are multiplied by ``scales`` (to volts for
    voltage channels) as they are read.
    """
    from mne.io import BaseRaw

    n_times, n_channels = shape
    dtype = np.dtype(dtype)

    class _PartialRaw(BaseRaw):
        def __init__(self):
            super().__init__(info, preload=False, first_samps=[0], last_samps=[n_times - 1],
                             filenames=[str(path)], raw_extras=[{"scales": scales}],
                             orig_format="double" if dtype.itemsize > 4 else "single",
                             verbose=False)

        def _read_segment_file(self, data, idx, fi, start, stop, cals, mult):
            rows = np.fromfile(self.filenames[fi], dtype=dtype, count=(stop - start) * n_channels,
                               offset=start * n_channels * dtype.itemsize)
            block = rows.reshape(-1, n_channels).astype(np.float64).T  # (n_channels, n)
            block *= self._raw_extras[fi]["scales"][:, None]
            block = block[idx]
            if mult is not None:
                data[:] = mult @ block
            else:
                data[:] = block * cals

    return _PartialRaw()


def finalize_partial(partial_dir: Path | str, out: Path | str | None = None, *,
                     remove_partial: bool = True, recovered: bool = False) -> Path:
    """Turn a partial folder into ``<out>`` (FIF) + ``<out stem>.json`` (+ extra ``.npz``).

    Parameters
    ----------
    partial_dir : Path
        The ``<out>.partial`` folder.
    out : Path, optional
        Output FIF path; default: the one stored in ``meta.json`` (:func:`recover` defaults to
        ``<out>`` next to the folder).
    remove_partial : bool
        Delete the partial folder once the FIF has been written and read back.
    recovered : bool
        Marks the sidecar as recovered after a crash.

    Returns
    -------
    Path
        The FIF file.
    """
    import mne

    pdir = Path(partial_dir)
    loaded = load_partial(pdir)
    meta = loaded.meta
    out = Path(out) if out is not None else Path(meta["out"])
    streams = meta["streams"]
    primary = _pick_primary(streams, loaded.data)
    pkey = primary["key"]
    pdata, pts = loaded.data[pkey], loaded.ts[pkey]
    if pdata.shape[0] == 0:
        raise RecordingError(
            f"stream {primary['name']!r} has no samples in {str(pdir)!r}; expected at least one "
            "recorded sample to write a FIF file"
        )
    sfreq = float(primary["srate"])
    first_ts = float(pts[0])
    n_times = pdata.shape[0]
    sample_idx = np.arange(n_times, dtype=float)

    def onset_of(t: float) -> float:
        # sample position of an LSL time on the recorded samples (handles gaps), in seconds
        if n_times > 1 and pts[0] <= t <= pts[-1]:
            return float(np.interp(t, pts, sample_idx)) / sfreq
        ref = pts[0] if t < pts[0] else pts[-1]
        return (float(np.searchsorted(pts, ref)) + (t - ref) * sfreq) / sfreq

    by_key = {s["key"]: s for s in streams}
    markers: list[dict] = []
    states: list[dict] = []
    clocks: dict[str, list] = {}
    for ev in loaded.events:
        s = by_key.get(ev.get("stream"))
        sname = s["name"] if s else str(ev.get("stream"))
        if ev.get("kind") == "marker":
            label = str(ev["label"])
            markers.append({"stream": sname, "timestamp": float(ev["t"]), "onset": onset_of(float(ev["t"])),
                            "code": label, "name": name_of(label)})
        elif ev.get("kind") == "state":
            t = float(ev["t"])
            if str(ev.get("new")).upper() == "LOST" and ev.get("last_data_t") is not None:
                t = float(ev["last_data_t"])  # the data stopped here; LOST is declared later
            entry = {"stream": sname, "timestamp": t, "onset": onset_of(t),
                     "detected_at": float(ev["t"]), "old": ev.get("old"), "new": ev.get("new")}
            states.append(entry)
        elif ev.get("kind") == "clock":
            clocks.setdefault(sname, []).append([float(ev["t"]), float(ev["offset"])])
    markers.sort(key=lambda m: m["timestamp"])

    # --- the FIF ---------------------------------------------------------------------------
    types, scales = _mne_types_and_scales(primary)
    info = mne.create_info(list(primary["labels"]), sfreq, types, verbose=False)
    raw = _partial_raw(info, pdir / f"{pkey}.data.bin", pdata.shape, pdata.dtype, scales)
    meas_date = _meas_date(meta, first_ts)
    if meas_date is not None:
        raw.set_meas_date(meas_date)
    raw.info["description"] = json.dumps({"neurodeck_first_lsl_timestamp": first_ts,
                                          "stream": primary["name"]})
    duration = n_times / sfreq
    onsets, descs, extras = [], [], []
    outside = 0
    keep, on_samples = onsets_on_samples(np.array([m["onset"] for m in markers]), n_times, sfreq)
    for m, kept, onset in zip(markers, keep, on_samples, strict=True):
        if kept:
            onsets.append(float(onset))
            descs.append(m["name"])
            extras.append({"stream": m["stream"], "code": m["code"]})
        else:
            outside += 1
    for st in states:
        desc = _STATE_ANNOTATIONS.get(str(st["new"]).upper())
        if desc:
            onsets.append(min(max(st["onset"], 0.0), max(duration - 1.0 / sfreq, 0.0)))
            descs.append(desc)
            extras.append({"stream": st["stream"], "code": ""})
    if onsets:
        raw.set_annotations(mne.Annotations(onsets, [0.0] * len(onsets), descs, extras=extras))
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*naming conventions.*")
            raw.save(out, overwrite=True, fmt="double" if pdata.dtype.itemsize > 4 else "single",
                     verbose=False)
    except OSError as exc:
        raise _oserror(exc, out, "write the recording") from exc

    # --- extra numeric streams -------------------------------------------------------------
    stem = _stem(out)
    stream_entries = []
    for s in streams:
        entry = {k: v for k, v in s.items() if k != "key"}
        key = s["key"]
        if s["is_marker"]:
            ms = [m for m in markers if m["stream"] == s["name"]]
            entry.update(role="markers", count=len(ms),
                         first_timestamp=ms[0]["timestamp"] if ms else None,
                         last_timestamp=ms[-1]["timestamp"] if ms else None)
        else:
            ts = loaded.ts[key]
            entry.update(
                role="eeg" if key == pkey else "extra",
                count=int(ts.size),
                first_timestamp=float(ts[0]) if ts.size else None,
                last_timestamp=float(ts[-1]) if ts.size else None,
                effective_srate=float((ts.size - 1) / (ts[-1] - ts[0])) if ts.size > 1 and ts[-1] > ts[0] else None,
                gaps=_gaps(ts, float(s["srate"])),
                truncated_bytes=int(loaded.truncated.get(key, 0)),
            )
            if key == pkey:
                entry["file"] = out.name
                entry["fif_channel_types"] = types
            else:
                npz = out.with_name(f"{stem}.{_safe(s['name'])}.npz")
                try:
                    np.savez(npz, data=loaded.data[key], timestamps=ts,
                             labels=np.asarray(s["labels"]), units=np.asarray(s["units"]),
                             srate=np.float64(s["srate"]))
                except OSError as exc:
                    raise _oserror(exc, npz, "write") from exc
                entry["file"] = npz.name
        entry["clock_offsets"] = clocks.get(s["name"], [])
        entry["inlet_counters"] = (meta.get("inlet_counters") or {}).get(key, {})
        entry["inlet_error"] = (meta.get("inlet_errors") or {}).get(key)
        entry["state_changes"] = [st for st in states if st["stream"] == s["name"]]
        stream_entries.append(entry)

    sidecar = {
        "format": "neurodeck-recording",
        "version": FORMAT_VERSION,
        "file": out.name,
        "recovered": bool(recovered),
        "started_utc": meta.get("started_utc"),
        "stopped_utc": meta.get("stopped_utc"),
        "finalized_utc": _dt.datetime.now(_dt.UTC).isoformat(),
        "primary_stream": primary["name"],
        "first_timestamp": first_ts,
        "sfreq": sfreq,
        "n_times": int(n_times),
        "timestamps_are": "LSL local clock of the recording machine (time-corrected)",
        "streams": stream_entries,
        "markers": markers,
        "markers_outside_eeg": outside,
    }
    side = sidecar_path(out)
    try:
        _write_json_atomic(side, sidecar)
    except OSError as exc:
        raise _oserror(exc, side, "write") from exc

    # --- verify, then remove the partial folder ----------------------------------------------
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*naming conventions.*")
            check = mne.io.read_raw_fif(out, preload=False, verbose=False)
    except Exception as exc:
        raise RecordingError(f"written file {str(out)!r} cannot be read back ({exc}); partial data kept in {str(pdir)!r}") from exc
    if check.n_times != n_times or len(check.annotations) != len(onsets):
        raise RecordingError(
            f"written file {str(out)!r} has {check.n_times} samples / {len(check.annotations)} "
            f"annotations; expected {n_times} / {len(onsets)}; partial data kept in {str(pdir)!r}"
        )
    del raw, pdata, loaded  # the memory maps of the partial folder
    if remove_partial:
        shutil.rmtree(pdir, ignore_errors=True)
    logger.info("recording finalized: %s (%d samples, %d markers)", out, n_times, len(markers))
    return out


def recover(partial_dir: Path | str, out: Path | str | None = None) -> Path:
    """Finalize a partial folder left by a crashed recorder; returns the FIF path.

    An incomplete trailing sample (data or timestamp written only in part) is dropped, as is a
    truncated last line of the events file. The partial folder is removed once the FIF has been
    written and verified.
    """
    pdir = Path(partial_dir)
    if not pdir.is_dir() and pdir.with_name(pdir.name + PARTIAL_SUFFIX).is_dir():
        pdir = pdir.with_name(pdir.name + PARTIAL_SUFFIX)
    if out is None and pdir.name.endswith(PARTIAL_SUFFIX) and len(pdir.name) > len(PARTIAL_SUFFIX):
        out = pdir.with_name(pdir.name[: -len(PARTIAL_SUFFIX)])  # next to the folder, even if moved
    return finalize_partial(pdir, out, recovered=True)


def export_recording(fif_path: Path | str, fmt: str, out: Path | str | None = None) -> Path:
    """Export a finished FIF recording to EDF or BrainVision (annotations included).

    Parameters
    ----------
    fif_path : Path
        A FIF written by :class:`Recorder` / :func:`recover`.
    fmt : {"edf", "brainvision"}
    out : Path, optional
        Default: ``fif_path`` with ``.edf`` / ``.vhdr``.

    Notes
    -----
    EDF stores whole data records, so MNE pads the last one: an exported EDF can be up to one
    record longer than the FIF (the sidecar keeps the true sample count). EDF also stores 16-bit
    integers per channel range, so values are quantized; BrainVision keeps float32.
    """
    import mne

    fmt = fmt.lower()
    suffix = {"edf": ".edf", "brainvision": ".vhdr"}.get(fmt)
    if suffix is None:
        raise RecordingError(f"export format {fmt!r} unknown; expected 'edf' or 'brainvision'")
    fif_path = Path(fif_path)
    stem = _stem(fif_path)
    out = Path(out) if out is not None else fif_path.with_name(stem + suffix)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*naming conventions.*")
            raw = mne.io.read_raw_fif(fif_path, preload=True, verbose=False)
    except (OSError, ValueError) as exc:
        raise RecordingError(f"cannot read {str(fif_path)!r} ({exc}); expected a FIF recording") from exc
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            warnings.filterwarnings("ignore", message=".*non-voltage units.*")
            mne.export.export_raw(out, raw, fmt=fmt, overwrite=True, verbose=False)
    except OSError as exc:
        raise _oserror(exc, out, "export to") from exc
    return out


# --------------------------------------------------------------------------------------------
# the recorder
# --------------------------------------------------------------------------------------------
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

    Examples
    --------
    >>> with Recorder(["MyEEG", "MyMarkers"], Path("run1_raw.fif")) as rec:  # doctest: +SKIP
    ...     time.sleep(60)
    >>> rec.path  # doctest: +SKIP
    """

    def __init__(self, sources: Sequence[Any], out: Path | str, *, flush_every: float = 0.5,
                 resolve_timeout: float = 5.0, drain_quiet: float = 1.0, drain_timeout: float = 5.0,
                 overwrite: bool = False):
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
            raise RecordingError(f"output {str(self.out)!r} already exists; expected a new file name (or overwrite=True)")
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
            now_wall, now_lsl = time.time(), local_clock()
            extra = {"start_wall_time": now_wall, "start_lsl_time": now_lsl,
                     "started_utc": _dt.datetime.fromtimestamp(now_wall, tz=_dt.UTC).isoformat(),
                     "flush_every": self.flush_every}
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
                self._store.close()
        if self._error is not None:
            self._state = "error"
            raise RecordingError(f"{self._error}; data flushed so far kept in {str(self.partial_dir)!r} "
                                 f"(finish it with `neurodeck recover {self.partial_dir}`)") from self._error
        self._state = "finalizing"
        try:
            meta_path = self.partial_dir / META_FILE
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            meta["stopped_utc"] = _dt.datetime.now(_dt.UTC).isoformat()
            meta["inlet_counters"] = {s.key: _counters_dict(s.inlet) for s in self._slots}
            meta["inlet_errors"] = {s.key: _inlet_error(s.inlet) for s in self._slots}
            _write_json_atomic(meta_path, meta)
            self.path = finalize_partial(self.partial_dir, self.out)
        except RecordingError as exc:
            self._set_error(exc)
            self._state = "error"
            raise
        except OSError as exc:
            err = _oserror(exc, self.out, "finalize")
            self._set_error(err)
            self._state = "error"
            raise err from exc
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
                info = resolve_stream(name=info, timeout=self.resolve_timeout)
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
        names = [s.desc["name"] for s in self._slots]
        dup = {n for n in names if names.count(n) > 1}
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
                q.put(("marker", key, {"kind": "marker", "stream": key, "t": float(timestamp),
                                       "label": str(label)}))

            s.inlet.add_marker_listener(on_marker)
        else:
            def on_chunk(data: np.ndarray, timestamps: np.ndarray) -> None:
                n = len(timestamps)
                if n == 0:
                    return
                s.received += n
                s.last_ts = float(timestamps[-1])
                s.last_arrival = time.monotonic()
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
                # a live regular stream has delivered the sample taken at the stop time; a
                # stopped source or a marker stream counts as drained after drain_quiet s of silence
                srate = float(s.desc.get("srate") or 0.0)
                tol = 1.5 / srate if srate > 0 and not s.desc.get("is_marker") else 0.0
                caught_up = tol > 0 and s.last_ts is not None and s.last_ts >= t_stop - tol
                quiet = now - max(s.last_arrival, t0) >= self.drain_quiet
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

    def _set_error(self, err: RecordingError) -> None:
        with self._lock:
            if self._error is None:
                self._error = err
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
        dirty = False
        while True:
            try:
                item = self._queue.get(timeout=min(self.flush_every, 0.1))
            except queue.Empty:
                item = None
            if item is _STOP:
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
            if self._error is None and now - last_clock >= 5.0:
                last_clock = now
                for s in self._slots:
                    if s.desc.get("is_marker") and hasattr(s.inlet, "drain"):
                        s.inlet.drain()  # we take markers from the listener; keep its queue short
                    off = _clock_offset(s.inlet)
                    if off is not None:
                        with contextlib.suppress(OSError):
                            store.event({"kind": "clock", "stream": s.key, "t": _lsl_now(), "offset": off})
            if dirty and self._error is None and now - last_flush >= self.flush_every:
                try:
                    store.flush(fsync=True)
                except OSError as exc:
                    self._set_error(_oserror(exc, store.dir, "write to"))
                last_flush = now
                dirty = False


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


__all__ = [
    "Recorder",
    "RecorderStatus",
    "StreamCounters",
    "PartialStore",
    "describe",
    "export_recording",
    "finalize_partial",
    "load_partial",
    "partial_dir_for",
    "recover",
    "sidecar_path",
    "AcquisitionError",
    "RecordingError",
]
