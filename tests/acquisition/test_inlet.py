"""Threaded inlets on real loopback LSL: no sample lost or reordered, loss and recovery counted,
markers complete, wrong choices rejected clearly."""
from __future__ import annotations

import threading
import time

import numpy as np
import pylsl
import pytest

from neurodeck.acquisition.errors import AcquisitionError, StreamNotFoundError
from neurodeck.acquisition.inlet import Inlet, MarkerInlet, StreamState
from neurodeck.acquisition.outlet import MarkerOutlet, make_stream_info
from neurodeck.acquisition.streams import StreamDescription, resolve_stream
from tests.acquisition.conftest import CounterSource


def _wait(pred, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.01)
    return pred()


def _in_order(seq, wanted) -> bool:
    """``wanted`` occurs in ``seq`` as a subsequence."""
    it = iter(seq)
    return all(any(x == w for x in it) for w in wanted)


class _Collector:
    def __init__(self):
        self.data, self.ts = [], []

    def __call__(self, data, ts):
        assert data.ndim == 2 and ts.shape == (data.shape[0],)
        self.data.append(data)
        self.ts.append(ts)

    def counter(self):
        return np.concatenate([d[:, -1] for d in self.data]).astype(np.int64)

    def timestamps(self):
        return np.concatenate(self.ts)


def test_ten_seconds_64ch_512hz_nothing_lost_or_reordered(counter_source):
    src = counter_source(n_channels=64, srate=512.0, chunk=16).open()
    inlet = Inlet(src.name, buffer_seconds=30.0)
    got = _Collector()
    inlet.add_chunk_listener(got)
    window_problems: list[str] = []
    n_windows = [0]
    stop = threading.Event()

    def reader():  # the online decoder's view: latest() windows while the thread writes
        while not stop.is_set():
            if inlet.n_received >= 512:
                data, ts = inlet.latest(512)
                k = data[-1]
                n_windows[0] += 1
                if not (np.all(np.diff(k) == 1) and np.allclose(ts, src.t0 + k / 512.0, atol=1e-3)):
                    window_problems.append(f"window {k[:3]}..{k[-3:]}")
            time.sleep(0.02)

    with inlet:
        assert inlet.state is StreamState.CONNECTED
        assert src.outlet.wait_for_consumers(5)
        rd = threading.Thread(target=reader)
        rd.start()
        src.start(duration=10.0)
        src.join(15)
        assert src.error is None
        assert inlet.wait_for_samples(src.pushed, timeout=5)
        stop.set()
        rd.join()
        counters = inlet.counters
        data, ts = inlet.latest(src.pushed)
    assert src.pushed == 5120  # 10 s at 512 Hz
    np.testing.assert_array_equal(got.counter(), np.arange(src.pushed))  # each once, in order
    np.testing.assert_array_equal(data[-1], np.arange(src.pushed))
    np.testing.assert_allclose(ts, src.t0 + np.arange(src.pushed) / 512.0, atol=1e-3)
    np.testing.assert_array_equal(got.timestamps(), ts)
    assert data.shape == (64, src.pushed) and data.dtype == np.float32
    assert counters.samples_received == src.pushed
    assert counters.gaps == 0 and counters.samples_missing == 0
    assert counters.reconnects == 0 and counters.chunks > 50
    assert not window_problems, window_problems[:3]
    assert n_windows[0] > 20  # the reader really ran alongside (~400 windows when idle)
    assert inlet.state is StreamState.STOPPED


def _recovery_inlet(name, states, dejitter=False):
    # thresholds well above scheduling hiccups on a loaded 2-core CI machine
    inlet = Inlet(name, stall_after=0.3, lost_after=0.8, recovered_hold=0.2, reresolve_interval=0.2,
                  dejitter=dejitter)
    inlet.add_state_listener(lambda old, new: states.append(new))
    return inlet


