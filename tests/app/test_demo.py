"""`neurodeck decode` and the demo's command line (the demo's one end-to-end run is
tests/app/test_demo_window.py's window test)."""
from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import pylsl

from neurodeck.app.demo import ASSETS


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
