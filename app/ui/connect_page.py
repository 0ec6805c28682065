"""Connect page: pick a data source (LSL streams, the simulator, a replayed file) and look at it."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from PyQt6.QtCore import Qt, QTimer, pyqtSignal
from PyQt6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from neurodeck.app.ui.signal_view import SignalView
from neurodeck.app.ui.spectrum_view import SpectrumView
from neurodeck.app.ui.widgets import Page, big_button

logger = logging.getLogger(__name__)

#: How often the stream list is searched again while the Connect page is shown.
AUTO_REFRESH_MS = 4000

REPLAY_FILTER = "Recordings (*.fif *.fif.gz *.edf *.bdf *.gdf *.vhdr *.xdf *.xdfz);;All files (*)"


class ConnectPage(Page):
    """List LSL streams, start the simulator or a replay, connect, and watch the signal."""

    title = "1 \u00b7 Connect"
    subtitle = ("Choose where the EEG comes from: an amplifier's LSL stream, the built-in simulator, "
                "or a recording replayed as if it were live. Then check the signal quality.")

    streams_listed = pyqtSignal(list)

    def __init__(self, context=None, parent: QWidget | None = None):
        super().__init__(context, parent)
        self.streams: list[Any] = []
        self._listing = self._again = False
        #: the user picked the marker stream (or "(none)") by hand: no automatic choice then
        self._marker_by_hand = False
        row = QHBoxLayout()
        self.body.addLayout(row, 1)

        left = QWidget()
        left.setFixedWidth(360)  # with the viewer, fits a 1280 px window
        lv = QVBoxLayout(left)
        lv.setContentsMargins(0, 0, 8, 0)
        row.addWidget(left)

        # --- built-in sources
        src = QGroupBox("No amplifier? Use a built-in source")
        sv = QVBoxLayout(src)
        simrow = QHBoxLayout()
        self.sim_channels = QSpinBox()
        self.sim_channels.setRange(1, 256)
        self.sim_channels.setValue(64)
        self.sim_channels.setSuffix(" ch")
        self.sim_channels.setMaximumWidth(80)
        self.sim_rate = QComboBox()
        for r in (128, 256, 512, 1000, 2048):
            self.sim_rate.addItem(f"{r} Hz", r)
        self.sim_rate.setMaximumWidth(90)
        self.sim_rate.setCurrentIndex(2)
        simrow.addWidget(self.sim_channels)
        simrow.addWidget(self.sim_rate)
        self.sim_button = big_button("Start simulator")
        self.sim_button.setToolTip("A simulated motor-imagery brain on LSL; the calibration cues it")
        self.sim_button.clicked.connect(self.start_simulator)
        simrow.addWidget(QLabel("simulated EEG"), 1)
        sv.addLayout(simrow)
        sv.addWidget(self.sim_button)  # its own row: the label fits the 360 px column
        reprow = QHBoxLayout()
        self.speed_box = QDoubleSpinBox()
        self.speed_box.setRange(0.1, 100.0)
        self.speed_box.setValue(1.0)
        self.speed_box.setPrefix("speed x")
        self.replay_button = QPushButton("Replay a file\u2026")
        self.replay_button.setMinimumHeight(34)
        self.replay_button.clicked.connect(self._choose_replay)
        reprow.addWidget(self.speed_box)
        reprow.addWidget(self.replay_button, 1)
        sv.addLayout(reprow)
        lv.addWidget(src)

        # --- LSL streams
        lsl = QGroupBox("LSL streams on the network")
        lsv = QVBoxLayout(lsl)
        self.table = QTableWidget(0, 4)
        self.table.setHorizontalHeaderLabels(["Name", "Type", "Channels", "Rate"])
        self.table.verticalHeader().hide()
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        hh = self.table.horizontalHeader()
        hh.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for c in (1, 2, 3):
            hh.setSectionResizeMode(c, QHeaderView.ResizeMode.ResizeToContents)
        self.table.setMinimumHeight(130)
        self.table.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.table.setWordWrap(False)
        self.table.itemSelectionChanged.connect(self._table_selected)
        lsv.addWidget(self.table, 1)
        self.refresh_button = QPushButton("\u21bb  Refresh list")
        self.refresh_button.clicked.connect(self.refresh)
        lsv.addWidget(self.refresh_button)
        form = QFormLayout()
        self.eeg_box = QComboBox()
        self.marker_box = QComboBox()
        form.addRow("EEG stream", self.eeg_box)
        form.addRow("Marker stream", self.marker_box)
        self.eeg_box.currentIndexChanged.connect(lambda _i: self._auto_marker())
        self.marker_box.activated.connect(lambda _i: setattr(self, "_marker_by_hand", True))
        lsv.addLayout(form)
        self.connect_button = big_button("Connect")
        self.connect_button.clicked.connect(self.connect_selected)
        lsv.addWidget(self.connect_button)
        lv.addWidget(lsl, 1)

        # --- status
        st = QGroupBox("Connected source")
        stv = QVBoxLayout(st)
        self.source_label = QLabel("Nothing connected yet.")
        self.source_label.setWordWrap(True)
        stv.addWidget(self.source_label)
        self.bad_label = QLabel("")
        self.bad_label.setWordWrap(True)
        stv.addWidget(self.bad_label)
        self.disconnect_button = QPushButton("Disconnect")
        self.disconnect_button.clicked.connect(self.disconnect)
        stv.addWidget(self.disconnect_button)
        lv.addWidget(st)

        # --- viewers
        prefs = context.settings.viewer if context is not None else {}
        split = QSplitter(Qt.Orientation.Vertical)
        self.signal_view = SignalView(prefs=prefs)
        self.spectrum_view = SpectrumView()
        split.addWidget(self.signal_view)
        split.addWidget(self.spectrum_view)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 1)
        split.setSizes([600, 220])
        row.addWidget(split, 1)
        self.signal_view.bad_channels_changed.connect(self._show_bad)

        if context is not None:
            sm = context.streams
            sm.marker_posted.connect(self.signal_view.add_marker)
            sm.connection_changed.connect(self._on_connection)
            sm.busy_changed.connect(self._on_busy)
        # the list follows the network while the page is shown (streams come and go)
        self.auto_refresh = QTimer(self)
        self.auto_refresh.setInterval(AUTO_REFRESH_MS)
        self.auto_refresh.timeout.connect(lambda: None if self._listing else self.refresh())
        self._update_buttons()

    def showEvent(self, ev) -> None:  # noqa: N802 (Qt name)
        super().showEvent(ev)
        if self.context is not None:
            self.auto_refresh.start()
            self.refresh()

    def hideEvent(self, ev) -> None:  # noqa: N802 (Qt name)
        self.auto_refresh.stop()
        super().hideEvent(ev)

    # ------------------------------------------------------------------ stream list
    def refresh(self) -> None:
        """List LSL streams in the background (takes ~1 s)."""
        if self.context is None or self.context.streams._closed:
            return
        if self._listing:  # the listing under way may predate a new stream: search again after
            self._again = True
            return
        self._listing, self._again = True, False
        self.refresh_button.setEnabled(False)
        self.refresh_button.setText("Searching\u2026")

        def work():
            from neurodeck.acquisition.streams import list_streams

            return list_streams(timeout=1.0)

        def done(streams):
            self._listing = False
            if self._again:
                self.refresh()
                return
            self._fill(streams)
            self.streams_listed.emit(streams)

        def fail(exc):
            self._listing = False
            self._fill([])
            self.report_error(f"Could not list LSL streams: {exc}")

        self.context.background.run(work, done, fail, name="list-streams")

    def _fill(self, streams: list[Any]) -> None:
        self.streams = list(streams)
        self.refresh_button.setEnabled(True)
        self.refresh_button.setText("\u21bb  Refresh list")
        self.table.setRowCount(len(self.streams))
        for r, d in enumerate(self.streams):
            rate = "irregular" if not d.srate else f"{d.srate:g} Hz"
            for c, text in enumerate((d.name, d.type, str(d.n_channels), rate)):
                item = QTableWidgetItem(text)
                item.setToolTip(f"{d.name}\nsource id: {d.source_id}\nhost: {d.hostname}\n"
                                f"format: {d.channel_format}")
                self.table.setItem(r, c, item)
        eeg_prev, mk_prev = self.eeg_box.currentText(), self.marker_box.currentText()
        self.eeg_box.clear()
        self.marker_box.clear()
        self.marker_box.addItem("(none)", None)
        for d in self.streams:
            text = f"{d.name}  [{d.source_id or d.hostname}]"
            if d.is_marker:
                self.marker_box.addItem(text, d)
            elif d.srate > 0:
                self.eeg_box.addItem(text, d)
        self.eeg_box.blockSignals(True)
        for box, prev in ((self.eeg_box, eeg_prev), (self.marker_box, mk_prev)):
            i = box.findText(prev)
            if i >= 0:
                box.setCurrentIndex(i)
        self.eeg_box.blockSignals(False)
        self._auto_marker()  # streams appear one by one: choose again unless chosen by hand
        self._show_connected()
        self._update_buttons()

    def _show_connected(self) -> bool:
        """Point the combos at the connected EEG stream and marker stream ("(none)" when no
        marker stream is connected); False when a connected stream is not listed yet."""
        sm = self.context.streams if self.context is not None else None
        if sm is None or sm.inlet is None:
            return True
        d = sm.description
        found = self.select_stream(d.name, d.source_id)
        mk = sm.marker_description
        if mk is None:  # after the EEG: choosing it picks a marker stream automatically
            self.marker_box.setCurrentIndex(0)
        else:
            found = self.select_stream(mk.name, mk.source_id) and found
        return found

    def _auto_marker(self) -> None:
        """Pick the marker stream that belongs to the chosen EEG stream (``NAME-markers``, or a
        marker stream from the same source), or the only one on the network; never when the user
        chose one by hand."""
        if self._marker_by_hand:
            return
        eeg = self.eeg_box.currentData()
        cands = [self.marker_box.itemData(i) for i in range(1, self.marker_box.count())]
        pick = None
        if eeg is not None:
            prefix = eeg.name.casefold()

            def rank(d) -> int:
                n = d.name.casefold()
                if n == prefix + "-markers":
                    return 0
                if "marker" in n and (n.startswith(prefix) or (
                        eeg.source_id and d.source_id.startswith(eeg.source_id))):
                    return 1
                return 9

            same = sorted((d for d in cands if rank(d) < 9), key=rank)
            pick = same[0] if same else None
        if pick is None and len(cands) == 1:
            pick = cands[0]
        if pick is None:
            self.marker_box.setCurrentIndex(0)
            return
        for i in range(self.marker_box.count()):
            if self.marker_box.itemData(i) is pick:
                self.marker_box.setCurrentIndex(i)
                return

    def _table_selected(self) -> None:
        rows = {i.row() for i in self.table.selectedItems()}
        if not rows:
            return
        d = self.streams[min(rows)]
        box = self.marker_box if d.is_marker else self.eeg_box
        if d.is_marker:
            self._marker_by_hand = True
        for i in range(box.count()):
            if box.itemData(i) is d:
                box.setCurrentIndex(i)

    def select_stream(self, name: str, source_id: str | None = None) -> bool:
        """Pick the EEG (or marker) stream with this name (and source id) in the combos."""
        found = False
        for box in (self.eeg_box, self.marker_box):
            for i in range(box.count()):
                d = box.itemData(i)
                if d is not None and d.name == name and (source_id is None or d.source_id == source_id):
                    box.setCurrentIndex(i)
                    found = True
        return found

    # ------------------------------------------------------------------ actions
    def connect_selected(self) -> None:
        eeg = self.eeg_box.currentData()
        if eeg is None:
            self.report_error("Choose an EEG stream first (press Refresh list to search the network).")
            return
        self.context.streams.connect_streams(eeg, self.marker_box.currentData())

    def start_simulator(self) -> None:
        self.context.streams.start_simulator(
            n_channels=self.sim_channels.value(), srate=float(self.sim_rate.currentData())
        )

    def _choose_replay(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Replay a recording", "", REPLAY_FILTER)
        if path:
            self.start_replay(path)

    def start_replay(self, path: str | Path) -> None:
        path = Path(path)
        if not path.exists():
            self.report_error(f"Recording {str(path)!r} not found.")
            return
        self.context.streams.start_player(path, speed=self.speed_box.value(), loop=True)

    def disconnect(self) -> None:
        if self.context is not None:
            self.context.streams.disconnect()

    # ------------------------------------------------------------------ model news
    def _on_busy(self, busy: bool) -> None:
        if busy:
            self.source_label.setText("Connecting\u2026")
        else:  # a success adopts the inlets right after busy ends: look once that is done
            QTimer.singleShot(0, self._after_attempt)
        self._update_buttons()

    def _after_attempt(self) -> None:
        sm = self.context.streams if self.context is not None else None
        if sm is None or sm.busy or sm.connected or sm._closed:
            return
        # the connection failed (the error is in the banner): say so, and drop the streams that
        # are gone from the list
        self.source_label.setText("Not connected: the last attempt failed (see the message above). "
                                  "Choose a stream and try again.")
        self.refresh()

    def _on_connection(self) -> None:
        sm = self.context.streams
        inlet = sm.inlet
        self.signal_view.set_inlet(inlet)
        self.signal_view.set_marker_inlet(sm.marker_inlet)
        self.spectrum_view.set_inlet(inlet)
        if inlet is None:
            self.source_label.setText("Nothing connected yet.")
            self.bad_label.setText("")
        else:
            d = inlet.description
            mk = sm.marker_description
            self.source_label.setText(
                f"<b>{sm.source_label}</b><br>EEG: {d.name} \u2014 {d.n_channels} channels at "
                f"{d.srate:g} Hz<br>Markers: {mk.name if mk is not None else 'none'}"
            )
            if not self._show_connected():  # e.g. a simulator started after the last search
                self.refresh()
        self._update_buttons()

    def _show_bad(self, bad: dict) -> None:
        if not bad:
            self.bad_label.setText("<span style='color:#2e7d32'>All channels look fine.</span>")
            return
        items = ", ".join(f"{k} ({v})" for k, v in list(bad.items())[:12])
        more = f" and {len(bad) - 12} more" if len(bad) > 12 else ""
        self.bad_label.setText(f"<span style='color:#c62828'>Check: {items}{more}</span>")

    def _update_buttons(self) -> None:
        busy = self.context is not None and self.context.streams.busy
        connected = self.context is not None and self.context.streams.connected
        for b in (self.sim_button, self.replay_button):
            b.setEnabled(not busy)
        self.connect_button.setEnabled(not busy and self.eeg_box.count() > 0)
        self.disconnect_button.setEnabled(connected and not busy)

    def shutdown(self) -> None:
        self.signal_view.stop()
        self.spectrum_view.stop()
        if self.context is not None:
            self.context.settings.viewer = self.signal_view.prefs()
