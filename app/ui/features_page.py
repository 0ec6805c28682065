"""Features page: what in the calibration recording separates the classes, and which features to use.

From the session's calibration recording(s) (or any file opened) the page shows the class-mean
spectra of a channel, the ERD/ERS (% power change from the pre-cue baseline), the signed R² map
(channel x frequency) for the PSD and for the connectivity node strength, and a scalp topomap of
the R² at the chosen frequency. Clicking a cell of the map toggles that feature, dragging selects
a rectangle; "Top N" takes the best features. The selection (``"C4:13-16"`` specs) goes to the
Train page (``context.feature_selection`` and the session's ``[features]`` section).
The spectrum row chooses the estimator as HappyFeat does: Welch (window length, overlap; 1/window
Hz bins) or Burg (autoregressive: model order, window, overlap, frequency grid step) and the band
of the maps; non-default settings go with the selection (``"spectrum"``: ``"method=burg"``...), so
Train's ``psd-lda`` and the bundle it saves (thus the online decoder) use the same spectrum.

Loading the trials and computing the maps is :mod:`app.workflow` (:func:`load_trials`,
:func:`compute_feature_maps`); :func:`cells_to_specs` turns the cells clicked here into specs.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import QPointF, QRectF, Qt, pyqtSignal
from PyQt6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from neurodeck.app.events import format_mapping, parse_mapping_text
from neurodeck.app.ui.marker_dialog import offer_markers
from neurodeck.app.ui.widgets import Page, big_button
from neurodeck.app.ui.workers import JobRunner
from neurodeck.app.workflow.datasets import Trials, load_trials
from neurodeck.app.workflow.features import (
    FeatureMaps,
    SpectrumSettings,
    clean_name,
    compute_feature_maps,
    montage_name,
)

logger = logging.getLogger(__name__)


# ------------------------------------------------------------------------------- Qt-free part
def cells_to_specs(cells: Sequence[tuple[int, int]], ch_names: Sequence[str],
                   freqs: Sequence[float]) -> list[str]:
    """(channel, frequency-bin) cells as selection specs, runs of adjacent bins merged.

    ``[(c4, i13), (c4, i14), (c4, i15), (c4, i16)]`` -> ``["C4:13-16"]``; order: channel order,
    then frequency. :func:`decoders.selection.parse_selection` reads them back.
    """
    freqs = np.asarray(freqs, dtype=float)
    by_ch: dict[int, list[int]] = {}
    for c, f in cells:
        by_ch.setdefault(int(c), []).append(int(f))
    out = []
    for c in sorted(by_ch):
        bins = sorted(set(by_ch[c]))
        start = prev = bins[0]
        for b in [*bins[1:], None]:
            if b is not None and b == prev + 1:
                prev = b
                continue
            lo, hi = freqs[start], freqs[prev]
            name = clean_name(ch_names[c])
            out.append(f"{name}:{lo:g}" if start == prev else f"{name}:{lo:g}-{hi:g}")
            if b is not None:
                start = prev = b
    return out


# ------------------------------------------------------------------------------- widgets
class R2MapItem(pg.ImageItem):
    """The R² heatmap; emits cells on click (toggle) and on drag (rectangle)."""

    cell_clicked = pyqtSignal(int, int)
    rect_selected = pyqtSignal(int, int, int, int)
    hover = pyqtSignal(int, int)

    def __init__(self):
        super().__init__()
        self.grid_shape = (0, 0)  # (n_channels, n_freqs)
        self.freq0 = 0.0
        self.dfreq = 1.0
        self._drag_start: tuple[int, int] | None = None
        self.drag_rect = QRectF()
        self.setAcceptHoverEvents(True)

    def cell_at(self, pos: QPointF) -> tuple[int, int] | None:
        """(channel, frequency bin) under an item-coordinate point (x: bin, y: channel)."""
        f, c = int(np.floor(pos.x())), int(np.floor(pos.y()))
        n_ch, n_f = self.grid_shape
        if 0 <= c < n_ch and 0 <= f < n_f:
            return c, f
        return None

    def mouseClickEvent(self, ev):  # noqa: N802 (Qt name)
        if ev.button() != Qt.MouseButton.LeftButton:
            return
        cell = self.cell_at(ev.pos())
        if cell is not None:
            ev.accept()
            self.cell_clicked.emit(*cell)

    def mouseDragEvent(self, ev):  # noqa: N802 (Qt name)
        if ev.button() != Qt.MouseButton.LeftButton:
            ev.ignore()
            return
        ev.accept()
        if ev.isStart():
            self._drag_start = self.cell_at(ev.buttonDownPos())
        end = self.cell_at(ev.pos())
        if ev.isFinish() and self._drag_start is not None and end is not None:
            (c0, f0), (c1, f1) = self._drag_start, end
            self.rect_selected.emit(min(c0, c1), max(c0, c1), min(f0, f1), max(f0, f1))
            self._drag_start = None

    def hoverEvent(self, ev):  # noqa: N802 (Qt name)
        if ev.isExit():
            return
        # claim clicks and drags here, before the selection marks drawn on top can take them
        ev.acceptClicks(Qt.MouseButton.LeftButton)
        ev.acceptDrags(Qt.MouseButton.LeftButton)
        cell = self.cell_at(ev.pos())
        if cell is not None:
            self.hover.emit(*cell)


class _Marks(pg.ScatterPlotItem):
    """Selection marks that let clicks and drags through to the map below."""

    def mouseClickEvent(self, ev):  # noqa: N802 (Qt name)
        ev.ignore()

    def mouseDragEvent(self, ev):  # noqa: N802 (Qt name)
        ev.ignore()


class R2MapView(QWidget):
    """Channel x frequency heatmap with a colour bar, channel labels and selection overlay."""

    selection_changed = pyqtSignal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self.glw = pg.GraphicsLayoutWidget()
        self.glw.setBackground("w")
        self.plot = self.glw.addPlot(row=0, col=0)
        self.plot.setMenuEnabled(False)
        self.plot.hideButtons()
        self.plot.invertY(True)
        self.plot.getViewBox().setMouseEnabled(x=False, y=False)
        self.plot.setLabel("bottom", "frequency (Hz)")
        self.image = R2MapItem()
        self.plot.addItem(self.image)
        self.cmap = pg.colormap.get("CET-D1")
        self.colorbar = pg.ColorBarItem(values=(-0.3, 0.3), colorMap=self.cmap, interactive=False,
                                        label="signed R\u00b2", width=16)
        self.colorbar.setImageItem(self.image, insert_in=self.plot)
        self.marks = _Marks(symbol="s", size=9, pen=pg.mkPen("k", width=1.5),
                                        brush=None, pxMode=True)
        self.marks.setAcceptedMouseButtons(Qt.MouseButton.NoButton)  # clicks go to the map
        self.plot.addItem(self.marks)
        self.freq_line = pg.InfiniteLine(angle=90, pen=pg.mkPen("#2e7d32", width=2,
                                                                style=Qt.PenStyle.DashLine))
        self.freq_line.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
        self.plot.addItem(self.freq_line)
        # before the first Compute: a sentence instead of meaningless axes
        self.placeholder = pg.TextItem("Compute to see the R\u00b2 map", color="#607d8b",
                                       anchor=(0.5, 0.5))
        self.plot.addItem(self.placeholder, ignoreBounds=True)
        lay.addWidget(self.glw)
        self.r2 = np.zeros((0, 0))
        self.freqs = np.zeros(0)
        self.ch_names: list[str] = []
        self.selected: set[tuple[int, int]] = set()
        self.image.cell_clicked.connect(self.toggle)
        self.image.rect_selected.connect(self.select_rect)
        self._show_empty(True)

    def _show_empty(self, empty: bool) -> None:
        """Placeholder text and no axes, ticks, colour bar or frequency line (empty) or the map."""
        self.placeholder.setVisible(empty)
        for side in ("left", "bottom"):
            self.plot.showAxis(side, not empty)
        for item in (self.colorbar, self.freq_line):
            item.setVisible(not empty)
        if empty:
            self.plot.setXRange(0, 1, padding=0)
            self.plot.setYRange(0, 1, padding=0)
            self.placeholder.setPos(0.5, 0.5)

    def set_map(self, r2: np.ndarray, freqs: np.ndarray, ch_names: Sequence[str]) -> None:
        self.r2 = np.asarray(r2, dtype=float)
        self.freqs = np.asarray(freqs, dtype=float)
        self.ch_names = list(ch_names)
        n_ch, n_f = self.r2.shape
        self.image.grid_shape = (n_ch, n_f)
        # ImageItem: first axis is x; x = frequency bin, y = channel
        self.image.setImage(self.r2.T, autoLevels=False)
        self.image.setRect(QRectF(0, 0, n_f, n_ch))
        lim = float(np.nanmax(np.abs(self.r2))) if self.r2.size else 0.1
        lim = max(lim, 1e-3)
        self.colorbar.setLevels((-lim, lim))
        step = max(1, int(np.ceil(n_ch / 20)))  # ~20 readable labels (64 ch: every 4th)
        self.plot.getAxis("left").setTicks([[(i + 0.5, self.ch_names[i]) for i in range(0, n_ch, step)]])
        fstep = max(1, int(np.ceil(n_f / 12)))
        self.plot.getAxis("bottom").setTicks(
            [[(i + 0.5, f"{self.freqs[i]:g}") for i in range(0, n_f, fstep)]])
        self.plot.setXRange(0, n_f, padding=0)
        self.plot.setYRange(0, n_ch, padding=0)
        self.selected = {c for c in self.selected if c[0] < n_ch and c[1] < n_f}
        self._draw_marks()
        self._show_empty(False)

    def set_freq_marker(self, bin_index: int) -> None:
        self.freq_line.setValue(bin_index + 0.5)

    def toggle(self, c: int, f: int) -> None:
        self.selected.symmetric_difference_update({(c, f)})
        self._draw_marks()
        self.selection_changed.emit()

    def select_rect(self, c0: int, c1: int, f0: int, f1: int) -> None:
        self.selected.update((c, f) for c in range(c0, c1 + 1) for f in range(f0, f1 + 1))
        self._draw_marks()
        self.selection_changed.emit()

    def set_selected(self, cells) -> None:
        self.selected = set(cells)
        self._draw_marks()
        self.selection_changed.emit()

    def _draw_marks(self) -> None:
        if not self.selected:
            self.marks.setData([], [])
            return
        cells = sorted(self.selected)
        self.marks.setData([f + 0.5 for _, f in cells], [c + 0.5 for c, _ in cells])

    def specs(self) -> list[str]:
        if not self.selected:
            return []
        return cells_to_specs(sorted(self.selected), self.ch_names, self.freqs)


class TopomapCanvas(QWidget):
    """Scalp map (mne.viz.plot_topomap) of one value per channel, in a matplotlib canvas."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
        from matplotlib.figure import Figure

        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self.figure = Figure(figsize=(3.6, 3.2), dpi=100, facecolor="white")
        self.canvas = FigureCanvasQTAgg(self.figure)
        lay.addWidget(self.canvas)
        self._info = None
        self._info_names: list[str] | None = None
        self.note = ""

    def _make_info(self, ch_names: Sequence[str], sfreq: float):
        import mne

        names = [clean_name(c) for c in ch_names]
        if self._info is not None and self._info_names == names:
            return self._info
        info = mne.create_info(names, sfreq, "eeg")
        montage = mne.channels.make_standard_montage(montage_name())
        try:
            info.set_montage(montage, match_case=False, on_missing="ignore")
        except Exception as exc:  # names that are no 10-05 positions
            logger.info("no montage for these channels: %s", exc)
        self._info, self._info_names = info, names
        return info

    def show_values(self, values: np.ndarray, ch_names: Sequence[str], sfreq: float, title: str,
                    lim: float | None = None) -> bool:
        """Draw ``values`` (n_channels,); False (and a note) if channels have no positions."""
        import mne

        self.figure.clear()
        ax = self.figure.add_subplot(111)
        info = self._make_info(ch_names, sfreq)
        have = [i for i, ch in enumerate(info["chs"]) if np.isfinite(ch["loc"][:3]).all()
                and np.any(ch["loc"][:3] != 0)]
        if len(have) < 3:
            ax.text(0.5, 0.5, "no electrode positions\nfor these channel names", ha="center",
                    va="center", transform=ax.transAxes)
            ax.set_axis_off()
            self.canvas.draw_idle()
            self.note = "no positions"
            return False
        sub = mne.pick_info(info, have)
        v = np.asarray(values, dtype=float)[have]
        lim = float(np.nanmax(np.abs(v))) if lim is None else lim
        im, _ = mne.viz.plot_topomap(v, sub, axes=ax, show=False, cmap="RdBu_r",
                                     vlim=(-lim, lim), contours=4, sensors=True)
        cb = self.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
        cb.set_label("signed R\u00b2", fontsize=9)
        cb.ax.tick_params(labelsize=8)
        ax.set_title(title, fontsize=10)
        self.figure.tight_layout()
        self.canvas.draw_idle()
        self.note = ""
        return True


