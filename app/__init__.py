"""The neurodeck application: CLI, session runtime and the PyQt6 GUI (in ``app.ui``)."""
from __future__ import annotations

__version__ = "0.1.0"
