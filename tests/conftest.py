"""Shared fixtures: where the real recordings are, unique LSL names, offscreen Qt."""
from __future__ import annotations

import os
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from threadpoolctl import threadpool_limits

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
ASSETS = ROOT / "assets"

# One BLAS / OpenMP thread: the suite runs on 2 cores next to LSL threads; threaded OpenBLAS on
# small matrices made decoder tests ~20x slower under load. (The online engine does the same.)
# The variables reach the libraries loaded later and every process a test starts (CLI calls,
# players, workers); the limit reaches those already loaded. numpy and SciPy each bundle their own
# OpenBLAS and scikit-learn loads libgomp: a limit set before they were loaded reached none of
# them (all three ran 2 threads, and the DKF tests used 1.5 cores each).
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
import numpy  # noqa: E402,F401
import scipy.linalg  # noqa: E402,F401
import sklearn.utils.fixes  # noqa: E402,F401  (libgomp)

_BLAS_LIMITS = threadpool_limits(limits=1)

if not os.environ.get("DISPLAY") and not os.environ.get("QT_QPA_PLATFORM"):
    os.environ["QT_QPA_PLATFORM"] = "offscreen"  # (an empty value is Qt's default, xcb: abort)


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> None:
    """The README's run (``python -m pytest``: no paths, ``slow`` deselected) uses 4 workers.

    Most tests wait on real-time LSL streams or subprocesses (the 2-worker run used ~1 core of 2),
    so 4 pytest-xdist workers on 2 cores: 705 tests in 350 s vs 430 s with 2 (load ~3). Idle
    workers steal queued tests (``--dist worksteal``): with ``loadscope`` a whole module ran on one
    worker and the run ended waiting for the last big module (820 tests, quiet machine: 284 s
    loadscope vs 261 s worksteal, the latter with the Flint test moved to ``slow``; a module
    fixture may be built on more than one worker). Runs naming paths, ``-m slow`` (benchmarks,
    soak: serial), ``-n``, ``--pdb`` or
    ``NEURODECK_TEST_WORKERS=0`` are left as asked; without pytest-xdist everything runs serially.
    """
    if os.environ.get("PYTEST_XDIST_WORKER"):  # (lead) a worker must not start workers: that forked 228 processes
        return
    workers = int(os.environ.get("NEURODECK_TEST_WORKERS", "4"))
    opt = config.option
    if (workers > 0 and config.pluginmanager.hasplugin("xdist")
            and config.args_source is pytest.Config.ArgsSource.TESTPATHS
            and opt.markexpr == "not slow" and opt.numprocesses is None and opt.dist == "no"
            and not opt.collectonly and not opt.usepdb):
        opt.numprocesses = workers
        opt.dist = "worksteal"


def wait_until(pred, timeout: float, step: float = 0.02) -> bool:
    """Poll ``pred()`` until it is true or ``timeout`` seconds passed; return its last value.

    Tests wait on a condition with this instead of sleeping a fixed time and then asserting.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(step)
    return bool(pred())


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` next to the project; tests needing it skip with a reason if absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real recordings not found at {SHARED_DATA} (a clone without ../shared/)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def eegmmidb(shared_data: Path) -> Path:
    return shared_data / "eegmmidb"


@pytest.fixture(scope="session")
def asset_edfs() -> list[Path]:
    """The real EEGMMIDB recording shipped in ``assets/`` (S001, imagery runs 4/8/12)."""
    files = sorted((ASSETS / "eegmmidb").glob("*.edf"))
    assert files, "assets/eegmmidb/*.edf missing: the demo recording must ship with the project"
    return files


@pytest.fixture
def unique_name() -> str:
    """A unique LSL stream name/source id so parallel or repeated tests never see each other."""
    return f"ndtest-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def cli():
    """Run the ``neurodeck`` command as the user does: ``python -m neurodeck ARGS``, its own process.

    Returns a function ``run(*args, timeout=120) -> subprocess.CompletedProcess`` (text stdout and
    stderr captured). In-process ``main()`` would install signal handlers and logging in pytest.
    Each call is a process forked from a server that imported scikit-learn, pyriemann, MNE and
    ONNX once (tests/cli_server.py: ~3.5 s CPU less per call; ``NEURODECK_TEST_FORK_CLI=0``:
    plain subprocesses).
    """
    from tests.cli_server import run_module

    def run(*args: object, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
        return run_module("neurodeck", *args, timeout=timeout,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"})

    return run
