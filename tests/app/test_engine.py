"""Online engine on a real loopback LSL stream: exact windows, timestamps, invalid windows."""
from __future__ import annotations

import contextlib
import time

import numpy as np
import pylsl
import pytest

from neurodeck.acquisition.inlet import Inlet
from neurodeck.acquisition.outlet import DataOutlet, make_stream_info
from neurodeck.app.engine import EngineState, OnlineEngine
from tests.conftest import wait_until

SRATE = 256.0
LABELS = ["C3", "Cz", "C4", "COUNTER"]


class CounterDecoder:
    """Reports the first and last counter value of each window: proves which samples it saw."""

    labels = ("first", "last")
    window_samples = 128

    def stream_picks(self, ch_names, sfreq):
        assert sfreq == SRATE
        return np.array([list(ch_names).index("COUNTER")])

    def decide(self, window):
        assert window.shape == (1, self.window_samples)
        return np.array([window[0, 0], window[0, -1]])


def _push(outlet, n_total, chunk, nan_at=None, stop=None):
    t0 = pylsl.local_clock()
    for start in range(0, n_total, chunk):
        if stop is not None and stop.is_set():
            return
        idx = np.arange(start, start + chunk, dtype=np.float64)
        block = np.zeros((chunk, len(LABELS)))
        block[:, -1] = idx
        if nan_at is not None and start <= nan_at < start + chunk:
            block[nan_at - start, 0] = np.nan
        last_ts = t0 + (start + chunk - 1) / SRATE
        while pylsl.local_clock() < last_ts:
            time.sleep(0.001)
        outlet.push_chunk(block, last_ts)


@pytest.fixture
def source(unique_name):
    info = make_stream_info(unique_name, "EEG", LABELS, SRATE, fmt="double64", source_id=unique_name)
    outlet = DataOutlet(info)
    return unique_name, outlet


def test_engine_decides_on_exact_hop_windows_and_publishes(source):
    name, outlet = source
    inlet = Inlet(name, buffer_seconds=10)
    inlet.start()
    engine = OnlineEngine(CounterDecoder(), inlet, hop_s=32 / SRATE, out_name=f"{name}-dec")
    got = []
    engine.add_decision_listener(got.append)
    with pytest.raises(RuntimeError, match="once the engine has started"):
        engine.hop_samples  # noqa: B018
    engine.start()
    assert engine.hop_samples == 32
    dec_inlet = pylsl.StreamInlet(
        pylsl.resolve_byprop("name", f"{name}-dec", timeout=5)[0], processing_flags=0
    )
    dec_inlet.open_stream(timeout=5)
    n_total = int(SRATE * 3)
    _push(outlet, n_total, 16, nan_at=1000)
    assert wait_until(lambda: got and got[-1].index == n_total, 10), [d.index for d in got[-3:]]
    received, rts = [], []

    def read_back() -> bool:
        values, stamps = dec_inlet.pull_chunk(timeout=0.0, max_samples=10_000)
        received.extend(values)
        rts.extend(stamps)
        return len(received) >= len(got)

    assert wait_until(read_back, 10), (len(received), len(got))
    engine.stop()
    inlet.stop()

    assert engine.state is EngineState.STOPPED and engine.error is None
    assert engine.stats.skipped_hops == 0
    ends = [d.index for d in got]
    # first decision once a full window is there, then every hop, nothing skipped or repeated
    assert ends[0] == 128
    assert np.all(np.diff(ends) == 32)
    assert ends[-1] == n_total
    for d in got:
        if d.valid:
            assert d.values.tolist() == [d.index - 128, d.index - 1]
    # the windows holding the NaN sample (index 1000) are invalid, all others valid
    bad = [d.index for d in got if not d.valid]
    assert bad == [e for e in ends if e - 128 <= 1000 < e]
    assert all("NaN" in d.reason for d in got if not d.valid)
    # every decision reached an independent inlet, with the last sample's timestamp
    received = np.asarray(received)
    assert len(received) == len(got)
    valid = received[:, 2] == 1.0
    assert np.array_equal(received[valid, 1], [d.values[1] for d in got if d.valid])
    assert np.all(np.isnan(received[~valid, :2]))
    np.testing.assert_allclose(rts, [d.timestamp for d in got], atol=1e-6)


def test_engine_refuses_a_model_that_does_not_fit_the_stream(source):
    name, outlet = source

    class WrongRate(CounterDecoder):
        def stream_picks(self, ch_names, sfreq):
            raise ValueError(f"stream rate {sfreq} Hz differs from the model's 512 Hz")

    inlet = Inlet(name, buffer_seconds=2)
    inlet.start()
    try:
        with pytest.raises(ValueError, match="512 Hz"):
            OnlineEngine(WrongRate(), inlet, out_name=None).start()
    finally:
        inlet.stop()


