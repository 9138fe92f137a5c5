"""Installed models: official sources (models/registry.json), downloads, conversion, checks.

A model is installed as ``<model root>/<name>`` (fp32) or ``<model root>/<name>-fp16``: the
folder :func:`plugin.engine.convert.convert` writes. Downloads go to
``<model root>/downloads/<file>.part`` first, resume with HTTP Range requests after a dropped
connection or a cancel, and are renamed to ``<file>`` only once the sha256 of the bytes on disk
checks out; reading stops at the registry's size whatever the server says, and a ``.part`` that
cannot be the start of the right file is discarded and downloaded again. Where the registry knows
no sha256, the first download's hash is recorded (``downloads/known_hashes.json``) once that
file has been converted successfully, later downloads of the same URL must match it, and
``models remove`` forgets it. One install runs at a time per model root: ``.install.lock``
names the process holding it, and the operating system releases it when that process ends.

Local checkpoint files must match the registry's sha256 too, unless the caller allows an
unofficial model; each installed folder keeps an install record (``install.json``, beside
model.json) saying per checkpoint where it came from and whether it is the official file, so that
:meth:`ModelManager.verify` tells an unofficial model from a damaged one.
"""

import errno
import http.client
import json
import os
import re
import shutil
import socket
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from .. import __version__
from .atomic import disk_error, remove_leftovers, temp_sibling, write_json_atomic
from .folder_lock import FolderLock
from .cancel import check_cancel
from .errors import CheckpointError, DownloadError, InputError, ModelError
from .families import BETA, FAMILIES, family, family_name
from .model_folder import INFO_FILE, REINSTALL_HINT, check_graph_role, read_info, sha256_file
from .precision import FOLDER_PRECISIONS

MODEL_DIR_ENV = "COPGEN_MODEL_DIR"
REGISTRY_FILE = Path(__file__).resolve().parents[2] / "models" / "registry.json"
DENOISER_ROLE = "denoiser"
PRECISIONS = FOLDER_PRECISIONS  # an installed folder's graphs (see plugin.engine.precision)
INSTALL_RECORD = "install.json"
DOWNLOADS = "downloads"
KNOWN_HASHES = "known_hashes.json"
LOCK_FILE = ".install.lock"
DOWNLOADING = "downloading"  # prefix of progress messages whose counts are bytes
_CHUNK = 1 << 20
# a conversion writes graphs about the size of the checkpoints, plus the int8 denoiser
CONVERT_SPACE = 1.3
# A download the registry gives no size for is still cut off here (a server streaming forever)
MAX_UNSIZED_DOWNLOAD = 8 << 30
_SHA256 = re.compile(r"[0-9a-f]{64}")
_RETRY_STATUS = (408, 429, 500, 502, 503, 504)
_REINSTALL = REINSTALL_HINT
# Socket errors that mean the server cannot be reached at all, and how often each is retried:
# a failed name lookup or a missing network does not heal within seconds; a refused connection
# may (a server restarting), once.
_UNREACHABLE_RETRIES = {errno.ECONNREFUSED: 1, errno.EHOSTUNREACH: 1, errno.ENETUNREACH: 0}


def default_model_root():
    """$COPGEN_MODEL_DIR, else the per-user data folder of this platform (never the plugin's)."""
    configured = os.environ.get(MODEL_DIR_ENV, "").strip()
    if configured:
        return Path(configured).expanduser()
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "copgen-beta" / "models"


def load_registry(source=None):
    """The registry as a dict, from a file path (default: models/registry.json) or a dict,
    checked so that later code can rely on its shape. Raises InputError naming file and key."""
    if isinstance(source, dict):
        origin, registry = "registry", source
    else:
        origin = Path(source) if source else REGISTRY_FILE
        try:
            registry = json.loads(Path(origin).read_text(encoding="utf-8"))
        except OSError as exc:
            raise InputError(f"{origin}: cannot read the model registry ({exc.strerror or exc})") from None
        except ValueError as exc:
            raise InputError(f"{origin}: the model registry is not valid JSON ({exc})") from None
    models = registry.get("models") if isinstance(registry, dict) else None
    if not isinstance(models, dict) or not models:
        raise InputError(f"{origin}: the model registry lists no models (key 'models')")
    for name, entry in models.items():
        _check_entry(origin, name, entry)
    return registry