def test_source_killed_and_restarted_same_source_id(counter_source):
    src = counter_source(n_channels=4, srate=256.0, chunk=8).open()
    states: list[StreamState] = []
    got = _Collector()
    inlet = _recovery_inlet(src.name, states)
    inlet.add_chunk_listener(got)
    with inlet:
        src.outlet.wait_for_consumers(5)
        src.start()
        assert inlet.wait_for_samples(100, 5)
        r0 = inlet.counters.reconnects  # 0 unless the machine hiccuped
        src.close()  # the amplifier program dies
        assert _wait(lambda: inlet.state is StreamState.LOST, 3)
        time.sleep(0.3)
        n_before = inlet.n_received
        src.start()  # same name and source id, new outlet: liblsl reconnects
        assert _wait(lambda: inlet.n_received > n_before + 100, 10), inlet.state
        assert _wait(lambda: inlet.state is StreamState.CONNECTED, 3)
        src.close()
        counters = inlet.counters
    k = got.counter()
    jumps = np.diff(k)
    assert np.all(jumps >= 1)  # never reordered nor duplicated
    assert np.count_nonzero(jumps != 1) == 1  # one outage, visible in the counter
    true_missing = int(jumps.max() - 1)
    assert true_missing > 0.7 * 256  # > 0.7 s offline
    assert counters.gaps == 1
    assert abs(counters.samples_missing - true_missing) <= 2  # from timestamps alone
    assert counters.reconnects == r0 + 1
    assert _in_order(states, [StreamState.CONNECTED, StreamState.STALLED, StreamState.LOST,
                              StreamState.RECOVERED, StreamState.CONNECTED, StreamState.STOPPED])
    assert inlet.description.source_id == src.source_id


def test_new_source_id_with_the_same_name_is_adopted(counter_source):
    first = counter_source(n_channels=4, srate=256.0, chunk=8).open()
    states: list[StreamState] = []
    got = _Collector()
    inlet = _recovery_inlet(first.name, states, dejitter=True)  # the jump survives dejittering
    inlet.add_chunk_listener(got)
    with inlet:
        old_uid = inlet.description.uid
        first.outlet.wait_for_consumers(5)
        first.start()
        assert inlet.wait_for_samples(100, 5)
        r0 = inlet.counters.reconnects
        first.close()
        assert _wait(lambda: inlet.state is StreamState.LOST, 3)
        second = counter_source(n_channels=4, srate=256.0, chunk=8, source_id=first.source_id + "-new")
        second.t0, second.next_k = first.t0, first.next_k  # same amplifier clock and counter
        n_before = inlet.n_received
        second.start()
        assert _wait(lambda: inlet.n_received > n_before + 100, 10), inlet.state
        second.close()
        desc, counters = inlet.description, inlet.counters
    assert desc.source_id == first.source_id + "-new" and desc.uid != old_uid
    assert desc.labels == tuple(first.labels)
    k = got.counter()
    assert np.all(np.diff(k) >= 1) and np.count_nonzero(np.diff(k) != 1) == 1
    assert counters.gaps == 1 and counters.reconnects == r0 + 1
    assert abs(counters.samples_missing - int(np.diff(k).max() - 1)) <= 2
    assert _in_order(states, [StreamState.LOST, StreamState.RECOVERED])


def test_listener_errors_are_stored_not_fatal(counter_source):
    src = counter_source(n_channels=3, srate=200.0, chunk=4).open()
    calls = []

    def bad(data, ts):
        calls.append(len(ts))
        if len(calls) == 1:
            raise ValueError("listener bug")

    inlet = Inlet(src.name)
    inlet.add_chunk_listener(bad)
    with inlet:
        src.outlet.wait_for_consumers(5)
        src.start()
        assert inlet.wait_for_samples(100, 5)
        assert inlet.running
        src.close()
    assert isinstance(inlet.error, ValueError)
    assert len(calls) > 1 and sum(calls) == inlet.n_received


def test_wait_for_samples_times_out_and_description_before_start(counter_source):
    src = counter_source(n_channels=3, srate=100.0).open()
    inlet = Inlet(StreamDescription(src.name, "EEG", 3, 100.0, "float32", source_id=src.source_id))
    desc = inlet.description  # resolves lazily, before start
    assert desc.labels == ("C0", "C1", "counter") and desc.units[0] == "microvolts"
    assert inlet.buffer.capacity == 3000 and inlet.buffer.n_channels == 3
    with inlet:
        assert inlet.wait_for_samples(1, timeout=0.2) is False
        assert inlet.n_received == 0


