"""Replay page: play any recording as LSL so the other pages work on it, or evaluate a model on it.

*Play* hands the file to the shared :class:`app.ui.qt_models.StreamModel` (an
:class:`acquisition.player.Player` with EEG + marker outlets, and the app's inlets connected to
them), so the signal view, the calibration and the Online page see it exactly like a live
amplifier. Speed, loop, pause/resume and the position are controlled here.

*Pseudo-online evaluation* slides the saved model over the whole recording window by window
(:func:`app.workflow.evaluate_recording`, the same decoder the live engine uses) in a QThread
with a progress bar, and shows the trial accuracy, time to decision, real-time factor and the
decoder output over time with the cues.
"""
from __future__ import annotations

import logging
from pathlib import Path

import pyqtgraph as pg
from PyQt6.QtCore import Qt, QTimer, pyqtSignal
from PyQt6.QtWidgets import (
    QCheckBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from neurodeck.app.ui.widgets import Page, StateBadge, big_button
from neurodeck.app.ui.workers import JobRunner, TaskHandle
from neurodeck.app.workflow.replay import evaluate_recording

logger = logging.getLogger(__name__)

RECORDING_FILTER = "Recordings (*.fif *.edf *.bdf *.gdf *.vhdr *.xdf *.xdfz);;All files (*)"


# ------------------------------------------------------------------------------- the page
class ReplayPage(Page):
    """Play a recording as LSL, and evaluate a saved model on a recording."""

    title = "Replay"
    subtitle = ("Play any recording as if it were live (the other pages then work on it), or run "
                "a saved model over a whole recording, window by window, as it would run online.")

    evaluated = pyqtSignal()

    def __init__(self, context=None, parent: QWidget | None = None):
        super().__init__(context, parent)
        self.jobs = JobRunner(self)
        self.play_path: Path | None = None
        self.eval_result: dict | None = None

        # --- playback
        pbox = QGroupBox("Play a recording as LSL")
        pg_ = QGridLayout(pbox)
        self.file_edit = QLineEdit()
        self.file_edit.setPlaceholderText("recording file (FIF, EDF, BDF, GDF, BrainVision, XDF)")
        browse = QPushButton("Browse\u2026")
        browse.clicked.connect(self._browse_play)
        self.speed = QDoubleSpinBox()
        self.speed.setRange(0.1, 50.0)
        self.speed.setValue(1.0)
        self.speed.setSuffix(" \u00d7")
        self.speed.setMaximumWidth(110)
        self.loop = QCheckBox("loop")
        self.loop.setChecked(True)
        self.play_button = big_button("Play")
        self.play_button.clicked.connect(lambda: self.play())  # not clicked(bool) as path
        self.pause_button = QPushButton("Pause")
        self.pause_button.clicked.connect(self.toggle_pause)
        self.stop_button = QPushButton("Stop")
        self.stop_button.clicked.connect(self.stop)
        self.badge = StateBadge("")
        self.badge.set_state("idle", "stopped")
        self.play_progress = QProgressBar()
        self.play_progress.setRange(0, 1000)
        self.play_progress.setTextVisible(True)
        self.play_progress.setFormat("")
        self.position_label = QLabel("")
        pg_.addWidget(QLabel("File"), 0, 0)
        pg_.addWidget(self.file_edit, 0, 1, 1, 5)
        pg_.addWidget(browse, 0, 6)
        pg_.addWidget(QLabel("Speed"), 1, 0)
        pg_.addWidget(self.speed, 1, 1)
        pg_.addWidget(self.loop, 1, 2)
        pg_.addWidget(self.play_button, 1, 3)
        pg_.addWidget(self.pause_button, 1, 4)
        pg_.addWidget(self.stop_button, 1, 5)
        pg_.addWidget(self.badge, 1, 6)
        pg_.addWidget(self.play_progress, 2, 0, 1, 6)
        pg_.addWidget(self.position_label, 2, 6)
        pg_.setColumnStretch(1, 1)
        pg_.setColumnStretch(5, 0)
        self.body.addWidget(pbox)

        # --- pseudo-online
        ebox = QGroupBox("Pseudo-online evaluation of a saved model")
        el = QVBoxLayout(ebox)
        form = QFormLayout()
        mrow = QHBoxLayout()
        self.model_edit = QLineEdit()
        self.model_edit.setPlaceholderText("model folder (model.onnx + model.json)")
        mb = QPushButton("Browse\u2026")
        mb.clicked.connect(self._browse_model)
        mrow.addWidget(self.model_edit, 1)
        mrow.addWidget(mb)
        form.addRow("Model", mrow)
        frow = QHBoxLayout()
        self.eval_file_edit = QLineEdit()
        self.eval_file_edit.setPlaceholderText("recording with cues (default: the file above)")
        fb = QPushButton("Browse\u2026")
        fb.clicked.connect(self._browse_eval)
        frow.addWidget(self.eval_file_edit, 1)
        frow.addWidget(fb)
        form.addRow("Recording", frow)
        srow = QHBoxLayout()
        self.step = QDoubleSpinBox()
        self.step.setRange(0.01, 2.0)
        self.step.setDecimals(4)
        self.step.setValue(0.0625)
        self.step.setSuffix(" s")
        self.trial_s = QDoubleSpinBox()
        self.trial_s.setRange(0.5, 30.0)
        self.trial_s.setValue(4.0)
        self.trial_s.setSuffix(" s")
        srow.addWidget(QLabel("hop"))
        srow.addWidget(self.step)
        srow.addWidget(QLabel("trial length after the cue"))
        srow.addWidget(self.trial_s)
        srow.addStretch(1)
        form.addRow("Settings", srow)
        el.addLayout(form)
        rrow = QHBoxLayout()
        self.eval_button = big_button("Evaluate")
        self.eval_button.clicked.connect(lambda: self.evaluate())  # not clicked(bool) as model_dir
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.jobs.cancel)
        self.cancel_button.setEnabled(False)
        self.eval_progress = QProgressBar()
        self.eval_status = QLabel("")
        rrow.addWidget(self.eval_button)
        rrow.addWidget(self.cancel_button)
        rrow.addWidget(self.eval_progress, 1)
        rrow.addWidget(self.eval_status, 1)
        el.addLayout(rrow)
        self.results_label = QLabel("")
        self.results_label.setStyleSheet("font-size: 12pt; font-weight: 600; color: #1a237e;")
        self.results_label.setWordWrap(True)
        el.addWidget(self.results_label)
        self.plot = pg.PlotWidget(background="w")
        self.plot.setMenuEnabled(False)
        self.plot.showGrid(x=True, y=True, alpha=0.2)
        self.plot.setLabel("bottom", "time in the recording (s)")
        self.plot.setLabel("left", "probability")
        self.plot.setYRange(0, 1)
        self.plot.setMouseEnabled(x=True, y=False)  # drag scrolls, the wheel zooms the time axis
        self.plot.getViewBox().sigXRangeChanged.connect(self._show_range)
        self.plot.getViewBox().sigResized.connect(self._place_cue_labels)
        # the legend and the shown span sit above the plot, never over the traces, and stay
        # hidden until there is something to explain
        lrow = QHBoxLayout()
        self.legend_label = QLabel("")
        self.legend_label.setVisible(False)
        self.range_label = QLabel("")
        self.range_label.setStyleSheet("color: #546e7a;")
        self.range_label.setVisible(False)
        lrow.addWidget(self.legend_label)
        lrow.addStretch(1)
        lrow.addWidget(self.range_label)
        el.addLayout(lrow)
        self._duration_s = 0.0
        #: the dashed cue lines of the last evaluation (their labels: cue and whether decided right)
        self.cue_lines: list[pg.InfiniteLine] = []
        el.addWidget(self.plot, 1)
        self.body.addWidget(ebox, 1)

        self.jobs.progress.connect(self._on_eval_progress)
        self.jobs.busy_changed.connect(self._on_eval_busy)
        self._timer = QTimer(self)
        self._timer.setInterval(200)
        self._timer.timeout.connect(self.poll)
        self._timer.start()
        if context is not None:
            context.streams.connection_changed.connect(self.poll)
        self.poll()

    # ------------------------------------------------------------------ playback
    def _browse_play(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Recording to play", "", RECORDING_FILTER)
        if path:
            self.file_edit.setText(path)

    @property
    def player(self):
        sm = self.context.streams if self.context is not None else None
        if sm is None or sm.source_kind != "replay":
            return None
        return sm.player

    def play(self, path: str | Path | None = None) -> bool:
        """Replay ``path`` (default: the file field) through the app's stream model."""
        if path is not None:
            self.file_edit.setText(str(path))
        text = self.file_edit.text().strip()
        if not text:
            self.report_error("Choose a recording to play.")
            return False
        p = Path(text)
        if not p.is_file():
            self.report_error(f"Recording {p} not found; expected an existing file.")
            return False
        if self.context.streams.busy:
            self.report_error("Please wait: a connection is being set up.")
            return False
        self.play_path = p
        self.badge.set_state("connecting", "starting")
        self.context.streams.start_player(p, speed=self.speed.value(), loop=self.loop.isChecked())
        return True

    def toggle_pause(self) -> None:
        player = self.player
        if player is None:
            return
        if player.paused:
            self.context.streams.resume_replay()
        else:
            self.context.streams.pause_replay()
        self.poll()

    def stop(self) -> None:
        if self.player is not None:
            self.context.streams.disconnect()
        self.poll()

    def poll(self) -> None:
        player = self.player
        playing = player is not None
        self.pause_button.setEnabled(playing)
        self.stop_button.setEnabled(playing)
        self.play_button.setEnabled(self.context is None or not self.context.streams.busy)
        if not playing:
            if self.context is None or not self.context.streams.busy:
                self.badge.set_state("idle", "stopped")
            self.pause_button.setText("Pause")
            return
        frac = player.progress
        self.play_progress.setValue(int(round(1000 * frac)))
        self.play_progress.setFormat(f"{Path(player.source).name}  {100 * frac:.0f} %")
        loops = getattr(player, "loops_done", 0)
        self.position_label.setText(f"{player.position_s:.1f} / {player.duration_s:.1f} s"
                                    + (f"  (loop {loops + 1})" if loops else ""))
        if player.paused:
            self.badge.set_state("stalled", "paused")
            self.pause_button.setText("Resume")
        elif player.finished:
            self.badge.set_state("stopped", "finished")
        else:
            self.badge.set_state("connected", f"playing \u00d7{player.speed:g}")
            self.pause_button.setText("Pause")

    # ------------------------------------------------------------------ evaluation
    def _browse_model(self) -> None:
        s = getattr(self.context, "session", None)
        start = str(s.models_dir) if s is not None else ""
        path = QFileDialog.getExistingDirectory(self, "Model folder", start)
        if path:
            self.model_edit.setText(path)

    def _browse_eval(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Recording to evaluate on", "", RECORDING_FILTER)
        if path:
            self.eval_file_edit.setText(path)

    def evaluate(self, model_dir: str | Path | None = None, path: str | Path | None = None) -> bool:
        if model_dir is not None:
            self.model_edit.setText(str(model_dir))
        if path is not None:
            self.eval_file_edit.setText(str(path))
        model = self.model_edit.text().strip()
        rec = self.eval_file_edit.text().strip() or self.file_edit.text().strip()
        if not model:
            self.report_error("Choose a model folder (Train page \u203a Save model).")
            return False
        if not rec:
            self.report_error("Choose a recording to evaluate the model on.")
            return False
        step, trial_s = self.step.value(), self.trial_s.value()

        def work(task: TaskHandle) -> dict:
            def progress(done: int, total: int, text: str) -> None:
                task.check()  # raises Cancelled once the user cancelled
                task.progress(done, total, text)

            return evaluate_recording(model, rec, step_s=step, trial_s=trial_s, progress=progress)

        self.results_label.setText("")
        # the plot, legend and span of an earlier result must not stand beside a new failure
        self.eval_result, self._duration_s = None, 0.0
        self.plot.clear()
        self.cue_lines = []
        self.legend_label.setVisible(False)
        self.range_label.setVisible(False)
        return self.jobs.start(work, on_done=self._on_eval, on_error=self._on_eval_error,
                               on_cancel=lambda: self.eval_status.setText("Cancelled."),
                               name="pseudo-online")

    def _on_eval_progress(self, done: int, total: int, text: str) -> None:
        self.eval_progress.setMaximum(max(total, 1))
        self.eval_progress.setValue(done)
        self.eval_status.setText(text)

    def _on_eval_busy(self, busy: bool) -> None:
        self.eval_button.setEnabled(not busy)
        self.cancel_button.setEnabled(busy)

    def _on_eval_error(self, message: str) -> None:
        self.eval_status.setText("Failed.")
        self.report_error(f"Pseudo-online evaluation: {message}")

    def _on_eval(self, out: dict) -> None:
        self.eval_result = out
        res, s = out["result"], out["summary"]
        ttd = s["median_time_to_decision_s"]
        self.results_label.setText(
            f"{out['model']} on {out['file']}: trial accuracy {100 * s['trial_accuracy']:.0f} % "
            f"({int(round(s['trial_accuracy'] * s['n_trials']))}/{s['n_trials']} trials), median "
            f"time to decision {'n/a' if ttd is None else f'{ttd:.2f} s'} "
            f"({s['decided_trials']} decided), {s['n_windows']:,} windows decoded at "
            f"{s['realtime_factor']:.0f}\u00d7 real time.")
        self.eval_status.setText("Done.")
        self.eval_progress.setValue(self.eval_progress.maximum())
        self.plot.clear()
        t = res.ends / out["sfreq"]
        colours = ["#1565c0", "#c62828", "#2e7d32", "#6a1b9a"]
        for k, lab in enumerate(res.labels):
            self.plot.plot(t, res.outputs[:, k], pen=pg.mkPen(colours[k % 4], width=1.5),
                           name=f"p({lab})")
        self.legend_label.setText("  ".join(
            f'<span style="color:{colours[k % 4]}; font-weight:600;">\u2014 p({lab})</span>'
            for k, lab in enumerate(res.labels))
            + "  <span style='color:#546e7a;'>dashed: cues (\u2713 decided right)</span>")
        self.legend_label.setVisible(True)
        self.cue_lines = []
        for onset, lab, ok in zip(out["onsets"], out["labels"], res.trial_correct):
            x = onset / out["sfreq"]
            k = res.labels.index(lab) if lab in res.labels else 0
            line = pg.InfiniteLine(x, angle=90, pen=pg.mkPen(colours[k % 4], width=1,
                                                              style=Qt.PenStyle.DashLine),
                                   label=("\u2713 " if ok else "\u2717 ") + lab,
                                   labelOpts={"position": 0.95, "color": "#263238"})
            self.plot.addItem(line)
            self.cue_lines.append(line)
        self._duration_s = float(t[-1]) if len(t) else 0.0
        self.plot.setLimits(xMin=0.0, xMax=max(self._duration_s, 1.0))
        self.plot.setXRange(0, min(45.0, self._duration_s) or 45.0, padding=0)
        self._show_range()
        self.evaluated.emit()

    def _show_range(self, *_) -> None:
        """Which part of the recording the plot shows, e.g. "0\u201345 s of 125 s"."""
        self._place_cue_labels()
        if self._duration_s <= 0:
            self.range_label.setVisible(False)
            return
        lo, hi = self.plot.getViewBox().viewRange()[0]
        lo, hi = max(0.0, lo), min(self._duration_s, hi)
        more = "" if lo <= 0.5 and hi >= self._duration_s - 0.5 else "  (drag to scroll, wheel to zoom)"
        self.range_label.setText(f"{lo:.0f}\u2013{hi:.0f} s of {self._duration_s:.0f} s shown{more}")
        self.range_label.setVisible(True)

    def _place_cue_labels(self, *_) -> None:
        """Each cue's label beside its line, right of it unless that runs past the plot's right
        edge (then left of it); only the cues in the shown span keep a label. pyqtgraph's own
        placement put labels of the right half on the left of their lines (beside the neighbour
        cue's line) and drew the label of a line just past the edge inside the plot, cut."""
        vb = self.plot.getViewBox()
        lo, hi = vb.viewRange()[0]
        per_px = (hi - lo) / max(vb.width(), 1.0)
        for line in self.cue_lines:
            label = line.label
            shown = bool(lo <= line.value() <= hi)
            if label.isVisible() != shown:
                label.setVisible(shown)
            if not shown:
                continue
            right = line.value() + (label.boundingRect().width() + 4) * per_px <= hi
            anchor = (0.0, 0.5) if right else (1.0, 0.5)
            if label.anchors != [anchor, anchor]:
                label.anchors = [anchor, anchor]
                label.updatePosition()

    # ------------------------------------------------------------------ screenshots
    def prepare_screenshot(self) -> None:
        """scripts/screenshots.py: pseudo-online evaluation of the newest model on the calibration."""
        s = getattr(self.context, "session", None)
        if s is None:
            return
        models = [p for p in s.models() if (p / "model.json").is_file()]
        recs = [p for p in s.recordings() if p.name.startswith("calibration")
                and p.name.endswith(".fif")]
        if models and recs:
            self.evaluate(models[-1], recs[-1])

    def screenshot_ready(self) -> bool:
        return not self.jobs.busy

    # ------------------------------------------------------------------ lifecycle
    def busy_reason(self) -> str | None:
        return "pseudo-online evaluation running" if self.jobs.busy else None

    def shutdown(self) -> None:
        self._timer.stop()
        self.jobs.shutdown()
