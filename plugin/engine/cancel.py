"""The one cancel check: every long loop polls the caller's ``cancel()`` through it."""

import threading

from .errors import Cancelled


def check_cancel(cancel, what):
    """Raise Cancelled("cancelled while <what>") when ``cancel`` is given and returns True.

    ``cancel``: None or a callable without arguments (QGIS feedback.isCanceled, a threading
    Event's is_set...), polled between units of work so a stop is prompt and clean.
    """
    if cancel is not None and cancel():
        raise Cancelled(f"cancelled while {what}")


def interruptible(call, *args, poll_s=0.1):
    """``call(*args)`` in a helper thread while this thread waits, so Ctrl-C and SIGTERM (raised
    in the main thread between waits) stop the caller at once, even while ``call`` runs for
    minutes inside one C function that releases the GIL (a GEOS union of 100 000 polygons).
    The abandoned call finishes or dies with the process; use it only for pure computations."""
    outcome = {}

    def run():
        try:
            outcome["value"] = call(*args)
        except BaseException as exc:  # noqa: BLE001 (handed to the waiting thread)
            outcome["error"] = exc

    thread = threading.Thread(target=run, name="copgen-interruptible", daemon=True)
    thread.start()
    while thread.is_alive():
        thread.join(poll_s)
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def raising_check(cancel, what):
    """``cancel`` as a check that raises Cancelled naming ``what`` (for readers that poll)."""
    if cancel is None:
        return None

    def check():
        check_cancel(cancel, what)
        return False

    return check
