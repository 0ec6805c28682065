"""The PyQt6 + pyqtgraph GUI of neurodeck.

Structure
    :mod:`app.ui.main_window`
        ``MainWindow`` and the page registry ``PAGES`` (workflow order). A page is a
        :class:`app.ui.widgets.Page` subclass built as ``PageClass(context)``; a page whose module
        does not exist yet shows a placeholder.
    :mod:`app.ui.qt_models`
        ``AppContext`` (settings, session, ``streams`` = the :class:`StreamModel` owning the inlets
        and any simulator/player we started, ``background`` for slow calls, ``report_error``),
        ``ProtocolRunner`` (drives the Qt-free calibration protocol from a timer).
    Pages: ``connect_page``, ``calibrate_page`` (+ ``cue_display``), then features / train /
        online / replay. Views: ``signal_view`` (fast multi-channel traces), ``spectrum_view``.

Pages report errors with ``self.report_error(text)`` (a red banner in the window), say what would be
lost on close in ``busy_reason()``, and stop their work in ``shutdown()``.
"""
