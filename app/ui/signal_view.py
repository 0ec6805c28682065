"""Live scrolling multi-channel EEG viewer (pyqtgraph).

Design (the fast pyqtgraph way):

* ONE persistent :class:`pyqtgraph.PlotCurveItem` per channel, updated with ``setData``;
* a ``QTimer`` on the GUI thread pulls only the *new* samples from the inlet's ring buffer
  (absolute indices, so nothing is skipped or drawn twice), applies common-average reference and a
  causal band-pass + notch (designed once with scipy, filter state carried between frames, so each
  frame filters ~17 samples instead of the whole span), and writes them into a display ring;
* only the visible span is processed (clip to view) and it is peak-downsampled (min/max per pixel
  column) before ``setData``, so the cost does not grow with the sampling rate.

:meth:`SignalView.frame_stats` reports frames drawn, frames per second and the time spent per
frame, for the benchmark. Bad channels (flat, saturated, noisy by line-noise ratio or amplitude)
are re-assessed every second and flagged next to their labels (and drawn in red).

Rows: the channels shown are paged ("Rows": fit the height, 8 ... 64, all) with a scroll bar (and
the mouse wheel) to move through them; only the rows on screen are drawn, every one with its name
in a font scaled to the row height. Markers (an LSL marker inlet's, and the app's own cues through
:meth:`SignalView.add_marker`) are drawn as OpenViBE does: a vertical line with the marker's name
at its time, scrolling with the traces.
"""
from __future__ import annotations

import collections
import logging
import math
import time
from typing import Any

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import QEvent, QObject, QRectF, Qt, QTimer, pyqtSignal
from PyQt6.QtGui import QAction, QFont
from PyQt6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QGraphicsItem,
    QHBoxLayout,
    QLabel,
    QMenu,
    QScrollBar,
    QToolButton,
    QVBoxLayout,
    QWidget,
)
from scipy import signal as sps

logger = logging.getLogger(__name__)

SCALES_UV = (5, 10, 20, 50, 100, 200, 500, 1000, 5000)
SPANS_S = (2, 5, 10, 20, 30)
MOTOR_PREFIXES = ("FC", "C", "CP")
#: "Rows" choices: 0 = as many as fit at MIN_ROW_PX each, -1 = all selected channels
ROWS_CHOICES = (0, 8, 16, 32, 64, -1)
#: smallest row height (px) the "fit" choice allows: a readable channel name per row
MIN_ROW_PX = 14
#: pixels of the plot that are not rows (bottom axis, margins)
PLOT_MARGIN_PX = 40
#: markers kept for drawing (the oldest go first)
MAX_MARKERS = 2000
MARKER_COLORS = ("#1565c0", "#2e7d32", "#ef6c00", "#6a1b9a", "#00838f", "#ad1457", "#5d4037")


# ---------------------------------------------------------------------- pure helpers
def design_filter(srate: float, highpass: float | None, lowpass: float | None,
                  notch: float | None, order: int = 4) -> np.ndarray | None:
    """Second-order sections of band-pass (or high/low-pass) + notch; None when nothing to do.

    Cut-offs at or above Nyquist are ignored (a 40 Hz low-pass on a 64 Hz stream is skipped).
    """
    nyq = srate / 2.0
    hp = highpass if highpass and 0 < highpass < nyq else None
    lp = lowpass if lowpass and 0 < lowpass < nyq * 0.99 else None
    if hp and lp and lp <= hp:
        lp = None
    parts = []
    if hp and lp:
        parts.append(sps.butter(order, [hp, lp], btype="bandpass", fs=srate, output="sos"))
    elif hp:
        parts.append(sps.butter(order, hp, btype="highpass", fs=srate, output="sos"))
    elif lp:
        parts.append(sps.butter(order, lp, btype="lowpass", fs=srate, output="sos"))
    if notch and 0 < notch < nyq * 0.98:
        b, a = sps.iirnotch(notch, 30.0, fs=srate)
        parts.append(sps.tf2sos(b, a))
    if not parts:
        return None
    return np.vstack(parts)