def _check_entry(origin, name, entry):
    where = f"{origin}: models.{name}"
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        raise InputError(f"{where}: a model name may only use letters, digits, '.', '_' and '-'")
    heads = entry.get("num_heads", 16) if isinstance(entry, dict) else None
    if isinstance(heads, bool) or not isinstance(heads, int) or heads < 1:
        raise InputError(f"{where}.num_heads must be a positive whole number")
    if entry.get("family", BETA) not in FAMILIES:
        raise InputError(f"{where}.family must be one of {', '.join(FAMILIES)}")
    sources = entry.get("sources")
    expected = family(entry.get("family", BETA)).checkpoint_roles()
    for role in expected:
        source = sources.get(role) if isinstance(sources, dict) else None
        if not isinstance(source, dict):
            raise InputError(f"{where}.sources.{role} is missing")
        file_name, url = source.get("file_name"), source.get("url")
        if not _plain_name(file_name):
            raise InputError(f"{where}.sources.{role}.file_name must be a plain file name")
        folder = source.get("folder")
        if folder is not None and not (isinstance(folder, str) and all(map(_plain_name, folder.split("/")))):
            raise InputError(f"{where}.sources.{role}.folder must be a relative folder of plain names")
        if not isinstance(url, str) or not url.startswith(("https://", "http://")):
            raise InputError(f"{where}.sources.{role}.url must be an http(s) URL")
        sha256 = source.get("sha256")
        if sha256 is not None and not (isinstance(sha256, str) and _SHA256.fullmatch(sha256)):
            raise InputError(f"{where}.sources.{role}.sha256 must be 64 lower-case hex digits or null")
        size = source.get("size")
        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size <= 0):
            raise InputError(f"{where}.sources.{role}.size must be a positive number of bytes or null")
    unknown = sorted(set(sources) - set(expected))
    if unknown:
        raise InputError(f"{where}.sources.{unknown[0]} is not a checkpoint of a {entry.get('family', BETA)} model")


def _plain_name(name):
    return isinstance(name, str) and bool(name) and Path(name).name == name and name[0] != "."


def _roles(entry):
    """The checkpoint roles of a registry entry: the denoiser's, then its VAEs'."""
    return tuple(entry["sources"])


