"""Signal view as the user sees it: markers on the traces, every channel named at 64 channels.

Real LSL sources (the simulator and its ``NAME-markers`` stream, under unique names), the real
main window at 1280x800 (offscreen Qt), driven by clicks. ``NEURODECK_SHOTS=DIR`` also saves the
screenshots there (docs/screenshots).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pytestqt")

from PyQt6.QtCore import QPoint, Qt  # noqa: E402
from PyQt6.QtGui import QImage, QPainter  # noqa: E402

from neurodeck.app.protocol import ProtocolConfig  # noqa: E402
from neurodeck.app.session import Session  # noqa: E402

FAST = ProtocolConfig(classes=("left_hand", "right_hand"), trials_per_class=1, fixation_s=0.3,
                      cue_s=0.5, imagery_s=0.5, rest_min_s=0.2, rest_max_s=0.3, lead_in_s=0.3,
                      beep=False, seed=3)


@pytest.fixture
def window(make_window):
    return make_window(1280, 800)


@pytest.fixture
def simulator(unique_name):
    from neurodeck.acquisition.simulator import Simulator, SimulatorConfig

    def make(n_channels: int, srate: float):
        sim = Simulator(SimulatorConfig(n_channels=n_channels, srate=srate, name=unique_name,
                                        mode="cued", schedule="external"), source_id=unique_name)
        sim.start()
        made.append(sim)
        return sim

    made: list = []
    yield make
    for sim in made:
        sim.stop()


def _shoot(widget, name: str, tmp_path: Path) -> Path:
    img = widget.grab()
    out = tmp_path / name
    assert img.save(str(out)) and out.stat().st_size > 10_000
    if os.environ.get("NEURODECK_SHOTS"):
        img.save(str(Path(os.environ["NEURODECK_SHOTS"]) / name))
    return out


def _click_row_of(page, qtbot, name: str) -> None:
    """Click the stream's row in the Connect page's LSL table."""
    row = next(r for r, d in enumerate(page.streams) if d.name == name)
    rect = page.table.visualItemRect(page.table.item(row, 0))
    qtbot.mouseClick(page.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())


def _connect_by_clicks(window, qtbot, name: str):
    page = window.show_page("connect")
    listed = {name, name + "-markers"}  # the list refreshes by itself; both streams appear
    qtbot.waitUntil(lambda: listed <= {d.name for d in page.streams}
                    and page.refresh_button.isEnabled(), timeout=20000)
    _click_row_of(page, qtbot, name)
    assert page.eeg_box.currentData().name == name
    sm = window.context.streams
    with qtbot.waitSignal(sm.connection_changed, timeout=15000):
        qtbot.mouseClick(page.connect_button, Qt.MouseButton.LeftButton)
    assert sm.description.name == name
    return page, sm


def _drawn_tick_texts(axis) -> list[str]:
    """The tick label strings the axis paints now (pyqtgraph drops labels that do not fit)."""
    img = QImage(max(1, int(axis.width())), max(1, int(axis.height())), QImage.Format.Format_ARGB32)
    p = QPainter(img)
    try:
        _, _, texts = axis.generateDrawSpecs(p)
    finally:
        p.end()
    return [t[2] for t in texts]


def _drawn_names(axis) -> list[str]:
    """The channel names the axis paints, without a quality flag ("AF4  \u26a0noisy": a loaded
    machine can make the simulator's stream look noisy; flags are tested on their own)."""
    return [t.split("  \u26a0")[0] for t in _drawn_tick_texts(axis)]


def _assert_names_inside(view) -> None:
    """Every marker name on screen lies inside the traces' box (none cut off at an edge)."""
    box = view.plot.getViewBox().sceneBoundingRect()
    for line in view._marker_lines:
        if line.isVisible():
            r = line.label.mapRectToScene(line.label.boundingRect())
            assert box.left() - 1 <= r.left() and r.right() <= box.right() + 1, (
                line.label.toPlainText(), r, box)


def test_markers_drawn_at_their_sample_and_scroll(window, qtbot, simulator, unique_name,
                                                  session_root, tmp_path):
    sim = simulator(8, 256.0)
    page, sm = _connect_by_clicks(window, qtbot, unique_name)
    # the stream's own marker stream was chosen with it
    assert sm.marker_description is not None and sm.marker_description.name == unique_name + "-markers"
    view = page.signal_view
    qtbot.waitUntil(lambda: view.frames >= 3, timeout=10000)
    assert view.marker_positions() == []

    _, t_cue = sim.cue("left_hand", 0.5)  # a "769" marker on NAME-markers at this sample's time
    qtbot.waitUntil(lambda: any(n == "left_hand" for _, n in view.marker_positions()), timeout=10000)

    # the line sits on the sample the marker was sent for: freeze the frames and compare
    view._timer.stop()
    view.update_frame()
    (x1, name), = view.marker_positions()
    assert name == "left_hand"
    b, srate = view._n_seen, view.srate
    span_n = int(view.span_s * srate)
    start = max(0, b - span_n)
    _, ts = sm.inlet.buffer.read(start, b)
    k = int(np.argmin(np.abs(ts - t_cue)))
    assert abs(ts[k] - t_cue) < 1.0 / srate  # the cue's sample is on screen
    expected_x = (start + k - b) / srate  # where the curves draw that sample
    assert x1 == pytest.approx(expected_x, abs=1.5 / srate)
    assert -view.span_s <= x1 < 0
    _assert_names_inside(view)

    # it scrolls left with the data
    view._timer.start()
    qtbot.waitUntil(lambda: view.marker_positions() and view.marker_positions()[0][0] < x1 - 0.5,
                    timeout=10000)

    # the calibration's own markers (sent by the app) are drawn too
    window.context.set_session(Session.create(session_root, "S01", "markers"))
    cal = window.show_page("calibrate")
    cal.set_config(FAST)
    with qtbot.waitSignal(cal.run_state_changed, timeout=20000,
                          check_params_cb=lambda s: s == "running"):
        qtbot.mouseClick(cal.start_button, Qt.MouseButton.LeftButton)
    with qtbot.waitSignal(cal.recording_saved, timeout=60000):
        pass
    sent = {m for ev in cal.protocol.events for m in ev.markers}
    assert {"experiment_start", "fixation", "trial_end"} <= sent
    window.show_page("connect")
    qtbot.waitUntil(lambda: {"experiment_start", "fixation", "trial_end"}
                    <= {n for _, n in view.marker_positions()}, timeout=10000)
    assert {"left_hand", "right_hand"} <= {n for _, n in view.marker_positions()}
    _assert_names_inside(view)
    _shoot(window, "01b-connect-markers.png", tmp_path)

    # a new connection starts without the old markers
    with qtbot.waitSignal(sm.connection_changed, timeout=5000):
        qtbot.mouseClick(page.disconnect_button, Qt.MouseButton.LeftButton)
    assert view.marker_positions() == [] and len(view.markers) == 0


def test_every_channel_named_at_64_channels_and_paged(window, qtbot, simulator, unique_name,
                                                      tmp_path):
    simulator(64, 256.0)
    page, sm = _connect_by_clicks(window, qtbot, unique_name)
    view = page.signal_view
    qtbot.waitUntil(lambda: view.frames >= 3 and sm.inlet.buffer.n_written >= 4 * 256,
                    timeout=15000)
    assert sm.marker_description.name == unique_name + "-markers"
    labels = list(sm.description.labels)
    assert len(labels) == 64

    # at 1280x800 "fit" shows a page of rows at >= 14 px each, every row named
    assert view.rows_box.currentText() == "fit"
    per = len(view.shown)
    assert 10 <= per < 64
    assert (view.plot.height() - 40) / per >= 14
    assert view.scroll.isVisible()
    axis = view.plot.getAxis("left")
    assert _drawn_names(axis) == labels[:per]
    assert view.rows_label.text() == f"1\u2013{per} of 64"
    # only the rows on screen are drawn
    assert [i for i, c in enumerate(view.curves) if c.isVisible()] == list(range(per))
    _shoot(window, "01c-connect-64ch.png", tmp_path)

    # the scroll bar's lower trough pages down; the next channels are drawn and named
    frames = view.frames
    sb = view.scroll
    qtbot.mouseClick(sb, Qt.MouseButton.LeftButton, pos=QPoint(sb.width() // 2, sb.height() - 30))
    qtbot.waitUntil(lambda: view.shown and view.shown[0] > 0, timeout=3000)
    first = view.shown[0]
    assert view.shown == list(range(first, min(64, first + per)))
    assert _drawn_names(axis) == labels[first:first + len(view.shown)]
    qtbot.waitUntil(lambda: view.frames > frames + 2, timeout=5000)
    y = view.curves[first].getData()[1]
    assert y is not None and np.isfinite(y).all() and abs(np.median(y) - (len(view.shown) - 1)) < 0.5

    # the wheel over the traces scrolls back up
    from PyQt6.QtCore import QPointF
    from PyQt6.QtGui import QWheelEvent
    from PyQt6.QtWidgets import QApplication

    vp = view.plot.viewport()
    for _ in range(10):
        ev = QWheelEvent(QPointF(50, 50), QPointF(vp.mapToGlobal(QPoint(50, 50))), QPoint(0, 0),
                         QPoint(0, 120), Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier,
                         Qt.ScrollPhase.NoScrollPhase, False)
        QApplication.sendEvent(vp, ev)
    assert view.shown[0] == 0

    # "16" rows: 4 pages; "all": the 64 rows at once (every k-th name when they do not fit)
    qtbot.keyClicks(view.rows_box, "16")
    assert len(view.shown) == 16 and _drawn_names(axis) == labels[:16]
    assert view.rows_label.text() == "1\u201316 of 64"
    view.rows_box.setCurrentIndex(view.rows_box.findText("all"))
    assert len(view.shown) == 64 and not view.scroll.isVisible()
    assert view.prefs()["rows"] == -1