def test_a_source_that_has_not_started_stalls_quietly_a_stopped_one_warns(counter_source, caplog):
    src = counter_source(n_channels=3, srate=200.0, chunk=4).open()
    inlet = Inlet(src.name, stall_after=0.2, lost_after=5.0)
    states = []
    inlet.add_state_listener(lambda old, new: states.append(new))
    with caplog.at_level("INFO", logger="neurodeck.acquisition.inlet"), inlet:
        assert _wait(lambda: inlet.state is StreamState.STALLED, 5)  # the state still says it
        src.start()
        assert inlet.wait_for_samples(100, 5)
        assert inlet.state is StreamState.CONNECTED
        src.stop()
        assert _wait(lambda: inlet.state is StreamState.STALLED, 5)
    stalls = [r for r in caplog.records if "-> stalled" in r.getMessage()]
    assert [(r.levelname, r.getMessage().endswith("(no data yet)")) for r in stalls] == [
        ("INFO", True), ("WARNING", False)]
    S = StreamState
    assert states == [S.CONNECTING, S.CONNECTED, S.STALLED, S.CONNECTED, S.STALLED, S.STOPPED]


def test_inlet_rejects_string_streams_and_unknown_names(unique_name):
    markers = MarkerOutlet(unique_name, source_id=unique_name)
    try:
        with pytest.raises(AcquisitionError, match="use MarkerInlet"):
            Inlet(resolve_stream(name=unique_name, timeout=5))
        inlet = Inlet(unique_name)
        with pytest.raises(AcquisitionError, match="'string'.*MarkerInlet"):
            inlet.start()
        assert inlet.state is StreamState.STOPPED and not inlet.running
    finally:
        markers.close()
    missing = Inlet(unique_name + "-absent", resolve_timeout=0.3)
    with pytest.raises(StreamNotFoundError, match=f"name='{unique_name}-absent'"):
        missing.start()
    with pytest.raises(AcquisitionError, match="lost_after"):
        Inlet("x", stall_after=2.0, lost_after=1.0)
    with pytest.raises(AcquisitionError, match="expected a pylsl.StreamInfo"):
        Inlet(42)


def test_marker_inlet_receives_every_marker_with_label_and_time(unique_name):
    out = MarkerOutlet(unique_name, source_id=unique_name)
    heard = []
    try:
        with MarkerInlet(unique_name) as inlet:
            inlet.add_marker_listener(lambda t, label: heard.append((t, label)))
            assert out.wait_for_consumers(5)
            sent = []
            for i in range(60):
                label = ["769", "770", "left hand", "ünïcode|ok"][i % 4]
                sent.append((out.push(label), label))
                if i % 10 == 0:
                    time.sleep(0.01)
            assert inlet.wait_for_markers(60, 5)
            got = inlet.drain()
            assert inlet.drain() == []
            assert inlet.n_markers == 60 and inlet.description.is_marker
    finally:
        out.close()
    assert [lab for _, lab in got] == [lab for _, lab in sent]
    np.testing.assert_allclose([t for t, _ in got], [t for t, _ in sent], atol=1e-3)
    assert heard == got


def test_marker_inlet_int_markers_and_rejects_float(unique_name):
    info = make_stream_info(unique_name, "Markers", ["code"], 0.0, fmt="int32", source_id=unique_name)
    out = pylsl.StreamOutlet(info)  # DataOutlet.push_sample sends floats
    try:
        with MarkerInlet(unique_name) as inlet:
            assert out.wait_for_consumers(5)
            for code in (769, 770, 32766):
                out.push_sample([code], timestamp=100.0 + code)
            assert inlet.wait_for_markers(3, 5)
            got = inlet.drain()
    finally:
        del out
    assert [lab for _, lab in got] == ["769", "770", "32766"]
    np.testing.assert_allclose([t for t, _ in got], [869.0, 870.0, 32866.0], atol=1e-3)
    floats = make_stream_info(unique_name + "-f", "Control", ["x"], 0.0, fmt="float32")
    with pytest.raises(AcquisitionError, match="use Inlet"):
        MarkerInlet(floats)


def test_marker_inlet_recovers_after_the_outlet_restarts(unique_name):
    states: list[StreamState] = []
    out = MarkerOutlet(unique_name, source_id=unique_name)
    inlet = MarkerInlet(unique_name, reresolve_interval=0.2, recovered_hold=0.2)
    inlet.add_state_listener(lambda old, new: states.append(new))
    try:
        with inlet:
            assert out.wait_for_consumers(5)
            out.push("before")
            assert inlet.wait_for_markers(1, 5)
            out.close()
            assert _wait(lambda: inlet.state is StreamState.LOST, 3)
            out = MarkerOutlet(unique_name, source_id=unique_name)
            assert _wait(lambda: inlet.state is not StreamState.LOST, 5)
            assert out.wait_for_consumers(5)
            out.push("after")
            assert inlet.wait_for_markers(2, 5)
            labels = [lab for _, lab in inlet.drain()]
            counters = inlet.counters
    finally:
        out.close()
    assert labels == ["before", "after"]
    assert counters.reconnects == 1  # markers: only a broken connection counts, never silence
    assert _in_order(states, [StreamState.CONNECTED, StreamState.LOST, StreamState.RECOVERED])