class ModelManager:
    """Lists, installs, checks and removes models under one model root."""

    timeout_s = 60  # per network operation
    max_attempts = 5  # per file, counting resumed attempts
    retry_delay_s = 2.0  # times the attempt number

    def __init__(self, model_root=None, registry=None):
        self.model_root = Path(model_root) if model_root else default_model_root()
        self.registry = load_registry(registry)

    # -- queries ----------------------------------------------------------------------------

    def names(self):
        return list(self.registry["models"])

    def list(self):
        """One dict per registry model: name, title, and per precision its folder and
        whether it is installed."""
        return [
            {
                "name": name,
                "title": entry.get("title", name),
                "precisions": {
                    precision: {
                        "installed": self._installed(self.model_dir(name, precision)),
                        "path": self.model_dir(name, precision),
                    }
                    for precision in PRECISIONS
                },
            }
            for name, entry in self.registry["models"].items()
        ]

    def model_dir(self, name, precision="fp32"):
        self._entry(name)
        _check_precision(precision)
        return self.model_root / (name if precision == "fp32" else f"{name}-{precision}")

    # -- install ----------------------------------------------------------------------------

    def install(self, name, precision="fp32", progress=None, cancel=None, local_files=None, allow_unofficial=False,
                heads=None):
        """Download (or take ``local_files``: {"denoiser": path, "vae": path} for COP-GEN-Beta,
        {"denoiser": path, "vae_dir": folder} for COP-GEN), check, convert and install a model;
        returns its folder.

        A local file whose sha256 differs from the one the registry lists for its role is
        refused with InputError, unless ``allow_unofficial`` is True: then the model is
        installed and its install record marks it unofficial. ``heads``: the denoiser's attention
        heads, for such checkpoints only (default: the registry's ``num_heads``).

        ``progress(done, total, message)``: bytes while the message starts with "downloading",
        conversion steps after; ``total`` may be None. ``cancel()`` returning True stops the
        install with :class:`Cancelled` (a partial download is kept to resume).
        Downloaded checkpoints are deleted once the model is installed. An installed model
        is left as it is (remove it first to install it again)."""
        entry = self._entry(name)
        if heads is not None and not (allow_unofficial and local_files):
            raise InputError("only for local checkpoints installed as unofficial (official ones have "
                             f"{entry.get('num_heads', 16)} heads)", "heads")
        folder = self.model_dir(name, precision)
        if self._installed(folder):
            if progress:
                progress(1, 1, f"{name} ({precision}) is already installed in {folder}")
            return folder
        with InstallLock(self.model_root):
            if self._installed(folder):  # installed by the process that held the lock
                return folder
            remove_leftovers(self.model_root)  # of installs killed before they could clean up
            remove_leftovers(self.model_root / DOWNLOADS)
            return self._install(name, entry, folder, precision, progress, cancel, local_files, allow_unofficial,
                                 heads)

    def _install(self, name, entry, folder, precision, progress, cancel, local_files, allow_unofficial, heads=None):
        from .convert import convert

        roles, model_family = _roles(entry), family(entry.get("family", BETA))
        local = model_family.local_checkpoints(local_files or {})
        checkpoints, official, origins, hashes = {}, {}, {}, {}
        # local files first: a refused one must not wait for a 1 GB download of the other
        for role, path in local.items():
            checkpoints[role], origins[role] = path, "local"
            official[role], hashes[role] = _check_local(
                role, path, entry["sources"][role], allow_unofficial, progress, cancel
            )
        missing = [role for role in roles if role not in checkpoints]
        self._check_free_space([entry["sources"][role] for role in missing], "download", entry)
        for role in missing:
            source = entry["sources"][role]
            checkpoints[role], hashes[role] = self._download(name, source, progress, cancel)
            origins[role] = "download"
            official[role] = True  # the registry's own source, checked as far as it can be
        self._check_free_space([], "convert", entry)

        def convert_progress(done, total, message):
            check_cancel(cancel, f"installing {name}")
            if progress:
                progress(done, total, message)

        try:
            vae_path, vae_dir = model_family.convert_inputs(checkpoints)
            out_dir = convert(
                checkpoints[DENOISER_ROLE],
                vae_path,
                folder,
                vae_dir=vae_dir,
                heads=heads or entry.get("num_heads", 16),
                # fp32 folders also get the int8 denoiser: the fast CPU path, chosen at run time
                precision="int8" if precision == "fp32" else precision,
                progress=convert_progress,
                known_sha256=hashes,  # already computed here: a 1.15 GB file is not read twice
                cancel=cancel,
            )
        except CheckpointError:
            # a download nothing vouched for (no published sha256, none recorded) that is not
            # a checkpoint, e.g. a captive portal's page: deleted, so the next install fetches
            # it again instead of trusting it
            for role in roles:
                source = entry["sources"][role]
                if origins[role] == "download" and not self._vouched_for(source):
                    checkpoints[role].unlink(missing_ok=True)
            raise
        _write_install_record(out_dir, name, official, origins)
        for role in roles:  # trust on first use, only for a file that converted
            source = entry["sources"][role]
            if origins[role] == "download" and not self._vouched_for(source):
                self._record_hash(source["url"], hashes[role])
        for role in roles:
            if origins[role] == "download":
                try:
                    checkpoints[role].unlink()
                except OSError:  # e.g. still mapped on Windows: harmless, reused or removed later
                    pass
        return out_dir

    def _vouched_for(self, source):
        return bool(source.get("sha256") or self._known_hashes().get(source["url"]))

    def _download(self, name, source, progress, cancel):
        """(path, sha256 of the file on disk) of the verified downloaded file of model
        ``name``'s registry source."""
        downloads = self.download_folder(source)
        downloads.mkdir(parents=True, exist_ok=True)
        final = downloads / source["file_name"]
        expected = source.get("sha256") or self._known_hashes().get(source["url"])
        hashing = _raising(cancel, f"checking {source['file_name']}")
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

    # -- remove / verify --------------------------------------------------------------------

    def remove(self, name, precision=None):
        """Delete the installed folder of one precision, or of all precisions and any partial
        downloads of the model and the hashes learned for it when ``precision`` is None (then
        the known-hashes file is among the returned paths); returns the removed paths. Refused
        while an install runs in the same model root (it may be writing those files)."""
        entry = self._entry(name)
        precisions = PRECISIONS if precision is None else (_check_precision(precision),)
        if not self.model_root.is_dir():
            raise ModelError(f"{name} is not installed in {self.model_root}")
        with InstallLock(self.model_root):
            return self._remove(name, entry, precisions, precision)

    def _remove(self, name, entry, precisions, precision):
        removed = []
        for each in precisions:
            folder = self.model_dir(name, each)
            if folder.exists():
                _remove_tree(folder)
                removed.append(folder)
        if precision is None:
            for source in entry["sources"].values():
                for file_name in (source["file_name"], source["file_name"] + ".part"):
                    path = self.download_folder(source) / file_name
                    if path.is_file():
                        path.unlink()
                        removed.append(path)
            # hashes learned on first use go with the model: a reinstall learns them again
            if self._forget_hashes({source["url"] for source in entry["sources"].values()}):
                removed.append(self.model_root / DOWNLOADS / KNOWN_HASHES)  # entries of it
        if not removed:
            raise ModelError(f"{name} is not installed in {self.model_root}")
        return removed

    def verify(self, name, precision="fp32"):
        """Re-hash an installed model's files against its model.json, and check the checkpoints
        it was converted from against the registry's sha256 (or, for a download, the hash
        recorded at the first download), whatever their file names.

        Returns ``{"model_dir", "files", "sources": {role: {"file", "sha256", "status"}},
        "unofficial"}``; status is "official", "unverified" (nothing to compare with) or
        "unofficial" (installed on purpose with allow_unofficial). Raises ModelError naming
        the first file that does not match."""
        entry = self._entry(name)
        folder = self.model_dir(name, precision)
        info = _read_info(folder)
        files = info.get("files")
        if not isinstance(files, dict) or not files:
            raise ModelError(f"{folder / INFO_FILE}: lists no files to check (key 'files')")
        _check_graph_files(folder, info, files, family(family_name(info)))
        for file_name, record in files.items():
            path = folder / file_name
            if not path.is_file():
                raise ModelError(f"{path}: missing; {_REINSTALL}")
            actual = sha256_file(path)
            if actual != record.get("sha256"):
                raise ModelError(
                    f"{path}: sha256 {actual} does not match {record.get('sha256')} recorded at "
                    f"install; the file was changed or damaged: {_REINSTALL}"
                )
        known = self._known_hashes()
        noted = _read_install_record(folder).get("sources", {})
        used_sources = info.get("sources") if isinstance(info.get("sources"), dict) else {}
        sources = {}
        for role in _roles(entry):
            official = entry["sources"][role]
            used = used_sources.get(role) if isinstance(used_sources.get(role), dict) else {}
            note = noted.get(role) if isinstance(noted.get(role), dict) else {}
            expected = official.get("sha256")
            if expected is None and note.get("origin") == "download":
                expected = known.get(official["url"])
            if expected is None:
                status = "unverified"
            elif used.get("sha256") == expected:
                status = "official"
            elif note.get("official") is False and note.get("sha256") == used.get("sha256"):
                status = "unofficial"
            else:
                raise ModelError(
                    f"{folder}: converted from a {role} checkpoint {used.get('file')} with sha256 "
                    f"{used.get('sha256')}, not the official {official['file_name']} ({expected}); "
                    "install the official file, or reinstall allowing unofficial checkpoints to keep this one",
                    "allow_unofficial",
                )
            sources[role] = {"file": used.get("file"), "sha256": used.get("sha256"), "status": status}
        return {
            "model_dir": folder,
            "files": sorted(files),
            "sources": sources,
            "unofficial": any(source["status"] == "unofficial" for source in sources.values()),
        }

    # -- helpers ----------------------------------------------------------------------------

    def _entry(self, name):
        entry = self.registry["models"].get(name)
        if entry is None:
            raise InputError(f"unknown model {name!r}; the registry lists: {', '.join(self.names())}")
        return entry

    @staticmethod
    def _installed(folder):
        return (folder / INFO_FILE).is_file()


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


