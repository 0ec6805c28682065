"""Python's garbage collector runs only on the GUI thread while Qt is up.

neurodeck runs background threads (inlets, engine, player, recorder writer). If the cyclic garbage
collector happens to run on one of them, it may delete Qt/pyqtgraph objects from that thread, and
Qt crashes later when it paints an item whose C++ side is gone (seen in tests as a segfault in
``AxisItem.paint``: "wrapped C/C++ object ... has been deleted"). pyqtgraph's
:class:`~pyqtgraph.util.garbage_collector.GarbageCollector` disables automatic collection and
collects on a timer of the GUI thread instead.
"""
from __future__ import annotations

from PyQt6.QtCore import QCoreApplication


def install_gui_gc(interval_s: float = 1.0) -> None:
    """Collect garbage on the Qt application's thread every ``interval_s`` s when needed.

    Idempotent; call it on the GUI thread once the QApplication exists.
    """
    app = QCoreApplication.instance()
    if app is None or getattr(app, "_neurodeck_gc", None) is not None:
        return
    from pyqtgraph.util.garbage_collector import GarbageCollector

    app._neurodeck_gc = GarbageCollector(interval=interval_s)
