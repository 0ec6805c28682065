"""QThread workers for the slow work of the Features, Train, Online and Replay pages.

A job is a plain function ``fn(task)`` run on a :class:`QThread`; ``task`` is a
:class:`TaskHandle` through which the function reports progress (``task.progress(done, total,
text)``) and checks for cancellation (``task.cancelled``). The result (or the exception, as one
readable line) comes back on the GUI thread through Qt signals.

:class:`JobRunner` is what a page owns: it runs one job at a time, can cancel it, and
:meth:`JobRunner.shutdown` joins the thread, so no thread outlives the window (pytest-qt checks).
"""
from __future__ import annotations

import logging
import threading
import traceback
from collections.abc import Callable
from typing import Any

from PyQt6.QtCore import QObject, Qt, QThread, pyqtSignal, pyqtSlot

logger = logging.getLogger(__name__)


class Cancelled(Exception):
    """Raised inside a job by :meth:`TaskHandle.check` once cancellation was asked for."""


class TaskHandle:
    """Given to a job function: progress reports and cancellation."""

    def __init__(self, worker: Worker):
        self._worker = worker
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
        self._worker.progress.emit(int(done), int(total), str(text))


class Worker(QObject):
    """Runs ``fn(task)`` when its thread starts.

    Signals
    -------
    progress(int, int, str)
    succeeded(object)
    failed(str)
        One readable line (``error_text``); the traceback goes to the log.
    cancelled()
    done()
        Always emitted last.
    """

    progress = pyqtSignal(int, int, str)
    succeeded = pyqtSignal(object)
    failed = pyqtSignal(str)
    cancelled = pyqtSignal()
    done = pyqtSignal()

    def __init__(self, fn: Callable[[TaskHandle], Any], name: str = "job"):
        super().__init__()
        self.fn = fn
        self.name = name
        self.task = TaskHandle(self)
        self.error: BaseException | None = None

    @pyqtSlot()
    def run(self) -> None:
        from neurodeck.app.ui.qt_models import error_text

        try:
            result = self.fn(self.task)
        except Cancelled:
            self.cancelled.emit()
        except BaseException as exc:  # every error reaches the window
            self.error = exc
            logger.error("%s failed:\n%s", self.name, traceback.format_exc())
            self.failed.emit(error_text(exc))
        else:
            if self.task.cancelled:
                self.cancelled.emit()
            else:
                self.succeeded.emit(result)
        finally:
            self.done.emit()


class JobRunner(QObject):
    """One background job at a time on a QThread, for one page.

    Signals
    -------
    busy_changed(bool)
    progress(int, int, str)
    """

    busy_changed = pyqtSignal(bool)
    progress = pyqtSignal(int, int, str)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._thread: QThread | None = None
        self._worker: Worker | None = None
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
        """Run ``fn(task)`` on a new QThread; False (nothing started) if a job is running."""
        if self._thread is not None:
            return False
        thread = QThread()
        thread.setObjectName(f"neurodeck-{name}")
        worker = Worker(fn, name)
        worker.moveToThread(thread)
        thread.started.connect(worker.run)
        queued = Qt.ConnectionType.QueuedConnection
        # callbacks run on the GUI thread: the worker's signals go to this object's slots
        self._callbacks = (on_done, on_error, on_cancel)
        worker.progress.connect(self.progress, queued)
        worker.succeeded.connect(self._on_succeeded, queued)
        worker.failed.connect(self._on_failed, queued)
        worker.cancelled.connect(self._on_cancelled, queued)
        # quit from the worker thread itself (QThread.quit is thread-safe), so the GUI thread can
        # join the thread as soon as a result arrives
        worker.done.connect(thread.quit, Qt.ConnectionType.DirectConnection)
        self._thread, self._worker, self._name = thread, worker, name
        self.busy_changed.emit(True)
        thread.start()
        return True

    # the job is over when its result arrives: join the thread first, so a callback may start
    # the next job right away
    def _on_succeeded(self, result: Any) -> None:
        cb = self._callbacks[0]
        self._finished()
        if cb is not None:
            cb(result)

    def _on_failed(self, message: str) -> None:
        cb = self._callbacks[1]
        self._finished()
        if cb is not None:
            cb(message)

    def _on_cancelled(self) -> None:
        cb = self._callbacks[2]
        self._finished()
        if cb is not None:
            cb()

    def cancel(self) -> None:
        if self._worker is not None:
            self._worker.task.cancel()

    def _finished(self) -> None:
        thread, self._thread, self._worker = self._thread, None, None
        if thread is None:  # already joined by shutdown()
            return
        if thread is not None:
            thread.wait()
            thread.deleteLater()
        self.busy_changed.emit(False)

    def wait(self, timeout_s: float = 30.0) -> bool:
        """Block until the job's thread ended (True) or ``timeout_s`` passed (False).

        Queued result signals are delivered by the next event-loop turn.
        """
        thread = self._thread
        if thread is None:
            return True
        return bool(thread.wait(int(timeout_s * 1000)))

    def shutdown(self, timeout_s: float = 30.0) -> None:
        """Cancel the job and join its thread; its result, if still queued, is dropped."""
        self.cancel()
        self._callbacks = (None, None, None)
        thread = self._thread
        if thread is not None:
            if not thread.wait(int(timeout_s * 1000)):
                logger.error("job %s still running after %.0f s", self._name, timeout_s)
            else:
                self._finished()
