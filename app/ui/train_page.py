"""Train page: cross-validate decoding pipelines, compare them, save a model bundle, write a report.

The recordings are the session's calibration runs (or files opened here). Cross-validation runs
:func:`decoders.evaluation.cross_validate_pipelines` in a QThread with a progress bar; the table
compares mean score, standard deviation over folds and fit time; the confusion matrix is that of
the selected pipeline (out-of-fold predictions on the same folds). "Save model" fits the chosen
pipeline on all trials and writes an ONNX + JSON bundle into the session's ``models/``; "Export
report" writes an HTML calibration report (:class:`mne.Report`: R² maps, spectra, scores,
confusion matrix) into ``reports/``.

The feature selection made on the Features page (``context.feature_selection``) is used by
``psd-lda`` (PSD map) and ``coh-lda`` (node-strength map) when "use the Features selection" is on.
"""
from __future__ import annotations

import dataclasses
import datetime as _dt
import html
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
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
    QVBoxLayout,
    QWidget,
)

from neurodeck.app.events import parse_mapping_text
from neurodeck.app.ui.features_page import Trials, load_trials
from neurodeck.app.ui.widgets import Page, big_button
from neurodeck.app.ui.workers import Cancelled, JobRunner, TaskHandle

logger = logging.getLogger(__name__)

#: Pipelines ticked by default (fast and good on EEGMMIDB).
DEFAULT_PIPELINES = ("psd-lda", "csp-lda", "mdm", "ts-lr")
#: Steps whose ``freqs_`` a user selection refers to.
_SPECTRAL = {"psd-lda": ("psd", "psd"), "coh-lda": ("coh", "ns")}


# ------------------------------------------------------------------------------- Qt-free part
@dataclasses.dataclass
class TrainResult:
    """Cross-validation of several pipelines on one dataset.

    Attributes
    ----------
    results : list of decoders.evaluation.CVResult
    configs : dict of str to DecoderConfig
        The exact configuration of each pipeline (selection overrides included).
    trials : Trials
    confusion : dict of str to (labels, matrix)
        Out-of-fold confusion matrices (rows: true class, columns: predicted) computed so far.
    """

    results: list
    configs: dict
    trials: Trials
    cv: int
    seed: int
    confusion: dict = dataclasses.field(default_factory=dict)
    dropped: list = dataclasses.field(default_factory=list)
    notes: list = dataclasses.field(default_factory=list)

    def best(self) -> str:
        return max(self.results, key=lambda r: r.score).pipeline

    def result(self, name: str):
        return next(r for r in self.results if r.pipeline == name)


def honest_best(result: TrainResult) -> str:
    """Best pipeline whose score is not optimistic (``result.optimistic``: feature selection made
    on all trials); the best of all if every one is."""
    leaky = getattr(result, "optimistic", set())
    honest = [r for r in result.results if r.pipeline not in leaky] or result.results
    return max(honest, key=lambda r: r.score).pipeline


def chance_note(y: Sequence, metric: str) -> str:
    """Chance level of a score on ``y`` and the accuracy a classifier must beat (binomial,
    p < 0.05, Combrisson & Jerbi 2015)."""
    from scipy.stats import binom

    n, k = len(y), max(1, len(set(map(str, y))))
    threshold = binom.ppf(0.95, n, 1.0 / k) / n if n else float("nan")
    chance = "0.50 (ROC AUC)" if metric == "roc_auc" else f"{1.0 / k:.2f}"
    return (f"Chance: {chance}; with {n} trials an accuracy above {threshold:.2f} is better than "
            "chance (p < 0.05).")


