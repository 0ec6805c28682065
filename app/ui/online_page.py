"""Online page: run a saved model live on the connected EEG stream, with feedback and self-scoring.

A model bundle (ONNX + JSON, from the Train page) is loaded into a
:class:`decoders.online.OnlineDecoder`, or a continuous (Kalman / DKF) bundle into a
:class:`decoders.continuous.ContinuousDecoder`; *Start* runs an :class:`app.engine.OnlineEngine`
on the app's EEG inlet (live amplifier, simulator, or a file from the Replay/Connect page), as
``neurodeck decode`` does. Every decision is published on an LSL stream (name shown), drives the
feedback (Graz bar of two or N classes, or the cursor task; a continuous model's filtered state
moves the cursor), and - when cue markers arrive on the marker stream - is scored by
:class:`app.feedback_model.CuedRunScorer` (accuracy, time to decision, live; the trial rule of
:func:`decoders.evaluation.score_trial`, as offline). With a session the run is recorded (EEG +
markers + decisions) into ``recordings/online-runNN``. The cursor's DKF fitted on a classifier's
outputs can be saved as a continuous bundle; an adaptive model's unsupervised adaptation (its
re-centering reference) is shown live.

Times: decisions and markers carry LSL timestamps. A replay at speed ``s`` stamps file time
divided by ``s``, so feedback and scoring work on ``timestamp * s`` ("stream seconds").
"""
from __future__ import annotations

import logging
import math
import uuid
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import QObject, Qt, QTimer, pyqtSignal
from PyQt6.QtGui import QColor, QKeySequence, QShortcut
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
    QMessageBox,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QSplitter,
    QStyle,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from neurodeck.app.feedback_model import (
    CuedRunScorer,
    CursorConfig,
    CursorTask,
    OutputSmoother,
    VelocityDKF,
    adaptation_reference,
    adaptation_state,
    class_directions,
    cue_velocity,
    velocity_from_probs,
)
from neurodeck.app.protocol import (
    CalibrationProtocol,
    MarkerSink,
    Phase,
    ProtocolConfig,
    ProtocolError,
    SignalGuard,
    SimulatorCueSink,
)
from neurodeck.app.ui.feedback import CursorView, GrazBar
from neurodeck.app.ui.participant import (
    ParticipantScreen,
    ScreenChooser,
    open_shared_screen,
    shared_screen,
)
from neurodeck.app.ui.qt_models import ProtocolRunner, error_text
from neurodeck.app.ui.widgets import Page, StateBadge, big_button
from neurodeck.app.ui.workers import JobRunner

logger = logging.getLogger(__name__)

#: lines of engine statistics shown under the controls (their height is reserved from the start)
STATS_LINES = 3

ENGINE_COLOURS = {"idle": "idle", "waiting for data": "connecting", "running": "connected",
                  "paused (stream interrupted)": "stalled", "stopped": "stopped", "error": "lost"}


# ------------------------------------------------------------------------------- Qt-free part
def cursor_targets_for(labels: list[str], dims: int) -> dict[str, int]:
    """Class label -> cursor target index (1-D: left 0, right 1; 2-D: one target per class)."""
    if dims == 1:
        return {"left_hand": 0, "right_hand": 1}
    return {str(lab): i for i, lab in enumerate(labels)}


def fit_cursor_dkf(model_dir: str | Path, recording: str | Path, dims: int = 1,
                   trial_s: float = 4.0, step_s: float = 0.0625, progress=None,
                   cancelled=None) -> tuple[VelocityDKF, dict]:
    """Fit the velocity DKF on the model's pseudo-online outputs over a cued recording.

    The intended velocity of a window points to its cued class's target (the cue whose trial
    contains the window's signal part; :func:`app.feedback_model.cue_velocity`), 0 outside trials.
    """
    from neurodeck.app.ui.workers import Cancelled
    from neurodeck.app.workflow.replay import evaluate_recording

    def report(done: int, total: int, text: str) -> None:
        if cancelled is not None and cancelled():
            raise Cancelled("cancelled")
        if progress is not None:
            progress(done, total, text)

    out = evaluate_recording(model_dir, recording, trial_s=trial_s, step_s=step_s,
                             progress=report)
    res, sfreq, dec = out["result"], out["sfreq"], out["decoder"]
    sig = dec.window_samples - dec.pad_samples
    starts = res.ends - sig
    cue = np.full(len(res.ends), None, dtype=object)
    for onset, lab in zip(out["onsets"], out["labels"]):
        inside = (starts >= onset) & (res.ends <= onset + int(round(trial_s * sfreq)))
        cue[inside] = lab
    Z = cue_velocity(list(cue), dims=dims, classes=dec.labels)
    dkf = VelocityDKF(random_state=0).fit(res.outputs, Z)
    ok = np.isfinite(res.outputs).all(axis=1)
    return dkf, {"n_steps": len(Z), "file": Path(recording).name, "model": str(model_dir),
                 "dims": dims, "step_s": step_s, "X_timing": res.outputs[ok][:500]}


def save_cursor_dkf(dkf: VelocityDKF, info: dict, out: str | Path) -> Path:
    """Save a cursor DKF fitted by :func:`fit_cursor_dkf` as a continuous bundle.

    Its features are the classifier's outputs (the classifier bundle is copied into it), its
    targets ``vx`` (and ``vy`` in 2-D), its hop the step it was fitted at; the Online page (and
    ``neurodeck decode``) load it like any continuous bundle.
    """
    from neurodeck.decoders.continuous import FeatureStage, save_continuous_bundle
    from neurodeck.decoders.online import OnlineDecoder

    clf = OnlineDecoder(info["model"])
    meta = clf.bundle.meta
    stage = FeatureStage("classifier", tuple(clf.ch_names), clf.sfreq,
                         float(meta.get("window_s", 2.0)), float(meta.get("pad_s", 0.0)),
                         names=tuple(clf.labels))
    return save_continuous_bundle(
        dkf.dkf, out, pipeline="dkf", stage=stage, targets=["vx", "vy"][: info["dims"]],
        hop_s=float(info["step_s"]), classifier=info["model"], X_timing=info.get("X_timing"),
        scores={"fitted_on": info["file"], "n_rows": int(info["n_steps"]),
                "source": "Online page cursor DKF (classifier outputs)"})


# ------------------------------------------------------------------------------- bridges
class EngineBridge(QObject):
    """Re-emits the engine's and the marker inlet's callbacks (other threads) as Qt signals."""

    decision = pyqtSignal(object)
    state = pyqtSignal(str)
    marker = pyqtSignal(float, str)


