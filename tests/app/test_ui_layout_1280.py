"""Issue 11 leftovers at 1280x800, in the real main window: the Online page's score table keeps
its headers and class names readable (it was 203 px wide, "decoded" cut, after the Cursor task tab
had been opened once), and the Replay page's cue labels stay inside the plot with their lines (the
label of a cue just past the right edge of the shown span was drawn, cut, inside the plot)."""
from __future__ import annotations

import pyqtgraph as pg
import pytest

pytest.importorskip("pytestqt")

from PyQt6.QtCore import QPointF, Qt  # noqa: E402
from PyQt6.QtWidgets import QStyle  # noqa: E402

from neurodeck.app.feedback_model import RunSummary, TrialResult  # noqa: E402
from neurodeck.app.ui.widget_dump import cut_headers  # noqa: E402
from tests.app.test_ui_main_window import _go  # noqa: E402

LEFT = Qt.MouseButton.LeftButton


def _click_tab(qtbot, tabs, text: str) -> None:
    bar = tabs.tabBar()
    i = next(i for i in range(bar.count()) if bar.tabText(i) == text)
    qtbot.mouseClick(bar, LEFT, pos=bar.tabRect(i).center())
    assert tabs.currentIndex() == i


def _header_fits(table) -> list[str]:
    """Header texts that do not fit their section (text + the style's margins)."""
    h = table.horizontalHeader()
    margin = 2 * h.style().pixelMetric(QStyle.PixelMetric.PM_HeaderMargin, None, h)
    cut = []
    for i in range(h.count()):
        text = table.horizontalHeaderItem(i).text()
        if h.sectionSize(i) < h.fontMetrics().horizontalAdvance(text) + margin:
            cut.append(f"{text!r}: {h.sectionSize(i)} px")
    return cut


def test_online_score_table_stays_readable_at_1280x800(make_window, qtbot):
    win = make_window(1280, 800)
    _go(qtbot, win, "online")
    page = win.pages["online"]
    qtbot.wait(50)
    # the person looks at the cursor task, then goes back to the bar; then makes the window
    # larger and smaller again
    _click_tab(qtbot, page.tabs, "Cursor task")
    qtbot.wait(50)
    _click_tab(qtbot, page.tabs, "Graz bar")
    win.resize(1920, 1080)
    qtbot.waitUntil(lambda: win.width() == 1920, timeout=2000)
    win.resize(1280, 800)
    qtbot.waitUntil(lambda: win.width() == 1280, timeout=2000)
    assert win.minimumSizeHint().width() <= 1280
    for k, (cue, got) in enumerate([("left_hand", "right_hand"), ("right_hand", "right_hand")] * 6):
        page._add_trial_row(TrialResult(cue, float(k), got, cue == got, 2.04 if cue == got else None,
                                        30))
    page.summary_label.setText("10/12 correct (83 %, chance 50 %) \u00b7 median time to decision "
                               "2.04 s")
    qtbot.wait(50)
    table = page.trials_table
    assert table.width() >= 340, table.width()
    assert not _header_fits(table), _header_fits(table)
    # every cell's text fits its column: nothing elided, no sideways scrolling
    fm = table.fontMetrics()
    for row in range(table.rowCount()):
        for col in range(table.columnCount()):
            text = table.item(row, col).text()
            assert fm.horizontalAdvance(text) + 8 <= table.columnWidth(col), (text, col)
    assert table.horizontalScrollBar().maximum() == 0
    label = page.summary_label  # its reserved lines hold the summary at this width, even the
    # longest a run gives (trials left without a decision named at the end)
    assert label.heightForWidth(label.width()) <= label.height(), label.width()
    longest = RunSummary(n_trials=100, n_correct=100, accuracy=1.0, chance=1 / 3,
                         median_time_to_decision_s=12.34, n_undecided=0,
                         n_without_decisions=12).line()
    label.setText(longest)
    qtbot.wait(50)
    assert label.heightForWidth(label.width()) <= label.height(), (label.width(), longest)
    # what scripts/real_window_walk.py reads from the widget dump: no header cut in the window
    assert cut_headers(win) == []


def test_cut_headers_names_a_column_narrower_than_its_header(qtbot):
    from PyQt6.QtWidgets import QTableWidget

    table = QTableWidget(1, 2)
    table.setObjectName("scores")
    table.setHorizontalHeaderLabels(["time to decision", "ok"])
    qtbot.addWidget(table)
    table.show()
    table.setColumnWidth(0, 30)
    table.setColumnWidth(1, 80)
    (cut,) = cut_headers(table)
    assert cut.startswith("scores: 'time to decision' 30 px < ")


def test_replay_cue_labels_stay_inside_the_plot(make_window, qtbot, asset_edfs, bundle_dir):
    win = make_window(1280, 800)
    _go(qtbot, win, "replay")
    page = win.pages["replay"]
    run12 = next(p for p in asset_edfs if p.name == "S001R12.edf")
    with qtbot.waitSignal(page.evaluated, timeout=60000):
        assert page.evaluate(bundle_dir, run12)
    onsets = page.eval_result["onsets"] / page.eval_result["sfreq"]
    vb = page.plot.getViewBox()
    cue_lines = [i for i in page.plot.getPlotItem().items if isinstance(i, pg.InfiniteLine)]

    def outside() -> list[str]:
        qtbot.wait(50)
        page.plot.grab()  # paint: pyqtgraph places the text items when it draws them
        box = vb.sceneBoundingRect()
        lo, hi = vb.viewRange()[0]
        out = []
        for line in cue_lines:
            if not lo <= line.value() <= hi:
                if line.label.isVisible():  # drawn beside a line that is not: a stray label
                    out.append(f"{line.label.toPlainText()!r} at {line.value():.1f} s drawn, "
                               f"its line is outside {lo:.1f}..{hi:.1f} s")
                continue
            assert line.label.isVisible()
            r = line.label.sceneBoundingRect()
            if r.left() < box.left() - 0.5 or r.right() > box.right() + 0.5:
                out.append(f"{line.label.toPlainText()!r} at {line.value():.1f} s: "
                           f"{r.left():.0f}..{r.right():.0f} px, plot {box.left():.0f}.."
                           f"{box.right():.0f}")
            # beside its own line: starting at it, or (at the right edge) ending at it
            x = vb.mapViewToScene(QPointF(line.value(), 0.5)).x()
            fits_right = x + r.width() + 4 <= box.right()
            if abs((r.left() if fits_right else r.right()) - x) > 2:
                out.append(f"{line.label.toPlainText()!r} at {line.value():.1f} s ({x:.0f} px) "
                           f"drawn at {r.left():.0f}..{r.right():.0f} px")
        return out

    assert len(cue_lines) == len(onsets) == 15
    assert outside() == []  # as evaluated: 0-45 s
    # scroll so that a cue sits 0.3 s from the right edge, then 0.3 s from the left edge
    for lo, hi in ((onsets[5] - 30.0, onsets[5] + 0.3), (onsets[5] - 0.3, onsets[5] + 30.0)):
        vb.setXRange(lo, hi, padding=0)
        assert outside() == [], (lo, hi)