def test_counter_source_helper_is_exact():
    # guards the helper the loss tests rely on: timestamps are t0 + k / srate exactly
    src = CounterSource("unused", "unused", n_channels=2, srate=100.0, chunk=4)
    assert src.labels == ["C0", "counter"]


def test_source_without_source_id_is_found_again_by_name(counter_source):
    """liblsl cannot recover a source without source id (it reports it lost); the inlet then
    re-resolves by name and adopts the restarted outlet."""
    src = counter_source(n_channels=3, srate=256.0, chunk=8, source_id="").open()
    states: list[StreamState] = []
    got = _Collector()
    inlet = _recovery_inlet(src.name, states)
    inlet.add_chunk_listener(got)
    with inlet:
        src.outlet.wait_for_consumers(5)
        src.start()
        assert inlet.wait_for_samples(100, 5)
        r0 = inlet.counters.reconnects
        src.close()
        assert _wait(lambda: inlet.state is StreamState.LOST, 3)
        time.sleep(0.2)
        n_before = inlet.n_received
        src.start()
        assert _wait(lambda: inlet.n_received > n_before + 100, 10), inlet.state
        src.close()
        counters = inlet.counters
    k = got.counter()
    assert np.all(np.diff(k) >= 1) and np.count_nonzero(np.diff(k) != 1) == 1
    assert counters.gaps == 1 and counters.reconnects == r0 + 1
    assert abs(counters.samples_missing - int(np.diff(k).max() - 1)) <= 2
    assert _in_order(states, [StreamState.LOST, StreamState.RECOVERED])


def test_irregular_numeric_stream_decisions(unique_name):
    from neurodeck.acquisition.outlet import DecisionOutlet

    out = DecisionOutlet(unique_name, ["left", "right"], source_id=unique_name)
    states: list[StreamState] = []
    try:
        inlet = Inlet(unique_name, stall_after=0.05, lost_after=0.1)
        inlet.add_state_listener(lambda old, new: states.append(new))
        with inlet:
            assert inlet.description.labels == ("left", "right")
            assert out.wait_for_consumers(5)
            for i in range(5):
                out.push([i / 10, 1 - i / 10], timestamp=50.0 + i)
                time.sleep(0.06)  # silences longer than lost_after: normal for decisions
            assert inlet.wait_for_samples(5, 5)
            data, ts = inlet.latest(5)
    finally:
        out.close()
    np.testing.assert_allclose(data[0], np.arange(5) / 10, atol=1e-6)
    np.testing.assert_allclose(ts, 50.0 + np.arange(5), atol=1e-3)
    assert StreamState.STALLED not in states and StreamState.LOST not in states
    assert inlet.counters.gaps == 0


def test_simulator_to_inlets_counter_and_cue_markers(unique_name):
    """The project's simulator (64 ch @ 512 Hz + COUNTER) through Inlet and MarkerInlet: the
    counter is complete and in order, and every cue marker sits on an EEG sample's timestamp."""
    from neurodeck.acquisition.simulator import Simulator, SimulatorConfig

    cfg = SimulatorConfig(
        n_channels=64, srate=512.0, name=unique_name, counter_channel=True, seed=3,
        fixation_s=0.5, cue_s=0.5, imagery_s=1.0, rest_s=(0.3, 0.4),
    )
    got = _Collector()
    sim = Simulator(cfg, source_id=unique_name, wait_for_consumers=5.0).start()
    try:
        with Inlet(unique_name) as eeg, MarkerInlet(unique_name + "-markers") as markers:
            eeg.add_chunk_listener(got)
            assert eeg.description.labels[-1] == "COUNTER"
            assert eeg.description.units[0] == "microvolts"
            assert eeg.wait_for_samples(4 * 512, timeout=15)
            sim.stop()
            time.sleep(0.2)
            counters = eeg.counters
            cues = markers.drain()
    finally:
        sim.stop()
    k = got.counter()
    np.testing.assert_array_equal(k, np.arange(len(k)))  # from sample 0, nothing lost
    assert counters.gaps == 0 and counters.samples_received == len(k) >= 4 * 512
    assert len(cues) >= 4
    ts = got.timestamps()
    on_grid = [np.min(np.abs(ts - t)) < 1e-4 for t, _ in cues if t <= ts[-1]]
    assert on_grid and all(on_grid)
    assert {lab for _, lab in cues} & {"769", "770"}  # left/right hand cue codes


