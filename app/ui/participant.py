"""The participant's screen: a second top-level window with the fixation cross, the cue and the
feedback only (no operator controls, no numbers), full screen on a chosen monitor.

Calibration drives it with protocol events (:meth:`ParticipantScreen.on_event`); online runs with
the feedback bar (:meth:`ParticipantScreen.show_feedback`) or the cursor task
(:meth:`ParticipantScreen.show_cursor`). One monitor works too: F11 toggles full
screen, Esc leaves it (the operator window stays behind, Alt+Tab returns to it).
"""
from __future__ import annotations

import logging

from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtGui import QKeySequence, QShortcut
from PyQt6.QtWidgets import QApplication, QComboBox, QStackedLayout, QWidget

from neurodeck.app.protocol import ProtocolEvent
from neurodeck.app.ui.cue_display import CueDisplay
from neurodeck.app.ui.feedback import CursorView, GrazBar

logger = logging.getLogger(__name__)


def screen_names() -> list[str]:
    """``"1: HDMI-1 1920x1080"``-style names of the connected monitors, in Qt's order."""
    out = []
    for i, s in enumerate(QApplication.screens()):
        g = s.geometry()
        out.append(f"{i + 1}: {s.name() or 'screen'} {g.width()}x{g.height()}")
    return out


class ScreenChooser(QComboBox):
    """Which monitor the participant screen opens on (default: the last one, usually theirs)."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setToolTip("Monitor of the participant screen")
        self.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.setMinimumContentsLength(10)
        self.refresh()

    def refresh(self) -> None:
        names = screen_names()
        current = self.currentIndex()
        self.clear()
        self.addItems(names)
        self.setCurrentIndex(current if 0 <= current < len(names) else len(names) - 1)


class ParticipantScreen(QWidget):
    """Fixation cross, cue and feedback for the participant, on its own monitor.

    Signals
    -------
    closed()
    """

    closed = pyqtSignal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent, Qt.WindowType.Window)
        self.setWindowTitle("neurodeck \u2014 participant")
        self.setStyleSheet("background: #101418;")
        self._stack = QStackedLayout(self)
        self.cues = CueDisplay(show_progress=False, beep=True)
        self.bar = GrazBar()
        self.bar.show_numbers = False  # the participant sees the bar, not the value
        self.bar.text_scale = 2.5
        self.cursor = CursorView()
        self._stack.addWidget(self.cues)
        self._stack.addWidget(self.bar)
        self._stack.addWidget(self.cursor)
        for key, slot in (("F11", self.toggle_fullscreen),
                          ("Escape", lambda: self.showNormal() if self.isFullScreen() else None)):
            QShortcut(QKeySequence(key), self, activated=slot)

    # ------------------------------------------------------------------ placement
    def show_on(self, screen_index: int | None = None, fullscreen: bool = True) -> None:
        """Show on monitor ``screen_index`` (default the last one), full screen by default."""
        screens = QApplication.screens()
        i = len(screens) - 1 if screen_index is None else int(screen_index)
        if not 0 <= i < len(screens):
            raise ValueError(f"screen {i + 1} does not exist; expected 1..{len(screens)}")
        geo = screens[i].geometry()
        self.showNormal()
        self.setGeometry(geo.x() + geo.width() // 8, geo.y() + geo.height() // 8,
                         geo.width() * 3 // 4, geo.height() * 3 // 4)
        if self.windowHandle() is not None:
            self.windowHandle().setScreen(screens[i])
        if fullscreen:
            self.setGeometry(geo)
            self.showFullScreen()
        else:
            self.show()
        self.raise_()

    def toggle_fullscreen(self) -> None:
        if self.isFullScreen():
            self.showNormal()
        else:
            self.showFullScreen()

    # ------------------------------------------------------------------ content
    def show_cues(self) -> None:
        """Show the cue display (cross, arrow, pause text) rather than the feedback bar."""
        self._stack.setCurrentWidget(self.cues)

    def on_event(self, ev: ProtocolEvent) -> None:
        """A calibration (or cued run) phase: cross, cue, pause or end."""
        self._stack.setCurrentWidget(self.cues)
        self.cues.on_event(ev)

    @property
    def pause_text(self) -> str:
        return self.cues.pause_text

    @pause_text.setter
    def pause_text(self, text: str) -> None:
        self.cues.pause_text = str(text)
        self.cues.update()

    def show_feedback(self, bar: GrazBar) -> None:
        """Online feedback: what the operator's Graz bar ``bar`` shows (two or N classes, the cue),
        without its numbers."""
        self._stack.setCurrentWidget(self.bar)
        self.bar.copy_from(bar)

    def show_cursor(self, view: CursorView) -> None:
        """Online cursor task: what the operator's cursor view ``view`` shows."""
        self._stack.setCurrentWidget(self.cursor)
        self.cursor.copy_from(view)

    def closeEvent(self, ev) -> None:  # noqa: N802 (Qt name)
        self.closed.emit()
        super().closeEvent(ev)


def shared_screen(context) -> ParticipantScreen:
    """The one participant screen of the app (made on first use; kept on ``context``)."""
    screen = getattr(context, "participant_screen", None) if context is not None else None
    if screen is None:
        screen = ParticipantScreen()
        if context is not None:
            context.participant_screen = screen
    return screen


def open_shared_screen(owner: object, attr: str, context, chooser: ScreenChooser) -> ParticipantScreen:
    """The shared participant screen for a page, kept on ``owner.<attr>`` until it is closed.

    The page fills the screen (cues or feedback) and then calls
    ``screen.show_on(chooser.currentIndex())``; the monitor list is refreshed here.
    """
    screen = shared_screen(context)
    if getattr(owner, attr) is None:
        setattr(owner, attr, screen)

        def closed() -> None:
            screen.closed.disconnect(closed)
            setattr(owner, attr, None)

        screen.closed.connect(closed)
    chooser.refresh()
    return screen
