"""Subject / session folders (Qt-free).

Layout under a root folder (default ``~/neurodeck-sessions``, or the ``session_root`` setting)::

    <root>/<subject>/<session>/
        config.toml      session metadata ([session]) and the protocol used ([protocol])
        recordings/      calibration and online runs (one file per run)
        models/          trained model bundles (ONNX + JSON)
        reports/         HTML calibration reports

Subject and session names are checked strictly (letters, digits, ``-``, ``_``, ``.``; no ``..``,
no separators, no absolute paths) so a name can never escape the root. Names that come from
outside (an LSL stream name) go through :func:`sanitize_filename` before they become a file name.
"""
from __future__ import annotations

import datetime as _dt
import logging
import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from neurodeck.app.errors import UserError

logger = logging.getLogger(__name__)

CONFIG_NAME = "config.toml"
SUBDIRS = ("recordings", "models", "reports")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_WINDOWS_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)),
                     *(f"LPT{i}" for i in range(1, 10))}


class SessionError(UserError):
    """A session name, folder or config is invalid."""


def default_root() -> Path:
    """``~/neurodeck-sessions`` (the settings may override it)."""
    return Path.home() / "neurodeck-sessions"


def validate_name(name: str, what: str = "name") -> str:
    """Return ``name`` if it is a safe single folder name, else raise :class:`SessionError`.

    Allowed: 1-64 characters among letters, digits, ``-``, ``_`` and ``.``, starting with a letter
    or digit (so ``..``, ``.hidden``, ``a/b``, ``/abs`` and ``C:\\x`` are all rejected).
    """
    if not isinstance(name, str):
        raise SessionError(f"{what} {name!r} must be text")
    stripped = name.strip()
    if not stripped:
        raise SessionError(f"{what} is empty; expected a name like 'S01'")
    if stripped in (".", "..") or "/" in stripped or "\\" in stripped or os.path.isabs(stripped):
        raise SessionError(
            f"{what} {name!r} is a path; expected a plain name without '/', '\\\\' or '..'"
        )
    if not _NAME_RE.match(stripped):
        raise SessionError(
            f"{what} {name!r} invalid; expected 1-64 letters, digits, '-', '_' or '.', "
            f"starting with a letter or digit (e.g. {sanitize_filename(stripped)!r})"
        )
    if stripped.split(".")[0].upper() in _WINDOWS_RESERVED:
        raise SessionError(f"{what} {name!r} is a reserved device name on Windows; choose another")
    return stripped


def sanitize_filename(text: str, fallback: str = "stream", max_len: int = 64) -> str:
    """Turn any text (e.g. an LSL stream name) into a safe file-name component.

    Every character outside ``[A-Za-z0-9_.-]`` becomes ``_``, runs of ``_`` collapse, leading
    dots/underscores/dashes are removed (no hidden files, no ``..``), the result is cut at
    ``max_len`` and never empty.
    """
    out = re.sub(r"[^A-Za-z0-9_.-]", "_", str(text))
    out = re.sub(r"_+", "_", out)
    out = re.sub(r"\.{2,}", ".", out)
    out = out.lstrip("._-").rstrip("._-")[:max_len].rstrip("._-")
    if not out:
        out = fallback
    if out.split(".")[0].upper() in _WINDOWS_RESERVED:
        out = f"_{out}"
    return out


@dataclass(frozen=True)
class SessionInfo:
    """Summary of a session folder, for listings."""

    subject: str
    session: str
    path: Path
    created: str
    n_recordings: int
    n_models: int


