"""Fixtures of the reliability tests: a real trained bundle, the counter source, fast pushing."""
from __future__ import annotations

import numpy as np
import pytest

from tests.acquisition.conftest import counter_source  # noqa: F401  (the fixture, shared)
from tests.conftest import wait_until  # noqa: F401  (re-exported for the reliability tests)


@pytest.fixture(scope="session")
def s001():
    """Real EEGMMIDB S001 (bundled runs): windows X, labels y, channels, rate, continuous runs."""
    from tests.decoders.test_pipelines import load_s001

    return load_s001()


@pytest.fixture(scope="session")
def bundle_dir(s001, tmp_path_factory):
    """A psd-lda bundle (ONNX + JSON) trained on the real S001 windows."""
    from neurodeck.decoders.onnx import save_bundle
    from neurodeck.decoders.pipelines import DecoderConfig

    X, y, ch, sf, _ = s001
    cfg = DecoderConfig(pipeline="psd-lda")
    pipe = cfg.build(sf, ch).fit(X, y)
    return save_bundle(pipe, cfg, tmp_path_factory.mktemp("bundle") / "psd-lda", ch_names=ch,
                       sfreq=sf, X_check=X[:4])


def push_fast(outlet, data: np.ndarray, srate: float, t0: float, chunk: int = 16,
              timestamps: np.ndarray | None = None) -> None:
    """Push ``data`` (n_samples, n_channels) as fast as possible, stamped on the nominal clock.

    Each chunk gets its last sample's timestamp (``t0 + k / srate`` or ``timestamps[k]``), as an
    amplifier driver does; liblsl deduces the others.
    """
    n = len(data)
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        ts = t0 + (stop - 1) / srate if timestamps is None else float(timestamps[stop - 1])
        outlet.push_chunk(np.ascontiguousarray(data[start:stop]), ts)
