"""The Graz cue display: fixation cross, arrow cues, rest circle; embeddable or full screen.

What it shows per protocol phase:

=========  ====================================================================
idle       "Press Start when the participant is ready"
fixation   white fixation cross
cue        arrow: left hand <-, right hand ->, feet down, tongue up; rest: a circle
imagery    fixation cross (keep imagining)
rest       blank screen (relax, blink)
paused     "Paused"
finished   "Run complete - thank you"
=========  ====================================================================
"""
from __future__ import annotations

import logging

from PyQt6.QtCore import QPointF, QRectF, Qt
from PyQt6.QtGui import QBrush, QColor, QFont, QKeyEvent, QPainter, QPainterPath, QPen
from PyQt6.QtWidgets import QApplication, QSizePolicy, QWidget

from neurodeck.app.protocol import Phase, ProtocolEvent

logger = logging.getLogger(__name__)

#: Direction of the arrow per class (unit vector on screen, y down); None = circle.
ARROWS: dict[str, tuple[float, float] | None] = {
    "left_hand": (-1.0, 0.0),
    "right_hand": (1.0, 0.0),
    "feet": (0.0, 1.0),
    "tongue": (0.0, -1.0),
    "rest": None,
}
CLASS_TEXT = {"left_hand": "left hand", "right_hand": "right hand", "feet": "feet",
              "tongue": "tongue", "rest": "rest"}


class CueDisplay(QWidget):
    """Draws the current protocol phase. Feed it :class:`~app.protocol.ProtocolEvent` s.

    Parameters
    ----------
    show_progress : bool
        Write "trial k of n" in a corner (for the operator's preview; off on the subject's screen).
    beep : bool
        Ring the system bell on ``beep`` markers.
    """

    def __init__(self, parent: QWidget | None = None, *, show_progress: bool = True, beep: bool = True):
        super().__init__(parent)
        self.phase: Phase = Phase.IDLE
        self.class_name: str | None = None
        self.trial = 0
        self.n_trials = 0
        self.show_progress = show_progress
        self.beep = beep
        self.events_seen = 0
        #: shown while paused: "Paused", or why (e.g. waiting for the signal)
        self.pause_text = "Paused"
        self.setMinimumSize(320, 240)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)

    # ------------------------------------------------------------------ model
    def on_event(self, ev: ProtocolEvent) -> None:
        self.phase = ev.phase
        self.class_name = ev.class_name
        self.trial, self.n_trials = ev.trial, ev.n_trials
        self.events_seen += 1
        if self.beep and "beep" in ev.markers:
            QApplication.beep()
        self.update()

    def reset(self) -> None:
        self.phase, self.class_name, self.trial = Phase.IDLE, None, 0
        self.update()

    def open_fullscreen(self) -> CueDisplay:
        """A separate borderless full-screen copy for the participant's screen (Esc closes)."""
        win = CueDisplay(None, show_progress=False, beep=self.beep)
        win.setWindowTitle("neurodeck cues")
        win.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        win.phase, win.class_name, win.trial, win.n_trials = (self.phase, self.class_name,
                                                             self.trial, self.n_trials)
        win.pause_text = self.pause_text
        screens = QApplication.screens()
        if len(screens) > 1:  # prefer a second screen: the participant's
            win.setGeometry(screens[-1].geometry())
        win.showFullScreen()
        return win

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802
        if event.key() == Qt.Key.Key_Escape and self.isWindow():
            self.close()
        else:
            super().keyPressEvent(event)

    # ------------------------------------------------------------------ drawing
    def paintEvent(self, event) -> None:  # noqa: N802, ARG002
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.fillRect(self.rect(), QColor("#101418"))
        w, h = self.width(), self.height()
        c = QPointF(w / 2, h / 2)
        size = min(w, h) * 0.32
        phase = self.phase
        if phase in (Phase.FIXATION, Phase.IMAGERY):
            self._cross(p, c, size)
        elif phase is Phase.CUE:
            self._cross(p, c, size)
            self._cue(p, c, size)
        elif phase is Phase.REST:
            pass
        elif phase is Phase.PAUSED:
            self._text(p, self.pause_text, 0.09 if len(self.pause_text) < 12 else 0.05)
        elif phase is Phase.FINISHED:
            self._text(p, "Run complete \u2014 thank you", 0.045)
        elif phase is Phase.ABORTED:
            self._text(p, "Run stopped", 0.07)
        else:
            self._text(p, "Press Start when the participant is ready", 0.045)
        if self.show_progress and self.n_trials:
            p.setPen(QColor("#90a4ae"))
            f = QFont()
            f.setPointSizeF(max(9.0, h * 0.025))
            p.setFont(f)
            label = f"trial {self.trial} of {self.n_trials} \u00b7 {phase.value}"
            if phase is Phase.CUE and self.class_name:
                label += f" \u00b7 {CLASS_TEXT.get(self.class_name, self.class_name)}"
            p.drawText(QRectF(12, h - 12 - h * 0.05, w - 24, h * 0.05),
                       Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, label)
        p.end()

    def _cross(self, p: QPainter, c: QPointF, size: float) -> None:
        pen = QPen(QColor("#eceff1"))
        pen.setWidthF(max(3.0, size * 0.06))
        pen.setCapStyle(Qt.PenCapStyle.FlatCap)
        p.setPen(pen)
        half = size * 0.5
        p.drawLine(QPointF(c.x() - half, c.y()), QPointF(c.x() + half, c.y()))
        p.drawLine(QPointF(c.x(), c.y() - half), QPointF(c.x(), c.y() + half))

    def _cue(self, p: QPainter, c: QPointF, size: float) -> None:
        direction = ARROWS.get(self.class_name or "", None)
        colour = QColor("#ffca28")
        if direction is None:  # rest: a ring around the cross
            pen = QPen(colour)
            pen.setWidthF(max(3.0, size * 0.07))
            p.setPen(pen)
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.drawEllipse(c, size * 0.75, size * 0.75)
            return
        dx, dy = direction
        px, py = -dy, dx  # perpendicular
        length, shaft, head_w, head_l = size * 1.1, size * 0.12, size * 0.34, size * 0.42
        tip = QPointF(c.x() + dx * length, c.y() + dy * length)
        base = QPointF(tip.x() - dx * head_l, tip.y() - dy * head_l)
        path = QPainterPath()
        path.moveTo(c.x() + px * shaft, c.y() + py * shaft)
        path.lineTo(base.x() + px * shaft, base.y() + py * shaft)
        path.lineTo(base.x() + px * head_w, base.y() + py * head_w)
        path.lineTo(tip)
        path.lineTo(base.x() - px * head_w, base.y() - py * head_w)
        path.lineTo(base.x() - px * shaft, base.y() - py * shaft)
        path.lineTo(c.x() - px * shaft, c.y() - py * shaft)
        path.closeSubpath()
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QBrush(colour))
        p.drawPath(path)

    def _text(self, p: QPainter, text: str, rel_size: float) -> None:
        p.setPen(QColor("#eceff1"))
        f = QFont()
        f.setPointSizeF(max(12.0, self.height() * rel_size))
        p.setFont(f)
        p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, text)
