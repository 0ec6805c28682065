"""Background jobs of the Features, Train, Online and Replay pages (progress, cancel, one at a time).

A job is a plain function ``fn(task)``; ``task`` is a :class:`TaskHandle` through which the
function reports progress (``task.progress(done, total, text)``) and checks for cancellation
(``task.cancelled``). The result (or the exception, as one readable line) comes back on the GUI
thread.

Work that holds the GIL (LAPACK inside pyriemann, MNE) would still freeze the GUI from a thread:
such a job calls :meth:`TaskHandle.run_in_process`, which runs a workflow function in a spawned
child process and relays its progress; cancel terminates that process.

There is one way to run work off the GUI thread: :class:`app.ui.qt_models.Background` (a joined
worker thread per call, results delivered on the GUI thread through queued signals).
:class:`JobRunner` is what a page owns on top of it: one job at a time, progress, cancellation,
and :meth:`JobRunner.shutdown` joins the thread, so no thread outlives the window.
"""
from __future__ import annotations

import logging
import threading
import traceback
from collections.abc import Callable
from typing import Any

from PyQt6.QtCore import QObject, pyqtSignal

# Cancelled: raised inside a job by TaskHandle.check once cancellation was asked for
from neurodeck.app.workflow.isolated import Cancelled, run_isolated

logger = logging.getLogger(__name__)



class TaskHandle:
    """Given to a job function: progress reports and cancellation."""

    def __init__(self, emit: Callable[[int, int, str], None]):
        self._emit = emit
        self._cancel = threading.Event()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def cancel(self) -> None:
        self._cancel.set()

    def check(self) -> None:
        """Raise :class:`Cancelled` if the job was cancelled (call between steps)."""
        if self._cancel.is_set():
            raise Cancelled("cancelled")

    def progress(self, done: int, total: int, text: str = "") -> None:
        """Report ``done`` of ``total`` steps (thread-safe; delivered on the GUI thread)."""
        self._emit(int(done), int(total), str(text))

    def run_in_process(self, fn: Callable[..., Any], *args: Any, with_progress: bool = False,
                       **kwargs: Any) -> Any:
        """``fn(*args, **kwargs)`` in a child process (:func:`app.workflow.isolated.run_isolated`).

        For work that holds the GIL (LAPACK in pyriemann, MNE): the GUI thread keeps running.
        ``with_progress``: ``fn`` gets a ``progress(done, total, text)`` keyword argument whose
        reports reach :meth:`progress`. Cancelling the job terminates the process at once.
        """
        return run_isolated(fn, *args, progress=self.progress if with_progress else None,
                            cancelled=lambda: self.cancelled, **kwargs)


class JobRunner(QObject):
    """One background job at a time for one page, on :class:`~app.ui.qt_models.Background`.

    Signals
    -------
    busy_changed(bool)
    progress(int, int, str)
        Emitted from the job's thread; connected slots run on the GUI thread (queued).
    """

    busy_changed = pyqtSignal(bool)
    progress = pyqtSignal(int, int, str)

    def __init__(self, parent: QObject | None = None):
        from neurodeck.app.ui.qt_models import Background

        super().__init__(parent)
        self._background = Background(self)
        self._thread: threading.Thread | None = None
        self._task: TaskHandle | None = None
        self._name = ""
        self._callbacks: tuple = (None, None, None)

    @property
    def busy(self) -> bool:
        return self._thread is not None

    @property
    def name(self) -> str:
        return self._name if self.busy else ""

    def start(self, fn: Callable[[TaskHandle], Any], *,
              on_done: Callable[[Any], None] | None = None,
              on_error: Callable[[str], None] | None = None,
              on_cancel: Callable[[], None] | None = None,
              name: str = "job") -> bool:
        """Run ``fn(task)`` on a worker thread; False (nothing started) if a job is running."""
        if self._thread is not None:
            return False
        task = TaskHandle(self.progress.emit)

        def work() -> Any:
            try:
                return fn(task)
            except Cancelled:
                raise
            except BaseException as exc:
                from neurodeck.app.ui.qt_models import is_user_error

                if is_user_error(exc):  # a refusal with a reason: the banner says it, no traceback
                    logger.info("%s refused: %s", name, exc)
                else:
                    logger.error("%s failed:\n%s", name, traceback.format_exc())
                raise

        def done(result: Any) -> None:
            if task is not self._task:  # dropped by shutdown()
                return
            on_done_, _, on_cancel_ = self._callbacks
            self._finished()
            if task.cancelled:
                if on_cancel_ is not None:
                    on_cancel_()
            elif on_done_ is not None:
                on_done_(result)

        def fail(exc: BaseException) -> None:
            from neurodeck.app.ui.qt_models import error_text

            if task is not self._task:
                return
            _, on_error_, on_cancel_ = self._callbacks
            self._finished()
            if isinstance(exc, Cancelled):
                if on_cancel_ is not None:
                    on_cancel_()
            elif on_error_ is not None:
                on_error_(error_text(exc))

        self._callbacks = (on_done, on_error, on_cancel)
        self._task, self._name = task, name
        self._thread = self._background.run(work, done, fail, name=name)
        self.busy_changed.emit(True)
        return True

    def cancel(self) -> None:
        if self._task is not None:
            self._task.cancel()

    def _finished(self) -> None:
        thread, self._thread, self._task = self._thread, None, None
        if thread is None:  # already joined by shutdown()
            return
        thread.join()  # the result is here: the thread is ending
        self.busy_changed.emit(False)

    def wait(self, timeout_s: float = 30.0) -> bool:
        """Block until the job's thread ended (True) or ``timeout_s`` passed (False).

        The result is delivered by the next event-loop turn.
        """
        thread = self._thread
        if thread is None:
            return True
        thread.join(timeout_s)
        return not thread.is_alive()

    def shutdown(self, timeout_s: float = 30.0) -> None:
        """Cancel the job and join its thread; its result, if still queued, is dropped."""
        self.cancel()
        self._callbacks = (None, None, None)
        thread = self._thread
        if thread is not None:
            thread.join(timeout_s)
            if thread.is_alive():
                logger.error("job %s still running after %.0f s", self._name, timeout_s)
            else:
                self._finished()