def test_reader_overruns_are_counted(counter_source):
    from neurodeck.acquisition.buffer import BufferOverrunError

    src = counter_source(n_channels=3, srate=200.0, chunk=4).open()
    with Inlet(src.name, buffer_seconds=0.5) as inlet:  # 100 samples
        src.outlet.wait_for_consumers(5)
        src.start()
        assert inlet.wait_for_samples(150, 5)
        with pytest.raises(BufferOverrunError, match="overwritten"):
            inlet.buffer.read(0, 10)
        end = inlet.n_received
        data, _ = inlet.buffer.read(end - 50, end)
        src.close()
    np.testing.assert_array_equal(data[-1], np.arange(end - 50, end))
    assert inlet.counters.overruns == 1


def test_incompatible_new_source_with_the_same_name_is_not_adopted(counter_source):
    first = counter_source(n_channels=4, srate=256.0, chunk=8).open()
    inlet = _recovery_inlet(first.name, [])
    with inlet:
        first.outlet.wait_for_consumers(5)
        first.start()
        assert inlet.wait_for_samples(50, 5)
        r0 = inlet.counters.reconnects
        first.close()
        assert _wait(lambda: inlet.state is StreamState.LOST, 3)
        other = counter_source(n_channels=6, srate=256.0, source_id="other").open()
        assert _wait(lambda: inlet.error is not None, 5)
        assert inlet.state is StreamState.LOST
        other.close()
    msg = str(inlet.error)
    assert "not switching" in msg and "6 ch" in msg and "4 ch" in msg
    assert inlet.description.n_channels == 4 and inlet.counters.reconnects == r0


def test_timestamps_deduced_from_zero_after_a_connection_are_repaired(unique_name):
    """liblsl stamps samples sent without a timestamp as previous + 1/srate, and the 'previous' of
    a fresh connection is 0: a connection that starts mid-chunk got stamps ~0.01 s (seen as a
    2500-s fake gap after a recovery). The inlet re-derives them from the next real stamp."""
    deduced = pylsl.util.DEDUCED_TIMESTAMP
    out = pylsl.StreamOutlet(make_stream_info(unique_name, "EEG", ["k"], 100.0, source_id=unique_name))
    got = _Collector()
    try:
        with Inlet(unique_name) as inlet:
            inlet.add_chunk_listener(got)
            assert out.wait_for_consumers(5)
            t_real = pylsl.local_clock()
            for k in range(5):  # the tail of a chunk whose stamped first sample was missed
                out.push_sample([float(k)], deduced)
            time.sleep(0.2)  # pulled alone: nothing trustworthy yet, so held back
            held = inlet.n_received
            out.push_sample([5.0], t_real)
            for k in range(6, 12):
                out.push_sample([float(k)], deduced)
            assert inlet.wait_for_samples(12, 5)
            counters = inlet.counters
            data, ts = inlet.latest(12)
    finally:
        del out
    assert held == 0
    np.testing.assert_array_equal(got.counter(), np.arange(12))
    np.testing.assert_allclose(ts, t_real + (np.arange(12) - 5) / 100.0, atol=1e-3)
    np.testing.assert_allclose(got.timestamps(), ts)
    assert counters.timestamps_repaired == 5 and counters.gaps == 0


