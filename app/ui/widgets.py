"""Small shared widgets: page base class, state badge, error banner, big buttons."""
from __future__ import annotations

import logging

from PyQt6.QtCore import Qt, QTimer, pyqtSignal
from PyQt6.QtGui import QFont
from PyQt6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

logger = logging.getLogger(__name__)

#: Colours of stream / run states (background, text).
STATE_COLOURS: dict[str, tuple[str, str]] = {
    "connected": ("#2e7d32", "white"),
    "recovered": ("#558b2f", "white"),
    "connecting": ("#f9a825", "black"),
    "stalled": ("#ef6c00", "white"),
    "paused": ("#5c6bc0", "white"),
    "lost": ("#c62828", "white"),
    "stopped": ("#757575", "white"),
    "none": ("#9e9e9e", "white"),
    "recording": ("#c62828", "white"),
    "idle": ("#9e9e9e", "white"),
}

APP_STYLE = """
QWidget { font-size: 10.5pt; }
QLabel#pageTitle { font-size: 18pt; font-weight: 600; color: #1a237e; }
QLabel#pageSubtitle { color: #455a64; }
QPushButton#bigButton { font-size: 12.5pt; font-weight: 600; padding: 10px 18px; min-height: 30px;
    background: #1565c0; color: white; border-radius: 6px; }
QPushButton#bigButton:disabled { background: #90a4ae; color: #eceff1; }
QPushButton#bigButton:hover:!disabled { background: #1976d2; }
QPushButton#dangerButton { font-size: 11pt; padding: 8px 14px; background: #c62828; color: white;
    border-radius: 6px; }
QPushButton#dangerButton:disabled { background: #d7a3a3; }
QListWidget#sidebar { font-size: 13pt; background: #eceff1; border: none; padding-top: 8px; }
QListWidget#sidebar::item { padding: 12px 10px; }
QListWidget#sidebar::item:selected { background: #1565c0; color: white; }
QGroupBox { font-weight: 600; margin-top: 14px; }
QGroupBox::title { subcontrol-origin: margin; left: 8px; padding: 0 4px; }
"""


class Page(QWidget):
    """Base of every workflow page: a title, a subtitle, and a body layout.

    Subclasses set ``title`` / ``subtitle`` (class attributes), build into ``self.body``, and may
    override :meth:`busy_reason` (what would be lost on close) and :meth:`shutdown` (stop cleanly).
    """

    title: str = "Page"
    subtitle: str = ""

    def __init__(self, context=None, parent: QWidget | None = None):
        super().__init__(parent)
        self.context = context
        outer = QVBoxLayout(self)
        outer.setContentsMargins(18, 12, 18, 12)
        head = QLabel(self.title)
        head.setObjectName("pageTitle")
        outer.addWidget(head)
        if self.subtitle:
            sub = QLabel(self.subtitle)
            sub.setObjectName("pageSubtitle")
            sub.setWordWrap(True)
            outer.addWidget(sub)
        self.body = QVBoxLayout()
        outer.addLayout(self.body, 1)

    def busy_reason(self) -> str | None:
        """Text saying what runs on this page (a recording, a calibration), or None if idle."""
        return None

    def shutdown(self) -> None:
        """Stop everything this page started (called once, when the window closes)."""

    def report_error(self, message: str) -> None:
        """Show an error in the window (falls back to the log without a context)."""
        if self.context is not None:
            self.context.report_error(message)
        else:
            logger.error("%s", message)


class PlaceholderPage(Page):
    """A page that is not built yet: says what will come."""

    def __init__(self, context=None, parent=None, *, title: str = "", text: str = ""):
        self.title = title or "Coming soon"
        super().__init__(context, parent)
        label = QLabel(text)
        label.setWordWrap(True)
        label.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        label.setStyleSheet("font-size: 12.5pt; color: #37474f; padding: 16px;"
                            "background: #f5f5f5; border: 1px dashed #90a4ae; border-radius: 8px;")
        self.body.addWidget(label)
        self.body.addStretch(1)


def big_button(text: str, parent: QWidget | None = None, *, danger: bool = False) -> QPushButton:
    """The main action of a page: large, coloured."""
    btn = QPushButton(text, parent)
    btn.setObjectName("dangerButton" if danger else "bigButton")
    btn.setSizePolicy(QSizePolicy.Policy.Minimum, QSizePolicy.Policy.Fixed)
    btn.setCursor(Qt.CursorShape.PointingHandCursor)
    return btn


class StateBadge(QLabel):
    """A coloured pill showing a state name (connected / stalled / lost / ...)."""

    def __init__(self, prefix: str = "", parent: QWidget | None = None):
        super().__init__(parent)
        self.prefix = prefix
        self.state = ""
        self.set_state("none")

    def set_state(self, state: str, text: str | None = None) -> None:
        state = str(state).lower()
        self.state = state
        bg, fg = STATE_COLOURS.get(state, ("#607d8b", "white"))
        shown = text if text is not None else ("no stream" if state == "none" else state)
        self.setText(f" {self.prefix}{shown.upper()} ")
        self.setStyleSheet(
            f"background: {bg}; color: {fg}; border-radius: 8px; padding: 2px 8px; font-weight: 600;"
        )


class ErrorBanner(QFrame):
    """A red strip at the top of the window showing the latest error; hides on close click.

    Errors are also kept in :attr:`history` (shown as the tooltip) so nothing gets lost.

    Signals
    -------
    dismissed()
        The user closed it.
    """

    dismissed = pyqtSignal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("errorBanner")
        self.setStyleSheet("#errorBanner { background: #ffebee; border: 1px solid #c62828;"
                           " border-radius: 4px; } QLabel { color: #b71c1c; }")
        lay = QHBoxLayout(self)
        lay.setContentsMargins(10, 6, 6, 6)
        icon = QLabel("\u26a0")
        f = QFont()
        f.setPointSize(14)
        icon.setFont(f)
        lay.addWidget(icon)
        self.label = QLabel("")
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        lay.addWidget(self.label, 1)
        close = QToolButton()
        close.setText("\u2715")
        close.setToolTip("Dismiss")
        close.clicked.connect(self._dismiss)
        self.close_button = close
        lay.addWidget(close)
        self.history: list[str] = []
        self.hide()

    def show_error(self, message: str) -> None:
        message = str(message).strip() or "unknown error"
        self.history.append(message)
        del self.history[:-50]
        self.label.setText(message)
        self.setToolTip("\n".join(self.history[-10:]))
        self.show()

    def show_message(self, message: str) -> None:
        """Show ``message`` again (it is in the history already)."""
        self.label.setText(str(message))
        self.show()

    def _dismiss(self) -> None:
        self.hide()
        self.dismissed.emit()

    @property
    def message(self) -> str:
        return self.label.text() if self.isVisible() else ""


class InfoToast(QLabel):
    """A green note that disappears after a few seconds (e.g. "Saved to ...")."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setStyleSheet("background: #e8f5e9; color: #1b5e20; border: 1px solid #66bb6a;"
                           " border-radius: 4px; padding: 6px;")
        self.setWordWrap(True)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self.hide)
        self.hide()

    def show_message(self, text: str, seconds: float = 6.0) -> None:
        self.setText(text)
        self.show()
        self._timer.start(int(seconds * 1000))
