"""Features page on the real EEGMMIDB S001R04 recording (offscreen Qt)."""
from __future__ import annotations

import threading

import numpy as np
import pytest

pytest.importorskip("pytestqt")

from PyQt6.QtCore import QEvent, QPointF, Qt  # noqa: E402
from PyQt6.QtGui import QMouseEvent  # noqa: E402
from PyQt6.QtWidgets import QApplication  # noqa: E402

from neurodeck.app.errors import UserError  # noqa: E402
from neurodeck.app.ui.features_page import FeaturesPage, cells_to_specs  # noqa: E402
from neurodeck.app.ui.qt_models import AppContext  # noqa: E402
from neurodeck.app.workflow import default_mapping  # noqa: E402
from neurodeck.decoders.selection import parse_selection  # noqa: E402


def test_cells_to_specs_roundtrip():
    names = ["C3..", "C4..", "Cz.."]
    freqs = np.arange(4.0, 41.0)
    cells = [(1, 9), (1, 10), (1, 11), (1, 12), (0, 6), (1, 20)]
    specs = cells_to_specs(cells, names, freqs)
    assert specs == ["C3:10", "C4:13-16", "C4:24"]
    assert sorted(parse_selection(specs, names, freqs)) == sorted(cells)
    assert default_mapping(["T0", "T1", "T2"]) == {"T1": "left_hand", "T2": "right_hand"}
    assert default_mapping(["left_hand", "right_hand", "fixation"]) == {
        "left_hand": "left_hand", "right_hand": "right_hand"}
    with pytest.raises(UserError, match="no two motor-imagery"):
        default_mapping(["T0", "left_hand"])


@pytest.fixture
def page(qtbot):
    before = set(threading.enumerate())
    ctx = AppContext()
    p = FeaturesPage(ctx)
    qtbot.addWidget(p)
    p.resize(1200, 800)
    p.show()
    yield p
    p.shutdown()
    assert not p.jobs.busy  # the QThread was joined
    ctx.shutdown()
    # QThreads that ran Python show up as never-ending _DummyThread entries: not ours to check
    left = [t for t in threading.enumerate() if t not in before and t.is_alive()
            and not isinstance(t, threading._DummyThread)]
    assert not left, left


def _click_cell(qtbot, page, c: int, f: int) -> None:
    view = page.map_view
    qtbot.wait(QApplication.doubleClickInterval() + 50)  # two clicks, not one double click
    scene_pt = view.plot.vb.mapViewToScene(QPointF(f + 0.5, c + 0.5))
    widget_pt = view.glw.mapFromScene(scene_pt)
    qtbot.mouseClick(view.glw.viewport(), Qt.MouseButton.LeftButton, pos=widget_pt)


def _drag_cells(qtbot, page, c0: int, f0: int, c1: int, f1: int) -> None:
    """A real left-button drag (press, moves with the button held, release) across the map."""
    view = page.map_view
    vp = view.glw.viewport()

    def pt(c, f):
        return QPointF(view.glw.mapFromScene(view.plot.vb.mapViewToScene(QPointF(f + 0.5, c + 0.5))))

    def send(kind, pos, buttons):
        ev = QMouseEvent(kind, pos, vp.mapToGlobal(pos), Qt.MouseButton.LeftButton, buttons,
                         Qt.KeyboardModifier.NoModifier)
        QApplication.sendEvent(vp, ev)

    qtbot.wait(QApplication.doubleClickInterval() + 50)
    p0, p1 = pt(c0, f0), pt(c1, f1)
    send(QEvent.Type.MouseButtonPress, p0, Qt.MouseButton.LeftButton)
    for k in range(1, 11):
        send(QEvent.Type.MouseMove, p0 + (p1 - p0) * (k / 10), Qt.MouseButton.LeftButton)
    send(QEvent.Type.MouseButtonRelease, p1, Qt.MouseButton.NoButton)


