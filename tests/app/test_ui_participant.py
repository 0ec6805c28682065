"""The shared participant screen, opened by clicks from the Calibrate and the Online page."""
from __future__ import annotations

import pytest

pytest.importorskip("pytestqt")

from PyQt6.QtCore import Qt  # noqa: E402

LEFT = Qt.MouseButton.LeftButton


@pytest.fixture
def window(make_window):
    return make_window(1280, 800)


def test_one_participant_screen_opened_and_closed_from_both_pages(window, qtbot):
    calib = window.show_page("calibrate")
    qtbot.mouseClick(calib.full_button, LEFT)
    screen = window.context.participant_screen
    assert screen.isVisible() and calib.fullscreen is screen
    online = window.show_page("online")
    qtbot.mouseClick(online.participant_button, LEFT)
    assert window.context.participant_screen is screen and online.participant is screen
    assert screen._stack.currentWidget() is screen.bar  # the Online page shows its feedback
    screen.close()  # the participant's window is closed: both pages forget it
    assert calib.fullscreen is None and online.participant is None
    qtbot.mouseClick(online.participant_button, LEFT)  # and reopen the same one
    assert screen.isVisible() and online.participant is screen and calib.fullscreen is None
    screen.close()
    assert online.participant is None
    calib = window.show_page("calibrate")
    qtbot.mouseClick(calib.full_button, LEFT)
    assert calib.fullscreen is screen and screen._stack.currentWidget() is screen.cues
