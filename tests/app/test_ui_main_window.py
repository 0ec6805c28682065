"""Main window: a wide page does not widen the others; the opt-in widget dump for real-window walks."""
from __future__ import annotations

import json

import pytest

pytest.importorskip("pytestqt")

from PyQt6.QtCore import Qt  # noqa: E402
from PyQt6.QtWidgets import QLabel  # noqa: E402

LEFT = Qt.MouseButton.LeftButton


def _go(qtbot, win, key):
    from neurodeck.app.ui.main_window import PAGES

    row = [s.key for s in PAGES].index(key)
    rect = win.sidebar.visualItemRect(win.sidebar.item(row))
    qtbot.mouseClick(win.sidebar.viewport(), LEFT, pos=rect.center())
    assert win.stack.currentWidget() is win.pages[key]


def test_a_wide_page_keeps_the_window_wide_only_while_it_is_shown(make_window, qtbot):
    # seen in the real window at 1280x800: the Train page's one-line CV status made the window
    # 2306 px wide, and it stayed that wide on Online (its Start button off screen)
    win = make_window()
    wide = QLabel("a long status line without word wrap " * 40)
    win.pages["train"].body.addWidget(wide)
    _go(qtbot, win, "train")
    assert win.minimumSizeHint().width() > 2000  # the wide page itself still asks for its width
    for key in ("connect", "calibrate", "online", "replay"):
        _go(qtbot, win, key)
        qtbot.wait(20)
        assert win.minimumSizeHint().width() <= 1280, key
        win.resize(1280, 800)
        qtbot.waitUntil(lambda: win.width() == 1280, timeout=2000)


def test_widget_dump_only_when_asked(make_window, qtbot, tmp_path, monkeypatch):
    from neurodeck.app.ui.widget_dump import ENV

    monkeypatch.delenv(ENV, raising=False)
    assert make_window().widget_dump is None

    path = tmp_path / "widgets.json"
    monkeypatch.setenv(ENV, str(path))
    win = make_window()
    _go(qtbot, win, "replay")
    qtbot.waitUntil(lambda: path.exists() and json.loads(path.read_text())["state"]["page"]
                    == "replay", timeout=3000)
    win.context.report_error("Recording nope.edf not found")
    qtbot.waitUntil(lambda: json.loads(path.read_text())["state"]["banner"]
                    == "Recording nope.edf not found", timeout=3000)
    dump = json.loads(path.read_text())
    play = dump["widgets"]["replay.play_button"]
    page = win.pages["replay"]
    top_left = page.play_button.mapToGlobal(page.play_button.rect().topLeft())
    assert play["rect"] == [top_left.x(), top_left.y(), page.play_button.width(),
                            page.play_button.height()]
    assert play["text"] == "Play" and play["enabled"] is True
    assert dump["state"]["errors"] == ["Recording nope.edf not found"]
    assert "sidebar:train" in dump["widgets"] and "connect.sim_button" not in dump["widgets"]


def test_long_stream_names_do_not_push_the_counters_out_of_the_status_bar(make_window, qtbot,
                                                                          unique_name):
    # seen at 1280x800 while replaying: "... 0 reconnect" cut off under the stream names
    from neurodeck.acquisition.simulator import Simulator, SimulatorConfig
    from neurodeck.app.ui.main_window import STREAM_NAME_WIDTH

    name = unique_name + "-a-very-long-amplifier-stream-name-from-the-network"
    sim = Simulator(SimulatorConfig(n_channels=4, srate=128, name=name), source_id=name)
    sim.start()
    try:
        win = make_window()
        win.context.streams.connect_streams(name, name + "-markers")
        qtbot.waitUntil(lambda: win.context.streams.inlet is not None, timeout=15000)
        qtbot.waitUntil(lambda: win.counters_label.text().strip().endswith("reconnects"),
                        timeout=15000)
        label = win.marker_label
        assert name in label.toolTip() and name + "-markers" in label.toolTip()
        eeg, _, rest = label.text().strip().partition(" (4 ch, 128 Hz) + ")
        assert "\u2026" in eeg and rest == "markers"  # the name elided, the rate shown
        assert label.fontMetrics().horizontalAdvance(eeg) <= STREAM_NAME_WIDTH
        counters = win.counters_label
        assert counters.width() >= counters.fontMetrics().horizontalAdvance(counters.text())
    finally:
        win.context.streams.disconnect()
        sim.stop()


def test_calibrate_monitor_choice_is_not_cut(make_window, qtbot):
    # seen at 1280x800: the monitor box showed "1: screen 1280x8"
    win = make_window()
    _go(qtbot, win, "calibrate")
    box = win.pages["calibrate"].screen_box
    box.clear()
    box.addItem("1: screen 1280x800")
    qtbot.wait(50)
    text_width = box.fontMetrics().horizontalAdvance("1: screen 1280x800")
    assert box.width() >= text_width + 20  # the text plus the arrow
    full = win.pages["calibrate"].full_button
    assert full.width() >= full.fontMetrics().horizontalAdvance(full.text())
