"""The Qt-free workflow that ``neurodeck`` commands, the GUI pages and the demo share.

- :mod:`.continuous`: continuous decoding (recordings + a target -> Kalman / DKF bundles).
"""
from __future__ import annotations
