"""Errors of the app layer that every front end (CLI, GUI, demo) shows as one line."""
from __future__ import annotations


class UserError(Exception):
    """A problem with what the user asked for (bad flag value, missing file, ...).

    The CLI prints it as ``neurodeck COMMAND: error: MESSAGE`` and exits with status 2; the GUI
    shows the message in a banner.
    """