def test_features_page_r2_map_selection_on_real_eeg(page, qtbot, asset_edfs):
    errors = []
    page.context.error_reported.connect(errors.append)
    s001r04 = next(p for p in asset_edfs if p.name == "S001R04.edf")
    page.set_paths([s001r04])
    with qtbot.waitSignal(page.maps_ready, timeout=60000):
        assert page.compute()
        assert page.jobs.busy and not page.compute_button.isEnabled()
    qtbot.waitUntil(lambda: not page.jobs.busy, timeout=5000)
    assert not errors
    maps = page.maps
    n_ch, n_f = 64, maps.freqs.size
    assert maps.freqs[0] == 4.0 and maps.freqs[-1] == 40.0 and n_f == 37
    assert page.current_r2.shape == (n_ch, n_f) == maps.psd.shape[1:]
    assert np.abs(page.current_r2).max() <= 1.0
    assert set(maps.labels) == {"left_hand", "right_hand"}
    assert np.sum(maps.y == "left_hand") + np.sum(maps.y == "right_hand") == 15
    assert page.map_view.image.image.shape == (n_f, n_ch)  # x = frequency, y = channel
    assert page.map_view.colorbar.levels()[1] == pytest.approx(np.abs(page.current_r2).max())
    assert page.topomap.note == ""  # the 10-10 montage matched EEGMMIDB's channel names

    # a click on the C4 row at 13 Hz selects exactly that cell
    c4 = maps.ch_names.index("C4")
    f13 = int(np.flatnonzero(maps.freqs == 13.0)[0])
    _click_cell(qtbot, page, c4, f13)
    assert page.map_view.selected == {(c4, f13)}
    assert page.selection() == ["C4:13"]
    assert page.context.feature_selection["psd"] == ["C4:13"]
    # drag along the C4 row from 14 to 17 Hz: merged with 13 Hz into one spec
    _drag_cells(qtbot, page, c4, f13 + 1, c4, f13 + 4)
    assert page.selection() == ["C4:13-17"]
    _click_cell(qtbot, page, c4, f13)  # toggles off
    assert page.selection() == ["C4:14-17"]

    # top N = the N largest |R²|
    page.top_n.setValue(5)
    page.auto_select()
    sel = page.map_view.selected
    assert len(sel) == 5
    thresh = np.sort(np.abs(page.current_r2).ravel())[-5]
    assert all(abs(page.current_r2[c, f]) >= thresh for c, f in sel)
    assert parse_selection(page.selection(), maps.ch_names, maps.freqs) == sorted(sel)

    # connectivity map: same shape, its own selection
    page.kind_box.setCurrentIndex(1)
    assert page.kind == "ns"
    assert page.current_r2.shape == (n_ch, maps.ns_freqs.size)
    assert not np.allclose(page.current_r2, maps.r2("psd")[:, : maps.ns_freqs.size])
    assert page.selection() == []
    page.kind_box.setCurrentIndex(0)
    assert len(page.selection()) >= 1

    # ERD/ERS view draws one curve per class (plus the zero line)
    page.spec_mode.setCurrentIndex(1)
    curves = page.spectra.getPlotItem().listDataItems()
    assert len(curves) == 2
    erd = maps.erds("left_hand")
    assert np.allclose(curves[0].getData()[1], erd[page.channel_box.currentIndex()])


def test_features_page_bad_file_shows_error(page, qtbot, tmp_path):
    bad = tmp_path / "broken.edf"
    bad.write_bytes(b"0" * 300)
    errors = []
    page.context.error_reported.connect(errors.append)
    page.set_paths([bad])
    page.compute()
    qtbot.waitUntil(lambda: len(errors) > 0, timeout=20000)
    assert "broken.edf" in errors[0] and errors[0].startswith("Features:")
    qtbot.waitUntil(lambda: not page.jobs.busy, timeout=5000)
    assert page.compute_button.isEnabled()


def test_features_page_at_1280x800_empty_map_then_readable_spectra(qtbot, asset_edfs):
    """Issue 11: before Compute the R² map showed meaningless axes ("frequency (Hz) (x0.001)",
    -400..400); at 1280x800 the spectra plot was squeezed to ~70 px with its y label cut."""
    from neurodeck.app.ui.main_window import MainWindow

    win = MainWindow(AppContext())
    win.confirm = lambda text: True
    qtbot.addWidget(win)
    win.resize(1280, 800)
    win.show()
    page = win.show_page("features")
    qtbot.waitUntil(page.isVisible, timeout=5000)
    view = page.map_view
    assert view.placeholder.isVisible() and "Compute" in view.placeholder.toPlainText()
    assert not view.plot.getAxis("bottom").isVisible()
    assert not view.plot.getAxis("left").isVisible()
    assert not view.colorbar.isVisible() and not view.freq_line.isVisible()
    s001r04 = next(p for p in asset_edfs if p.name == "S001R04.edf")
    page.set_paths([s001r04])
    with qtbot.waitSignal(page.maps_ready, timeout=60000):
        qtbot.mouseClick(page.compute_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not page.jobs.busy, timeout=5000)
    qtbot.wait(50)
    assert not view.placeholder.isVisible()
    assert view.plot.getAxis("bottom").isVisible() and view.colorbar.isVisible()
    assert win.height() <= 800 and win.width() <= 1280
    assert page.spectra.height() >= 150, page.spectra.height()
    win.close()
