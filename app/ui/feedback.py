"""Feedback widgets of the Online page: the Graz bar (two or N classes) and the cursor task view.

Both are plain painted QWidgets (no logic): the Online page feeds them values computed by
:mod:`app.feedback_model`.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from PyQt6.QtCore import QPointF, QRectF, Qt
from PyQt6.QtGui import (
    QBrush,
    QColor,
    QFont,
    QFontMetricsF,
    QPainter,
    QPainterPath,
    QPen,
    QPolygonF,
)
from PyQt6.QtWidgets import QSizePolicy, QWidget

from neurodeck.app.feedback_model import bar_value, class_bars, class_directions

CUE_COLOUR = QColor("#ffb300")
BAR_NEG = QColor("#1565c0")
BAR_POS = QColor("#c62828")
BACKGROUND = QColor("#263238")
#: bar colour of each class on the N-class bar (by output index)
CLASS_COLOURS = ("#1e88e5", "#e53935", "#43a047", "#8e24aa", "#fb8c00", "#00acc1")


def _pretty(label: str) -> str:
    return str(label).replace("_", " ")


class GrazBar(QWidget):
    """The Graz feedback bar: two classes on one horizontal bar, three or more on one bar each.

    Two classes: ``set_value(v)`` with ``v`` in [-1, 1] (NaN hides the bar), left for the first
    class, right for the second. Any number of classes: :meth:`set_classes` then
    :meth:`set_probs` with the class probabilities; with three or more classes every class has
    a bar pointing in its direction (:func:`app.feedback_model.class_directions`) whose length is
    its evidence above chance (:func:`app.feedback_model.class_bars`), and the winning class is
    drawn highlighted. ``set_cue(label)`` marks the cued class (None: fixation cross only).
    """

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.value = float("nan")
        self.negative = "left_hand"
        self.positive = "right_hand"
        self.cue: str | None = None
        #: every class in the decoder's output order (three or more: one bar per class)
        self.classes: list[str] = []
        #: class probabilities of the last :meth:`set_probs` (None: no bar)
        self.probs: np.ndarray | None = None
        #: write the output value under the bar (the operator's view; not the participant's)
        self.show_numbers = True
        #: size of labels and arrow (2-3 on the participant screen, readable at 2 m)
        self.text_scale = 1.0
        self.setMinimumSize(360, 220)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    @property
    def multi(self) -> bool:
        """True when the bar shows three or more classes (one bar each)."""
        return len(self.classes) >= 3

    @property
    def winner(self) -> str | None:
        """The class the bar currently favours (None: no bar or a tie at zero)."""
        if self.multi:
            if self.probs is None or not np.isfinite(self.probs).all():
                return None
            return self.classes[int(np.argmax(self.probs))]
        if not math.isfinite(self.value) or self.value == 0:
            return None
        return self.positive if self.value > 0 else self.negative

    def set_labels(self, negative: str, positive: str) -> None:
        self.negative, self.positive = str(negative), str(positive)
        self.update()

    def set_classes(self, labels: Sequence[str], negative: str | None = None,
                    positive: str | None = None) -> None:
        """The decoder's classes (output order); two classes also name the bar's two sides."""
        self.classes = [str(lab) for lab in labels]
        if len(self.classes) == 2:
            self.set_labels(negative or self.classes[0], positive or self.classes[1])
        self.probs = None
        self.value = float("nan")
        self.update()

    def set_probs(self, probs: Sequence[float] | np.ndarray | None) -> None:
        """Class probabilities in the order of :attr:`classes` (None or NaN hides the bar)."""
        if probs is None:
            self.probs, self.value = None, float("nan")
        else:
            p = np.asarray(probs, dtype=float).ravel()
            if p.size != len(self.classes):
                raise ValueError(f"{p.size} probabilities for classes {self.classes}; "
                                 "expected one per class")
            self.probs = p
            self.value = float("nan") if self.multi else bar_value(
                p, self.classes, self.negative, self.positive)
        self.update()

    def set_value(self, value: float) -> None:
        self.value = float(value)
        self.update()

    def set_cue(self, label: str | None) -> None:
        self.cue = label
        self.update()

    def copy_from(self, other: GrazBar) -> None:
        """Show what ``other`` shows (the participant screen mirrors the operator's bar)."""
        self.classes = list(other.classes)
        self.negative, self.positive = other.negative, other.positive
        self.probs = None if other.probs is None else other.probs.copy()
        self.value, self.cue = other.value, other.cue
        self.update()

    def paintEvent(self, ev) -> None:  # noqa: N802 (Qt name)
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.fillRect(self.rect(), BACKGROUND)
        if self.multi:
            self._paint_multi(p)
        else:
            self._paint_two(p)
        p.end()

    def _paint_two(self, p: QPainter) -> None:
        w, h = self.width(), self.height()
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

    def _paint_multi(self, p: QPainter) -> None:
        w, h = self.width(), self.height()
        cx, cy = w / 2, h / 2
        k = self.text_scale
        f = QFont()
        f.setPointSizeF(max(9.0, min(14.0 * k, h / 20)))
        p.setFont(f)
        fm = p.fontMetrics()
        text_h = fm.height() * 1.2
        bold = QFont(f)
        bold.setBold(True)
        texts = [_pretty(lab) + (" 0.00" if self.show_numbers else "") for lab in self.classes]
        text_w = max(QFontMetricsF(bold).horizontalAdvance(t) for t in texts) + 12
        bar_h = max(14.0, min(w, h) * 0.09)
        # each bar ends on an ellipse inside the widget, with room for the cue's arrow head and,
        # above and below, for a label beyond the end (sideways bars have theirs underneath)
        a = max(40.0, w / 2 - bar_h - 16)
        b = max(40.0, h / 2 - text_h - bar_h - 16)
        angles = class_directions(self.classes)
        bars = class_bars(self.probs) if self.probs is not None else \
            np.full(len(self.classes), np.nan)
        winner = self.winner
        for i, (lab, ang) in enumerate(zip(self.classes, angles)):
            th = math.radians(ang)
            c, s = math.cos(th), math.sin(th)
            length = a * b / math.hypot(b * c, a * s) - bar_h * 0.6
            p.save()
            p.translate(cx, cy)
            p.rotate(-ang)  # Qt's y axis points down: counter-clockwise is a negative angle
            start = bar_h * 0.9  # the fixation cross stays clear
            if math.isfinite(bars[i]) and bars[i] > 0:
                p.setPen(Qt.PenStyle.NoPen)
                colour = QColor(CLASS_COLOURS[i % len(CLASS_COLOURS)])
                if lab != winner:
                    colour.setAlpha(130)
                p.setBrush(colour)
                p.drawRect(QRectF(start, -bar_h / 2, bars[i] * (length - start), bar_h))
            cued = lab == self.cue
            pen = QPen(CUE_COLOUR if cued else (QColor("white") if lab == winner
                                                 else QColor("#546e7a")),
                       (4.0 * k if cued else 2.5 if lab == winner else 1.5))
            p.setPen(pen)
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.drawRect(QRectF(start, -bar_h / 2, length - start, bar_h))
            if cued:  # the cue: an arrow head past the end of its bar
                p.setPen(Qt.PenStyle.NoPen)
                p.setBrush(CUE_COLOUR)
                tip = length + 0.8 * bar_h
                p.drawPolygon(QPolygonF([QPointF(tip, 0.0), QPointF(length + 0.1 * bar_h, -bar_h),
                                         QPointF(length + 0.1 * bar_h, bar_h)]))
            p.restore()
            # the label, upright: under the outer end of a sideways bar, else past the arrow head
            box = QRectF(0, 0, text_w, text_h)
            if abs(c) >= 0.7:
                ex, ey = cx + length * c, cy - length * s
                box.moveTop(ey + bar_h + 4)
                if c < 0:
                    box.moveLeft(ex)
                else:
                    box.moveRight(ex)
                align = Qt.AlignmentFlag.AlignLeft if c < 0 else Qt.AlignmentFlag.AlignRight
            else:
                r = length + 1.0 * bar_h
                box.moveCenter(QPointF(cx + r * c + c * text_w / 2, cy - r * s - s * text_h / 2))
                align = Qt.AlignmentFlag.AlignCenter
            p.setFont(bold if lab == winner else f)
            p.setPen(QColor("white") if lab == winner else QColor("#b0bec5"))
            text = _pretty(lab)
            if self.show_numbers and self.probs is not None and np.isfinite(self.probs[i]):
                text += f" {self.probs[i]:.2f}"
            p.drawText(box, align | Qt.AlignmentFlag.AlignTop, text)
        # fixation cross
        p.setPen(QPen(QColor("white"), 3))
        arm = bar_h * 0.7
        p.drawLine(QPointF(cx - arm, cy), QPointF(cx + arm, cy))
        p.drawLine(QPointF(cx, cy - arm), QPointF(cx, cy + arm))


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

    def copy_from(self, other: CursorView) -> None:
        """Show what ``other`` shows (the participant screen mirrors the operator's task)."""
        self.targets, self.dims, self.radius = other.targets, other.dims, other.radius
        self.target_names = list(other.target_names)
        self.set_state(other.position.copy(), other.target, other.flash)

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
