"""The simulated amplifier: labels, config errors, physiology (ERD where it belongs), decodability,
continuous mode, and streaming over real loopback LSL equal to the offline synthesis."""
from __future__ import annotations

import time

import numpy as np
import pylsl
import pytest
from scipy import signal
from threadpoolctl import threadpool_limits

from neurodeck.acquisition.errors import AcquisitionError
from neurodeck.acquisition.markers import CODES
from neurodeck.acquisition.simulator import (
    EEGGenerator,
    Simulator,
    SimulatorConfig,
    channel_positions,
    run_duration,
    simulate_raw,
    standard_labels,
    synthesize,
)

# ------------------------------------------------------------------------------ labels, config


def test_standard_labels_caps_and_extensions():
    lab64 = standard_labels(64)
    assert len(lab64) == len(set(lab64)) == 64
    assert {"C3", "Cz", "C4", "FC3", "CP4", "Fp1", "Fp2", "O1", "O2", "Oz", "Pz"} <= set(lab64)
    for n in (32, 16, 8, 3, 20):
        lab = standard_labels(n)
        assert len(lab) == len(set(lab)) == n and {"C3", "Cz", "C4"} <= set(lab)
        assert set(lab) <= set(lab64)
    for n in (65, 128, 256, 400):
        lab = standard_labels(n)
        assert len(lab) == len(set(lab)) == n and lab[:64] == lab64
    assert standard_labels(256)[-1] != "E256"  # 10-5 sites suffice up to 256
    assert standard_labels(400)[-1] == "E400"
    pos = channel_positions(standard_labels(400))
    assert np.all(np.isfinite(pos)) and len(np.unique(pos.round(6), axis=0)) == 400
    # C3 left of Cz left of C4 (x grows to the right)
    c3, cz, c4 = channel_positions(["C3", "Cz", "C4"])[:, 0]
    assert c3 < cz < c4


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"srate": -1}, r"srate -1 invalid; expected a sampling rate"),
        ({"n_channels": 0}, r"n_channels 0 invalid; expected an integer in 1\.\.512"),
        ({"classes": ("left_hand", "jump")}, r"classes \('left_hand', 'jump'\) invalid"),
        ({"mode": "wild"}, r"mode 'wild' invalid; expected 'cued' or 'continuous'"),
        ({"schedule": "later"}, r"schedule 'later' invalid"),
        ({"erd_depth": 1.5}, r"erd_depth 1\.5 invalid; expected a relative power drop"),
        ({"bad_channel": "XY9"}, r"bad_channel 'XY9' invalid"),
        ({"rest_s": (3.0, 1.0)}, r"rest_s \(3\.0, 1\.0\) invalid"),
        ({"trials_per_class": 0}, r"trials_per_class 0 invalid"),
        ({"line_freq": 300.0}, r"line_freq 300\.0 invalid; expected 0 \(off\) or a frequency below Nyquist"),
    ],
)
def test_bad_config_gives_clear_errors(kwargs, match):
    with pytest.raises(AcquisitionError, match=match):
        SimulatorConfig(**kwargs)


def test_simulator_and_generator_reject_bad_arguments():
    cfg = SimulatorConfig(n_channels=8, srate=128, schedule="external", seed=1)
    with pytest.raises(AcquisitionError, match="speed 0 invalid"):
        Simulator(cfg, speed=0)
    gen = EEGGenerator(cfg)
    with pytest.raises(AcquisitionError, match="cue class 'jump' unknown"):
        gen.cue("jump", 1.0)
    with pytest.raises(AcquisitionError, match="cue duration -1 invalid"):
        gen.cue("left_hand", -1)
    with pytest.raises(AcquisitionError, match="needs mode='cued'"):
        EEGGenerator(SimulatorConfig(n_channels=8, srate=128, mode="continuous")).cue("feet", 1)


# ------------------------------------------------------------------------------ signal model


