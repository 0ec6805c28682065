"""Marker vocabularies: one parser for --events / --event / --events-file, the GUI and the demo;
three classes from another lab's LabRecorder files through evaluate, train, replay and decode."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from neurodeck.app.events import (
    DEFAULT_EVENTS,
    EventMappingError,
    event_mapping,
    format_mapping,
    load_events_file,
    parse_event,
    parse_events,
    parse_mapping_text,
)

BCI_ESSENTIALS = [f"xdf/bci-essentials/sub-P001_ses-S001_task-T1_run-00{r}_eeg.xdf" for r in (1, 2, 3)]
THREE = ["switch,3,0,2=class_0", "switch,3,1,2=class_1", "switch,3,2,2=class_2"]


def test_simple_form_and_default():
    assert parse_events("T1=left_hand, T2=right_hand") == {"T1": "left_hand", "T2": "right_hand"}
    assert event_mapping() == parse_events(DEFAULT_EVENTS)
    assert parse_events("769=left_hand,770=right_hand,771=feet") == {
        "769": "left_hand", "770": "right_hand", "771": "feet"}


def test_one_pair_keeps_commas_spaces_and_escapes():
    assert parse_event("switch,3,0,2=class_0") == ("switch,3,0,2", "class_0")
    assert parse_event("Trial Started = start") == ("Trial Started", "start")
    assert parse_event("marker received : switch,3,0,2=x") == ("marker received : switch,3,0,2", "x")
    assert parse_event("a=b=c") == ("a=b", "c")  # the last '=' splits
    assert parse_event(r"a=b\=c") == ("a", "b=c")  # an escaped '=' does not
    assert parse_event(r"back\\slash=x") == ("back\\slash", "x")


@pytest.mark.parametrize("bad", ["switch,3,0,2", "=x", "x=", r"a\=b", "  =  "])
def test_bad_pairs_are_named(bad):
    with pytest.raises(EventMappingError, match="MARKER=CLASS"):
        parse_event(bad)


def test_simple_form_refuses_comma_markers_and_points_to_event():
    with pytest.raises(EventMappingError, match=r"item 'switch' of 'switch,3,0,2=a' .*use --event"):
        parse_events("switch,3,0,2=a")


def test_combination_conflicts_and_class_count(tmp_path):
    f = tmp_path / "ev.toml"
    f.write_text('[events]\n"switch,3,0,2" = "class_0"\n"switch,3,1,2" = "class_1"\n')
    assert load_events_file(f) == {"switch,3,0,2": "class_0", "switch,3,1,2": "class_1"}
    got = event_mapping(event=["switch,3,2,2=class_2"], events_file=f)
    assert got == {"switch,3,0,2": "class_0", "switch,3,1,2": "class_1", "switch,3,2,2": "class_2"}
    assert event_mapping(events="T1=a,T3=a,T2=b") == {"T1": "a", "T3": "a", "T2": "b"}  # many->one
    with pytest.raises(EventMappingError, match="'switch,3,0,2' mapped to both 'class_0' and 'x'"):
        event_mapping(event=["switch,3,0,2=x"], events_file=f)
    with pytest.raises(EventMappingError, match="names 1 class"):
        event_mapping(event=["T1=a"])
    top = tmp_path / "top.toml"
    top.write_text('T1 = "left_hand"\nT2 = "right_hand"\n')
    assert load_events_file(top) == {"T1": "left_hand", "T2": "right_hand"}
    bad = tmp_path / "bad.toml"
    bad.write_text("[events]\nT1 = 3\n")
    with pytest.raises(EventMappingError, match=r"entry 'T1' = 3 invalid"):
        load_events_file(bad)
    with pytest.raises(EventMappingError, match="not found"):
        load_events_file(tmp_path / "none.toml")


def test_gui_text_round_trips():
    m = {"switch,3,0,2": "class_0", "a=b": "x", "T1": "left_hand"}
    text = format_mapping(m)
    assert "; " in text and parse_mapping_text(text) == m
    assert parse_mapping_text("T1=left_hand, T2=right_hand") == {"T1": "left_hand", "T2": "right_hand"}
    assert parse_mapping_text("switch,3,0,2=a\nswitch,3,1,2=b") == {"switch,3,0,2": "a",
                                                                    "switch,3,1,2": "b"}
    assert parse_mapping_text("  ") is None


def test_cli_bad_event_is_one_line_exit_2(cli, shared_data):
    files = ",".join(str(shared_data / f) for f in BCI_ESSENTIALS)
    proc = cli("evaluate", files, "--events", "switch,3,0,2=a", "--pipelines", "mdm")
    assert proc.returncode == 2
    err = proc.stderr.strip().splitlines()
    assert len(err) == 1 and "use --event 'MARKER=CLASS'" in err[0], proc.stderr


def test_three_classes_from_labrecorder_files_evaluate_and_train(cli, shared_data, tmp_path):
    """The three bci-essentials runs joined as one dataset; markers with commas; 3 classes."""
    files = ",".join(str(shared_data / f) for f in BCI_ESSENTIALS)
    flags = [a for e in THREE for a in ("--event", e)] + ["--tmin", "0", "--tmax", "2"]
    out = tmp_path / "ev.json"
    proc = cli("evaluate", files, *flags, "--pipelines", "mdm,ts-lr", "--json", out, "--no-progress")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("accuracy"), proc.stdout
    res = json.loads(out.read_text())
    rows = res["results"] if isinstance(res, dict) else res
    assert {r["pipeline"] for r in rows} == {"mdm", "ts-lr"}
    for r in rows:
        assert r["metric"] == "accuracy" and 0.0 <= r["score"] <= 1.0
    mdm = next(r for r in rows if r["pipeline"] == "mdm")
    assert mdm["score"] > 0.43  # above the majority class (80 of 186 windows)
    model = tmp_path / "model"
    proc = cli("train", files, *flags, "--pipeline", "mdm", "--out", model, "--no-progress")
    assert proc.returncode == 0, proc.stderr
    assert "(class_0: 80, class_1: 55, class_2: 45)" in proc.stdout, proc.stdout
    meta = json.loads((model / "model.json").read_text())
    assert meta["classes"] == ["class_0", "class_1", "class_2"]
    assert meta["config"]["events"] == {"switch,3,0,2": "class_0", "switch,3,1,2": "class_1",
                                        "switch,3,2,2": "class_2"}
    assert meta["unit"] == "microvolts" and meta["calibration"]["amplitude"] > 0


@pytest.mark.slow
def test_three_class_model_decodes_a_replayed_labrecorder_file(cli, shared_data, tmp_path,
                                                               unique_name):
    files = ",".join(str(shared_data / f) for f in BCI_ESSENTIALS[:2])
    model = tmp_path / "model"
    flags = [a for e in THREE for a in ("--event", e)] + ["--tmin", "0", "--tmax", "2"]
    assert cli("train", files, *flags, "--pipeline", "mdm", "--out", model,
               "--no-progress").returncode == 0
    replay = subprocess.Popen(
        [sys.executable, "-m", "neurodeck", "replay", str(shared_data / BCI_ESSENTIALS[2]),
         "--name", unique_name, "--stream", "g.USBamp-1", "--loop", "--no-progress"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        proc = cli("decode", "--model", model, "--stream", f"{unique_name}-g.USBamp-1",
                   "--out-name", f"{unique_name}-dec", "--duration", "5", timeout=90)
    finally:
        replay.terminate()
        replay.wait(10)
    assert proc.returncode == 0, proc.stderr
    assert "channels: 16 of 16 model channels found" in proc.stdout
    last = proc.stdout.strip().splitlines()[-1]
    assert "class_0=" in last and "class_1=" in last and "class_2=" in last, proc.stdout
    assert "(0 invalid" in last, last
