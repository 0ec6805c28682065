"""Persistent application settings as a JSON file (no QSettings, so headless code can use them).

Location: ``$NEURODECK_HOME/settings.json`` if ``NEURODECK_HOME`` is set, else
``$XDG_CONFIG_HOME/neurodeck/settings.json`` (default ``~/.config/neurodeck/settings.json``).
A corrupt file is moved aside (``settings.json.bad``) and defaults are used, with a warning.
"""
from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

FILE_NAME = "settings.json"


def config_dir() -> Path:
    """Folder holding the settings file."""
    home = os.environ.get("NEURODECK_HOME")
    if home:
        return Path(home).expanduser()
    xdg = os.environ.get("XDG_CONFIG_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".config"
    return base / "neurodeck"


def _default_viewer() -> dict[str, Any]:
    return {
        "span_s": 10.0,
        "scale_uv": 100.0,
        "highpass_hz": 1.0,
        "lowpass_hz": 40.0,
        "notch_hz": 50.0,
        "car": False,
        "filter": True,
    }


@dataclass
class Settings:
    """User settings; edit the attributes then call :meth:`save`.

    Attributes
    ----------
    session_root : str
        Folder holding the subject/session folders ("" = ``~/neurodeck-sessions``).
    last_session : str
        Path of the last opened session ("" = none).
    window_geometry : str
        Hex of ``QWidget.saveGeometry()`` ("" = default size).
    viewer : dict
        Signal viewer preferences (span, scale, filters, CAR).
    protocol : dict
        Last calibration protocol settings (``ProtocolConfig.to_dict()``).
    """

    session_root: str = ""
    last_session: str = ""
    window_geometry: str = ""
    viewer: dict[str, Any] = field(default_factory=_default_viewer)
    protocol: dict[str, Any] = field(default_factory=dict)
    path: Path | None = field(default=None, repr=False, compare=False)

    @classmethod
    def load(cls, path: str | Path | None = None) -> Settings:
        """Read settings (defaults when the file is missing or unreadable)."""
        path = Path(path) if path is not None else config_dir() / FILE_NAME
        data: dict[str, Any] = {}
        if path.is_file():
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
                if not isinstance(data, dict):
                    raise ValueError(f"expected a JSON object, got {type(data).__name__}")
            except (ValueError, OSError) as exc:
                bad = path.with_suffix(".json.bad")
                logger.warning("settings file %s unreadable (%s); moved to %s, using defaults",
                               path, exc, bad)
                try:
                    os.replace(path, bad)
                except OSError:
                    pass
                data = {}
        known = {f.name for f in fields(cls)} - {"path"}
        kwargs = {k: v for k, v in data.items() if k in known}
        settings = cls(**kwargs)
        viewer = _default_viewer()
        if isinstance(settings.viewer, dict):
            viewer.update(settings.viewer)
        settings.viewer = viewer
        if not isinstance(settings.protocol, dict):
            settings.protocol = {}
        settings.path = path
        return settings

    def save(self) -> Path:
        """Write atomically (temp file + rename); returns the path."""
        path = self.path or config_dir() / FILE_NAME
        path.parent.mkdir(parents=True, exist_ok=True)
        data = asdict(self)
        data.pop("path", None)
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True), encoding="utf-8")
        os.replace(tmp, path)
        self.path = path
        return path

    def session_root_path(self) -> Path:
        """The session root folder (setting or ``~/neurodeck-sessions``)."""
        from neurodeck.app.session import default_root

        return Path(self.session_root).expanduser() if self.session_root else default_root()