def test_pull_thread_wakes_on_data_not_on_its_poll_clock(unique_name):
    """A sample (or marker) is delivered as soon as it arrives, however long the pull thread's
    longest wait (``poll_interval``) is: it waits inside liblsl for data instead of sleeping
    between polls (a 1 ms poll cost ~1000 wakeups/s and up to 1 ms of delay). Before, a sample
    pushed while the thread slept came only after the whole ``poll_interval``."""
    from neurodeck.acquisition.outlet import DecisionOutlet

    out = DecisionOutlet(unique_name, ["left", "right"], source_id=unique_name)
    markers = MarkerOutlet(unique_name + "-m", source_id=unique_name + "-m")
    inlet = Inlet(unique_name, stall_after=5.0, lost_after=10.0, poll_interval=3.0)
    minlet = MarkerInlet(unique_name + "-m", poll_interval=3.0)
    try:
        with inlet, minlet:
            assert out.wait_for_consumers(5) and markers.wait_for_consumers(5)
            time.sleep(0.3)  # both threads are in their first (empty) wait
            out.push([0.25, 0.75], timestamp=pylsl.local_clock())
            markers.push("cue, left")
            assert inlet.wait_for_samples(1, 1.5), "sample not delivered within 1.5 s"
            assert minlet.wait_for_markers(1, 1.5), "marker not delivered within 1.5 s"
            assert [m[1] for m in minlet.drain()] == ["cue, left"]
    finally:
        out.close()
        markers.close()
    np.testing.assert_allclose(inlet.latest(1)[0][:, 0], [0.25, 0.75], atol=1e-6)


def _stamped_source(name: str, stamp_ahead, n_chunks: int = 48, srate: float = 256.0,
                    chunk: int = 8):
    """A real LSL outlet pushing ``n_chunks`` chunks in real time, each when its last sample is
    due, stamped ``due + stamp_ahead(k)`` (k = chunk number). Returns (outlet, start())."""
    info = pylsl.StreamInfo(name, "EEG", 2, srate, "float32", name)
    outlet = pylsl.StreamOutlet(info, chunk_size=chunk)

    def run():
        t0 = pylsl.local_clock() + 0.05
        for k in range(n_chunks):
            due = t0 + ((k + 1) * chunk - 1) / srate
            delay = due - pylsl.local_clock()
            if delay > 0:
                time.sleep(delay)
            block = np.column_stack([np.zeros(chunk), np.arange(k * chunk, (k + 1) * chunk)])
            outlet.push_chunk(block.astype(np.float32), due + stamp_ahead(k))

    th = threading.Thread(target=run, daemon=True)
    return outlet, th.start


def _lead_warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.levelname == "WARNING" and "ahead of their arrival" in r.getMessage()]


def test_a_source_stamping_200_ms_ahead_is_reported(unique_name, caplog):
    outlet, start = _stamped_source(unique_name, lambda k: 0.2)
    inlet = Inlet(unique_name, stall_after=2.0, lost_after=5.0)
    with caplog.at_level("INFO", logger="neurodeck.acquisition.inlet"), inlet:
        assert outlet.wait_for_consumers(5)
        start()
        assert inlet.wait_for_samples(48 * 8, 10)
    assert 0.19 < inlet.stamp_lead < 0.25, inlet.stamp_lead
    assert inlet.clock_uncertainty is not None and inlet.clock_uncertainty < 0.05
    (msg,) = _lead_warnings(caplog)
    assert "the source stamps ahead of time" in msg


def test_lead_spikes_of_single_chunks_are_not_a_stamping_error(unique_name, caplog):
    """A source that stamps correctly, except every 4th chunk stamped 105 ms ahead
    (what a noisy clock offset on a machine at load ~40 made of a correct source): before, the
    first spike was reported ("105 ms ahead") and latency was "corrected" by it."""
    outlet, start = _stamped_source(unique_name, lambda k: 0.105 if k % 4 == 1 else 0.0)
    inlet = Inlet(unique_name, stall_after=2.0, lost_after=5.0)
    with caplog.at_level("INFO", logger="neurodeck.acquisition.inlet"), inlet:
        assert outlet.wait_for_consumers(5)
        start()
        assert inlet.wait_for_samples(48 * 8, 10)
    assert inlet.stamp_lead == 0.0
    assert _lead_warnings(caplog) == []


def test_a_persistent_lead_within_the_clock_uncertainty_is_not_reported(unique_name, caplog,
                                                                        monkeypatch):
    """liblsl's clock offset with a 150 ms uncertainty (its probes took 300 ms round trips, as on a
    very loaded machine): a 100 ms lead on every chunk is within it, so it is logged as doubtful,
    not reported; the same lead with a 1 ms uncertainty is reported (previous test)."""
    import neurodeck.acquisition.inlet as inlet_mod

    monkeypatch.setattr(inlet_mod, "_time_correction_ex", lambda inlet, timeout=0.0: (0.0, 0.15))
    outlet, start = _stamped_source(unique_name, lambda k: 0.1)
    inlet = Inlet(unique_name, stall_after=2.0, lost_after=5.0)
    with caplog.at_level("INFO", logger="neurodeck.acquisition.inlet"), inlet:
        assert outlet.wait_for_consumers(5)
        start()
        assert inlet.wait_for_samples(48 * 8, 10)
    assert inlet.stamp_lead == 0.0
    assert inlet.clock_uncertainty == pytest.approx(0.15)
    assert _lead_warnings(caplog) == []
    assert any("within liblsl's clock-offset uncertainty (150.0 ms" in r.getMessage()
               for r in caplog.records)