def peak_downsample(data: np.ndarray, factor: int) -> np.ndarray:
    """Min/max per block of ``factor`` samples, interleaved (keeps spikes visible).

    Parameters
    ----------
    data : ndarray, shape (n_channels, n_times)
    factor : int

    Returns
    -------
    ndarray, shape (n_channels, 2 * (n_times // factor))
    """
    if factor <= 1:
        return data
    n_ch, n = data.shape
    nb = n // factor
    blocks = data[:, n - nb * factor:].reshape(n_ch, nb, factor)
    out = np.empty((n_ch, nb, 2), dtype=data.dtype)
    lo, hi = out[:, :, 0], out[:, :, 1]
    lo[:] = blocks[:, :, 0]
    hi[:] = blocks[:, :, 0]
    # element-wise over the short block axis: much faster than a reduce along a tiny last axis
    for j in range(1, factor):
        np.minimum(lo, blocks[:, :, j], out=lo)
        np.maximum(hi, blocks[:, :, j], out=hi)
    return out.reshape(n_ch, 2 * nb)


def bad_channel_flags(data: np.ndarray, srate: float, line_hz: float = 50.0) -> list[str]:
    """Classify each channel as ``""`` (fine), ``"flat"``, ``"saturated"`` or ``"noisy"``.

    The one bad-channel detector, :func:`acquisition.quality.check_window`, with its broadband
    check on (``noisy_relative=3``: high-frequency amplitude above 3x the median channel's).

    Parameters
    ----------
    data : ndarray, shape (n_channels, n_times)
        Raw (unfiltered) signal in microvolts, a couple of seconds.
    srate : float
    line_hz : float
        Mains frequency (line noise: power within 1 Hz of it above the 1-40 Hz power).

    Returns
    -------
    list of str, length n_channels
    """
    from neurodeck.acquisition.quality import Flag, QualityConfig, check_window

    q = check_window(data, srate, QualityConfig(line_freq=float(line_hz), noisy_relative=3.0))
    out = []
    for f in q.flags:
        if f & (Flag.FLAT | Flag.NONFINITE):
            out.append("flat")
        elif f & (Flag.SATURATED | Flag.ABSURD):
            out.append("saturated")
        elif f & Flag.NOISY:
            out.append("noisy")
        else:
            out.append("")
    return out


def marker_text(label: str) -> str:
    """What a marker line says: the marker's name (GDF code strings such as ``"769"`` become
    ``"left_hand"``), other labels unchanged."""
    from neurodeck.acquisition.markers import name_of

    try:
        return name_of(label)
    except Exception:  # a label that is no code: shown as sent
        return str(label)


def marker_color(text: str) -> str:
    """A stable colour per marker name (the same class has the same colour on every run)."""
    return MARKER_COLORS[sum(text.encode()) % len(MARKER_COLORS)]


def channel_labels(desc: Any) -> list[str]:
    labels = list(getattr(desc, "labels", ()) or ())
    n = int(getattr(desc, "n_channels", len(labels)) or len(labels))
    if len(labels) != n:
        labels = [f"Ch{i + 1}" for i in range(n)]
    return labels


