"""neurodeck.acquisition.io on real files: EDF, FIF, BrainVision, BDF, XDF, and broken files."""
from __future__ import annotations

import json
import os

import mne
import numpy as np
import pytest

from neurodeck.acquisition.errors import RecordingError
from neurodeck.acquisition.io import (
    SUPPORTED,
    XdfStream,
    choose_eeg_stream,
    get_events,
    load_recording,
    read_xdf_streams,
)


@pytest.fixture(scope="module")
def edf_path(eegmmidb):
    return eegmmidb / "S001" / "S001R04.edf"


@pytest.fixture(scope="module")
def edf_raw(edf_path):
    return load_recording(edf_path)


@pytest.fixture(scope="module")
def xdf_dir(shared_data):
    return shared_data / "xdf"


# ----------------------------------------------------------------------------------- MNE formats


def test_edf_loads_with_annotations(edf_raw):
    assert edf_raw.info["sfreq"] == 160.0
    assert len(edf_raw.ch_names) == 64 and edf_raw.ch_names[8] == "C3.."
    assert edf_raw.n_times == 20000
    assert sorted(set(edf_raw.annotations.description)) == ["T0", "T1", "T2"]
    assert len(edf_raw.annotations) == 30
    # volts: EEG of a scalp recording is well below 1 mV
    assert 1e-6 < np.abs(edf_raw.get_data()).max() < 1e-3


def test_get_events_mapping_and_default(edf_raw):
    events, event_id = get_events(edf_raw, {"T1": "left_hand", "T2": "right_hand"})
    assert event_id == {"left_hand": 769, "right_hand": 770}
    assert events.shape == (15, 3)
    assert set(events[:, 2]) == {769, 770}
    onsets = edf_raw.annotations.onset[np.isin(edf_raw.annotations.description, ["T1", "T2"])]
    np.testing.assert_array_equal(events[:, 0], np.round(onsets * 160).astype(int))
    assert np.all(np.diff(events[:, 0]) > 0)

    events, event_id = get_events(edf_raw)
    assert event_id == {"T0": 1, "T1": 2, "T2": 3}
    assert len(events) == 30


def test_get_events_unknown_label_lists_present(edf_raw):
    with pytest.raises(RecordingError) as err:
        get_events(edf_raw, {"T1": "left_hand", "T9": "feet"})
    msg = str(err.value)
    assert "'T9'" in msg and "['T0', 'T1', 'T2']" in msg


def test_fif_roundtrip_and_code_names(edf_raw, tmp_path):
    raw = edf_raw.copy().crop(0, 30)
    # a neurodeck-style code label becomes its name on load; a foreign label passes through
    raw.annotations.append(5.0, 0.0, "769")
    for fname in ("rec_raw.fif", "rec_raw.fif.gz"):
        raw.save(tmp_path / fname, overwrite=True, verbose="error")
        back = load_recording(tmp_path / fname)
        np.testing.assert_allclose(back.get_data(), raw.get_data(), rtol=1e-6, atol=1e-12)
        assert back.ch_names == raw.ch_names
        assert "left_hand" in back.annotations.description and "769" not in back.annotations.description
        assert list(back.annotations.description).count("T1") == list(raw.annotations.description).count("T1")
        ev, eid = get_events(back, {"769": "left_hand"})  # code key finds the name
        assert eid == {"left_hand": 769} and ev[0, 0] == 5 * 160


def test_brainvision_export_roundtrip(edf_raw, tmp_path):
    raw = edf_raw.copy().crop(0, 20)
    mne.export.export_raw(tmp_path / "rec.vhdr", raw, overwrite=True, verbose="error")
    back = load_recording(tmp_path / "rec.vhdr")
    np.testing.assert_allclose(back.get_data(), raw.get_data(), rtol=1e-5, atol=1e-9)
    assert sorted(set(back.annotations.description)) == ["T0", "T1", "T2"]  # "Comment/" removed
    np.testing.assert_allclose(back.annotations.onset, raw.annotations.onset, atol=1 / 160)


def test_bdf_export_roundtrip(edf_raw, tmp_path):
    raw = edf_raw.copy().crop(0, 20)
    mne.export.export_raw(tmp_path / "rec.bdf", raw, overwrite=True, verbose="error")
    back = load_recording(tmp_path / "rec.bdf")
    n = raw.n_times  # the writer pads the last data record
    # 24-bit BDF over the EDF's physical range: a quantisation step of far below 0.1 uV
    np.testing.assert_allclose(back.get_data()[:, :n], raw.get_data(), atol=0.1e-6)
    labels = set(back.annotations.description)
    assert labels - {"BAD_ACQ_SKIP"} == {"T0", "T1", "T2"}  # the padding is marked BAD_ACQ_SKIP


