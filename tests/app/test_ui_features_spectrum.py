"""Features page: Welch or Burg and their settings, clicked, reach Train's psd-lda and the bundle.

On the real EEGMMIDB S001R04 recording shipped in assets/ (offscreen Qt).
"""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pytestqt")

from PyQt6.QtCore import Qt  # noqa: E402

from neurodeck.app.ui.features_page import FeaturesPage  # noqa: E402
from neurodeck.app.ui.qt_models import AppContext  # noqa: E402
from neurodeck.app.workflow.features import SpectrumSettings  # noqa: E402


@pytest.fixture
def page(qtbot):
    ctx = AppContext()
    p = FeaturesPage(ctx)
    qtbot.addWidget(p)
    p.resize(1200, 800)
    p.show()
    yield p
    p.shutdown()
    ctx.shutdown()


def _type_into(qtbot, box, text: str) -> None:
    """Select the spin box's text and type ``text`` as a user does, then Enter."""
    box.setFocus()
    box.lineEdit().selectAll()
    qtbot.keyClicks(box.lineEdit(), text)
    qtbot.keyClick(box.lineEdit(), Qt.Key.Key_Return)


def _compute(page, qtbot) -> None:
    with qtbot.waitSignal(page.maps_ready, timeout=90000):
        qtbot.mouseClick(page.compute_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not page.jobs.busy, timeout=5000)


def test_spectrum_settings_settings_clicked_change_the_map_and_go_to_train_and_bundle(
        page, qtbot, asset_edfs, tmp_path):
    from neurodeck.app.workflow.training import fit_and_save, run_cross_validation
    from neurodeck.decoders.features.psd import burg_psd
    from neurodeck.decoders.onnx import load_bundle

    errors: list[str] = []
    page.context.error_reported.connect(errors.append)
    page.set_paths([next(p for p in asset_edfs if p.name == "S001R04.edf")])
    assert page.method_box.currentText() == "Welch" and not page.order_box.isEnabled()
    _compute(page, qtbot)
    assert not errors
    welch = page.maps
    r2_welch = page.current_r2.copy()
    assert np.allclose(np.diff(welch.freqs), 1.0) and welch.spectrum == SpectrumSettings()
    assert page.selection("spectrum") == []  # the default: nothing to tell Train

    # Burg, AR order 12, 0.5 Hz grid, band 6-30 Hz: typed and chosen with the keyboard
    page.method_box.setFocus()
    qtbot.keyClicks(page.method_box, "B")
    assert page.method_box.currentData() == "burg"
    assert page.order_box.isEnabled() and page.res_box.isEnabled()
    assert page.win_box.value() == pytest.approx(0.25) and page.order_box.value() == 19
    _type_into(qtbot, page.order_box, "12")
    _type_into(qtbot, page.res_box, "0.5")
    _type_into(qtbot, page.fmin_box, "6")
    _type_into(qtbot, page.fmax_box, "30")
    _compute(page, qtbot)
    assert not errors
    burg = page.maps
    want = SpectrumSettings("burg", window_s=0.25, overlap=0.75, order=12, resolution_hz=0.5)
    assert burg.spectrum == want
    assert burg.freqs[0] == 6.0 and burg.freqs[-1] == 30.0 and np.allclose(np.diff(burg.freqs), 0.5)
    assert page.current_r2.shape == (64, burg.freqs.size) != r2_welch.shape
    # the map is the Burg AR(12) spectrum of the trials (not Welch relabelled)
    tr = page.trials
    X = tr.task - tr.task.mean(axis=-1, keepdims=True)
    ref, f = burg_psd(X[:2], tr.sfreq, 6.0, 30.0, order=12, win_s=0.25, step_s=0.0625,
                      nfreqs=int(round(tr.sfreq / 2 / 0.5)) + 1)
    np.testing.assert_allclose(burg.psd[:2], 10 * np.log10(ref), rtol=1e-9, atol=1e-9)
    welch_on_grid = welch.psd[:, :, np.isin(welch.freqs, burg.freqs)]
    assert not np.allclose(burg.psd[:, :, np.isin(burg.freqs, welch.freqs)], welch_on_grid,
                           atol=0.5)

    # the settings go with the selection to the Train page and into the session's bundle
    spec = ["method=burg", "window_s=0.25", "overlap=0.75", "order=12", "resolution_hz=0.5"]
    assert page.context.feature_selection["spectrum"] == spec
    assert SpectrumSettings.from_specs(spec) == want
    page.top_n.setValue(4)
    qtbot.mouseClick(page.top_button, Qt.MouseButton.LeftButton)
    sel = dict(page.context.feature_selection)
    assert len(sel["psd"]) >= 1 and sel["spectrum"] == spec
    result = run_cross_validation(tr, ["psd-lda"], cv=3, selection=sel)
    psd_step = result.configs["psd-lda"].build(tr.sfreq, tr.ch_names).named_steps["psd"]
    assert (psd_step.method, psd_step.order, psd_step.win_s, psd_step.step_s,
            psd_step.nfreqs) == ("burg", 12, 0.25, 0.0625, 161)
    assert not result.dropped  # the selected cells are on the pipeline's Burg grid
    bundle = load_bundle(fit_and_save(result, "psd-lda", tmp_path / "model"), warmup=False)
    psd_saved = dict(bundle.features)["psd"]
    assert (psd_saved.method, psd_saved.order, psd_saved.nfreqs) == ("burg", 12, 161)

    # back to Welch: its defaults, and Train is told to use the default again
    page.method_box.setFocus()
    qtbot.keyClicks(page.method_box, "W")
    assert page.win_box.value() == pytest.approx(1.0) and not page.order_box.isEnabled()
    _compute(page, qtbot)
    assert page.context.feature_selection["spectrum"] == []


