"""The simulator's self-check, Qt-free: stream, read back through pylsl, say what arrived.

``neurodeck simulate --check`` builds a :class:`SimulatorCheck`, prints its header, calls
:meth:`SimulatorCheck.run` (with a per-second progress callback) and prints the
:class:`CheckResult`. A script can do the same::

    from neurodeck.acquisition.simulator import SimulatorConfig
    from neurodeck.app.workflow.simulate_check import SimulatorCheck

    check = SimulatorCheck(SimulatorConfig(n_channels=8, srate=256.0, counter_channel=True),
                           duration=2.0, speed=4.0)
    result = check.run()
    assert result.ok, result.problems
"""
from __future__ import annotations

import contextlib
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np

__all__ = ["CheckResult", "SimulatorCheck", "signals_ignored"]


@contextlib.contextmanager
def signals_ignored() -> Iterator[None]:
    """Let a clean-up finish even if Ctrl-C / SIGTERM is pressed again (main thread only)."""
    saved = {}
    try:
        for sig in (signal.SIGINT, signal.SIGTERM):
            saved[sig] = signal.signal(sig, signal.SIG_IGN)
    except ValueError:  # not the main thread: nothing to protect
        pass
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


@dataclass
class CheckResult:
    """What the self-check received, against what the simulator pushed.

    ``resolved`` is False when our own stream could not be found over LSL (nothing else is
    measured then). ``problems`` is empty when every sample arrived in order with its markers.
    """

    resolved: bool
    expected: int
    received: int = 0
    n_channels: int = 0
    n_eeg: int = 0
    stream_format: str = "double64"
    nominal_rate: float = float("nan")
    timestamp_rate: float = float("nan")
    arrival_rate: float = float("nan")
    speed: float = 1.0
    counter_ok: bool = False
    markers: list[tuple[str, float]] = field(default_factory=list)
    markers_pushed: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def lost(self) -> int:
        return self.expected - self.received

    @property
    def ok(self) -> bool:
        return self.resolved and not self.problems


class SimulatorCheck:
    """Stream ``duration`` seconds of a simulator, read them back through pylsl, compare.

    The simulator (with its COUNTER channel, required) is built here, so ``source_id`` and
    ``expected`` are known before :meth:`run` starts streaming.
    """

    def __init__(self, cfg, *, duration: float = 5.0, speed: float = 1.0,
                 source_id: str | None = None) -> None:
        from neurodeck.acquisition.simulator import Simulator

        if not cfg.counter_channel:
            raise ValueError("the self-check needs the simulator's COUNTER channel "
                             "(SimulatorConfig(counter_channel=True))")
        self.cfg = cfg
        self.duration = float(duration)
        self.sim = Simulator(cfg, speed=speed, source_id=source_id, wait_for_consumers=10.0,
                             duration=self.duration)

    @property
    def source_id(self) -> str:
        return self.sim.source_id

    @property
    def expected(self) -> int:
        return self.sim.n_total

    def run(self, progress: Callable[[int, int, int], None] | None = None) -> CheckResult:
        """Stream and read back; ``progress(second, samples, markers)`` once a second."""
        import pylsl

        sim, cfg, duration = self.sim, self.cfg, self.duration
        expected = sim.n_total
        n_ch = len(cfg.stream_labels)
        result = CheckResult(resolved=False, expected=expected, n_channels=n_ch,
                             n_eeg=len(cfg.labels), nominal_rate=cfg.srate, speed=sim.speed,
                             stream_format="double64" if cfg.counter_channel else "float32")
        minlet = inlet = None
        try:
            sim.start()
            infos = pylsl.resolve_byprop("source_id", sim.source_id, 1, 5.0)
            minfos = pylsl.resolve_byprop("source_id", sim.source_id + "-markers", 1, 5.0)
            if not infos or not minfos:
                return result
            result.resolved = True
            minlet = pylsl.StreamInlet(minfos[0])
            minlet.open_stream(5.0)
            inlet = pylsl.StreamInlet(infos[0], max_buflen=max(60, int(duration) + 10))
            inlet.open_stream(5.0)
            got_info = inlet.info(5.0)
            data = np.empty((expected, n_ch), dtype=np.float64)
            stamps = np.empty(expected)
            markers = result.markers
            n = n_first = 0
            first_arrival = last_arrival = None
            t0 = time.monotonic()
            deadline = t0 + duration / sim.speed + 15.0
            next_status = t0 + 1.0
            while n < expected and time.monotonic() < deadline:
                chunk, ts = inlet.pull_chunk(timeout=0.2, max_samples=min(4096, expected - n))
                if ts:
                    now = time.monotonic()
                    k = len(ts)
                    if first_arrival is None:
                        first_arrival, n_first = now, k
                    last_arrival = now
                    data[n : n + k] = np.asarray(chunk, dtype=np.float64)
                    stamps[n : n + k] = ts
                    n += k
                mk, mts = minlet.pull_chunk(timeout=0.0)
                markers += [(m[0], t) for m, t in zip(mk, mts, strict=True)]
                if time.monotonic() >= next_status:
                    if progress is not None:
                        progress(int(next_status - t0), n, len(markers))
                    next_status += 1.0
            t_end = time.monotonic() + 1.0  # markers of the last chunk may trail the data
            while len(markers) < sim.markers_pushed and time.monotonic() < t_end:
                mk, mts = minlet.pull_chunk(timeout=0.1)
                markers += [(m[0], t) for m, t in zip(mk, mts, strict=True)]
            extra, _ = inlet.pull_chunk(timeout=0.2)
        finally:
            with signals_ignored():
                for stream_inlet in (inlet, minlet):
                    if stream_inlet is not None:
                        stream_inlet.close_stream()
                sim.stop()
        self._judge(result, data[:n], stamps[:n], n_first, first_arrival, last_arrival, extra,
                    got_info.channel_count())
        return result

    def _judge(self, result: CheckResult, data, stamps, n_first, first_arrival, last_arrival,
               extra, got_channels: int) -> None:
        sim = self.sim
        n = result.received = len(data)
        result.markers_pushed = sim.markers_pushed
        problems = result.problems
        if sim.error is not None:
            problems.append(f"simulator thread failed: {sim.error}")
        counter = data[:, -1]
        result.counter_ok = True
        if n and not np.array_equal(counter, np.arange(n, dtype=np.float64)):
            steps = np.diff(counter)
            result.counter_ok = False
            problems.append(f"counter not contiguous: {int(np.sum(steps != 1))} jumps "
                            "(lost/reordered samples)")
        if result.lost:
            problems.append(f"{result.lost} of {result.expected} samples missing")
        if extra:
            problems.append(f"{len(extra)} unexpected samples after the end")
        if got_channels != result.n_channels:
            problems.append(f"stream has {got_channels} channels, expected {result.n_channels}")
        if len(result.markers) != sim.markers_pushed:
            problems.append(f"markers: {len(result.markers)} received of {sim.markers_pushed} pushed")
        if n > 1 and stamps[-1] > stamps[0]:
            result.timestamp_rate = (n - 1) / (stamps[-1] - stamps[0])
        if n and last_arrival and last_arrival > first_arrival:
            result.arrival_rate = (n - n_first) / (last_arrival - first_arrival) / sim.speed
