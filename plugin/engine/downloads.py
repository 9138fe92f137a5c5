"""Downloading a registry model's checkpoints: resumable, size- and hash-checked, with the free
space checked first (the download half of :class:`plugin.engine.manager.ModelManager`).

Downloads go to ``<model root>/downloads/[<folder>/]<file>.part`` first, resume with HTTP Range
requests after a dropped connection or a cancel, and are renamed to ``<file>`` only once the
sha256 of the bytes on disk checks out; reading stops at the registry's size whatever the server
says, and a ``.part`` that cannot be the start of the right file is discarded and downloaded
again. Where the registry knows no sha256, the first download's hash is recorded
(``downloads/known_hashes.json``) once that file has been converted successfully, later downloads
of the same URL must match it, and ``models remove`` forgets it.
"""

import errno
import http.client
import json
import os
import re
import shutil
import socket
import time
import urllib.error
import urllib.request

from .. import __version__
from .atomic import disk_error, write_json_atomic
from .cancel import check_cancel, raising_check
from .errors import DownloadError
from .model_folder import sha256_file

DOWNLOADS = "downloads"
KNOWN_HASHES = "known_hashes.json"
DOWNLOADING = "downloading"  # prefix of progress messages whose counts are bytes
_CHUNK = 1 << 20
# a conversion writes graphs about the size of the checkpoints, plus the int8 denoiser
CONVERT_SPACE = 1.3
# A download the registry gives no size for is still cut off here (a server streaming forever)
MAX_UNSIZED_DOWNLOAD = 8 << 30
_RETRY_STATUS = (408, 429, 500, 502, 503, 504)
# Socket errors that mean the server cannot be reached at all, and how often each is retried:
# a failed name lookup or a missing network does not heal within seconds; a refused connection
# may (a server restarting), once.
_UNREACHABLE_RETRIES = {errno.ECONNREFUSED: 1, errno.EHOSTUNREACH: 1, errno.ENETUNREACH: 0}


