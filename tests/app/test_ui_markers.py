"""Features page > Markers...: the markers found in another lab's recordings, mapped to classes
by typing into the dialog; the mapping field then holds them (commas in marker names kept)."""
from __future__ import annotations

import threading

import pytest

pytest.importorskip("pytestqt")

from PyQt6.QtCore import Qt  # noqa: E402
from PyQt6.QtWidgets import QDialogButtonBox, QLineEdit  # noqa: E402

from neurodeck.app.ui.features_page import FeaturesPage  # noqa: E402
from neurodeck.app.ui.qt_models import AppContext  # noqa: E402

RUNS = [f"xdf/bci-essentials/sub-P001_ses-S001_task-T1_run-00{r}_eeg.xdf" for r in (1, 2)]


@pytest.fixture
def page(qtbot):
    before = set(threading.enumerate())
    ctx = AppContext()
    p = FeaturesPage(ctx)
    qtbot.addWidget(p)
    p.show()
    yield p
    p.shutdown()
    ctx.background.wait_all(10)
    ctx.shutdown()
    left = [t for t in threading.enumerate() if t not in before and t.is_alive()
            and not isinstance(t, threading._DummyThread)]
    assert not left, left


def _edit_class(qtbot, dlg, marker, text):
    """Click the marker's Class cell, F2, type the class, Return (as a user edits a table)."""
    row = next(r for r in range(dlg.table.rowCount()) if dlg.table.item(r, 0).text() == marker)
    rect = dlg.table.visualItemRect(dlg.table.item(row, 2))
    qtbot.mouseClick(dlg.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert dlg.table.currentRow() == row and dlg.table.currentColumn() == 2
    qtbot.keyClick(dlg.table, Qt.Key.Key_F2)
    editor = next(e for e in dlg.table.findChildren(QLineEdit) if e.isVisible())
    editor.selectAll()
    qtbot.keyClicks(editor, text)
    qtbot.keyClick(editor, Qt.Key.Key_Return)  # Qt commits on the next event-loop turn
    qtbot.waitUntil(lambda: dlg.table.item(row, 2).text() == text, timeout=5000)


def test_markers_found_are_offered_and_mapped(page, qtbot, shared_data):
    page.set_paths([shared_data / r for r in RUNS])
    qtbot.mouseClick(page.markers_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: page.marker_dialog is not None and page.marker_dialog.isVisible(),
                    timeout=30000)
    dlg = page.marker_dialog
    markers = {dlg.table.item(r, 0).text(): int(dlg.table.item(r, 1).text())
               for r in range(dlg.table.rowCount())}
    assert markers["switch,3,0,2"] == 27 + 21 and markers["switch,3,2,2"] == 15 + 15
    assert "Trial Started" in markers and "marker received : switch,3,0,2" in markers
    ok = dlg.buttons.button(QDialogButtonBox.StandardButton.Ok)
    _edit_class(qtbot, dlg, "switch,3,0,2", "class_0")
    qtbot.mouseClick(ok, Qt.MouseButton.LeftButton)  # one class only: refused, dialog stays
    assert dlg.isVisible() and "at least two classes" in dlg.error_label.text()
    _edit_class(qtbot, dlg, "switch,3,1,2", "class_1")
    _edit_class(qtbot, dlg, "switch,3,2,2", "class_2")
    qtbot.mouseClick(ok, Qt.MouseButton.LeftButton)
    assert not dlg.isVisible(), (dlg.mapping(), dlg.error_label.text())
    assert page.mapping() == {"switch,3,0,2": "class_0", "switch,3,1,2": "class_1",
                              "switch,3,2,2": "class_2"}
    assert page.mapping_edit.text().count("; ") == 2  # ';' separates: the markers hold commas
