"""Installed models: official sources (:mod:`.model_registry`), downloads (:mod:`.downloads`),
conversion, checks.

A model is installed as ``<model root>/<name>`` (fp32) or ``<model root>/<name>-fp16``: the
folder :func:`plugin.engine.convert.convert` writes, from downloaded checkpoints or local files.
One install runs at a time per model root: ``.install.lock`` names the process holding it, and
the operating system releases it when that process ends.

Local checkpoint files must match the registry's sha256 too, unless the caller allows an
unofficial model; each installed folder keeps an install record (``install.json``, beside
model.json) saying per checkpoint where it came from and whether it is the official file, so that
:meth:`ModelManager.verify` tells an unofficial model from a damaged one.
"""

import json
import shutil
from pathlib import Path

from .atomic import remove_leftovers, temp_sibling, write_json_atomic
from .cancel import check_cancel, raising_check
from .downloads import DOWNLOADS, KNOWN_HASHES, Downloads
from .errors import CheckpointError, InputError, ModelError
from .families import BETA, family, family_name
from .folder_lock import FolderLock
from .model_folder import INFO_FILE, REINSTALL_HINT, check_graph_role, read_info, sha256_file
from .model_registry import (  # noqa: F401  (default_model_root, load_registry: for the faces)
    SHA256,
    checkpoint_roles,
    default_model_root,
    load_registry,
)
from .precision import FOLDER_PRECISIONS

DENOISER_ROLE = "denoiser"
PRECISIONS = FOLDER_PRECISIONS  # an installed folder's graphs (see plugin.engine.precision)
INSTALL_RECORD = "install.json"
LOCK_FILE = ".install.lock"
_REINSTALL = REINSTALL_HINT


class ModelManager(Downloads):
    """Lists, installs, checks and removes models under one model root."""

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

        roles, model_family = checkpoint_roles(entry), family(entry.get("family", BETA))
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
        for role in checkpoint_roles(entry):
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


def _check_local(role, path, source, allow_unofficial, progress, cancel=None):
    """(official, sha256) of a local checkpoint. official: True, None when the registry lists no
    sha256 to compare with (then the file is not hashed here: sha256 None), False when it
    differs and ``allow_unofficial``; else InputError."""
    expected = source.get("sha256")
    if expected is None:
        return None, None
    if progress:
        progress(0, 1, f"checking {path.name} against the registry's sha256")
    actual = sha256_file(path, raising_check(cancel, f"checking {path.name}"))
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
        if not isinstance(record, dict) or not SHA256.fullmatch(str(record.get("sha256"))):
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


class InstallLock(FolderLock):
    """One install at a time per model root: ``<root>/.install.lock`` (see FolderLock)."""

    def __init__(self, model_root):
        super().__init__(model_root, LOCK_FILE, "another installation", ModelError)


def _check_precision(precision):
    if precision not in PRECISIONS:
        raise InputError(f"precision={precision!r}; expected one of {', '.join(PRECISIONS)}")
    return precision


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