def make_config(name: str, trials: Trials, band: tuple[float, float],
                selection: Sequence[str] | None = None, dropped: list[str] | None = None):
    """DecoderConfig for ``name`` on ``trials``; a user selection becomes overrides of the selector.

    The selector needs the frequency grid of its spectral step to read ``"C4:13-16"``: it is
    taken from the step fitted on one window. Selected items outside that grid (the Features
    page shows a wider band than the pipelines use) are left out and appended to ``dropped``;
    if none is left, the pipeline keeps its own top-10 selection.
    """
    from neurodeck.decoders.errors import DecoderError
    from neurodeck.decoders.pipelines import DecoderConfig
    from neurodeck.decoders.selection import parse_selection

    cfg = DecoderConfig(pipeline=name, band=band, tmin=trials.tmin, tmax=trials.tmax,
                        events=trials.mapping, pad=trials.pad)
    if selection and name in _SPECTRAL:
        step, _ = _SPECTRAL[name]
        pipe = cfg.build(trials.sfreq, trials.ch_names)
        pipe[:2].fit(trials.X[:2])
        freqs = [float(f) for f in pipe.named_steps[step].freqs_]
        keep = []
        for item in selection:
            try:
                parse_selection([item], trials.ch_names, freqs)
            except DecoderError:
                if dropped is not None:
                    dropped.append(f"{name}: {item}")
                continue
            keep.append(str(item))
        if keep:
            cfg = dataclasses.replace(cfg, overrides=(("select__selection", keep),
                                                      ("select__freqs", freqs)))
    return cfg


def run_cross_validation(trials: Trials, names: Sequence[str], *, band=(8.0, 32.0), cv: int = 5,
                         seed: int = 42, selection: dict | None = None,
                         progress: Callable[[int, int, str], None] | None = None) -> TrainResult:
    """Cross-validate the named pipelines on the same shuffled stratified folds."""
    from neurodeck.decoders.evaluation import cross_validate_pipelines

    if not names:
        raise ValueError("no pipeline chosen; tick at least one")
    selection = selection or {}
    configs = {}
    dropped: list[str] = []
    for n in names:
        kind = _SPECTRAL.get(n, (None, None))[1]
        configs[n] = make_config(n, trials, band, selection.get(kind) if kind else None, dropped)
    _, counts = np.unique(trials.y, return_counts=True)
    if counts.min() < 3:
        raise ValueError(f"a class has only {counts.min()} usable trial(s); cross-validation needs "
                         "at least 3 per class (record more trials)")
    notes = []
    if counts.min() < cv:
        notes.append(f"{cv} folds asked, {counts.min()} used (the smallest class has "
                     f"{counts.min()} trials)")
        cv = int(counts.min())
    total = len(names) * cv
    done = [0]

    def step(name: str, what: str, k: int) -> None:
        done[0] += 1
        if progress is not None:
            progress(done[0], total, f"{name}: fold {k + 1}/{cv} done")

    results = []
    for n in names:
        pipe = configs[n].build(trials.sfreq, trials.ch_names, seed=seed)
        if progress is not None:
            progress(done[0], total, f"{n}: fitting fold 1/{cv}")
        results += cross_validate_pipelines(trials.X, trials.y, {n: pipe}, cv=cv, seed=seed,
                                            dataset=", ".join(Path(s).name for s in trials.sources),
                                            progress=step)
    return TrainResult(results, configs, trials, cv, seed, dropped=dropped, notes=notes)


def confusion(result: TrainResult, name: str) -> tuple[list[str], np.ndarray]:
    """Out-of-fold confusion matrix of ``name`` on the folds of the cross-validation."""
    from sklearn.metrics import confusion_matrix
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    tr = result.trials
    pipe = result.configs[name].build(tr.sfreq, tr.ch_names, seed=result.seed)
    folds = StratifiedKFold(result.cv, shuffle=True, random_state=result.seed)
    pred = cross_val_predict(pipe, tr.X, tr.y, cv=folds)
    labels = tr.labels
    return labels, confusion_matrix(tr.y, pred, labels=labels)


def fit_and_save(result: TrainResult, name: str, out_dir: Path) -> Path:
    """Fit ``name`` on every trial and write the bundle (ONNX + JSON) into ``out_dir``."""
    from neurodeck.decoders.onnx import save_bundle

    tr = result.trials
    cfg = result.configs[name]
    pipe = cfg.build(tr.sfreq, tr.ch_names, seed=result.seed).fit(tr.X, tr.y)
    r = result.result(name)
    scores = {"metric": r.metric, "cv_score": r.score, "fold_scores": r.fold_scores,
              "n_trials": r.n_trials, "n_folds": r.n_folds, "seed": r.seed,
              "recordings": [Path(s).name for s in tr.sources]}
    if name in result.confusion:
        labels, cm = result.confusion[name]
        scores["confusion"] = {"labels": labels, "matrix": cm.tolist()}
    return save_bundle(pipe, cfg, out_dir, ch_names=tr.ch_names, sfreq=tr.sfreq,
                       X_check=tr.X[: min(8, len(tr.X))], scores=scores)


