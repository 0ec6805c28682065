"""A whole session on the simulator, through the real data path: LSL -> recorder -> training ->
live engine -> decision stream read by an independent inlet; online accuracy above chance."""
from __future__ import annotations

import dataclasses
import time

import numpy as np
import pylsl
import pytest

from neurodeck.acquisition.inlet import Inlet, MarkerInlet
from neurodeck.acquisition.markers import name_of
from neurodeck.acquisition.recorder import Recorder
from neurodeck.acquisition.simulator import Simulator, SimulatorConfig, run_duration
from neurodeck.app.engine import OnlineEngine
from neurodeck.app.workflow import load_for
from neurodeck.decoders.evaluation import score_trials
from neurodeck.decoders.online import OnlineDecoder
from neurodeck.decoders.onnx import save_bundle
from neurodeck.decoders.pipelines import DecoderConfig
from tests.conftest import wait_until

CLASSES = ("left_hand", "right_hand")


def _wait(sim: Simulator, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not sim.finished and time.monotonic() < deadline:
        time.sleep(0.2)
    assert sim.finished, "simulator did not finish in time"


@pytest.mark.slow  # the default run does the same session through the public API: test_tutorial.py
def test_simulated_session_calibrate_train_and_decode_live(tmp_path, unique_name):
    base = SimulatorConfig(n_channels=16, srate=256.0, name=unique_name, trials_per_class=12,
                           seed=5, classes=CLASSES)
    # 1. calibration: streamed over LSL, recorded by the crash-safe recorder
    sim = Simulator(base, speed=8.0, wait_for_consumers=10.0, duration=run_duration(base))
    out = tmp_path / "calibration_raw.fif"
    sim.start()  # creates the outlets, then waits (up to 10 s) for a consumer before sample 0
    with Recorder([unique_name, f"{unique_name}-markers"], out) as rec:
        _wait(sim, timeout=120)  # the recorder's stop drains what is still in flight
    sim.stop()
    assert rec.error is None

    # 2. training on the recorded file, saved as an ONNX + JSON bundle
    config = DecoderConfig(pipeline="ts-lr", band=(8.0, 30.0), tmin=0.5, tmax=2.5,
                           events={c: c for c in CLASSES})
    tr = load_for(str(out), config)
    X, y, ch_names, sfreq = tr.X, tr.y, tr.ch_names, tr.sfreq
    assert sorted(np.unique(y).tolist()) == list(CLASSES) and len(y) == 24
    model = config.build(sfreq, ch_names).fit(X, y)
    bundle = save_bundle(model, config, tmp_path / "model", ch_names=ch_names, sfreq=sfreq,
                         X_check=X[:2])

    # 3. online on a new simulated run (other seed), decoded live
    online_cfg = dataclasses.replace(base, name=f"{unique_name}-on", seed=6, trials_per_class=6)
    sim = Simulator(online_cfg, speed=4.0, wait_for_consumers=10.0,
                    duration=run_duration(online_cfg))
    decoder = OnlineDecoder(bundle)
    sim.start()
    inlet = Inlet(online_cfg.name, buffer_seconds=30).start()
    markers = MarkerInlet(f"{online_cfg.name}-markers").start()
    engine = OnlineEngine(decoder, inlet, hop_s=0.0625, out_name=f"{unique_name}-decisions")
    stamps: list[np.ndarray] = []
    inlet.add_chunk_listener(lambda data, ts: stamps.append(ts))
    decisions = []
    engine.add_decision_listener(decisions.append)
    engine.start()
    consumer = pylsl.StreamInlet(pylsl.resolve_byprop("name", f"{unique_name}-decisions",
                                                      timeout=10)[0])
    consumer.open_stream(timeout=10)
    received = []
    try:
        deadline = time.monotonic() + 120
        while not sim.finished and time.monotonic() < deadline:
            got, _ = consumer.pull_chunk(timeout=0.2, max_samples=10_000)
            received += got
        # the end: every sample in, the last hop decided, every decision read back
        assert inlet.wait_for_samples(sim.n_total, 10), (inlet.n_received, sim.n_total)
        hop = engine.hop_samples
        assert wait_until(lambda: engine.last_decision is not None
                          and engine.last_decision.index + hop > sim.n_total, 10)

        def read_back() -> bool:
            received.extend(consumer.pull_chunk(timeout=0.0, max_samples=10_000)[0])
            return len(received) >= engine.stats.decisions

        assert wait_until(read_back, 10), (len(received), engine.stats.decisions)
    finally:
        engine.stop()
        sim.stop()
        markers.stop()
        inlet.stop()
    assert engine.error is None and inlet.counters.samples_missing == 0
    # every published decision reached the independent inlet
    assert len(received) == engine.stats.decisions > 100
    ts = np.concatenate(stamps)
    cues = [(t, name_of(lab)) for t, lab in markers.drain() if name_of(lab) in CLASSES]
    assert len(cues) == 12
    onsets = np.searchsorted(ts, [t for t, _ in cues])
    ends = np.array([d.index for d in decisions])
    outputs = np.array([d.values for d in decisions])
    correct, _ = score_trials(ends, outputs, decoder.labels, onsets, [c for _, c in cues],
                              window=decoder.window_samples,
                              n_pad=int(round(decoder.bundle.meta["pad_s"] * sfreq)),
                              trial_len=int(4 * sfreq), sfreq=sfreq)
    # above chance: with 12 trials, >= 10 correct has p < 0.02 under chance (binomial)
    assert correct.sum() >= 10, correct
