"""`neurodeck gui`: open the main window."""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from neurodeck.app import argtypes

NAME = "gui"
HELP = "open the neurodeck window (connect, calibrate, features, train, online, replay)"

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--session", type=Path, metavar="DIR",
                        help="open this session folder (<root>/<subject>/<session>) at start")
    parser.add_argument("--page", choices=["connect", "calibrate", "features", "train", "online", "replay"],
                        default="connect", help="page shown first (default: connect)")
    parser.add_argument("--simulate", action="store_true",
                        help="start the built-in simulator at once (64 ch @ 512 Hz)")
    parser.add_argument("--quit-after", type=argtypes.seconds, default=None, metavar="SECONDS",
                        help=argparse.SUPPRESS)  # smoke tests: close the window after N s


def make_application(argv: list[str] | None = None):
    """A QApplication, or a UserError with the one-line reason when no window can be opened."""
    from neurodeck.app.display import window_problem
    from neurodeck.app.errors import UserError

    try:
        from PyQt6.QtWidgets import QApplication
    except ImportError as exc:  # e.g. libEGL / libxkbcommon missing
        raise UserError(f"cannot load Qt ({exc}); on Debian/Ubuntu install the libraries it "
                        "names") from None
    app = QApplication.instance()
    if app is None:
        problem = window_problem()  # Qt aborts the process when it cannot: probe in a child
        if problem is not None:
            raise UserError(f"cannot open the window: {problem}")
        app = QApplication(argv or ["neurodeck"])
        app.setApplicationName("neurodeck")
    return app


def run(args: argparse.Namespace) -> int:
    from neurodeck.app.errors import UserError
    from neurodeck.app.session import Session

    session = None
    if args.session is not None:
        session = Session.open(args.session)  # SessionError is a UserError: one line, exit 2
    app = make_application()

    from PyQt6.QtCore import QTimer

    from neurodeck.app.ui.main_window import MainWindow
    from neurodeck.app.ui.qt_models import error_text

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
