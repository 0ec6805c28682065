"""app.workflow.isolated: a workflow call in a spawned child process (results, progress, errors,
cancel, a child that dies)."""
from __future__ import annotations

import multiprocessing
import os
import threading

import pytest

from neurodeck.app.workflow.isolated import Cancelled, run_isolated


def _square_sum(values, *, offset=0, progress=None):
    for i in range(len(values)):
        progress(i + 1, len(values), f"value {i + 1}")
    return sum(v * v for v in values) + offset, os.getpid()


def _fail(text):
    raise ValueError(f"bad value {text!r}")


class _Odd(Exception):
    def __init__(self, a, b):  # pickles as _Odd(msg): fails to unpickle
        super().__init__(f"{a}/{b}")


def _fail_odd():
    raise _Odd(1, 2)


def _die():
    os._exit(3)


def _pool_threads():
    """Thread counts of the BLAS / OpenMP pools a workflow call loads (numpy's and SciPy's own
    OpenBLAS, scikit-learn's libgomp)."""
    import numpy  # noqa: F401
    import scipy.linalg  # noqa: F401
    import sklearn.utils.fixes  # noqa: F401
    from threadpoolctl import threadpool_info

    info = threadpool_info()
    return len(info), sorted({p["num_threads"] for p in info})


def _wait_forever(started):
    started.set()
    threading.Event().wait()


def test_result_and_progress_come_back():
    seen = []
    total, pid = run_isolated(_square_sum, [1, 2, 3], offset=1,
                              progress=lambda d, t, s: seen.append((d, t, s)))
    assert total == 15 and pid != os.getpid()
    assert seen == [(1, 3, "value 1"), (2, 3, "value 2"), (3, 3, "value 3")]
    assert not multiprocessing.active_children()


def test_errors_keep_their_type_and_text():
    with pytest.raises(ValueError, match="bad value 'x'"):
        run_isolated(_fail, "x")
    with pytest.raises(RuntimeError, match="_Odd: 1/2"):
        run_isolated(_fail_odd)


def test_a_dead_child_is_an_error_naming_its_exit_code():
    with pytest.raises(RuntimeError, match="exit code 3"):
        run_isolated(_die)


def test_cancel_terminates_the_child():
    started = multiprocessing.get_context("spawn").Event()
    with pytest.raises(Cancelled):
        run_isolated(_wait_forever, started, cancelled=started.is_set)
    assert not multiprocessing.active_children()


def test_the_child_computes_on_one_blas_thread(monkeypatch):
    """A busy machine (live decoding, the GUI) must not make threaded OpenBLAS spin for a core it
    does not get: the Train page's learning curve took 27 s instead of 13 s next to two busy
    processes. Every pool the child loads has one thread, also those loaded after the call
    started and when its environment asks for four."""
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.setenv(var, "4")
    n_pools, threads = run_isolated(_pool_threads)
    assert n_pools >= 3 and threads == [1], (n_pools, threads)
