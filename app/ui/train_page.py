"""Train page: cross-validate decoding pipelines, compare them, save a model bundle, write a report.

The recordings are the session's calibration runs (or files opened here). The work is
:mod:`app.workflow` (:func:`cross_validate_recordings`, :func:`fit_and_save`,
:func:`write_report`), run in a child process (the GUI stays responsive even where LAPACK holds
the GIL) with a progress bar; the table
compares mean score, standard deviation over folds and fit time; the confusion matrix is that of
the selected pipeline (out-of-fold predictions on the same folds). "Save model" fits the chosen
pipeline on all trials and writes an ONNX + JSON bundle into the session's ``models/``; "Export
report" writes an HTML calibration report (:class:`mne.Report`: R² maps, spectra, scores,
confusion matrix) into ``reports/``.

The feature selection made on the Features page (``context.feature_selection``) is used by
``psd-lda`` (PSD map) and ``coh-lda`` (node-strength map) when "use the Features selection" is on.
"""
from __future__ import annotations

import datetime as _dt
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtGui import QColor
from PyQt6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
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
    QScrollArea,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from neurodeck.app.events import format_mapping, parse_mapping_text
from neurodeck.app.ui.marker_dialog import offer_markers
from neurodeck.app.ui.widgets import Page, big_button
from neurodeck.app.ui.workers import JobRunner, TaskHandle
from neurodeck.app.workflow.population import (
    default_population,
    fine_tune_population,
    learning_curve,
    recommend,
)
from neurodeck.app.workflow.report import write_report
from neurodeck.app.workflow.training import (
    TrainResult,
    chance_note,
    confusion,
    cross_validate_recordings,
    fit_and_save,
    honest_best,
)

logger = logging.getLogger(__name__)

