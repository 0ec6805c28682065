"""Fixtures of the app tests: settings in a temporary home, a session root, a fake clock, the
real main window."""
from __future__ import annotations

import gc
import multiprocessing
import os
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


#: What the warm forkserver imports once (what every workflow job of the pages needs).
_FORKSERVER_PRELOAD = ["neurodeck.app.workflow.training", "neurodeck.app.workflow.population",
                       "neurodeck.app.workflow.report", "neurodeck.app.workflow.continuous",
                       "neurodeck.decoders.pipelines", "neurodeck.decoders.onnx", "mne"]
_forkserver = None


class _WarmSpawn:
    """``multiprocessing`` as :mod:`app.workflow.isolated` sees it in the app tests, except that
    its "spawn" context is a forkserver that imported the workflow once (tests/app/conftest.py)."""

    def __init__(self, ctx):
        self._ctx = ctx

    def __getattr__(self, name):
        return getattr(multiprocessing, name)

    def get_context(self, method=None):
        return self._ctx if method == "spawn" else multiprocessing.get_context(method)


@pytest.fixture(autouse=True)
def _workflow_jobs_from_a_warm_forkserver(request, monkeypatch):
    """The pages' background jobs (``run_isolated``: a fresh ``spawn`` process each, ~4 s CPU of
    imports) start from a forkserver that imported the workflow once (~0.9 s a job). A forkserver
    child is as clean as a spawned one (the server is a fresh interpreter, not this process with
    its Qt and LSL threads) and gets its function and arguments pickled the same way.
    tests/app/test_isolated.py keeps the real ``spawn``; ``NEURODECK_TEST_FORKSERVER=0`` too."""
    global _forkserver
    if (request.module.__name__.endswith("test_isolated") or not hasattr(os, "fork")
            or os.environ.get("NEURODECK_TEST_FORKSERVER", "1") == "0"):
        yield
        return
    from neurodeck.app.workflow import isolated

    if _forkserver is None:
        _forkserver = multiprocessing.get_context("forkserver")
        _forkserver.set_forkserver_preload(_FORKSERVER_PRELOAD)
    monkeypatch.setattr(isolated, "multiprocessing", _WarmSpawn(_forkserver))
    yield


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
