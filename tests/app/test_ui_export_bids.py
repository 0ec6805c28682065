"""Session menu > Export session as BIDS: the same export as the CLI, read back by mne-bids."""
from __future__ import annotations

import pytest

pytest.importorskip("pytestqt")
pytest.importorskip("mne_bids")

from neurodeck.app.ui import main_window as mw  # noqa: E402
from neurodeck.app.ui.qt_models import AppContext  # noqa: E402
from tests.app.test_export_bids import _session_with_recordings  # noqa: E402


def test_menu_exports_the_session_as_bids(qtbot, tmp_path, asset_edfs, monkeypatch):
    from mne_bids import BIDSPath, read_raw_bids

    sess, ref = _session_with_recordings(tmp_path / "sessions", asset_edfs)
    out = tmp_path / "bids"
    out.mkdir()
    win = mw.MainWindow(AppContext(), session=sess)
    win.confirm = lambda text: True
    qtbot.addWidget(win)
    errors, infos = [], []
    win.context.error_reported.connect(errors.append)
    win.context.info_reported.connect(infos.append)
    monkeypatch.setattr(mw.QFileDialog, "getExistingDirectory", lambda *a, **k: str(out))
    menu = next(a.menu() for a in win.menuBar().actions() if a.text() == "&Session")
    assert win.export_bids_action in menu.actions()
    with qtbot.waitSignal(win.context.info_reported, timeout=30000):
        win.export_bids_action.trigger()
    assert not errors and "Exported 2 recording(s)" in infos[-1]
    got = read_raw_bids(BIDSPath(subject="S01", session="day1", task="calibration", run=2,
                                 datatype="eeg", root=out), verbose="error")
    assert got.ch_names == ref.ch_names and got.n_times == ref.n_times
    # again into the same folder: refused (no overwrite from the menu), error shown, no crash
    with qtbot.waitSignal(win.context.error_reported, timeout=30000):
        win.export_bids_action.trigger()
    assert "exists" in errors[-1] and win.export_bids_action.isEnabled()
    win.close()
