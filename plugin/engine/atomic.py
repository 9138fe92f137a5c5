"""THE way files and folders a user relies on are written: complete, checked, then renamed.

Everything is written under a temporary sibling of its destination, named
``.<final name>.<pid>-<host><random>.partial`` (plus suffixes a writer adds: ``.work.tif``,
``.aux.xml``), so that a leftover of a run killed with kill -9 or a power cut is recognisable,
names the process that owned it, and can be removed by the next run writing into the same folder
(:func:`remove_leftovers`) while the partials of a run still alive are left alone. ``<host>``
(4 hex digits of the machine's name) keeps a run from judging the processes of another machine
sharing the folder (a network drive): only its own machine's leftovers are removed.

On success the temporary file is flushed to disk (fsync), checked by the caller's ``verify``
callback (e.g. reopen and read a GeoTIFF) and only then renamed into place; on any failure,
cancel (KeyboardInterrupt, Cancelled) included, it is removed. A full disk becomes one
:class:`WriteError` line naming the destination.
"""

import errno
import hashlib
import json
import os
import re
import shutil
import socket
import uuid
from contextlib import contextmanager
from pathlib import Path

from .errors import CopGenError

PARTIAL = ".partial"
NAME_MAX = 255  # bytes of a file name on every usual file system
SUFFIX_ROOM = 32  # what writers append to a temporary name (".work.tif", ".aux.xml", ".msk")
# .<name>.<pid>-<4 hex host><6 hex random>.partial[.anything]
_LEFTOVER = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)-(?P<host>[0-9a-f]{4})[0-9a-f]{6}\.partial(?:\..*)?$")
_HOST = hashlib.sha256(socket.gethostname().encode("utf-8", "replace")).hexdigest()[:4]


class WriteError(CopGenError):
    """A file could not be written (disk full, no permission, failed check); nothing was left."""


def temp_sibling(final, suffix=""):
    """A fresh temporary name beside ``final``, marked with this process's id. A long final name
    is clipped in it (the marker is what counts), so a name near the file system's limit still
    has room for the marker and what writers append."""
    final = Path(final)
    marker = f".{os.getpid()}-{_HOST}{uuid.uuid4().hex[:6]}{PARTIAL}{suffix}"
    room = NAME_MAX - SUFFIX_ROOM - len(marker.encode("utf-8")) - 1
    name = final.name.encode("utf-8")[:room].decode("utf-8", "ignore")
    return final.with_name(f".{name}{marker}")


def check_name_length(final):
    """WriteError naming ``final`` (the user's path) when its file name is longer than file
    systems allow, before anything is written."""
    size = len(Path(final).name.encode("utf-8"))
    if size > NAME_MAX:
        raise WriteError(f"cannot write {final}: its file name has {size} bytes, more than file systems allow "
                         f"({NAME_MAX}); choose a shorter name")


@contextmanager
def atomic_path(final, verify=None):
    """Yield a temporary sibling path of ``final`` for the caller to write a file to; when the
    block ends normally the file is fsynced, ``verify(temp_path)`` is called (it raises to
    refuse the file) and the file is renamed to ``final``. Any failure removes it (and the
    siblings whose names start with its name, such as GDAL's ``.aux.xml``)."""
    final = Path(final)
    _make_parent(final)
    temp = temp_sibling(final)
    try:
        with translate_os_errors(final):
            yield temp
            _fsync_file(temp)
            if verify is not None:
                verify(temp)
            os.replace(temp, final)
            _fsync_dir(final.parent)
    except BaseException:
        remove_temp(temp)
        raise
    finally:
        _remove_derived(temp)


@contextmanager
def atomic_dir(final, verify=None):
    """Yield a temporary sibling folder of ``final`` to fill; on success its files are fsynced,
    ``verify(temp_dir)`` is called, and it replaces ``final`` (an existing folder is swapped out
    and deleted only once the new one is in place). Any failure removes the temporary folder."""
    final = Path(final)
    with _temp_folder(final) as temp:
        yield temp
        _fsync_files(temp.rglob("*"))
        if verify is not None:
            verify(temp)
        _replace_dir(temp, final)
        _fsync_dir(final.parent)


@contextmanager
def atomic_files(final, verify=None):
    """:func:`atomic_path` for writers that put sidecar files beside their file (a Shapefile's
    ``.shx``, ``.dbf``, ``.prj``): yield a path with ``final``'s name inside a temporary sibling
    folder; when the block ends normally every file there is fsynced, ``verify(path)`` is called,
    and each file is renamed into ``final``'s folder, ``final`` itself last (so it is never found
    without its sidecars). Any failure removes the temporary folder."""
    final = Path(final)
    with _temp_folder(final) as temp:
        path = temp / final.name
        yield path
        files = sorted(temp.iterdir(), key=lambda entry: entry == path)
        _fsync_files(files)
        if verify is not None:
            verify(path)
        for entry in files:
            os.replace(entry, final.parent / entry.name)
        _fsync_dir(final.parent)


