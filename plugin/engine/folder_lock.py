"""One writer at a time per folder: an exclusive OS lock on a lock file inside it.

The lock file holds its owner's process id and host, so the refusal names who holds it. The
operating system drops the lock when its process ends, however it ends, so a lock left by a
killed run is simply taken: no stale lock ever needs deleting by hand.
"""

import os
import socket
from pathlib import Path

from .errors import CopGenError


class FolderLock:
    """``with FolderLock(folder, name, "an installation", ModelError):`` holds ``folder/name``
    or raises ``error`` (one line naming the owner and the lock file) when another process does.
    ``field``: the error's field (the option naming the folder)."""

    def __init__(self, folder, name, what, error=CopGenError, field=None):
        self.path = Path(folder) / name
        self.what = what
        self.error = error
        self.field = field
        self._handle = None

    def __enter__(self):
        try:
            return self._take()
        except OSError as exc:  # a read-only folder, a file in the way
            raise self.error(f"{self.path.parent}: cannot write in this folder ({exc.strerror or exc})", self.field) from None

    def _take(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(5):
            handle = open(self.path, "a+", encoding="utf-8")
            if not _try_lock(handle):
                handle.seek(0)
                owner = handle.read().strip()[:80] or "unknown"
                handle.close()
                raise self.error(
                    f"{self.path.parent}: {self.what} is running in this folder "
                    f"(process {owner}, lock file {self.path}); wait for it to finish", self.field
                )
            if _same_file(handle, self.path):
                break
            handle.close()  # locked a file its owner had just removed: lock the new one
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()} on {socket.gethostname()}")
        handle.flush()
        self._handle = handle
        return self

    def __exit__(self, *exc):
        handle, self._handle = self._handle, None
        if os.name != "nt":
            self.path.unlink(missing_ok=True)  # still locked: nobody can hold the removed file
        handle.close()  # releases the lock
        if os.name == "nt":
            try:
                self.path.unlink()
            except OSError:
                pass  # opened by another run in the meantime: it will lock it


def _same_file(handle, path):
    try:
        return os.path.samestat(os.fstat(handle.fileno()), os.stat(path))
    except OSError:
        return False


def _try_lock(handle):
    try:
        if os.name == "nt":
            import msvcrt

            handle.seek(0)
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
        else:
            import fcntl

            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True
