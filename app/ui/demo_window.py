"""`neurodeck demo` with a display: the real main window doing the whole session by itself.

:func:`run_demo_window` opens :class:`DemoWindow` (the product's :class:`~app.ui.main_window.
MainWindow` plus a *Demo* panel at the bottom) and runs the Qt-free :func:`app.demo.run_demo` on a
worker thread. The window follows the demo:

1. *Calibration*: the Connect page's stream model connects (by name) to the replayed EEG and
   marker streams, so the signal viewer, spectrum and status bar show the live replay while the
   recorder writes it into the session.
2. *Training*: the Train page, with the cross-validation lines in the demo log.
3. *Online*: the Online page loads the trained bundle; its Graz bar is driven by the demo
   engine's live decisions (smoothed), the cue arrow by the live markers.

At the end the scores (the text of :func:`app.demo.summary_text`) are shown in the panel
and printed to stdout; the window stays open until the user closes it (or ``auto_close_s``).
Errors go to the window's error banner. Closing the window mid-demo asks the worker to stop
(replays, recorder and engine end within about a second; a running cross-validation finishes
first) and closes once it has.

Threads: the demo's callbacks (report lines, stage news, decisions) run on the worker or engine
threads and reach the GUI only through queued Qt signals of :class:`DemoRunner`. Stage news that
change streams are a handshake: the worker waits (bounded) until the GUI has connected or
disconnected its inlets, so the window never sees a replay vanish under it ("stream lost").
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import os
import re
import sys
import threading
import time
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PyQt6.QtCore import QObject, Qt, QTimer, pyqtSignal
from PyQt6.QtGui import QFontDatabase
from PyQt6.QtWidgets import (
    QDockWidget,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QWidget,
)

from neurodeck.app.demo import demo_ok, summary_text
from neurodeck.app.ui.main_window import MainWindow
from neurodeck.app.ui.qt_models import error_text

logger = logging.getLogger(__name__)

#: Environment variable: close the window this many seconds after the demo ended (tests, videos).
AUTO_CLOSE_ENV = "NEURODECK_DEMO_AUTOCLOSE"

STEPS = {
    "session": (0, "Preparing the session folder"),
    "calibration": (1, "Calibration \u2014 10 trials per class of runs 4 + 8 replayed over LSL "
                    "and recorded"),
    "training": (2, "Training \u2014 population model fine-tuned, saved as ONNX"),
    "online": (3, "Online \u2014 unseen run 12 decoded live, Graz feedback"),
}
#: What each step does, for the log.
EXPLAIN = {
    "calibration": "The Connect page shows the replayed EEG (signal viewer, spectrum, stream state "
                   "in the status bar) while the recorder writes it into the session.",
    "training": "The shipped population model (12 other subjects) is fine-tuned on the recorded "
                "calibration (its re-centering reference starts from these trials) and saved as "
                "a bundle (ONNX + JSON) in the session; the pipelines are cross-validated from "
                "scratch on the same trials, for comparison.",
    "online": "Run 12 was never seen in training. The Online page's Graz bar follows the live "
              "decisions (smoothed, 0.5 s); the arrow shows the cue of the live marker stream.",
}
_PERCENT = re.compile(r"(\d+)%")


class DemoRunner(QObject):
    """Runs :func:`app.demo.run_demo` on a Python thread and re-emits its news as Qt signals.

    Signals
    -------
    line(str)
        A progress line of the demo.
    stage(str, object, object)
        Stage name, its info dict, and a :class:`threading.Event` the GUI sets once it has
        followed the stage (the worker waits for it, at most ``ack_timeout_s``).
    decision(object)
        A live :class:`app.engine.Decision` (emitted on the engine thread).
    finished(object)
        The :class:`app.demo.DemoResult`.
    failed(object)
        The exception that ended the demo (:class:`app.demo.DemoCancelled` after :meth:`stop`).
    """

    line = pyqtSignal(str)
    stage = pyqtSignal(str, object, object)
    decision = pyqtSignal(object)
    finished = pyqtSignal(object)
    failed = pyqtSignal(object)

    def __init__(self, root: str | Path, *, speed: float, pipelines: Sequence[str],
                 ack_timeout_s: float = 10.0, parent: QObject | None = None):
        super().__init__(parent)
        self.root = Path(root)
        self.speed = float(speed)
        self.pipelines = list(pipelines)
        self.ack_timeout_s = float(ack_timeout_s)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("the demo runs only once per DemoRunner")
        self._thread = threading.Thread(target=self._run, name="neurodeck-demo", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Ask the demo to stop (returns at once; :attr:`failed` follows with DemoCancelled)."""
        self._stop.set()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the worker thread; True if it has ended."""
        if self._thread is not None:
            self._thread.join(timeout)
        return not self.running

    # ------------------------------------------------------------------ worker thread
    def _run(self) -> None:
        from neurodeck.app.demo import run_demo

        try:
            result = run_demo(self.root, speed=self.speed, pipelines=self.pipelines,
                              report=self.line.emit, on_decision=self.decision.emit,
                              on_stage=self._on_stage, should_stop=self._stop.is_set)
        except BaseException as exc:  # delivered to the window, never lost
            logger.debug("demo ended with %r", exc, exc_info=True)
            self.failed.emit(exc)
        else:
            self.finished.emit(result)

    def _on_stage(self, stage: str, info: dict) -> None:
        ack = threading.Event()
        self.stage.emit(stage, dict(info), ack)
        deadline = time.monotonic() + self.ack_timeout_s
        while not ack.wait(0.05):
            if self._stop.is_set() or time.monotonic() > deadline:
                if not self._stop.is_set():
                    logger.warning("the window did not follow the demo stage %r in %.0f s",
                                   stage, self.ack_timeout_s)
                return


class DemoPanel(QWidget):
    """The bottom panel: current step, progress, the demo log, and the scores at the end."""

    stop_requested = pyqtSignal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        row = QHBoxLayout(self)
        row.setContentsMargins(10, 0, 10, 4)
        self.row = row
        #: step, progress and stop button: the dock's title bar (see :class:`DemoWindow`)
        self.header = QWidget()
        self.header.setObjectName("demoHeader")
        self.header.setStyleSheet("#demoHeader { background: #e3eaf5; border-top: 1px solid #b0bec5; }")
        head = QHBoxLayout(self.header)
        head.setContentsMargins(10, 3, 10, 3)
        tag = QLabel("DEMO")
        tag.setStyleSheet("background: #1565c0; color: white; font-weight: 700; padding: 2px 8px; "
                          "border-radius: 3px;")
        tag.setToolTip("neurodeck demo: calibration -> training -> online on a real recording "
                       "(PhysioNet EEGMMIDB S001, ODC-By)")
        head.addWidget(tag)
        self.step_label = QLabel("Starting the demo\u2026")
        self.step_label.setStyleSheet("font-size: 12pt; font-weight: 600; color: #1a237e;")
        self.step_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        head.addWidget(self.step_label, 1)
        self.progress = QProgressBar()
        self.progress.setRange(0, 100)
        self.progress.setValue(0)
        self.progress.setFormat("%p%")
        self.progress.setFixedWidth(220)
        head.addWidget(self.progress)
        self.stop_button = QPushButton("Stop demo")
        self.stop_button.setToolTip("Stop the replays, keep what was recorded")
        self.stop_button.clicked.connect(self.stop_requested)
        head.addWidget(self.stop_button)
        self.log_button = QPushButton("Show log")
        self.log_button.setCheckable(True)
        self.log_button.setToolTip("Switch between the demo log and the calibration scores")
        self.log_button.toggled.connect(self._toggle_log)
        self.log_button.hide()
        head.addWidget(self.log_button)
        mono = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        mono.setPointSizeF(9.0)
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(3000)
        self.log.setFont(mono)
        self.log.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        row.addWidget(self.log, 3)
        self.scores = QPlainTextEdit("The scores appear here when the online run ends.")
        self.scores.setReadOnly(True)
        self.scores.setFont(mono)
        self.scores.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        # at the end the scores take the whole panel: calibration part | online part
        self.scores_calibration = QPlainTextEdit()
        self.scores_calibration.setReadOnly(True)
        self.scores_calibration.setFont(mono)
        self.scores_calibration.hide()
        row.addWidget(self.scores_calibration, 0)
        row.addWidget(self.scores, 2)
        self._score_style("#546e7a")

    def _score_style(self, colour: str) -> None:
        for w in (self.scores, self.scores_calibration):
            w.setStyleSheet(f"QPlainTextEdit {{ background: #f5f7fa; color: {colour}; "
                            "border: 1px solid #cfd8dc; border-radius: 4px; }")

    def _toggle_log(self, show_log: bool) -> None:
        self.log.setVisible(show_log)
        self.scores_calibration.setVisible(not show_log)
        self.log_button.setText("Show scores" if show_log else "Show log")

    def add_line(self, text: str) -> None:
        self.log.appendPlainText(text)
        sb = self.log.verticalScrollBar()
        sb.setValue(sb.maximum())

    def set_step(self, text: str, busy: bool = False) -> None:
        self.step_label.setText(text)
        if busy:
            self.progress.setRange(0, 0)
        else:
            self.progress.setRange(0, 100)
            self.progress.setValue(0)

    def show_scores(self, text: str, ok: bool) -> None:
        """Show the final scores (green if the demo passed, red otherwise) in place of the log.

        The lines of ``text`` are split in two columns so that they fit the panel: the
        calibration part and the session folder on the left, the online part on the right.
        """
        lines = text.strip("\n").splitlines()
        cut = next((i for i, line in enumerate(lines) if line.startswith("online")), len(lines))
        tail = [line for line in lines[cut:] if line.startswith("session folder")]
        self.scores_calibration.setPlainText("\n".join(lines[:cut] + tail))
        self.scores.setPlainText("\n".join(line for line in lines[cut:] if line not in tail))
        for w in (self.scores, self.scores_calibration):
            w.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)
        self._score_style("#1b5e20" if ok else "#b71c1c")
        self.row.setStretch(0, 1)
        self.row.setStretch(1, 1)
        self.row.setStretch(2, 2)
        self.log_button.setChecked(False)
        self._toggle_log(False)
        self.log_button.show()
        self.stop_button.hide()

    def shown_scores(self) -> list[str]:
        """Every score line on show (both columns)."""
        return (self.scores_calibration.toPlainText().splitlines()
                + self.scores.toPlainText().splitlines())


class DemoWindow(MainWindow):
    """The main window running ``neurodeck demo`` by itself.

    Parameters
    ----------
    root : path
        Session root folder (the demo creates ``demo-S001/demo-<time>`` in it).
    speed : float
        Replay speed, multiples of real time.
    pipelines : sequence of str
        Pipelines cross-validated on the calibration.
    json_out : path, optional
        Write the scores as JSON there.
    auto_close_s : float, optional
        Close the window this many seconds after the demo ended (None: stay open).

    Signals
    -------
    demo_done(int)
        Exit code: 0 (above chance, no decision lost), 1 otherwise (failed, stopped, weak).
    closed()
        The window has closed and everything stopped.
    """

    demo_done = pyqtSignal(int)
    closed = pyqtSignal()

    def __init__(self, root: str | Path, *, speed: float = 8.0,
                 pipelines: Sequence[str] = ("ts-lr",), json_out: str | Path | None = None,
                 auto_close_s: float | None = None, context=None, settings=None):
        super().__init__(context=context, settings=settings)
        self.confirm = lambda _text: True  # closing the demo stops it; nothing to ask
        self.json_out = Path(json_out) if json_out is not None else None
        self.auto_close_s = auto_close_s
        self.result: Any = None
        self.exit_code: int | None = None
        self.error: str | None = None
        #: live decisions that reached the feedback, the bar values drawn, the cues shown
        self.decisions_shown = 0
        self.bar_values: list[float] = []
        self.cues_shown: list[str] = []
        #: every stage of the demo, in order, and the LSL streams the window connected to
        self.stages_seen: list[str] = []
        self.streams_followed: list[tuple[str, str | None]] = []
        self._labels: list[str] = []
        self._speed = float(speed)
        self._smoother: Any = None
        self._marker_inlet: Any = None
        self._marker_cb: Any = None
        self._close_when_stopped = False
        #: live scoring of the cued trials (:class:`CuedRunScorer`: the rule of the final scores)
        self.scorer: Any = None
        self.live_trials: list[Any] = []
        self._history: deque = deque(maxlen=800)
        self._last_t: float | None = None
        self._tick_timer = QTimer(self)
        self._tick_timer.setInterval(250)
        self._tick_timer.timeout.connect(self._tick)

        self.runner = DemoRunner(root, speed=speed, pipelines=pipelines, parent=self)
        self.runner.line.connect(self._on_line)
        self.runner.stage.connect(self._on_stage)
        self.runner.decision.connect(self._on_decision)
        self.runner.finished.connect(self._on_finished)
        self.runner.failed.connect(self._on_failed)
        self.cue_bridge = _CueBridge(self)
        self.cue_bridge.cue.connect(self._on_cue)

        self.panel = DemoPanel()
        self.panel.stop_requested.connect(self.stop_demo)
        self.dock = QDockWidget("neurodeck demo \u2014 calibration \u2192 training \u2192 online, "
                                "on a real recording (PhysioNet EEGMMIDB S001)", self)
        self.dock.setObjectName("demoDock")
        self.dock.setFeatures(QDockWidget.DockWidgetFeature.NoDockWidgetFeatures)
        self.dock.setWidget(self.panel)
        self.dock.setTitleBarWidget(self.panel.header)
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.dock)
        # the pages need ~700 px: the panel takes the rest of a 900 px window (more if taller)
        self.resizeDocks([self.dock], [max(185, self.height() - 715)], Qt.Orientation.Vertical)

        online = self.pages.get("online")
        self.graz = getattr(online, "graz", None)
        if self.graz is None:  # the Online page could not load: a bar of our own in the panel
            from neurodeck.app.ui.feedback import GrazBar

            self.graz = GrazBar()
            self.panel.layout().insertWidget(1, self.graz, 2)

    # ------------------------------------------------------------------ running
    def start(self) -> None:
        """Start the demo on its worker thread."""
        self.panel.add_line(f"neurodeck demo at {self._speed:g}x real time, pipelines "
                            f"{', '.join(self.runner.pipelines)}; session root {self.runner.root}")
        self.runner.start()

    def stop_demo(self) -> None:
        if self.runner.running and not self.runner.stopping:
            self.runner.stop()
            self.panel.stop_button.setEnabled(False)
            self.panel.set_step("Stopping the demo\u2026", busy=True)
            self.panel.add_line("stop requested: the replays and the recording end within about a "
                                "second (a running cross-validation finishes first)")

    # ------------------------------------------------------------------ demo news (GUI thread)
    def _on_line(self, text: str) -> None:
        self.panel.add_line(text)
        m = _PERCENT.search(text)
        if m and self.panel.progress.maximum() > 0:
            self.panel.progress.setValue(int(m.group(1)))
        if text.lstrip().startswith("decoding..."):
            online = self.pages.get("online")
            label = getattr(online, "stats_label", None)
            if label is not None:
                label.setText(f"Demo engine: {text.strip()[len('decoding...'):].strip()}")

    def _on_stage(self, stage: str, info: dict, ack: threading.Event) -> None:
        self.stages_seen.append(stage)
        waits = False
        try:
            waits = self._follow_stage(stage, info, ack)
        except Exception as exc:  # the window must never stall the demo
            logger.exception("following demo stage %s", stage)
            self.context.report_error(f"The demo window could not follow the {stage} step: "
                                      f"{error_text(exc)}")
        finally:
            if not waits:
                ack.set()

    def _follow_stage(self, stage: str, info: dict, ack: threading.Event) -> bool:
        """Follow one stage; True if ``ack`` will be set later (stream connection pending)."""
        if stage in STEPS:
            n, text = STEPS[stage]
            self.panel.set_step(f"Step {n} of 3 \u00b7 {text}" if n else text,
                                busy=stage in ("session", "training"))
            if stage in EXPLAIN:
                self.panel.add_line(f"== step {n} of 3: {stage}. {EXPLAIN[stage]}")
        sm = self.context.streams
        if stage == "session":
            from neurodeck.app.session import Session

            session = Session.open(info["path"])
            # not context.set_session: a demo session must not become the user's "last session"
            self.context.session = session
            self.context.session_changed.emit(session)
        elif stage in ("calibration", "online"):
            self.show_page("connect" if stage == "calibration" else "online")
            markers = info.get("markers") or []
            if stage == "online":
                self._start_feedback(info)

            def connected(_result, stage=stage):
                if stage == "online":
                    self._listen_markers()
                if stage == "calibration":
                    page = self.pages.get("connect")
                    if hasattr(page, "refresh"):
                        page.refresh()  # the LSL list shows (and selects) the demo streams
                ack.set()

            self.streams_followed.append((info["eeg"], markers[0] if markers else None))
            sm.release("demo")
            sm.connect_streams(info["eeg"], markers[0] if markers else None, on_done=connected)
            # the user cannot switch the source under the running demo
            sm.hold("demo", "neurodeck demo is replaying this stream")
            return True
        elif stage in ("calibration-end", "online-end"):
            self._unlisten_markers()
            sm.release("demo")
            sm.disconnect()
            if stage == "online-end":
                self._end_feedback()
        elif stage == "training":
            self.show_page("train")
        elif stage == "trained":
            online = self.pages.get("online")
            if hasattr(online, "load_model"):  # shows the model's description on the page
                online.load_model(info["bundle"])
        return False

    def _start_feedback(self, info: dict) -> None:
        from neurodeck.app.feedback_model import OutputSmoother

        self._labels = [str(x) for x in info.get("labels", [])]
        self._speed = float(info.get("speed", self._speed))
        self._smoother = OutputSmoother(0.5)
        neg, pos = ("left_hand", "right_hand") if {"left_hand", "right_hand"} <= set(self._labels) \
            else tuple(self._labels[:2])
        self.graz.set_labels(neg, pos)
        self.graz.set_value(float("nan"))
        from neurodeck.app.demo import EVENTS
        from neurodeck.app.feedback_model import CuedRunScorer

        # the same trial rule as run_demo's final scores (decoders.evaluation.score_trial): a
        # decision counts once its window's signal part (after the padding) is after the cue
        sfreq, start_s = 160.0, 2.0
        with contextlib.suppress(OSError, ValueError, TypeError, KeyError):
            meta = json.loads((Path(info["bundle"]) / "model.json").read_text())
            sfreq = float(meta["sfreq"])
            n_pad = int(round(float(meta.get("pad_s", 0.0)) * sfreq))
            start_s = (int(meta["window_samples"]) - n_pad) / sfreq
        self.scorer = CuedRunScorer(self._labels, EVENTS, sfreq=sfreq, trial_s=4.0, start_s=start_s)
        self.live_trials = []
        self._history.clear()
        self._last_t = None
        online = self.pages.get("online")
        table = getattr(online, "trials_table", None)
        if table is not None:
            table.setRowCount(0)
        self._set_online_summary(
            "Live, from the demo engine's decisions (published on LSL as "
            f"\u201c{info.get('decisions', '?')}\u201d): waiting for the first cue\u2026")
        self._tick_timer.start()

    def _set_online_summary(self, text: str) -> None:
        label = getattr(self.pages.get("online"), "summary_label", None)
        if label is not None:
            label.setText(text)

    def _scored(self, trial: Any) -> None:
        """A live-scored trial: a row in the Online page's table, the running summary."""
        if trial is None:
            return
        self.live_trials.append(trial)
        table = getattr(self.pages.get("online"), "trials_table", None)
        if table is not None:
            from PyQt6.QtGui import QColor
            from PyQt6.QtWidgets import QTableWidgetItem

            row = table.rowCount()
            table.insertRow(row)
            cells = [trial.label, trial.predicted or "\u2014",
                     "\u2014" if trial.n_decisions == 0 else ("yes" if trial.correct else "no"),
                     "\u2014" if trial.time_to_decision_s is None
                     else f"{trial.time_to_decision_s:.2f} s"]
            for j, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if trial.n_decisions:
                    item.setBackground(QColor("#e8f5e9") if trial.correct else QColor("#ffebee"))
                table.setItem(row, j, item)
            table.scrollToBottom()
        self._set_online_summary(f"Live: {self.scorer.summary().line()}")

    def _tick(self) -> None:
        """4 Hz: close trials whose time is over, draw the smoothed probabilities."""
        if self.scorer is not None and self._last_t is not None:
            self._scored(self.scorer.advance(self._last_t))
            self.graz.set_cue(self.scorer.current_label)
        curves = getattr(self.pages.get("online"), "prob_curves", None)
        plot = getattr(self.pages.get("online"), "prob_plot", None)
        if self._history and curves and len(curves) == len(self._labels):
            import numpy as np

            t = np.array([h[0] for h in self._history])
            P = np.array([h[1] for h in self._history])  # noqa: N806 (a matrix)
            for k, c in enumerate(curves):
                c.setData(t - t[-1], P[:, k])
            if plot is not None:
                plot.setXRange(-10, 0)

    def _end_feedback(self) -> None:
        self._tick()
        self._tick_timer.stop()
        if self.scorer is not None:
            self._scored(self.scorer.finish())
        self.graz.set_cue(None)

    def _listen_markers(self) -> None:
        inlet = self.context.streams.marker_inlet
        if inlet is None or not hasattr(inlet, "add_marker_listener"):
            return
        cb = self.cue_bridge.cue.emit
        inlet.add_marker_listener(cb)
        self._marker_inlet, self._marker_cb = inlet, cb

    def _unlisten_markers(self) -> None:
        if self._marker_inlet is not None:
            with contextlib.suppress(ValueError):
                self._marker_inlet.remove_marker_listener(self._marker_cb)
        self._marker_inlet = self._marker_cb = None

    def _on_cue(self, ts: float, label: str) -> None:
        if self.scorer is None:
            return
        self._scored(self.scorer.on_marker(label, float(ts) * self._speed))
        cls = self.scorer.class_of(label)
        if cls is not None:
            self.cues_shown.append(cls)
        self.graz.set_cue(self.scorer.current_label)

    def _on_decision(self, d: Any) -> None:
        if self._smoother is None or not self._labels:
            return
        from neurodeck.app.feedback_model import bar_value

        self.decisions_shown += 1
        t = float(d.timestamp) * self._speed  # stream seconds (the replay runs at speed x)
        self._last_t = t
        smoothed = self._smoother.update(d.values, t)
        if smoothed is not None:
            value = bar_value(smoothed, self._labels, self.graz.negative, self.graz.positive)
            self.bar_values.append(value)
            self.graz.set_value(value)
            self._history.append((t, smoothed))
        if self.scorer is not None:
            self._scored(self.scorer.on_decision(d.values, t))
            self.graz.set_cue(self.scorer.current_label)

    def _on_finished(self, result: Any) -> None:
        self.result = result
        text = summary_text(result)
        sys.stdout.write(text)
        sys.stdout.flush()
        ok = demo_ok(result)
        self.panel.show_scores(text, ok)
        self.panel.set_step("Done \u00b7 the scores are below (and in the terminal); close the window to quit")
        self.panel.add_line(f"== done: online accuracy {result.online_accuracy:.3f} over "
                            f"{result.online_trials} trials; session in {result.session_dir}")
        self.panel.progress.setValue(100)
        self.panel.stop_button.setEnabled(False)
        live = ("" if self.scorer is None else
                f" Live (decisions the window received): {self.scorer.summary().line()}.")
        self._set_online_summary(
            f"Demo score: {result.online_accuracy:.3f} over {result.online_trials} trials "
            f"(chance 0.5), median time to decision {result.online_time_to_decision_s:.2f} s."
            + live)
        if self.json_out is not None:
            try:
                self.json_out.write_text(json.dumps(dataclasses.asdict(result), indent=2,
                                                    default=str))
            except OSError as exc:
                self.context.report_error(f"Could not write the scores to {self.json_out}: {exc}")
        if not ok:
            msg = "online decoding did not beat chance or decisions were lost"
            self.context.report_error(f"The demo ran, but {msg}.")
            print(f"neurodeck demo: {msg}", file=sys.stderr)
        self._done(0 if ok else 1)

    def _on_failed(self, exc: BaseException) -> None:
        from neurodeck.app.demo import DemoCancelled

        if isinstance(exc, DemoCancelled):
            self.panel.set_step("Stopped before the end (nothing was scored).")
            self.panel.add_line("demo stopped")
            print("neurodeck demo: stopped before the end", file=sys.stderr)
        else:
            self.error = error_text(exc)
            self.panel.set_step("The demo failed \u2014 see the message at the top.")
            self.panel.add_line(f"ERROR: {self.error}")
            self.context.report_error(f"The demo failed: {self.error}")
            print(f"neurodeck demo: failed: {self.error}", file=sys.stderr)
        self.panel.progress.setRange(0, 100)
        self.panel.stop_button.setEnabled(False)
        self._done(1)

    def _done(self, code: int) -> None:
        self.exit_code = code
        self.demo_done.emit(code)
        if self._close_when_stopped:
            QTimer.singleShot(0, self.close)
        elif self.auto_close_s is not None:
            QTimer.singleShot(int(max(0.0, self.auto_close_s) * 1000), self.close)

    # ------------------------------------------------------------------ closing
    def closeEvent(self, event) -> None:  # noqa: N802 (Qt name)
        if self.exit_code is None and self.runner.running:
            # stop the demo first; the window closes once the worker has reported its end
            self._close_when_stopped = True
            self.stop_demo()
            event.ignore()
            return
        self.runner.join(10.0)  # it has reported its end: at most a few lines left to run
        super().closeEvent(event)
        if event.isAccepted():
            self.closed.emit()

    def shutdown(self) -> None:
        """Stop the demo (waits for its thread), then everything the window runs."""
        if self.runner.running:
            self.runner.stop()
            if not self.runner.join(60.0):
                logger.warning("the demo thread did not end within 60 s")
        self._unlisten_markers()
        super().shutdown()