def _r2_figure(r2: np.ndarray, freqs: np.ndarray, ch_names: Sequence[str], title: str):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 9), dpi=90)
    ax = fig.add_subplot(111)
    lim = float(np.max(np.abs(r2))) or 1e-3
    im = ax.imshow(r2, aspect="auto", cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest",
                   extent=(freqs[0] - 0.5, freqs[-1] + 0.5, len(ch_names) - 0.5, -0.5))
    ax.set_yticks(range(len(ch_names)))
    ax.set_yticklabels(ch_names, fontsize=6)
    ax.set_xlabel("frequency (Hz)")
    ax.set_title(title)
    fig.colorbar(im, ax=ax, label="signed R\u00b2")
    fig.tight_layout()
    return fig


def _spectra_figure(maps, channels: Sequence[str]):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 3.2), dpi=90)
    chans = [c for c in channels if c in maps.ch_names] or maps.ch_names[:3]
    for k, ch in enumerate(chans):
        ax = fig.add_subplot(1, len(chans), k + 1)
        i = maps.ch_names.index(ch)
        for lab in maps.labels:
            ax.plot(maps.freqs, maps.erds(lab)[i], label=lab)
        ax.axhline(0, color="0.5", lw=0.8)
        ax.set_title(ch)
        ax.set_xlabel("Hz")
        if k == 0:
            ax.set_ylabel("ERD/ERS (%)")
            ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def _confusion_figure(labels: Sequence[str], cm: np.ndarray, title: str):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4, 3.6), dpi=90)
    ax = fig.add_subplot(111)
    ax.imshow(cm, cmap="Blues")
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            ax.text(j, i, str(cm[i, j]), ha="center", va="center",
                    color="white" if cm[i, j] > cm.max() / 2 else "black")
    ax.set_xticks(range(len(labels)), labels, rotation=20)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def scores_html(result: TrainResult) -> str:
    rows = []
    for r in sorted(result.results, key=lambda r: -r.score):
        rows.append(f"<tr><td>{html.escape(r.pipeline)}</td><td>{r.score:.3f}</td>"
                    f"<td>{np.std(r.fold_scores):.3f}</td><td>{r.fit_time_s:.2f}</td>"
                    f"<td>{r.n_trials}</td><td>{r.n_folds}</td></tr>")
    metric = result.results[0].metric if result.results else ""
    return (f"<table class='table table-sm'><tr><th>pipeline</th><th>{metric}</th><th>std</th>"
            "<th>fit time (s, all folds)</th><th>trials</th><th>folds</th></tr>" + "".join(rows)
            + "</table>")


def write_report(result: TrainResult, path: Path, maps=None, subject: str = "") -> Path:
    """HTML calibration report (mne.Report): R² maps, ERD/ERS spectra, scores, confusion."""
    import mne

    from neurodeck.app.ui.features_page import compute_feature_maps

    if maps is None:
        maps = compute_feature_maps(result.trials)
    report = mne.Report(title=f"neurodeck calibration report {subject}".strip(), verbose="error")
    tr = result.trials
    counts = ", ".join(f"{int(np.sum(tr.y == lab))} {lab}" for lab in tr.labels)
    report.add_html(
        f"<p>Recordings: {html.escape(', '.join(Path(s).name for s in tr.sources))}<br>"
        f"Trials: {counts}; {len(tr.ch_names)} channels at {tr.sfreq:g} Hz; window "
        f"{tr.tmin:g}-{tr.tmax:g} s after the cue; {result.cv}-fold shuffled stratified CV "
        f"(seed {result.seed}).<br>Created {_dt.datetime.now():%Y-%m-%d %H:%M}.</p>",
        title="Data", section="Summary")
    report.add_html(scores_html(result), title="Cross-validation scores", section="Summary")
    report.add_figure(_r2_figure(maps.r2("psd"), maps.freqs, maps.ch_names, "R\u00b2 map, PSD"),
                      title="R\u00b2 map (PSD)", section="Features")
    report.add_figure(_r2_figure(maps.r2("ns"), maps.ns_freqs, maps.ch_names,
                                 "R\u00b2 map, node strength (imag. coherence)"),
                      title="R\u00b2 map (connectivity node strength)", section="Features")
    report.add_figure(_spectra_figure(maps, ["C3", "Cz", "C4"]), title="ERD/ERS",
                      section="Features")
    for name, (labels, cm) in result.confusion.items():
        report.add_figure(_confusion_figure(labels, cm, name), title=f"Confusion matrix: {name}",
                          section="Scores")
    path.parent.mkdir(parents=True, exist_ok=True)
    report.save(str(path), open_browser=False, overwrite=True, verbose="error")
    return path