class Session:
    """An open subject/session folder. Build with :meth:`create` or :meth:`open`."""

    def __init__(self, path: Path, meta: dict[str, Any]):
        self.path = Path(path)
        self._meta = meta

    # ------------------------------------------------------------------ constructors
    @classmethod
    def create(cls, root: str | Path, subject: str, session: str, *, exist_ok: bool = False,
               notes: str = "") -> Session:
        """Create ``<root>/<subject>/<session>/`` with its sub-folders and config.toml.

        With ``exist_ok=True`` an existing session is opened instead of failing.
        """
        subject = validate_name(subject, "subject")
        session = validate_name(session, "session")
        root = Path(root).expanduser()
        path = root / subject / session
        # belt and braces: the resolved folder must sit inside the root
        if root.resolve() not in path.resolve().parents:
            raise SessionError(f"session folder {str(path)!r} escapes the root {str(root)!r}")
        if (path / CONFIG_NAME).exists():
            if exist_ok:
                return cls.open(path)
            raise SessionError(
                f"session {subject}/{session} already exists in {str(root)!r}; open it or pick "
                "another session name"
            )
        for sub in SUBDIRS:
            (path / sub).mkdir(parents=True, exist_ok=True)
        meta = {
            "session": {
                "subject": subject,
                "session": session,
                "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
                "notes": notes,
            }
        }
        from neurodeck.app import __version__

        meta["session"]["neurodeck_version"] = __version__
        sess = cls(path, meta)
        sess.save()
        logger.info("created session %s", path)
        return sess

    @classmethod
    def open(cls, path: str | Path) -> Session:
        """Open an existing session folder (it must hold config.toml)."""
        path = Path(path).expanduser()
        cfg = path / CONFIG_NAME
        if not cfg.is_file():
            raise SessionError(
                f"{str(path)!r} is not a neurodeck session; expected a folder holding {CONFIG_NAME}"
            )
        try:
            meta = tomllib.loads(cfg.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise SessionError(f"{str(cfg)!r} is not valid TOML: {exc}") from None
        meta.setdefault("session", {})
        meta["session"].setdefault("subject", path.parent.name)
        meta["session"].setdefault("session", path.name)
        for sub in SUBDIRS:
            (path / sub).mkdir(parents=True, exist_ok=True)
        return cls(path, meta)

    # ------------------------------------------------------------------ properties
    @property
    def subject(self) -> str:
        return str(self._meta["session"]["subject"])

    @property
    def name(self) -> str:
        return str(self._meta["session"]["session"])

    @property
    def label(self) -> str:
        """``subject/session`` for display."""
        return f"{self.subject}/{self.name}"

    @property
    def config_path(self) -> Path:
        return self.path / CONFIG_NAME

    @property
    def recordings_dir(self) -> Path:
        return self.path / "recordings"

    @property
    def models_dir(self) -> Path:
        return self.path / "models"

    @property
    def reports_dir(self) -> Path:
        return self.path / "reports"

    @property
    def meta(self) -> dict[str, Any]:
        """The parsed config.toml (a copy)."""
        import copy

        return copy.deepcopy(self._meta)

    # ------------------------------------------------------------------ config
    def save(self) -> None:
        """Write config.toml atomically."""
        import tomli_w

        tmp = self.config_path.with_suffix(".toml.tmp")
        tmp.write_text(tomli_w.dumps(self._meta), encoding="utf-8")
        os.replace(tmp, self.config_path)

    def set_section(self, section: str, values: dict[str, Any]) -> None:
        """Replace a top-level table of config.toml (e.g. ``"protocol"``) and save."""
        validate_name(section, "config section")
        self._meta[section] = dict(values)
        self.save()

    def section(self, section: str) -> dict[str, Any] | None:
        value = self._meta.get(section)
        return dict(value) if isinstance(value, dict) else None

    # ------------------------------------------------------------------ files
    def new_recording_path(self, kind: str = "calibration", suffix: str = "_raw.fif") -> Path:
        """A fresh ``recordings/<kind>-runNN<suffix>`` path (NN counts existing runs of that kind).

        The default suffix is MNE's ``_raw.fif``, what :class:`acquisition.recorder.Recorder` writes.
        """
        kind = sanitize_filename(kind, fallback="run")
        if suffix and not re.fullmatch(r"[_.][A-Za-z0-9_.]{1,15}", suffix) or ".." in suffix:
            raise SessionError(f"file suffix {suffix!r} invalid; expected e.g. '_raw.fif' or '.xdf'")
        n = 1
        while True:
            stem = f"{kind}-run{n:02d}"
            if not any(p.name.startswith(stem) for p in self.recordings_dir.iterdir()):
                return self.recordings_dir / f"{stem}{suffix}"
            n += 1

    def file_for_stream(self, stream_name: str, folder: str = "recordings", suffix: str = "") -> Path:
        """Path inside the session for a file named after an (untrusted) stream name."""
        if folder not in SUBDIRS:
            raise SessionError(f"folder {folder!r} unknown; expected one of {list(SUBDIRS)}")
        return self.path / folder / f"{sanitize_filename(stream_name)}{suffix}"

    def recordings(self) -> list[Path]:
        return sorted(p for p in self.recordings_dir.iterdir() if not p.name.startswith("."))

    def models(self) -> list[Path]:
        return sorted(p for p in self.models_dir.iterdir() if not p.name.startswith("."))

    def info(self) -> SessionInfo:
        return SessionInfo(
            subject=self.subject,
            session=self.name,
            path=self.path,
            created=str(self._meta["session"].get("created", "")),
            n_recordings=len(self.recordings()),
            n_models=len(self.models()),
        )

    def __repr__(self) -> str:
        return f"Session({str(self.path)!r})"


def list_sessions(root: str | Path) -> list[SessionInfo]:
    """Every session under ``root`` (``<root>/<subject>/<session>/config.toml``), newest first."""
    root = Path(root).expanduser()
    if not root.is_dir():
        return []
    out: list[SessionInfo] = []
    for cfg in root.glob(f"*/*/{CONFIG_NAME}"):
        try:
            out.append(Session.open(cfg.parent).info())
        except SessionError as exc:
            logger.warning("skipping %s: %s", cfg.parent, exc)
    out.sort(key=lambda s: (s.created, s.subject, s.session), reverse=True)
    return out
