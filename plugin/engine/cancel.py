"""The one cancel check: every long loop polls the caller's ``cancel()`` through it."""

from .errors import Cancelled


def check_cancel(cancel, what):
    """Raise Cancelled("cancelled while <what>") when ``cancel`` is given and returns True.

    ``cancel``: None or a callable without arguments (QGIS feedback.isCanceled, a threading
    Event's is_set...), polled between units of work so a stop is prompt and clean.
    """
    if cancel is not None and cancel():
        raise Cancelled(f"cancelled while {what}")