def test_any_chunking_gives_the_same_samples_and_events():
    cfg = SimulatorConfig(n_channels=16, srate=256, seed=4, counter_channel=True)
    data, events, truth = synthesize(cfg, 20.0)
    assert data.shape == (17, 5120) and truth.shape == (2, 5120)
    gen = EEGGenerator(cfg)
    rng = np.random.default_rng(0)
    parts, got_events, n = [], [], 0
    while n < data.shape[1]:
        k = min(int(rng.integers(1, 300)), data.shape[1] - n)
        d, ev, _ = gen.read(k)
        parts.append(d)
        got_events += ev
        n += k
    np.testing.assert_allclose(np.concatenate(parts, axis=1), data, rtol=0, atol=1e-9)
    assert got_events == events
    np.testing.assert_array_equal(data[-1], np.arange(5120))  # counter row
    # different seed -> different EEG; same seed -> same
    assert not np.allclose(synthesize(SimulatorConfig(n_channels=16, srate=256, seed=5), 2.0)[0],
                           data[:-1, :512])  # fmt: skip
    np.testing.assert_array_equal(synthesize(cfg, 2.0)[0], data[:, :512])


def _band_log_power(data, sr, rows, onsets, band=(9.0, 13.0), window=(0.5, 2.5)):
    sos = signal.butter(4, band, btype="band", fs=sr, output="sos")
    f = signal.sosfiltfilt(sos, data[rows], axis=1)
    a, b = int(window[0] * sr), int(window[1] * sr)
    return np.array([np.log(np.mean(f[:, s + a : s + b] ** 2, axis=1)) for s in onsets])


def test_erd_is_contralateral_and_physiology_is_plausible():
    cfg = SimulatorConfig(seed=21, trials_per_class=10)  # 64 ch @ 512 Hz
    data, events, truth = synthesize(cfg)
    sr, labels = cfg.srate, list(cfg.labels)
    n = data.shape[1]
    assert n == int(round(run_duration(cfg) * sr))
    # Graz schedule: 10 trials per class, each cue 2 s after its trial start, 4 s of imagery
    codes = [c for _, c in events]
    assert codes.count("769") == codes.count("770") == 10 and codes.count("768") == 20
    starts = [s for s, c in events if c == "768"]
    cues = [s for s, c in events if c in ("769", "770")]
    ends = [s for s, c in events if c == "800"]
    np.testing.assert_array_equal(np.array(cues) - starts, int(2.0 * sr))
    np.testing.assert_array_equal(np.array(ends) - cues, int(4.0 * sr))
    assert truth.shape == (2, n) and truth[0].sum() == truth[1].sum() == 10 * 4 * sr

    rows = [labels.index(c) for c in ("C3", "C4")]
    left = _band_log_power(data, sr, rows, [s for s, c in events if c == "769"]).mean(axis=0)
    right = _band_log_power(data, sr, rows, [s for s, c in events if c == "770"]).mean(axis=0)
    # left hand imagery -> mu ERD over the right hemisphere (C4), and vice versa at C3
    assert left[1] < right[1] - 0.4, (left, right)
    assert right[0] < left[0] - 0.4, (left, right)
    # contralateral beta (18-24 Hz): ERD during imagery, rebound above baseline after it ends
    contra = [(s, labels.index("C4" if c == "769" else "C3")) for s, c in events if c in ("769", "770")]
    sos = signal.butter(4, (18.0, 24.0), btype="band", fs=sr, output="sos")
    fb = signal.sosfiltfilt(sos, data[[labels.index("C3"), labels.index("C4")]], axis=1)

    def beta(s, row, t0, t1):
        return np.log(np.mean(fb[rows.index(row), s + int(t0 * sr) : s + int(t1 * sr)] ** 2))

    base = np.array([beta(s, r, -1.5, 0.0) for s, r in contra])
    during = np.array([beta(s, r, 1.0, 3.5) for s, r in contra])
    after = np.array([beta(s, r, 4.5, 5.5) for s, r in contra])
    assert np.mean(during - base) < -0.3 and np.mean(after - base) > 0.15, (during - base, after - base)

    # amplitudes in microvolts, tens of uV; blinks biggest at Fp1/Fp2; the bad channel stands out
    rms = data.std(axis=1)
    assert 5 < np.median(rms) < 30
    assert rms[labels.index("Fp1")] > 1.5 * rms[labels.index("Cz")]
    assert cfg.bad_label == "P10" and rms[labels.index("P10")] > 2 * np.median(rms)
    # posterior alpha: 8-13 Hz power at Oz above its 20-30 Hz power by far; 50 Hz line peak
    f, p = signal.welch(data[labels.index("Oz")], fs=sr, nperseg=int(2 * sr))
    alpha, beta = p[(f >= 8) & (f <= 13)].mean(), p[(f >= 24) & (f <= 30)].mean()
    assert alpha > 10 * beta
    assert p[f == 50.0][0] > 20 * p[(f >= 44) & (f <= 47)].mean()
    # 1/f background: more power at 2-4 Hz than at 35-45 Hz on a channel without rhythms
    f, p = signal.welch(data[labels.index("F7")], fs=sr, nperseg=int(2 * sr))
    assert p[(f >= 2) & (f <= 4)].mean() > 10 * p[(f >= 35) & (f <= 45)].mean()