#: Pipelines ticked by default (fast and good on EEGMMIDB).
DEFAULT_PIPELINES = ("psd-lda", "csp-lda", "mdm", "ts-lr")
# ------------------------------------------------------------------------------- the page
class TrainPage(Page):
    """Choose pipelines, cross-validate them in the background, compare, save, report."""

    title = "Train"
    subtitle = ("Compare decoders on the calibration trials with cross-validation, then save the "
                "best one (or the one you choose) as a model for the Online page.")

    cv_finished = pyqtSignal()
    curve_finished = pyqtSignal()
    confusion_ready = pyqtSignal(str)
    model_saved = pyqtSignal(str)
    report_saved = pyqtSignal(str)

    def __init__(self, context=None, parent: QWidget | None = None):
        super().__init__(context, parent)
        from neurodeck.decoders.pipelines import PIPELINES

        self.jobs = JobRunner(self)
        self.result: TrainResult | None = None
        self.paths: list[Path] = []
        self.last_model: Path | None = None
        self.last_report: Path | None = None
        #: the recordings and settings the shown result (table, confusion, save) was computed on
        self._result_key: tuple | None = None

        top = QHBoxLayout()
        # --- pipelines
        pbox = QGroupBox("Pipelines")
        pl = QVBoxLayout(pbox)
        inner = QWidget()
        il = QVBoxLayout(inner)
        il.setContentsMargins(0, 0, 0, 0)
        self.checks: dict[str, QCheckBox] = {}
        for name, desc in PIPELINES.items():
            cb = QCheckBox(name)
            cb.setChecked(name in DEFAULT_PIPELINES)
            cb.setStyleSheet("font-weight: 600;")
            lab = QLabel(desc)
            lab.setWordWrap(True)
            lab.setStyleSheet("color: #455a64; margin-left: 22px; margin-bottom: 4px;")
            il.addWidget(cb)
            il.addWidget(lab)
            self.checks[name] = cb
        il.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(inner)
        pl.addWidget(scroll)
        top.addWidget(pbox, 3)

        # --- data and settings
        sbox = QGroupBox("Data and settings")
        g = QGridLayout(sbox)
        self.files_label = QLabel("")
        self.files_label.setWordWrap(True)
        open_b = QPushButton("Open recording(s)\u2026")
        open_b.clicked.connect(self._open_dialog)
        g.addWidget(self.files_label, 0, 0, 1, 3)
        g.addWidget(open_b, 0, 3)
        self.mapping_edit = QLineEdit()
        self.mapping_edit.setPlaceholderText("auto (T1=left_hand, T2=right_hand or cue names)")
        self.mapping_edit.setToolTip("Marker -> class, e.g. T1=left_hand, T2=right_hand; markers "
                                     "with commas: separate the items with ';'")
        self.marker_dialog = None  # the last "Markers..." dialog
        self.markers_button = QPushButton("Markers\u2026")
        self.markers_button.setToolTip("List the markers in the recordings and map them to "
                                       "classes (two or more)")
        self.markers_button.clicked.connect(lambda: self.choose_markers())
        g.addWidget(QLabel("Events"), 1, 0)
        g.addWidget(self.mapping_edit, 1, 1, 1, 2)
        g.addWidget(self.markers_button, 1, 3)
        self.tmin, self.tmax = QDoubleSpinBox(), QDoubleSpinBox()
        for box, v in ((self.tmin, 0.5), (self.tmax, 2.5)):
            box.setRange(-1.0, 10.0)
            box.setSingleStep(0.25)
            box.setSuffix(" s")
            box.setValue(v)
        g.addWidget(QLabel("Window after cue"), 2, 0)
        g.addWidget(self.tmin, 2, 1)
        g.addWidget(QLabel("to"), 2, 2)
        g.addWidget(self.tmax, 2, 3)
        self.fmin, self.fmax = QDoubleSpinBox(), QDoubleSpinBox()
        for box, v in ((self.fmin, 8.0), (self.fmax, 32.0)):
            box.setRange(0.5, 200.0)
            box.setSuffix(" Hz")
            box.setValue(v)
        g.addWidget(QLabel("Band-pass"), 3, 0)
        g.addWidget(self.fmin, 3, 1)
        g.addWidget(QLabel("to"), 3, 2)
        g.addWidget(self.fmax, 3, 3)
        self.folds = QSpinBox()
        self.folds.setRange(2, 10)
        self.folds.setValue(5)
        g.addWidget(QLabel("CV folds"), 4, 0)
        g.addWidget(self.folds, 4, 1)
        self.use_selection = QCheckBox("use the Features page selection (psd-lda, coh-lda)")
        self.use_selection.setChecked(True)
        g.addWidget(self.use_selection, 5, 0, 1, 4)
        self.selection_label = QLabel("")
        self.selection_label.setWordWrap(True)
        self.selection_label.setStyleSheet("color: #455a64;")
        g.addWidget(self.selection_label, 6, 0, 1, 4)
        # --- a population model to start from (issue 14)
        self.population_check = QCheckBox("Start from a population model:")
        self.population_check.setToolTip(
            "A model trained on other people (re-centred per person). Fine-tuning it with this "
            "session's trials starts its reference from them; its classifier stays the "
            "population's. The learning curve then compares it with training from scratch.")
        self.population_path = default_population()
        self.population_label = QLabel(self.population_path.name)
        self.population_label.setToolTip(str(self.population_path))
        self.population_button = QPushButton("Choose\u2026")
        self.population_button.setToolTip("Choose a population model folder (model.onnx + "
                                          "model.json, from `neurodeck train --population`)")
        self.population_button.clicked.connect(lambda: self._choose_population())
        g.addWidget(self.population_check, 7, 0, 1, 2)
        g.addWidget(self.population_label, 7, 2)
        g.addWidget(self.population_button, 7, 3)
        g.setRowStretch(8, 1)
        top.addWidget(sbox, 2)
        self.body.addLayout(top, 2)

        run = QHBoxLayout()
        self.run_button = big_button("Run cross-validation")
        self.run_button.clicked.connect(self.run_cv)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.jobs.cancel)
        self.cancel_button.setEnabled(False)
        self.progress = QProgressBar()
        self.progress.setFormat("%p%")
        self.status = QLabel("")
        self.status.setWordWrap(True)  # the result line is long: wrap, never widen the window
        self.curve_button = QPushButton("Learning curve")
        self.curve_button.setToolTip(
            "Score vs calibration trials per class on these recordings, in time order: the first "
            "K trials of each class calibrate, every later trial tests (the selected pipeline "
            "from scratch, and the population model fine-tuned if chosen)")
        self.curve_button.clicked.connect(lambda: self.run_curve())
        run.addWidget(self.run_button)
        run.addWidget(self.curve_button)
        run.addWidget(self.cancel_button)
        run.addWidget(self.progress, 1)
        run.addWidget(self.status, 1)
        self.body.addLayout(run)
        #: one line per cross-validation run of this page (researchers compare settings)
        self.history: list[str] = []
        self.history_label = QLabel("")
        self.history_label.setWordWrap(True)
        self.history_label.setStyleSheet("color: #607d8b;")
        self.body.addWidget(self.history_label)

        bottom = QHBoxLayout()
        self.table = QTableWidget(0, 6)
        self.table.setHorizontalHeaderLabels(["pipeline", "score", "std", "per fold", "fit (s)",
                                              "predict (s)"])
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.itemSelectionChanged.connect(self._on_row)
        bottom.addWidget(self.table, 3)
        cbox = QWidget()
        cl = QVBoxLayout(cbox)
        cl.setContentsMargins(4, 4, 4, 4)
        self.cm_title = QLabel("")
        self.cm_table = QTableWidget(0, 0)
        self.cm_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.cm_table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.cm_table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        cl.addWidget(self.cm_title)
        cl.addWidget(self.cm_table, 1)
        self.tabs = QTabWidget()
        self.tabs.addTab(cbox, "Confusion matrix (out-of-fold)")
        curve_tab = QWidget()
        kl = QVBoxLayout(curve_tab)
        kl.setContentsMargins(4, 4, 4, 4)
        self.curve_plot = pg.PlotWidget(background="w")
        self.curve_plot.setMinimumHeight(150)
        self.curve_plot.setLabel("left", "score on later trials")
        self.curve_plot.showGrid(x=True, y=True, alpha=0.3)
        self.curve_plot.setYRange(0.2, 1.15)  # the legend sits above 1.0, the chance line below
        self.curve_plot.addLegend(offset=(10, 2), colCount=2)
        self.curve_items: dict[str, pg.PlotDataItem] = {}
        self.recommend_label = QLabel("")
        self.recommend_label.setWordWrap(True)
        self.recommend_label.setStyleSheet("font-size: 9pt;")
        kl.addWidget(self.curve_plot, 1)
        kl.addWidget(self.recommend_label)
        self.tabs.addTab(curve_tab, "Learning curve")
        bottom.addWidget(self.tabs, 2)
        #: the last learning curve (app.workflow.population.LearningCurve) and its inputs
        self.curve = None
        self._curve_key: tuple | None = None
        self.body.addLayout(bottom, 2)

        save = QHBoxLayout()
        self.save_button = big_button("Save selected model")
        self.save_button.clicked.connect(lambda: self.save_model())
        self.report_button = QPushButton("Export HTML report")
        self.report_button.clicked.connect(lambda: self.export_report())
        self.saved_label = QLabel("")
        self.saved_label.setWordWrap(True)
        self.saved_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.save_population_button = QPushButton("Save fine-tuned population model")
        self.save_population_button.setToolTip(
            "The population model with its reference started from every trial of these "
            "recordings, saved into the session's models")
        self.save_population_button.clicked.connect(lambda: self.save_population())
        save.addWidget(self.save_button)
        save.addWidget(self.save_population_button)
        save.addWidget(self.report_button)
        save.addWidget(self.saved_label, 1)
        # continuous decoders (Kalman / DKF on a recording with a target stream): own window
        from neurodeck.app.ui.continuous_panel import ContinuousPanel
        self.continuous = ContinuousPanel(context, self)
        self.continuous.hide()
        cont_b = QPushButton("Continuous models…")
        cont_b.clicked.connect(self.continuous.show_window)
        save.addWidget(cont_b)
        self.body.addLayout(save)

        self.jobs.progress.connect(self._on_progress)
        self.jobs.busy_changed.connect(self._on_busy)
        if context is not None:
            context.session_changed.connect(lambda _s: self._update_labels())
        # a result belongs to the data and settings it was computed on: any change drops it
        for box in (self.tmin, self.tmax, self.fmin, self.fmax, self.folds):
            box.valueChanged.connect(lambda _v: self._drop_stale_result())
        self.mapping_edit.textChanged.connect(lambda _t: self._drop_stale_result())
        self.use_selection.toggled.connect(lambda _b: self._update_labels())
        self.population_check.toggled.connect(lambda _b: self._on_busy(self.jobs.busy))
        self._on_busy(False)
        self._update_labels()

    # ------------------------------------------------------------------ inputs
    def selected_pipelines(self) -> list[str]:
        return [n for n, cb in self.checks.items() if cb.isChecked()]

    def set_pipelines(self, names: Sequence[str]) -> None:
        for n, cb in self.checks.items():
            cb.setChecked(n in names)

    def set_paths(self, paths: Sequence[str | Path]) -> None:
        self.paths = [Path(p) for p in paths]
        self._update_labels()

    def _open_dialog(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(
            self, "Open calibration recording(s)", "",
            "Recordings (*.fif *.edf *.bdf *.gdf *.vhdr *.xdf *.xdfz);;All files (*)")
        if files:
            self.set_paths(files)

    def session_recordings(self) -> list[Path]:
        s = getattr(self.context, "session", None)
        if s is None:
            return []
        return [p for p in s.recordings() if p.name.startswith("calibration")
                and p.name.endswith((".fif", ".edf", ".bdf", ".gdf", ".vhdr", ".xdf"))]

    def recordings(self) -> list[Path]:
        return self.paths or self.session_recordings()

    def selection(self) -> dict[str, list[str]]:
        if not self.use_selection.isChecked():
            return {}
        sel = getattr(self.context, "feature_selection", None)
        if sel is None:  # a reopened session: the selection saved by the Features page
            s = getattr(self.context, "session", None)
            saved = s.section("features") if s is not None else None
            sel = {k: saved.get(k) for k in ("psd", "ns", "spectrum")} if saved else {}
        return {k: list(v) for k, v in sel.items() if v}

    def inputs_key(self) -> tuple:
        """What a cross-validation result depends on: recordings, events, window, band, folds,
        feature selection."""
        try:
            mapping = repr(self.mapping())
        except ValueError:
            mapping = "invalid: " + self.mapping_edit.text()
        return (tuple(str(p) for p in self.recordings()), mapping, self.tmin.value(),
                self.tmax.value(), self.fmin.value(), self.fmax.value(), self.folds.value(),
                repr(sorted(self.selection().items())))

    def _drop_stale_result(self) -> None:
        """Forget a result computed on other recordings or settings than those now shown."""
        if self.curve is not None and self._curve_key != self.curve_inputs():
            self.curve, self._curve_key = None, None
            self._draw_curve()
        if self.result is None or self._result_key == self.inputs_key():
            return
        self.result, self._result_key = None, None
        self.table.setRowCount(0)
        self.cm_table.setRowCount(0)
        self.cm_table.setColumnCount(0)
        self.cm_title.setText("")
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.status.setText("The recordings or settings changed: run the cross-validation again "
                            "before saving a model.")
        self._on_busy(self.jobs.busy)

    def _update_labels(self) -> None:
        self._drop_stale_result()
        recs = self.recordings()
        self.files_label.setText(
            ("Recordings: " + ", ".join(p.name for p in recs)) if recs else
            "No calibration recording in this session yet: record one or open a file.")
        sel = self.selection()
        self.selection_label.setText(
            "Features page selection: " + "; ".join(f"{k}: {', '.join(v)}" for k, v in sel.items())
            + " (chosen on trials that the cross-validation also tests on, so its score is "
            "optimistic: confirm with pseudo-online on a new run)"
            if sel else "No Features page selection: psd-lda / coh-lda take the top 10 by R\u00b2 "
            "inside each training fold.")

    def showEvent(self, ev) -> None:  # noqa: N802 (Qt name)
        self._update_labels()
        super().showEvent(ev)

    def mapping(self) -> dict[str, str] | None:
        return parse_mapping_text(self.mapping_edit.text())

    def choose_markers(self) -> None:
        """Offer the markers of the recordings shown to map to classes (the Events field)."""
        recs = self.recordings()
        if not recs:
            self.report_error("No recording to read markers from: record a calibration or open "
                              "a file.")
            return
        try:
            current = self.mapping()
        except ValueError:
            current = None
        offer_markers(self, recs, current,
                      lambda mapping: self.mapping_edit.setText(format_mapping(mapping)),
                      button=self.markers_button)

    # ------------------------------------------------------------------ cross-validation
    def run_cv(self) -> bool:
        recs = self.recordings()
        names = self.selected_pipelines()
        if not recs:
            self.report_error("No recording to train on: record a calibration or open a file.")
            return False
        if not names:
            self.report_error("Tick at least one pipeline.")
            return False
        try:
            mapping = self.mapping()
        except ValueError as exc:
            self.report_error(str(exc))
            return False
        tmin, tmax = self.tmin.value(), self.tmax.value()
        band = (self.fmin.value(), self.fmax.value())
        cv, selection = self.folds.value(), self.selection()
        self._update_labels()
        key = self.inputs_key()

        def work(task: TaskHandle) -> TrainResult:
            # a child process: pyriemann's LAPACK calls hold the GIL for seconds (issue 11)
            return task.run_in_process(cross_validate_recordings, recs, names, mapping=mapping,
                                       tmin=tmin, tmax=tmax, band=band, cv=cv,
                                       selection=selection, with_progress=True)

        self.status.setText("")
        return self.jobs.start(work, on_done=lambda res: self._on_result(res, key),
                               on_error=self._on_error,
                               on_cancel=lambda: self.status.setText("Cancelled."), name="train-cv")

    def _on_progress(self, done: int, total: int, text: str) -> None:
        self.progress.setRange(0, total)  # total 0: a busy indicator
        self.progress.setValue(done)
        self.status.setText(text)

    def _on_busy(self, busy: bool) -> None:
        self.run_button.setEnabled(not busy)
        self.curve_button.setEnabled(not busy)
        self.save_population_button.setEnabled(not busy and self.population_check.isChecked())
        self.cancel_button.setEnabled(busy and self.jobs.name in ("train-cv", "learning-curve"))
        has = self.result is not None and not busy
        self.save_button.setEnabled(has)
        self.report_button.setEnabled(has)

    def _on_error(self, message: str) -> None:
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.status.setText("Failed.")
        self.report_error(f"Train: {message}")

    def best_pipeline(self) -> str | None:
        return None if self.result is None else honest_best(self.result)

    def _on_result(self, result: TrainResult, key: tuple | None = None) -> None:
        if key is not None and key != self.inputs_key():
            self.progress.setRange(0, 1)
            self.progress.setValue(0)
            self.status.setText("The recordings or settings changed during the cross-validation: "
                                "its result was dropped; run it again.")
            self._on_busy(False)
            return
        self.result = result
        self._result_key = self.inputs_key() if key is None else key
        leaky = result.optimistic
        # honest scores first, best first; optimistic ones (selection on all trials) after them
        res = sorted(result.results, key=lambda r: (r.pipeline in leaky, -r.score))
        self.table.setRowCount(len(res))
        best = honest_best(result)
        for i, r in enumerate(res):
            name = r.pipeline + (" *" if r.pipeline in leaky else "")
            vals = [name, f"{r.score:.3f}", f"{np.std(r.fold_scores):.3f}",
                    " ".join(f"{x:.2f}" for x in r.fold_scores),
                    f"{r.fit_time_s:.2f}", f"{r.predict_time_s:.2f}"]
            for j, v in enumerate(vals):
                item = QTableWidgetItem(v)
                item.setData(Qt.ItemDataRole.UserRole, r.pipeline)
                if r.pipeline == best:
                    item.setBackground(QColor("#e8f5e9"))
                elif r.pipeline in leaky:
                    item.setForeground(QColor("#8d6e63"))
                    item.setToolTip("Uses the Features page selection, chosen on all these trials: "
                                    "its cross-validation score is optimistic and it is not ranked.")
                self.table.setItem(i, j, item)
        metric = res[0].metric if res else "score"
        self.table.setHorizontalHeaderItem(1, QTableWidgetItem(
            "ROC AUC" if metric == "roc_auc" else metric))
        tr = result.trials
        self.status.setText(f"{len(tr.y)} trials ({', '.join(tr.labels)}), {result.cv}-fold CV. "
                            f"Best: {best} ({result.result(best).score:.3f}). "
                            + chance_note(tr.y, res[0].metric if res else "")
                            + (" * = selection made on all trials: optimistic, not ranked."
                               if leaky else "")
                            + "".join(f" Note: {n}." for n in result.notes))
        if result.dropped:
            self.selection_label.setText(
                "Left out of the selection (outside the band-pass): " + ", ".join(result.dropped))
        self.table.blockSignals(True)
        self.table.selectRow(0)
        self.table.blockSignals(False)
        self._show_confusion(best)
        self.tabs.setCurrentIndex(0)
        self.history.append(
            f"{_dt.datetime.now():%H:%M} {', '.join(Path(p).name for p in tr.sources)} "
            f"({result.cv}-fold, {tr.tmin:g}-{tr.tmax:g} s): "
            + ", ".join(f"{r.pipeline}{' *' if r.pipeline in leaky else ''} {r.score:.3f}"
                        for r in res))
        self.history_label.setText("Earlier runs (this page): " + " | ".join(self.history[-3:-1])
                                   if len(self.history) > 1 else "")
        self.history_label.setToolTip("\n".join(self.history))
        self._on_busy(False)
        self.cv_finished.emit()

    def current_pipeline(self) -> str | None:
        rows = self.table.selectionModel().selectedRows() if self.table.selectionModel() else []
        if not rows:
            return self.best_pipeline()
        return self.table.item(rows[0].row(), 0).data(Qt.ItemDataRole.UserRole)

    def _on_row(self) -> None:
        name = self.current_pipeline()
        if name is None or self.result is None:
            return
        if name in self.result.confusion:
            self._show_confusion(name)
            return
        result = self.result
        self.cm_title.setText(f"computing for {name}\u2026")

        def work(task):
            task.progress(0, 0, f"confusion matrix of {name}")
            return name, confusion(result, name)

        def done(res):
            n, cm = res
            self._job_done("")
            result.confusion[n] = cm
            self._show_confusion(n)

        if not self.jobs.start(work, on_done=done, on_error=self._on_error, name="confusion"):
            self.cm_title.setText("busy: select the row again when the current task ends")

    def _show_confusion(self, name: str) -> None:
        labels, cm = self.result.confusion[name]
        self.cm_title.setText(f"{name}: rows = true class, columns = predicted "
                              f"(accuracy {np.trace(cm) / max(cm.sum(), 1):.2f})")
        self.cm_table.setRowCount(len(labels))
        self.cm_table.setColumnCount(len(labels))
        self.cm_table.setHorizontalHeaderLabels([f"\u2192 {lab}" for lab in labels])
        self.cm_table.setVerticalHeaderLabels(labels)
        top = max(int(cm.max()), 1)
        for i in range(len(labels)):
            for j in range(len(labels)):
                item = QTableWidgetItem(str(int(cm[i, j])))
                item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                shade = int(255 - 150 * cm[i, j] / top)
                item.setBackground(QColor(shade, shade + (255 - shade) // 3, 255))
                self.cm_table.setItem(i, j, item)
        self.confusion_ready.emit(name)

    def _job_done(self, text: str) -> None:
        self.progress.setRange(0, 1)
        self.progress.setValue(1)
        self.status.setText(text)

    # ------------------------------------------------------------------ saving
    def _start_saving(self, work: Callable, what: str, status: str, info: str, *,
                      job: str) -> bool:
        """Run ``work`` (it returns the path written) in the background; then show the path,
        remember it as :attr:`last_model` or :attr:`last_report` (``what``: "model" or
        "report"), announce it with ``info`` and emit :attr:`model_saved` / :attr:`report_saved`."""
        def done(path) -> None:
            path = Path(path)
            self._job_done(status)
            if what == "report":
                self.last_report = path
            else:
                self.last_model = path
            self.saved_label.setText(f"{what.capitalize()} saved: {path}")
            if self.context is not None:
                self.context.report_info(f"{info} {path}")
            (self.report_saved if what == "report" else self.model_saved).emit(str(path))

        return self.jobs.start(work, on_done=done, on_error=self._on_error, name=job)

    def _target_dir(self, kind: str) -> Path | None:
        s = getattr(self.context, "session", None)
        if s is not None:
            return s.models_dir if kind == "models" else s.reports_dir
        path = QFileDialog.getExistingDirectory(self, f"Folder for the {kind}")
        return Path(path) if path else None

    def save_model(self, name: str | None = None, out_dir: str | Path | None = None) -> bool:
        """Fit ``name`` (default: the selected row) on all trials and save its bundle."""
        self._drop_stale_result()
        if self.result is None:
            self.report_error("Run the cross-validation first (on the recordings shown).")
            return False
        name = name or self.current_pipeline()
        if out_dir is None:
            base = self._target_dir("models")
            if base is None:
                return False
            out_dir = base / f"{name}-{_dt.datetime.now():%Y%m%d-%H%M%S}"
        result, out = self.result, Path(out_dir)

        def work(task):
            task.progress(0, 0, f"fitting {name} on all trials and exporting to ONNX")
            return task.run_in_process(fit_and_save, result, name, out)

        return self._start_saving(work, "model", f"Saved {name}.", f"Model {name} saved to",
                                  job="save-model")

    def export_report(self, path: str | Path | None = None) -> bool:
        self._drop_stale_result()
        if self.result is None:
            self.report_error("Run the cross-validation first.")
            return False
        if path is None:
            base = self._target_dir("reports")
            if base is None:
                return False
            path = base / f"calibration-report-{_dt.datetime.now():%Y%m%d-%H%M%S}.html"
        result, out = self.result, Path(path)
        s = getattr(self.context, "session", None)
        subject = s.label if s is not None else ""

        def work(task):
            task.progress(0, 0, "writing the HTML report")
            return task.run_in_process(write_report, result, out, subject=subject)

        return self._start_saving(work, "report", "Report written.", "Report saved to",
                                  job="report")

    # ------------------------------------------------------------------ population model
    def _choose_population(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Population model folder",
                                                str(self.population_path.parent))
        if path:
            self.set_population(path)

    def set_population(self, path: str | Path) -> None:
        """Use the population model in ``path`` (checked when used: a banner says what is wrong)."""
        self.population_path = Path(path)
        self.population_label.setText(self.population_path.name)
        self.population_label.setToolTip(str(self.population_path))
        self.population_check.setChecked(True)
        self._drop_stale_result()

    def population(self) -> Path | None:
        return self.population_path if self.population_check.isChecked() else None

    def curve_pipeline(self) -> str | None:
        """The pipeline of the learning curve: the selected row, else the first ticked one."""
        if self.result is not None:
            return self.current_pipeline()
        names = self.selected_pipelines()
        return names[0] if names else None

    def curve_inputs(self) -> tuple:
        """What a learning curve depends on: recordings, events, window, band, population model
        (not the selected row: the curve names its pipeline)."""
        pop = self.population()
        return self.inputs_key()[:6] + (None if pop is None else str(pop),)

    # ------------------------------------------------------------------ learning curve
    def run_curve(self) -> bool:
        """Score vs calibration trials per class, in a child process; drawn in the page."""
        recs, name = self.recordings(), self.curve_pipeline()
        if not recs:
            self.report_error("No recording to train on: record a calibration or open a file.")
            return False
        if name is None:
            self.report_error("Tick a pipeline (or select a row) for the learning curve.")
            return False
        try:
            mapping = self.mapping()
        except ValueError as exc:
            self.report_error(str(exc))
            return False
        key = self.curve_inputs()
        kwargs = dict(mapping=mapping, tmin=self.tmin.value(), tmax=self.tmax.value(),
                      band=(self.fmin.value(), self.fmax.value()), population=self.population())

        def work(task: TaskHandle):
            return task.run_in_process(learning_curve, recs, name, with_progress=True, **kwargs)

        def done(curve) -> None:
            if key != self.curve_inputs():
                self.status.setText("The recordings or settings changed during the learning "
                                    "curve: its result was dropped; run it again.")
                return
            self.curve, self._curve_key = curve, key
            self._draw_curve()
            self._job_done("Learning curve done.")
            self.tabs.setCurrentIndex(1)
            self.curve_finished.emit()

        self.status.setText("")
        return self.jobs.start(work, on_done=done, on_error=self._on_error,
                               on_cancel=lambda: self.status.setText("Cancelled."),
                               name="learning-curve")

    def _draw_curve(self) -> None:
        for item in self.curve_plot.listDataItems():
            self.curve_plot.removeItem(item)
        for item in [i for i in self.curve_plot.items() if isinstance(i, pg.InfiniteLine)]:
            self.curve_plot.removeItem(item)
        self.curve_plot.plotItem.legend.clear()
        self.curve_items = {}
        c = self.curve
        if c is None:
            self.recommend_label.setText("")
            return
        self.curve_plot.setLabel("left", "ROC AUC" if c.metric == "roc_auc" else c.metric)
        self.curve_plot.addItem(pg.InfiniteLine(
            pos=c.chance, angle=0, pen=pg.mkPen("#9e9e9e", style=Qt.PenStyle.DashLine)))
        lines, best = [], None
        for key, scores, color, symbol, label in (
                ("population", c.population, "#2e7d32", "t", "population model fine-tuned"),
                ("scratch", c.scratch, "#1565c0", "o", f"{c.pipeline} from scratch")):
            if not scores:
                continue
            ks = sorted(scores)
            self.curve_items[key] = self.curve_plot.plot(
                ks, [scores[k] for k in ks], pen=pg.mkPen(color, width=2), symbol=symbol,
                symbolBrush=color, symbolSize=8, name=label)
            k, text = recommend(scores, c.chance, metric=c.metric)
            lines.append(f"<b>{label}</b>: {text}")
            if k is not None and best is None:
                best = (k, color)
        if best is not None:
            self.curve_plot.addItem(pg.InfiniteLine(pos=best[0], angle=90,
                                                    pen=pg.mkPen(best[1], width=1)))
        ks = sorted(c.n_test)
        lines.append(f"<span style='color:#607d8b'>x: K calibration trials per class (the first "
                     f"K); y: score on the later trials ({c.n_test[ks[0]]} at K={ks[0]}, "
                     f"{c.n_test[ks[-1]]} at K={ks[-1]}: noisier); dashed: chance "
                     f"{c.chance:.2f}.</span>")
        self.recommend_label.setText("<br>".join(lines))
        self.recommend_label.setToolTip("\n".join(c.notes))

    def save_population(self, out_dir: str | Path | None = None) -> bool:
        """Fine-tune the population model with every trial of the recordings and save it."""
        pop, recs = self.population(), self.recordings()
        if pop is None:
            self.report_error("Tick 'Start from a population model' first.")
            return False
        if not recs:
            self.report_error("No recording to fine-tune with: record a calibration or open a file.")
            return False
        try:
            mapping = self.mapping()
        except ValueError as exc:
            self.report_error(str(exc))
            return False
        if out_dir is None:
            base = self._target_dir("models")
            if base is None:
                return False
            out_dir = base / f"population-{pop.name}-{_dt.datetime.now():%Y%m%d-%H%M%S}"
        out = Path(out_dir)

        def work(task):
            task.progress(0, 0, f"fine-tuning {pop.name} with {len(recs)} recording(s)")
            return task.run_in_process(fine_tune_population, pop, recs, out, mapping=mapping)

        return self._start_saving(work, "model", "Saved the fine-tuned population model.",
                                  "Population model fine-tuned and saved to",
                                  job="save-population")

    # ------------------------------------------------------------------ screenshots
    def prepare_screenshot(self) -> None:
        """scripts/screenshots.py: CV of a few fast pipelines, then save the best model."""
        self.set_pipelines(["psd-lda", "csp-lda", "mdm"])
        self.folds.setValue(4)
        self.cv_finished.connect(self._save_best_once)
        self.run_cv()

    def _save_best_once(self) -> None:
        self.cv_finished.disconnect(self._save_best_once)
        self.save_model(self.best_pipeline())

    def screenshot_ready(self) -> bool:
        failed = self.status.text() == "Failed."
        return not self.jobs.busy and (self.last_model is not None or failed)

    # ------------------------------------------------------------------ lifecycle
    def busy_reason(self) -> str | None:
        return f"training ({self.jobs.name})" if self.jobs.busy else None

    def shutdown(self) -> None:
        self.jobs.shutdown()
        self.continuous.shutdown()