# ------------------------------------------------------------------------------------------- XDF


def test_xdf_clock_resets_eeg_and_markers(xdf_dir):
    path = xdf_dir / "clock_resets.xdf"
    streams = read_xdf_streams(path)
    eeg_s = next(s for s in streams if s.name == "BioSemi")
    mk_s = next(s for s in streams if s.name == "MyMarkerStream")
    assert np.all(np.diff(eeg_s.timestamps) > 0) and np.all(np.diff(mk_s.timestamps) > 0)  # resets handled
    assert len(eeg_s.segments) == 2

    raw = load_recording(path)
    assert raw.ch_names == [f"ch{i}" for i in range(1, 9)] and raw.info["sfreq"] == 100.0
    meta = json.loads(raw.info["description"])
    assert meta["eeg_stream"]["name"] == "BioSemi"
    (gap_start, gap_len), = meta["timing"]["gaps"]
    first_seg_end = eeg_s.segments[0][1] + 1
    assert gap_start == first_seg_end
    data = raw.get_data()
    # first segment: untouched samples (no unit in the file: microvolts assumed -> volts)
    np.testing.assert_allclose(data[:, :first_seg_end], eeg_s.data[:first_seg_end].T * 1e-6, rtol=1e-6)
    # second segment: untouched too, after the gap
    np.testing.assert_allclose(data[:, first_seg_end + gap_len :], eeg_s.data[first_seg_end:].T * 1e-6, rtol=1e-6)
    assert raw.n_times == eeg_s.n_samples + gap_len
    desc = list(raw.annotations.description)
    assert desc.count("BAD_ACQ_SKIP") == 1
    markers = [d for d in desc if d != "BAD_ACQ_SKIP"]
    assert len(markers) == mk_s.n_samples - meta["timing"]["markers_dropped_outside_eeg"] > 150
    # a marker inside the first segment sits on the grid index of the EEG sample recorded with it
    mask = raw.annotations.description != "BAD_ACQ_SKIP"
    onsets = raw.annotations.onset[mask]
    for t, onset in zip(mk_s.timestamps[:20], onsets[:20], strict=True):
        j = int(np.argmin(np.abs(eeg_s.timestamps - t)))
        assert abs(onset * 100 - j) <= 1.0
    assert markers[:3] == mk_s.data[:3]


def test_xdf_minimal_markers_as_annotations(xdf_dir):
    raw = load_recording(xdf_dir / "minimal.xdf")
    assert raw.ch_names == ["ch1", "ch2", "ch3"] and raw.n_times == 9
    np.testing.assert_allclose(raw.get_data()[:, 1] * 1e6, [12, 22, 32])
    desc = list(raw.annotations.description)
    assert desc[1:5] == ["Hello", "World", "from", "LSL"]
    np.testing.assert_allclose(raw.annotations.onset[1:5], [0.2, 0.3, 0.4, 0.5], atol=1e-6)


def test_xdf_stream_choice(xdf_dir, caplog):
    raw = load_recording(xdf_dir / "clock_resets.xdf", stream="BioSemi")
    assert len(raw.ch_names) == 8
    with pytest.raises(RecordingError) as err:
        load_recording(xdf_dir / "clock_resets.xdf", stream="Nope")
    assert "'Nope'" in str(err.value) and "'BioSemi'" in str(err.value) and "'MyMarkerStream'" in str(err.value)
    with pytest.raises(RecordingError, match="string stream"):
        load_recording(xdf_dir / "clock_resets.xdf", stream="MyMarkerStream")
    # no stream of type EEG: the error lists the streams and says how to choose
    with pytest.raises(RecordingError) as err:
        load_recording(xdf_dir / "empty_streams.xdf")
    assert "stream=" in str(err.value) and "'Data stream: test stream 0 counter'" in str(err.value)
    with pytest.raises(RecordingError, match="is empty"):
        load_recording(xdf_dir / "empty_streams.xdf", stream="Empty data stream: test stream 0 counter")
    raw = load_recording(xdf_dir / "empty_streams.xdf", stream="Data stream: test stream 0 counter")
    assert raw.get_channel_types() == ["misc"]  # typed misc in the desc: no unit scaling
    np.testing.assert_array_equal(raw.get_data()[0], np.arange(10))
    assert "Empty marker stream" in caplog.text


