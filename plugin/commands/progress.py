"""A text progress bar for the commands: ``progress(done, total, message)`` callbacks."""

import time

class ProgressBar:
    """``progress(done, total, message)`` drawn as one updating line per message on a
    terminal, or one line per message and finish elsewhere (logs stay short)."""

    WIDTH = 30

    def __init__(self, stream):
        self._stream = stream
        self._tty = stream.isatty()
        self._message = None
        self._last_draw = 0.0

    def __call__(self, done, total, message):
        from ..engine.downloads import DOWNLOADING

        new = message != self._message
        if new and self._tty and self._message is not None:
            self._stream.write("\n")  # keep the finished line, start the next one
        self._message = message
        finished = total is not None and done >= total
        if not (self._tty or new or finished):
            return
        now = time.monotonic()
        if self._tty and not (new or finished) and now - self._last_draw < 0.1:
            return
        self._last_draw = now
        as_bytes = message.startswith(DOWNLOADING)
        count = f"{done / 1e6:.1f}/{total / 1e6:.1f} MB" if as_bytes and total else (
            f"{done / 1e6:.1f} MB" if as_bytes else f"{done}/{total}")
        if done == 0 and new:
            # nothing done yet: the message alone (the run's estimate is a sentence, not a stage)
            self._stream.write(("\r" + message) if self._tty else (message + "\n"))
            self._stream.flush()
            return
        bar = ""
        if total:
            filled = int(self.WIDTH * min(done, total) / total)
            bar = f"[{'#' * filled}{'.' * (self.WIDTH - filled)}] {100 * min(done, total) // total:3d}% "
        line = f"{message} {bar}{count}"
        self._stream.write(("\r" + line) if self._tty else (line + "\n"))
        self._stream.flush()

    def note(self, message):
        """A line of its own (a warning) that the bar does not overwrite."""
        if self._tty and self._message is not None:
            self._stream.write("\n")
            self._message = None  # the next progress call starts a fresh line
        self._stream.write(message + "\n")
        self._stream.flush()

    def close(self):
        if self._tty and self._message is not None:
            self._stream.write("\n")
            self._stream.flush()
