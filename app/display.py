"""Can Qt open a real window here, and if not, why (Qt-free: the probe runs in a child process).

Creating a ``QApplication`` on a display whose platform plugin does not load (on a fresh Debian:
xcb without ``libxcb-cursor0`` and friends) or that does not answer aborts the whole process, so
the check starts a child Python that tries it and reads what Qt printed.
"""
from __future__ import annotations

import os
import subprocess
import sys

#: Debian/Ubuntu packages the Qt xcb platform plugin needs beyond what a fresh system has.
XCB_PACKAGES = "libxcb-icccm4 libxcb-keysyms1 libxcb-cursor0 libxkbcommon-x11-0"

#: Qt platforms that draw into memory or a framebuffer: no display server needed.
WINDOWLESS_PLATFORMS = ("offscreen", "minimal", "vnc", "eglfs", "linuxfb", "vkkhrdisplay")

_PROBE = ("import sys\nfrom PyQt6.QtWidgets import QApplication\n"
          "app = QApplication(sys.argv[:1])\nprint(app.platformName())\n")


def _platform() -> str:
    return os.environ.get("QT_QPA_PLATFORM", "").split(":")[0]


def display_name() -> str | None:
    """The display a real window would open on (``$WAYLAND_DISPLAY`` or ``$DISPLAY``), or None.

    None also when ``QT_QPA_PLATFORM`` names a windowless platform (offscreen, minimal, ...).
    Outside Linux (macOS, Windows) there is always the desktop.
    """
    if _platform() in WINDOWLESS_PLATFORMS:
        return None
    if not sys.platform.startswith("linux"):
        return "desktop"
    return os.environ.get("WAYLAND_DISPLAY") or os.environ.get("DISPLAY") or None


def explain_qt_failure(stderr: str, display: str, returncode: int) -> str:
    """One line from what a failed ``QApplication()`` printed, with what to do about it.

    Parameters
    ----------
    stderr : str
        The child's standard error (Qt's ``qt.qpa.*`` messages, or a Python traceback).
    display : str
        The display it tried (for the message).
    returncode : int
        The child's exit code (said when Qt printed nothing).
    """
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    hint = next((ln for ln in lines if "is needed" in ln or "could not connect" in ln.lower()),
                lines[-1] if lines else f"exit code {returncode}")
    hint = hint.removeprefix("qt.qpa.plugin: ").removeprefix("qt.qpa.xcb: ").rstrip(".")
    text = f"Qt cannot open a window on display {display!r}: {hint}."
    if "could not connect" in hint.lower():
        text += " Is the display server running? (xvfb-run gives a virtual one.)"
    elif "plugin" in stderr or "libxcb" in stderr or "cannot open shared object" in stderr:
        text += f" On Debian/Ubuntu install: sudo apt-get install {XCB_PACKAGES}."
    return text + " QT_QPA_PLATFORM=offscreen runs without a window."


def window_problem(timeout: float = 30.0) -> str | None:
    """Why Qt cannot open a window here, as one line for the user; None if it can.

    A windowless ``QT_QPA_PLATFORM`` (offscreen, ...) always can. Otherwise a display must be
    set and a child process must manage to create a ``QApplication`` on it.
    """
    if _platform() in WINDOWLESS_PLATFORMS:
        return None
    display = display_name()
    if display is None:
        return ("no display is set ($DISPLAY and $WAYLAND_DISPLAY are empty). "
                "QT_QPA_PLATFORM=offscreen runs without a window; a real (xcb) window on a fresh "
                f"Debian/Ubuntu also needs: sudo apt-get install {XCB_PACKAGES}")
    try:
        proc = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True,
                              timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"checking the display {display!r} failed: {exc}"
    if proc.returncode == 0:
        return None
    return explain_qt_failure(proc.stderr, str(display), proc.returncode)
