"""Stream discovery and description on real loopback LSL, and `neurodeck streams`."""
from __future__ import annotations

import json

import pylsl
import pytest

from neurodeck.acquisition.errors import AcquisitionError, StreamNotFoundError
from neurodeck.acquisition.outlet import DataOutlet, MarkerOutlet, make_stream_info
from neurodeck.acquisition.streams import StreamDescription, full_info, list_streams, resolve_stream


@pytest.fixture
def eeg_outlet(unique_name):
    info = make_stream_info(
        unique_name, "EEG", ["Fz", "C3", "Cz", "C4"], 256.0, source_id=unique_name + "-src",
        units="microvolts",
    )
    out = DataOutlet(info)
    yield out
    out.close()


def test_description_from_full_info(eeg_outlet, unique_name):
    d = StreamDescription.from_info(full_info(resolve_stream(name=unique_name, timeout=5)))
    assert d.name == unique_name and d.type == "EEG"
    assert (d.n_channels, d.srate, d.channel_format) == (4, 256.0, "float32")
    assert d.labels == ("Fz", "C3", "Cz", "C4")
    assert d.units == ("microvolts",) * 4
    assert d.source_id == unique_name + "-src" and d.uid and d.hostname
    assert not d.is_marker and d.is_numeric


def test_description_fallbacks_and_marker_flag(unique_name):
    bare = pylsl.StreamInfo(unique_name, "Misc", 3, 100.0, pylsl.cf_double64, "")
    d = StreamDescription.from_info(bare)
    assert d.labels == ("ch1", "ch2", "ch3") and d.units == ("", "", "")
    assert d.channel_format == "double64" and not d.is_marker
    marker = StreamDescription.from_info(
        make_stream_info(unique_name, "Markers", ["m"], 0.0, fmt="string")
    )
    assert marker.is_marker and not marker.is_numeric
    irregular_int = StreamDescription.from_info(
        make_stream_info(unique_name, "Markers", ["m"], 0.0, fmt="int32")
    )
    assert irregular_int.is_marker and irregular_int.is_numeric
    with pytest.raises(AcquisitionError, match="labels"):
        StreamDescription("x", "EEG", 2, 100.0, "float32", labels=("a",))


def test_list_streams_has_full_descriptions(eeg_outlet, unique_name):
    marker = MarkerOutlet(unique_name + "-markers", source_id=unique_name + "-m")
    try:
        found = {d.name: d for d in list_streams(timeout=1.0)}
    finally:
        marker.close()
    assert found[unique_name].labels == ("Fz", "C3", "Cz", "C4")
    assert found[unique_name + "-markers"].is_marker
    assert found[unique_name + "-markers"].labels == ("Marker",)


def test_resolve_by_source_id_and_type(eeg_outlet, unique_name):
    info = resolve_stream(source_id=unique_name + "-src", timeout=5)
    assert info.name() == unique_name
    info = resolve_stream(name=unique_name, stype="EEG", timeout=5)
    assert info.source_id() == unique_name + "-src"


def test_unknown_stream_names_the_query_and_what_was_found(eeg_outlet, unique_name):
    with pytest.raises(StreamNotFoundError) as err:
        resolve_stream(name=unique_name + "-nope", timeout=0.5)
    msg = str(err.value)
    assert f"name='{unique_name}-nope'" in msg
    assert unique_name in msg.replace(f"{unique_name}-nope", "")  # the real stream is listed
    with pytest.raises(StreamNotFoundError, match="type='NoSuchType'"):
        resolve_stream(name=unique_name, stype="NoSuchType", timeout=0.5)
    with pytest.raises(AcquisitionError, match="needs a name"):
        resolve_stream()


def test_cli_streams_table_and_json(eeg_outlet, unique_name, cli):
    proc = cli("streams", "--timeout", "1.0", "--json")
    assert proc.returncode == 0, proc.stderr
    rows = {r["name"]: r for r in json.loads(proc.stdout)}
    row = rows[unique_name]
    assert row["labels"] == ["Fz", "C3", "Cz", "C4"] and row["n_channels"] == 4
    assert row["srate"] == 256.0 and row["source_id"] == unique_name + "-src"
    proc = cli("streams", "--timeout", "0.5")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    line = next(ln for ln in out.splitlines() if ln.startswith(unique_name + " "))
    for field in ("EEG", "256 Hz", "float32", unique_name + "-src", "Fz, C3, Cz, C4"):
        assert field in line
    assert out.splitlines()[0].split()[:3] == ["NAME", "TYPE", "CH"]
    proc = cli("streams", "--timeout", "0")
    assert proc.returncode == 2 and "--timeout: '0' invalid" in proc.stderr, proc.stderr
