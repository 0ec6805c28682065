"""Shared LSL helpers for acquisition tests: a source thread with a sample-counter channel."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from neurodeck.acquisition.outlet import DataOutlet, local_clock, make_stream_info


class CounterSource:
    """Pushes ``n_channels`` at ``srate`` in chunks from a thread; the last channel is the counter.

    The counter follows the clock (sample k belongs to time ``t0 + k / srate``) and every sample's
    timestamp is exactly that time, so after a stop/restart the counter jumps by the number of
    samples an uninterrupted source would have produced meanwhile: that jump is the true number
    of missing samples.
    """

    def __init__(self, name, source_id, n_channels=8, srate=512.0, chunk=16, stype="EEG"):
        self.name, self.source_id, self.stype = name, source_id, stype
        self.n_channels, self.srate, self.chunk = n_channels, float(srate), chunk
        self.labels = [f"C{i}" for i in range(n_channels - 1)] + ["counter"]
        self.outlet = None
        self._thread = None
        self._stop = threading.Event()
        self.t0 = None
        self.next_k = 0
        self.pushed = 0
        self.error = None

    def open(self):
        info = make_stream_info(
            self.name, self.stype, self.labels, self.srate, source_id=self.source_id,
            units="microvolts",
        )
        self.outlet = DataOutlet(info)
        return self

    def start(self, duration=None):
        """Open the outlet (if closed) and push from a thread (until stop() or ``duration``)."""
        if self.outlet is None:
            self.open()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, args=(duration,), daemon=True)
        self._thread.start()
        return self

    def _run(self, duration):
        """Push what the clock says is due; with ``duration``, exactly duration * srate samples."""
        try:
            rng = np.random.default_rng(0)
            start = local_clock()
            if self.t0 is None:  # first start: sample 0 is now
                self.t0 = start
            # on a restart, skip the samples "produced" while closed (the counter follows the clock)
            self.next_k = max(self.next_k, int((start - self.t0) * self.srate))
            end_k = None if duration is None else self.next_k + int(round(duration * self.srate))
            while not self._stop.is_set() and (end_k is None or self.next_k < end_k):
                due = int((local_clock() - self.t0) * self.srate) + 1
                if end_k is not None:
                    due = min(due, end_k)
                n = min(due - self.next_k, 4 * self.chunk)
                if n >= self.chunk or (n > 0 and due == end_k):
                    k = np.arange(self.next_k, self.next_k + n)
                    data = rng.standard_normal((n, self.n_channels)).astype(np.float32)
                    data[:, -1] = k
                    self.outlet.push_chunk(data, timestamp=self.t0 + k[-1] / self.srate)
                    self.next_k += n
                    self.pushed += n
                else:
                    time.sleep(self.chunk / self.srate / 4)
        except Exception as exc:  # noqa: BLE001
            self.error = exc
            raise

    def join(self, timeout=None):
        if self._thread is not None:
            self._thread.join(timeout)

    def stop(self):
        self._stop.set()
        self.join(5)

    def close(self):
        """Stop pushing and destroy the outlet (the stream disappears)."""
        self.stop()
        if self.outlet is not None:
            self.outlet.close()
            self.outlet = None


@pytest.fixture
def counter_source(unique_name):
    sources = []

    def make(**kw):
        kw.setdefault("name", unique_name)
        kw.setdefault("source_id", unique_name + "-src")
        src = CounterSource(**kw)
        sources.append(src)
        return src

    yield make
    for s in sources:
        s.close()
