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

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
PARTIAL_SUFFIX = ".partial"
META_FILE = "meta.json"
EVENTS_FILE = "events.jsonl"
LOCK_FILE = "lock"


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


class PartialLock:
    """Exclusive lock of a partial folder while a recorder or ``recover`` works on it.

    An advisory lock (``flock``; ``msvcrt.locking`` on Windows) on ``<dir>/lock``, which also
    holds the owner's process id for the message. The kernel releases it when the owner dies,
    ``kill -9`` included, so a crashed recording can always be recovered, and a running one can
    never be finalized (and deleted) from under its recorder.
    """

    def __init__(self, partial_dir: Path, fd: int):
        self.dir = Path(partial_dir)
        self._fd: int | None = fd

    @classmethod
    def acquire(cls, partial_dir: Path | str) -> PartialLock:
        """Lock ``partial_dir`` (an existing folder) or raise :class:`RecordingError` naming the owner."""
        pdir = Path(partial_dir)
        path = pdir / LOCK_FILE
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise _oserror(exc, path, "lock") from exc
        try:
            _lock_fd(fd)
        except OSError:
            os.close(fd)
            raise RecordingError(
                f"partial recording {str(pdir)!r} is in use by a running recorder or recover "
                f"({_owner(path)}); expected a folder that no process is writing: stop that "
                "recording first (Ctrl-C or SIGTERM finalizes it)"
            ) from None
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        return cls(pdir, fd)

    def __del__(self) -> None:
        self.release()

    def release(self) -> None:
        """Unlock (idempotent); the lock file goes with the folder."""
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                _unlock_fd(fd)
            with contextlib.suppress(OSError):
                os.close(fd)


def is_locked(partial_dir: Path | str) -> bool:
    """True while a process holds the :class:`PartialLock` of ``partial_dir``."""
    try:
        PartialLock.acquire(partial_dir).release()
    except RecordingError as exc:
        return "in use" in str(exc)
    return False


def _owner(path: Path) -> str:
    try:
        pid = int(path.read_text().strip())
    except (OSError, ValueError):
        return "process unknown"
    return f"process {pid}"


def _lock_fd(fd: int) -> None:
    if fcntl is not None:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    else:  # pragma: no cover - Windows
        import msvcrt

        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)


def _unlock_fd(fd: int) -> None:
    if fcntl is not None:
        fcntl.flock(fd, fcntl.LOCK_UN)
    else:  # pragma: no cover - Windows
        import msvcrt

        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)


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

    The folder is locked (:class:`PartialLock`, :attr:`lock`) from its creation until
    :meth:`close` (or :meth:`unlock` after ``close(keep_lock=True)``, the recorder's way to hold it
    through finalizing).
    """

    def __init__(self, partial_dir: Path, out: Path, streams: list[dict], extra_meta: dict | None = None):
        self.dir = Path(partial_dir)
        self.out = Path(out)
        self.streams = streams
        self._data: dict[str, Any] = {}
        self._ts: dict[str, Any] = {}
        self._dtypes: dict[str, np.dtype] = {}
        self._events = None
        self.lock: PartialLock | None = None
        try:
            self.dir.mkdir(parents=False, exist_ok=False)
        except FileExistsError:
            if is_locked(self.dir):
                raise RecordingError(
                    f"partial recording {str(self.dir)!r} is in use by another running recording; "
                    "expected a different output file name"
                ) from None
            raise RecordingError(
                f"partial recording {str(self.dir)!r} already exists; expected no leftover: run "
                f"`neurodeck recover {self.dir}` or remove it"
            ) from None
        except OSError as exc:
            raise _oserror(exc, self.dir, "create the recording folder") from exc
        self.lock = PartialLock.acquire(self.dir)
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
        except (OSError, RecordingError) as exc:
            self.close()
            if isinstance(exc, RecordingError):
                raise
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

    def unlock(self) -> None:
        """Release the folder's lock (after finalizing, or to leave it to ``recover``)."""
        if self.lock is not None:
            self.lock.release()

    def close(self, keep_lock: bool = False) -> None:
        """Close the files; release the lock too unless ``keep_lock`` (finalizing comes next)."""
        for f in [*self._data.values(), *self._ts.values(), self._events]:
            if f is not None and not f.closed:
                with contextlib.suppress(OSError):
                    f.close()
        if not keep_lock:
            self.unlock()


@dataclasses.dataclass
class _Loaded:
    meta: dict
    data: dict[str, np.ndarray]  # key -> (n, n_channels), memory-mapped from the partial folder
    ts: dict[str, np.ndarray]  # key -> (n,)
    events: list[dict]
    truncated: dict[str, int]  # key -> number of trailing bytes dropped


def _check_meta(meta: dict, pdir: Path) -> None:
    """Raise :class:`RecordingError` when ``meta.json``'s stream list is damaged or tampered with."""
    where = str(pdir / META_FILE)
    if not isinstance(meta.get("out"), str) or not meta["out"]:
        raise RecordingError(f"{where!r}: 'out' is {meta.get('out')!r}; expected the output path")
    for field in ("inlet_counters", "inlet_errors", "lag_min"):  # optional: drop if damaged
        if field in meta and not isinstance(meta[field], dict):
            logger.warning("%s: ignoring damaged %r", where, field)
            del meta[field]
    streams = meta.get("streams")
    if not isinstance(streams, list) or not streams:
        raise RecordingError(f"{where!r}: 'streams' is {streams!r}; expected a non-empty list of streams")
    keys = set()
    for i, st in enumerate(streams):
        what = f"{where!r}: stream {i}"
        if not isinstance(st, dict):
            raise RecordingError(f"{what} is {st!r}; expected an object")
        key, nch, srate = st.get("key"), st.get("n_channels"), st.get("srate")
        if not isinstance(key, str) or not key.isidentifier() or key in keys:
            raise RecordingError(f"{what} has key {key!r}; expected a unique name like 's0'")
        keys.add(key)
        if not isinstance(st.get("is_marker"), bool):
            raise RecordingError(f"{what} has is_marker {st.get('is_marker')!r}; expected true or false")
        if isinstance(nch, bool) or not isinstance(nch, int) or not 1 <= nch <= 100_000:
            raise RecordingError(f"{what} has n_channels {nch!r}; expected an integer >= 1")
        if isinstance(srate, bool) or not isinstance(srate, int | float) or not (0 <= srate < 1e7):
            raise RecordingError(f"{what} has srate {srate!r}; expected a rate in Hz >= 0 (0: irregular)")
        for field in ("labels", "units", "types"):
            vals = st.get(field)
            if not isinstance(vals, list) or len(vals) != nch or not all(isinstance(v, str) for v in vals):
                raise RecordingError(f"{what} has {field} {vals!r}; expected {nch} strings")
        for field in ("name", "type", "channel_format"):
            if not isinstance(st.get(field), str):
                raise RecordingError(f"{what} has {field} {st.get(field)!r}; expected a string")
        if not st["is_marker"]:
            _disk_dtype(st)


def load_partial(partial_dir: Path | str, meta_only: bool = False) -> _Loaded:
    """Read a partial folder, dropping an incomplete trailing sample / JSON line.

    With ``meta_only`` only ``meta.json`` is read and checked (data and events stay empty).
    """
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
    if not isinstance(meta, dict) or meta.get("format") != "neurodeck-partial":
        fmt = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise RecordingError(f"{str(pdir)!r} is not a neurodeck partial recording (format {fmt!r})")
    _check_meta(meta, pdir)
    if meta_only:
        return _Loaded(meta, {}, {}, [], {})
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