# ------------------------------------------------------------------------------- the page
class FeaturesPage(Page):
    """Spectra, ERD/ERS, R² maps, topomap and feature selection for the calibration data."""

    title = "Features"
    subtitle = ("What separates the classes in the calibration recordings: spectra, ERD/ERS and "
                "the R\u00b2 map. Click a cell to pick a feature, drag to pick a block, or take "
                "the top N. The selection is used by the Train page (psd-lda / coh-lda).")

    selection_changed = pyqtSignal(list)
    maps_ready = pyqtSignal()

    def __init__(self, context=None, parent: QWidget | None = None):
        super().__init__(context, parent)
        self.jobs = JobRunner(self)
        self.trials: Trials | None = None
        self.maps: FeatureMaps | None = None
        self.paths: list[Path] = []
        self.marker_dialog = None  # the last "Markers..." dialog
        self.current_r2: np.ndarray | None = None
        self._selections: dict[str, set] = {"psd": set(), "ns": set()}

        # --- source row
        src = QHBoxLayout()
        self.files_label = QLabel("No recording chosen.")
        self.files_label.setWordWrap(True)
        self.use_session = QPushButton("Use session calibration")
        self.use_session.clicked.connect(self.use_session_recordings)
        self.open_button = QPushButton("Open recording(s)\u2026")
        self.open_button.clicked.connect(self._open_dialog)
        self.mapping_edit = QLineEdit()
        self.mapping_edit.setPlaceholderText("auto (T1=left_hand, T2=right_hand or cue names)")
        self.mapping_edit.setToolTip("Marker -> class, e.g. T1=left_hand, T2=right_hand; markers with "
                                     "commas: separate pairs with ; (switch,3,0,2=a; switch,3,1,2=b)")
        self.tmin = QDoubleSpinBox()
        self.tmax = QDoubleSpinBox()
        for box, v in ((self.tmin, 0.5), (self.tmax, 2.5)):
            box.setRange(-1.0, 10.0)
            box.setSingleStep(0.25)
            box.setDecimals(2)
            box.setSuffix(" s")
            box.setValue(v)
        self.markers_button = QPushButton("Markers\u2026")
        self.markers_button.setToolTip("List the markers in the chosen recordings and map them to "
                                       "classes")
        self.markers_button.clicked.connect(self.choose_markers)
        self.compute_button = big_button("Compute")
        self.compute_button.clicked.connect(self.compute)
        # two rows: the page fits a 1280 px wide window
        src.addWidget(self.use_session)
        src.addWidget(self.open_button)
        src.addWidget(QLabel("Events"))
        src.addWidget(self.mapping_edit, 1)
        src.addWidget(self.markers_button)
        self.body.addLayout(src)
        src2 = QHBoxLayout()
        src2.addWidget(QLabel("Window after the cue"))
        src2.addWidget(self.tmin)
        src2.addWidget(QLabel("to"))
        src2.addWidget(self.tmax)
        src2.addStretch(1)
        src2.addWidget(self.compute_button)
        self.body.addLayout(src2)
        self.body.addLayout(self._build_spectrum_row())
        row2 = QHBoxLayout()
        row2.addWidget(self.files_label, 1)
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(260)
        self.progress.setFormat("%p%  %v/%m")
        self.progress.hide()
        self.jobs.progress.connect(self._on_progress)
        row2.addWidget(self.progress)
        self.body.addLayout(row2)

        # --- left: map; right: topomap + spectra
        split = QSplitter(Qt.Orientation.Horizontal)
        left = QWidget()
        ll = QVBoxLayout(left)
        ll.setContentsMargins(0, 0, 0, 0)
        mrow = QHBoxLayout()
        mrow.addWidget(QLabel("Map of"))
        self.kind_box = QComboBox()
        self.kind_box.addItem("PSD (power spectrum)", "psd")
        self.kind_box.addItem("Connectivity (node strength)", "ns")
        self.kind_box.setItemData(1, "Node strength of the imaginary coherence",
                                  Qt.ItemDataRole.ToolTipRole)
        self.kind_box.currentIndexChanged.connect(self._on_kind)
        mrow.addWidget(self.kind_box)
        mrow.addWidget(QLabel("classes"))
        self.pair_box = QComboBox()
        self.pair_box.setMinimumContentsLength(16)
        self.pair_box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.pair_box.currentIndexChanged.connect(lambda _: self.refresh_map())
        mrow.addWidget(self.pair_box)
        mrow.addStretch(1)
        self.export_button = QPushButton("Export\u2026")
        self.export_button.setToolTip("Save the R\u00b2 map shown: CSV (channel x frequency) or "
                                      "PNG (the picture)")
        self.export_button.clicked.connect(self._export_dialog)
        mrow.addWidget(self.export_button)
        ll.addLayout(mrow)
        self.map_view = R2MapView()
        self.map_view.selection_changed.connect(self._on_selection)
        self.map_view.image.hover.connect(self._on_hover)
        ll.addWidget(self.map_view, 1)
        self.hover_label = QLabel(" ")
        self.hover_label.setStyleSheet("color: #455a64;")
        ll.addWidget(self.hover_label)
        split.addWidget(left)

        right = QWidget()
        rl = QVBoxLayout(right)
        rl.setContentsMargins(0, 0, 0, 0)
        trow = QHBoxLayout()
        trow.addWidget(QLabel("Topomap at"))
        self.freq_box = QDoubleSpinBox()
        self.freq_box.setRange(0.0, 200.0)
        self.freq_box.setValue(12.0)
        self.freq_box.setSuffix(" Hz")
        self.freq_box.setDecimals(1)
        self.freq_box.valueChanged.connect(lambda _: self.refresh_topomap())
        trow.addWidget(self.freq_box)
        trow.addStretch(1)
        rl.addLayout(trow)
        self.topomap = TopomapCanvas()
        self.topomap.setMinimumHeight(150)  # shares the column with a readable spectra plot
        rl.addWidget(self.topomap, 1)
        crow = QHBoxLayout()
        crow.addWidget(QLabel("Spectra of channel"))
        self.channel_box = QComboBox()
        self.channel_box.currentIndexChanged.connect(lambda _: self.refresh_spectra())
        crow.addWidget(self.channel_box)
        self.spec_mode = QComboBox()
        self.spec_mode.addItem("power (dB)", "db")
        self.spec_mode.addItem("ERD/ERS (%)", "erds")
        self.spec_mode.setToolTip("class-mean power in dB, or ERD/ERS: % change from the pre-cue "
                                  "baseline")
        self.spec_mode.currentIndexChanged.connect(lambda _: self.refresh_spectra())
        crow.addWidget(self.spec_mode)
        crow.addStretch(1)
        rl.addLayout(crow)
        self.spectra = pg.PlotWidget(background="w")
        self.spectra.setMenuEnabled(False)
        self.spectra.hideButtons()
        self.spectra.showGrid(x=True, y=True, alpha=0.25)
        self.spectra.setLabel("bottom", "frequency (Hz)")
        self.spectra.addLegend(offset=(-10, 10))
        self.spectra.setMinimumHeight(160)  # 1280x800: was squeezed to 85 px, y label cut
        rl.addWidget(self.spectra, 1)
        split.addWidget(right)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        self.body.addWidget(split, 1)

        # --- selection row
        box = QGroupBox("Selected features (go to the Train page)")
        gl = QGridLayout(box)
        self.top_n = QSpinBox()
        self.top_n.setRange(1, 200)
        self.top_n.setValue(10)
        self.top_button = QPushButton("Auto-select top N")
        self.top_button.clicked.connect(self.auto_select)
        self.clear_button = QPushButton("Clear")
        self.clear_button.clicked.connect(lambda: self.map_view.set_selected(set()))
        self.spec_list = QListWidget()
        self.spec_list.setFlow(QListWidget.Flow.LeftToRight)
        self.spec_list.setWrapping(True)
        self.spec_list.setMaximumHeight(64)
        gl.addWidget(QLabel("N"), 0, 0)
        gl.addWidget(self.top_n, 0, 1)
        gl.addWidget(self.top_button, 0, 2)
        gl.addWidget(self.clear_button, 0, 3)
        gl.addWidget(self.spec_list, 0, 4)
        self.selection_note = QLabel("")
        self.selection_note.setWordWrap(True)
        self.selection_note.setTextFormat(Qt.TextFormat.PlainText)
        self.selection_note.setStyleSheet("color: #8d6e00;")
        self.selection_note.hide()
        gl.addWidget(self.selection_note, 1, 0, 1, 5)
        gl.setColumnStretch(4, 1)
        self.body.addWidget(box)

        self.jobs.busy_changed.connect(self._on_busy)
        if context is not None:
            context.session_changed.connect(lambda s: self._update_files_label())
            context.session_changed.connect(self._restore_spectrum)
            self._restore_spectrum(getattr(context, "session", None))
        self._update_files_label()

    def _build_spectrum_row(self) -> QHBoxLayout:
        row = QHBoxLayout()
        row.addWidget(QLabel("Spectrum"))
        self.method_box = QComboBox()
        self.method_box.addItem("Welch", "welch")
        self.method_box.addItem("Burg (AR)", "burg")
        self.method_box.setToolTip("Welch: averaged periodograms of windows; Burg: spectrum of an "
                                   "autoregressive model fitted on short windows (as OpenViBE / "
                                   "HappyFeat)")
        row.addWidget(self.method_box)

        def spin(label, lo, hi, step, decimals, suffix, tip):
            box = QDoubleSpinBox()
            box.setMaximumWidth(84)  # the row fits a 1280 px window
            box.setRange(lo, hi)
            box.setSingleStep(step)
            box.setDecimals(decimals)
            box.setSuffix(suffix)
            box.setToolTip(tip)
            row.addWidget(QLabel(label))
            row.addWidget(box)
            return box

        self.win_box = spin("window", 0.05, 10.0, 0.05, 2, " s", "Welch segment / Burg window length")
        self.overlap_box = spin("overlap", 0.0, 95.0, 5.0, 0, " %", "Share of a window that the "
                                "next one overlaps")
        self.order_box = QSpinBox()
        self.order_box.setRange(1, 200)
        self.order_box.setToolTip("Burg: order of the autoregressive model")
        self.order_box.setMaximumWidth(60)
        row.addWidget(QLabel("AR order"))
        row.addWidget(self.order_box)
        self.res_box = spin("resolution", 0.1, 10.0, 0.1, 2, " Hz", "Frequency step of the map "
                            "(Welch: 1 / window; Burg: the grid the AR spectrum is evaluated on)")
        self.fmin_box = spin("band", 0.0, 200.0, 1.0, 1, " Hz", "Frequencies shown in the maps")
        self.fmax_box = QDoubleSpinBox()
        self.fmax_box.setRange(1.0, 500.0)
        self.fmax_box.setDecimals(1)
        self.fmax_box.setSuffix(" Hz")
        self.fmax_box.setMaximumWidth(84)
        row.addWidget(QLabel("\u2013"))
        row.addWidget(self.fmax_box)
        self.fmin_box.setValue(4.0)
        self.fmax_box.setValue(40.0)
        row.addStretch(1)
        self.set_spectrum(SpectrumSettings())
        self.method_box.currentIndexChanged.connect(self._on_method)
        self.win_box.valueChanged.connect(self._sync_spectrum_widgets)
        return row

    def _restore_spectrum(self, session) -> None:
        """Show the spectrum settings saved with the session's selection (what Train uses)."""
        try:
            saved = (session.section("features") or {}).get("spectrum") if session else None
            if saved:
                self.set_spectrum(SpectrumSettings.from_specs(saved))
        except (ValueError, OSError) as exc:  # a hand-edited session file: say so, keep going
            self.report_error(f"The session's spectrum settings were not restored: {exc}")

    def _on_method(self) -> None:
        """A new method starts from its usual settings (Burg: HappyFeat's order 19, 0.25 s)."""
        method = self.method_box.currentData()
        if method == "burg":
            self.set_spectrum(SpectrumSettings("burg", window_s=0.25, overlap=0.75))
        else:
            self.set_spectrum(SpectrumSettings())

    def set_spectrum(self, settings: SpectrumSettings) -> None:
        """Show ``settings`` in the spectrum row."""
        self.method_box.blockSignals(True)
        self.method_box.setCurrentIndex(self.method_box.findData(settings.method))
        self.method_box.blockSignals(False)
        self.win_box.setValue(settings.window_s)
        self.overlap_box.setValue(100.0 * settings.overlap)
        self.order_box.setValue(settings.order)
        self.res_box.setValue(settings.resolution_hz)
        self._sync_spectrum_widgets()

    def _sync_spectrum_widgets(self) -> None:
        burg = self.method_box.currentData() == "burg"
        self.order_box.setEnabled(burg)
        self.res_box.setEnabled(burg)
        if not burg:  # Welch's bins are 1 / window apart: shown, not chosen
            self.res_box.setValue(1.0 / max(self.win_box.value(), 1e-3))

    def spectrum_settings(self) -> SpectrumSettings:
        """The spectrum row as :class:`SpectrumSettings` (raises ValueError on a bad value)."""
        return SpectrumSettings(method=self.method_box.currentData(),
                                window_s=round(self.win_box.value(), 4),
                                overlap=round(self.overlap_box.value() / 100.0, 4),
                                order=self.order_box.value(),
                                resolution_hz=round(self.res_box.value(), 4))

    # ------------------------------------------------------------------ sources
    def session_recordings(self) -> list[Path]:
        s = getattr(self.context, "session", None)
        if s is None:
            return []
        return [p for p in s.recordings() if p.name.startswith("calibration")
                and p.name.endswith((".fif", ".edf", ".bdf", ".gdf", ".vhdr", ".xdf"))]

    def use_session_recordings(self) -> None:
        paths = self.session_recordings()
        if not paths:
            self.report_error("This session has no calibration recording yet: run Calibrate first, "
                              "or open a recording file.")
            return
        self.set_paths(paths)
        self.compute()

    def _open_dialog(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(
            self, "Open calibration recording(s)", "",
            "Recordings (*.fif *.edf *.bdf *.gdf *.vhdr *.xdf *.xdfz);;All files (*)")
        if files:
            self.set_paths(files)
            self.compute()

    def set_paths(self, paths: Sequence[str | Path]) -> None:
        self.paths = [Path(p) for p in paths]
        self._update_files_label()

    def _update_files_label(self) -> None:
        if self.paths:
            self.files_label.setText("Recordings: " + ", ".join(p.name for p in self.paths))
        else:
            n = len(self.session_recordings())
            self.files_label.setText(
                f"{n} calibration recording(s) in this session." if n else
                "No recording chosen: use the session's calibration or open a file.")

    def mapping(self) -> dict[str, str] | None:
        return parse_mapping_text(self.mapping_edit.text())

    def choose_markers(self) -> None:
        """Read the markers of the chosen recordings (worker), then offer them to map to classes."""
        paths = list(self.paths) or self.session_recordings()
        if not paths:
            self.report_error("No recording chosen: open a file or use the session's calibration.")
            return
        try:
            current = self.mapping()
        except ValueError:
            current = None
        offer_markers(self, paths, current,
                      lambda mapping: self.mapping_edit.setText(format_mapping(mapping)),
                      button=self.markers_button)

    # ------------------------------------------------------------------ compute
    def compute(self) -> bool:
        """Load the recordings and compute the maps in a worker thread."""
        if not self.paths:
            self.paths = self.session_recordings()
        if not self.paths:
            self.report_error("No recording to analyse: open a file or record a calibration first.")
            return False
        try:
            mapping = self.mapping()
        except ValueError as exc:
            self.report_error(str(exc))
            return False
        paths, tmin, tmax = list(self.paths), self.tmin.value(), self.tmax.value()
        if not tmax > tmin:
            self.report_error(f"window end {tmax:g} s must be after its start {tmin:g} s")
            return False
        try:
            spectrum = self.spectrum_settings()
        except ValueError as exc:
            self.report_error(f"Spectrum settings: {exc}")
            return False
        band = (self.fmin_box.value(), self.fmax_box.value())
        if not band[1] > band[0]:
            self.report_error(f"band end {band[1]:g} Hz must be above its start {band[0]:g} Hz")
            return False
        if spectrum.window_s > tmax - tmin + 1e-9:
            self.report_error(f"Spectrum window {spectrum.window_s:g} s is longer than the trial "
                              f"window {tmax - tmin:g} s; expected at most {tmax - tmin:g} s")
            return False

        def work(task):
            task.progress(0, 4, "loading")
            trials = load_trials(paths, mapping, tmin=tmin, tmax=tmax, baseline=True)
            task.check()

            def prog(d, t, text):
                task.check()
                task.progress(1 + d, 1 + t, text)

            maps = compute_feature_maps(trials, band=band, progress=prog, spectrum=spectrum)
            return trials, maps

        self._update_files_label()
        return self.jobs.start(work, on_done=self._on_maps, on_error=self._on_error, name="features")

    def _on_progress(self, done: int, total: int, text: str) -> None:
        self.progress.setMaximum(total)
        self.progress.setValue(done)
        self.progress.setFormat(f"{text}  %p%")

    def _on_busy(self, busy: bool) -> None:
        self.progress.setVisible(busy)
        for w in (self.compute_button, self.use_session, self.open_button):
            w.setEnabled(not busy)

    def _on_error(self, message: str) -> None:
        self.report_error(f"Features: {message}")

    def _carry_selection(self, old: FeatureMaps | None, new: FeatureMaps) -> None:
        """Keep the selection by channel name and frequency on new maps; say what was dropped.

        A cell of ``old`` is kept when ``new`` has a channel of that name and a frequency bin
        within half a bin of its frequency; cell positions are never reused as they are.
        """
        kept_all: list[str] = []
        dropped_all: list[str] = []
        for kind, cells in self._selections.items():
            if old is None or not cells:
                self._selections[kind] = set()
                continue
            of, nf = old.freqs_of(kind), new.freqs_of(kind)
            index = {c.casefold(): i for i, c in enumerate(new.ch_names)}
            half = 0.5 * float(np.min(np.diff(nf))) if len(nf) > 1 else 0.5
            kept: set[tuple[int, int]] = set()
            dropped: list[tuple[int, int]] = []
            for c, f in sorted(cells):
                ci = index.get(old.ch_names[c].casefold())
                fi = int(np.argmin(np.abs(nf - of[f]))) if len(nf) else -1
                if ci is None or fi < 0 or abs(nf[fi] - of[f]) > half + 1e-9:
                    dropped.append((c, f))
                else:
                    kept.add((ci, fi))
            self._selections[kind] = kept
            tag = "" if kind == "psd" else " (node strength)"
            kept_all += [x + tag for x in cells_to_specs(sorted(kept), new.ch_names, nf)] if kept else []
            dropped_all += ([x + tag for x in cells_to_specs(dropped, old.ch_names, of)]
                            if dropped else [])
        if not kept_all and not dropped_all:
            self.selection_note.hide()
            return
        note = ("Selection on the new recordings, by channel name and frequency: kept "
                + (", ".join(kept_all) or "nothing"))
        if dropped_all:
            note += "; dropped (channel or frequency not in the new data): " + ", ".join(dropped_all)
        self.selection_note.setText(note + ".")
        self.selection_note.show()
        if self.context is not None:
            self.context.report_info(note + ".")

    def _on_maps(self, result) -> None:
        old = self.maps
        self.trials, self.maps = result
        maps = self.maps
        self._carry_selection(old, maps)
        counts = {lab: int(np.sum(maps.y == lab)) for lab in maps.labels}
        self.files_label.setText(
            "Recordings: " + ", ".join(Path(p).name for p in self.trials.sources) + " \u2014 "
            + ", ".join(f"{n} {lab}" for lab, n in counts.items())
            + f" trials, {len(maps.ch_names)} channels, {self.trials.sfreq:g} Hz")
        self.pair_box.blockSignals(True)
        self.pair_box.clear()
        labs = maps.labels
        for i in range(len(labs)):
            for j in range(i + 1, len(labs)):
                self.pair_box.addItem(f"{labs[i]} vs {labs[j]}", (labs[i], labs[j]))
        self.pair_box.blockSignals(False)
        self.channel_box.blockSignals(True)
        self.channel_box.clear()
        self.channel_box.addItems(maps.ch_names)
        pref = next((c for c in ("C3", "C4", "Cz") if c in maps.ch_names), maps.ch_names[0])
        self.channel_box.setCurrentText(pref)
        self.channel_box.blockSignals(False)
        self.refresh_map()
        self.refresh_spectra()
        if old is not None or maps.spectrum != SpectrumSettings():
            # the Train page sees the carried selection and the spectrum of these maps
            self._publish_selection()
        if getattr(self, "_top_after", False):
            self._top_after = False
            self.auto_select()
        self.maps_ready.emit()

    # ------------------------------------------------------------------ views
    @property
    def kind(self) -> str:
        return self.kind_box.currentData()

    def _on_kind(self) -> None:
        self.refresh_map()

    def refresh_map(self) -> None:
        if self.maps is None:
            return
        pair = self.pair_box.currentData()
        self.current_r2 = self.maps.r2(self.kind, tuple(pair) if pair else None)
        kind = self.kind
        self.map_view.blockSignals(True)
        self.map_view.selected = set(self._selections[kind])
        self.map_view.set_map(self.current_r2, self.maps.freqs_of(kind), self.maps.ch_names)
        self.map_view.blockSignals(False)
        a, b = pair if pair else self.maps.labels[:2]
        self.map_view.plot.setTitle(
            f"R\u00b2 ({'PSD' if kind == 'psd' else 'node strength'}), positive = larger for {b}",
            size="10pt")
        self._show_specs()
        self.refresh_topomap()

    def _export_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export the R\u00b2 map", "r2-map.csv",
                                              "CSV table (*.csv);;PNG picture (*.png)")
        if path:
            self.export_map(path)

    def export_map(self, path: str | Path) -> Path | None:
        """Write the map shown: ``.csv`` (a row per channel, a column per frequency) or ``.png``."""
        if self.current_r2 is None:
            self.report_error("Compute the maps first.")
            return None
        path = Path(path)
        try:
            if path.suffix.lower() == ".png":
                if not self.map_view.glw.grab().save(str(path)):
                    raise OSError(f"could not write {path}")
            elif path.suffix.lower() == ".csv":
                freqs = self.maps.freqs_of(self.kind)
                lines = ["channel," + ",".join(f"{f:g}" for f in freqs)]
                lines += [f"{ch}," + ",".join(f"{v:.6g}" for v in row)
                          for ch, row in zip(self.maps.ch_names, self.current_r2)]
                path.write_text("\n".join(lines) + "\n", encoding="utf-8")
            else:
                raise ValueError(f"map file {path.name!r}: expected a .csv or .png name")
        except (OSError, ValueError) as exc:
            self.report_error(f"Export: {exc}")
            return None
        if self.context is not None:
            self.context.report_info(f"R\u00b2 map saved to {path}")
        return path

    def freq_index(self) -> int:
        freqs = self.maps.freqs_of(self.kind)
        return int(np.argmin(np.abs(freqs - self.freq_box.value())))

    def refresh_topomap(self) -> None:
        if self.maps is None or self.current_r2 is None:
            return
        i = self.freq_index()
        f = self.maps.freqs_of(self.kind)[i]
        self.map_view.set_freq_marker(i)
        lim = float(np.max(np.abs(self.current_r2))) or 1e-3
        self.topomap.show_values(self.current_r2[:, i], self.maps.ch_names, self.trials.sfreq,
                                 f"R\u00b2 at {f:g} Hz", lim=lim)

    def refresh_spectra(self) -> None:
        if self.maps is None:
            return
        self.spectra.clear()
        ch = max(0, self.channel_box.currentIndex())
        mode = self.spec_mode.currentData()
        colours = ["#1565c0", "#c62828", "#2e7d32", "#6a1b9a"]
        for k, lab in enumerate(self.maps.labels):
            y = self.maps.class_mean_db(lab)[ch] if mode == "db" else self.maps.erds(lab)[ch]
            self.spectra.plot(self.maps.freqs, y, pen=pg.mkPen(colours[k % 4], width=2), name=lab)
        if mode == "db":
            base = 10 * np.log10(self.maps.base_psd[ch])
            self.spectra.plot(self.maps.freqs, base, pen=pg.mkPen("#757575", width=1.5,
                                                                 style=Qt.PenStyle.DashLine),
                              name="pre-cue baseline")
            self.spectra.setLabel("left", "power (dB \u00b5V\u00b2/Hz)")
        else:
            self.spectra.addItem(pg.InfiniteLine(pos=0, angle=0, pen=pg.mkPen("#757575")))
            self.spectra.setLabel("left", "ERD/ERS (%)")
        self.spectra.setTitle(f"{self.maps.ch_names[ch]}", size="10pt")

    def _on_hover(self, c: int, f: int) -> None:
        if self.current_r2 is None:
            return
        freqs = self.maps.freqs_of(self.kind)
        self.hover_label.setText(f"{self.maps.ch_names[c]} at {freqs[f]:g} Hz: "
                                 f"R\u00b2 = {self.current_r2[c, f]:+.3f}   (click to select, "
                                 "drag for a block)")

    # ------------------------------------------------------------------ selection
    def auto_select(self) -> None:
        if self.current_r2 is None:
            self.report_error("Compute the maps first.")
            return
        from neurodeck.decoders.selection import top_features

        self.map_view.set_selected(top_features(self.current_r2, self.top_n.value()))

    def _on_selection(self) -> None:
        self._selections[self.kind] = set(self.map_view.selected)
        self.selection_note.hide()
        self._show_specs()
        self._publish_selection()

    def _publish_selection(self) -> None:
        """Hand both selections to the Train page and the session."""
        specs = self.selection()
        if self.context is not None:
            self.context.feature_selection = {k: self.selection(k) for k in ("psd", "ns", "spectrum")}
            s = getattr(self.context, "session", None)
            if s is not None:
                try:
                    s.set_section("features", {"psd": self.selection("psd"),
                                               "ns": self.selection("ns"),
                                               "spectrum": self.selection("spectrum"),
                                               "recordings": [str(p) for p in self.paths]})
                except Exception as exc:  # a full disk must not break selecting
                    self.report_error(f"Could not save the selection in the session: {exc}")
        self.selection_changed.emit(specs)

    def selection(self, kind: str | None = None) -> list[str]:
        """Selected features of ``kind`` (``"psd"`` or ``"ns"``; default the shown map) as specs.

        ``"spectrum"``: the spectrum settings of the maps shown (:meth:`SpectrumSettings.to_specs`),
        empty for the default Welch (what the pipelines do by themselves).
        """
        kind = kind or self.kind
        if kind == "spectrum":
            sp = self.maps.spectrum if self.maps is not None else SpectrumSettings()
            return [] if sp == SpectrumSettings() else sp.to_specs()
        if self.maps is None or not self._selections[kind]:
            return []
        return cells_to_specs(sorted(self._selections[kind]), self.maps.ch_names,
                              self.maps.freqs_of(kind))

    def _show_specs(self) -> None:
        self.spec_list.clear()
        specs = self.selection()
        self.spec_list.addItems(specs or ["(none: the pipelines pick their top 10 inside each fold)"])

    # ------------------------------------------------------------------ screenshots
    def prepare_screenshot(self) -> None:
        """scripts/screenshots.py: analyse the session's calibration and pick the top 10."""
        self._top_after = True
        self.use_session_recordings()

    def screenshot_ready(self) -> bool:
        return self.maps is not None and not self.jobs.busy

    # ------------------------------------------------------------------ lifecycle
    def busy_reason(self) -> str | None:
        return "computing feature maps" if self.jobs.busy else None

    def shutdown(self) -> None:
        self.jobs.shutdown()
