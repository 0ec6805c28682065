"""The one unit table: every spelling real LSL programs write, and MNE-LSL's own convention."""
from __future__ import annotations

import numpy as np
import pytest

from neurodeck.acquisition.quality import unit_to_uv
from neurodeck.acquisition.units import (
    amplitude_mismatch,
    mne_type_and_scale,
    to_unit_scale,
    unit_name,
    volts_per_unit,
)


@pytest.mark.parametrize(
    ("text", "volts"),
    [
        ("microvolts", 1e-6), ("microvolt", 1e-6), ("Microvolts", 1e-6), ("micro volts", 1e-6),
        ("uV", 1e-6), ("uv", 1e-6), ("UV", 1e-6), ("\u00b5V", 1e-6), ("\u03bcV", 1e-6),
        ("\u00b5v", 1e-6), ("microVolts", 1e-6), ("uVolts", 1e-6), (" uV ", 1e-6), ("mcV", 1e-6),
        ("volts", 1.0), ("volt", 1.0), ("V", 1.0), ("v", 1.0),
        ("millivolts", 1e-3), ("mV", 1e-3), ("nanovolts", 1e-9), ("nV", 1e-9),
        # MNE-LSL: the FIFF unit multiplier (power of ten of volts) as a string
        ("0", 1.0), ("-6", 1e-6), ("-3", 1e-3), ("-9", 1e-9), ("+0", 1.0),
    ],
)
def test_every_spelling(text, volts):
    assert volts_per_unit(text) == pytest.approx(volts, rel=1e-12)


@pytest.mark.parametrize("text", ["", "   ", None, "a.u.", "counts", "mg", "samples", "dB", "1e-6",
                                  "mmHg", "microsiemens", "-600"])
def test_empty_or_unreadable_is_none(text):
    assert volts_per_unit(text) is None


def test_unit_name_round_trip():
    for name in ("volts", "millivolts", "microvolts", "nanovolts"):
        assert unit_name(volts_per_unit(name)) == name
    assert unit_name(2e-6) == "2e-06 V"


def test_mne_lsl_writes_exponents_we_read():
    """MNE-LSL's StreamInfo (a program we did not write) declares units from an MNE Info."""
    import mne
    from mne_lsl.lsl import StreamInfo

    info = mne.create_info(["C3", "C4", "STI"], 160.0, ["eeg", "eeg", "stim"])
    sinfo = StreamInfo("u", "EEG", 3, 160.0, "float64", "uid-units")
    sinfo.set_channel_info(info)  # what PlayerLSL does: SI data, volts
    written = sinfo.get_channel_units()
    assert [volts_per_unit(u) for u in written[:2]] == [1.0, 1.0]
    sinfo.set_channel_units(["microvolts", "microvolts", "none"])
    assert [volts_per_unit(u) for u in sinfo.get_channel_units()[:2]] == [1e-6, 1e-6]
    # StreamLSL's own reading of our canonical names agrees with ours
    sinfo.set_channel_units(["-6", "-3", "0"])
    got = [volts_per_unit(u) for u in sinfo.get_channel_units()[:2]]
    assert got == [1e-6, 1e-3]


def test_to_unit_scale_and_unknown():
    scale, unknown = to_unit_scale(["V", "", "uV", "a.u.", "-6", "mV"], "microvolts")
    np.testing.assert_allclose(scale, [1e6, 1.0, 1.0, 1.0, 1.0, 1e3])
    assert unknown == [1, 3]
    with pytest.raises(ValueError, match="'furlongs' not understood"):
        to_unit_scale(["uV"], "furlongs")


def test_mne_type_and_scale():
    assert mne_type_and_scale("uV", "EEG", "EEG") == ("eeg", 1e-6, False)
    assert mne_type_and_scale("0", "eeg", "EEG") == ("eeg", 1.0, False)  # MNE-LSL volts
    assert mne_type_and_scale("", "", "EEG") == ("eeg", 1e-6, True)  # LSL convention, assumed
    assert mne_type_and_scale("samples", "", "EEG") == ("misc", 1.0, False)
    assert mne_type_and_scale("", "stim", "EEG") == ("stim", 1.0, False)
    assert mne_type_and_scale("mV", "EKG", "Physio") == ("ecg", 1e-3, False)
    assert mne_type_and_scale("", "", "Markers") == ("misc", 1.0, False)


def test_quality_uses_the_same_table():
    assert unit_to_uv("\u03bcV") == 1.0
    assert unit_to_uv("0") == 1e6
    assert unit_to_uv("-3") == pytest.approx(1e3)
    assert unit_to_uv("") == 1.0
    assert np.isnan(unit_to_uv("samples"))


def test_amplitude_mismatch_names_the_factor():
    assert amplitude_mismatch(12.0, 10.0, "microvolts") == ""
    assert amplitude_mismatch(0.5, 10.0, "microvolts") == ""  # within 30x
    r = amplitude_mismatch(10e-6, 10.0, "microvolts")
    assert r.startswith("stream looks like volts, model was trained in microvolts"), r
    r = amplitude_mismatch(10e-3, 10.0, "microvolts")
    assert r.startswith("stream looks like millivolts, model was trained in microvolts"), r
    r = amplitude_mismatch(10.0, 10e-6, "volts")
    assert r.startswith("stream looks like microvolts, model was trained in volts"), r
    r = amplitude_mismatch(1e3 * 10 * 31.6, 10.0, "microvolts")  # between named units
    assert r.startswith("stream amplitude does not match"), r
    assert amplitude_mismatch(float("nan"), 10.0, "microvolts") == ""
    r = amplitude_mismatch(10e-6, 10.0, "microvolts", 100, declared="uV")
    assert r.startswith("stream declares microvolts; its data look like volts"), r
    assert amplitude_mismatch(10 * 50, 10.0, "microvolts", 100, declared="V") == ""  # 50x: plausible
    assert amplitude_mismatch(1e-9, float("nan"), "microvolts") == ""


def test_recorded_fif_scales_use_the_same_table():
    """A recorded MNE-LSL stream declaring '0' (volts) was finalized as if in microvolts (x1e-6)."""
    from neurodeck.acquisition.finalize import _mne_types_and_scales

    s = {"type": "EEG", "types": ["eeg", "", "", ""], "units": ["0", "\u00b5V", "", "samples"]}
    types, scales = _mne_types_and_scales(s)
    assert types == ["eeg", "eeg", "eeg", "misc"]
    np.testing.assert_allclose(scales, [1.0, 1e-6, 1e-6, 1.0])
