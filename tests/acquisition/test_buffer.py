"""RingBuffer: wrap-around, absolute-index reads, overruns, and torn-read freedom under a writer."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from neurodeck.acquisition.buffer import BufferOverrunError, RingBuffer
from neurodeck.acquisition.errors import AcquisitionError


def _chunk(k0: int, n: int, n_channels: int = 3):
    """Samples k0..k0+n-1: channel c holds k * 10 + c; timestamps k / 100."""
    k = np.arange(k0, k0 + n)
    data = (k[:, None] * 10 + np.arange(n_channels)[None, :]).astype(np.float64)
    return data, k / 100.0


def test_latest_returns_newest_samples_channels_first():
    buf = RingBuffer(3, 10, dtype=np.float64)
    buf.write(*_chunk(0, 4))
    buf.write(*_chunk(4, 5))
    data, ts = buf.latest(6)
    assert data.shape == (3, 6) and ts.shape == (6,)
    np.testing.assert_array_equal(data[0], np.arange(3, 9) * 10)
    np.testing.assert_array_equal(data[2], np.arange(3, 9) * 10 + 2)
    np.testing.assert_allclose(ts, np.arange(3, 9) / 100)
    assert buf.n_written == 9


def test_wrap_around_and_oversized_write_keep_the_newest():
    buf = RingBuffer(3, 10, dtype=np.float64)
    buf.write(*_chunk(0, 7))
    buf.write(*_chunk(7, 6))  # wraps
    data, ts = buf.latest(10)
    np.testing.assert_array_equal(data[0] / 10, np.arange(3, 13))
    buf.write(*_chunk(13, 25))  # more than the capacity in one write
    assert buf.n_written == 38
    data, ts = buf.latest(10)
    np.testing.assert_array_equal(data[1], np.arange(28, 38) * 10 + 1)
    np.testing.assert_allclose(ts, np.arange(28, 38) / 100)


def test_latest_is_a_copy():
    buf = RingBuffer(2, 8)
    buf.write(np.ones((4, 2), np.float32), np.arange(4.0))
    data, _ = buf.latest(4)
    data[:] = 7
    assert buf.latest(4)[0].max() == 1.0


def test_latest_raises_when_too_few_or_too_many():
    buf = RingBuffer(3, 10)
    buf.write(*_chunk(0, 4))
    with pytest.raises(BufferOverrunError, match="only 4 samples"):
        buf.latest(5)
    with pytest.raises(BufferOverrunError, match="capacity"):
        buf.latest(11)
    assert buf.latest(0)[0].shape == (3, 0)


def test_read_by_absolute_index_and_overrun():
    buf = RingBuffer(3, 10, dtype=np.float64)
    buf.write(*_chunk(0, 25))
    data, ts = buf.read(15, 25)
    np.testing.assert_array_equal(data[0] / 10, np.arange(15, 25))
    np.testing.assert_allclose(ts, np.arange(15, 25) / 100)
    with pytest.raises(BufferOverrunError, match="overwritten"):
        buf.read(14, 20)
    assert buf.n_overruns == 1
    with pytest.raises(BufferOverrunError, match="not written yet"):
        buf.read(20, 26)
    assert buf.n_overruns == 1  # "not yet written" is not an overrun
    with pytest.raises(BufferOverrunError):
        buf.read(5, 4)


def test_clear_and_validation():
    buf = RingBuffer(3, 10)
    buf.write(*_chunk(0, 5))
    buf.clear()
    assert buf.n_written == 0 and buf.n_available == 0
    with pytest.raises(BufferOverrunError):
        buf.latest(1)
    with pytest.raises(AcquisitionError, match=r"\(n_samples, 3\)"):
        buf.write(np.zeros((4, 2)), np.zeros(4))
    with pytest.raises(AcquisitionError, match="timestamps shape"):
        buf.write(np.zeros((4, 3)), np.zeros(3))
    with pytest.raises(AcquisitionError, match="capacity"):
        RingBuffer(3, 0)
    with pytest.raises(AcquisitionError, match="n_channels"):
        RingBuffer(0, 10)


@settings(max_examples=60, deadline=None)
@given(
    capacity=st.integers(1, 40),
    sizes=st.lists(st.integers(0, 60), min_size=1, max_size=12),
    want=st.integers(0, 40),
)
def test_matches_a_plain_concatenation(capacity, sizes, want):
    buf = RingBuffer(2, capacity, dtype=np.float64)
    k0 = 0
    for n in sizes:
        buf.write(*_chunk(k0, n, 2))
        k0 += n
    ref, ref_ts = _chunk(0, k0, 2)
    assert buf.n_written == k0
    n = min(want, capacity, k0)
    data, ts = buf.latest(n)
    np.testing.assert_array_equal(data, ref[k0 - n :].T)
    np.testing.assert_array_equal(ts, ref_ts[k0 - n :])
    start = max(0, k0 - capacity)
    data, ts = buf.read(start, k0)
    np.testing.assert_array_equal(data, ref[start:].T)


def test_concurrent_reader_never_sees_torn_data():
    """A writer pushes chunks of consecutive samples (every channel = sample index); readers
    taking latest() and read() windows meanwhile must always see consecutive, matching samples."""
    n_ch, cap = 16, 256
    buf = RingBuffer(n_ch, cap, dtype=np.float64)
    stop = threading.Event()
    problems: list[str] = []
    windows = [0]

    def writer():
        k = 0
        rng = np.random.default_rng(1)
        while not stop.is_set() and k < 2_000_000:
            n = int(rng.integers(1, 300))  # sometimes larger than the capacity
            idx = np.arange(k, k + n, dtype=np.float64)
            buf.write(np.repeat(idx[:, None], n_ch, axis=1), idx * 0.5)
            k += n

    def reader():
        deadline = time.monotonic() + 5.0  # at most; usually done in well under a second
        while windows[0] < 500 and time.monotonic() < deadline:
            if buf.n_written < 64:
                continue
            data, ts = buf.latest(64)
            windows[0] += 1
            if not (np.all(data == data[0]) and np.all(np.diff(data[0]) == 1)
                    and np.array_equal(ts, data[0] * 0.5)):
                problems.append(f"torn latest window: {data[0][:5]}...")
                return
            end = buf.n_written
            try:
                d2, _ = buf.read(end - 32, end)
            except BufferOverrunError:
                continue  # the writer lapped us: legitimately reported
            if not np.array_equal(d2[0], np.arange(end - 32, end)):
                problems.append("read() returned the wrong samples")
                return

    threads = [threading.Thread(target=writer), threading.Thread(target=reader)]
    for t in threads:
        t.start()
    threads[1].join(10)
    stop.set()
    for t in threads:
        t.join(5)
    assert not problems, problems
    assert windows[0] > 50  # the reader really raced the writer