def test_a_loss_between_the_two_pulls_of_a_round_keeps_the_sample_already_taken():
    """liblsl may declare the stream lost after the first pull of a round took one sample: that
    sample is delivered, and the loss is reported by the next round's pull."""
    from pylsl.util import LostError

    info = make_stream_info("nd-fake-lost", "EEG", ["C3", "C4"], 100.0, source_id="nd-fake")
    inlet = Inlet(info, buffer_seconds=1)
    inlet._set_description(StreamDescription.from_info(info))
    inlet._stamps_as_sent = True

    class Lsl:  # what liblsl does: one sample, then the connection is gone
        calls = 0

        def pull_chunk(self, timeout, max_samples, dest_obj, as_numpy):
            Lsl.calls += 1
            if Lsl.calls > 1:
                raise LostError("lost")
            dest_obj[0] = (1.0, 2.0)
            return dest_obj[:1], np.array([5.0])

    inlet._inlet = Lsl()
    got = []
    inlet.add_chunk_listener(lambda d, ts: got.append((d.copy(), ts.copy())))
    assert inlet._pull() == 1
    assert len(got) == 1 and got[0][0].tolist() == [[1.0, 2.0]] and got[0][1].tolist() == [5.0]
    assert inlet.n_received == 1
    with pytest.raises(LostError):
        inlet._pull()


def test_a_timed_out_wait_while_liblsl_recovers_is_a_round_without_data():
    """liblsl may raise its TimeoutError from a pull while it recovers a connection (seen in CI:
    the recorder's pull thread crashed and the recording lost the rest of the stream). It is a
    round without data; the next round delivers."""
    from pylsl.util import TimeoutError as LSLTimeoutError

    info = make_stream_info("nd-fake-timeout", "EEG", ["C3", "C4"], 100.0, source_id="nd-fake-t")
    inlet = Inlet(info, buffer_seconds=1)
    inlet._set_description(StreamDescription.from_info(info))
    inlet._stamps_as_sent = True

    class Lsl:
        calls = 0

        def pull_chunk(self, timeout, max_samples, dest_obj, as_numpy):
            Lsl.calls += 1
            if Lsl.calls == 1:
                raise LSLTimeoutError("the operation failed due to a timeout.")
            if Lsl.calls == 2:
                dest_obj[0] = (1.0, 2.0)
                return dest_obj[:1], np.array([5.0])
            return dest_obj[:0], np.array([])

    inlet._inlet = Lsl()
    assert inlet._pull() == 0
    assert inlet._pull() == 1 and inlet.n_received == 1


def test_what_reached_the_inlet_before_stop_is_delivered_even_from_a_starved_thread(unique_name):
    """A pull thread starved of CPU (CI: 4 workers on 2 cores) may be several chunks behind when
    the inlet stops: what liblsl already holds is delivered at stop, not dropped (a recording
    lost its last 44 samples that way), including samples held back for a trustworthy stamp."""

    class Starved(Inlet):
        def _pull(self):
            time.sleep(0.3)  # the thread gets the CPU only now and then
            return super()._pull()

    out = pylsl.StreamOutlet(make_stream_info(unique_name, "EEG", ["k"], 256.0, source_id=unique_name))
    got = _Collector()
    inlet = Starved(unique_name).start()
    inlet.add_chunk_listener(got)
    try:
        assert out.wait_for_consumers(5)
        time.sleep(0.4)
        for start in range(0, 300, 16):  # a device clock from 1 s: held back, then as sent
            out.push_chunk([[float(k)] for k in range(start, min(start + 16, 300))],
                           1.0 + (min(start + 16, 300) - 1) / 256.0)
        time.sleep(0.5)  # in the inlet's liblsl buffer, not yet pulled
        assert inlet.n_received < 300
    finally:
        inlet.stop()
        del out
    np.testing.assert_array_equal(got.counter(), np.arange(300))
