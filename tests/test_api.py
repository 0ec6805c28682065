"""``import neurodeck``: the public API for scripts, its version, and what the wheel installs."""
from __future__ import annotations

import importlib
import importlib.metadata
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import neurodeck
from tests.conftest import ROOT

QT = ("PyQt6", "pyqtgraph", "PySide6", "PyQt5")


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT.parent, capture_output=True,
                          text=True, timeout=120)


def test_version_prints_and_plain_import_loads_no_qt_nor_heavy_layers():
    proc = _python("import sys, neurodeck; print(neurodeck.__version__); "
                   "print(sorted(m for m in sys.modules if m.split('.')[0] in "
                   f"{QT!r} or m.startswith('neurodeck.') or m in ('mne', 'sklearn')))")
    assert proc.returncode == 0, proc.stderr
    ver, loaded = proc.stdout.splitlines()
    assert ver == importlib.metadata.version("neurodeck") == neurodeck.__version__
    assert ver[0].isdigit() and ver != "0+unknown"
    assert loaded == "[]"  # lazy: nothing behind the API is imported yet


def test_every_public_name_is_the_object_of_its_module_and_needs_no_qt():
    names = [n for n in neurodeck.__all__ if n != "__version__"]
    # a fresh interpreter: every name resolves to its module's object and still no Qt is loaded
    proc = _python(
        "import importlib, sys, neurodeck as nd\n"
        "for n in nd.__all__[1:]:\n"
        "    assert getattr(nd, n) is getattr(importlib.import_module(nd._API[n]), n), n\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {QT!r}))"
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
    assert set(names) <= set(dir(neurodeck))
    # each name is documented in the module docstring (numpydoc section list)
    missing = [n for n in names if not re.search(rf"^(\w+, )*{n}(, \w+)*$", neurodeck.__doc__, re.M)]
    assert not missing, f"not listed in neurodeck's docstring: {missing}"
    with pytest.raises(AttributeError, match="'nope'"):
        neurodeck.nope  # noqa: B018


def test_wheel_installs_everything_under_neurodeck(tmp_path):
    """``pip wheel`` of the project: every file is ``neurodeck/...`` (no top-level app, decoders)."""
    src = tmp_path / "src"
    # build from a copy of the files git tracks (a stale build/ in the checkout could leak in;
    # untracked files may be a whole venv: .ci/run makes .ci-venv in the checkout)
    listed = subprocess.run(["git", "ls-files", "--cached"], cwd=ROOT, capture_output=True,
                            text=True, check=True).stdout.splitlines()
    for rel in listed:
        if (ROOT / rel).is_file():
            (src / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, src / rel)
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w",
                           str(tmp_path / "dist"), str(src)], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr
    (wheel,) = (tmp_path / "dist").glob("neurodeck-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top = {Path(n).parts[0] for n in names}
    assert top == {"neurodeck", f"neurodeck-{neurodeck.__version__}.dist-info"}, sorted(top)
    for module in ("neurodeck/__init__.py", "neurodeck/app/cli.py", "neurodeck/decoders/online.py",
                   "neurodeck/acquisition/io.py", "neurodeck/assets/eegmmidb/S001R04.edf"):
        assert module in names, module