def move_into_place(moves):
    """Rename finished, checked files to their final names, in the order given (the file that
    vouches for the others last), then make the renames durable. ``moves``: (source, final)
    pairs on one file system, the sources written by a temporary folder's owner."""
    folders = set()
    for source, final in moves:
        with translate_os_errors(final):
            os.replace(source, final)
        folders.add(Path(final).parent)
    for folder in folders:
        _fsync_dir(folder)


@contextmanager
def _temp_folder(final):
    """A fresh temporary sibling folder of ``final`` (a Path), removed when the block ends
    unless it was renamed; OSError inside is one WriteError line."""
    _make_parent(final)
    temp = temp_sibling(final)
    temp.mkdir()
    try:
        with translate_os_errors(final):
            yield temp
    finally:
        shutil.rmtree(temp, ignore_errors=True)


def write_json_atomic(path, data):
    """Write ``data`` as JSON to ``path`` atomically; the written text is read back and parsed
    before the rename."""

    def verify(temp):
        if json.loads(temp.read_text(encoding="utf-8")) != json.loads(json.dumps(data)):
            raise WriteError(f"cannot write {path}: the file read back differs from what was written")

    with atomic_path(path, verify=verify) as temp:
        with open(temp, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2)
            handle.write("\n")
    return Path(path)


@contextmanager
def translate_os_errors(final):
    """OSError from writing ``final`` -> one WriteError line (disk full named as such)."""
    try:
        yield
    except OSError as exc:
        raise disk_error(final, exc) from None


def disk_error(final, exc):
    if getattr(exc, "errno", None) in (errno.ENOSPC, errno.EDQUOT):
        return WriteError(f"disk full: cannot write {final} (no space left on the device); nothing was written")
    reason = exc.strerror or str(exc)
    return WriteError(f"cannot write {final} ({reason}); nothing was written")


def remove_temp(temp):
    temp = Path(temp)
    if temp.is_dir() and not temp.is_symlink():
        shutil.rmtree(temp, ignore_errors=True)
    else:
        try:
            temp.unlink()
        except FileNotFoundError:
            pass
        except OSError:
            pass
    _remove_derived(temp)


def _remove_derived(temp):
    """Siblings a writer derived from the temporary name (``<temp>.aux.xml``, ``<temp>.msk``)."""
    try:
        for entry in temp.parent.iterdir():
            if entry.name.startswith(temp.name + ".") and entry.name != temp.name:
                remove_temp(entry)
    except OSError:
        pass


def check_not_input(outputs, inputs, what="output"):
    """WriteError when one of ``outputs`` is one of ``inputs``: the same path, or the same file
    reached through a link (a command never writes over what it reads)."""
    for output in outputs:
        output = Path(output)
        for source in inputs:
            if source is None:
                continue
            source = Path(source)
            same = os.path.abspath(output) == os.path.abspath(source)
            try:
                same = same or (output.exists() and os.path.samefile(output, source))
            except OSError:
                pass
            if same:
                raise WriteError(
                    f"{what} {output} is the input {source}; it would be overwritten: choose another output"
                )


# -- leftovers of killed runs -------------------------------------------------------------------


def leftover_owner(name):
    """The process id in a temporary name made by :func:`temp_sibling` on this machine, or None
    (not such a name, or made on another machine)."""
    match = _LEFTOVER.match(name)
    return int(match.group("pid")) if match and match.group("host") == _HOST else None


def process_alive(pid):
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    except OSError:
        return True  # cannot tell: keep its files
    return True


def remove_leftovers(folder):
    """Remove the temporary files and folders in ``folder`` left by runs that are no longer
    alive (see the module docstring); returns the removed paths. Partials of live runs, and
    anything not named by :func:`temp_sibling`, are left alone."""
    folder = Path(folder)
    removed = []
    try:
        entries = list(folder.iterdir())
    except OSError:
        return removed
    for entry in entries:
        pid = leftover_owner(entry.name)
        if pid is None or process_alive(pid):
            continue
        remove_temp(entry)
        if not os.path.lexists(entry):
            removed.append(entry)
    return removed


# -- helpers -------------------------------------------------------------------------------------


def _make_parent(final):
    check_name_length(final)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise disk_error(final, exc) from None


def _fsync_files(entries):
    for entry in entries:
        if entry.is_file():
            _fsync_file(entry)


def _fsync_file(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(folder):
    if os.name != "posix":
        return  # directories cannot be opened for fsync on Windows
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _replace_dir(temp, final):
    if not final.exists():
        temp.rename(final)
        return
    old = temp_sibling(final, ".old")
    final.rename(old)
    try:
        temp.rename(final)
    except BaseException:
        old.rename(final)
        raise
    shutil.rmtree(old, ignore_errors=True)
