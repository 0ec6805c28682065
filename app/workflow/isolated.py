"""Run one workflow call in a child process, with progress reports and cancellation.

A background *thread* does not keep a GUI responsive when the work holds the GIL: a LAPACK call
inside pyriemann's means held it for up to 10.6 s during the Train page's fgmdm cross-validation
(issue 11). :func:`run_isolated` runs the call in a fresh ``spawn`` process (safe beside Qt and
LSL threads, the same on every OS); the caller's thread only waits on a pipe. Cancelling
terminates the process at once, nothing is left running.

The function and its arguments must be picklable (a module-level function of the workflow), and
so must its result.
"""
from __future__ import annotations

import logging
import multiprocessing
import pickle
import traceback
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)

#: How often the waiting thread checks for cancellation and a dead child (s).
POLL_S = 0.05


class Cancelled(Exception):
    """The call was cancelled (raised where the caller waits, and by progress callbacks)."""


def _child(conn, fn: Callable[..., Any], args: tuple, kwargs: dict, with_progress: bool) -> None:
    """Entry point of the child process: call ``fn`` and send its news down ``conn``.

    One BLAS / OpenMP thread, as in the engine and the parallel evaluation: on small matrices
    threaded OpenBLAS spins for a core it does not get when the machine is busy (live decoding,
    the GUI). The limit reaches the libraries already loaded (numpy, to unpickle the call); the
    variables those loaded later (SciPy's own OpenBLAS, scikit-learn's libgomp).
    """
    import os

    from threadpoolctl import threadpool_limits

    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"
    threadpool_limits(limits=1)
    try:
        if with_progress:
            def progress(done: int, total: int, text: str = "") -> None:
                conn.send(("progress", int(done), int(total), str(text)))

            kwargs = {**kwargs, "progress": progress}
        result = fn(*args, **kwargs)
    except BaseException as exc:  # sent to the parent, never lost
        tb = traceback.format_exc()
        try:
            pickle.loads(pickle.dumps(exc))
        except Exception:  # an exception that does not survive pickling: keep its text
            exc = RuntimeError(f"{type(exc).__name__}: {exc}")
        conn.send(("error", exc, tb))
    else:
        conn.send(("done", result))
    finally:
        conn.close()


def run_isolated(fn: Callable[..., Any], *args: Any,
                 progress: Callable[[int, int, str], None] | None = None,
                 cancelled: Callable[[], bool] | None = None, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)`` computed in a spawned child process; its result returned here.

    Parameters
    ----------
    fn : callable
        A module-level (picklable) function.
    *args, **kwargs
        Its arguments (picklable).
    progress : callable or None
        ``progress(done, total, text)``, called in this thread for each report of the child. When
        given, ``fn`` receives a ``progress`` keyword argument of the same signature.
    cancelled : callable or None
        Polled every :data:`POLL_S` seconds; once it returns True the child is terminated and
        :class:`Cancelled` raised.

    Raises
    ------
    Exception
        The child's exception (its type kept when it can be pickled), or RuntimeError when the
        child died without an answer (its exit code is named).
    """
    ctx = multiprocessing.get_context("spawn")
    recv, send = ctx.Pipe(duplex=False)
    name = getattr(fn, "__name__", "call")
    proc = ctx.Process(target=_child, args=(send, fn, args, kwargs, progress is not None),
                       name=f"neurodeck-{name}", daemon=True)
    proc.start()
    send.close()  # the child holds the only writer: EOF once it ends
    answered = False
    try:
        while True:
            if cancelled is not None and cancelled():
                raise Cancelled("cancelled")
            if not recv.poll(POLL_S):
                continue
            try:
                kind, *payload = recv.recv()
            except EOFError:
                proc.join(5.0)
                raise RuntimeError(f"the worker process of {name} ended without an answer "
                                   f"(exit code {proc.exitcode})") from None
            if kind == "progress":
                if progress is not None:
                    progress(*payload)
            elif kind == "done":
                answered = True
                return payload[0]
            else:
                answered = True
                exc, tb = payload
                logger.debug("%s failed in its worker process:\n%s", name, tb)
                raise exc
    finally:
        recv.close()
        if answered:
            proc.join(5.0)
        if proc.is_alive():
            proc.terminate()
            proc.join(5.0)
            if proc.is_alive():
                proc.kill()
                proc.join()
        proc.close()
