"""The neurodeck main window: workflow pages in a sidebar, a status bar that always shows the stream.

Pages are registered in :data:`PAGES`, in workflow order. A page is a :class:`app.ui.widgets.Page`
subclass built as ``PageClass(context)``; a page whose module does not exist yet shows a
placeholder saying what will come, so adding a page means adding its module.
"""
from __future__ import annotations

import datetime as _dt
import importlib
import logging
from dataclasses import dataclass
from pathlib import Path

from PyQt6.QtCore import QByteArray, QEvent, QSize, Qt, QTimer
from PyQt6.QtGui import QAction, QKeySequence
from PyQt6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QMessageBox,
    QPushButton,
    QSizePolicy,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from neurodeck.app.session import Session, SessionError, list_sessions
from neurodeck.app.settings import Settings
from neurodeck.app.ui.qt_models import AppContext, error_text
from neurodeck.app.ui.qtgc import install_gui_gc
from neurodeck.app.ui.widget_dump import install as install_widget_dump
from neurodeck.app.ui.widgets import (
    APP_STYLE,
    ErrorBanner,
    InfoToast,
    Page,
    PlaceholderPage,
    StateBadge,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PageSpec:
    """A workflow page: ``target`` is ``"module:Class"``; ``placeholder`` says what it will do."""

    key: str
    title: str
    target: str
    placeholder: str = ""


PAGES: list[PageSpec] = [
    PageSpec("connect", "1  Connect", "neurodeck.app.ui.connect_page:ConnectPage"),
    PageSpec("calibrate", "2  Calibrate", "neurodeck.app.ui.calibrate_page:CalibratePage"),
    PageSpec("features", "3  Features", "neurodeck.app.ui.features_page:FeaturesPage",
             "From the calibration recordings: class-mean spectra, ERD/ERS, the R\u00b2 map "
             "(channel \u00d7 frequency) for PSD and connectivity node strength, a scalp topomap at "
             "the chosen frequency, and feature selection by clicking the map or taking the top N."),
    PageSpec("train", "4  Train", "neurodeck.app.ui.train_page:TrainPage",
             "Choose decoding pipelines (psd-lda, coh-lda, ts-lr, acm-ts-svm, mdm, ...), run "
             "cross-validation in the background, compare scores and confusion matrices, save the "
             "model bundle (ONNX + JSON) into the session and export an HTML calibration report."),
    PageSpec("online", "5  Online", "neurodeck.app.ui.online_page:OnlinePage",
             "Run the chosen model live: Graz feedback bar and a cursor task driven by the DKF, "
             "cued runs that score themselves, decisions published on LSL, recording on."),
    PageSpec("replay", "6  Replay", "neurodeck.app.ui.replay_page:ReplayPage",
             "Open any recording and play it as LSL (speed, loop, pause) so the other pages work on "
             "it, or run a pseudo-online evaluation of a saved model with progress and results."),
]


#: The stream alarm: shown on every page while the EEG stream is lost, gone when it is back.
LOST_ALARM = ("The EEG stream is lost: check the amplifier / cable / network. neurodeck reconnects "
              "by itself when it comes back; a running recording goes on and marks the gap.")


#: Widest a stream name gets in the status bar (px); longer names are elided in the middle.
STREAM_NAME_WIDTH = 160


def default_size(available: QSize) -> tuple[int, int]:
    """Window size at first start: 1400 x 900 or the screen's available area if smaller."""
    return min(1400, available.width()), min(900, available.height())


def _page_title(spec: PageSpec) -> str:
    number, _, name = spec.title.partition(" ")
    return f"{number} \u00b7 {name.strip()}"


def load_page(spec: PageSpec, context: AppContext) -> tuple[Page, str | None]:
    """Build the page of ``spec``; a placeholder if its module is missing. Returns (page, error)."""
    module_name, _, cls_name = spec.target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            text = spec.placeholder or "This page is not built yet."
            return PlaceholderPage(context, title=_page_title(spec), text=f"Coming next. {text}"), None
        err = f"The {spec.title.split()[-1]} page could not load: {error_text(exc)}"
        return PlaceholderPage(context, title=_page_title(spec), text=err), err
    except Exception as exc:
        err = f"The {spec.title.split()[-1]} page could not load: {error_text(exc)}"
        logger.exception("loading page %s", spec.target)
        return PlaceholderPage(context, title=_page_title(spec), text=err), err
    try:
        page = getattr(module, cls_name)(context)
    except Exception as exc:
        err = f"The {spec.title.split()[-1]} page failed to start: {error_text(exc)}"
        logger.exception("building page %s", spec.target)
        return PlaceholderPage(context, title=_page_title(spec), text=err), err
    return page, None


class SessionDialog(QDialog):
    """Create a new subject/session folder or open a past one."""

    def __init__(self, root: Path, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Session")
        self.setMinimumWidth(560)
        self.session: Session | None = None
        lay = QVBoxLayout(self)
        form = QFormLayout()
        rootrow = QHBoxLayout()
        self.root_edit = QLineEdit(str(root))
        browse = QPushButton("Browse\u2026")
        browse.clicked.connect(self._browse)
        rootrow.addWidget(self.root_edit, 1)
        rootrow.addWidget(browse)
        form.addRow("Sessions folder", rootrow)
        self.subject_edit = QLineEdit()
        self.subject_edit.setPlaceholderText("e.g. S01 (letters, digits, - _ .)")
        self.session_edit = QLineEdit(_dt.date.today().isoformat())
        form.addRow("Subject", self.subject_edit)
        form.addRow("Session", self.session_edit)
        lay.addLayout(form)
        self.error_label = QLabel("")
        self.error_label.setStyleSheet("color: #c62828;")
        self.error_label.setWordWrap(True)
        lay.addWidget(self.error_label)
        lay.addWidget(QLabel("Past sessions (double-click to open):"))
        self.past = QListWidget()
        self.past.itemDoubleClicked.connect(self._open_item)
        lay.addWidget(self.past, 1)
        buttons = QDialogButtonBox()
        self.create_button = buttons.addButton("Create session", QDialogButtonBox.ButtonRole.AcceptRole)
        self.open_button = buttons.addButton("Open selected", QDialogButtonBox.ButtonRole.ActionRole)
        buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        self.create_button.clicked.connect(self.create)
        self.open_button.clicked.connect(lambda: self._open_item(self.past.currentItem()))
        buttons.rejected.connect(self.reject)
        lay.addWidget(buttons)
        self.root_edit.editingFinished.connect(self._fill_past)
        self._fill_past()

    def _browse(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Sessions folder", self.root_edit.text())
        if path:
            self.root_edit.setText(path)
            self._fill_past()

    def _fill_past(self) -> None:
        self.past.clear()
        for info in list_sessions(self.root_edit.text()):
            item = QListWidgetItem(f"{info.subject} / {info.session}   \u2014 created {info.created}, "
                                   f"{info.n_recordings} recording(s), {info.n_models} model(s)")
            item.setData(Qt.ItemDataRole.UserRole, str(info.path))
            self.past.addItem(item)

    def create(self) -> None:
        try:
            self.session = Session.create(self.root_edit.text(), self.subject_edit.text(),
                                          self.session_edit.text())
        except (SessionError, OSError) as exc:
            self.error_label.setText(str(exc))
            return
        self.accept()

    def _open_item(self, item: QListWidgetItem | None) -> None:
        if item is None:
            self.error_label.setText("Select a past session first.")
            return
        try:
            self.session = Session.open(item.data(Qt.ItemDataRole.UserRole))
        except SessionError as exc:
            self.error_label.setText(str(exc))
            return
        self.accept()


class MainWindow(QMainWindow):
    """The whole workflow in one window.

    Parameters
    ----------
    context : AppContext, optional
        Shared state (a new one with the saved settings by default).
    session : Session, optional
        Session to open at start.
    """

    def __init__(self, context: AppContext | None = None, session: Session | None = None,
                 settings: Settings | None = None):
        super().__init__()
        install_gui_gc()
        self.context = context if context is not None else AppContext(settings)
        self.setWindowTitle("neurodeck \u2014 motor-imagery BCI")
        self.setStyleSheet(APP_STYLE)
        self._closing_done = False
        #: Asked before closing while something runs; tests replace it.
        self.confirm = self._ask

        central = QWidget()
        outer = QVBoxLayout(central)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.setSpacing(0)
        row = QHBoxLayout()
        row.setSpacing(0)
        outer.addLayout(row, 1)
        # banner and toast float over the top of the page (its title): showing them never moves
        # the page's buttons under the pointer
        self.notes = QWidget(central)
        notes = QVBoxLayout(self.notes)
        notes.setContentsMargins(8, 6, 8, 0)
        notes.setSpacing(4)
        self.banner = ErrorBanner()
        self.toast = InfoToast()
        notes.addWidget(self.banner)
        notes.addWidget(self.toast)
        self.notes.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents, False)
        self.notes.hide()
        #: errors by the page they were shown on (an error stays with its page), and the stream
        #: alarm (shown on every page while the stream is lost)
        self._page_errors: dict[int, str] = {}
        self._alarm: str | None = None
        self.banner.dismissed.connect(self._on_dismissed)
        self.sidebar = QListWidget()
        self.sidebar.setObjectName("sidebar")
        self.sidebar.setFixedWidth(190)
        self.stack = QStackedWidget()
        row.addWidget(self.sidebar)
        row.addWidget(self.stack, 1)
        self.setCentralWidget(central)

        self.pages: dict[str, Page] = {}
        for spec in PAGES:
            page, err = load_page(spec, self.context)
            self.pages[spec.key] = page
            self.stack.addWidget(page)
            item = QListWidgetItem(spec.title)
            item.setData(Qt.ItemDataRole.UserRole, spec.key)
            if isinstance(page, PlaceholderPage):
                item.setForeground(Qt.GlobalColor.darkGray)
            self.sidebar.addItem(item)
            if err:
                QTimer.singleShot(0, lambda e=err: self.context.report_error(e))
        self.sidebar.currentRowChanged.connect(self._show_row)
        self.sidebar.currentRowChanged.connect(lambda _r: self._show_notes())
        self.sidebar.setCurrentRow(0)
        for w in (self.banner, self.toast):
            w.installEventFilter(self)

        self._build_menu()
        self._build_status()
        self.context.error_reported.connect(self.show_error)
        self.context.info_reported.connect(self.toast.show_message)
        self.context.session_changed.connect(self._on_session)
        self.context.session_requested.connect(self.choose_session)
        sm = self.context.streams
        sm.state_changed.connect(self._on_state)
        sm.counters_changed.connect(self._on_counters)
        sm.connection_changed.connect(self._on_connection)
        self._on_connection()

        geo = self.context.settings.window_geometry
        if geo:
            try:
                self.restoreGeometry(QByteArray.fromHex(geo.encode()))
            except Exception:  # a bad saved geometry is no reason to fail
                logger.warning("ignoring saved window geometry")
        else:
            self.resize(*default_size(self.screen().availableGeometry().size()))
        if session is not None:
            self.context.set_session(session)
        else:
            self._on_session(self.context.session)
        #: NEURODECK_DUMP_WIDGETS=FILE: widget rectangles for scripts/real_window_walk.py
        self.widget_dump = install_widget_dump(self)

    # ------------------------------------------------------------------ chrome
    def _build_menu(self) -> None:
        m = self.menuBar().addMenu("&Session")
        new = QAction("&New or open session\u2026", self)
        new.setShortcut(QKeySequence("Ctrl+N"))
        new.triggered.connect(self.choose_session)
        m.addAction(new)
        opn = QAction("Open session &folder\u2026", self)
        opn.setShortcut(QKeySequence("Ctrl+O"))
        opn.triggered.connect(self._open_folder)
        m.addAction(opn)
        self.export_bids_action = QAction("Export session as &BIDS\u2026", self)
        self.export_bids_action.setToolTip("Write the session's recordings as a BIDS dataset "
                                           "(events.tsv from the markers, channels.tsv with units)")
        self.export_bids_action.triggered.connect(self.export_bids)
        m.addAction(self.export_bids_action)
        m.addSeparator()
        quit_ = QAction("&Quit", self)
        quit_.setShortcut(QKeySequence("Ctrl+Q"))
        quit_.triggered.connect(self.close)
        m.addAction(quit_)
        h = self.menuBar().addMenu("&Help")
        about = QAction("&About", self)
        about.triggered.connect(lambda: QMessageBox.about(
            self, "neurodeck", "neurodeck: a real-time motor-imagery brain-computer interface.\n"
            "Acquisition over LSL, Graz calibration, Riemannian and DKF decoders, ONNX online decoding."))
        h.addAction(about)

    def _build_status(self) -> None:
        sb = self.statusBar()
        self.state_badge = StateBadge("EEG: ")
        self.counters_label = QLabel("")
        self.marker_label = QLabel("")
        self.session_label = QLabel("")
        # stream and session names come from the network / the user: never render them as HTML
        for label in (self.counters_label, self.marker_label, self.session_label):
            label.setTextFormat(Qt.TextFormat.PlainText)
        self.session_label.setStyleSheet("font-weight: 600;")
        self.rec_badge = StateBadge()
        self.rec_badge.hide()
        sb.addWidget(self.rec_badge)
        sb.addWidget(self.state_badge)
        self._busy_timer = QTimer(self)
        self._busy_timer.setInterval(250)
        self._busy_timer.timeout.connect(self._poll_busy)
        self._busy_timer.start()
        sb.addWidget(self.counters_label, 1)
        sb.addPermanentWidget(self.marker_label)
        sb.addPermanentWidget(self.session_label)

    def _show_row(self, row: int) -> None:
        """Show page ``row``; only the shown page's minimum size holds the window (a wide page
        must not keep the window wider than the screen on every other page)."""
        for i in range(self.stack.count()):
            ignored = QSizePolicy.Policy.Ignored
            page = self.stack.widget(i)
            if i == row:
                page.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)
            else:
                page.setSizePolicy(ignored, ignored)
        self.stack.setCurrentIndex(row)
        self.stack.updateGeometry()

    def show_page(self, key: str) -> Page:
        keys = [s.key for s in PAGES]
        self.sidebar.setCurrentRow(keys.index(key))
        return self.pages[key]

    # ------------------------------------------------------------------ news
    def show_error(self, message: str) -> None:
        """Show ``message`` on the page shown now (it stays with that page until dismissed)."""
        self._page_errors[self.stack.currentIndex()] = str(message)
        self.banner.show_error(message)
        self._show_notes()

    def _on_dismissed(self) -> None:
        if self._alarm is not None and self.banner.label.text() == self._alarm:
            self._alarm = None
        self._page_errors.pop(self.stack.currentIndex(), None)
        self._show_notes()

    def _show_notes(self) -> None:
        """The banner shows the stream alarm, else this page's last error; laid over the page."""
        text = self._alarm or self._page_errors.get(self.stack.currentIndex())
        if text:
            self.banner.show_message(text)
        else:
            self.banner.hide()
        self._place_notes()

    def _place_notes(self) -> None:
        visible = self.banner.isVisibleTo(self.notes) or self.toast.isVisibleTo(self.notes)
        if not visible:
            self.notes.hide()
            return
        x = self.sidebar.width()
        w = max(200, self.centralWidget().width() - x)
        self.notes.setGeometry(x, 0, w, self.notes.layout().heightForWidth(w)
                               if self.notes.layout().hasHeightForWidth()
                               else self.notes.sizeHint().height())
        self.notes.show()
        self.notes.raise_()

    def eventFilter(self, obj, ev) -> bool:  # noqa: N802 (Qt name)
        if obj in (self.banner, self.toast) and ev.type() in (QEvent.Type.Show, QEvent.Type.Hide):
            QTimer.singleShot(0, self._place_notes)
        return super().eventFilter(obj, ev)

    def resizeEvent(self, ev) -> None:  # noqa: N802 (Qt name)
        super().resizeEvent(ev)
        self._place_notes()

    def _on_state(self, state: str) -> None:
        previous = self.state_badge.state
        self.state_badge.set_state(state)
        if state == "lost" and previous != "lost":
            self._alarm = LOST_ALARM
            self.banner.show_error(LOST_ALARM)  # into the history too
            self._show_notes()
        elif state != "lost" and self._alarm is not None:
            self._alarm = None  # the alarm never outlives the loss
            self._show_notes()
            if state in ("connected", "recovered"):
                self.toast.show_message("The EEG stream is back.")

    def _poll_busy(self) -> None:
        reasons = self.busy_reasons()
        if reasons:
            self.rec_badge.set_state("recording", "\u25cf busy" if not any(
                "record" in r for r in reasons) else "\u25cf REC")
            self.rec_badge.setToolTip("\n".join(reasons))
            self.rec_badge.show()
        else:
            self.rec_badge.hide()

    def _on_counters(self, c) -> None:
        lost = c.samples_missing
        style = "color: #c62828; font-weight: 600;" if lost or c.overruns else "color: #37474f;"
        self.counters_label.setStyleSheet(style)
        self.counters_label.setText(
            f"  {c.samples_received:,} samples \u00b7 {c.gaps} gaps \u00b7 {lost} missing \u00b7 "
            f"{c.overruns} overruns \u00b7 {c.reconnects} reconnects"
        )

    def _on_connection(self) -> None:
        sm = self.context.streams
        self.state_badge.set_state(sm.state)
        if sm.inlet is None:
            self.counters_label.setText("  no EEG stream \u2014 go to Connect")
            self.counters_label.setStyleSheet("color: #37474f;")
            self.marker_label.setText("")
        else:
            d = sm.description
            mk = sm.marker_description
            # long stream names are elided in the middle (full text in the tooltip): they must
            # not push the counters out of the status bar; channels and rate always show
            metrics = self.marker_label.fontMetrics()

            def short(name: str) -> str:
                return metrics.elidedText(name, Qt.TextElideMode.ElideMiddle,
                                          STREAM_NAME_WIDTH)

            rate = f" ({d.n_channels} ch, {d.srate:g} Hz)"
            more = f" + {mk.name}" if mk is not None else ""
            if mk is None:
                marker = ""
            elif mk.name.startswith(d.name):  # "<eeg>-markers": the EEG stream's own markers
                marker = " + " + short(mk.name[len(d.name):].strip("-_ ") or "markers")
            else:
                marker = " + " + short(mk.name)
            self.marker_label.setText(short(d.name) + rate + marker + "  ")
            self.marker_label.setToolTip(d.name + rate + more)

    def _on_session(self, session: Session | None) -> None:
        if session is None:
            self.session_label.setText("No session \u2014 Session \u203a New (Ctrl+N)")
            self.setWindowTitle("neurodeck \u2014 motor-imagery BCI")
        else:
            self.session_label.setText(f"Session: {session.label}")
            self.setWindowTitle(f"neurodeck \u2014 {session.label}")

    # ------------------------------------------------------------------ sessions
    def choose_session(self) -> Session | None:
        dlg = SessionDialog(self.context.settings.session_root_path(), self)
        if dlg.exec() and dlg.session is not None:
            self.context.settings.session_root = str(dlg.session.path.parent.parent)
            self.context.set_session(dlg.session)
            self.context.report_info(f"Session {dlg.session.label} ready in {dlg.session.path}")
        return self.context.session

    def _open_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open a session folder",
                                                str(self.context.settings.session_root_path()))
        if not path:
            return
        try:
            self.context.set_session(Session.open(path))
        except SessionError as exc:
            self.show_error(str(exc))

    def export_bids(self) -> None:
        """Ask for a BIDS root and export the session's recordings there (in the background)."""
        session = self.context.session
        if session is None:
            self.show_error("No session: open one (Session \u203a New or open) to export it as BIDS.")
            return
        out = QFileDialog.getExistingDirectory(self, "BIDS dataset folder (created or added to)",
                                               str(session.path.parent.parent))
        if not out:
            return
        from neurodeck.app.bids import export_session

        self.export_bids_action.setEnabled(False)

        def done(paths) -> None:
            self.export_bids_action.setEnabled(True)
            self.context.report_info(f"Exported {len(paths)} recording(s) of {session.label} as "
                                     f"BIDS into {out}")

        def failed(exc: BaseException) -> None:
            self.export_bids_action.setEnabled(True)
            self.context.report_error(f"BIDS export failed: {error_text(exc)}")

        self.context.background.run(lambda: export_session(session.path, out), done, failed,
                                    name="export-bids")

    # ------------------------------------------------------------------ closing
    def busy_reasons(self) -> list[str]:
        out = []
        for page in self.pages.values():
            try:
                why = page.busy_reason()
            except Exception:  # pragma: no cover
                why = None
            if why:
                out.append(why)
        return out

    def _ask(self, text: str) -> bool:
        answer = QMessageBox.question(
            self, "Quit neurodeck?", text,
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No,
        )
        return answer == QMessageBox.StandardButton.Yes

    def closeEvent(self, event) -> None:  # noqa: N802 (Qt name)
        if self._closing_done:
            event.accept()
            return
        reasons = self.busy_reasons()
        if reasons:
            text = ("Still running:\n\u2022 " + "\n\u2022 ".join(reasons)
                    + "\n\nStop everything, save what was recorded, and quit?")
            if not self.confirm(text):
                event.ignore()
                return
        self.shutdown()
        event.accept()

    def shutdown(self) -> None:
        """Stop every page, the streams and background work; save settings. Idempotent."""
        if self._closing_done:
            return
        self._closing_done = True
        self._busy_timer.stop()
        if self.widget_dump is not None:
            self.widget_dump.timer.stop()
        for page in self.pages.values():
            try:
                page.shutdown()
            except Exception:
                logger.exception("page %s failed to shut down", type(page).__name__)
        screen = getattr(self.context, "participant_screen", None)
        if screen is not None:
            screen.close()
        self.context.shutdown()
        try:
            self.context.settings.window_geometry = bytes(self.saveGeometry().toHex()).decode()
            self.context.settings.save()
        except OSError as exc:
            logger.warning("could not save settings: %s", exc)