def _check_local(role, path, source, allow_unofficial, progress, cancel=None):
    """(official, sha256) of a local checkpoint. official: True, None when the registry lists no
    sha256 to compare with (then the file is not hashed here: sha256 None), False when it
    differs and ``allow_unofficial``; else InputError."""
    expected = source.get("sha256")
    if expected is None:
        return None, None
    if progress:
        progress(0, 1, f"checking {path.name} against the registry's sha256")
    actual = sha256_file(path, _raising(cancel, f"checking {path.name}"))
    if actual == expected:
        return True, actual
    if not allow_unofficial:
        raise InputError(
            f"{role} checkpoint {path}: sha256 {actual} differs from the official {source['file_name']} "
            f"(sha256 {expected}); use the official file, or allow unofficial checkpoints to install "
            "this checkpoint as an unofficial model", "allow_unofficial"
        )
    return False, actual


def _check_graph_files(folder, info, files, model_family):
    """Every graph file the model needs (and every graph or weights file in the folder) is listed
    in model.json with a sha256, and each graph has the inputs and outputs of its role."""
    import onnx

    from .quantize import INT8_DATA_FILE, INT8_FILE, INT8_KEY

    graph_roles = model_family.graph_roles()
    needed = set(graph_roles)
    if (folder / "denoiser.onnx.data").exists():
        needed.add("denoiser.onnx.data")
    if INT8_KEY in info:
        needed |= {INT8_FILE, INT8_DATA_FILE}
    present = {p.name for p in folder.iterdir() if p.name.endswith((".onnx", ".onnx.data"))}
    info_path = folder / INFO_FILE
    for name in sorted(needed | present):
        record = files.get(name)
        if not isinstance(record, dict) or not _SHA256.fullmatch(str(record.get("sha256"))):
            raise ModelError(
                f"{folder / name}: {'needed by the model but ' if name in needed else ''}not listed with a "
                f"sha256 in {info_path}, so it cannot be checked; {_REINSTALL}"
            )
    for name, expected in graph_roles.items():
        path = folder / name
        try:
            graph = onnx.load(str(path), load_external_data=False).graph
        except Exception as exc:  # protobuf's DecodeError and friends: a damaged file
            raise ModelError(f"{path}: not a readable ONNX graph ({type(exc).__name__}); {_REINSTALL}") from None
        check_graph_role(name, [i.name for i in graph.input], [o.name for o in graph.output], path, expected)