def _fake(name, n_ch, n, stype="EEG"):
    return XdfStream(name=name, type=stype, labels=[f"c{i}" for i in range(n_ch)], units=[""] * n_ch,
                     srate=100.0, fmt="float32", data=np.zeros((n, n_ch)), timestamps=np.arange(n) / 100.0)


def test_choose_eeg_stream_rules():
    a, b, c = _fake("a", 8, 100), _fake("b", 32, 50), _fake("c", 32, 80)
    assert choose_eeg_stream([a, b, c]).name == "c"  # most channels, then most samples
    with pytest.raises(RecordingError, match="ambiguous"):
        choose_eeg_stream([a, b, _fake("b2", 32, 50)])
    with pytest.raises(RecordingError, match="2 streams are named 'b'"):
        choose_eeg_stream([b, _fake("b", 8, 10)], "b")


# ------------------------------------------------------------------------------ broken files


def test_unsupported_empty_missing(tmp_path):
    txt = tmp_path / "notes.txt"
    txt.write_text("hello")
    with pytest.raises(RecordingError) as err:
        load_recording(txt)
    assert "notes.txt" in str(err.value) and "'.txt'" in str(err.value) and ".edf" in str(err.value)
    assert all(s in str(err.value) for s in SUPPORTED)
    empty = tmp_path / "empty.edf"
    empty.write_bytes(b"")
    with pytest.raises(RecordingError, match="empty.edf: file is empty"):
        load_recording(empty)
    with pytest.raises(RecordingError, match="file not found"):
        load_recording(tmp_path / "missing.fif")


