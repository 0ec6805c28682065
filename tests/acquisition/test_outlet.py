"""Outlets: metadata in the desc, shape checks, integer and decision streams over loopback LSL."""
from __future__ import annotations

import numpy as np
import pylsl
import pytest

from neurodeck.acquisition.errors import AcquisitionError
from neurodeck.acquisition.outlet import DataOutlet, DecisionOutlet, make_stream_info
from neurodeck.acquisition.streams import StreamDescription


def _inlet(source_id):
    info = pylsl.resolve_byprop("source_id", source_id, timeout=5)[0]
    inlet = pylsl.StreamInlet(info, processing_flags=0)
    inlet.open_stream(timeout=5)
    return inlet


def test_stream_info_carries_labels_units_and_types(unique_name):
    info = make_stream_info(unique_name, "EEG", ["C3", "C4"], 256, units="microvolts",
                            ch_types=["EEG", "EEG"], source_id=unique_name)
    outlet = DataOutlet(info)  # keep a reference: the stream lives as long as the outlet
    full = pylsl.StreamInlet(pylsl.resolve_byprop("source_id", unique_name, timeout=5)[0]).info(5)
    d = StreamDescription.from_info(full)
    assert d.labels == ("C3", "C4") and d.units == ("microvolts", "microvolts")
    assert d.srate == 256 and d.n_channels == 2
    outlet.close()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(name="", stype="EEG", labels=["a"], srate=1), "name is empty"),
        (dict(name="x", stype="EEG", labels=[], srate=1), "no channels"),
        (dict(name="x", stype="EEG", labels=["a"], srate=-5), "-5"),
        (dict(name="x", stype="EEG", labels=["a"], srate=1, fmt="float16"), "float16"),
    ],
)
def test_bad_stream_info_is_refused_naming_the_value(kwargs, match):
    with pytest.raises(AcquisitionError, match=match):
        make_stream_info(**kwargs)


def test_chunk_shape_checked_and_int_samples_kept(unique_name):
    out = DataOutlet(make_stream_info(unique_name, "Markers", ["code"], 0, fmt="int32",
                                      source_id=unique_name))
    with pytest.raises(AcquisitionError, match=r"expected \(n_samples, 1\)"):
        out.push_chunk(np.zeros((4, 3)))
    with pytest.raises(AcquisitionError, match="expected 1"):
        out.push_sample([1, 2])
    inlet = _inlet(unique_name)
    out.push_sample([769])
    sample, _ = inlet.pull_sample(timeout=5)
    assert sample == [769]


def test_decision_outlet_stamps_and_checks_length(unique_name):
    out = DecisionOutlet(unique_name, ["left_hand", "right_hand"], source_id=unique_name)
    with pytest.raises(AcquisitionError, match="expected 2"):
        out.push([0.1, 0.2, 0.7], timestamp=1.0)
    inlet = _inlet(unique_name)
    out.push([0.25, 0.75], timestamp=123.5)
    sample, ts = inlet.pull_sample(timeout=5)
    assert sample == [0.25, 0.75] and ts == 123.5
