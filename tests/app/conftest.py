"""Fixtures of the app tests: settings in a temporary home, a session root, a fake clock."""
from __future__ import annotations

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