# ------------------------------------------------------------------------------- the page
class TrainPage(Page):
    """Choose pipelines, cross-validate them in the background, compare, save, report."""

    title = "Train"
    subtitle = ("Compare decoders on the calibration trials with cross-validation, then save the "
                "best one (or the one you choose) as a model for the Online page.")

    cv_finished = pyqtSignal()
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
        g.addWidget(QLabel("Events"), 1, 0)
        g.addWidget(self.mapping_edit, 1, 1, 1, 3)
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
        g.setRowStretch(7, 1)
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
        run.addWidget(self.run_button)
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
        cbox = QGroupBox("Confusion matrix (out-of-fold)")
        cl = QVBoxLayout(cbox)
        self.cm_title = QLabel("")
        self.cm_table = QTableWidget(0, 0)
        self.cm_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.cm_table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.cm_table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        cl.addWidget(self.cm_title)
        cl.addWidget(self.cm_table, 1)
        bottom.addWidget(cbox, 2)
        self.body.addLayout(bottom, 2)

        save = QHBoxLayout()
        self.save_button = big_button("Save selected model")
        self.save_button.clicked.connect(lambda: self.save_model())
        self.report_button = QPushButton("Export HTML report")
        self.report_button.clicked.connect(lambda: self.export_report())
        self.saved_label = QLabel("")
        self.saved_label.setWordWrap(True)
        self.saved_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        save.addWidget(self.save_button)
        save.addWidget(self.report_button)
        save.addWidget(self.saved_label, 1)
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
            sel = {k: saved.get(k) for k in ("psd", "ns")} if saved else {}
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
        # a Features page selection was made on all trials: those scores are optimistic
        leaky = {n for n in names if n in _SPECTRAL and selection.get(_SPECTRAL[n][1])}

        def work(task: TaskHandle) -> TrainResult:
            task.progress(0, 1, "loading recordings")
            trials = load_trials(recs, mapping, tmin=tmin, tmax=tmax)
            task.check()

            def prog(done, total, text):
                if task.cancelled:
                    raise Cancelled("cancelled")
                task.progress(done, total, text)

            result = run_cross_validation(trials, names, band=band, cv=cv, selection=selection,
                                          progress=prog)
            result.optimistic = leaky
            best = honest_best(result)
            task.progress(1, 1, f"confusion matrix of {best}")
            result.confusion[best] = confusion(result, best)
            return result

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
        self.cancel_button.setEnabled(busy and self.jobs.name == "train-cv")
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
        leaky = getattr(result, "optimistic", set())
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
            return fit_and_save(result, name, out)

        def done(path):
            self._job_done(f"Saved {name}.")
            self.last_model = Path(path)
            self.saved_label.setText(f"Model saved: {path}")
            if self.context is not None:
                self.context.report_info(f"Model {name} saved to {path}")
            self.model_saved.emit(str(path))

        return self.jobs.start(work, on_done=done, on_error=self._on_error, name="save-model")

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
            return write_report(result, out, subject=subject)

        def done(p):
            self._job_done("Report written.")
            self.last_report = Path(p)
            self.saved_label.setText(f"Report saved: {p}")
            if self.context is not None:
                self.context.report_info(f"Report saved to {p}")
            self.report_saved.emit(str(p))

        return self.jobs.start(work, on_done=done, on_error=self._on_error, name="report")

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

