"""Continuous models on the Train page: compare Kalman / DKF pipelines on a recording, save one.

A recording made with ``neurodeck record -s EEG -s TARGET`` (e.g. the simulator's ``NAME-truth``)
holds the EEG and a continuous target. The panel lists the recording's target streams, compares
the ticked continuous pipelines with a chronological split (first part trains, the rest tests:
:func:`neurodeck.app.workflow.continuous.compare_recording`) and shows velocity correlation,
normalised RMSE and angle error per pipeline; "Save bundle" fits the selected pipeline on the
whole recording (:func:`~neurodeck.app.workflow.continuous.train_recording`) into the session's
models folder (or a folder asked for). All work runs in a child process behind a
:class:`~neurodeck.app.ui.workers.JobRunner`: the window never freezes.
"""
from __future__ import annotations

import datetime as _dt
import logging
from pathlib import Path
from typing import Any

from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from neurodeck.app.errors import UserError
from neurodeck.app.ui.workers import JobRunner, TaskHandle
from neurodeck.app.workflow.continuous import (
    compare_recording,
    parse_windows,
    target_streams,
    train_recording,
)

logger = logging.getLogger(__name__)

__all__ = ["ContinuousPanel"]

#: pipelines ticked by default (the others are slower or variants)
DEFAULT_PIPELINES = ("dkf", "kf")
COLUMNS = ["pipeline", "corr", "nRMSE", "angle error (°)", "train / test hops", "window, lags (hops)"]
#: choices of the band-power window box (editable: "0.25,0.5" or any seconds work too)
WINDOW_CHOICES = ("auto", "0.25", "0.5", "1", "2")