def test_flat_bad_channel_and_no_bad_channel():
    data, _, _ = synthesize(SimulatorConfig(n_channels=16, srate=256, seed=1, bad_channel="Fp2",
                                            bad_kind="flat"), 2.0)  # fmt: skip
    assert np.all(data[1] == 0.0) and data[0].std() > 1
    cfg = SimulatorConfig(n_channels=16, srate=256, seed=1, bad_channel=None)
    assert cfg.bad_label is None and simulate_raw(cfg, 2.0).info["bads"] == []


# ------------------------------------------------------------------------------ decodability


def _cv_scores(raw, classes):
    import mne
    from pyriemann.estimation import Covariances
    from pyriemann.spatialfilters import CSP
    from pyriemann.tangentspace import TangentSpace
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline

    raw = raw.copy().filter(8.0, 30.0, verbose="error")
    events, event_id = mne.events_from_annotations(
        raw, event_id={c: i + 1 for i, c in enumerate(classes)}, verbose="error"
    )
    epochs = mne.Epochs(raw, events, event_id, tmin=0.5, tmax=2.5, baseline=None, picks="eeg",
                        preload=True, verbose="error")  # fmt: skip
    X, y = epochs.get_data(copy=False), epochs.events[:, 2]
    assert X.shape[0] == 40 and np.bincount(y)[1:].tolist() == [20, 20]
    cv = StratifiedKFold(5, shuffle=True, random_state=0)
    with threadpool_limits(1):  # threaded BLAS on a busy 2-core machine is 10x slower here
        ts = cross_val_score(make_pipeline(Covariances("oas"), TangentSpace(), LogisticRegression()),
                             X, y, cv=cv).mean()  # fmt: skip
        csp = cross_val_score(make_pipeline(Covariances("oas"), CSP(6, log=True),
                                            LinearDiscriminantAnalysis()), X, y, cv=cv).mean()  # fmt: skip
    return ts, csp


def test_left_vs_right_hand_is_decodable_and_only_because_of_the_erd():
    # 16-channel cap, 20 trials per class (seeds 0-5 give TS+LR 0.93-1.0, CSP+LDA 0.90-1.0)
    cfg = SimulatorConfig(n_channels=16, srate=256.0, seed=2)
    raw = simulate_raw(cfg)
    ts, csp = _cv_scores(raw, cfg.classes)
    assert ts >= 0.8 and csp >= 0.8, (ts, csp)
    # control: the same run without ERD is at chance
    ts0, csp0 = _cv_scores(simulate_raw(SimulatorConfig(n_channels=16, srate=256.0, seed=2,
                                                        erd_depth=0.0)), cfg.classes)  # fmt: skip
    assert ts0 <= 0.7 and csp0 <= 0.7, (ts0, csp0)


def test_feet_vs_right_hand_is_decodable():
    cfg = SimulatorConfig(n_channels=16, srate=256.0, seed=3, classes=("right_hand", "feet"))
    ts, csp = _cv_scores(simulate_raw(cfg), cfg.classes)
    assert ts >= 0.8 and csp >= 0.8, (ts, csp)


def test_simulate_raw_is_volts_with_montage_names_and_bads():
    cfg = SimulatorConfig(n_channels=32, srate=256.0, seed=2, trials_per_class=3, counter_channel=True)
    raw = simulate_raw(cfg)
    assert raw.ch_names == [*cfg.labels, "COUNTER"] and raw.info["sfreq"] == 256.0
    eeg = raw.get_data(picks="eeg")
    assert 1e-6 < np.median(eeg.std(axis=1)) < 5e-5  # volts: tens of microvolts
    np.testing.assert_array_equal(raw.get_data(picks="misc")[0], np.arange(raw.n_times))
    data, _, _ = synthesize(cfg)
    np.testing.assert_allclose(raw.get_data(picks=["C3"])[0], data[cfg.labels.index("C3")] * 1e-6)
    desc = list(raw.annotations.description)
    assert desc.count("left_hand") == desc.count("right_hand") == 3
    assert desc.count("trial_start") == 6 and desc[0] == "experiment_start"
    cue = raw.annotations[desc.index("left_hand")]
    assert cue["duration"] == cfg.imagery_s
    pos = {ch["ch_name"]: ch["loc"][:3] for ch in raw.info["chs"]}
    assert np.all(np.isfinite(pos["C3"])) and pos["C3"][0] < 0 < pos["C4"][0]
    assert raw.info["bads"] == [cfg.bad_label] == ["P8"]