def test_engine_skips_windows_across_a_gap(source):
    name, outlet = source
    inlet = Inlet(name, buffer_seconds=10, stall_after=0.2, lost_after=0.4)
    inlet.start()
    engine = OnlineEngine(CounterDecoder(), inlet, hop_s=32 / SRATE, out_name=None)
    got = []
    engine.add_decision_listener(got.append)
    states = []
    engine.add_state_listener(lambda old, new: states.append(new))
    engine.start()
    _push(outlet, 512, 16)
    time.sleep(0.8)  # the source pauses: timestamps jump
    _push(outlet, 512, 16)
    assert wait_until(lambda: got and got[-1].index == 1024, 10), [d.index for d in got[-3:]]
    engine.stop()
    inlet.stop()
    invalid = [d for d in got if not d.valid]
    assert invalid, "windows spanning the pause must be flagged"
    assert all("gap" in d.reason for d in invalid)
    # exactly the windows ending 1, 2 and 3 hops after the pause mix samples from both sides
    assert [d.index for d in invalid] == [512 + 32, 512 + 64, 512 + 96]
    assert EngineState.PAUSED in states and states[-1] is EngineState.STOPPED
    assert got[-1].valid


def test_engine_windows_are_the_offline_windows_and_a_late_start_skips_nothing(source):
    from neurodeck.decoders.evaluation import sliding_windows

    name, outlet = source

    class OddWindow(CounterDecoder):
        window_samples = 100  # not a multiple of the hop

    inlet = Inlet(name, buffer_seconds=10)
    inlet.start()
    _push(outlet, 256, 16)  # the inlet runs for a while before the engine starts
    assert inlet.wait_for_samples(256, timeout=5)
    engine = OnlineEngine(OddWindow(), inlet, hop_s=32 / SRATE, out_name=None)
    got = []
    engine.add_decision_listener(got.append)
    engine.start()
    _push(outlet, 512, 16)
    assert wait_until(lambda: got and got[-1].index == 768, 10), [d.index for d in got[-3:]]
    engine.stop()
    inlet.stop()
    assert engine.stats.skipped_hops == 0
    ends = [d.index for d in got]
    offline_ends = np.concatenate([e for e, _ in sliding_windows(np.zeros((1, 768)), 100, 32)])
    assert ends[0] == 256 and set(ends) <= set(offline_ends.tolist())
    assert np.all(np.diff(ends) == 32) and ends[-1] == 768


def test_engine_skips_a_backlog_and_first_decides_on_the_newest_window(source):
    """A source flushes 4 s of old samples when the engine connects, then streams live.

    Before: the engine decided the backlog's windows one after another (each seconds old, in a
    burst). Now every backlog window is skipped and counted, the first decision is on fresh data.
    """
    import threading

    name, outlet = source
    inlet = Inlet(name, buffer_seconds=20)
    # never skip for lag: the windows skipped here are skipped because they are stale
    engine = OnlineEngine(CounterDecoder(), inlet, hop_s=32 / SRATE, out_name=None,
                          max_lag_hops=10**9)
    got = []
    engine.add_decision_listener(got.append)
    engine.start()  # starts the inlet
    assert outlet.wait_for_consumers(5)
    n_back = int(4 * SRATE)
    t_end = pylsl.local_clock()
    back = np.zeros((n_back, len(LABELS)))
    back[:, -1] = np.arange(n_back)
    for s in range(0, n_back, 64):  # the backlog: as fast as possible, stamped 4 s .. 0 s ago
        outlet.push_chunk(back[s:s + 64], t_end - (n_back - s - 64) / SRATE)
    stop = threading.Event()

    def live():  # then live data, stamped now, the counter going on
        k = n_back
        while not stop.is_set():
            block = np.zeros((16, len(LABELS)))
            block[:, -1] = np.arange(k, k + 16)
            outlet.push_chunk(block, pylsl.local_clock())
            k += 16
            time.sleep(16 / SRATE)

    th = threading.Thread(target=live, daemon=True)
    th.start()
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and sum(d.index > n_back + 64 for d in got) < 4:
            time.sleep(0.02)
    finally:
        stop.set()
        th.join()
        engine.stop()
        inlet.stop()
    assert engine.error is None
    assert got, "no decision at all"
    # no decision on a window that ends inside the backlog (the last one may be decided: its
    # newest sample is fresh), and every window before the first decision is counted as skipped
    assert got[0].index >= n_back, [d.index for d in got[:5]]
    assert engine.stats.stale_hops == engine.stats.skipped_hops == (got[0].index - 128) // 32
    assert np.all(np.diff([d.index for d in got]) == 32)


