"""Online page: a peer stream in volts without units is refused and the page says why."""
from __future__ import annotations

import threading

import pytest

pytest.importorskip("pytestqt")
pytest.importorskip("mne_lsl")

from PyQt6.QtCore import Qt  # noqa: E402

from neurodeck.app.ui.online_page import OnlinePage  # noqa: E402
from neurodeck.app.ui.qt_models import AppContext  # noqa: E402
from tests.app.test_units_peer import _UnitlessVoltsSource, run12  # noqa: E402, F401


def test_online_page_shows_the_unit_refusal(qtbot, bundle_dir, run12, unique_name):  # noqa: F811
    before = set(threading.enumerate())
    ctx = AppContext()
    page = OnlinePage(ctx)
    qtbot.addWidget(page)
    page.show()
    with _UnitlessVoltsSource(run12, unique_name):
        with qtbot.waitSignal(page.model_loaded, timeout=30000):
            assert page.load_model(bundle_dir)
        with qtbot.waitSignal(ctx.streams.connection_changed, timeout=20000):
            ctx.streams.connect_streams(unique_name)
        qtbot.waitUntil(page.start_button.isEnabled, timeout=10000)
        qtbot.mouseClick(page.start_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: "Not decoding: stream looks like volts, model was trained in "
                        "microvolts" in page.stats_label.toolTip(), timeout=30000)
        assert "without a unit taken as microvolts" in page.stats_label.toolTip()
        assert page.n_valid == 0
        page.stop()
    page.shutdown()
    ctx.shutdown()
    left = [t for t in threading.enumerate() if t not in before and t.is_alive()
            and not isinstance(t, threading._DummyThread)
            and t.name.startswith(("neurodeck", "player", "inlet", "recorder"))
            and "cleanup" not in t.name]  # liblsl resolvers are dropped on a fire-and-forget thread
    assert not left, left
