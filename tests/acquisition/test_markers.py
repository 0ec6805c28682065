"""Marker names and where a marker lands on the recorded samples."""
from __future__ import annotations

import numpy as np
import pytest

from neurodeck.acquisition.markers import code_of, name_of, onsets_on_samples


def test_codes_and_names_round_trip_and_foreign_labels_pass_through():
    assert name_of(str(code_of("left_hand"))) == "left_hand"
    assert name_of(" 770 ") == "right_hand"
    assert name_of("T1") == "T1" and name_of(12345) == "12345"
    with pytest.raises(KeyError, match="'lefthand' unknown"):
        code_of("lefthand")


def test_a_marker_a_hair_before_the_first_sample_is_on_sample_0():
    sf, n = 160.0, 100  # samples 0..99: 0 s .. 0.61875 s
    onset = np.array([-14.5e-6, -0.49 / sf, -0.51 / sf, -1.0, 0.0, 0.3, 99 / sf, 99.4 / sf, n / sf])
    keep, on = onsets_on_samples(onset, n, sf)
    np.testing.assert_array_equal(keep, [True, True, False, False, True, True, True, True, False])
    np.testing.assert_array_equal(on[keep], [0.0, 0.0, 0.0, 0.3, 99 / sf, 99.4 / sf])