class Downloads:
    """The download methods of the model manager (``self.model_root``, ``timeout_s``,
    ``max_attempts``, ``retry_delay_s``)."""

    timeout_s = 60  # per network operation
    max_attempts = 5  # per file, counting resumed attempts
    retry_delay_s = 2.0  # times the attempt number

    def _vouched_for(self, source):
        return bool(source.get("sha256") or self._known_hashes().get(source["url"]))

    def _download(self, name, source, progress, cancel):
        """(path, sha256 of the file on disk) of the verified downloaded file of model
        ``name``'s registry source."""
        downloads = self.download_folder(source)
        downloads.mkdir(parents=True, exist_ok=True)
        final = downloads / source["file_name"]
        expected = source.get("sha256") or self._known_hashes().get(source["url"])
        hashing = raising_check(cancel, f"checking {source['file_name']}")
        if final.is_file():  # left by an install whose conversion failed or was cancelled
            actual = sha256_file(final, hashing)
            if expected is None or actual == expected:
                return final, actual
            final.unlink()
        part = _PartialFile(downloads / (source["file_name"] + ".part"))
        if source.get("size") and part.size > source["size"]:
            part.discard()  # longer than the file: not a prefix of it
        resumed = part.size > 0
        hashed = None  # the sha256 of a resumed download, when checking it took one
        unreachable = 0
        for attempt in range(1, self.max_attempts + 1):
            try:
                self._fetch(source, part, progress, cancel)
                if resumed:
                    ok, hashed = self._download_ok(source, part, expected, hashing)
                    if not ok:  # the kept .part was not the start of this file: once more from scratch
                        part.discard()
                        resumed, hashed = False, None
                        continue
                break
            except _Unreachable as exc:
                unreachable += 1
                if unreachable > exc.retries or attempt == self.max_attempts:
                    raise DownloadError(
                        f"{source['url']}: cannot reach the server ({exc}); check the internet "
                        f"connection, or {LOCAL_INSTALL_HINT}", "local_files"
                    ) from None
            except _Interrupted as exc:
                if attempt == self.max_attempts:
                    raise DownloadError(
                        f"{source['url']}: download of {source['file_name']} failed after "
                        f"{attempt} attempts ({exc}); run the install again to resume, or "
                        f"{LOCAL_INSTALL_HINT}", "local_files"
                    ) from None
            time.sleep(self.retry_delay_s * attempt)
        sha256 = self._check_download(name, source, part, expected, hashing, hashed)
        os.replace(part.path, final)
        return final, sha256

    def download_folder(self, source):
        """Where a registry source is downloaded: ``downloads/`` or, for sources that share a
        file name (COP-GEN's VAEs), their own official sub-folder of it."""
        return self.model_root / DOWNLOADS / source.get("folder", "")

    def _check_free_space(self, sources, stage, entry):
        """DownloadError before a download or a conversion that would not fit on the disk:
        the files still to download, then graphs about the size of the checkpoints (plus the
        int8 denoiser)."""
        checkpoints = sum(_expected_size(source) for source in entry["sources"].values())
        needed = sum(_expected_size(source) for source in sources) + int(checkpoints * CONVERT_SPACE)
        root = self.model_root
        root.mkdir(parents=True, exist_ok=True)
        free = shutil.disk_usage(root).free
        if free < needed:
            raise DownloadError(
                f"{root}: not enough free space to {stage} the model: it needs about "
                f"{needed / 1e9:.1f} GB, {free / 1e9:.1f} GB are free; free some space or choose "
                "another model folder", "model_dir",
            )

    def _fetch(self, source, part, progress, cancel):
        """One HTTP request: append to ``part`` from its current size to the end of the file."""
        url, file_name = source["url"], source["file_name"]
        message = f"{DOWNLOADING} {file_name}"
        headers = {"User-Agent": f"copgen-beta-qgis/{__version__}"}
        if part.size:
            headers["Range"] = f"bytes={part.size}-"
        try:
            response = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=self.timeout_s)
        except urllib.error.HTTPError as exc:
            if exc.code == 416 and part.size:
                # nothing past what we have: complete if it has the right size, else (a .part
                # longer than the file) not a prefix of it, and downloaded again
                if not source.get("size") or part.size != source["size"]:
                    part.discard()
                    raise _Interrupted("the kept partial download does not fit the file; starting again") from None
                return
            if exc.code in _RETRY_STATUS:
                raise _Interrupted(f"HTTP {exc.code} {exc.reason}") from None
            raise DownloadError(f"{url}: HTTP {exc.code} {exc.reason}") from None
        except (OSError, http.client.HTTPException) as exc:  # URLError is an OSError
            raise _connection_failure(getattr(exc, "reason", exc)) from None
        with response:
            total = _total_size(response, part)
            size = source.get("size")
            if size and total and total != size:
                raise DownloadError(
                    f"{url}: the server offers {total} bytes for {file_name}, the registry expects {size}"
                )
            total = total or size
            limit = size or MAX_UNSIZED_DOWNLOAD
            with part.open() as handle:
                while True:
                    check_cancel(cancel, f"downloading {file_name} (the partial file is kept to resume)")
                    want = min(_CHUNK, limit - part.size + 1)
                    try:
                        data = response.read(want)
                    except (OSError, http.client.HTTPException) as exc:
                        raise _Interrupted(f"connection lost at byte {part.size}: {exc}") from None
                    if not data:
                        break
                    if part.size + len(data) > limit:
                        # without a Content-Length nothing else would stop an endless answer
                        part.discard()
                        listed = "the registry lists" if size else "any checkpoint may have"
                        raise DownloadError(
                            f"{url}: the server sends more than the {limit} bytes {listed} for "
                            f"{file_name}; the download was stopped and deleted"
                        )
                    handle.write(data)
                    if progress:
                        progress(part.size, total, message)
            if total and part.size < total:
                raise _Interrupted(f"connection closed at byte {part.size} of {total}")

    def _download_ok(self, source, part, expected, cancel=None):
        """(whether a resumed download is this file, its sha256 when that was computed)."""
        size = source.get("size")
        if size and part.size != size:
            return False, None
        if not expected:
            return True, None
        actual = sha256_file(part.path, cancel)
        return actual == expected, actual

    def _check_download(self, model, source, part, expected, cancel=None, actual=None):
        """The sha256 of the downloaded bytes as they are on disk (``actual`` when it was just
        taken from them), or DownloadError (and the download deleted) when their size or hash
        is wrong."""
        size, name = source.get("size"), source["file_name"]
        if size and part.size != size:
            part.discard()
            raise DownloadError(f"{source['url']}: {name} has {part.size} bytes, expected {size}; the bad download was deleted")
        actual = actual or sha256_file(part.path, cancel)
        if expected and actual != expected:
            part.discard()
            if source.get("sha256"):
                origin = "the registry's"
                reset = "the file on the server is not the official one; try again later or install from local files"
            else:
                record = self.model_root / DOWNLOADS / KNOWN_HASHES
                origin = f"the one recorded at the first install in {record}"
                reset = (
                    "if the file on the server changed legitimately, forget the recorded hash by deleting "
                    f"that file, or remove the model {model} in every precision (it deletes the model)"
                )
            raise DownloadError(
                f"{source['url']}: checksum mismatch for {name}: expected sha256 {expected} ({origin}), "
                f"got {actual}; the bad download was deleted; {reset}"
            )
        return actual

    def _known_hashes(self):
        try:
            known = json.loads((self.model_root / DOWNLOADS / KNOWN_HASHES).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return known if isinstance(known, dict) else {}

    def _record_hash(self, url, sha256):
        known = self._known_hashes()
        known[url] = sha256
        write_json_atomic(self.model_root / DOWNLOADS / KNOWN_HASHES, known)

    def _forget_hashes(self, urls):
        known = self._known_hashes()
        kept = {url: sha256 for url, sha256 in known.items() if url not in urls}
        if kept != known:
            write_json_atomic(self.model_root / DOWNLOADS / KNOWN_HASHES, kept)
        return kept != known


class _Interrupted(Exception):
    """A transient network failure: the download may resume where it stopped."""


class _Unreachable(_Interrupted):
    """The server cannot be reached at all; worth ``retries`` more tries at most."""

    def __init__(self, message, retries):
        super().__init__(message)
        self.retries = retries


def _connection_failure(reason):
    """The exception for a failed request, from the socket error (or text) behind it."""
    if isinstance(reason, socket.gaierror):
        return _Unreachable(f"the host name cannot be resolved: {reason}", retries=0)
    retries = _UNREACHABLE_RETRIES.get(getattr(reason, "errno", None))
    if retries is not None:
        return _Unreachable(str(reason), retries=retries)
    return _Interrupted(str(reason))


LOCAL_INSTALL_HINT = (
    "download the checkpoints another way and install from local files (the denoiser and VAE "
    "checkpoint files)"
)


class _PartialFile:
    """A ``.part`` download and its size (its hash is taken from the disk once complete)."""

    def __init__(self, path):
        self.path = path
        self.size = path.stat().st_size if path.is_file() else 0

    def discard(self):
        self.path.unlink(missing_ok=True)
        self.size = 0

    def open(self):
        return _Appender(self)


class _Appender:
    def __init__(self, part):
        self._part = part
        self._handle = open(part.path, "ab")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._handle.close()

    def write(self, data):
        try:
            self._handle.write(data)
        except OSError as exc:
            raise disk_error(self._part.path, exc) from None
        self._part.size += len(data)


def _total_size(response, part):
    """The file's full size from a response, restarting ``part`` when the server ignored the
    Range request or answered a different range."""
    if response.status == 206:
        match = re.fullmatch(r"bytes (\d+)-(\d+)/(\d+|\*)", response.headers.get("Content-Range", "").strip())
        if match and int(match.group(1)) == part.size:
            return None if match.group(3) == "*" else int(match.group(3))
        part.discard()
        raise _Interrupted("the server answered a different byte range; starting again")
    if part.size:
        part.discard()  # a plain 200: the whole file comes again
    length = response.headers.get("Content-Length")
    return int(length) if length and length.isdigit() else None


def _expected_size(source):
    """A source's bytes: the registry's size, else its approximate size, else 0."""
    return source.get("size") or source.get("approx_size") or 0
