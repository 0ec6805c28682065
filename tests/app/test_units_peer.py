"""Units with peer programs: MNE-LSL's player as the source, MNE-LSL's StreamLSL as the consumer.

A csp-lda model trained on EEGMMIDB in microvolts decodes S001 run 12 streamed by MNE-LSL's
``PlayerLSL`` in volts (its own convention: SI data, unit "0") and in microvolts (unit "-6"). Every
decision equals the offline decision on the same file window in microvolts (1e-6), so both streams
give the same decisions; MNE-LSL's ``StreamLSL`` reads the same numbers from our decision stream.
A stream that declares no unit and carries volts is refused with a reason naming the factor, by
the engine and by ``neurodeck decode``.
"""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from neurodeck.acquisition.inlet import Inlet
from neurodeck.app.engine import OnlineEngine
from neurodeck.decoders.epochs import normalize_name
from neurodeck.decoders.online import OnlineDecoder

pytest.importorskip("mne_lsl")

START_S, LENGTH_S = 20.0, 7.0  # the part of run 12 that is streamed


@pytest.fixture(scope="module")
def run12(asset_edfs):
    """S001R12 as MNE reads it (volts, EDF names ``C3..``) plus a COUNTER misc channel."""
    import mne

    edf = next(p for p in asset_edfs if p.name == "S001R12.edf")
    raw = mne.io.read_raw_edf(edf, preload=True, verbose="error")
    raw.crop(START_S, START_S + LENGTH_S, include_tmax=False)
    raw.set_annotations(None)
    counter = mne.io.RawArray(np.arange(raw.n_times, dtype=float)[None], mne.create_info(
        ["COUNTER"], raw.info["sfreq"], "misc"), verbose="error")
    raw.add_channels([counter], force_update_info=True)
    return raw


