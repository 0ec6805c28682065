"""The partial folder: append-only, crash-safe storage of a recording in progress.

While a :class:`~neurodeck.acquisition.recorder.Recorder` runs, everything goes to
``<out>.partial/``::

    meta.json          written (atomically) at start: format version, output path, start times,
                       one description per stream (name, type, channels, units, types, rate, ...)
    s0.data.bin        numeric stream 0: raw samples, row-major (n_samples, n_channels), native dtype
    s0.ts.bin          numeric stream 0: float64 LSL timestamps (local clock), one per sample
    events.jsonl       one JSON object per line: markers of every marker stream, stream state
                       changes (lost / recovered), clock offsets

:class:`PartialStore` writes such a folder (one writer), :func:`load_partial` reads it back,
dropping an incomplete trailing sample or JSON line left by a crash.
"""
from __future__ import annotations

import contextlib
import dataclasses
import errno
import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from neurodeck.acquisition.errors import RecordingError
from neurodeck.acquisition.stream_meta import _disk_dtype

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
PARTIAL_SUFFIX = ".partial"
META_FILE = "meta.json"
EVENTS_FILE = "events.jsonl"


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
