"""Recording a peer program's stream: MNE-LSL's PlayerLSL (volts, unit "0") into our FIF + sidecar.

The FIF holds the player's samples in volts (the unit the player declares, read with
acquisition/units.py), and the sidecar holds real clock offsets for every stream (they were always
empty: the recorder asked the inlets for attributes they did not have).
"""
from __future__ import annotations

import json
import warnings

import mne
import numpy as np
import pytest

from neurodeck.acquisition.recorder import Recorder

pytest.importorskip("mne_lsl")


def test_player_in_volts_recorded_in_volts_with_clock_offsets(tmp_path, unique_name, asset_edfs):
    from mne_lsl.player import PlayerLSL

    from tests.conftest import wait_until

    raw = mne.io.read_raw_edf(asset_edfs[0], preload=True, verbose="error").crop(0, 6)
    raw.pick(raw.ch_names[:8]).set_annotations(None)
    counter = mne.io.RawArray(np.arange(raw.n_times, dtype=float)[None],
                              mne.create_info(["COUNTER"], raw.info["sfreq"], "misc"), verbose="error")
    raw.add_channels([counter], force_update_info=True)
    player = PlayerLSL(raw.copy(), chunk_size=16, n_repeat=1, name=unique_name, source_id=unique_name)
    out = tmp_path / "peer_raw.fif"
    player.start()
    try:
        rec = Recorder([unique_name], out, flush_every=0.25).start()
        assert wait_until(lambda: rec.counters[unique_name]["written"] >= 320, timeout=20)
        path = rec.stop()
    finally:
        player.stop()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = mne.io.read_raw_fif(path, preload=True, verbose="error")
    k = got.get_data(picks=["COUNTER"])[0].astype(int)
    assert len(k) >= 320 and np.all(np.diff(k) == 1)
    eeg = got.get_data(picks="eeg")
    assert eeg.shape[0] == 8
    np.testing.assert_allclose(eeg, raw.get_data(picks="eeg")[:, k], rtol=0, atol=1e-12)  # volts
    side = json.loads(path.with_name("peer_raw.json").read_text())
    (stream,) = side["streams"]
    offsets = stream["clock_offsets"]
    assert offsets, "no clock offset recorded"
    t, off = offsets[-1]
    assert np.isfinite(t) and abs(off) < 0.01  # same machine: liblsl's offset is ~microseconds