def _offline(decoder, raw, ends, hop):
    """Offline decisions, from the data in microvolts, on the file windows ending at ``ends``.

    The engine starts its causal band-pass at the start of its first window and carries it
    (``OnlineDecoder.open_stream``); ``OnlineDecoder.replay`` over the file from the same sample
    is the offline twin.
    """
    names = [normalize_name(c) for c in raw.ch_names]
    rows = [names.index(normalize_name(c)) for c in decoder.ch_names]
    uv = raw.get_data()[rows] * 1e6
    first = -(-decoder.window_samples // hop) * hop
    start = ends[0] - first  # replay's first window then ends where the live one did
    rel_ends, out = decoder.replay(uv[:, start:], hop)
    by_end = dict(zip((rel_ends + start).tolist(), out, strict=True))
    return np.array([by_end[e] for e in ends])


def _decode_live(decoder, name, start_source, min_decisions=20, timeout=30.0):
    """Run our engine on stream ``name``; (file window end, values, valid, reason, decision)."""
    got, done = [], threading.Event()
    inlet = Inlet(name, buffer_seconds=20)
    counter_row = list(inlet.description.labels).index("COUNTER")

    def on_decision(d):
        data, _ = inlet.buffer.read(d.index - 1, d.index)
        got.append((int(data[counter_row, 0]) + 1, d.values, d.valid, d.reason, d))
        if len(got) >= min_decisions:
            done.set()

    inlet.start()
    engine = OnlineEngine(decoder, inlet, hop_s=0.125, out_name=f"{name}-dec")
    engine.add_decision_listener(on_decision)
    engine.start()
    consumer = start_source(engine)
    try:
        assert done.wait(timeout), f"only {len(got)} decisions in {timeout} s"
    finally:
        engine.stop()
        inlet.stop()
    return got, engine, consumer


@pytest.mark.parametrize("unit", ["volts", "microvolts"])
def test_mne_lsl_player_in_volts_and_microvolts_gives_the_offline_decisions(
        bundle_dir, run12, unique_name, unit):
    from mne_lsl.player import PlayerLSL
    from mne_lsl.stream import StreamLSL

    decoder = OnlineDecoder(bundle_dir)
    assert decoder.unit == "microvolts" and decoder.calibration_amplitude > 0
    player = PlayerLSL(run12.copy(), chunk_size=8, n_repeat=1, name=unique_name, source_id=unique_name)
    if unit == "microvolts":
        player.set_channel_units({c: "microvolts" for c in run12.ch_names if c != "COUNTER"})
    player.start()
    consumers = []

    def consume(engine):  # MNE-LSL's StreamLSL reads our decision stream
        s = StreamLSL(bufsize=30, name=f"{unique_name}-dec").connect(timeout=5)
        consumers.append(s)
        return s

    try:
        got, engine, stream = _decode_live(decoder, unique_name, consume)
        assert engine.units.note.startswith(
            "units: volts -> microvolts (x1e+06)" if unit == "volts" else "units: microvolts -> microvolts")
        valid = [g for g in got if g[2]]
        assert len(valid) == len(got) >= 15, [g[3] for g in got if not g[2]][:3]
        ends = [g[0] for g in valid]
        ref = _offline(decoder, run12, ends, engine.hop_samples)
        live = np.array([g[1] for g in valid])
        np.testing.assert_allclose(live, ref, atol=1e-6, rtol=0)
        # MNE-LSL's player stamps each chunk's last sample one chunk (8 / 160 Hz = 50 ms) ahead of
        # the moment it pushes it: detected, and latency is measured from corrected stamps
        lead = engine.inlet.stamp_lead
        assert 0.025 < lead < 0.06, lead
        decisions = [g[4] for g in got]
        assert min(d.published_at - d.timestamp for d in decisions) < 0  # raw stamps: "negative"
        assert min(d.latency for d in decisions) >= 0
        assert all(lat >= 0 for lat in engine.stats.latency_s)
        # StreamLSL (a consumer we did not write) sees the same probabilities (float32 on the wire)
        deadline = time.monotonic() + 5
        while stream.n_new_samples < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        data, _ = stream.get_data()
        assert stream.ch_names == [*decoder.labels, "valid"]
        seen = data[:, np.isfinite(data).all(axis=0) & (data[-1] == 1)]
        assert seen.shape[1] >= 1
        matches = [np.abs(live - col[:-1]).max(axis=1).min() for col in seen.T]
        assert max(matches) < 1e-6
    finally:
        for s in consumers:
            s.disconnect()
        player.stop()


class _UnitlessVoltsSource:
    """A peer outlet (MNE-LSL's StreamOutlet) with channel names and no units (unless ``unit``),
    in volts, looping.

    ``scale`` multiplies the data (1e6: microvolts); ``ahead`` stamps every chunk that many seconds
    in the future (a source with a wrong clock).
    """

    def __init__(self, raw, name, scale=1.0, ahead=0.0, unit=None):
        from mne_lsl.lsl import StreamInfo, StreamOutlet

        info = StreamInfo(name, "EEG", len(raw.ch_names), raw.info["sfreq"], "float64", name)
        info.set_channel_names(raw.ch_names)
        if unit is not None:  # declared (rightly or wrongly)
            info.set_channel_units([unit] * len(raw.ch_names))
        self.outlet = StreamOutlet(info, chunk_size=8)
        self.data = raw.get_data().T * scale  # volts unless scaled, no unit declared
        self.ahead = ahead
        self.srate = raw.info["sfreq"]
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        from mne_lsl.lsl import local_clock

        t0, k, n = local_clock(), 0, len(self.data) // 8 * 8
        while not self.stop_event.is_set():  # loops over the data until stopped
            while local_clock() < t0 + (k + 8) / self.srate:
                time.sleep(0.002)
            self.outlet.push_chunk(np.ascontiguousarray(self.data[k % n:k % n + 8]),
                                   timestamp=t0 + (k + 8) / self.srate + self.ahead)
            k += 8

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop_event.set()
        self.thread.join(5)
        del self.outlet


def test_unitless_volts_stream_is_refused_with_the_suspected_factor(bundle_dir, run12, unique_name):
    decoder = OnlineDecoder(bundle_dir)
    with _UnitlessVoltsSource(run12, unique_name):
        got, engine, _ = _decode_live(decoder, unique_name, lambda e: None, min_decisions=5)
    assert "without a unit taken as microvolts (amplitude checked" in engine.units.note
    assert got and not any(g[2] for g in got)
    assert all(g[3].startswith("stream looks like volts, model was trained in microvolts")
               for g in got), got[0][3]


def test_neurodeck_decode_prints_the_unit_refusal(bundle_dir, run12, unique_name, cli):
    with _UnitlessVoltsSource(run12, unique_name):
        proc = cli("decode", "--model", bundle_dir, "--stream", unique_name, "--out-name",
                   f"{unique_name}-dec", "--duration", "4.5", timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "without a unit taken as microvolts" in proc.stdout
    # the model was trained on the EDF's names (C3..), the stream too: every channel found
    assert "channels: 64 of 64 model channels found" in proc.stdout, proc.stdout
    assert "invalid (stream looks like volts, model was trained in microvolts" in proc.stdout, proc.stdout


def test_stamps_ahead_of_arrival_are_detected_and_latency_stays_true(bundle_dir, run12, unique_name):
    """A peer stamping 0.5 s in the future: reported, and latency is the real one, not -0.5 s."""
    decoder = OnlineDecoder(bundle_dir)
    with _UnitlessVoltsSource(run12, unique_name, scale=1e6, ahead=0.5):
        got, engine, _ = _decode_live(decoder, unique_name, lambda e: None, min_decisions=10)
    assert all(g[2] for g in got), got[0][3]
    assert 0.45 < engine.inlet.stamp_lead < 0.51
    lat = [g[4].latency for g in got]
    assert min(lat) >= 0 and max(lat) < 0.2, lat


def test_a_wrongly_declared_unit_is_refused_too(bundle_dir, run12, unique_name):
    """A source that declares microvolts but sends volts (a scaling bug): refused, not saturated."""
    decoder = OnlineDecoder(bundle_dir)
    with _UnitlessVoltsSource(run12, unique_name, unit="microvolts"):
        got, engine, _ = _decode_live(decoder, unique_name, lambda e: None, min_decisions=5)
    assert engine.units.note.startswith("units: microvolts -> microvolts")
    assert got and not any(g[2] for g in got)
    assert all(g[3].startswith("stream declares microvolts; its data look like volts") for g in got), got[0][3]
