"""A dialog that lists the markers found in recordings and lets the user map them to classes."""
from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

logger = logging.getLogger(__name__)


class MarkerMappingDialog(QDialog):
    """Markers (with their counts) in a table; the *Class* column is editable.

    Parameters
    ----------
    counts : dict of str to int
        Marker -> occurrences (:func:`neurodeck.app.events.markers_in`).
    mapping : dict of str to str, optional
        Current marker -> class (pre-fills the *Class* column).
    """

    def __init__(self, counts: Mapping[str, int], mapping: Mapping[str, str] | None = None,
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Map markers to classes")
        mapping = dict(mapping or {})
        lay = QVBoxLayout(self)
        lay.addWidget(QLabel("Markers found in the recordings. Type a class name next to each "
                             "marker that starts a trial; leave the others empty. Several markers "
                             "may share a class."))
        self.table = QTableWidget(len(counts), 3)
        self.table.setHorizontalHeaderLabels(["Marker", "Count", "Class"])
        for row, (marker, n) in enumerate(counts.items()):
            for col, text in enumerate((marker, str(n))):
                item = QTableWidgetItem(text)
                item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEditable)
                self.table.setItem(row, col, item)
            self.table.setItem(row, 2, QTableWidgetItem(mapping.get(marker, "")))
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        lay.addWidget(self.table)
        self.error_label = QLabel("")
        self.error_label.setStyleSheet("color: #c62828;")
        lay.addWidget(self.error_label)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                        | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self._accept)
        self.buttons.rejected.connect(self.reject)
        lay.addWidget(self.buttons)
        self.resize(560, 360)

    def mapping(self) -> dict[str, str]:
        """Marker -> class of the rows with a class."""
        out = {}
        for row in range(self.table.rowCount()):
            cls = (self.table.item(row, 2).text() if self.table.item(row, 2) else "").strip()
            if cls:
                out[self.table.item(row, 0).text()] = cls
        return out

    def _accept(self) -> None:
        n = len(set(self.mapping().values()))
        if n < 2:
            self.error_label.setText(f"{n} class named; name at least two classes.")
            return
        self.accept()


def offer_markers(page, paths: Sequence[str | Path], current: Mapping[str, str] | None,
                  apply: Callable[[dict[str, str]], None], button=None) -> None:
    """Read the markers of ``paths`` off the GUI thread, then open :class:`MarkerMappingDialog`.

    Parameters
    ----------
    page : app.ui.widgets.Page
        Parent of the dialog; its ``context.background`` reads the files and its
        ``report_error`` shows failures. ``page.marker_dialog`` holds the open dialog.
    paths : sequence of path
    current : dict or None
        The mapping shown now (pre-fills the dialog); None or empty: guessed from the markers
        (:func:`app.workflow.datasets.default_mapping`) where possible.
    apply : callable
        ``apply(mapping)`` once the user accepts the dialog.
    button : QPushButton or None
        Disabled while the files are read.
    """
    from neurodeck.app.errors import UserError
    from neurodeck.app.events import markers_in
    from neurodeck.app.workflow.datasets import default_mapping

    paths = list(paths)
    if button is not None:
        button.setEnabled(False)

    def show(counts) -> None:
        if button is not None:
            button.setEnabled(True)
        if not counts:
            page.report_error("The chosen recordings hold no markers.")
            return
        guess = dict(current or {})
        if not guess:
            try:
                guess = default_mapping(list(counts))
            except UserError:
                guess = {}
        dlg = page.marker_dialog = MarkerMappingDialog(counts, guess, page)
        dlg.accepted.connect(lambda: apply(dlg.mapping()))
        dlg.open()  # window-modal, does not block the event loop

    def failed(exc) -> None:
        if button is not None:
            button.setEnabled(True)
        page.report_error(f"Could not read the markers: {exc}")

    context = getattr(page, "context", None)
    if context is None:  # a page without an app context (scripts): read here
        try:
            show(markers_in(paths))
        except Exception as exc:  # noqa: BLE001 - shown, not raised into Qt
            failed(exc)
        return
    context.background.run(lambda: markers_in(paths), show, failed, name="markers")