def test_continuous_mode_velocity_modulates_band_power():
    cfg = SimulatorConfig(n_channels=16, srate=256.0, mode="continuous", seed=8)
    data, events, truth = synthesize(cfg, 240.0)
    assert events == [(0, str(CODES["experiment_start"]))]
    assert truth.shape == (2, data.shape[1]) and np.all(np.abs(truth) < 1)
    assert 0.2 < truth[0].std() < 0.9 and 0.2 < truth[1].std() < 0.9
    # smooth: no jumps, at most ~5 units/s anywhere
    assert np.abs(np.diff(truth, axis=1)).max() < 5.0 / cfg.srate
    sr, labels = cfg.srate, list(cfg.labels)
    sos = signal.butter(4, (9.0, 13.0), btype="band", fs=sr, output="sos")
    f = signal.sosfiltfilt(sos, data[[labels.index(c) for c in ("C3", "C4", "Cz")]], axis=1)
    win = int(sr)
    n = f.shape[1] // win
    logp = np.log((f[:, : n * win] ** 2).reshape(3, n, win).mean(axis=2))
    v = truth[:, : n * win].reshape(2, n, win).mean(axis=2)
    # x > 0 (right hand) -> ERD at C3; y > 0 (feet) -> ERD at Cz
    assert np.corrcoef(logp[0] - logp[1], v[0])[0, 1] < -0.5
    assert np.corrcoef(logp[2], v[1])[0, 1] < -0.5


def test_external_cue_starts_imagery_at_the_next_sample():
    cfg = SimulatorConfig(n_channels=16, srate=256.0, schedule="external", seed=6)
    gen = EEGGenerator(cfg)
    before, ev0, tr0 = gen.read(2560)
    assert ev0 == [] and not tr0.any()  # no schedule: nothing happens by itself
    assert gen.cue("left_hand", 10.0) == 2560
    during, ev1, tr1 = gen.read(2560)
    assert ev1 == [(2560, "769")] and tr1[0].all() and not tr1[1].any()
    c4 = list(cfg.labels).index("C4")
    lp = [_band_log_power(x, 256.0, [c4], [0], window=(1.0, 10.0))[0, 0] for x in (before, during)]
    assert lp[1] < lp[0] - 0.4
    assert gen.cue("feet", 1.0, mark=False) == 5120
    assert gen.read(10)[1] == []


# ------------------------------------------------------------------------------ LSL streaming


def _resolve(source_id: str) -> pylsl.StreamInfo:
    infos = pylsl.resolve_byprop("source_id", source_id, 1, 10.0)
    assert infos, f"stream with source_id {source_id!r} not found"
    return infos[0]


def test_streaming_equals_offline_with_counter_and_markers_on_their_samples(unique_name):
    cfg = SimulatorConfig(name=unique_name, seed=5, counter_channel=True,
                          fixation_s=0.5, cue_s=0.5, imagery_s=1.0, rest_s=(0.3, 0.6))  # fmt: skip
    duration, sr = 6.0, cfg.srate
    expected = int(duration * sr)
    sim = Simulator(cfg, speed=4.0, source_id=unique_name, wait_for_consumers=10.0, duration=duration)
    sim.start()
    try:
        minlet = pylsl.StreamInlet(_resolve(unique_name + "-markers"))
        minlet.open_stream(5.0)
        info = _resolve(unique_name)
        assert info.name() == unique_name and info.type() == "EEG" and info.channel_count() == 65
        assert info.channel_format() == pylsl.cf_double64 and info.nominal_srate() == 512.0
        inlet = pylsl.StreamInlet(info)
        inlet.open_stream(5.0)
        ch = inlet.info(5.0).desc().child("channels").child("channel")
        assert ch.child_value("label") == "Fp1" and ch.child_value("unit") == "microvolts"
        chunks, stamps, n = [], [], 0
        deadline = time.monotonic() + 30
        while n < expected and time.monotonic() < deadline:
            x, ts = inlet.pull_chunk(timeout=0.5)
            if ts:
                chunks.append(np.asarray(x))
                stamps += ts
                n += len(ts)
        markers = []
        deadline = time.monotonic() + 5
        while len(markers) < sim.markers_pushed and time.monotonic() < deadline:
            mk, mts = minlet.pull_chunk(timeout=0.2)
            markers += [(m[0], t) for m, t in zip(mk, mts)]
        assert sim.wait(5.0) and sim.error is None
        assert sim.samples_pushed == expected
        inlet.close_stream()
        minlet.close_stream()
    finally:
        sim.stop()
    got, stamps = np.concatenate(chunks), np.asarray(stamps)
    assert got.shape == (expected, 65)
    np.testing.assert_array_equal(got[:, -1], np.arange(expected))  # nothing lost or reordered
    offline, events, _ = synthesize(cfg, duration)
    np.testing.assert_allclose(got.astype(np.float32), offline.T.astype(np.float32), rtol=1e-6, atol=1e-5)
    # sample clock: timestamps exactly 1/srate apart
    np.testing.assert_allclose(np.diff(stamps), 1 / sr, atol=1e-6)
    assert len(events) >= 8 and [c for c, _ in markers] == [c for _, c in events]
    assert {"769", "770"} & {c for _, c in events}
    for (sample, _), (_, t) in zip(events, markers):
        assert abs(t - stamps[sample]) < 1 / sr


