"""The marker vocabulary neurodeck sends and understands (GDF / OpenViBE-style event codes).

Markers travel on LSL as strings holding the decimal code (e.g. ``"769"``), as OpenViBE does, so
other tools can consume them; recordings store them as annotations with the *name* (e.g.
``"left_hand"``), which is what MNE users expect. Both directions go through this table.

=====  ===================  ==================================================
code   name                 meaning
=====  ===================  ==================================================
768    trial_start          start of a trial
786    fixation             fixation cross on screen
785    beep                 warning beep before the cue
769    left_hand            cue: imagine the left hand
770    right_hand           cue: imagine the right hand
771    feet                 cue: imagine both feet
772    tongue               cue: imagine the tongue
783    rest                 cue: rest (no imagery)
781    feedback_start       continuous feedback / imagery period begins
800    trial_end            end of trial (rest / inter-trial interval begins)
32769  experiment_start     run starts
32770  experiment_stop      run ends
32771  pause                operator paused the run
32772  resume               operator resumed the run
32773  abort                operator aborted the run
32774  target_hit           cursor task: target reached
32775  target_miss          cursor task: time out
=====  ===================  ==================================================
"""
from __future__ import annotations

import numpy as np

CODES: dict[str, int] = {
    "trial_start": 768,
    "fixation": 786,
    "beep": 785,
    "left_hand": 769,
    "right_hand": 770,
    "feet": 771,
    "tongue": 772,
    "rest": 783,
    "feedback_start": 781,
    "trial_end": 800,
    "experiment_start": 32769,
    "experiment_stop": 32770,
    "pause": 32771,
    "resume": 32772,
    "abort": 32773,
    "target_hit": 32774,
    "target_miss": 32775,
}
NAMES: dict[int, str] = {code: name for name, code in CODES.items()}

#: The motor-imagery classes a cue can ask for.
MI_CLASSES: tuple[str, ...] = ("left_hand", "right_hand", "feet", "tongue", "rest")


def code_of(name: str) -> int:
    """GDF-style code of a marker name; raises ``KeyError`` naming the known names."""
    try:
        return CODES[name]
    except KeyError:
        raise KeyError(f"marker name {name!r} unknown; expected one of {sorted(CODES)}") from None


def name_of(label: str | int) -> str:
    """Marker name for a code or code string (``"769"`` -> ``"left_hand"``).

    Labels that are not codes of this table (e.g. ``"T1"`` from a PhysioNet file) pass through
    unchanged, so foreign markers are never lost, except for the substring ``{COLON}``, MNE's
    escape of ``:`` in FIF annotation names, which a FIF cannot hold literally: it becomes
    ``{colon}`` (the exact label stays in the recording's sidecar and annotation extras).
    """
    text = str(label).strip()
    try:
        return NAMES.get(int(text), text)
    except ValueError:
        return text.replace("{COLON}", "{colon}")


def onsets_on_samples(onset: np.ndarray, n_times: int, sfreq: float) -> tuple[np.ndarray, np.ndarray]:
    """Which marker onsets fall on one of the recorded samples, and those onsets clipped at 0.

    A marker belongs to a recording when its nearest sample was recorded. A marker stamped a
    few microseconds before the first sample (separate streams' timestamps, float rounding; seen
    with a marker pushed at the same instant as the first EEG sample) sits on sample 0: it is
    kept, at onset 0, not dropped as outside the recording.

    Parameters
    ----------
    onset : ndarray, shape (n_markers,)
        Marker times in seconds from the first sample.
    n_times : int
        Number of recorded samples.
    sfreq : float
        Sampling rate in Hz.

    Returns
    -------
    keep : ndarray of bool, shape (n_markers,)
        True for markers on a recorded sample: ``-0.5 / sfreq <= onset < n_times / sfreq``.
    onset : ndarray, shape (n_markers,)
        The onsets, negative ones within half a sample raised to 0.
    """
    onset = np.asarray(onset, dtype=float)
    keep = (onset >= -0.5 / sfreq) & (onset < n_times / sfreq)
    return keep, np.maximum(onset, 0.0)
