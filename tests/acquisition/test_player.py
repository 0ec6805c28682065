"""Player -> real loopback LSL -> pylsl.StreamInlet: data, labels, markers and timing as in the file."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import mne
import numpy as np
import pylsl
import pytest

from neurodeck.acquisition.errors import AcquisitionError, RecordingError
from neurodeck.acquisition.io import load_recording, read_xdf_streams
from neurodeck.acquisition.player import Player

ROOT = Path(__file__).resolve().parents[2]


def _inlet(name: str, timeout: float = 5.0) -> pylsl.StreamInlet:
    found = pylsl.resolve_byprop("name", name, timeout=timeout)
    assert len(found) == 1, f"expected exactly one stream named {name!r}, found {len(found)}"
    inlet = pylsl.StreamInlet(found[0], max_buflen=360, recover=False)
    inlet.open_stream(timeout)
    return inlet


def _channels(inlet: pylsl.StreamInlet) -> tuple[list[str], list[str]]:
    ch = inlet.info().desc().child("channels").child("channel")
    labels, units = [], []
    while not ch.empty():
        labels.append(ch.child_value("label"))
        units.append(ch.child_value("unit"))
        ch = ch.next_sibling()
    return labels, units


def _play_and_collect(player: Player, inlets: dict[str, pylsl.StreamInlet], timeout: float = 30.0):
    """Start the player, pull every inlet until it finished and nothing more arrives."""
    got = {k: ([], []) for k in inlets}
    assert player.wait_for_consumers(5.0)
    player.start()
    deadline = time.monotonic() + timeout
    quiet = 0
    while time.monotonic() < deadline:
        n = 0
        for key, inlet in inlets.items():
            values, stamps = inlet.pull_chunk(timeout=0.0, max_samples=100_000)
            if stamps:
                got[key][0].extend(values)
                got[key][1].extend(stamps)
                n += len(stamps)
        if player.finished:
            quiet = quiet + 1 if n == 0 else 0
            if quiet >= 5:
                break
        time.sleep(0.02)
    assert player.finished and player.error is None
    return {k: (v[0], np.asarray(v[1])) for k, v in got.items()}


def test_edf_replay_data_labels_markers(eegmmidb, unique_name):
    path = eegmmidb / "S001" / "S001R04.edf"
    speed = 50.0
    raw = load_recording(path)
    with Player(path, speed=speed, name=unique_name) as player:
        assert player.eeg_name == unique_name and player.marker_names == [unique_name + "-markers"]
        inlets = {"eeg": _inlet(unique_name), "mk": _inlet(unique_name + "-markers")}
        labels, units = _channels(inlets["eeg"])
        assert labels == raw.ch_names
        assert units == ["microvolts"] * 64
        assert inlets["eeg"].info().nominal_srate() == 160.0
        got = _play_and_collect(player, inlets)
    assert player.progress == 1.0 and player.position_s == pytest.approx(125.0)

    data, ts = np.asarray(got["eeg"][0]), got["eeg"][1]
    assert data.shape == (20000, 64)
    np.testing.assert_allclose(data, raw.get_data().T * 1e6, rtol=1e-6, atol=1e-4)
    # sample clock: uniform spacing 1 / (srate * speed)
    np.testing.assert_allclose(np.diff(ts), 1 / (160 * speed), atol=1e-6)

    markers = [m[0] for m in got["mk"][0]]
    assert markers == list(raw.annotations.description)
    rel_onsets = (got["mk"][1] - ts[0]) * speed
    assert np.max(np.abs(rel_onsets - raw.annotations.onset)) <= 1 / 160


@pytest.mark.parametrize("fname,speed", [("minimal.xdf", 5.0), ("clock_resets.xdf", 200.0), ("empty_streams.xdf", 10.0)])
def test_xdf_replay_all_streams(shared_data, unique_name, fname, speed, caplog):
    path = shared_data / "xdf" / fname
    streams = read_xdf_streams(path)
    nonempty = [s for s in streams if s.n_samples]
    with Player(path, speed=speed, name=unique_name) as player:
        assert player.outlet_names == [f"{unique_name}-{s.name}" for s in nonempty]
        assert player.marker_names == [f"{unique_name}-{s.name}" for s in nonempty if s.is_string or not s.srate]
        eeg = {"minimal.xdf": "SendDataC", "clock_resets.xdf": "BioSemi", "empty_streams.xdf": None}[fname]
        assert player.eeg_name == (f"{unique_name}-{eeg}" if eeg else None)
        inlets = {s.name: _inlet(f"{unique_name}-{s.name}") for s in nonempty}
        for s in nonempty:
            info = inlets[s.name].info()
            assert info.type() == s.type and info.channel_count() == s.n_channels
            assert info.nominal_srate() == s.srate
            assert _channels(inlets[s.name])[0] == s.labels
        got = _play_and_collect(player, inlets)
    if len(nonempty) < len(streams):
        assert "is empty (0 samples); not replayed" in caplog.text
        empty = [s.name for s in streams if not s.n_samples]
        assert not pylsl.resolve_byprop("name", f"{unique_name}-{empty[0]}", timeout=0.3)

    first_file = min(s.timestamps[0] for s in nonempty)
    first_recv = min(got[s.name][1][0] for s in nonempty)
    for s in nonempty:
        values, stamps = got[s.name]
        assert len(stamps) == s.n_samples, s.name
        if s.is_string:
            assert [v[0] for v in values] == s.data
        else:
            np.testing.assert_allclose(np.asarray(values), s.data, rtol=1e-6)
        # the file's relative timing, on one clock for all streams (to float precision)
        np.testing.assert_allclose((stamps - first_recv) * speed, s.timestamps - first_file, atol=1e-3)
        assert np.all(np.diff(stamps) > 0)


@pytest.mark.parametrize("meas_date", ["file", None])
def test_cropped_raw_markers_align(eegmmidb, unique_name, tmp_path, meas_date):
    """A Raw that starts at first_samp != 0 (cropped FIF): markers still on their samples."""
    raw = load_recording(eegmmidb / "S001" / "S001R08.edf").crop(10.05, 25)
    if meas_date is None:
        raw.set_meas_date(None)
    raw.save(tmp_path / "crop_raw.fif", verbose="error")
    raw = load_recording(tmp_path / "crop_raw.fif", preload=False)
    assert raw.first_samp == 1608
    events, _ = mne.events_from_annotations(raw, verbose="error")
    speed = 20.0
    with Player(raw, speed=speed, name=unique_name) as player:
        inlets = {"eeg": _inlet(unique_name), "mk": _inlet(unique_name + "-markers")}
        got = _play_and_collect(player, inlets)
    data = np.asarray(got["eeg"][0])
    np.testing.assert_allclose(data, raw.get_data().T * 1e6, rtol=1e-6, atol=1e-4)
    samples = (got["mk"][1] - got["eeg"][1][0]) * speed * 160
    np.testing.assert_allclose(samples, events[:, 0] - raw.first_samp, atol=0.5)
    assert [m[0] for m in got["mk"][0]] == list(raw.annotations.description)


def test_gdf_replay_markers_travel_as_codes(tmp_path, unique_name):
    from tests.acquisition.test_io import write_gdf

    rng = np.random.default_rng(4)
    want = write_gdf(tmp_path / "cues.gdf", rng.normal(0, 20, (3, 1000)), 250, ["C3", "Cz", "C4"],
                     [(100, 768), (500, 769), (750, 770)])
    speed = 10.0
    with Player(tmp_path / "cues.gdf", speed=speed, name=unique_name) as player:
        inlets = {"eeg": _inlet(unique_name), "mk": _inlet(unique_name + "-markers")}
        got = _play_and_collect(player, inlets)
    np.testing.assert_allclose(np.asarray(got["eeg"][0]), want.T, atol=1e-4)
    assert [m[0] for m in got["mk"][0]] == ["768", "769", "770"]
    np.testing.assert_allclose((got["mk"][1] - got["eeg"][1][0]) * speed * 250, [100, 500, 750], atol=0.5)


def _counter_raw(n=200, sfreq=100.0):
    info = mne.create_info(["counter", "Cz"], sfreq, ["misc", "eeg"])
    data = np.vstack([np.arange(n, dtype=float), np.sin(np.arange(n) / 5) * 1e-5])
    raw = mne.io.RawArray(data, info, verbose="error")
    raw.set_annotations(mne.Annotations([0.5, 1.0], [0, 0], ["left_hand", "T9"]))
    return raw


def test_loop_pause_and_marker_codes(unique_name):
    speed = 4.0
    player = Player(_counter_raw(), speed=speed, loop=True, name=unique_name, chunk_ms=10)
    inlets = {"eeg": _inlet(unique_name), "mk": _inlet(unique_name + "-markers")}
    assert _channels(inlets["eeg"])[1] == ["", "microvolts"]  # misc channel unscaled, EEG in uV
    assert player.wait_for_consumers(5.0)
    player.start()
    values, stamps, markers, mstamps = [], [], [], []
    paused_at = None
    deadline = time.monotonic() + 20
    while len(values) < 700 and time.monotonic() < deadline:
        v, t = inlets["eeg"].pull_chunk(timeout=0.05, max_samples=10_000)
        values += v
        stamps += t
        m, mt = inlets["mk"].pull_chunk(timeout=0.0)
        markers += [x[0] for x in m]
        mstamps += mt
        if paused_at is None and len(values) >= 300:
            player.pause()
            assert player.paused
            time.sleep(0.3)
            paused_at = len(values)
            extra, _ = inlets["eeg"].pull_chunk(timeout=0.2, max_samples=10_000)
            values += extra
            stamps += _
            player.resume()
    player.stop()
    assert player.finished and player.loops_done >= 2
    counter = np.asarray(values)[:, 0]
    n = len(counter)
    assert n >= 600
    np.testing.assert_array_equal(counter, np.arange(n) % 200)  # loops restart cleanly, nothing lost
    np.testing.assert_allclose(np.asarray(values)[:200, 1], np.sin(np.arange(200) / 5) * 10, rtol=1e-5)
    dt = np.diff(stamps)
    assert np.all(dt > 0)  # timestamps keep increasing across loops and the pause
    gap = dt > 2 / (100 * speed)
    assert gap.sum() == 1 and dt[gap][0] >= 0.25  # exactly one gap: the pause, as long as the pause
    # across a loop boundary the sample clock goes on at one sample period
    np.testing.assert_allclose(dt[199], 1 / (100 * speed), atol=1e-6)
    # names of the marker vocabulary travel as codes, foreign labels unchanged; both every loop
    assert markers[:4] == ["769", "T9", "769", "T9"]
    sample_of = {int(round(x)) for x in (np.asarray(mstamps[:2]) - stamps[0]) * speed * 100}
    assert sample_of == {50, 100}


def test_bad_arguments(shared_data, unique_name):
    with pytest.raises(AcquisitionError, match="speed 0"):
        Player(_counter_raw(), speed=0)
    with pytest.raises(RecordingError, match="no stream named \\['Nope'\\]"):
        Player(shared_data / "xdf" / "minimal.xdf", streams=["Nope"], name=unique_name)
    with pytest.raises(RecordingError, match="nothing to replay"):
        Player(shared_data / "xdf" / "empty_streams.xdf", name=unique_name,
               streams=["Empty data stream: test stream 0 counter"])


def _cli(*args: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.Popen(
        [sys.executable, "-m", "neurodeck.app", "replay", *args], cwd=ROOT, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def test_cli_bad_file_exits_2(tmp_path):
    bad = tmp_path / "notes.txt"
    bad.write_text("x")
    proc = _cli(str(bad))
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and "notes.txt" in lines[0] and "unsupported" in lines[0]


def test_cli_replays_and_stops_on_sigterm(shared_data, unique_name):
    proc = _cli(str(shared_data / "xdf" / "minimal.xdf"), "--loop", "--speed", "2", "--name", unique_name)
    try:
        inlet = _inlet(f"{unique_name}-SendDataC", timeout=30)
        values, _ = inlet.pull_chunk(timeout=3.0)
        deadline = time.monotonic() + 10
        while len(values) < 3 and time.monotonic() < deadline:
            more, _ = inlet.pull_chunk(timeout=0.5)
            values += more
        file_rows = {tuple(r) for r in next(s for s in read_xdf_streams(shared_data / "xdf" / "minimal.xdf")
                                            if s.name == "SendDataC").data.tolist()}
        assert len(values) >= 3 and {tuple(v) for v in values} <= file_rows
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "stopped" in err
