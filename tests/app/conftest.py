"""Fixtures of the app tests: settings in a temporary home, a session root, a fake clock."""
from __future__ import annotations

import gc

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