def _write_install_record(folder, name, official, origins):
    """install.json beside model.json, with the checkpoint hashes convert recorded there; if it
    cannot be written the model is removed again, so no model lacks its record."""
    try:
        used = _read_info(folder)["sources"]
        sources = {
            role: {**used[role], "origin": origins[role], "official": official[role]} for role in origins
        }
        record = {"model": name, "unofficial": any(v is False for v in official.values()), "sources": sources}
        write_json_atomic(folder / INSTALL_RECORD, record)
    except BaseException:
        _remove_tree(folder)
        raise


def _read_install_record(folder):
    """The install record, or {} for a folder converted without one (nothing was allowed)."""
    try:
        record = json.loads((folder / INSTALL_RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(record, dict) or not isinstance(record.get("sources"), dict):
        return {}
    return record


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


class InstallLock(FolderLock):
    """One install at a time per model root: ``<root>/.install.lock`` (see FolderLock)."""

    def __init__(self, model_root):
        super().__init__(model_root, LOCK_FILE, "another installation", ModelError)


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


def _check_precision(precision):
    if precision not in PRECISIONS:
        raise InputError(f"precision={precision!r}; expected one of {', '.join(PRECISIONS)}")
    return precision


def _raising(cancel, what):
    """``cancel`` as a check that raises Cancelled naming ``what`` (for readers that poll)."""
    if cancel is None:
        return None

    def check():
        check_cancel(cancel, what)
        return False

    return check


def _read_info(folder):
    if not (folder / INFO_FILE).is_file():
        raise ModelError(f"{folder}: no installed model here (missing {INFO_FILE}); install it first")
    return read_info(folder / INFO_FILE)



def _remove_tree(folder):
    """Rename first, so a folder never looks half-installed while it is being deleted."""
    doomed = temp_sibling(folder, ".removing")  # a leftover if killed: removed by a later run
    try:
        folder.rename(doomed)
    except OSError as exc:
        raise ModelError(f"{folder}: cannot remove it ({exc.strerror or exc}); close what uses the model") from None
    shutil.rmtree(doomed, ignore_errors=True)
