"""RingBuffer.read of some rows only, and of the timestamps only (what the online engine reads
per hop), across the ring's wrap-around."""
from __future__ import annotations

import numpy as np
import pytest

from neurodeck.acquisition.buffer import BufferOverrunError, RingBuffer


def test_rows_and_timestamps_equal_the_full_read_across_the_wrap():
    buf = RingBuffer(5, 100, dtype=np.float32)
    x = np.arange(5 * 170, dtype=np.float32).reshape(170, 5)  # LSL layout (samples, channels)
    buf.write(x[:90], np.arange(90) * 0.01)
    buf.write(x[90:], np.arange(90, 170) * 0.01)  # wraps
    rows = np.array([4, 0, 2])
    for a, b in ((75, 95), (100, 170), (160, 170), (120, 120)):
        data, ts = buf.read(a, b)
        sub, ts2 = buf.read(a, b, rows=rows)
        np.testing.assert_array_equal(sub, data[rows])
        np.testing.assert_array_equal(ts2, ts)
        np.testing.assert_array_equal(buf.read_timestamps(a, b), ts)
        assert sub.dtype == np.float32 and sub.shape == (3, b - a)
    with pytest.raises(BufferOverrunError, match="overwritten"):
        buf.read_timestamps(60, 80)
    with pytest.raises(BufferOverrunError, match="not written yet"):
        buf.read(160, 171, rows=rows)