class _CueBridge(QObject):
    """Marker-inlet callbacks (pull thread) -> GUI thread."""

    cue = pyqtSignal(float, str)


def run_demo_window(root: str | Path, *, speed: float, pipelines: Sequence[str],
                    json_out: str | Path | None = None, auto_close_s: float | None = None) -> int:
    """Open the window, run the demo in it, return the exit code when the window is closed.

    ``auto_close_s`` (default: the ``NEURODECK_DEMO_AUTOCLOSE`` environment variable, else
    stay open) closes the window that many seconds after the demo ended.
    """
    from PyQt6.QtCore import QEventLoop
    from PyQt6.QtWidgets import QApplication

    if auto_close_s is None and os.environ.get(AUTO_CLOSE_ENV):
        try:
            auto_close_s = float(os.environ[AUTO_CLOSE_ENV])
        except ValueError:
            from neurodeck.app.errors import UserError

            raise UserError(f"{AUTO_CLOSE_ENV}={os.environ[AUTO_CLOSE_ENV]!r} invalid; expected "
                            "seconds (a number)") from None
        if not math.isfinite(auto_close_s):
            auto_close_s = None
    app = QApplication.instance()
    if app is None:
        from neurodeck.app.display import window_problem

        problem = window_problem()
        if problem is not None:  # Qt would abort the process: run headless instead
            print(f"neurodeck demo: {problem} Running headless.", flush=True)
            return _run_headless(root, speed=speed, pipelines=pipelines, json_out=json_out)
        app = QApplication(sys.argv[:1])
    print("neurodeck demo: opening the window (calibration -> training -> online); the scores "
          "are printed here at the end.", flush=True)
    win = DemoWindow(root, speed=speed, pipelines=pipelines, json_out=json_out,
                     auto_close_s=auto_close_s)
    loop = QEventLoop()
    win.closed.connect(loop.quit)
    win.show()
    win.raise_()
    QTimer.singleShot(0, win.start)
    loop.exec()
    win.shutdown()  # idempotent; the close already did it
    app.processEvents()
    return 1 if win.exit_code is None else win.exit_code


def _run_headless(root: str | Path, *, speed: float, pipelines: Sequence[str],
                  json_out: str | Path | None) -> int:
    """The headless demo (as ``neurodeck demo --headless``), when no window can open."""
    from neurodeck.app.demo import run_demo

    result = run_demo(Path(root), speed=speed, pipelines=list(pipelines),
                      report=lambda line: print(line, flush=True))
    sys.stdout.write(summary_text(result))
    if json_out is not None:
        Path(json_out).write_text(json.dumps(dataclasses.asdict(result), indent=2, default=str))
    if not demo_ok(result):
        print("neurodeck demo: online decoding did not beat chance or decisions were lost",
              file=sys.stderr)
        return 1
    return 0
