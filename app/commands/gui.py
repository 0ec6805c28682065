"""`neurodeck gui`: open the main window."""
from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

NAME = "gui"
HELP = "open the neurodeck window (connect, calibrate, features, train, online, replay)"

logger = logging.getLogger(__name__)

NO_DISPLAY = (
    "cannot open a display: set QT_QPA_PLATFORM=offscreen for headless use, or on Debian install "
    "libxcb-icccm4 libxcb-keysyms1 libxcb-cursor0 libxkbcommon-x11-0 for a real window"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--session", type=Path, metavar="DIR",
                        help="open this session folder (<root>/<subject>/<session>) at start")
    parser.add_argument("--page", choices=["connect", "calibrate", "features", "train", "online", "replay"],
                        default="connect", help="page shown first (default: connect)")
    parser.add_argument("--simulate", action="store_true",
                        help="start the built-in simulator at once (64 ch @ 512 Hz)")
    parser.add_argument("--quit-after", type=float, default=None, metavar="SECONDS",
                        help=argparse.SUPPRESS)  # smoke tests: close the window after N s


def display_available() -> bool:
    """Can Qt open a window? (an offscreen/minimal platform always can; xcb needs $DISPLAY)."""
    platform = os.environ.get("QT_QPA_PLATFORM", "")
    if platform.split(":")[0] in ("offscreen", "minimal", "vnc", "eglfs", "linuxfb", "wayland"):
        return True
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


def make_application(argv: list[str] | None = None):
    """A QApplication, or a UserError with the one-line hint when no display can be opened."""
    from app.cli import UserError

    if not display_available():
        raise UserError(NO_DISPLAY)
    try:
        from PyQt6.QtWidgets import QApplication
    except ImportError as exc:  # e.g. libEGL / libxkbcommon missing
        raise UserError(f"{NO_DISPLAY} ({exc})") from None
    app = QApplication.instance()
    offscreen = os.environ.get("QT_QPA_PLATFORM", "").split(":")[0] in ("offscreen", "minimal")
    if app is None and not offscreen:
        # Qt aborts the process (not an exception) when the xcb plugin cannot load; probe first
        import subprocess

        probe = subprocess.run(
            [sys.executable, "-c", "from PyQt6.QtWidgets import QApplication; QApplication([])"],
            capture_output=True, timeout=30,
        )
        if probe.returncode != 0:
            raise UserError(NO_DISPLAY)
    if app is None:
        app = QApplication(argv or ["neurodeck"])
        app.setApplicationName("neurodeck")
    return app


def run(args: argparse.Namespace) -> int:
    from app.cli import UserError
    from app.session import Session

    session = None
    if args.session is not None:
        session = Session.open(args.session)  # SessionError is a UserError: one line, exit 2
    app = make_application()

    from PyQt6.QtCore import QTimer

    from app.ui.main_window import MainWindow
    from app.ui.qt_models import error_text

    win = MainWindow(session=session)
    previous_hook = sys.excepthook

    def excepthook(etype, value, tb):  # errors in slots reach the window, not only stderr
        logger.error("unhandled error", exc_info=(etype, value, tb))
        try:
            win.show_error(f"Unexpected error: {error_text(value)}")
        except Exception:  # pragma: no cover
            previous_hook(etype, value, tb)

    sys.excepthook = excepthook
    try:
        win.show_page(args.page)
        win.show()
        if args.simulate:
            win.context.streams.start_simulator()
        if args.quit_after is not None:
            win.confirm = lambda text: True
            QTimer.singleShot(int(args.quit_after * 1000), win.close)
        code = app.exec()
    except KeyboardInterrupt:
        code = 0
    finally:
        win.shutdown()
        sys.excepthook = previous_hook
    if code not in (0, None):
        raise UserError(f"the window closed with status {code}")
    return 0
