"""Recording to XDF: pyxdf (a reader we did not write) reads every stream with the FIF's samples
and markers, the clock offsets and the footers; ``recover`` writes the XDF of a killed recording."""
from __future__ import annotations

import json
import warnings

import mne
import numpy as np
import pytest
import pyxdf

from neurodeck.acquisition.finalize import recover
from neurodeck.acquisition.io import load_recording
from neurodeck.acquisition.outlet import DataOutlet, MarkerOutlet, local_clock, make_stream_info
from neurodeck.acquisition.recorder import Recorder
from tests.conftest import wait_until

MARKERS = {40: "switch,3,0,2", 200: "769", 333: "Trial Started"}


def _send(name, srate=256.0):
    """EEG (counter + 2 channels, microvolts) and markers with commas/spaces, pushed in chunks."""
    info = make_stream_info(name, "EEG", ["counter", "C3", "C4"], srate, source_id=name,
                            units=["", "microvolts", "microvolts"], ch_types=["misc", "EEG", "EEG"])
    eeg = DataOutlet(info, chunk_size=16)
    mk = MarkerOutlet(name + "-markers", source_id=name + "-markers")
    return eeg, mk


def _push(eeg, mk, n=512, srate=256.0):
    t0 = local_clock()
    x = np.column_stack([np.arange(n), 10 * np.sin(np.arange(n) / 5), np.arange(n) % 7]).astype(np.float32)
    for a in range(0, n, 16):
        eeg.push_chunk(x[a:a + 16], t0 + (a + 15) / srate)
        for k in range(a, a + 16):
            if k in MARKERS:
                mk.push(MARKERS[k], t0 + k / srate)
    return x


@pytest.mark.parametrize("finish", ["stop", "recover"])
def test_xdf_has_every_stream_sample_and_marker(tmp_path, unique_name, finish):
    eeg, mk = _send(unique_name)
    out = tmp_path / "rec_raw.fif"
    rec = Recorder([unique_name, unique_name + "-markers"], out, flush_every=0.1, xdf=True).start()
    assert eeg.wait_for_consumers(10) and mk.wait_for_consumers(10)
    x = _push(eeg, mk)
    assert wait_until(lambda: rec.counters[unique_name]["written"] == len(x)
                      and rec.counters[unique_name + "-markers"]["written"] == len(MARKERS), 20)
    if finish == "stop":
        path = rec.stop()
    else:  # a crash: the partial folder stays; recover finishes FIF and XDF
        rec.abort()
        path = recover(rec.partial_dir)
    xdf_path = out.with_name("rec_raw.xdf")
    assert xdf_path.exists()
    streams, header = pyxdf.load_xdf(xdf_path)
    assert header["info"]["version"] == ["1.0"]
    by_name = {s["info"]["name"][0]: s for s in streams}
    assert set(by_name) == {unique_name, unique_name + "-markers"}
    s = by_name[unique_name]
    np.testing.assert_array_equal(s["time_series"], x)
    chans = s["info"]["desc"][0]["channels"][0]["channel"]
    assert [c["label"][0] for c in chans] == ["counter", "C3", "C4"]
    assert [c["unit"][0] for c in chans[1:]] == ["microvolts", "microvolts"]
    assert s["info"]["channel_format"] == ["float32"] and s["info"]["nominal_srate"] == ["256.0"]
    assert s["footer"]["info"]["sample_count"] == [str(len(x))]
    assert s["clock_times"], "no clock offsets in the XDF"
    m = by_name[unique_name + "-markers"]
    assert [v[0] for v in m["time_series"]] == list(MARKERS.values())
    # same samples and markers as our FIF, at the same times (pyxdf synchronises the clocks)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        raw = mne.io.read_raw_fif(path, preload=True, verbose="error")
    np.testing.assert_array_equal(raw.get_data(picks=["counter"])[0], x[:, 0])
    side = json.loads(out.with_name("rec_raw.json").read_text())
    assert side["xdf_file"] == "rec_raw.xdf"
    t_first = side["first_timestamp"]
    np.testing.assert_allclose(s["time_stamps"][0], t_first, atol=1e-4)
    onsets = (np.asarray(m["time_stamps"]) - s["time_stamps"][0]) * 256.0
    np.testing.assert_allclose(onsets, list(MARKERS), atol=0.5)
    keep = [d for d in raw.annotations.description if not d.startswith("stream_")]
    assert keep == ["switch,3,0,2", "left_hand", "Trial Started"]
    # our own XDF loader (what replay / evaluate use) reads it back like the FIF: units kept
    back = load_recording(xdf_path)
    np.testing.assert_allclose(back.get_data(picks="eeg"), raw.get_data(picks="eeg"), rtol=1e-6,
                               atol=1e-12)
    assert list(back.annotations.description) == keep
    np.testing.assert_allclose(back.annotations.onset * 256.0, list(MARKERS), atol=0.5)