class _Trace(pg.PlotCurveItem):
    """One channel's curve whose bounds the view sets from the data it draws.

    pyqtgraph's own ``boundingRect`` scans the data with ``nanmin``/``nanmax`` twice per paint
    and curve; at 50 rows that was ~35 % of the paint time (measured with 1090 points per curve).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._rect = QRectF()

    def set_bounds(self, x0: float, x1: float, y0: float, y1: float) -> None:
        """Data bounds of what was just ``setData``-ed (a margin is added for the pen)."""
        rect = QRectF(x0 - 0.05, y0 - 0.1, (x1 - x0) + 0.1, (y1 - y0) + 0.2)
        if rect != self._rect:
            self.prepareGeometryChange()
            self._rect = rect

    def boundingRect(self) -> QRectF:  # noqa: N802 (Qt name)
        return self._rect

    def dataBounds(self, ax: int, frac: float = 1.0, orthoRange: Any = None):  # noqa: N802, N803
        r = self._rect
        return (r.left(), r.right()) if ax == 0 else (r.top(), r.bottom())


# ---------------------------------------------------------------------- the widget
class SignalView(QWidget):
    """Scrolling traces of the channels of an :class:`acquisition.inlet.Inlet`.

    Signals
    -------
    bad_channels_changed(dict)
        ``{label: reason}`` of the currently flagged channels.
    """

    bad_channels_changed = pyqtSignal(dict)

    def __init__(self, parent: QWidget | None = None, prefs: dict | None = None, fps: int = 40):
        super().__init__(parent)
        prefs = dict(prefs or {})
        self.inlet: Any = None
        self.srate = 0.0
        self.labels: list[str] = []
        self.flags: list[str] = []
        self.selected: list[int] = []
        #: the channel indices drawn now: the page of ``selected`` on screen
        self.shown: list[int] = []
        self.curves: list[pg.PlotCurveItem] = []
        #: ``(lsl_time, label)`` of markers, appended from any thread (deque appends are atomic)
        self.markers: collections.deque[tuple[float, str]] = collections.deque(maxlen=MAX_MARKERS)
        self._marker_lines: list[pg.InfiniteLine] = []
        self._marker_inlet: Any = None
        self._t_newest: float | None = None
        self._redraw = False
        self.frames = 0
        self._frame_ms: collections.deque[float] = collections.deque(maxlen=300)
        self._frame_at: collections.deque[float] = collections.deque(maxlen=300)
        self._sos: np.ndarray | None = None
        self._zi: np.ndarray | None = None
        self._ring: np.ndarray | None = None
        self._ds: np.ndarray | None = None
        self._ds_rows: set[int] = set()
        self._factor = 1
        self._dirty_from = 0
        self._n_seen = 0
        self._need_reset = True
        self._last_flags_at = 0.0
        #: seconds between bad-channel assessments: 1 s, or 20x what the last one cost when that
        #: is longer (at 256 ch @ 2048 Hz one took 35-90 ms: <= 5 % of the GUI thread)
        self._assess_every = 1.0
        self._build_ui(prefs)
        # 40 frames/s asked: headroom over the 30 fps budget (30 was the measured ceiling), while 60
        # doubled the GUI thread's share of a core and tripled the decoder's p99 on 2 cores. A slow
        # frame delays the next one (the timer does not queue): fewer frames, never a backlog.
        self._timer = QTimer(self)
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.setInterval(max(5, round(1000 / fps)))
        self._timer.timeout.connect(self.update_frame)

    # ------------------------------------------------------------------ UI
    def _build_ui(self, prefs: dict) -> None:
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        bar = QHBoxLayout()
        bar.setSpacing(8)
        lay.addLayout(bar)
        bar2 = QHBoxLayout()
        bar2.setSpacing(8)
        lay.addLayout(bar2)

        bar.addWidget(QLabel("Span"))
        self.span_box = QComboBox()
        for s in SPANS_S:
            self.span_box.addItem(f"{s} s", s)
        self._select_data(self.span_box, prefs.get("span_s", 10))
        self.span_box.currentIndexChanged.connect(self._reset)
        bar.addWidget(self.span_box)

        bar.addWidget(QLabel("Scale"))
        self.scale_box = QComboBox()
        for s in SCALES_UV:
            self.scale_box.addItem(f"{s} \u00b5V", s)
        self._select_data(self.scale_box, prefs.get("scale_uv", 100))
        self.scale_box.currentIndexChanged.connect(self._update_ticks)
        bar.addWidget(self.scale_box)

        self.filter_box = QCheckBox("Band-pass")
        self.filter_box.setChecked(bool(prefs.get("filter", True)))
        bar2.addWidget(self.filter_box)
        self.hp_box = QDoubleSpinBox()
        self.hp_box.setRange(0.0, 100.0)
        self.hp_box.setDecimals(1)
        self.hp_box.setValue(float(prefs.get("highpass_hz", 1.0)))
        self.hp_box.setSuffix(" Hz")
        self.lp_box = QDoubleSpinBox()
        self.lp_box.setRange(1.0, 1000.0)
        self.lp_box.setDecimals(1)
        self.lp_box.setValue(float(prefs.get("lowpass_hz", 40.0)))
        self.lp_box.setSuffix(" Hz")
        bar2.addWidget(self.hp_box)
        bar2.addWidget(QLabel("\u2013"))
        bar2.addWidget(self.lp_box)

        bar2.addWidget(QLabel("Notch"))
        self.notch_box = QComboBox()
        self.notch_box.addItem("off", 0.0)
        self.notch_box.addItem("50 Hz", 50.0)
        self.notch_box.addItem("60 Hz", 60.0)
        self._select_data(self.notch_box, float(prefs.get("notch_hz", 50.0)))
        bar2.addWidget(self.notch_box)

        self.car_box = QCheckBox("Common average")
        self.car_box.setToolTip("Subtract the mean of the shown, non-flagged channels")
        self.car_box.setChecked(bool(prefs.get("car", False)))
        bar2.addWidget(self.car_box)
        bar2.addStretch(1)

        self.channels_button = QToolButton()
        self.channels_button.setText("Channels\u2026")
        self.channels_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.channel_menu = QMenu(self)
        self.channels_button.setMenu(self.channel_menu)
        bar.addWidget(self.channels_button)
        bar.addWidget(QLabel("Rows"))
        self.rows_box = QComboBox()
        self.rows_box.setToolTip("Channels on screen at once; scroll (wheel or the bar at the "
                                 "right) to see the others")
        for r in ROWS_CHOICES:
            self.rows_box.addItem({0: "fit", -1: "all"}.get(r, str(r)), r)
        self._select_data(self.rows_box, int(prefs.get("rows", 0)))
        self.rows_box.currentIndexChanged.connect(self._layout_curves)
        bar.addWidget(self.rows_box)
        self.rows_label = QLabel("")
        bar.addWidget(self.rows_label)
        bar.addStretch(1)
        self.fps_label = QLabel("")
        self.fps_label.setStyleSheet("color: #607d8b;")
        # its ~150 px text must not widen the window (1280 px screens: 1282 px after connecting)
        self.fps_label.setMinimumWidth(1)  # shrinks (clipped) when the row is short of room
        bar.addWidget(self.fps_label)

        for w in (self.filter_box, self.car_box):
            w.toggled.connect(self._reset)
        for w in (self.hp_box, self.lp_box):
            w.valueChanged.connect(self._reset)
        self.notch_box.currentIndexChanged.connect(self._reset)

        self.plot = pg.PlotWidget(background="w")
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.hideButtons()
        self.plot.setMenuEnabled(False)
        self.plot.showGrid(x=True, y=False, alpha=0.25)
        self.plot.setLabel("bottom", "time (s)")
        self.plot.getAxis("left").setStyle(tickTextOffset=6)
        self.plot.getAxis("left").setWidth(96)
        # axes (64 text labels) are repainted with every frame otherwise: ~12 ms of text drawing
        for name in ("left", "bottom"):
            self.plot.getAxis(name).setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        self.empty_text = pg.TextItem("No stream connected", color="#78909c", anchor=(0.5, 0.5))
        self.plot.addItem(self.empty_text)
        self.empty_text.setPos(-5, 0.5)
        self.plot.setXRange(-10, 0, padding=0)
        self.plot.setYRange(0, 1)
        self.scroll = QScrollBar(Qt.Orientation.Vertical)
        self.scroll.setToolTip("Scroll through the channels")
        self.scroll.setRange(0, 0)
        self.scroll.valueChanged.connect(self._layout_curves)
        self.scroll.hide()
        plot_row = QHBoxLayout()
        plot_row.setSpacing(0)
        plot_row.addWidget(self.plot, 1)
        plot_row.addWidget(self.scroll)
        lay.addLayout(plot_row, 1)
        self.plot.viewport().installEventFilter(self)

    @staticmethod
    def _select_data(box: QComboBox, value: Any) -> None:
        idx = box.findData(value)
        if idx >= 0:
            box.setCurrentIndex(idx)

    # ------------------------------------------------------------------ settings
    @property
    def span_s(self) -> float:
        return float(self.span_box.currentData())

    @property
    def scale_uv(self) -> float:
        return float(self.scale_box.currentData())

    def prefs(self) -> dict:
        """Current viewer settings (for :class:`app.settings.Settings`)."""
        return {
            "span_s": self.span_s,
            "scale_uv": self.scale_uv,
            "filter": self.filter_box.isChecked(),
            "highpass_hz": self.hp_box.value(),
            "lowpass_hz": self.lp_box.value(),
            "notch_hz": float(self.notch_box.currentData()),
            "car": self.car_box.isChecked(),
            "rows": int(self.rows_box.currentData()),
        }

    def set_selected(self, indices: list[int]) -> None:
        """Show only these channel indices (in order)."""
        n = len(self.labels)
        sel = [i for i in dict.fromkeys(int(i) for i in indices) if 0 <= i < n]
        self.selected = sel
        for i, act in enumerate(self.channel_menu.actions()[3:]):
            act.blockSignals(True)
            act.setChecked(i in sel)
            act.blockSignals(False)
        self._layout_curves()

    # ------------------------------------------------------------------ inlet
    def set_inlet(self, inlet: Any) -> None:
        """Show this inlet (None to clear); starts/stops the frame timer."""
        self.inlet = inlet
        for c in self.curves:
            self.plot.removeItem(c)
        self.curves = []
        self.channel_menu.clear()
        self.markers.clear()
        self._t_newest = None
        self._place_markers()
        if inlet is None:
            self._timer.stop()
            self.labels, self.flags, self.selected, self.shown = [], [], [], []
            self.empty_text.setText("No stream connected")
            self.empty_text.show()
            self._update_ticks()
            return
        desc = inlet.description
        if not desc.srate or desc.srate <= 0:
            self.inlet = None
            self._timer.stop()
            self.empty_text.setText(f"{desc.name}: irregular-rate stream, no traces to scroll")
            self.empty_text.show()
            return
        self.srate = float(desc.srate)
        self.labels = channel_labels(desc)
        self.flags = [""] * len(self.labels)
        self.selected = list(range(len(self.labels)))
        pen = pg.mkPen("#263238", width=1)
        for _ in self.labels:
            curve = _Trace(pen=pen, skipFiniteCheck=True)
            self.plot.addItem(curve)
            self.curves.append(curve)
        self._build_channel_menu()
        self.empty_text.hide()
        self._layout_curves()
        self._reset()
        self._timer.start()

    def _build_channel_menu(self) -> None:
        m = self.channel_menu
        m.addAction("Show all", lambda: self.set_selected(list(range(len(self.labels)))))
        m.addAction("Motor strip (FC/C/CP)", self._select_motor)
        m.addSeparator()
        for i, lab in enumerate(self.labels):
            act = QAction(lab, m)
            act.setCheckable(True)
            act.setChecked(True)
            act.toggled.connect(lambda on, i=i: self._toggle_channel(i, on))
            m.addAction(act)

    def _select_motor(self) -> None:
        idx = [i for i, lab in enumerate(self.labels)
               if lab.rstrip("0123456789zZ.").upper() in MOTOR_PREFIXES]
        self.set_selected(idx or list(range(len(self.labels))))

    def _toggle_channel(self, i: int, on: bool) -> None:
        sel = set(self.selected)
        (sel.add if on else sel.discard)(i)
        self.set_selected(sorted(sel))

    def rows_per_page(self) -> int:
        """How many of the selected channels are on screen at once (the "Rows" choice)."""
        n = max(1, len(self.selected))
        choice = int(self.rows_box.currentData())
        if choice == 0:  # fit: rows of at least MIN_ROW_PX, so every name is readable
            choice = max(1, int((self.plot.height() - PLOT_MARGIN_PX) // MIN_ROW_PX))
        return n if choice < 0 else max(1, min(n, choice))

    def _layout_curves(self, *_: Any) -> None:
        """Page the selected channels: the rows on screen are ``selected[first:first + rows]``."""
        n = len(self.selected)
        per = self.rows_per_page()
        first = min(self.scroll.value(), max(0, n - per))
        self.scroll.blockSignals(True)
        self.scroll.setRange(0, max(0, n - per))
        self.scroll.setPageStep(per)
        self.scroll.setValue(first)
        self.scroll.blockSignals(False)
        self.scroll.setVisible(n > per)
        self.shown = self.selected[first:first + per]
        on_screen = set(self.shown)
        for i, c in enumerate(self.curves):
            c.setVisible(i in on_screen)
        self.rows_label.setText(f"{first + 1}\u2013{first + len(self.shown)} of {n}"
                                if n > per else "")
        self.plot.setYRange(-0.7, max(1, len(self.shown)) - 0.3, padding=0)
        self._redraw = True
        self._update_ticks()

    def scroll_rows(self, rows: int) -> None:
        """Move the page by ``rows`` channels (negative: up)."""
        self.scroll.setValue(self.scroll.value() + int(rows))

    def eventFilter(self, obj: QObject, ev: QEvent) -> bool:  # noqa: N802 (Qt name)
        if ev.type() == QEvent.Type.Wheel and self.scroll.isVisible():
            steps = ev.angleDelta().y() / 120.0
            self.scroll_rows(-round(steps * max(1, self.scroll.pageStep() // 4)))
            return True
        return super().eventFilter(obj, ev)

    def resizeEvent(self, ev) -> None:  # noqa: N802 (Qt name)
        super().resizeEvent(ev)
        if self.labels:
            self._layout_curves()

    def _update_ticks(self) -> None:
        ax = self.plot.getAxis("left")
        n = len(self.shown)
        ticks = []
        for row, i in enumerate(self.shown):
            flag = self.flags[i] if i < len(self.flags) else ""
            text = f"{self.labels[i]}  \u26a0{flag}" if flag else self.labels[i]
            ticks.append((n - 1 - row, text))
        # the font follows the row height (7-12 px); every label when they fit (always with
        # "fit" rows), otherwise every k-th (flags always)
        rows_px = max(self.plot.height() - PLOT_MARGIN_PX, 50)
        px = int(max(7, min(12, 0.8 * rows_px / max(n, 1))))
        if px != getattr(self, "_tick_px", None):
            self._tick_px = px
            font = QFont(self.font())
            font.setPixelSize(px)
            ax.setTickFont(font)
        step = max(1, math.ceil(n * (px + 1) / rows_px))
        flagged = [r for r, t in enumerate(ticks) if "\u26a0" in t[1]]
        keep = set(flagged)
        for r in range(0, n, step):
            if all(abs(r - f) >= step for f in flagged):
                keep.add(r)
        ax.setTicks([[ticks[r] for r in sorted(keep)], []])
        self.plot.setLabel("left", f"{self.scale_uv:g} \u00b5V / channel")
        self._redraw = True

    # ------------------------------------------------------------------ markers
    def set_marker_inlet(self, inlet: Any) -> None:
        """Draw the markers of this :class:`acquisition.inlet.MarkerInlet` (None: stop)."""
        if self._marker_inlet is not None:
            try:
                self._marker_inlet.remove_marker_listener(self.add_marker)
            except ValueError:  # already gone
                pass
        self._marker_inlet = inlet
        if inlet is not None:
            inlet.add_marker_listener(self.add_marker)

    def add_marker(self, timestamp: float, label: str) -> None:
        """Draw a marker at LSL time ``timestamp`` (any thread; drawn with the next frame)."""
        self.markers.append((float(timestamp), str(label)))

    def _place_markers(self) -> None:
        """Put one vertical line per marker in the span at ``timestamp - newest sample``."""
        t_new = self._t_newest
        span = self.span_s
        todo: list[tuple[float, str]] = []
        if t_new is not None:
            # the x axis puts sample n_seen - 1 at -1/srate; markers newer than the newest
            # sample wait (off the right edge) for their samples
            x0 = t_new + 1.0 / self.srate
            while self.markers and self.markers[0][0] < x0 - 31.0:  # beyond any span: forget
                self.markers.popleft()
            todo = [(t - x0, lab) for t, lab in list(self.markers) if -span <= t - x0 <= 0.0]
        lines = self._marker_lines
        px_per_s = self.plot.getViewBox().width() / max(span, 1e-9)
        while len(lines) < len(todo):
            line = pg.InfiniteLine(angle=90, movable=False, label="",
                                   labelOpts={"position": 0.97, "anchors": [(0, 0), (0, 0)],
                                              "fill": (255, 255, 255, 210)})
            line.setZValue(10)
            self.plot.addItem(line)
            line._marker = None
            lines.append(line)
        for k, line in enumerate(lines):
            if k >= len(todo):
                if line.isVisible():
                    line.hide()
                continue
            x, lab = todo[k]
            text = marker_text(lab)
            if line._marker != (text, k % 4):
                line._marker = (text, k % 4)
                color = marker_color(text)
                line.setPen(pg.mkPen(color, width=1.5))
                line.label.setFormat(text.replace("{", "{{").replace("}", "}}"))
                line.label.setColor(color)
                line.label.setPosition(0.97 - 0.06 * (k % 4))  # neighbours' names do not overlap
            line.setPos(x)
            # near the right edge the name goes to the left of the line (else it is cut off)
            room_px = -x * px_per_s - 4
            side = (1, 0) if room_px < line.label.boundingRect().width() else (0, 0)
            if line.label.anchors[0] != side:
                line.label.anchors = [side, side]
                line.label.updatePosition()
            line.show()

    def marker_positions(self) -> list[tuple[float, str]]:
        """``(x in seconds on the time axis, name)`` of the marker lines on screen."""
        return [(float(ln.value()), ln.label.toPlainText()) for ln in self._marker_lines
                if ln.isVisible()]

    # ------------------------------------------------------------------ processing
    def _reset(self, *_: Any) -> None:
        self._need_reset = True
        if self.span_box is not None:
            self.plot.setXRange(-self.span_s, 0, padding=0)

    def _design(self) -> None:
        self._sos = None
        if self.filter_box.isChecked() or float(self.notch_box.currentData()) > 0:
            hp = self.hp_box.value() if self.filter_box.isChecked() else None
            lp = self.lp_box.value() if self.filter_box.isChecked() else None
            self._sos = design_filter(self.srate, hp, lp, float(self.notch_box.currentData()) or None)

    def _process(self, raw: np.ndarray) -> np.ndarray:
        """CAR + causal filter of new samples (n_channels, n); updates the filter state."""
        x = raw.astype(np.float64, copy=False)
        if self.car_box.isChecked():
            use = [i for i in self.selected if not self.flags[i]] or list(range(x.shape[0]))
            x = x - x[use].mean(axis=0, keepdims=True)
        if self._sos is None:
            return x
        if self._zi is None:
            zi0 = sps.sosfilt_zi(self._sos)  # (n_sections, 2)
            self._zi = zi0[:, None, :] * x[None, :, :1]
        y, self._zi = sps.sosfilt(self._sos, x, axis=-1, zi=self._zi)
        return y

    def _pull_new(self) -> bool:
        """Move new samples from the inlet's ring buffer into the display ring. True if any.

        The display ring holds the processed samples ``[n_seen - span_n, n_seen)``; absolute
        sample ``s`` sits in column ``s % span_n``.
        """
        buf = self.inlet.buffer
        n_written = int(buf.n_written)
        span_n = max(2, int(round(self.span_s * self.srate)))
        if self._need_reset or self._ring is None or self._ring.shape[1] != span_n:
            self._need_reset = False
            self._design()
            self._zi = None
            self._ring = np.zeros((len(self.labels), span_n), dtype=np.float64)
            self._ds = None  # downsampled bins: recompute all
            # warm the filter on one extra second, then fill the whole span
            start = max(0, n_written - span_n - int(self.srate), n_written - buf.capacity + 1)
            self._n_seen = start
        start = max(self._n_seen, n_written - span_n - int(self.srate), n_written - buf.capacity + 1)
        if n_written <= start:
            return False
        data, ts = buf.read(start, n_written)
        if len(ts):
            self._t_newest = float(ts[-1])
        y = self._process(data)
        if y.shape[1] > span_n:
            y = y[:, -span_n:]
        first = n_written - y.shape[1]
        self._ring[:, np.arange(first, n_written) % span_n] = y
        self._dirty_from = first if self._n_seen >= n_written else min(self._dirty_from, first)
        self._n_seen = n_written
        return True

    def update_frame(self) -> None:
        """Timer callback: pull, process, downsample, setData (GUI thread)."""
        if self.inlet is None:
            return
        t0 = time.perf_counter()
        try:
            if not self._pull_new() and not self._redraw:
                return
            if not self.isVisible():  # another page is shown: keep the filters current, skip painting
                return
            self._redraw = False
            self._draw()
            self._place_markers()
            now = time.monotonic()
            if now - self._last_flags_at >= self._assess_every:
                t_assess = time.perf_counter()
                self._assess_channels()
                self._assess_every = max(1.0, 20.0 * (time.perf_counter() - t_assess))
                self._last_flags_at = time.monotonic()
        except Exception as exc:  # never kill the timer silently: log once per kind, stop drawing
            logger.exception("signal view frame failed")
            self._timer.stop()
            self.empty_text.setText(f"Viewer stopped: {exc}")
            self.empty_text.show()
            return
        self.frames += 1
        self._frame_ms.append((time.perf_counter() - t0) * 1000.0)
        self._frame_at.append(time.monotonic())
        if self.frames % 15 == 0:
            st = self.frame_stats()
            self.fps_label.setText(f"{st['fps']:.0f} fps \u00b7 {st['mean_ms']:.1f} ms/frame")

    def _draw(self) -> None:
        """Downsample only the bins touched by new samples, then ``setData`` every shown curve.

        Bins of ``factor`` samples are aligned to absolute sample indices and kept (min, max) in
        a ring, so a frame recomputes ~1 bin per shown channel instead of the whole span. Only
        the rows on screen are kept current; a row scrolled into view gets its whole span once.
        """
        if self._ring is None:
            return
        sel = self.shown
        if not sel:
            return
        n_ch, span_n = self._ring.shape
        b = self._n_seen
        # one min/max pair per 2 pixel columns: the envelope looks the same as per pixel and the
        # paths to stroke are half as long (painting is the main cost of a frame)
        width = max(100, int(self.plot.getViewBox().width()) or 800)
        factor = max(1, span_n // max(50, width // 2))
        if self._ds is None or abs(factor - self._factor) > 0.3 * self._factor:
            self._factor = factor
            cap = span_n // factor + 3
            self._ds = np.zeros((n_ch, cap, 2), dtype=np.float64)
            self._dirty_from = b - span_n
        elif not self._ds_rows.issuperset(sel):  # rows scrolled into view: their whole span
            self._dirty_from = b - span_n
        self._ds_rows = set(sel)
        f = self._factor
        cap = self._ds.shape[1]
        lo_bin = -((span_n - b) // f)  # ceil((b - span_n) / f): first bin fully on screen
        hi_bin = (b - 1) // f
        j0 = max(lo_bin, self._dirty_from // f)
        if j0 <= hi_bin:
            seg = self._ring[np.ix_(sel, np.arange(j0 * f, b) % span_n)]
            n_bins = hi_bin - j0 + 1
            pad = n_bins * f - seg.shape[1]
            if pad:  # the newest bin is partial: repeat its last sample (recomputed next frame)
                seg = np.concatenate([seg, np.repeat(seg[:, -1:], pad, axis=1)], axis=1)
            if f > 1:
                pairs = peak_downsample(seg, f).reshape(len(sel), n_bins, 2)
            else:
                pairs = np.repeat(seg[:, :, None], 2, axis=2)
            self._ds[np.ix_(sel, np.arange(j0, hi_bin + 1) % cap)] = pairs
        self._dirty_from = b
        bins = np.arange(lo_bin, hi_bin + 1)
        n = len(sel)
        ys = self._ds[np.ix_(sel, bins % cap)].reshape(n, -1)
        ys /= self.scale_uv
        ys += (n - 1 - np.arange(n))[:, None]
        x = np.repeat((bins * f - b) / self.srate, 2)
        # bounds of each row's points (NaN ignored; a row without finite points: its own row)
        lo, hi = np.fmin.reduce(ys, axis=1), np.fmax.reduce(ys, axis=1)
        rows = (n - 1 - np.arange(n)).astype(float)
        lo = np.clip(np.where(np.isfinite(lo), lo, rows - 1), -1e6, 1e6)
        hi = np.clip(np.where(np.isfinite(hi), hi, rows + 1), -1e6, 1e6)
        x0, x1 = float(x[0]), float(x[-1])
        for row, i in enumerate(sel):
            curve = self.curves[i]
            curve.setData(x, ys[row], skipFiniteCheck=True)
            curve.set_bounds(x0, x1, float(lo[row]), float(hi[row]))

    def _assess_channels(self) -> None:
        buf = self.inlet.buffer
        # 2 s, or 1 s at high rates (2048 samples: still 1 Hz bins for the line-noise check)
        n = min(int(buf.n_written), int(max(self.srate, min(2 * self.srate, 2048))), buf.capacity)
        if n < int(self.srate):
            return
        raw, _ = buf.latest(n)
        line = float(self.notch_box.currentData()) or 50.0
        flags = bad_channel_flags(raw, self.srate, line)
        if flags != self.flags:
            self.flags = flags
            red, normal = pg.mkPen("#c62828", width=1), pg.mkPen("#263238", width=1)
            for i, c in enumerate(self.curves):
                c.setPen(red if flags[i] else normal)
            self._update_ticks()
            self.bad_channels_changed.emit(self.bad_channels())

    def bad_channels(self) -> dict[str, str]:
        return {self.labels[i]: f for i, f in enumerate(self.flags) if f}

    # ------------------------------------------------------------------ stats
    def frame_stats(self) -> dict[str, float]:
        """``frames`` drawn, ``fps`` over the last 2 s, ``mean_ms`` / ``p95_ms`` per frame."""
        now = time.monotonic()
        recent = [t for t in self._frame_at if now - t <= 2.0]
        fps = (len(recent) - 1) / (recent[-1] - recent[0]) if len(recent) > 2 and recent[-1] > recent[0] else 0.0
        ms = np.asarray(self._frame_ms) if self._frame_ms else np.zeros(1)
        return {"frames": float(self.frames), "fps": float(fps), "mean_ms": float(ms.mean()),
                "p95_ms": float(np.percentile(ms, 95))}

    def stop(self) -> None:
        self._timer.stop()
