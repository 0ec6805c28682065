"""The acquisition and decoders layers work without Qt installed."""
from __future__ import annotations

import subprocess
import sys
import textwrap

from tests.conftest import ROOT

BLOCK_QT = textwrap.dedent(
    """
    import importlib, pkgutil, sys

    class _Block:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in {"PyQt6", "pyqtgraph", "PySide6", "PyQt5"}:
                raise ImportError(f"{name} is blocked: acquisition/decoders must not need Qt")
            return None

    sys.meta_path.insert(0, _Block())
    n = 0
    for top in ("neurodeck.acquisition", "neurodeck.decoders"):
        pkg = importlib.import_module(top)
        for info in pkgutil.walk_packages(pkg.__path__, top + "."):
            importlib.import_module(info.name)
            n += 1
    print(n)
    """
)


def test_core_layers_import_without_qt():
    out = subprocess.run(
        [sys.executable, "-c", BLOCK_QT], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert int(out.stdout.strip()) >= 2


def test_cli_help_lists_every_command():
    from neurodeck.app.cli import build_parser
    from neurodeck.app.commands import COMMAND_MODULES

    text = build_parser().format_help()
    for name in COMMAND_MODULES:
        assert name.replace("_", "-") in text  # module export_bids is command export-bids


def test_plain_neurodeck_means_gui():
    from neurodeck.app.cli import _default_to_gui

    assert _default_to_gui([]) == ["gui"]
    assert _default_to_gui(["--session", "S"]) == ["gui", "--session", "S"]
    assert _default_to_gui(["-vv", "--session", "S"]) == ["-vv", "gui", "--session", "S"]
    assert _default_to_gui(["demo", "--headless"]) == ["demo", "--headless"]
    assert _default_to_gui(["export-bids", "S", "O"]) == ["export-bids", "S", "O"]
    assert _default_to_gui(["--help"]) == ["--help"]
