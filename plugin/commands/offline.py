"""When a model cannot be downloaded: the whole command that installs it from files fetched
another way, and where each file comes from. Shared by ``demo`` and ``models install``."""

import shlex
from contextlib import contextmanager

from ..engine.errors import DownloadError
from ..engine.downloads import DOWNLOADS, LOCAL_INSTALL_HINT

LOCAL_FILES_FIELD = "local_files"  # the engine's field of a download that local files replace
LOCAL_FLAGS = {"denoiser": "--denoiser", "vae": "--vae", "vae_dir": "--vae-dir"}  # local_files key -> flag


def local_install_command(manager, name, precision, model_dir=None, registry=None):
    """``python -m plugin models install ...`` with the registry's file names in place of the
    files (as when they were saved in the current folder)."""
    command = ["python", "-m", "plugin", "models", "install", name]
    if precision != "fp32":
        command += ["--precision", precision]
    if model_dir:
        command += ["--model-dir", str(model_dir)]
    if registry:
        command += ["--registry", str(registry)]
    for key, saved_as, _ in _local_files(manager, name):
        command += [LOCAL_FLAGS[key], saved_as]
    return " ".join(shlex.quote(part) for part in command)


def file_origins(manager, name):
    """Where each checkpoint comes from, in words: its URL (and the official alternatives)."""
    return "; ".join(f"{LOCAL_FLAGS[key]} {saved_as} from {where}" for key, saved_as, where in _local_files(manager, name))


def _local_files(manager, name):
    """The model family's [(local_files key, file name, origin)] for the registry entry."""
    from ..engine.families import BETA, family

    entry = manager.registry["models"][name]
    return family(entry.get("family", BETA)).local_file_origins(entry["sources"])


@contextmanager
def local_install_advice(manager, name, precision, model_dir=None, registry=None):
    """Around an install: a download that failed is told with the whole runnable command for
    local files; an empty downloads folder it made is removed."""
    made = [folder for folder in (manager.model_root / DOWNLOADS, manager.model_root) if not folder.exists()]
    try:
        yield
    except DownloadError as exc:
        for folder in made:  # only when empty: a kept partial download resumes next time
            _remove_empty(folder)
        if exc.field != LOCAL_FILES_FIELD:
            raise
        command = local_install_command(manager, name, precision, model_dir, registry)
        reason = exc.message.replace(f", or {LOCAL_INSTALL_HINT}", "")
        raise DownloadError(
            f"{reason}; to install from files downloaded another way, run: {command}  "
            f"({file_origins(manager, name)}; files that differ from these, e.g. fine-tuned weights, "
            "also need --allow-unofficial)"
        ) from None


def _remove_empty(folder):
    try:
        folder.rmdir()
    except OSError:
        pass
