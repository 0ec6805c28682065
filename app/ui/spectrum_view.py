"""Live power spectrum: Welch on the last seconds of the inlet's ring buffer, log power (dB).

The Welch estimate is the decoders' own (:func:`decoders.features.psd.welch_psd`, 1 s Hann
segments, 50 % overlap), so what the operator sees is what the psd pipelines compute.
"""
from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import QTimer
from PyQt6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from neurodeck.app.ui.signal_view import channel_labels
from neurodeck.decoders.features.psd import welch_psd

logger = logging.getLogger(__name__)


def welch_db(data: np.ndarray, srate: float, fmax: float) -> tuple[np.ndarray, np.ndarray]:
    """Welch PSD in dB re 1 µV²/Hz from 0 to ``fmax`` (the decoders' :func:`welch_psd`).

    Parameters
    ----------
    data : ndarray, shape (n_channels, n_times)
        Microvolts.
    srate : float
    fmax : float
        Highest frequency kept (clipped to Nyquist).

    Returns
    -------
    freqs : ndarray, shape (n_freqs,)
    psd_db : ndarray, shape (n_channels, n_freqs)
    """
    psd, freqs = welch_psd(np.asarray(data, dtype=np.float64)[None], srate, 0.0,
                           min(float(fmax), srate / 2.0))
    return freqs, 10.0 * np.log10(np.maximum(psd[0], 1e-12))


class SpectrumView(QWidget):
    """Spectrum of the channel average (and of one chosen channel), refreshed twice a second."""

    def __init__(self, parent: QWidget | None = None, seconds: float = 4.0, fmax: float = 60.0,
                 interval_ms: int = 500):
        super().__init__(parent)
        self.inlet: Any = None
        self.seconds = float(seconds)
        self.fmax = float(fmax)
        self.labels: list[str] = []
        self.updates = 0
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        bar = QHBoxLayout()
        bar.addWidget(QLabel("Spectrum of"))
        self.channel_box = QComboBox()
        self.channel_box.addItem("average of all channels", -1)
        self.channel_box.setMinimumContentsLength(22)
        bar.addWidget(self.channel_box)
        bar.addStretch(1)
        self.note = QLabel(f"Welch, last {self.seconds:g} s")
        self.note.setStyleSheet("color: #607d8b;")
        bar.addWidget(self.note)
        lay.addLayout(bar)
        self.plot = pg.PlotWidget(background="w")
        self.plot.setLabel("bottom", "frequency (Hz)")
        self.plot.setLabel("left", "power (dB \u00b5V\u00b2/Hz)")
        self.plot.showGrid(x=True, y=True, alpha=0.25)
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.hideButtons()
        self.plot.setMenuEnabled(False)
        self.plot.addLegend(offset=(-10, 10))
        self.avg_curve = self.plot.plot(pen=pg.mkPen("#1565c0", width=2), name="average")
        self.chan_curve = self.plot.plot(pen=pg.mkPen("#ef6c00", width=1.5), name="channel")
        self.plot.setXRange(0, self.fmax, padding=0)
        lay.addWidget(self.plot, 1)
        self.freqs = np.zeros(0)
        self.psd_db = np.zeros((0, 0))
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self.update_spectrum)

    def set_inlet(self, inlet: Any) -> None:
        self.inlet = inlet
        self.channel_box.blockSignals(True)
        while self.channel_box.count() > 1:
            self.channel_box.removeItem(1)
        self.channel_box.blockSignals(False)
        self.avg_curve.setData([], [])
        self.chan_curve.setData([], [])
        if inlet is None or not inlet.description.srate or inlet.description.srate <= 0:
            self.inlet = None
            self._timer.stop()
            return
        self.labels = channel_labels(inlet.description)
        for i, lab in enumerate(self.labels):
            self.channel_box.addItem(lab, i)
        self.plot.setXRange(0, min(self.fmax, inlet.description.srate / 2), padding=0)
        self._timer.start()

    def update_spectrum(self) -> None:
        if self.inlet is None or not self.isVisible():
            return
        try:
            srate = float(self.inlet.description.srate)
            buf = self.inlet.buffer
            n = min(int(buf.n_written), int(self.seconds * srate), buf.capacity)
            if n < int(srate):
                return
            data, _ = buf.latest(n)
            freqs, db = welch_db(data, srate, self.fmax)
        except Exception:
            logger.exception("spectrum update failed")
            self._timer.stop()
            return
        keep = freqs <= self.fmax
        self.freqs, self.psd_db = freqs[keep], db[:, keep]
        self.avg_curve.setData(self.freqs, self.psd_db.mean(axis=0))
        ch = self.channel_box.currentData()
        if ch is not None and ch >= 0 and ch < self.psd_db.shape[0]:
            self.chan_curve.setData(self.freqs, self.psd_db[ch])
        else:
            self.chan_curve.setData([], [])
        self.updates += 1

    def stop(self) -> None:
        self._timer.stop()
