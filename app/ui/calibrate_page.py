"""Calibrate page: the Graz protocol form, run controls, progress, and the cue display.

Start does, in order: check the form, the session and the EEG stream; open a marker outlet with a
unique name; start a :class:`acquisition.recorder.Recorder` on the EEG + marker streams into
``<session>/recordings/calibration-runNN_raw.fif`` (in the background) and wait until it listens
to the markers; then run the protocol (markers to LSL, cues to the display, and to the simulator
when the source is the simulator). Pause / resume keep recording; abort and the end of the run
stop the recorder, which finalizes the file.
"""
from __future__ import annotations

import logging
import time
import uuid
from pathlib import Path
from typing import Any

from PyQt6.QtCore import Qt, QTimer, pyqtSignal
from PyQt6.QtGui import QKeySequence, QShortcut
from PyQt6.QtWidgets import (
    QCheckBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from neurodeck.app.protocol import (
    BAD_TRIAL,
    CalibrationProtocol,
    MarkerSink,
    Phase,
    ProtocolConfig,
    ProtocolError,
    SignalGuard,
    SimulatorCueSink,
)
from neurodeck.app.ui.cue_display import CLASS_TEXT, CueDisplay
from neurodeck.app.ui.participant import ParticipantScreen, ScreenChooser, open_shared_screen
from neurodeck.app.ui.qt_models import ProtocolRunner, error_text
from neurodeck.app.ui.widgets import Page, big_button

logger = logging.getLogger(__name__)

FORM_CLASSES = ("left_hand", "right_hand", "feet", "rest")


class CalibratePage(Page):
    """Run a cued Graz calibration and record it into the session."""

    title = "2 \u00b7 Calibrate"
    subtitle = ("The participant imagines the movement the arrow shows (left hand, right hand, feet) "
                "or rests (circle). Everything is recorded into the session folder.")

    #: (state) "idle", "starting", "running", "paused", "saving"
    run_state_changed = pyqtSignal(str)
    #: path of the saved recording
    recording_saved = pyqtSignal(object)

    def __init__(self, context=None, parent: QWidget | None = None):
        super().__init__(context, parent)
        self.runner: ProtocolRunner | None = None
        self.guard: SignalGuard | None = None
        self._counters_at_start: tuple[int, int] | None = None
        self.recorder: Any = None
        self.marker_outlet: Any = None
        self.recording_path: Path | None = None
        self.last_saved: Path | None = None
        #: the participant screen while it is open
        self.fullscreen: ParticipantScreen | None = None
        self.state = "idle"
        #: protocol clock override (tests); None = LSL clock
        self.clock = None

        row = QHBoxLayout()
        self.body.addLayout(row, 1)
        left = QWidget()
        left.setFixedWidth(420)
        lv = QVBoxLayout(left)
        lv.setContentsMargins(0, 0, 8, 0)
        row.addWidget(left)

        # --- protocol form
        box = QGroupBox("Protocol")
        form = QFormLayout(box)
        cls_row = QGridLayout()
        self.class_boxes: dict[str, QCheckBox] = {}
        for i, name in enumerate(FORM_CLASSES):
            cb = QCheckBox(CLASS_TEXT[name])
            cb.setChecked(name in ("left_hand", "right_hand"))
            cb.toggled.connect(self._update_estimate)
            self.class_boxes[name] = cb
            cls_row.addWidget(cb, i // 2, i % 2)
        form.addRow("Classes", cls_row)
        self.trials_box = QSpinBox()
        self.trials_box.setRange(1, 500)
        form.addRow("Trials per class", self.trials_box)
        self.fix_box = self._seconds(form, "Fixation")
        self.cue_box = self._seconds(form, "Cue (arrow)")
        self.imagery_box = self._seconds(form, "Imagery after cue")
        rest_row = QHBoxLayout()
        self.rest_min_box = self._seconds(None, "")
        self.rest_max_box = self._seconds(None, "")
        rest_row.addWidget(self.rest_min_box)
        rest_row.addWidget(QLabel("to"))
        rest_row.addWidget(self.rest_max_box)
        form.addRow("Rest (random)", rest_row)
        self.beep_box = QCheckBox("Beep at fixation")
        form.addRow("", self.beep_box)
        self.seed_box = QSpinBox()
        self.seed_box.setRange(-1, 2**31 - 1)
        self.seed_box.setSpecialValueText("random")
        form.addRow("Trial order seed", self.seed_box)
        self.estimate_label = QLabel("")
        self.estimate_label.setStyleSheet("color: #455a64;")
        form.addRow("Duration", self.estimate_label)
        io_row = QHBoxLayout()
        load = QPushButton("Load\u2026")
        save = QPushButton("Save\u2026")
        load.clicked.connect(self._load_dialog)
        save.clicked.connect(self._save_dialog)
        io_row.addWidget(load)
        io_row.addWidget(save)
        form.addRow("Protocol file", io_row)
        lv.addWidget(box)
        for w in (self.trials_box, self.fix_box, self.cue_box, self.imagery_box,
                  self.rest_min_box, self.rest_max_box):
            w.valueChanged.connect(self._update_estimate)

        # --- run controls
        run = QGroupBox("Run")
        rv = QVBoxLayout(run)
        sess_row = QHBoxLayout()
        self.session_label = QLabel("")
        self.session_label.setWordWrap(True)
        self.session_button = QPushButton("Session\u2026")
        self.session_button.setToolTip("Create a new subject/session or open a past one")
        self.session_button.clicked.connect(
            lambda: self.context.session_requested.emit() if self.context is not None else None)
        sess_row.addWidget(self.session_label, 1)
        sess_row.addWidget(self.session_button)
        rv.addLayout(sess_row)
        self.start_button = big_button("\u25b6  Start calibration")
        self.start_button.clicked.connect(self.start)
        rv.addWidget(self.start_button)
        ctl = QHBoxLayout()
        self.pause_button = QPushButton("Pause")
        self.pause_button.setMinimumHeight(34)
        self.pause_button.clicked.connect(self.toggle_pause)
        self.abort_button = big_button("Abort", danger=True)
        self.abort_button.clicked.connect(self.abort)
        ctl.addWidget(self.pause_button, 1)
        ctl.addWidget(self.abort_button, 1)
        rv.addLayout(ctl)
        self.progress = QProgressBar()
        self.progress.setFormat("not started")
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setMinimumHeight(24)
        rv.addWidget(self.progress)
        self.status_label = QLabel("Ready.")
        self.status_label.setWordWrap(True)
        rv.addWidget(self.status_label)
        prow = QHBoxLayout()
        self.screen_box = ScreenChooser()
        self.screen_box.setMinimumContentsLength(18)  # "1: screen 1280x800" was cut at 1280x800
        self.full_button = QPushButton("Participant screen")
        self.full_button.clicked.connect(self.show_fullscreen)
        prow.addWidget(self.full_button, 1)
        prow.addWidget(QLabel("on"))
        prow.addWidget(self.screen_box)
        rv.addLayout(prow)
        lv.addWidget(run)
        lv.addStretch(1)

        self.cue_display = CueDisplay()
        row.addWidget(self.cue_display, 1)

        # operator keys: Space pauses/resumes, Esc aborts (asks first), F11 full-screen cues
        for key, slot in (("Space", self.toggle_pause), ("Escape", self._abort_asked),
                          ("F11", self.show_fullscreen)):
            sc = QShortcut(QKeySequence(key), self)
            sc.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            sc.activated.connect(slot)
        self.pause_button.setToolTip("Space")
        self.abort_button.setToolTip("Esc")
        self.full_button.setToolTip("Fixation cross and cues only, full screen on the chosen "
                                    "monitor (F11). On the participant screen: F11 toggles full "
                                    "screen, Esc leaves it.")
        # a recording that fails in the background must stop the run and say so
        self._watch = QTimer(self)
        self._watch.setInterval(1000)
        self._watch.timeout.connect(self._check_recorder)

        saved = context.settings.protocol if context is not None else {}
        try:
            cfg = ProtocolConfig.from_dict(saved) if saved else ProtocolConfig()
        except ProtocolError as exc:
            logger.warning("saved protocol settings ignored: %s", exc)
            cfg = ProtocolConfig()
        self.set_config(cfg)
        self._set_state("idle")
        if context is not None:
            context.session_changed.connect(self._show_session)
            context.streams.state_changed.connect(self._on_stream_state)
            self._show_session(context.session)

    def _show_session(self, session) -> None:
        if session is None:
            self.session_label.setText("<span style='color:#c62828'>No session yet: create one "
                                       "first, the run is recorded into it.</span>")
        else:
            self.session_label.setText(f"Recording into session <b>{session.label}</b>")

    @staticmethod
    def _seconds(form: QFormLayout | None, label: str) -> QDoubleSpinBox:
        box = QDoubleSpinBox()
        box.setRange(0.0, 60.0)
        box.setDecimals(2)
        box.setSingleStep(0.25)
        box.setSuffix(" s")
        if form is not None:
            form.addRow(label, box)
        return box

    # ------------------------------------------------------------------ config <-> form
    def set_config(self, cfg: ProtocolConfig) -> None:
        for name, cb in self.class_boxes.items():
            cb.setChecked(name in cfg.classes)
        self.trials_box.setValue(cfg.trials_per_class)
        self.fix_box.setValue(cfg.fixation_s)
        self.cue_box.setValue(cfg.cue_s)
        self.imagery_box.setValue(cfg.imagery_s)
        self.rest_min_box.setValue(cfg.rest_min_s)
        self.rest_max_box.setValue(cfg.rest_max_s)
        self.beep_box.setChecked(cfg.beep)
        self.seed_box.setValue(-1 if cfg.seed is None else cfg.seed)
        self._lead_in = cfg.lead_in_s
        self._update_estimate()

    def config(self) -> ProtocolConfig:
        """The form as a validated :class:`ProtocolConfig` (raises ProtocolError)."""
        seed = self.seed_box.value()
        return ProtocolConfig(
            classes=tuple(n for n, cb in self.class_boxes.items() if cb.isChecked()),
            trials_per_class=self.trials_box.value(),
            fixation_s=self.fix_box.value(),
            cue_s=self.cue_box.value(),
            imagery_s=self.imagery_box.value(),
            rest_min_s=self.rest_min_box.value(),
            rest_max_s=self.rest_max_box.value(),
            lead_in_s=getattr(self, "_lead_in", 2.0),
            beep=self.beep_box.isChecked(),
            seed=None if seed < 0 else seed,
        )

    def _update_estimate(self, *_: Any) -> None:
        try:
            cfg = self.config()
        except ProtocolError as exc:
            self.estimate_label.setText(f"<span style='color:#c62828'>{exc}</span>")
            return
        minutes = cfg.expected_duration_s() / 60
        self.estimate_label.setText(f"{cfg.n_trials} trials, about {minutes:.1f} min")

    def _load_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Load protocol", "", "Protocol (*.toml)")
        if path:
            try:
                self.set_config(ProtocolConfig.load(path))
            except ProtocolError as exc:
                self.report_error(str(exc))

    def _save_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save protocol", "protocol.toml", "Protocol (*.toml)")
        if path:
            try:
                self.config().save(path)
            except (ProtocolError, OSError) as exc:
                self.report_error(str(exc))

    # ------------------------------------------------------------------ run
    def _set_state(self, state: str) -> None:
        self.state = state
        idle = state == "idle"
        self.start_button.setEnabled(idle)
        self.session_button.setEnabled(idle)
        self.pause_button.setEnabled(state in ("running", "paused"))
        self.pause_button.setText("Resume" if state == "paused" else "Pause")
        self.abort_button.setEnabled(state in ("running", "paused"))
        for w in (*self.class_boxes.values(), self.trials_box, self.fix_box, self.cue_box,
                  self.imagery_box, self.rest_min_box, self.rest_max_box, self.beep_box, self.seed_box):
            w.setEnabled(idle)
        self.run_state_changed.emit(state)

    def start(self) -> bool:
        """Check, start the recorder in the background, then the protocol. False if refused."""
        if self.state != "idle" or self.context is None:
            return False
        try:
            cfg = self.config()
        except ProtocolError as exc:
            self.report_error(f"Protocol settings: {exc}")
            return False
        session = self.context.session
        if session is None:
            self.report_error("Open or create a session first (Session \u203a New, Ctrl+N): the "
                              "calibration is recorded into it.")
            return False
        sm = self.context.streams
        if sm.inlet is None:
            self.report_error("Connect an EEG stream first (page 1 \u00b7 Connect): start the "
                              "simulator, replay a file, or pick an amplifier's LSL stream.")
            return False
        desc = sm.description
        out = session.new_recording_path("calibration")
        self.recording_path = out
        self._set_state("starting")
        self.status_label.setText("Starting the recorder\u2026")
        marker_name = f"neurodeck-cues-{uuid.uuid4().hex[:8]}"

        def work():
            from neurodeck.acquisition.outlet import MarkerOutlet
            from neurodeck.acquisition.recorder import Recorder
            from neurodeck.acquisition.streams import resolve_stream

            outlet = MarkerOutlet(marker_name, source_id=marker_name)
            eeg_info = resolve_stream(name=desc.name, source_id=desc.source_id or None, timeout=5.0)
            rec = Recorder([eeg_info, marker_name], out)
            rec.start()
            if not outlet.wait_for_consumers(5.0):
                rec.stop()
                raise RuntimeError("the recorder did not connect to the marker stream within 5 s")
            return outlet, rec

        def fail(exc):
            self._set_state("idle")
            self.status_label.setText("Not started.")
            self.report_error(f"Could not start the calibration recording: {error_text(exc)}")

        self.context.background.run(work, lambda r: self._begin(cfg, *r), fail, name="recorder-start")
        return True

    def _begin(self, cfg: ProtocolConfig, outlet: Any, recorder: Any) -> None:
        self.marker_outlet, self.recorder = outlet, recorder
        if self.state != "starting":  # closed meanwhile
            self._stop_recorder(sync=True)
            return
        proto = CalibrationProtocol(cfg, clock=self.clock)
        self._marker_sink = MarkerSink(outlet)
        proto.add_listener(self._marker_sink)
        proto.add_listener(self.context.streams.post_markers)  # drawn on the Connect page's traces
        sim = self.context.streams.simulator
        if sim is not None:
            proto.add_listener(SimulatorCueSink(sim, cfg))
        self.guard = SignalGuard(proto)
        sm = self.context.streams
        c = sm.counters()
        self._counters_at_start = None if c is None else (c.gaps, c.samples_missing)
        self.runner = ProtocolRunner(proto, self)
        self.runner.phase_changed.connect(self._on_event)
        self.runner.progress.connect(self._on_progress)
        self.runner.finished.connect(self._on_finished)
        self.runner.error.connect(self.report_error)
        self.progress.setRange(0, cfg.n_trials)
        self.progress.setValue(0)
        self._set_state("running")
        self.status_label.setText(f"Recording into {self.recording_path.name}")
        self.context.settings.protocol = cfg.to_dict()
        try:
            self.context.session.set_section("protocol", cfg.to_dict())
        except OSError as exc:
            self.report_error(f"Could not write the session config: {exc}")
        self.context.streams.hold("calibration", "a calibration run is recording it")
        self._watch.start()
        self.runner.start()
        if sm.state not in SignalGuard.GOOD:  # already bad: wait for the signal
            self._on_stream_state(sm.state)

    def _on_stream_state(self, state: str) -> None:
        """Pause the run while the stream is stalled or lost; resume when it is back."""
        if self.runner is None or self.state not in ("running", "paused"):
            return
        action = self.guard.on_state(state, last_data=self._last_data_time())
        if action == "paused":
            self._mark_bad(self.guard.last_interrupted)
            why = {"stalled": "the EEG stream stalled", "lost": "the EEG stream is lost",
                   "paused": "the replay is paused"}.get(state, f"the EEG stream is {state}")
            self._set_state("paused")
            self._show_pause(f"Paused: {why}. The interrupted trial is marked bad and repeated; "
                             "the run resumes by itself when the signal is back (still recording).",
                             "Paused \u2014 waiting for the signal")
            # a note, not a banner error: the banner would still say "paused" after the resume
            self.context.report_info(f"Calibration paused: {why}; it resumes when the signal "
                                     "is back.")
        elif action == "resumed":
            self._set_state("running")
            self._show_pause(f"Signal back: resumed. Recording into {self.recording_path.name}",
                             "Paused")
            if self.context is not None:
                self.context.report_info("The signal is back: the calibration goes on.")

    def _last_data_time(self) -> float | None:
        """LSL time of the last EEG sample received (None if unknown)."""
        inlet = self.context.streams.inlet if self.context is not None else None
        try:
            _, ts = inlet.latest(1)
            return float(ts[-1]) if len(ts) else None
        except Exception:  # no inlet / empty buffer: the pause time is used
            return None

    def _mark_bad(self, trials) -> None:
        """Annotate the interrupted trials in the recording: ``BAD_interrupted`` at their cue."""
        outlet = self.marker_outlet
        for t in trials:
            if outlet is None or t.cue_time != t.cue_time:  # no cue shown yet: nothing to mark
                continue
            try:
                outlet.push(BAD_TRIAL, t.cue_time)
            except Exception as exc:
                self.report_error(f"Could not mark the interrupted trial: {error_text(exc)}")

    def _show_pause(self, status: str, screen: str) -> None:
        self.status_label.setText(status)
        for display in (self.cue_display, self.fullscreen):
            if display is not None:
                display.pause_text = screen
                display.update()

    def _on_event(self, ev) -> None:
        done = self.runner.protocol.progress[0] if self.runner is not None else 0
        if ev.phase in (Phase.FINISHED, Phase.ABORTED):
            self.progress.setFormat(f"{done} of {ev.n_trials} trials done ({ev.phase.value})")
        elif ev.trial:
            self.progress.setFormat(f"trial {ev.trial} of {ev.n_trials}  \u00b7  {done} done")
        else:
            self.progress.setFormat(f"starting \u00b7 {ev.n_trials} trials")
        self.cue_display.on_event(ev)
        if self.fullscreen is not None:
            self.fullscreen.on_event(ev)

    def _on_progress(self, done: int, total: int) -> None:
        self.progress.setMaximum(total)
        self.progress.setValue(done)

    def toggle_pause(self) -> None:
        if self.runner is None:
            return
        if self.state == "paused" and self.guard.holding:
            # a note: an error banner would outlive the wait
            self.context.report_info("The calibration waits for the EEG signal: it resumes by "
                                     "itself when the stream is back (or abort with Esc).")
            return
        if self.state == "running":
            self.runner.pause()
            self._set_state("paused")
            self.status_label.setText("Paused \u2014 still recording. The interrupted trial will be repeated.")
        elif self.state == "paused":
            self.runner.resume()
            self._set_state("running")
            self.status_label.setText(f"Recording into {self.recording_path.name}")

    def abort(self) -> None:
        if self.runner is not None and self.state in ("running", "paused"):
            self.runner.abort()

    def _abort_asked(self) -> None:
        if self.state not in ("running", "paused"):
            return
        answer = QMessageBox.question(self, "Abort the calibration?",
                                      "Stop the run now? Completed trials are kept and saved.")
        if answer == QMessageBox.StandardButton.Yes:
            self.abort()

    def _check_recorder(self) -> None:
        rec = self.recorder
        err = None if rec is None else getattr(rec, "error", None)
        if err is not None and self.state in ("running", "paused"):
            self.report_error(f"The recording failed: {error_text(err)}. The run was stopped; what "
                              "was written so far is kept (neurodeck recover).")
            self.abort()

    def _on_finished(self, how: str) -> None:
        proto = self.runner.protocol
        self._watch.stop()
        if self.context is not None:
            self.context.streams.release("calibration")
        done, total = proto.progress
        self.status_label.setText(f"Run {how}: {done} of {total} trials{self.loss_note()}. "
                                  "Saving the recording\u2026")
        self._stop_recorder(sync=False)

    def loss_note(self) -> str:
        """What the run lost, for its final status: interrupted trials, stream gaps."""
        proto = self.runner.protocol if self.runner is not None else None
        if proto is None:
            return ""
        parts = []
        bad = [t for t in proto.interrupted_trials if t.reason.startswith("signal")]
        if bad:
            parts.append(f"{len(bad)} trial(s) interrupted by signal loss, marked bad and repeated")
        if proto.interrupted_trials and len(bad) < len(proto.interrupted_trials):
            parts.append(f"{len(proto.interrupted_trials) - len(bad)} paused by the operator "
                         "and repeated")
        sm = self.context.streams if self.context is not None else None
        c = sm.counters() if sm is not None else None
        if c is not None and self._counters_at_start is not None:
            gaps = c.gaps - self._counters_at_start[0]
            missing = c.samples_missing - self._counters_at_start[1]
            if gaps or missing:
                parts.append(f"{gaps} gap(s) in the EEG, ~{missing} samples missing (annotated "
                             "in the recording)")
        return "" if not parts else " \u2014 " + "; ".join(parts)

    def _stop_recorder(self, sync: bool) -> None:
        rec, outlet = self.recorder, self.marker_outlet
        self.recorder = None
        if rec is None:
            self._set_state("idle")
            return
        self._set_state("saving")

        sink = getattr(self, "_marker_sink", None)
        n_sent = 0 if sink is None else len(sink.sent)

        def work():
            # the last markers (abort, experiment_stop) were pushed a moment ago: let the recorder
            # receive them before it drains, so they cannot be cut off
            deadline = time.monotonic() + 2.0
            try:
                while time.monotonic() < deadline:
                    got = [s.received for s in rec.status.streams if s.kind == "marker"]
                    if not got or min(got) >= n_sent:
                        break
                    time.sleep(0.01)
            except Exception:  # a status problem must never keep the recording from being saved
                logger.exception("waiting for the last markers failed")
            return rec.stop()

        def done(path):
            if outlet is not None:
                outlet.close()
            self.marker_outlet = None
            self.last_saved = Path(path)
            self._set_state("idle")
            self.status_label.setText(f"Saved {Path(path).name} in the session's recordings "
                                      f"folder{self.loss_note()}.")
            if self.context is not None:
                self.context.report_info(f"Calibration saved to {path}")
            self.recording_saved.emit(Path(path))

        def fail(exc):
            self._set_state("idle")
            self.report_error(f"Saving the recording failed: {error_text(exc)} (the partial files stay "
                              f"next to it; `neurodeck recover` can finish them)")

        if sync:
            try:
                done(work())
            except Exception as exc:
                fail(exc)
        else:
            self.context.background.run(work, done, fail, name="recorder-stop")

    def show_fullscreen(self) -> None:
        """Open the participant screen on the chosen monitor, showing the current phase."""
        screen = open_shared_screen(self, "fullscreen", self.context, self.screen_box)
        d = self.cue_display
        screen.cues.phase, screen.cues.class_name = d.phase, d.class_name
        screen.cues.trial, screen.cues.n_trials = d.trial, d.n_trials
        screen.pause_text = d.pause_text
        screen.show_cues()
        screen.show_on(self.screen_box.currentIndex())

    # ------------------------------------------------------------------ page API
    def busy_reason(self) -> str | None:
        if self.state in ("running", "paused", "starting"):
            return f"a calibration run is recording into {self.recording_path}"
        if self.state == "saving":
            return "a calibration recording is being saved"
        return None

    def shutdown(self) -> None:
        if self.runner is not None:
            if self.runner.protocol.running:
                self.runner.protocol.abort()
            self.runner.stop()
        if self.state == "starting":
            self.state = "closing"  # _begin will stop the recorder when it arrives
        if self.recorder is not None:
            self._stop_recorder(sync=True)
        if self.fullscreen is not None:
            self.fullscreen.close()
        if self.context is not None:
            try:
                self.context.settings.protocol = self.config().to_dict()
            except ProtocolError:
                pass

    @property
    def protocol(self) -> CalibrationProtocol | None:
        return None if self.runner is None else self.runner.protocol

    @property
    def phase(self) -> Phase:
        return Phase.IDLE if self.runner is None else self.runner.protocol.phase
