"""Feedback widgets of the Online page: the Graz bar and the cursor task view.

Both are plain painted QWidgets (no logic): the Online page feeds them values computed by
:mod:`app.feedback_model`.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from PyQt6.QtCore import QPointF, QRectF, Qt
from PyQt6.QtGui import QBrush, QColor, QFont, QPainter, QPainterPath, QPen, QPolygonF
from PyQt6.QtWidgets import QSizePolicy, QWidget

CUE_COLOUR = QColor("#ffb300")
BAR_NEG = QColor("#1565c0")
BAR_POS = QColor("#c62828")
BACKGROUND = QColor("#263238")


def _pretty(label: str) -> str:
    return str(label).replace("_", " ")


class GrazBar(QWidget):
    """Horizontal feedback bar from the centre: left for the first class, right for the second.

    ``set_value(v)`` with ``v`` in [-1, 1] (NaN hides the bar); ``set_cue(label)`` draws the
    cue arrow towards that class's side (None: fixation cross only).
    """

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.value = float("nan")
        self.negative = "left_hand"
        self.positive = "right_hand"
        self.cue: str | None = None
        #: write the output value under the bar (the operator's view; not the participant's)
        self.show_numbers = True
        #: size of labels and arrow (2-3 on the participant screen, readable at 2 m)
        self.text_scale = 1.0
        self.setMinimumSize(360, 220)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def set_labels(self, negative: str, positive: str) -> None:
        self.negative, self.positive = str(negative), str(positive)
        self.update()

    def set_value(self, value: float) -> None:
        self.value = float(value)
        self.update()

    def set_cue(self, label: str | None) -> None:
        self.cue = label
        self.update()

    def paintEvent(self, ev) -> None:  # noqa: N802 (Qt name)
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        w, h = self.width(), self.height()
        p.fillRect(self.rect(), BACKGROUND)
        cx, cy = w / 2, h / 2
        half = w * 0.42
        bar_h = max(16.0, h * 0.16)
        # track
        p.setPen(QPen(QColor("#546e7a"), 1.5))
        p.setBrush(Qt.BrushStyle.NoBrush)
        p.drawRect(QRectF(cx - half, cy - bar_h / 2, 2 * half, bar_h))
        # bar
        v = self.value
        if math.isfinite(v):
            v = max(-1.0, min(1.0, v))
            colour = BAR_POS if v > 0 else BAR_NEG
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(QBrush(colour))
            x0, x1 = sorted((cx, cx + v * half))
            p.drawRect(QRectF(x0, cy - bar_h / 2, x1 - x0, bar_h))
        # fixation cross
        p.setPen(QPen(QColor("white"), 3))
        arm = bar_h * 0.9
        p.drawLine(QPointF(cx - arm, cy), QPointF(cx + arm, cy))
        p.drawLine(QPointF(cx, cy - arm), QPointF(cx, cy + arm))
        # cue arrow above the bar
        if self.cue in (self.negative, self.positive):
            sign = -1 if self.cue == self.negative else 1
            ay = cy - bar_h * 1.6
            length = half * 0.45
            tip = QPointF(cx + sign * length, ay)
            k = self.text_scale
            p.setPen(QPen(CUE_COLOUR, 6 * k))
            p.drawLine(QPointF(cx, ay), QPointF(cx + sign * (length - 14 * k), ay))
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(CUE_COLOUR)
            p.drawPolygon(QPolygonF([tip, QPointF(tip.x() - sign * 22 * k, ay - 13 * k),
                                     QPointF(tip.x() - sign * 22 * k, ay + 13 * k)]))
        # class labels
        f = QFont()
        k = self.text_scale
        f.setPointSizeF(max(9.0, min(16.0 * k, h / 18)))
        p.setFont(f)
        p.setPen(QColor("#eceff1"))
        ty = cy + bar_h / 2 + 8
        th = 30 * k
        p.drawText(QRectF(cx - half, ty, half, th), Qt.AlignmentFlag.AlignLeft,
                   "\u2190 " + _pretty(self.negative))
        p.drawText(QRectF(cx, ty, half, th), Qt.AlignmentFlag.AlignRight,
                   _pretty(self.positive) + " \u2192")
        if math.isfinite(self.value) and self.show_numbers:
            p.drawText(QRectF(cx - 80, ty + 28, 160, 30), Qt.AlignmentFlag.AlignHCenter,
                       f"{self.value:+.2f}")
        p.end()


class CursorView(QWidget):
    """The cursor task: workspace [-1, 1]^dims, targets, the cued target and the cursor."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.dims = 1
        self.targets = np.array([[-0.8], [0.8]])
        self.radius = 0.15
        self.position = np.zeros(1)
        self.target: int | None = None
        self.flash: tuple[int, str] | None = None  # (target, "hit"/"miss") after a trial
        self.target_names: list[str] = []
        self.setMinimumSize(300, 220)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def set_task(self, targets: np.ndarray, radius: float, names: Sequence[str] = ()) -> None:
        self.targets = np.asarray(targets, dtype=float)
        self.dims = self.targets.shape[1]
        self.radius = float(radius)
        self.position = np.zeros(self.dims)
        self.target_names = list(names)
        self.update()

    def set_state(self, position: np.ndarray, target: int | None,
                  flash: tuple[int, str] | None = None) -> None:
        self.position = np.asarray(position, dtype=float)
        self.target = target
        self.flash = flash
        self.update()

    def _to_px(self, xy: Sequence[float]) -> QPointF:
        w, h = self.width(), self.height()
        s = 0.45 * (min(w, h) if self.dims == 2 else w)
        x = w / 2 + xy[0] * s
        y = h / 2 - (xy[1] * s if self.dims == 2 and len(xy) > 1 else 0.0)
        return QPointF(x, y)

    def _scale(self) -> float:
        w, h = self.width(), self.height()
        return 0.45 * (min(w, h) if self.dims == 2 else w)

    def paintEvent(self, ev) -> None:  # noqa: N802 (Qt name)
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.fillRect(self.rect(), BACKGROUND)
        s = self._scale()
        # workspace outline
        p.setPen(QPen(QColor("#546e7a"), 1.5, Qt.PenStyle.DashLine))
        p.setBrush(Qt.BrushStyle.NoBrush)
        c = self._to_px([0.0, 0.0])
        if self.dims == 2:
            p.drawRect(QRectF(c.x() - s, c.y() - s, 2 * s, 2 * s))
        else:
            p.drawLine(QPointF(c.x() - s, c.y()), QPointF(c.x() + s, c.y()))
        r = self.radius * s
        f = QFont()
        f.setPointSizeF(10.0)
        p.setFont(f)
        for i, t in enumerate(self.targets):
            q = self._to_px(t)
            colour = QColor("#455a64")
            if self.flash is not None and self.flash[0] == i:
                colour = QColor("#2e7d32") if self.flash[1] == "hit" else QColor("#c62828")
            elif self.target == i:
                colour = CUE_COLOUR
            p.setPen(QPen(QColor("#eceff1"), 1.5))
            p.setBrush(colour)
            p.drawEllipse(q, r, r)
            if i < len(self.target_names):
                p.setPen(QColor("#eceff1"))
                p.drawText(QRectF(q.x() - 60, q.y() + r + 2, 120, 20),
                           Qt.AlignmentFlag.AlignHCenter, _pretty(self.target_names[i]))
        # cursor
        q = self._to_px(self.position if self.position.size else [0.0])
        path = QPainterPath()
        path.addEllipse(q, 11, 11)
        p.setPen(QPen(QColor("black"), 2))
        p.setBrush(QColor("white"))
        p.drawPath(path)
        p.end()