def test_truncated_and_garbage_edf(edf_path, tmp_path):
    data = edf_path.read_bytes()
    half = tmp_path / "half.edf"
    half.write_bytes(data[: len(data) // 2])
    with pytest.raises(RecordingError) as err:
        load_recording(half)
    assert "half.edf: truncated" in str(err.value) and "125 data records" in str(err.value)
    stub = tmp_path / "stub.edf"
    stub.write_bytes(data[:100])
    with pytest.raises(RecordingError, match="truncated"):
        load_recording(stub)
    garbage = tmp_path / "garbage.edf"
    garbage.write_bytes(os.urandom(5000))
    with pytest.raises(RecordingError, match="garbage.edf"):
        load_recording(garbage)
    fif = tmp_path / "garbage_raw.fif"
    fif.write_bytes(os.urandom(5000))
    with pytest.raises(RecordingError, match="cannot read as .fif"):
        load_recording(fif)


def test_corrupt_and_truncated_xdf(xdf_dir, tmp_path):
    rnd = tmp_path / "random.xdf"
    rnd.write_bytes(np.random.default_rng(0).bytes(4000))
    with pytest.raises(RecordingError) as err:
        load_recording(rnd)
    assert "random.xdf" in str(err.value) and "not a readable XDF" in str(err.value)
    magic = tmp_path / "magic.xdf"
    magic.write_bytes(b"XDF:" + np.random.default_rng(1).bytes(4000))
    with pytest.raises(RecordingError, match="no streams could be read"):
        read_xdf_streams(magic)
    data = (xdf_dir / "clock_resets.xdf").read_bytes()
    cut = tmp_path / "cut.xdf"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(RecordingError) as err:
        load_recording(cut)
    assert "cut.xdf: truncated" in str(err.value) and "no footer" in str(err.value)
    partial = read_xdf_streams(cut, allow_truncated=True)
    eeg = next(s for s in partial if s.name == "BioSemi")
    assert 0 < eeg.n_samples < 27815
    with pytest.raises(RecordingError, match="only applies to XDF"):
        load_recording(xdf_dir.parent / "eegmmidb" / "S001" / "S001R04.edf", stream="EEG")


def test_xdfz_compressed(xdf_dir, tmp_path):
    import gzip

    z = tmp_path / "minimal.xdfz"
    z.write_bytes(gzip.compress((xdf_dir / "minimal.xdf").read_bytes()))
    raw = load_recording(z)
    ref = load_recording(xdf_dir / "minimal.xdf")
    np.testing.assert_array_equal(raw.get_data(), ref.get_data())
    assert list(raw.annotations.description) == list(ref.annotations.description)


def write_gdf(path, data_uv, sfreq, labels, events):
    """Write a minimal GDF 2.20 file (int16, 0.1 uV steps, 1-s records) with an event table.

    ``data_uv``: (n_channels, n_times), n_times a multiple of ``sfreq``; ``events``: [(sample, code)].
    Written from the GDF 2 layout (fixed header, per-channel variable header, records, event table)
    because no writer for GDF is installed; this is what BCI Competition IV files look like.
    """
    import struct

    ns, n = data_uv.shape
    sfreq = int(sfreq)
    n_rec = n // sfreq
    head = b"GDF 2.20" + b"X X".ljust(66) + bytes(10) + bytes(4) + b"neurodeck test".ljust(64) + bytes(16)
    head += struct.pack("<QQH", 0, 0, 1 + ns) + bytes(6) + bytes(8) + bytes(6) + bytes(6) + bytes(24)
    head += struct.pack("<qIIHH", n_rec, 1, 1, ns, 0)
    assert len(head) == 256
    var = b"".join(lab.encode().ljust(16) for lab in labels) + bytes(80 * ns) + bytes(6 * ns)
    var += struct.pack(f"<{ns}H", *[4275] * ns)  # microvolts
    var += struct.pack(f"<{ns}d", *[-3276.8] * ns) + struct.pack(f"<{ns}d", *[3276.7] * ns)
    var += struct.pack(f"<{ns}d", *[-32768] * ns) + struct.pack(f"<{ns}d", *[32767] * ns)
    var += bytes(68 * ns) + bytes(12 * ns)  # reserved, low/high/notch filters
    var += struct.pack(f"<{ns}i", *[sfreq] * ns) + struct.pack(f"<{ns}i", *[3] * ns)  # int16
    var += bytes(12 * ns) + bytes(20 * ns)  # positions, impedances
    assert len(var) == 256 * ns
    digital = np.round(np.asarray(data_uv) * 10).astype("<i2")
    records = b"".join(digital[:, r * sfreq : (r + 1) * sfreq].tobytes() for r in range(n_rec))
    ne = len(events)
    table = bytes([1]) + ne.to_bytes(3, "little") + struct.pack("<f", sfreq)
    table += struct.pack(f"<{ne}I", *[s + 1 for s, _ in events]) + struct.pack(f"<{ne}H", *[c for _, c in events])
    path.write_bytes(head + var + records + table)
    return digital / 10.0


def test_gdf_written_by_hand_codes_become_names(tmp_path):
    rng = np.random.default_rng(3)
    data = rng.normal(0, 20, (3, 2500))
    want = write_gdf(tmp_path / "rec.gdf", data, 250, ["C3", "Cz", "C4"], [(100, 768), (500, 769), (1500, 770)])
    raw = load_recording(tmp_path / "rec.gdf")
    assert raw.ch_names == ["C3", "Cz", "C4"] and raw.info["sfreq"] == 250.0 and raw.n_times == 2500
    np.testing.assert_allclose(raw.get_data() * 1e6, want, atol=1e-6)
    assert list(raw.annotations.description) == ["trial_start", "left_hand", "right_hand"]
    np.testing.assert_allclose(raw.annotations.onset, [0.4, 2.0, 6.0])
    events, event_id = get_events(raw, {"769": "left_hand", "770": "right_hand"})
    assert event_id == {"left_hand": 769, "right_hand": 770}
    np.testing.assert_array_equal(events[:, 0], [500, 1500])


def test_stim_channel_events_become_annotations(tmp_path):
    n, sfreq = 3000, 250.0
    info = mne.create_info(["C3", "Cz", "STI 014"], sfreq, ["eeg", "eeg", "stim"])
    data = np.zeros((3, n))
    data[:2] = np.random.default_rng(5).normal(0, 1e-5, (2, n))
    for start, code in [(300, 769), (1100, 770), (1105, 771), (2000, 5)]:  # 770 -> 771 back to back
        data[2, start : start + 10] = code
        data[2, start + 5 : start + 10] = code if code != 770 else 0
    data[2, 1105:1115] = 771
    raw = mne.io.RawArray(data, info, verbose="error")
    raw.set_meas_date(None)
    raw.crop(0.4, None)  # first_samp = 100: onsets must stay on their samples
    raw.save(tmp_path / "stim_raw.fif", verbose="error")
    back = load_recording(tmp_path / "stim_raw.fif")
    assert list(back.annotations.description) == ["left_hand", "right_hand", "feet", "5"]
    # orig_time None: MNE counts onsets from the original sample 0 (first_time included)
    np.testing.assert_allclose((back.annotations.onset - back.first_time) * sfreq, [200, 1000, 1005, 1900])
    events, event_id = get_events(back, {"769": "left_hand", "770": "right_hand"})
    np.testing.assert_array_equal(events[:, 0] - back.first_samp, [200, 1000])
