"""Train page's continuous models: pick a simulated recording and its target, compare, save."""
from __future__ import annotations

import threading

import pytest

pytest.importorskip("pytestqt")

from PyQt6.QtCore import Qt, QTimer  # noqa: E402
from test_continuous_cli import write_recording  # noqa: E402

from neurodeck.app.session import Session  # noqa: E402
from neurodeck.app.ui.continuous_panel import ContinuousPanel  # noqa: E402
from neurodeck.app.ui.qt_models import AppContext  # noqa: E402
from neurodeck.app.ui.train_page import TrainPage  # noqa: E402
from neurodeck.decoders.continuous import ContinuousDecoder  # noqa: E402


@pytest.fixture
def ctx():
    before = set(threading.enumerate())
    c = AppContext()
    yield c
    c.shutdown()
    left = [t for t in threading.enumerate() if t not in before and t.is_alive()
            and not isinstance(t, threading._DummyThread)]
    assert not left, left


def type_window(qtbot, panel, text: str) -> None:
    """Type into the window box as a user: select all, then the new text."""
    edit = panel.window.lineEdit()
    edit.selectAll()
    qtbot.keyClicks(edit, text)
    assert panel.window.currentText() == text


def test_compare_and_save_a_continuous_model_by_clicking(qtbot, ctx, tmp_path, session_root):
    errors: list[str] = []
    ctx.error_reported.connect(errors.append)
    session = Session.create(session_root, "S001", "ses1")
    ctx.set_session(session)
    rec = write_recording(tmp_path, "simC", 4, seconds=60.0)
    page = TrainPage(ctx)
    qtbot.addWidget(page)
    page.resize(1280, 800)
    page.show()
    # the Train page opens the panel as a window of its own
    button = next(b for b in page.findChildren(type(page.save_button))
                  if b.text().startswith("Continuous models"))
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    panel = page.findChild(ContinuousPanel)
    assert panel is not None and panel.isVisible()
    panel.add_recording(rec)  # what the Open… dialog does with the chosen file
    assert [panel.target_combo.itemText(i) for i in range(panel.target_combo.count())] == [
        "simC-truth"]
    assert panel.selected_pipelines() == ["dkf", "kf"]
    qtbot.mouseClick(panel.checks["dkf-robust"], Qt.MouseButton.LeftButton)
    assert panel.window.currentText() == "auto"  # as neurodeck train/evaluate
    type_window(qtbot, panel, "0.5")
    assert not panel.save_button.isEnabled()  # nothing compared yet

    ticks = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(1))
    timer.start(20)
    with qtbot.waitSignal(panel.compared, timeout=240000):
        qtbot.mouseClick(panel.run_button, Qt.MouseButton.LeftButton)
        assert not panel.run_button.isEnabled() and panel.cancel_button.isEnabled()
    timer.stop()
    assert len(ticks) >= 5  # the GUI thread kept running while the models were fitted
    assert not errors, errors
    shown = {panel.table.item(i, 0).text(): (float(panel.table.item(i, 1).text()),
                                             float(panel.table.item(i, 2).text()))
             for i in range(panel.table.rowCount())}
    assert set(shown) == {"dkf", "dkf-robust", "kf"}
    for corr, nrmse in shown.values():
        assert 0.3 < corr < 1 and 0 < nrmse < 1.2  # the simulator's velocity is decodable
    assert {r["pipeline"]: round(r["corr"], 3) for r in panel.rows} == {
        k: v[0] for k, v in shown.items()}
    best = min(shown, key=lambda k: shown[k][1])
    assert panel.current_pipeline() == best and panel.save_button.isEnabled()

    row = [panel.table.item(i, 0).text() for i in range(3)].index("dkf")
    qtbot.mouseClick(panel.table.viewport(), Qt.MouseButton.LeftButton,
                     pos=panel.table.visualItemRect(panel.table.item(row, 1)).center())
    assert panel.current_pipeline() == "dkf"
    with qtbot.waitSignal(panel.model_saved, timeout=240000) as saved:
        qtbot.mouseClick(panel.save_button, Qt.MouseButton.LeftButton)
    assert not errors, errors
    path = saved.args[0]
    assert path.startswith(str(session.models_dir))
    dec = ContinuousDecoder(path)
    assert dec.meta["pipeline"] == "dkf" and dec.labels == ["vx", "vy", "var_vx", "var_vy"]
    assert dec.meta["features"]["window_s"] == 0.5 and "saved" in panel.saved_label.text()

    # another target or window makes the table stale: no saving a model it does not describe
    type_window(qtbot, panel, "1")
    assert not panel.save_bundle(tmp_path / "x")
    page.shutdown()
    assert not panel.jobs.busy


def test_window_auto_chosen_on_the_training_part_and_bad_window_refused(qtbot, ctx, tmp_path,
                                                                       session_root):
    """The window box offers 'auto' (as the CLI's --window auto, its default): the comparison
    shows the window and feature history chosen on the training part; a window that is not
    seconds is refused with a message naming it, before any job starts."""
    errors: list[str] = []
    ctx.error_reported.connect(errors.append)
    ctx.set_session(Session.create(session_root, "S002", "ses1"))
    rec = write_recording(tmp_path, "simW", 5, seconds=60.0)
    panel = ContinuousPanel(ctx)
    qtbot.addWidget(panel)
    panel.show()
    panel.add_recording(rec)
    choices = [panel.window.itemText(i) for i in range(panel.window.count())]
    assert choices[0] == "auto" and "0.5" in choices

    type_window(qtbot, panel, "0.5,x")
    qtbot.mouseClick(panel.run_button, Qt.MouseButton.LeftButton)
    assert not panel.jobs.busy and errors and "0.5,x" in errors[-1]
    assert "Band-power window" in errors[-1] and panel.table.rowCount() == 0
    errors.clear()

    panel.window.setCurrentIndex(choices.index("auto"))  # picked from the list
    with qtbot.waitSignal(panel.compared, timeout=240000):
        qtbot.mouseClick(panel.run_button, Qt.MouseButton.LeftButton)
    assert not errors, errors
    assert {r["pipeline"] for r in panel.rows} == {"dkf", "kf"}
    col = [panel.table.horizontalHeaderItem(j).text()
           for j in range(panel.table.columnCount())].index("window, lags (hops)")
    for i, r in enumerate(panel.rows):
        assert r["window_s"] in (0.25, 0.5, 1.0)  # one of the auto candidates, chosen
        shown = panel.table.item(i, col).text()
        assert shown == f"{r['window_s']:g} s, {','.join(map(str, r['lags']))}"
    with qtbot.waitSignal(panel.model_saved, timeout=240000) as saved:
        qtbot.mouseClick(panel.save_button, Qt.MouseButton.LeftButton)
    assert not errors, errors
    meta = ContinuousDecoder(saved.args[0]).meta
    assert meta["features"]["window_s"] in (0.25, 0.5, 1.0)
    assert set(meta["scores"]["window_cv"]) == {"0.25", "0.5", "1"}  # chosen among all three