def test_streamed_external_cue_marker_and_truth_stream(unique_name):
    cfg = SimulatorConfig(n_channels=8, srate=128.0, name=unique_name, schedule="external", seed=1)
    with Simulator(cfg, source_id=unique_name, speed=2.0) as sim:
        minlet = pylsl.StreamInlet(_resolve(unique_name + "-markers"))
        minlet.open_stream(5.0)
        time.sleep(0.2)
        sample, ts = sim.cue("right_hand", 2.0)
        assert ts == pytest.approx(sim.start_time + sample / 128.0)
        mk, mts = [], []
        deadline = time.monotonic() + 5
        while not mk and time.monotonic() < deadline:
            mk, mts = minlet.pull_chunk(timeout=0.2)
        assert mk == [["770"]] and mts[0] == pytest.approx(ts, abs=1e-6)
        assert sim.markers_pushed == 1 and sim.last_marker == (sample, "770")
    assert not sim.running
    # continuous mode streams the true velocity next to the EEG
    cont = SimulatorConfig(n_channels=8, srate=128.0, name=unique_name + "c", mode="continuous", seed=1)
    with Simulator(cont, source_id=unique_name + "c", speed=4.0) as sim:
        info = _resolve(unique_name + "c-truth")
        assert info.type() == "Truth" and info.name() == unique_name + "c-truth"
        assert info.channel_count() == 2 and info.nominal_srate() == 128.0
        time.sleep(0.3)
        v = sim.velocity()
        assert v.shape == (2,) and np.all(np.abs(v) < 1)


def test_cli_check_streams_and_reads_back(unique_name, cli):
    proc = cli("simulate", "--check", "--duration", "2", "--channels", "8", "--srate", "256",
               "--speed", "4", "--name", unique_name)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "received 512/512 samples x 9 channels" in out
    assert "counter: contiguous 0..511, lost 0" in out
    assert "check OK" in out


def test_cli_bad_values_exit_2_with_one_line(cli):
    srate = cli("simulate", "--srate", "32")  # a rate argparse takes, the simulator refuses
    classes = cli("simulate", "--classes", "left_hand,jump")
    assert srate.returncode == 2 and classes.returncode == 2
    assert srate.stderr.strip() == ("neurodeck simulate: error: simulator srate 32.0 invalid; "
                                    "expected a sampling rate in 64..16384 Hz")  # fmt: skip
    err = classes.stderr.strip().splitlines()
    assert len(err) == 1 and "classes ('left_hand', 'jump') invalid" in err[0], err


def test_cli_stops_cleanly_on_sigterm(unique_name):
    import os
    import signal as _signal
    import subprocess
    import sys

    proc = subprocess.Popen(
        [sys.executable, "-m", "neurodeck.app", "simulate", "--channels", "8", "--srate", "128", "--name", unique_name],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    try:
        header = proc.stdout.readline()
        assert f"streaming {unique_name!r} (8 EEG ch @ 128 Hz" in header
        status = proc.stdout.readline()  # first per-second status line: it is streaming
        assert "samples" in status and "markers" in status
        proc.send_signal(_signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "neurodeck simulate: stopped," in out and "Traceback" not in err