class ContinuousPanel(QWidget):
    """Compare and save continuous decoders (Kalman, DKF) trained on a recording with a target.

    Signals
    -------
    compared()
        A comparison finished and its table is shown.
    model_saved(str)
        Bundle directory of a saved continuous model.
    """

    compared = pyqtSignal()
    model_saved = pyqtSignal(str)

    def __init__(self, context: Any = None, parent: QWidget | None = None) -> None:
        from neurodeck.decoders.continuous import PIPELINES

        super().__init__(parent)
        self.context = context
        self.setWindowTitle("Continuous models (Kalman / DKF)")
        self.jobs = JobRunner(self)
        self.rows: list[dict[str, Any]] = []
        self._rows_key: tuple | None = None
        self.last_model: Path | None = None
        lay = QVBoxLayout(self)
        intro = QLabel("Decode a continuous state (e.g. a cursor velocity) every hop: needs a "
                       "recording made with a target stream, e.g. `neurodeck record -s SIM -s "
                       "SIM-truth` of the simulator in continuous mode. The first part trains, "
                       "the rest tests.")
        intro.setWordWrap(True)
        lay.addWidget(intro)

        data = QGroupBox("Recording and target")
        g = QGridLayout(data)
        self.recording_combo = QComboBox()
        self.recording_combo.setMinimumContentsLength(30)
        open_b = QPushButton("Open…")
        open_b.clicked.connect(self._open_dialog)
        g.addWidget(QLabel("Recording"), 0, 0)
        g.addWidget(self.recording_combo, 0, 1, 1, 3)
        g.addWidget(open_b, 0, 4)
        self.target_combo = QComboBox()
        self.target_combo.setToolTip("a numeric stream recorded with the EEG, e.g. NAME-truth")
        g.addWidget(QLabel("Target stream"), 1, 0)
        g.addWidget(self.target_combo, 1, 1, 1, 4)
        self.window = QComboBox()
        self.window.setEditable(True)
        self.window.addItems(WINDOW_CHOICES)
        self.window.setToolTip(
            "seconds; 'auto': 0.25, 0.5 and 1 s, and the history of feature rows, chosen by "
            "blocked cross-validation on the training part (as neurodeck train --window auto); "
            "several: 0.25,0.5")
        self.bands = QLineEdit("8-13,18-26")
        self.split = QDoubleSpinBox()
        self.split.setRange(0.3, 0.9)
        self.split.setSingleStep(0.05)
        self.split.setValue(0.7)
        g.addWidget(QLabel("Band-power window (s)"), 2, 0)
        g.addWidget(self.window, 2, 1)
        g.addWidget(QLabel("Bands (Hz)"), 2, 2)
        g.addWidget(self.bands, 2, 3, 1, 2)
        g.addWidget(QLabel("Training part"), 3, 0)
        g.addWidget(self.split, 3, 1)
        g.addWidget(QLabel("(chronological: the rest tests)"), 3, 2, 1, 3)
        lay.addWidget(data)

        pbox = QGroupBox("Pipelines")
        pl = QHBoxLayout(pbox)
        self.checks: dict[str, QCheckBox] = {}
        for name, (desc, _kind, _params) in PIPELINES.items():
            if name == "dkf-nw":  # the same as dkf
                continue
            cb = QCheckBox(name)
            cb.setToolTip(desc)
            cb.setChecked(name in DEFAULT_PIPELINES)
            self.checks[name] = cb
            pl.addWidget(cb)
        pl.addStretch(1)
        lay.addWidget(pbox)

        run = QHBoxLayout()
        self.run_button = QPushButton("Run comparison")
        self.run_button.clicked.connect(self.run)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.jobs.cancel)
        self.progress = QProgressBar()
        self.status = QLabel("")
        run.addWidget(self.run_button)
        run.addWidget(self.cancel_button)
        run.addWidget(self.progress, 1)
        run.addWidget(self.status, 1)
        lay.addLayout(run)

        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.itemSelectionChanged.connect(lambda: self._on_busy(self.jobs.busy))
        lay.addWidget(self.table, 1)

        save = QHBoxLayout()
        self.save_button = QPushButton("Save bundle")
        self.save_button.setToolTip("fit the selected pipeline on the whole recording and save it")
        self.save_button.clicked.connect(lambda: self.save_bundle())
        self.saved_label = QLabel("")
        self.saved_label.setWordWrap(True)
        self.saved_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        save.addWidget(self.save_button)
        save.addWidget(self.saved_label, 1)
        lay.addLayout(save)

        self.recording_combo.currentIndexChanged.connect(lambda _i: self._fill_targets())
        self.jobs.progress.connect(self._on_progress)
        self.jobs.busy_changed.connect(self._on_busy)
        self.refresh_recordings()
        self._on_busy(False)

    # ------------------------------------------------------------------ inputs
    def refresh_recordings(self) -> None:
        """List the session's recordings that carry a target stream (opened files stay)."""
        s = getattr(self.context, "session", None)
        for p in ([] if s is None else s.recordings()):
            if p.suffix == ".fif" and target_streams(p):
                self.add_recording(p, select=False)

    def add_recording(self, path: str | Path, select: bool = True) -> None:
        path = str(Path(path))
        idx = self.recording_combo.findData(path)
        if idx < 0:
            self.recording_combo.addItem(Path(path).name, path)
            idx = self.recording_combo.count() - 1
        if select:
            self.recording_combo.setCurrentIndex(idx)
        self._fill_targets()

    def _open_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Open a recording with a target stream", "", "Recordings (*.fif);;All files (*)")
        if path:
            self.add_recording(path)

    def _fill_targets(self) -> None:
        rec = self.recording()
        names = target_streams(rec) if rec is not None else []
        current = self.target_combo.currentText()
        self.target_combo.clear()
        self.target_combo.addItems(names)
        if current in names:
            self.target_combo.setCurrentText(current)
        if rec is not None and not names:
            self.status.setText(f"{rec.name} has no target stream (record one with -s NAME)")

    def recording(self) -> Path | None:
        data = self.recording_combo.currentData()
        return Path(data) if data else None

    def target(self) -> str:
        return self.target_combo.currentText()

    def selected_pipelines(self) -> list[str]:
        return [n for n, cb in self.checks.items() if cb.isChecked()]

    def set_pipelines(self, names: list[str]) -> None:
        for n, cb in self.checks.items():
            cb.setChecked(n in names)

    def _features(self) -> dict[str, Any]:
        return {"window_s": self.window.currentText().strip(),
                "bands": self.bands.text().strip() or None}

    def _check_features(self) -> bool:
        try:
            parse_windows(self.window.currentText().strip())
        except UserError as exc:
            return self._error(str(exc).replace("--window", "Band-power window"))
        return True

    def _key(self) -> tuple:
        return (str(self.recording()), self.target(), tuple(sorted(self._features().items())))

    # ------------------------------------------------------------------ jobs
    def run(self) -> bool:
        """Compare the ticked pipelines on the chosen recording (background)."""
        rec, target, names = self.recording(), self.target(), self.selected_pipelines()
        if rec is None or not target:
            return self._error("Choose a recording with a target stream first.")
        if not names:
            return self._error("Tick at least one pipeline.")
        if not self._check_features():
            return False
        features, split, key = self._features(), self.split.value(), self._key()

        def work(task: TaskHandle) -> list[dict[str, Any]]:
            return task.run_in_process(compare_recording, rec, target, names, split=split,
                                       with_progress=True, **features)

        self.status.setText("")
        return self.jobs.start(work, on_done=lambda rows: self._show(rows, key),
                               on_error=self._on_error,
                               on_cancel=lambda: self.status.setText("Cancelled."),
                               name="continuous-compare")

    def _show(self, rows: list[dict[str, Any]], key: tuple) -> None:
        import math

        self.rows, self._rows_key = rows, key
        self.table.setRowCount(len(rows))
        best = min(range(len(rows)), key=lambda i: rows[i]["nrmse"]) if rows else -1
        for i, r in enumerate(rows):
            ang = r.get("angle_error")
            cells = [r["pipeline"], f"{r['corr']:.3f}", f"{r['nrmse']:.3f}",
                     "-" if ang is None else f"{math.degrees(ang):.1f}",
                     f"{r['n_train']} / {r['n_test']}", _window_text(r)]
            for j, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if i == best:
                    f = item.font()
                    f.setBold(True)
                    item.setFont(f)
                self.table.setItem(i, j, item)
        if best >= 0:
            self.table.selectRow(best)
        self.progress.setRange(0, 1)
        self.progress.setValue(1)
        self.status.setText(f"Lowest nRMSE: {rows[best]['pipeline']}" if rows else "No result.")
        self._on_busy(False)
        self.compared.emit()

    def current_pipeline(self) -> str | None:
        sel = self.table.selectionModel().selectedRows() if self.table.selectionModel() else []
        return self.rows[sel[0].row()]["pipeline"] if sel and self.rows else None

    def save_bundle(self, out_dir: str | Path | None = None) -> bool:
        """Fit the selected pipeline on the whole recording and save its bundle (background)."""
        name = self.current_pipeline()
        if name is None or self._rows_key != self._key():
            return self._error("Run the comparison on this recording and target first.")
        if out_dir is None:
            s = getattr(self.context, "session", None)
            base = s.models_dir if s is not None else QFileDialog.getExistingDirectory(
                self, "Folder for the model")
            if not base:
                return False
            out_dir = Path(base) / f"{name}-{_dt.datetime.now():%Y%m%d-%H%M%S}"
        rec, target, features, out = self.recording(), self.target(), self._features(), Path(out_dir)

        def work(task: TaskHandle) -> dict[str, Any]:
            task.progress(0, 0, f"fitting {name} on all of {rec.name} and exporting")
            return task.run_in_process(train_recording, rec, target, name, out, **features)

        def done(summary: dict[str, Any]) -> None:
            self.last_model = Path(summary["path"])
            self.progress.setRange(0, 1)
            self.progress.setValue(1)
            self.status.setText(f"Saved {name}.")
            self.saved_label.setText(f"Bundle saved: {summary['path']} (backend "
                                     f"{summary['backend']})")
            if self.context is not None:
                self.context.report_info(f"Continuous model {name} saved to {summary['path']}")
            self.model_saved.emit(str(summary["path"]))

        return self.jobs.start(work, on_done=done, on_error=self._on_error,
                               name="continuous-save")

    def _on_progress(self, done: int, total: int, text: str) -> None:
        self.progress.setRange(0, total)
        self.progress.setValue(done)
        self.status.setText(text)

    def _on_busy(self, busy: bool) -> None:
        self.run_button.setEnabled(not busy)
        self.cancel_button.setEnabled(busy)
        self.save_button.setEnabled(not busy and self.current_pipeline() is not None)

    def _on_error(self, message: str) -> None:
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.status.setText("Failed.")
        self._error(f"Continuous models: {message}")

    def _error(self, message: str) -> bool:
        self.status.setText(message)
        if self.context is not None:
            self.context.report_error(message)
        else:
            logger.error("%s", message)
        return False

    # ------------------------------------------------------------------ lifecycle
    def show_window(self) -> None:
        """Show as a window of its own (the Train page's "Continuous models…" button)."""
        self.setWindowFlag(Qt.WindowType.Window, True)
        self.refresh_recordings()
        self.resize(900, 560)
        self.show()
        self.raise_()

    def shutdown(self) -> None:
        self.jobs.shutdown()


def _window_text(row: dict[str, Any]) -> str:
    """``"0.25 s, 0,1,2,3"``: the window and feature history chosen (or given) for a row."""
    win = row.get("window_s")
    lags = ",".join(map(str, row.get("lags") or [0]))
    return lags if win is None else f"{win:g} s, {lags}"