@pytest.mark.parametrize("pipeline", ["ts-lr", "psd-lda", "fbts-lr", "ts-lr@512"])
def test_engine_decisions_equal_pseudo_online(pipeline, unique_name, tmp_path):
    """Real EEG pushed over LSL: the engine's stream filter (carried state, new samples only)
    decides exactly what pseudo-online replay (the recording filtered once) decides, including
    the windows holding NaN samples (invalid in both) and the restart of the filter after them.
    ``@512``: S001 resampled to 512 Hz, the model decimating to its 128 Hz working rate."""
    from neurodeck.decoders.evaluation import pseudo_online
    from neurodeck.decoders.online import OnlineDecoder
    from neurodeck.decoders.onnx import save_bundle
    from neurodeck.decoders.pipelines import DecoderConfig
    from tests.decoders.test_online import s001_at

    pipeline, _, rate = pipeline.partition("@")
    X, y, ch, sf, runs = s001_at(float(rate or 160))
    cfg = DecoderConfig(pipeline=pipeline)
    path = save_bundle(cfg.build(sf, ch).fit(X, y), cfg, tmp_path / pipeline, ch_names=ch,
                       sfreq=sf, X_check=X[:4])
    dec = OnlineDecoder(path)
    assert dec.decim == (4 if rate else 1)
    n = int(30 * sf)
    eeg = runs[0][0][:, :n].copy()
    a, b = int(2000 * sf / 160), int(2005 * sf / 160)
    eeg[3, a:b] = np.nan  # NaN samples: invalid windows, then the stream filter restarts
    labels = [c.rstrip(".") for c in ch]
    info = make_stream_info(unique_name, "EEG", ["X1", *labels], sf, fmt="double64",
                            source_id=unique_name, units="microvolts")
    outlet = DataOutlet(info)
    inlet = Inlet(unique_name, buffer_seconds=60)
    hop = int(10 * sf / 160)  # 62.5 ms
    engine = OnlineEngine(dec, inlet, hop_s=hop / sf, out_name=None, max_lag_hops=10**9)
    got = []
    engine.add_decision_listener(got.append)
    data = np.vstack([np.zeros((1, n)), eeg]).T  # an extra channel the model does not use
    try:
        engine.start()
        assert outlet.wait_for_consumers(5)
        t0 = pylsl.local_clock()
        for s in range(0, n, 13):  # uneven chunks, stamped now (fresh: nothing is stale)
            outlet.push_chunk(np.ascontiguousarray(data[s:s + 13]), t0 + (min(s + 13, n) - 1) / sf)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (got and got[-1].index == n // hop * hop):
            time.sleep(0.05)
    finally:
        engine.stop()
        inlet.stop()
    assert engine.error is None and engine.stats.skipped_hops == 0
    res = pseudo_online(dec, eeg, sf, ([], []), step_s=hop / sf)
    assert [d.index for d in got] == res.ends.tolist()
    W = dec.window_samples
    holds_nan = (res.ends - W < b) & (res.ends > a)
    assert [not d.valid for d in got] == holds_nan.tolist()
    assert all("NaN" in d.reason for d in got if not d.valid)
    np.testing.assert_allclose(np.stack([d.values for d in got]), res.outputs, atol=1e-10, rtol=0)


def test_quality_screen_clears_only_windows_check_window_clears():
    """The per-hop screen (block statistics) never passes a window check_window would refuse,
    and passes clean EEG-like windows without the full check, sliding over a long signal."""
    from neurodeck.acquisition.quality import QualityConfig, check_window
    from neurodeck.app.engine import QualityScreen

    rng = np.random.default_rng(5)
    n_ch, W, hop = 6, 300, 32
    x = 10 * rng.standard_normal((n_ch, 6000))
    x[5] = np.arange(6000)  # a counter (no unit: only NaN/Inf matters)
    faults = {"nan": (0, 1000, 1003), "flat": (1, 2000, 2400), "spike": (2, 3000, 3001),
              "clip": (3, 4000, 4300), "tiny": (4, 5000, 5400)}
    x[0, 1000:1003] = np.nan
    x[1, 2000:2400] = 7.0
    x[2, 3000] = 5000.0
    x[3, 4000:4300] = np.clip(x[3, 4000:4300], -3, 3)
    x[4, 5000:5400] *= 0.0095  # std ~0.095 µV: just flat (threshold 0.1)
    cfg = QualityConfig()
    to_uv = np.array([1.0] * 5 + [np.nan])
    screen = QualityScreen(cfg, to_uv, W, hop)
    cleared = 0
    for end in range(-(-W // hop) * hop, x.shape[1] + 1, hop):
        w = x[:, end - W:end]
        ok = check_window(w, 160.0, cfg, to_uv=to_uv, line_noise=False).ok
        if screen.clean(w, end):
            assert ok, end
            cleared += 1
        hit = [k for k, (_, lo, hi) in faults.items() if end - W < hi and lo < end]
        if not hit:
            assert ok and screen.clean(w, end), end  # clean windows never need the full check
    assert not screen.clean(x[:, 1000 - W + 10:1010], 1010)  # end not on a hop boundary
    assert cleared >= 100
    # what the engine does per hop: only the newest samples (and the window's first ones); a
    # tail that misses unscreened blocks is not certain (the engine then screens the window)
    tails = QualityScreen(cfg, to_uv, W, hop)
    full = QualityScreen(cfg, to_uv, W, hop)
    assert tails.lead == W % hop == 12
    first = -(-W // hop) * hop
    assert not tails.clean(x[:, first - 64:first], first, x[:, first - W:first - W + 12])
    n_tail = 0
    for end in range(first, x.shape[1] + 1, hop):
        w = x[:, end - W:end]
        verdict = full.clean(w, end)
        got = tails.clean(x[:, end - 64:end], end, w[:, :12])
        if not got:
            got = tails.clean(w, end)  # the engine's fallback
        else:
            n_tail += 1
        assert got == verdict, end
    assert n_tail >= 100


def test_quality_screen_one_sample_lead_and_its_faults():
    """A window one sample longer than its whole blocks (a 1 s epoch is rate + 1 samples): the
    screen's single-sample lead statistics agree with check_window when the fault sits exactly on
    that sample (NaN, a spike, a value that becomes the window's max) and on clean windows."""
    from neurodeck.acquisition.quality import QualityConfig, check_window
    from neurodeck.app.engine import QualityScreen

    rng = np.random.default_rng(11)
    n_ch, hop = 4, 32
    W = 9 * hop + 1
    x = 10 * rng.standard_normal((n_ch, 40 * hop))
    cfg = QualityConfig()
    to_uv = np.ones(n_ch)
    screen = QualityScreen(cfg, to_uv, W, hop)
    assert screen.lead == 1
    ends = range(-(-W // hop) * hop, x.shape[1] + 1, hop)
    leads = [e - W for e in ends]
    x[0, leads[5]] = np.nan
    x[1, leads[12]] = 5000.0  # absurd amplitude on the lead sample only
    x[2, leads[20]] = 60.0  # the window's max sits on its lead sample (not a fault)
    verdicts = []
    for end in ends:
        w = x[:, end - W:end]
        ok = check_window(w, 512.0, cfg, to_uv=to_uv, line_noise=False).ok
        got = screen.clean(x[:, end - 64:end], end, w[:, :1]) or screen.clean(w, end)
        verdicts.append(got)
        assert not got or ok, end
        if ok:
            assert got, end
    assert not verdicts[5] and not verdicts[12] and verdicts[20]


def test_engine_and_a_threaded_replay_share_one_blas_thread_in_any_order(source):
    """A replay in threads (Replay page) may start before an engine and end while it decodes:
    the engine keeps its one BLAS thread until it stops, and the caller's setting comes back
    only when both are gone (whichever leaves first)."""
    from threadpoolctl import threadpool_info, threadpool_limits

    from neurodeck.decoders.online import one_blas_thread

    def blas() -> int:
        return max(p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas")

    name, _ = source
    inlet = Inlet(name, buffer_seconds=10)
    engine = OnlineEngine(CounterDecoder(), inlet, hop_s=32 / SRATE, out_name=f"{name}-dec")
    seen = []
    with threadpool_limits(limits=2, user_api="blas"):
        try:
            with contextlib.ExitStack() as replay:
                replay.enter_context(one_blas_thread())  # the replay's threads start first
                seen.append(blas())
                engine.start()
            # the replay has ended while the engine decodes
            seen.append(blas())
            with one_blas_thread():  # another replay, inside the engine's run
                seen.append(blas())
            seen.append(blas())
        finally:
            engine.stop()
            inlet.stop()
        seen.append(blas())  # the engine, the last holder, gave the setting back
    assert seen == [1, 1, 1, 1, 2]