# ------------------------------------------------------------------------------- the page
class OnlinePage(Page):
    """Load a model, decode the live stream, show feedback, score cued runs, publish, record."""

    title = "Online"
    subtitle = ("Decode the connected EEG stream with a saved model: Graz bar or cursor feedback, "
                "decisions published on LSL, cued runs scored live, the run recorded.")

    model_loaded = pyqtSignal(str)
    run_started = pyqtSignal()
    run_stopped = pyqtSignal()
    trial_scored = pyqtSignal(object)
    dkf_ready = pyqtSignal()
    dkf_saved = pyqtSignal(str)

    def __init__(self, context=None, parent: QWidget | None = None):
        super().__init__(context, parent)
        self.jobs = JobRunner(self)
        self.decoder: Any = None
        self.model_path: Path | None = None
        self.engine: Any = None
        self.recorder: Any = None
        self.recording_path: Path | None = None
        self.last_saved: Path | None = None
        self.scorer: CuedRunScorer | None = None
        self.smoother = OutputSmoother(0.5)
        self.task: CursorTask | None = None
        self.dkf: VelocityDKF | None = None
        self._dkf_info: dict | None = None
        #: the adaptation reference when the run started (None: the model does not adapt)
        self._ref0: np.ndarray | None = None
        #: the last adaptation state shown (None: the model does not adapt)
        self.adaptation = None
        #: (stream time, velocity) that moved the cursor at each step of the task
        self.cursor_trace: deque = deque(maxlen=20000)
        self.decisions: list = []
        self.n_valid = 0
        self._run_id = 0
        self._marker_cb = None
        self._marker_inlet = None
        self._last_t: float | None = None
        self._next_trial_at: float | None = None
        self._flash_until = 0.0
        self._history: deque = deque(maxlen=600)
        self.bridge = EngineBridge(self)
        self.bridge.decision.connect(self._on_decision)
        self.bridge.state.connect(self._on_engine_state)
        self.bridge.marker.connect(self._on_marker)

        top = QHBoxLayout()
        # --- model
        mbox = QGroupBox("Model")
        ml = QGridLayout(mbox)
        self.model_box = QComboBox()
        self.model_box.setMinimumContentsLength(18)
        self.refresh_button = QPushButton("\u21bb")
        self.refresh_button.setMaximumWidth(40)
        self.refresh_button.setToolTip("List the session's models again")
        self.refresh_button.clicked.connect(self.refresh_models)
        browse = QPushButton("Browse\u2026")
        browse.clicked.connect(self._browse_model)
        self.load_button = QPushButton("Load")
        self.load_button.clicked.connect(lambda: self.load_model())
        self.model_info = QLabel("No model loaded.")
        self.model_info.setWordWrap(True)
        self.model_info.setStyleSheet("color: #37474f;")
        ml.addWidget(self.model_box, 0, 0)
        ml.addWidget(self.refresh_button, 0, 1)
        ml.addWidget(browse, 0, 2)
        ml.addWidget(self.load_button, 0, 3)
        ml.addWidget(self.model_info, 1, 0, 1, 4)
        self.adapt_label = QLabel("")
        self.adapt_label.setWordWrap(True)
        self.adapt_label.setToolTip("Unsupervised online adaptation: the re-centering reference "
                                    "(a running Riemannian mean of the incoming windows, no labels) "
                                    "and how far it has moved from the model's own")
        ml.addWidget(self.adapt_label, 2, 0, 1, 4)
        ml.setColumnStretch(0, 1)
        top.addWidget(mbox, 3)

        # --- run
        rbox = QGroupBox("Run")
        rl = QGridLayout(rbox)
        self.stream_label = QLabel("")
        self.stream_label.setTextFormat(Qt.TextFormat.PlainText)  # names come from the network
        self.stream_label.setWordWrap(True)
        self.hop = QDoubleSpinBox()
        self.hop.setRange(0.02, 2.0)
        self.hop.setDecimals(4)
        self.hop.setValue(0.0625)
        self.hop.setSuffix(" s")
        self.hop.setToolTip("Seconds between decisions")
        self.tau = QDoubleSpinBox()
        self.tau.setRange(0.0, 5.0)
        self.tau.setValue(0.5)
        self.tau.setSuffix(" s")
        self.tau.setToolTip("Smoothing time constant of the feedback")
        self.trial_len = QDoubleSpinBox()
        self.trial_len.setRange(0.5, 30.0)
        self.trial_len.setValue(4.0)
        self.trial_len.setSuffix(" s")
        self.trial_len.setToolTip("Imagery period after a cue (scoring window)")
        self.record = QCheckBox("record the run into the session")
        self.record.setChecked(True)
        self.start_button = big_button("Start")
        self.start_button.clicked.connect(self.start)
        self.stop_button = big_button("Stop", danger=True)
        self.stop_button.clicked.connect(self.stop)
        self.badge = StateBadge("engine: ")
        self.badge.set_state("idle")
        rl.addWidget(self.stream_label, 0, 0, 1, 6)
        rl.addWidget(QLabel("hop"), 1, 0)
        rl.addWidget(self.hop, 1, 1)
        rl.addWidget(QLabel("smoothing"), 1, 2)
        rl.addWidget(self.tau, 1, 3)
        rl.addWidget(QLabel("trial"), 1, 4)
        rl.addWidget(self.trial_len, 1, 5)
        rl.addWidget(self.start_button, 3, 0, 1, 2)
        rl.addWidget(self.stop_button, 3, 2, 1, 2)
        rl.addWidget(self.badge, 3, 4, 1, 2)
        self.participant_button = QPushButton("Participant screen")
        self.participant_button.setToolTip("Cue and feedback bar only, full screen on the chosen "
                                           "monitor (F11 toggles full screen there, Esc leaves it)")
        self.participant_button.clicked.connect(self.show_participant)
        f11 = QShortcut(QKeySequence("F11"), self, activated=self.show_participant)
        f11.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self.screen_box = ScreenChooser()
        rl.addWidget(self.record, 2, 0, 1, 6)
        rl.addWidget(self.participant_button, 4, 0, 1, 4)
        rl.addWidget(self.screen_box, 4, 4, 1, 2)
        self.cued = QCheckBox("cued run (our Graz protocol)")
        self.cued.setToolTip("Our own cues, markers on LSL and in the recording, feedback during "
                             "imagery, live scoring; off: an external marker stream cues (if any). "
                             "Space pauses/resumes, Esc stops.")
        self.cued_trials = QSpinBox()
        self.cued_trials.setRange(1, 200)
        self.cued_trials.setValue(10)
        self.cued_trials.setSuffix(" / class")
        rl.addWidget(self.cued, 5, 0, 1, 4)
        self.cued.toggled.connect(lambda _b: self._on_connection())
        rl.addWidget(self.cued_trials, 5, 4, 1, 2)
        for key, slot in (("Space", self.toggle_cued_pause), ("Escape", self._stop_asked)):
            sc = QShortcut(QKeySequence(key), self, activated=slot)
            sc.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        #: the cued run's protocol driver, guard and marker outlet (None without a cued run)
        self.runner: ProtocolRunner | None = None
        self.guard: SignalGuard | None = None
        self.cue_outlet: Any = None
        self._phase: Phase | None = None
        self._last_event: Any = None
        #: asked before Esc stops a run; tests replace it
        self.confirm_stop = lambda: QMessageBox.question(
            self, "Stop the run?", "Stop the online run now? Scored trials are kept."
        ) == QMessageBox.StandardButton.Yes
        #: the participant screen while it is open
        self.participant: ParticipantScreen | None = None
        top.addWidget(rbox, 4)
        self.body.addLayout(top)

        # the engine's statistics: room for STATS_LINES lines reserved from the start, each line
        # elided, so Start does not push the bar and the table down (clicks land where aimed)
        self.stats_label = QLabel("")
        self.stats_label.setTextFormat(Qt.TextFormat.PlainText)
        self.stats_label.setStyleSheet("color: #37474f;")
        self.stats_label.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.stats_label.setFixedHeight(
            STATS_LINES * self.stats_label.fontMetrics().lineSpacing() + 4)
        self.stats_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self.body.addWidget(self.stats_label)

        # --- feedback | scoring
        split = QSplitter()
        self.tabs = QTabWidget()
        self.graz = GrazBar()
        self.tabs.addTab(self.graz, "Graz bar")
        cw = QWidget()
        cl = QVBoxLayout(cw)
        cl.setContentsMargins(4, 4, 4, 4)
        crow = QHBoxLayout()
        self.dims_box = QComboBox()
        self.dims_box.addItem("1-D (left / right)", 1)
        self.dims_box.addItem("2-D (targets on a circle)", 2)
        self.dims_box.currentIndexChanged.connect(lambda _: self.reset_cursor())
        self.driver_box = QComboBox()
        self.driver_box.addItem("classifier output (smoothed)", "classifier")
        self.driver_box.addItem("Discriminative Kalman Filter", "dkf")
        self.speed = QDoubleSpinBox()
        self.speed.setRange(0.05, 3.0)
        self.speed.setValue(0.5)
        self.speed.setSuffix(" /s")
        self.speed.setToolTip("Workspace widths per second at full output")
        self.speed.valueChanged.connect(lambda _: self.reset_cursor())
        self.fit_dkf_button = QPushButton("Fit DKF\u2026")
        self.fit_dkf_button.setToolTip("Fit the DKF on the model's outputs over a cued recording")
        self.fit_dkf_button.clicked.connect(lambda: self.fit_dkf())
        self.save_dkf_button = QPushButton("Save DKF\u2026")
        self.save_dkf_button.setToolTip("Save the fitted DKF as a continuous model bundle (load it "
                                        "here later, or run it with `neurodeck decode`)")
        self.save_dkf_button.clicked.connect(lambda: self.save_dkf())
        # two rows: in one, this tab alone asked for 843 px once shown, and the splitter gave the
        # score table what was left of a 1280 px window (203 px, its headers cut)
        crow.addWidget(self.dims_box)
        crow.addWidget(QLabel("driven by"))
        crow.addWidget(self.driver_box)
        crow.addStretch(1)
        crow2 = QHBoxLayout()
        crow2.addWidget(self.fit_dkf_button)
        crow2.addWidget(self.save_dkf_button)
        crow2.addWidget(QLabel("speed"))
        crow2.addWidget(self.speed)
        crow2.addStretch(1)
        cl.addLayout(crow)
        cl.addLayout(crow2)
        self.cursor_view = CursorView()
        cl.addWidget(self.cursor_view, 1)
        self.cursor_label = QLabel("")
        self.cursor_label.setWordWrap(True)  # hits, misses, DKF, velocity: may be long
        cl.addWidget(self.cursor_label)
        self.tabs.addTab(cw, "Cursor task")
        self.tabs.currentChanged.connect(lambda _i: self._mirror())
        split.addWidget(self.tabs)

        sw = QWidget()
        sl = QVBoxLayout(sw)
        sl.setContentsMargins(0, 0, 0, 0)
        self.summary_label = QLabel("Cued trials are scored when cue markers arrive.")
        self.summary_label.setStyleSheet("font-size: 12pt; font-weight: 600; color: #1a237e;")
        self.summary_label.setWordWrap(True)
        self.summary_label.ensurePolished()  # its height is fixed: new scores move nothing
        # three lines: the score, the time to decision and trials left unscored (1280 px wide)
        self.summary_label.setFixedHeight(3 * self.summary_label.fontMetrics().lineSpacing() + 4)
        sl.addWidget(self.summary_label)
        self.trials_table = QTableWidget(0, 4)
        self.trials_table.setHorizontalHeaderLabels(["cue", "decoded", "correct",
                                                     "time to decision"])
        self.trials_table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.trials_table.horizontalHeader().setSectionResizeMode(
            3, QHeaderView.ResizeMode.ResizeToContents)  # the longest header stays readable
        self.trials_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.trials_table.verticalHeader().setVisible(False)
        self.trials_table.setMinimumWidth(self._table_width(("right_hand", "right_hand", "yes",
                                                             "10.00 s")))
        sl.addWidget(self.trials_table, 1)
        self.prob_plot = pg.PlotWidget(background="w")
        self.prob_plot.setMenuEnabled(False)
        self.prob_plot.hideButtons()
        self.prob_plot.setMouseEnabled(x=False, y=False)
        self.prob_plot.setYRange(0, 1)
        self.prob_plot.setLabel("left", "p (smoothed)")
        self.prob_plot.setLabel("bottom", "stream time (s)")
        # top-left: over the oldest seconds, never over the newest decisions at the right
        self.prob_plot.addLegend(offset=(10, 5), brush=pg.mkBrush(255, 255, 255, 230),
                                 pen=pg.mkPen("#b0bec5"), labelTextColor="#263238")
        self.prob_curves: list = []
        sl.addWidget(self.prob_plot, 1)
        split.addWidget(sw)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        split.setChildrenCollapsible(False)
        split.setSizes([600, 400])  # 3:2 from the start (else the size hints decide)
        self.body.addWidget(split, 1)

        self._timer = QTimer(self)
        self._timer.setInterval(250)
        self._timer.timeout.connect(self._tick)
        self._timer.start()
        self.jobs.busy_changed.connect(lambda _b: self._update_buttons())
        if context is not None:
            context.session_changed.connect(lambda _s: self.refresh_models())
            context.streams.connection_changed.connect(self._on_connection)
            context.streams.state_changed.connect(self._on_stream_state)
        self.refresh_models()
        self.reset_cursor()
        self._on_connection()

    def _table_width(self, samples: tuple[str, ...]) -> int:
        """Width at which the score table shows every header and a cell like ``samples`` (e.g.
        "right_hand") in full, with a vertical scroll bar: the first columns share the width
        equally, the last one is as wide as its contents."""
        table = self.trials_table
        header = table.horizontalHeader()
        table.ensurePolished()
        margin = 2 * header.style().pixelMetric(QStyle.PixelMetric.PM_HeaderMargin, None, header)
        cells = table.fontMetrics()
        need = [max(header.fontMetrics().horizontalAdvance(table.horizontalHeaderItem(i).text()),
                    cells.horizontalAdvance(sample)) + margin + 8
                for i, sample in enumerate(samples)]
        bar = table.style().pixelMetric(QStyle.PixelMetric.PM_ScrollBarExtent, None, table)
        return (len(need) - 1) * max(need[:-1]) + need[-1] + bar + 2 * table.frameWidth() + 4

    # ------------------------------------------------------------------ model
    def refresh_models(self) -> None:
        current = self.model_box.currentData()
        self.model_box.clear()
        s = getattr(self.context, "session", None)
        if s is not None:
            for p in reversed(s.models()):
                if (p / "model.json").is_file():
                    self.model_box.addItem(p.name, str(p))
        if self.model_path is not None and self.model_box.findData(str(self.model_path)) < 0:
            self.model_box.addItem(self.model_path.name, str(self.model_path))
        if current is not None and self.model_box.findData(current) >= 0:
            self.model_box.setCurrentIndex(self.model_box.findData(current))

    def showEvent(self, ev) -> None:  # noqa: N802 (Qt name)
        self.refresh_models()
        super().showEvent(ev)
        # Stop as tall as Start: their styles (the window's style sheet, known once shown) differ
        self.start_button.ensurePolished()
        self.stop_button.setMinimumHeight(self.start_button.sizeHint().height())

    def _browse_model(self) -> None:
        s = getattr(self.context, "session", None)
        path = QFileDialog.getExistingDirectory(self, "Model folder",
                                                str(s.models_dir) if s is not None else "")
        if path:
            self.load_model(path)

    def load_model(self, path: str | Path | None = None) -> bool:
        """Load a bundle (background thread: onnxruntime session + warm-up)."""
        if path is None:
            path = self.model_box.currentData()
        if not path:
            self.report_error("No model: train and save one on the Train page, or browse for a "
                              "model folder.")
            return False
        if self.engine is not None:
            self.report_error("Stop the run before loading another model.")
            return False
        path = Path(path)

        def work(task):
            from neurodeck.decoders.continuous import ContinuousDecoder, is_continuous_bundle
            from neurodeck.decoders.online import OnlineDecoder

            if not is_continuous_bundle(path):
                return OnlineDecoder(path)
            decoder = ContinuousDecoder(path)
            _ = decoder.window_samples  # one trained on a feature table says it cannot decode
            return decoder

        def done(decoder):
            self.decoder, self.model_path = decoder, path
            self.dkf = self._dkf_info = None
            self._show_model_kind()
            self._ref0 = None
            self._show_adaptation()
            self.refresh_models()
            self.model_box.setCurrentIndex(self.model_box.findData(str(path)))
            self._setup_prob_plot()
            self.reset_cursor()
            self._update_buttons()
            self.model_loaded.emit(str(path))

        return self.jobs.start(work, on_done=done, name="load-model",
                               on_error=lambda m: self.report_error(f"Loading the model: {m}"))

    @property
    def continuous(self) -> bool:
        """True when the loaded model is a continuous (Kalman / DKF) bundle: it drives the cursor."""
        return self.decoder is not None and self.decoder.bundle.meta.get("kind") == "continuous"

    def _show_model_kind(self) -> None:
        """Model line, hop, driver and feedback of the loaded model: a classifier (Graz bar of its
        classes) or a continuous model (its own hop; it drives the cursor)."""
        cont = self.continuous
        i = self.driver_box.findData("model")
        if cont and i < 0:
            self.driver_box.addItem("continuous model (its filtered state)", "model")
        elif not cont and i >= 0:
            self.driver_box.removeItem(i)
        self.driver_box.setCurrentIndex(self.driver_box.findData("model" if cont else "classifier"))
        self.driver_box.setEnabled(not cont)
        self.hop.setEnabled(not cont)
        self.cued.setEnabled(not cont)
        dec = self.decoder
        meta = dec.bundle.meta
        if not cont:
            sc = meta.get("training_scores") or {}
            score = sc.get("cv_score")
            self.model_info.setText(
                f"{meta.get('pipeline', '?')} \u00b7 classes {', '.join(dec.labels)} \u00b7 "
                f"{len(dec.ch_names)} ch @ {dec.sfreq:g} Hz \u00b7 window "
                f"{meta.get('window_s', float('nan')):g} s (+{meta.get('pad_s', 0):g} s padding)"
                + (f" \u00b7 CV {sc.get('metric', 'score')} {score:.3f}" if score is not None
                   else ""))
            labels = dec.labels
            neg, pos = ("left_hand", "right_hand") if {"left_hand", "right_hand"} <= set(labels) \
                else (labels[0], labels[1])
            self.graz.set_classes(labels, neg, pos)  # three or more classes: one bar each
            return
        self.hop.setValue(float(meta["hop_s"]))  # the filter's time step
        self.cued.setChecked(False)
        self.dims_box.setCurrentIndex(self.dims_box.findData(min(2, len(dec.targets))))
        sc = meta.get("scores") or {}
        corr = sc.get("train_corr")
        self.model_info.setText(
            f"{meta.get('pipeline', '?')} (continuous) \u00b7 state {', '.join(dec.targets)} "
            f"\u00b7 {dec.stage.kind} features of {len(dec.ch_names)} ch @ {dec.sfreq:g} Hz "
            f"\u00b7 hop {meta['hop_s']:g} s \u00b7 f(x), Q(x) on {meta.get('backend', '?')}"
            + (f" \u00b7 training corr {corr:.2f}" if corr is not None else ""))
        self.graz.set_classes([])
        self.tabs.setCurrentIndex(1)  # the cursor task

    def _show_adaptation(self) -> None:
        """The model's unsupervised adaptation: on/off and how far its reference has moved."""
        state = None if self.decoder is None or self.continuous else \
            adaptation_state(self.decoder.bundle, self._ref0)
        self.adaptation = state
        self.adapt_label.setText("" if self.decoder is None or self.continuous else
                                 "Adaptation: none (this model has no adaptive step)"
                                 if state is None else state.line())
        self.adapt_label.setStyleSheet("color: #2e7d32;" if state is not None and state.adapting
                                       else "color: #37474f;")

    def _setup_prob_plot(self) -> None:
        self.prob_plot.clear()
        self.prob_curves = []
        colours = ["#1565c0", "#c62828", "#2e7d32", "#6a1b9a"]
        shown = self.decoder.targets if self.continuous else self.decoder.labels
        if self.continuous:
            self.prob_plot.enableAutoRange(axis="y")
            self.prob_plot.setLabel("left", "state (filtered)")
        else:
            self.prob_plot.setYRange(0, 1)
            self.prob_plot.setLabel("left", "p (smoothed)")
        for k, lab in enumerate(shown):
            self.prob_curves.append(self.prob_plot.plot(pen=pg.mkPen(colours[k % 4], width=2),
                                                        name=lab))

    # ------------------------------------------------------------------ cursor
    def reset_cursor(self) -> None:
        dims = int(self.dims_box.currentData() or 1)
        labels = list(self.decoder.labels) if self.decoder is not None else []
        per_class = dims == 2 and labels and not self.continuous  # a target per class
        directions = tuple(class_directions(labels)) if per_class else ()
        cfg = CursorConfig(dims=dims, speed=self.speed.value(), directions=directions)
        self.task = CursorTask(cfg)
        # a continuous model's targets are places to reach, not classes
        names = labels if per_class else ["left_hand", "right_hand"] if dims == 1 else []
        self.cursor_view.set_task(self.task.targets, cfg.target_radius, names)
        self._next_trial_at = None
        self._update_cursor_label()

    def _update_cursor_label(self) -> None:
        s = self.task.summary()
        ttt = s["mean_time_to_target_s"]
        self.cursor_label.setText(
            f"Cursor: {s['hits']} hits, {s['misses']} misses, {s['timeouts']} time-outs"
            + (f" \u00b7 mean time to target {ttt:.2f} s" if math.isfinite(ttt) else "")
            + ("" if self.dkf is None else " \u00b7 DKF fitted")
            + (" \u00b7 velocity " + ", ".join(f"{x:+.2f}" for x in self.cursor_trace[-1][1])
               if self.cursor_trace else ""))

    def save_dkf(self, out: str | Path | None = None) -> bool:
        """Save the fitted cursor DKF as a continuous bundle (background); it is listed as a model."""
        if self.dkf is None or self._dkf_info is None:
            self.report_error("Fit the DKF first (\u201cFit DKF\u2026\u201d).")
            return False
        if out is None:
            s = getattr(self.context, "session", None)
            base = s.models_dir if s is not None else Path.home()
            out = QFileDialog.getExistingDirectory(self, "Folder for the DKF bundle", str(base))
            if not out:
                return False
            out = Path(out) / f"cursor-dkf-{Path(self._dkf_info['model']).name}"
        dkf, info = self.dkf, dict(self._dkf_info)

        def done(path):
            self.refresh_models()
            if self.model_box.findData(str(path)) < 0:
                self.model_box.addItem(Path(path).name, str(path))
            self.context.report_info(f"DKF saved as a continuous model bundle: {path}")
            self.dkf_saved.emit(str(path))

        return self.jobs.start(lambda task: save_cursor_dkf(dkf, info, out), on_done=done,
                               name="save-dkf",
                               on_error=lambda m: self.report_error(f"Saving the DKF: {m}"))

    def fit_dkf(self, recording: str | Path | None = None, step_s: float | None = None) -> bool:
        """Fit the cursor DKF on the model's outputs over a cued recording (background)."""
        if self.decoder is None or self.continuous:
            self.report_error("Load a classifier model first: the DKF is fitted on its outputs.")
            return False
        if recording is None:
            s = getattr(self.context, "session", None)
            recs = [p for p in s.recordings() if p.name.startswith("calibration")] if s else []
            if recs:
                recording = recs[0]
            else:
                recording, _ = QFileDialog.getOpenFileName(
                    self, "Cued recording to fit the DKF on", "",
                    "Recordings (*.fif *.edf *.bdf *.gdf *.vhdr *.xdf *.xdfz)")
                if not recording:
                    return False
        model, dims, trial_s = self.model_path, int(self.dims_box.currentData()), self.trial_len.value()
        step = float(step_s or self.hop.value())

        def work(task):
            return fit_cursor_dkf(model, recording, dims=dims, trial_s=trial_s,
                                  step_s=step, progress=task.progress,
                                  cancelled=lambda: task.cancelled)

        def done(res):
            self.dkf, info = res
            self._dkf_info = info
            self.driver_box.setCurrentIndex(self.driver_box.findData("dkf"))
            self._update_cursor_label()
            self._update_buttons()
            if self.context is not None:
                self.context.report_info(f"DKF fitted on {info['n_steps']:,} windows of {info['file']}")
            self.dkf_ready.emit()

        return self.jobs.start(work, on_done=done, name="fit-dkf",
                               on_error=lambda m: self.report_error(f"Fitting the DKF: {m}"))

    # ------------------------------------------------------------------ run
    def _on_connection(self) -> None:
        sm = self.context.streams if self.context is not None else None
        if sm is None or sm.inlet is None:
            self.stream_label.setText("No EEG stream: connect one on the Connect page, or play a "
                                      "recording on the Replay page.")
        else:
            d = sm.description
            mk = sm.marker_description

            def short(name: str) -> str:  # long names are elided, not wrapped (the box keeps its height)
                return self.stream_label.fontMetrics().elidedText(
                    name, Qt.TextElideMode.ElideMiddle, 150)

            cues = (" \u00b7 cues: our Graz protocol (cued run)" if self.cued.isChecked() else
                    f" \u00b7 cues from {short(mk.name)}" if mk is not None else
                    " \u00b7 no marker stream (no scoring)")
            self.stream_label.setToolTip(d.name + (f" + {mk.name}" if mk is not None else ""))
            self.stream_label.setText(f"EEG: {short(d.name)} ({d.n_channels} ch, {d.srate:g} Hz)" + cues)
        if self.engine is not None and (sm is None or sm.inlet is not self.engine.inlet):
            self.stop()
            self.report_error("Online run stopped: the EEG stream was disconnected.")
        self._update_buttons()

    def _update_buttons(self) -> None:
        running = self.engine is not None
        sm = self.context.streams if self.context is not None else None
        self.start_button.setEnabled(not running and self.decoder is not None
                                     and sm is not None and sm.inlet is not None
                                     and not self.jobs.busy)
        self.stop_button.setEnabled(running)
        self.load_button.setEnabled(not running and not self.jobs.busy)
        self.fit_dkf_button.setEnabled(not running and self.decoder is not None
                                       and not self.continuous and not self.jobs.busy)
        self.save_dkf_button.setEnabled(self.dkf is not None and not self.jobs.busy)

    @property
    def time_scale(self) -> float:
        sm = self.context.streams
        if sm.source_kind == "replay" and sm.player is not None:
            return float(sm.player.speed)
        return 1.0

    def start(self) -> bool:
        """Start decoding the connected stream (and recording, with a session)."""
        from neurodeck.app.engine import OnlineEngine

        if self.engine is not None:
            return False
        if self.decoder is None:
            self.report_error("Load a model first.")
            return False
        sm = self.context.streams
        if sm.inlet is None:
            self.report_error("Connect an EEG stream first (Connect or Replay page).")
            return False
        if self.driver_box.currentData() == "dkf" and self.dkf is None:
            self.report_error("The DKF is not fitted: press \u201cFit DKF\u201d or drive the cursor "
                              "by the classifier output.")
            return False
        self._run_id += 1
        run = self._run_id
        out_name = f"neurodeck-decisions-{uuid.uuid4().hex[:8]}"
        engine = OnlineEngine(self.decoder, sm.inlet, hop_s=self.hop.value(), out_name=out_name)
        engine.add_decision_listener(lambda d: self.bridge.decision.emit((run, d)))
        engine.add_state_listener(lambda old, new: self.bridge.state.emit(new.value))
        try:
            engine.start()
        except Exception as exc:
            self.report_error(f"Could not start decoding: {error_text(exc)}")
            try:
                engine.stop()
            except Exception:
                logger.exception("stopping a failed engine")
            return False
        self.engine, self.out_name = engine, out_name
        # Disconnect / another source while decoding is refused, as during a calibration
        sm.hold("online", "an online run is decoding it")
        meta = self.decoder.bundle.meta
        events = (meta.get("config") or {}).get("events") or {}
        sfreq = self.decoder.sfreq
        # decisions count once the window's signal part (after the filter padding) is after the cue
        signal = self.decoder.window_samples - self.decoder.pad_samples
        self.scorer = None if self.continuous else CuedRunScorer(
            self.decoder.labels, events, sfreq=sfreq, trial_s=self.trial_len.value(),
            start_s=signal / sfreq)
        if self.continuous:
            self.decoder.reset()  # the filter starts from its stationary prior
        else:
            self._ref0 = adaptation_reference(self.decoder.bundle)
        self.smoother = OutputSmoother(self.tau.value())
        self.decisions = []
        self.n_valid = 0
        self._history.clear()
        self.cursor_trace.clear()
        self._last_t = None
        self.trials_table.setRowCount(0)
        cued = self.cued.isChecked() and not self.continuous
        self.summary_label.setText(
            "Continuous model: the cursor follows its decoded state (no cued scoring)."
            if self.continuous else "Waiting for cues\u2026" if sm.marker_inlet is not None or cued
            else "No marker stream: feedback only, no scoring.")
        self.reset_cursor()
        if self.dkf is not None:
            self.dkf.reset()
        if sm.marker_inlet is not None and not cued and not self.continuous:
            self._marker_inlet = sm.marker_inlet

            def on_marker(ts: float, label: str, run=run) -> None:
                self.bridge.marker.emit(float(ts), f"{run}\x1f{label}")

            self._marker_cb = on_marker
            sm.marker_inlet.add_marker_listener(on_marker)
        cue_name = None
        if cued:
            cue_name = self._prepare_cued_run()
            if cue_name is None:
                self.stop()
                return False
        if self.record.isChecked() and self.context.session is not None:
            self._start_recorder(out_name, cue_name)
        elif cued:
            self.runner.start()
        self.badge.set_state("connecting", engine.state.value)
        self._update_buttons()
        self.run_started.emit()
        return True

    def _start_recorder(self, out_name: str, cue_name: str | None = None) -> None:
        sm = self.context.streams
        desc, mk = sm.description, sm.marker_description
        outlet = self.cue_outlet
        out = self.context.session.new_recording_path("online")
        self.recording_path = out
        run = self._run_id

        def work():
            from neurodeck.acquisition.recorder import Recorder
            from neurodeck.acquisition.streams import resolve_stream

            eeg = resolve_stream(name=desc.name, source_id=desc.source_id or None, timeout=5.0)
            sources: list = [eeg, out_name]
            if cue_name is not None:  # our cues: record them (not an external marker stream)
                sources.insert(1, cue_name)
            elif mk is not None:
                sources.insert(1, resolve_stream(name=mk.name, source_id=mk.source_id or None,
                                                 timeout=5.0))
            rec = Recorder(sources, out)
            rec.start()
            if outlet is not None and not outlet.wait_for_consumers(5.0):
                rec.stop()
                raise RuntimeError("the recorder did not connect to the cue stream within 5 s")
            return rec

        def done(rec):
            if self.engine is None or run != self._run_id:  # stopped meanwhile
                self._stop_recorder(rec)
                return
            self.recorder = rec
            if self.runner is not None and self.runner.protocol.phase is Phase.IDLE:
                self.runner.start()  # the cues start once the recorder listens to them

        def fail(exc):
            self.report_error(f"Could not record the online run: {error_text(exc)}")
            if self.runner is not None and run == self._run_id:
                self.stop()

        self.context.background.run(work, done, fail, name="online-recorder")

    def _stop_recorder(self, rec: Any, outlet: Any = None) -> None:
        def done(path):
            if outlet is not None:
                outlet.close()
            self.last_saved = Path(path)
            self.context.report_info(f"Online run saved to {path}")

        def fail(exc):
            if outlet is not None:
                outlet.close()
            self.report_error(f"Saving the online run failed: {error_text(exc)} (the partial "
                              "files stay next to it; `neurodeck recover` finishes them)")

        self.context.background.run(rec.stop, done, fail, name="online-recorder-stop")

    def stop(self) -> None:
        """Stop decoding (and the recording); the last open trial is scored."""
        engine, self.engine = self.engine, None
        if engine is None:
            return
        self.context.streams.release("online")
        self._run_id += 1
        runner, self.runner = self.runner, None
        outlet, self.cue_outlet = self.cue_outlet, None
        if runner is not None:
            runner.finished.disconnect(self._on_cued_finished)
            runner.abort()
            runner.stop()
        if self._marker_inlet is not None and self._marker_cb is not None:
            try:
                self._marker_inlet.remove_marker_listener(self._marker_cb)
            except ValueError:
                pass
        self._marker_inlet = self._marker_cb = None
        try:
            engine.stop()
        except Exception as exc:
            self.report_error(f"Stopping the engine: {error_text(exc)}")
        self.last_stats = engine.stats
        if self.scorer is not None:
            ended = self.scorer.finish()
            if ended is not None:
                self._add_trial_row(ended)
            self._show_summary()
        if self.recorder is not None:
            rec, self.recorder = self.recorder, None
            self._stop_recorder(rec, outlet)
        elif outlet is not None:
            outlet.close()
        self._phase = None
        self.badge.set_state("stopped")
        self.graz.set_cue(None)
        self._mirror()
        self._update_buttons()
        self.run_stopped.emit()

    # ------------------------------------------------------------------ participant screen
    def show_participant(self) -> None:
        """Open the participant screen (cue + feedback bar) on the chosen monitor."""
        screen = open_shared_screen(self, "participant", self.context, self.screen_box)
        self._mirror()
        screen.show_on(self.screen_box.currentIndex())

    def _mirror(self) -> None:
        """The participant sees the operator's Graz bar (no numbers) or cursor task."""
        if self.participant is None:
            return
        if self.tabs.currentIndex() == 1:  # the cursor task, as the operator sees it
            self.participant.show_cursor(self.cursor_view)
            return
        ev = self._last_event
        if self.runner is not None and ev is not None and ev.phase in (
                Phase.PAUSED, Phase.FINISHED, Phase.ABORTED):
            self.participant.on_event(ev)  # pause (and why) or the end, as in a calibration
            return
        self.participant.show_feedback(self.graz)

    # ------------------------------------------------------------------ cued runs
    def _prepare_cued_run(self) -> str | None:
        """Protocol, marker outlet and guard of a cued run; the name of the cue stream."""
        from neurodeck.acquisition.outlet import MarkerOutlet

        saved = dict(self.context.settings.protocol or {})
        saved["classes"] = list(self.decoder.labels)
        saved["trials_per_class"] = int(self.cued_trials.value())
        try:
            cfg = ProtocolConfig.from_dict(saved)
        except ProtocolError as exc:
            self.report_error(f"This model cannot run a cued run: {exc}")
            return None
        name = f"neurodeck-online-cues-{uuid.uuid4().hex[:8]}"
        self.cue_outlet = MarkerOutlet(name, source_id=name)
        proto = CalibrationProtocol(cfg)
        proto.add_listener(MarkerSink(self.cue_outlet))
        proto.add_listener(self.context.streams.post_markers)  # drawn on the Connect page's traces
        sim = self.context.streams.simulator
        if sim is not None:
            proto.add_listener(SimulatorCueSink(sim, cfg))
        self.guard = SignalGuard(proto)
        self.runner = ProtocolRunner(proto, self)
        self.runner.phase_changed.connect(self._on_cue_event)
        self.runner.finished.connect(self._on_cued_finished)
        self.runner.error.connect(self.report_error)
        self._phase = Phase.IDLE
        self.summary_label.setText(f"Cued run: {cfg.n_trials} trials "
                                   f"({cfg.trials_per_class} per class), about "
                                   f"{cfg.expected_duration_s() / 60:.1f} min.")
        return name

    def _on_cue_event(self, ev) -> None:
        self._phase, self._last_event = ev.phase, ev
        if ev.phase is Phase.CUE and self.scorer is not None:
            ended = self.scorer.on_marker(ev.class_name, ev.time * self.time_scale)
            if ended is not None:
                self._add_trial_row(ended)
                self._show_summary()
            self._cursor_cue(ev.class_name)
        if ev.phase in (Phase.CUE, Phase.IMAGERY):
            self.graz.set_cue(ev.class_name)
        else:
            self.graz.set_cue(None)
            self.graz.set_probs(None)
        self._mirror()

    def _on_cued_finished(self, how: str) -> None:
        if how == "finished":
            self.context.report_info("The cued run is complete.")
        QTimer.singleShot(0, self.stop)  # not from inside the protocol's own listener

    def toggle_cued_pause(self) -> None:
        """Space: pause / resume the cued run (not while it waits for the signal)."""
        runner = self.runner
        if runner is None or runner.protocol.phase is Phase.IDLE:
            return
        if self.guard.holding:
            self.context.report_info("The run waits for the EEG signal: it resumes by itself.")
        elif runner.protocol.phase is Phase.PAUSED:
            runner.resume()
        elif runner.protocol.running:
            runner.pause()
            self._drop_interrupted()

    def _stop_asked(self) -> None:
        if self.engine is not None and self.confirm_stop():
            self.stop()

    def _drop_interrupted(self) -> None:
        """Interrupted trials are repeated, not scored: forget their scores (and cursor trial)."""
        if self.scorer is None or self.runner is None:
            return
        self.task.cancel()
        scale = self.time_scale
        onsets = [t.cue_time * scale for t in self.runner.protocol.interrupted_trials]
        if self.scorer.discard(onsets):
            self.trials_table.setRowCount(0)
            for r in self.scorer.results:
                self._add_trial_row(r)
            self._show_summary()

    def _on_stream_state(self, state: str) -> None:
        """A cued run pauses while the stream is stalled or lost and resumes when it is back."""
        if self.runner is None or self.guard is None or self.runner.protocol.phase is Phase.IDLE:
            return
        last = None
        inlet = self.context.streams.inlet
        try:
            _, ts = inlet.latest(1)
            last = float(ts[-1]) if len(ts) else None
        except Exception:  # no data yet
            pass
        action = self.guard.on_state(state, last_data=last)
        screen = shared_screen(self.context) if self.participant is not None else None
        if action == "paused":
            self._drop_interrupted()
            if screen is not None:
                screen.pause_text = "Paused \u2014 waiting for the signal"
            self.context.report_info(f"Online run paused: the EEG stream is {state}; the "
                                     "interrupted trial is repeated when the signal is back.")
        elif action == "resumed":
            if screen is not None:
                screen.pause_text = "Paused"
            self.context.report_info("The signal is back: the online run goes on.")
        self._mirror()

    # ------------------------------------------------------------------ live news
    def _on_engine_state(self, state: str) -> None:
        if self.engine is None:
            return
        self.badge.set_state(ENGINE_COLOURS.get(state, "none"), state)
        if state == "error" and self.engine.error is not None:
            self.report_error(f"Online decoding stopped: {error_text(self.engine.error)}")

    def _on_marker(self, ts: float, tagged: str) -> None:
        run, _, label = tagged.partition("\x1f")
        if self.engine is None or int(run) != self._run_id or self.scorer is None:
            return
        t = ts * self.time_scale
        ended = self.scorer.on_marker(label, t)
        if ended is not None:
            self._add_trial_row(ended)
            self._show_summary()
        cls = self.scorer.class_of(label)
        if cls is not None:
            self.graz.set_cue(cls)
            self._mirror()
            self._cursor_cue(cls)

    def _cursor_cue(self, cls: str) -> None:
        """A cue starts a cursor trial towards its class's target (if it has one)."""
        idx = cursor_targets_for(self.decoder.labels, self.task.config.dims).get(cls)
        if idx is not None and idx < len(self.task.targets):
            if self.task.end_trial() is not None:  # the previous cue was not reached
                self._update_cursor_label()
            self.task.new_trial(idx)
            self._next_trial_at = None

    def _on_decision(self, item) -> None:
        run, d = item
        if self.engine is None or run != self._run_id:
            return
        self.decisions.append(d)
        t = d.timestamp * self.time_scale
        dt = 0.0 if self._last_t is None else max(0.0, t - self._last_t)
        self._last_t = t
        if d.valid:
            self.n_valid += 1
        if self.continuous:  # the filtered state drives the cursor; no bar, no scoring
            n = len(self.decoder.targets)
            if d.valid:
                self._history.append((t, np.asarray(d.values[:n], dtype=float)))
            self._step_cursor(d, None, t, dt)
            self._mirror()
            return
        sm = self.smoother.update(d.values, t)
        if sm is not None:
            # a cued run gives feedback during imagery only
            imagery = self.runner is None or self._phase is Phase.IMAGERY
            self.graz.set_probs(sm if imagery else None)
            self._history.append((t, sm))
        if self.scorer is not None:
            ended = self.scorer.on_decision(d.values, t)
            if ended is not None:
                self._add_trial_row(ended)
                self._show_summary()
            if self.runner is None:
                self.graz.set_cue(self.scorer.current_label)
        self._step_cursor(d, sm, t, dt)
        self._mirror()

    def _step_cursor(self, d, smoothed, t: float, dt: float) -> None:
        task = self.task
        if not task.active:
            free_run = self._marker_inlet is None and self.runner is None  # no cues: cycle
            if free_run:
                if self._next_trial_at is None:
                    self._next_trial_at = t + 1.0
                elif t >= self._next_trial_at:
                    task.new_trial()
                    self._next_trial_at = None
            flash = None if t > self._flash_until else getattr(self, "_flash", None)
            self.cursor_view.set_state(task.position, None, flash)
            return
        dims = task.config.dims
        if self.continuous:  # the model's state (vx, vy): missing axes 0, extra ones unused
            v = np.zeros(dims)
            k = min(dims, len(self.decoder.targets))
            v[:k] = d.values[:k] if d.valid else np.nan
        elif self.driver_box.currentData() == "dkf" and self.dkf is not None:
            v = self.dkf.step(d.values) if d.valid else np.full(dims, np.nan)
        elif smoothed is not None and d.valid:
            v = velocity_from_probs(smoothed, self.decoder.labels, dims)
        else:
            v = np.full(dims, np.nan)
        if self.runner is not None and self._phase is not Phase.IMAGERY:
            v = np.zeros(dims)  # a cued run gives feedback during imagery only (as the bar)
        if np.isfinite(v).all():
            self.cursor_trace.append((t, np.asarray(v, dtype=float)))
        res = task.step(v, dt)
        if res is not None:
            self._flash = (res.target if res.outcome != "miss" else res.reached, res.outcome)
            self._flash_until = t + 0.75
            self.cursor_view.set_state(task.position, None, self._flash)
            self._update_cursor_label()
        else:
            self.cursor_view.set_state(task.position, task.target)

    def _add_trial_row(self, r) -> None:
        row = self.trials_table.rowCount()
        self.trials_table.insertRow(row)
        vals = [r.label, r.predicted or "\u2014",
                "\u2014" if r.n_decisions == 0 else ("yes" if r.correct else "no"),
                "\u2014" if r.time_to_decision_s is None else f"{r.time_to_decision_s:.2f} s"]
        for j, v in enumerate(vals):
            item = QTableWidgetItem(v)
            if r.n_decisions:
                item.setBackground(QColor("#e8f5e9") if r.correct else QColor("#ffebee"))
            self.trials_table.setItem(row, j, item)
        self.trials_table.scrollToBottom()
        self.trial_scored.emit(r)

    def _show_summary(self) -> None:
        if self.scorer is not None:
            self.summary_label.setText(self.scorer.summary().line())

    def _set_stats(self, text: str) -> None:
        """Show the statistics, each line elided to the label's width (full text as tooltip)."""
        fm = self.stats_label.fontMetrics()
        width = max(self.stats_label.width() - 4, 50)
        lines = [fm.elidedText(ln, Qt.TextElideMode.ElideRight, width)
                 for ln in text.split("\n")[:STATS_LINES]]
        self.stats_label.setText("\n".join(lines))
        self.stats_label.setToolTip(text)

    def _tick(self) -> None:
        eng = self.engine
        if eng is None:
            return
        st = eng.stats
        lat = st.percentiles("latency_s", (50, 99))
        dec = st.percentiles("decide_s", (50, 99))
        self._set_stats(
            f"Decisions: {st.decisions:,} ({st.invalid} invalid, {st.skipped_hops} hops skipped) "
            f"\u00b7 latency p50 {1e3 * lat[50]:.1f} ms, p99 {1e3 * lat[99]:.1f} ms \u00b7 decode "
            f"p50 {1e3 * dec[50]:.2f} ms \u00b7 published on LSL as \u201c{self.out_name}\u201d\n"
            + (f"recording {self.recording_path.name} \u00b7 " if self.recorder is not None
               and self.recording_path is not None else "")
            + (f"{eng.units.note}" if eng.units is not None else "")
            + (f" \u00b7 stamps {1e3 * eng.inlet.stamp_lead:.1f} ms ahead of arrival (latency "
               "corrected)" if eng.inlet.stamp_lead > 0.002 else "")
            + (f"\nNot decoding: {eng.last_decision.reason}" if eng.last_decision is not None
               and not eng.last_decision.valid else ""))
        if self._history and self.prob_curves:
            t = np.array([h[0] for h in self._history])
            P = np.array([h[1] for h in self._history])
            for k, c in enumerate(self.prob_curves):
                c.setData(t - t[-1], P[:, k])
            self.prob_plot.setXRange(-10, 0)
        self._update_cursor_label()
        self._show_adaptation()
        if self.scorer is not None and self._last_t is not None:
            ended = self.scorer.advance(self._last_t)
            if ended is not None:
                self._add_trial_row(ended)
                self._show_summary()

    # ------------------------------------------------------------------ screenshots
    def prepare_screenshot(self) -> None:
        """scripts/screenshots.py: load the newest session model and decode the stream."""
        import time

        self._shot_t0 = time.monotonic()
        self.cued.setChecked(True)  # our own cued run: cues, feedback during imagery, scores
        self.refresh_models()
        if self.model_box.count():
            self.model_loaded.connect(self._start_once)
            self.load_model(self.model_box.itemData(0))

    def _start_once(self, _path: str) -> None:
        self.model_loaded.disconnect(self._start_once)
        self.start()

    def screenshot_ready(self) -> bool:
        import time

        waited = time.monotonic() - getattr(self, "_shot_t0", 0.0)
        return self.model_box.count() == 0 or len(self.decisions) >= 120 or waited > 30.0

    # ------------------------------------------------------------------ lifecycle
    def busy_reason(self) -> str | None:
        if self.engine is not None:
            return "online decoding" + (" (recording)" if self.recorder is not None else "")
        return f"online page: {self.jobs.name}" if self.jobs.busy else None

    def shutdown(self) -> None:
        self._timer.stop()
        self.stop()
        self.jobs.shutdown()
