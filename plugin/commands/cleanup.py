"""Leaving nothing behind: folders a failed command created are removed again."""

from contextlib import contextmanager
from pathlib import Path


@contextmanager
def folders_removed_on_failure(folder):
    """On failure, remove the folders of ``folder``'s path that did not exist before, deepest
    first and only while empty (the run has removed its own partial files by then)."""
    folder = Path(folder).absolute()
    created = [path for path in (folder, *folder.parents) if not path.exists()]
    try:
        yield
    except BaseException:
        for path in created:
            try:
                path.rmdir()
            except OSError:
                break
        raise
