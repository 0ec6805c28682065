"""Channel names as real files and streams write them: one key per electrode, a clear report."""
from __future__ import annotations

import tempfile
import warnings

import numpy as np
import pytest

from neurodeck.decoders.channels import ALIASES, channel_key, match_channels
from neurodeck.decoders.errors import ChannelMismatchError
from neurodeck.decoders.online import OnlineDecoder
from neurodeck.decoders.onnx import save_bundle
from neurodeck.decoders.pipelines import DecoderConfig
from tests.decoders.test_pipelines import load_s001


@pytest.mark.parametrize(
    ("name", "key"),
    [("C3", "c3"), ("c3", "c3"), ("C3..", "c3"), ("Fc5.", "fc5"), ("Cz..", "cz"),
     ("EEG C3-REF", "c3"), ("EEG C3-LE", "c3"), ("EEG:Cz", "cz"), ("eeg_fp1-ref", "fp1"),
     ("C3-A2", "c3"), (" Pz ", "pz"), ("T3", "t7"), ("T4..", "t8"), ("EEG T5-REF", "p7"),
     ("t6", "p8"), ("C3-C4", "c3-c4"), ("EEG", "eeg"), ("A1", "a1"), ("T7", "t7")],
)
def test_channel_key(name, key):
    assert channel_key(name) == key


def test_aliases_are_the_positions_mne_gives_two_names():
    """Exactly the electrode pairs that share one position in MNE's standard 1005 montage."""
    import mne

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # montage renamed in newer MNE
        names = mne.channels.get_builtin_montages()
        mon = mne.channels.make_standard_montage(
            "colin27_1005" if "colin27_1005" in names else "standard_1005")
    pos = mon.get_positions()["ch_pos"]
    ch = list(pos)
    P = np.array([pos[c] for c in ch])
    same = {frozenset((ch[i].lower(), ch[j].lower())) for i in range(len(ch))
            for j in range(i + 1, len(ch)) if np.allclose(P[i], P[j])}
    assert same == {frozenset(p) for p in ALIASES.items()}


def test_match_report_says_what_matched_and_what_is_missing():
    m = match_channels(["C3..", "Cz..", "T7..", "Oz.."], ["EEG C3-REF", "Cz", "T3", "Trigger"])
    assert m.picks == (0, 1, 2) and m.missing == ("Oz..",) and m.unused == ("Trigger",)
    assert m.summary() == ("3 of 4 model channels found (3 under another spelling: C3..=EEG C3-REF, "
                           "Cz..=Cz, T7..=T3); missing: Oz..; 1 stream channel(s) unused")
    # an exact name wins over another spelling of the same electrode
    assert match_channels(["T7"], ["T3", "T7"]).picks == (1,)


def test_an_eegmmidb_model_runs_on_a_stream_with_other_spellings():
    X, y, ch, sf, _ = load_s001()
    assert ch[5] == "C3.." and all(c.endswith(".") for c in ch)
    cfg = DecoderConfig(pipeline="csp-lda")
    with tempfile.TemporaryDirectory() as d:
        dec = OnlineDecoder(save_bundle(cfg.build(sf, ch).fit(X, y), cfg, d, ch_names=ch, sfreq=sf,
                                        X_check=X[:8]))
    spellings = [lambda c: c.rstrip("."), lambda c: f"EEG {c.rstrip('.').upper()}-REF",
                 lambda c: c.rstrip(".").lower()]
    stream = ["Fp1", *[spellings[i % 3](c) for i, c in enumerate(reversed(ch))], "STI 014"]
    picks = dec.check_stream(stream, sf)
    assert [channel_key(stream[i]) for i in picks] == [channel_key(c) for c in ch]
    assert dec.channel_match_.summary().startswith(f"{len(ch)} of {len(ch)} model channels found")
    full = np.zeros((len(stream), X.shape[2]))
    full[picks] = X[0]
    np.testing.assert_allclose(dec.decide(full), dec.decide_batch(X[:1])[0], atol=1e-12, rtol=0)
    without_c3 = [s for s in stream if channel_key(s) != "c3"]
    with pytest.raises(ChannelMismatchError, match=r"missing from the stream: \['C3..'\] \(15 of 16"):
        dec.check_stream(without_c3, sf)
