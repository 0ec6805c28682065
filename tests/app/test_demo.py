"""The README's first command, end to end on the embedded recording (accelerated)."""
from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import pylsl
import pytest

from neurodeck.app.demo import ASSETS, run_demo


@pytest.mark.slow  # the window test (test_demo_window.py) runs the demo and checks the same result
def test_demo_calibrates_trains_and_decodes_live_above_chance(tmp_path, caplog):
    lines: list[str] = []
    with caplog.at_level("WARNING", logger="neurodeck.acquisition"):
        res = run_demo(tmp_path, speed=16.0, pipelines=("ts-lr",), report=lines.append)
    # calibration went through LSL into a real recording with every cue
    import mne

    raw = mne.io.read_raw_fif(res.calibration_file, verbose="error")
    from collections import Counter

    from neurodeck.acquisition.io import load_recording

    sources = [load_recording(ASSETS / f) for f in ("S001R04.edf", "S001R08.edf")]
    # every sample and every marker of both runs (125 s at 160 Hz each; T0 rest, T1/T2 cues)
    assert raw.n_times == sum(r.n_times for r in sources) == 40000
    cues = Counter(d for d in raw.annotations.description if d in ("T0", "T1", "T2"))
    assert cues == sum((Counter(r.annotations.description) for r in sources), Counter())
    assert cues["T1"] + cues["T2"] == 30  # 15 cues per run
    # the replay's planned end is no lost stream: in the recording nor in the log
    assert "stream_lost" not in raw.annotations.description
    lost = [r.getMessage() for r in caplog.records if "-> lost" in r.getMessage()]
    assert not lost, lost
    assert (res.bundle_dir / "model.onnx").is_file() and (res.bundle_dir / "model.json").is_file()
    assert res.cv[0]["score"] > 0.6
    # online on the unseen run: every cue scored, every decision received, nothing lost
    assert res.online_trials == 15
    assert res.online_accuracy >= 0.6, lines
    # one decision per 1/16 s hop of a 125 s run unless the engine fell behind and skipped hops
    assert res.decisions_published + res.skipped_hops >= 1900
    assert res.decisions_published > 100
    assert res.decisions_received == res.decisions_published
    assert res.samples_lost == 0


def test_decode_cli_publishes_decisions_for_an_independent_inlet(bundle_dir, unique_name):
    from neurodeck.acquisition.player import Player

    bundle = bundle_dir  # trained on runs 4 and 8 (`neurodeck train`: test_cli_decoders.py)
    out_name = f"{unique_name}-dec"
    player = Player(ASSETS / "S001R12.edf", speed=4.0, name=unique_name, loop=True)
    proc = subprocess.Popen(
        [sys.executable, "-m", "neurodeck.app.cli", "decode", "--model", str(bundle), "--stream",
         unique_name, "--out-name", out_name, "--duration", "6"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        player.start()
        found = pylsl.resolve_byprop("name", out_name, timeout=20)
        assert found, "decision stream never appeared"
        inlet = pylsl.StreamInlet(found[0])
        info = inlet.info()
        labels = []
        ch = info.desc().child("channels").child("channel")
        while not ch.empty():
            labels.append(ch.child_value("label"))
            ch = ch.next_sibling()
        assert labels == ["left_hand", "right_hand", "valid"]
        values, stamps = [], []
        deadline = time.monotonic() + 4
        while time.monotonic() < deadline:
            v, t = inlet.pull_chunk(timeout=0.2)
            values += v
            stamps += t
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        player.stop()
    assert proc.returncode == 0, err
    assert "decisions" in out and "latency" in out
    values = np.asarray(values)
    assert len(values) > 20
    valid = values[:, 2] == 1
    np.testing.assert_allclose(values[valid, :2].sum(axis=1), 1.0, atol=1e-4)
    assert np.all(np.diff(stamps) > 0)


def test_decode_cli_refuses_a_missing_model(tmp_path, cli):
    proc = cli("decode", "--model", tmp_path / "nope")
    assert proc.returncode == 2 and "nope' is not a folder" in proc.stderr, proc.stderr
    proc = cli("decode", "--model", tmp_path)  # a folder, but no bundle in it
    assert proc.returncode == 2 and "bundle" in proc.stderr and "model.json" in proc.stderr, proc.stderr


def test_demo_json_flag_rejects_bad_speed(cli):
    proc = cli("demo", "--speed", "0", "--headless")
    assert proc.returncode == 2 and "--speed: '0' invalid" in proc.stderr, proc.stderr


def test_demo_help_mentions_the_embedded_recording():
    out = subprocess.run([sys.executable, "-m", "neurodeck.app.cli", "demo", "--help"], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0 and "EEGMMIDB" in out.stdout
