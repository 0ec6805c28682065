"""A preallocated, thread-safe ring buffer of multichannel samples and their timestamps.

One writer (the inlet thread) and any number of readers (GUI timer, online decoder, ...). Every
operation holds one lock for the duration of a vectorised copy, so a reader never sees a
half-written chunk; nothing is allocated on the write path.

Chunks come in as (n_samples, n_channels) (LSL's layout) but are stored channels-first,
(n_channels, capacity): windows are read far more often and far longer than chunks are written,
and a channels-first window is a plain contiguous copy (``latest(512)`` on 64 channels costs a
few microseconds instead of ~65 us for a transposing copy).

Samples are addressed by their *absolute index* (0 = first sample ever written), so a reader that
keeps its own cursor can ask for exactly the samples it has not seen yet with :meth:`RingBuffer.read`
and learns (:class:`BufferOverrunError`) when it fell so far behind that they were overwritten.
"""
from __future__ import annotations

import logging
import threading

import numpy as np

from neurodeck.acquisition.errors import AcquisitionError

logger = logging.getLogger(__name__)


class BufferOverrunError(AcquisitionError):
    """Requested samples are no longer (overwritten) or not yet in the ring buffer."""


class RingBuffer:
    """Fixed-capacity ring of ``capacity`` samples of ``n_channels`` plus float64 timestamps.

    Parameters
    ----------
    n_channels : int
        Channels per sample.
    capacity : int
        Samples kept; older ones are overwritten.
    dtype : numpy dtype
        Sample dtype (float32 by default).
    """

    def __init__(self, n_channels: int, capacity: int, dtype=np.float32):
        if int(n_channels) < 1:
            raise AcquisitionError(f"n_channels={n_channels!r} invalid; expected >= 1")
        if int(capacity) < 1:
            raise AcquisitionError(f"capacity={capacity!r} invalid; expected >= 1 sample")
        self.n_channels = int(n_channels)
        self.capacity = int(capacity)
        self.dtype = np.dtype(dtype)
        self._data = np.zeros((self.n_channels, self.capacity), dtype=self.dtype)  # channels first
        self._ts = np.zeros(self.capacity, dtype=np.float64)
        self._n_written = 0
        self._n_overruns = 0
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ writing
    def write(self, data: np.ndarray, timestamps: np.ndarray) -> None:
        """Append ``data`` of shape (n, n_channels) with ``timestamps`` of shape (n,).

        ``n`` may exceed the capacity: only the newest ``capacity`` samples are kept (but all
        ``n`` count in :attr:`n_written`).
        """
        data = np.asarray(data)
        timestamps = np.asarray(timestamps)
        if data.ndim != 2 or data.shape[1] != self.n_channels:
            raise AcquisitionError(
                f"chunk shape {data.shape} invalid; expected (n_samples, {self.n_channels})"
            )
        n = data.shape[0]
        if timestamps.shape != (n,):
            raise AcquisitionError(
                f"timestamps shape {timestamps.shape} invalid; expected ({n},) for {n} samples"
            )
        if n == 0:
            return
        cap = self.capacity
        with self._lock:
            total = self._n_written + n
            if n >= cap:  # only the newest `cap` samples survive
                data = data[n - cap :]
                timestamps = timestamps[n - cap :]
                m = cap
            else:
                m = n
            start = (total - m) % cap
            first = min(m, cap - start)
            self._data[:, start : start + first] = data[:first].T
            self._ts[start : start + first] = timestamps[:first]
            if first < m:
                self._data[:, : m - first] = data[first:].T
                self._ts[: m - first] = timestamps[first:]
            self._n_written = total

    def clear(self) -> None:
        """Forget everything: :attr:`n_written` goes back to 0."""
        with self._lock:
            self._n_written = 0
            self._n_overruns = 0

    # ------------------------------------------------------------------ reading
    @property
    def n_written(self) -> int:
        """Samples written since creation (or :meth:`clear`), including overwritten ones."""
        return self._n_written

    @property
    def n_available(self) -> int:
        """Samples currently readable (``min(n_written, capacity)``)."""
        return min(self._n_written, self.capacity)

    @property
    def n_overruns(self) -> int:
        """How many :meth:`read` calls asked for samples that had been overwritten."""
        return self._n_overruns

    def _copy_out(self, start: int, stop: int, rows: np.ndarray | None = None,
                  data: bool = True) -> tuple[np.ndarray | None, np.ndarray]:
        """Copy absolute samples [start, stop) (caller holds the lock, range checked)."""
        k = stop - start
        cap = self.capacity
        n = self.n_channels if rows is None else len(rows)
        out = np.empty((n, k), dtype=self.dtype) if data else None
        ts = np.empty(k, dtype=np.float64)
        i0 = start % cap
        first = min(k, cap - i0)
        if data:
            out[:, :first] = (self._data[:, i0 : i0 + first] if rows is None
                              else self._data[rows, i0 : i0 + first])
        ts[:first] = self._ts[i0 : i0 + first]
        if first < k:
            if data:
                out[:, first:] = (self._data[:, : k - first] if rows is None
                                  else self._data[rows, : k - first])
            ts[first:] = self._ts[: k - first]
        return out, ts

    def latest(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Copy of the newest ``n`` samples.

        Returns
        -------
        data : ndarray, shape (n_channels, n)
        timestamps : ndarray, shape (n,)

        Raises
        ------
        BufferOverrunError
            Fewer than ``n`` samples written so far, or ``n`` exceeds the capacity.
        """
        n = int(n)
        if n < 0 or n > self.capacity:
            raise BufferOverrunError(
                f"latest({n}) impossible; expected 0 <= n <= capacity ({self.capacity})"
            )
        with self._lock:
            stop = self._n_written
            if stop < n:
                raise BufferOverrunError(f"latest({n}): only {stop} samples written so far")
            return self._copy_out(stop - n, stop)

    def read(self, start: int, stop: int, rows: np.ndarray | None = None
             ) -> tuple[np.ndarray, np.ndarray]:
        """Copy of absolute samples ``[start, stop)``.

        Parameters
        ----------
        start, stop : int
        rows : ndarray of int, optional
            Only these channels, in this order (one copy instead of a copy and a pick).

        Returns
        -------
        data : ndarray, shape (n_channels or len(rows), stop - start)
        timestamps : ndarray, shape (stop - start,)

        Raises
        ------
        BufferOverrunError
            Part of the range was already overwritten (counted in :attr:`n_overruns`) or is not
            written yet.
        """
        return self._read(start, stop, rows, True)

    def read_timestamps(self, start: int, stop: int) -> np.ndarray:
        """Copy of the timestamps of absolute samples ``[start, stop)`` (:meth:`read`'s errors)."""
        return self._read(start, stop, None, False)[1]

    def _read(self, start: int, stop: int, rows, data: bool):
        start, stop = int(start), int(stop)
        if start < 0 or stop < start:
            raise BufferOverrunError(f"read({start}, {stop}) invalid; expected 0 <= start <= stop")
        with self._lock:
            written = self._n_written
            if stop > written:
                raise BufferOverrunError(
                    f"read({start}, {stop}): samples up to {stop} not written yet (n_written={written})"
                )
            oldest = max(0, written - self.capacity)
            if start < oldest:
                self._n_overruns += 1
                raise BufferOverrunError(
                    f"read({start}, {stop}): samples before {oldest} were overwritten "
                    f"(capacity {self.capacity}); the reader fell {oldest - start} samples behind"
                )
            return self._copy_out(start, stop, rows, data)

    def __repr__(self) -> str:
        return (
            f"RingBuffer(n_channels={self.n_channels}, capacity={self.capacity}, "
            f"dtype={self.dtype.name}, n_written={self._n_written})"
        )
