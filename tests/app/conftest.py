"""Fixtures of the app tests: settings in a temporary home, a session root, a fake clock, the
real main window."""
from __future__ import annotations

import gc
import threading

import pytest


@pytest.fixture(autouse=True)
def neurodeck_home(tmp_path, monkeypatch):
    """Settings never touch the real ~/.config: NEURODECK_HOME points into tmp_path."""
    home = tmp_path / "ndhome"
    home.mkdir()
    monkeypatch.setenv("NEURODECK_HOME", str(home))
    return home


@pytest.fixture
def session_root(tmp_path):
    root = tmp_path / "sessions"
    root.mkdir()
    return root


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, t: float = 1000.0):
        self.t = float(t)

    def __call__(self) -> float:
        return self.t

    def advance(self, dt: float) -> float:
        self.t += dt
        return self.t


@pytest.fixture
def fake_clock():
    return FakeClock()


@pytest.fixture
def make_window(qtbot):
    """``make_window(width, height)``: the real main window shown at that size (offscreen Qt).

    Closing it at the end must stop every thread the test started (simulator, inlets, player,
    engine); liblsl resolvers dropped on purpose on a "cleanup" thread are allowed to finish.
    """
    from neurodeck.app.ui.main_window import MainWindow
    from neurodeck.app.ui.qt_models import AppContext

    before = set(threading.enumerate())
    made = []

    def make(width: int = 1280, height: int = 800) -> MainWindow:
        win = MainWindow(AppContext())
        win.confirm = lambda text: True
        qtbot.addWidget(win)
        win.resize(width, height)
        win.show()
        made.append(win)
        return win

    yield make
    for win in made:
        win.close()
        assert win._closing_done

    def leftover() -> list:
        return [t for t in threading.enumerate() if t not in before and t.is_alive()
                and not isinstance(t, threading._DummyThread) and "cleanup" not in t.name
                and t.name.startswith(("neurodeck", "simulator", "inlet", "player"))]

    qtbot.waitUntil(lambda: not leftover(), timeout=10000)


@pytest.fixture(autouse=True)
def _close_leftover_windows(request):
    """After each test, hide every top-level widget it left open and let Qt delete it.

    A visible window left behind by one test keeps receiving paint events during the next ones;
    if its pyqtgraph items were already torn down, painting it crashed the process (seen as a
    segfault in AxisItem.paint). Tests must not depend on each other's windows anyway.
    """
    yield
    if "qapp" not in request.fixturenames and "qtbot" not in request.fixturenames:
        return
    from PyQt6.QtCore import QCoreApplication, QEvent
    from PyQt6.QtWidgets import QApplication

    app = QApplication.instance()
    if app is None:
        return
    for w in app.topLevelWidgets():
        if w.isVisible():
            w.hide()  # not close(): a busy main window would ask "quit?" in a modal dialog
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    app.processEvents()
    gc.collect()  # here, on the GUI thread, with nothing left on screen


@pytest.fixture(scope="session", autouse=True)
def _gc_on_the_gui_thread(qapp):
    """As in the app (app/ui/qtgc.py): no garbage collection on background threads."""
    from neurodeck.app.ui.qtgc import install_gui_gc

    install_gui_gc()
    yield


@pytest.fixture(scope="session")
def bundle_dir(tmp_path_factory, asset_edfs):
    """A csp-lda bundle trained once on S001 runs 4 and 8 (run 12 stays unseen)."""
    from neurodeck.app.workflow import fit_and_save, load_trials, run_cross_validation

    trials = load_trials([p for p in asset_edfs if p.name in ("S001R04.edf", "S001R08.edf")])
    res = run_cross_validation(trials, ["csp-lda"], cv=3)
    return fit_and_save(res, "csp-lda", tmp_path_factory.mktemp("models") / "csp-lda")
