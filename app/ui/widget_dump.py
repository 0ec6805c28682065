"""Opt-in dump of the visible widgets' screen rectangles, for driving the real window from outside.

Set ``NEURODECK_DUMP_WIDGETS=FILE`` before ``neurodeck gui``: four times a second (when something
changed) the main window writes FILE as JSON with every visible widget that a person can click or
type into, by name, with its global rectangle in screen pixels, plus the window's state (page
shown, error banner, its history, status bar, the participant screen's phase, table headers cut
short by their column). ``scripts/real_window_walk.py`` reads it to move the
real X pointer with xdotool onto a button instead of hard-coding pixels. Without the variable
nothing is installed.

Names
    ``<page>.<attribute>`` for widgets kept as attributes of a page (``calibrate.trials_box``),
    ``<page>.<attribute>[<key>]`` for dicts of widgets, ``<DialogClass>.<attribute>`` for the
    attributes of an open dialog or window (``SessionDialog.subject_edit``), ``sidebar:<page>`` for
    the sidebar rows, ``tab:<text>`` for the tabs of visible tab widgets and
    ``banner.close_button`` for the error banner's dismiss button.
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from PyQt6.QtCore import QObject, QPoint, Qt, QTimer
from PyQt6.QtWidgets import (
    QAbstractButton,
    QAbstractSpinBox,
    QApplication,
    QComboBox,
    QHeaderView,
    QLineEdit,
    QStyle,
    QTabWidget,
    QWidget,
)

logger = logging.getLogger(__name__)

ENV = "NEURODECK_DUMP_WIDGETS"


def _rect(w: QWidget) -> list[int]:
    p = w.mapToGlobal(QPoint(0, 0))
    return [p.x(), p.y(), w.width(), w.height()]


def _entry(w: QWidget) -> dict:
    e: dict = {"class": type(w).__name__, "rect": _rect(w), "enabled": w.isEnabled()}
    if isinstance(w, QAbstractButton):
        e["text"] = w.text()
        if w.isCheckable():
            e["checked"] = w.isChecked()
    elif isinstance(w, QLineEdit):
        e["text"] = w.text()
    elif isinstance(w, QAbstractSpinBox):
        e["text"] = w.text()
    elif isinstance(w, QComboBox):
        e["text"] = w.currentText()
    elif hasattr(w, "text") and callable(w.text):
        try:
            e["text"] = str(w.text())
        except TypeError:
            pass
    return e


def _attributes(owner: object, prefix: str, out: dict) -> None:
    for attr, value in list(vars(owner).items()):
        if isinstance(value, QWidget):
            if value.isVisible():
                out[f"{prefix}.{attr}"] = _entry(value)
        elif isinstance(value, dict):
            for key, item in value.items():
                if isinstance(item, QWidget) and item.isVisible():
                    out[f"{prefix}.{attr}[{key}]"] = _entry(item)


def cut_headers(top: QWidget) -> list[str]:
    """Column headers of the visible tables under ``top`` narrower than their text (plus the
    style's margins): ``"<table>: 'decoded' 31 px < 72 px"``."""
    out = []
    for header in top.findChildren(QHeaderView):
        if not header.isVisible() or header.orientation() != Qt.Orientation.Horizontal:
            continue
        model = header.model()
        if model is None:
            continue
        margin = 2 * header.style().pixelMetric(QStyle.PixelMetric.PM_HeaderMargin, None, header)
        table = header.parent()
        name = table.objectName() or type(table).__name__
        for i in range(header.count()):
            if header.isSectionHidden(i):
                continue
            text = str(model.headerData(i, Qt.Orientation.Horizontal) or "")
            need = header.fontMetrics().horizontalAdvance(text) + margin if text else 0
            if header.sectionSize(i) < need:
                out.append(f"{name}: {text!r} {header.sectionSize(i)} px < {need} px")
    return out


def snapshot(window) -> dict:
    """What :data:`ENV` writes: ``{"widgets": {name: entry}, "state": {...}}`` (see module doc)."""
    widgets: dict[str, dict] = {}
    sidebar = window.sidebar
    for row in range(sidebar.count()):
        item = sidebar.item(row)
        r = sidebar.visualItemRect(item)
        p = sidebar.viewport().mapToGlobal(r.topLeft())
        widgets[f"sidebar:{item.data(0x0100)}"] = {  # Qt.ItemDataRole.UserRole: the page key
            "class": "sidebar", "rect": [p.x(), p.y(), r.width(), r.height()],
            "enabled": True, "text": item.text()}
    if window.banner.close_button.isVisible():
        widgets["banner.close_button"] = _entry(window.banner.close_button)
    for key, page in window.pages.items():
        if page.isVisible():
            _attributes(page, key, widgets)
    tops = []
    cut: list[str] = []
    for top in QApplication.topLevelWidgets():
        if not top.isVisible():
            continue
        tops.append({"class": type(top).__name__, "title": top.windowTitle(), "rect": _rect(top)})
        cut += cut_headers(top)
        if top is not window:
            _attributes(top, type(top).__name__, widgets)
        for tabs in top.findChildren(QTabWidget):
            if tabs.isVisible():
                bar = tabs.tabBar()
                for i in range(bar.count()):
                    r = bar.tabRect(i)
                    p = bar.mapToGlobal(r.topLeft())
                    widgets[f"tab:{bar.tabText(i)}"] = {
                        "class": "tab", "rect": [p.x(), p.y(), r.width(), r.height()],
                        "enabled": bar.isTabEnabled(i), "text": bar.tabText(i)}
    screen = getattr(window.context, "participant_screen", None)
    participant = None
    if screen is not None and screen.isVisible():
        cues = screen.cues
        participant = {"showing": type(screen._stack.currentWidget()).__name__,
                       "phase": str(getattr(cues, "phase", "")),
                       "class": getattr(cues, "class_name", None),
                       "bar_cue": screen.bar.cue,
                       "bar_value": None if screen.bar.value != screen.bar.value  # NaN
                       else float(screen.bar.value)}
    keys = list(window.pages)
    state = {
        "page": keys[window.stack.currentIndex()] if 0 <= window.stack.currentIndex() < len(keys)
        else None,
        "banner": window.banner.message,
        "errors": list(window.banner.history),
        "toast": window.toast.text() if window.toast.isVisible() else "",
        "stream_state": window.state_badge.state,
        "counters": window.counters_label.text().strip(),
        "session": window.session_label.text(),
        "busy": window.busy_reasons(),
        "windows": tops,
        "participant": participant,
        "cut_headers": cut,
    }
    return {"widgets": widgets, "state": state}


class WidgetDump(QObject):
    """Writes :func:`snapshot` of ``window`` to ``path`` (atomically) when it changes."""

    def __init__(self, window, path: str | Path, interval_ms: int = 250):
        super().__init__(window)
        self.window = window
        self.path = Path(path)
        self._last = ""
        self.timer = QTimer(self)
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self.write)
        self.timer.start()

    def write(self) -> None:
        try:
            text = json.dumps(snapshot(self.window), indent=1, ensure_ascii=False)
        except RuntimeError:  # a widget deleted under us: next tick
            return
        if text == self._last:
            return
        tmp = self.path.with_name(self.path.name + ".tmp")
        try:
            tmp.write_text(text, encoding="utf-8")
            os.replace(tmp, self.path)
        except OSError as exc:
            logger.warning("cannot write the widget dump %s: %s", self.path, exc)
            self.timer.stop()
            return
        self._last = text


def install(window) -> WidgetDump | None:
    """Start the dump if :data:`ENV` names a file; nothing otherwise."""
    path = os.environ.get(ENV)
    if not path:
        return None
    return WidgetDump(window, path)
