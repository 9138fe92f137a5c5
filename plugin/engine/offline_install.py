"""When a model's checkpoints cannot be downloaded: which local files replace them, where each
comes from, and a failed install that leaves no empty folder behind. Each face (the command
line, QGIS's Install model) words the advice its own way: flags there, parameter labels here."""

from contextlib import contextmanager

from .downloads import DOWNLOADS, LOCAL_INSTALL_HINT
from .errors import DownloadError

LOCAL_FILES_FIELD = "local_files"  # the engine's field of a download that local files replace


def local_file_origins(manager, name):
    """[(local_files key, file name to save as, where it comes from)] of model ``name``."""
    from .families import BETA, family

    entry = manager.registry["models"][name]
    return family(entry.get("family", BETA)).local_file_origins(entry["sources"])


@contextmanager
def advice_on_download_failure(manager, name, advise):
    """Around an install: a download that local files could replace and that failed is raised
    again as ``DownloadError(advise(reason, origins))``, ``reason`` being its message without
    the generic hint and ``origins`` local_file_origins; an empty downloads folder (or model
    root) the install made is removed."""
    made = [folder for folder in (manager.model_root / DOWNLOADS, manager.model_root) if not folder.exists()]
    try:
        yield
    except DownloadError as exc:
        for folder in made:  # only when empty: a kept partial download resumes next time
            _remove_empty(folder)
        if exc.field != LOCAL_FILES_FIELD:
            raise
        reason = exc.message.replace(f", or {LOCAL_INSTALL_HINT}", "")
        raise DownloadError(advise(reason, local_file_origins(manager, name))) from None


def _remove_empty(folder):
    try:
        folder.rmdir()
    except OSError:
        pass