def test_spectrum_settings_validate_with_clear_messages(page, qtbot, asset_edfs):
    with pytest.raises(ValueError, match="method 'fft' unknown"):
        SpectrumSettings("fft")
    with pytest.raises(ValueError, match=r"order=0; expected an integer in \[1, 200\]"):
        SpectrumSettings("burg", order=0)
    with pytest.raises(ValueError, match="'nfft=3' unknown"):
        SpectrumSettings.from_specs(["nfft=3"])
    assert SpectrumSettings().psd_params(160.0) == {"method": "welch", "nperseg": 160, "noverlap": 80}
    # a Welch window longer than the trial window is refused before any work, naming both
    errors: list[str] = []
    page.context.error_reported.connect(errors.append)
    page.set_paths([next(p for p in asset_edfs if p.name == "S001R04.edf")])
    _type_into(qtbot, page.win_box, "3")
    qtbot.mouseClick(page.compute_button, Qt.MouseButton.LeftButton)
    assert not page.jobs.busy
    assert errors and "window 3 s is longer than the trial window 2 s" in errors[-1]


def test_spectrum_settings_reach_train_in_a_reopened_session(qtbot, asset_edfs, session_root):
    """The session's [features] section carries the spectrum: a Train page of a later run of
    the app (no Features page used) still gets it."""
    from neurodeck.app.session import Session
    from neurodeck.app.ui.train_page import TrainPage

    ctx = AppContext()
    session = Session.create(session_root, "S01", "burg")
    ctx.set_session(session)
    page = FeaturesPage(ctx)
    qtbot.addWidget(page)
    page.set_paths([next(p for p in asset_edfs if p.name == "S001R04.edf")])
    page.method_box.setFocus()
    qtbot.keyClicks(page.method_box, "B")
    _compute(page, qtbot)
    spec = page.maps.spectrum.to_specs()
    assert spec[0] == "method=burg"
    assert Session.open(session.path).section("features")["spectrum"] == spec
    page.shutdown()
    ctx.shutdown()

    later = AppContext()  # the app started again on the same session
    later.set_session(Session.open(session.path))
    train = TrainPage(later)
    qtbot.addWidget(train)
    assert train.selection()["spectrum"] == spec
    # and the Features page shows those settings again, so its next maps match what Train uses
    again = FeaturesPage(later)
    qtbot.addWidget(again)
    assert again.method_box.currentData() == "burg" and again.spectrum_settings().to_specs() == spec
    again.shutdown()
    train.shutdown()
    later.shutdown()
