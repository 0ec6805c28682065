"""Session folders: layout, reopen, listing, and names that cannot escape the root."""
from __future__ import annotations

import json

import pytest

from neurodeck.app.errors import UserError
from neurodeck.app.protocol import ProtocolConfig
from neurodeck.app.session import (
    Session,
    SessionError,
    list_sessions,
    sanitize_filename,
    validate_name,
)
from neurodeck.app.settings import Settings, config_dir


def test_create_open_and_layout(session_root):
    s = Session.create(session_root, "S01", "day1", notes="first visit")
    assert s.path == session_root / "S01" / "day1"
    for sub in ("recordings", "models", "reports"):
        assert (s.path / sub).is_dir()
    assert s.config_path.is_file()
    s.set_section("protocol", ProtocolConfig(seed=3).to_dict())
    again = Session.open(s.path)
    assert again.label == "S01/day1"
    assert ProtocolConfig.from_dict(again.section("protocol")) == ProtocolConfig(seed=3)
    assert again.meta["session"]["notes"] == "first visit"
    with pytest.raises(SessionError, match="already exists"):
        Session.create(session_root, "S01", "day1")
    assert Session.create(session_root, "S01", "day1", exist_ok=True).path == s.path


def test_recording_paths_count_runs(session_root):
    s = Session.create(session_root, "S02", "a")
    p1 = s.new_recording_path("calibration")
    assert p1.name == "calibration-run01_raw.fif" and p1.parent == s.recordings_dir
    p1.write_bytes(b"x")
    assert s.new_recording_path("calibration").name == "calibration-run02_raw.fif"
    assert s.new_recording_path("online", ".xdf").name == "online-run01.xdf"
    assert s.recordings() == [p1]
    with pytest.raises(SessionError, match="suffix"):
        s.new_recording_path("x", "/../../a")


def test_list_sessions(session_root):
    Session.create(session_root, "S01", "a")
    Session.create(session_root, "S02", "b")
    (session_root / "junk").mkdir()
    infos = list_sessions(session_root)
    assert {(i.subject, i.session) for i in infos} == {("S01", "a"), ("S02", "b")}
    assert list_sessions(session_root / "missing") == []


@pytest.mark.parametrize(
    "bad",
    ["..", ".", "", "   ", "a/b", "../x", "a\\b", "/etc", "C:\\x", ".hidden", "x" * 65, "a b", "NUL",
     "é"],
)
def test_unsafe_names_rejected(session_root, bad):
    with pytest.raises(SessionError) as info:
        Session.create(session_root, bad, "s")
    assert isinstance(info.value, UserError)  # -> one-line CLI error, exit 2
    with pytest.raises(SessionError):
        Session.create(session_root, "S01", bad)
    # nothing was created outside (or inside) the root
    assert not any(session_root.parent.glob("etc")) and list(session_root.iterdir()) == []


def test_error_message_quotes_value_and_suggests():
    with pytest.raises(SessionError, match=r"'Jane Doe'.*'Jane_Doe'"):
        validate_name("Jane Doe", "subject")
    assert validate_name(" S01 ") == "S01"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("BioSemi 64", "BioSemi_64"),
        ("../../etc/passwd", "etc_passwd"),
        ("..", "stream"),
        ("", "stream"),
        ("a/b\\c:d", "a_b_c_d"),
        (".hidden", "hidden"),
        ("CON", "_CON"),
        ("EEG (µV) ✓", "EEG_V"),
    ],
)
def test_sanitize_filename(raw, expected):
    out = sanitize_filename(raw)
    assert out == expected
    assert "/" not in out and "\\" not in out and not out.startswith(".") and ".." not in out


def test_file_for_stream_stays_inside(session_root):
    s = Session.create(session_root, "S03", "a")
    p = s.file_for_stream("../../evil stream", suffix=".xdf")
    assert p.parent == s.recordings_dir and p.name == "evil_stream.xdf"
    with pytest.raises(SessionError, match="folder"):
        s.file_for_stream("x", folder="..")


def test_open_rejects_non_session(tmp_path):
    with pytest.raises(SessionError, match="not a neurodeck session"):
        Session.open(tmp_path)
    (tmp_path / "config.toml").write_text("not = [toml")
    with pytest.raises(SessionError, match="not valid TOML"):
        Session.open(tmp_path)


def test_settings_roundtrip_and_corrupt_file(neurodeck_home, tmp_path):
    assert config_dir() == neurodeck_home
    s = Settings.load()
    assert s.viewer["span_s"] == 10.0 and s.session_root == ""
    s.session_root = str(tmp_path / "root")
    s.viewer["scale_uv"] = 50.0
    path = s.save()
    assert path == neurodeck_home / "settings.json"
    s2 = Settings.load()
    assert s2.session_root == str(tmp_path / "root") and s2.viewer["scale_uv"] == 50.0
    assert s2.session_root_path() == tmp_path / "root"
    path.write_text("{broken")
    s3 = Settings.load()
    assert s3.session_root == "" and (neurodeck_home / "settings.json.bad").exists()
    path.write_text(json.dumps({"viewer": {"span_s": 5}, "unknown_key": 1}))
    s4 = Settings.load()
    assert s4.viewer["span_s"] == 5 and s4.viewer["scale_uv"] == 100.0
