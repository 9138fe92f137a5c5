"""What runs on a Dask worker: one cell job, with the model loaded once per worker process.

A job's outputs are generated into a private folder inside the cell's folder and renamed into
place one by one, each rename atomic; a cell counts as done only when all its outputs carry the
job's tags (:func:`plugin.dataset.jobs.completed`), so a worker that dies between two renames
leaves a cell that the next attempt redoes. Bad input (a CopGenError) becomes a failure result,
so one broken cell never stops the others; anything else propagates, and Dask reports it.
"""

import os
import shutil
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from ..engine.errors import CopGenError, ModelError
from ..engine.model_folder import INFO_FILE, read_info
from ..geo.majortom import cell_named, cell_target_grid

WORK_PREFIX = ".work-"
_MODELS = {}
_LOAD_LOCK = threading.Lock()


@dataclass(frozen=True)
class CellResult:
    cell: str
    ok: bool
    message: str = ""
    seconds: float = 0.0
    worker_pid: int = 0


def model_for(options):
    """The worker process's model for these options, loaded on first use and kept."""
    key = (options.model_dir, options.device, options.precision, options.threads)
    with _LOAD_LOCK:
        if key not in _MODELS:
            from ..engine import load

            _MODELS[key] = load(options.model_dir, device=options.device, precision=options.precision,
                                threads=options.threads)
        return _MODELS[key]


def loaded_models():
    """How many models this process holds (tests check that each worker loads once)."""
    return len(_MODELS)


def model_folder_status(model_dir):
    """(None, model.json dict) when this machine can read the model folder and its files, else
    (the reason, None). Run on every worker before any job."""
    folder = Path(model_dir)
    try:
        info = read_info(folder / INFO_FILE)
        for name in sorted(info.get("files", {})):
            with open(folder / name, "rb") as stream:
                stream.read(1)
    except ModelError as exc:
        return str(exc), None
    except OSError as exc:
        return f"{exc.filename or folder}: {exc.strerror or exc}", None
    return None, info


def run_cell(job):
    """Generate one cell's outputs (OUT/<cell>/<modality>.tif); a CellResult."""
    start = time.perf_counter()
    try:
        model = model_for(job.options)
        generate_cell(model, job)
    except CopGenError as exc:
        return CellResult(job.cell, False, str(exc), time.perf_counter() - start, os.getpid())
    return CellResult(job.cell, True, "", time.perf_counter() - start, os.getpid())


def generate_cell(model, job):
    """The one call of the area pipeline for a cell (keep it the only one: the lead adapts it)."""
    from ..geo.pipeline import generate_area

    options = job.options
    grid = cell_target_grid(cell_named(job.cell), options.cell_size_px)
    job.folder.mkdir(parents=True, exist_ok=True)
    work = job.folder / f"{WORK_PREFIX}{uuid.uuid4().hex[:12]}"
    try:
        written = generate_area(
            model, list(job.conditions), list(options.generate), work, grid=grid,
            samples=options.samples, seed=job.seed, steps=options.steps, solver=options.solver,
            reflectance=options.reflectance, overlap=options.overlap, run_name="cell",
        )
        for path, name in zip(written, job.output_names()):
            os.replace(path, job.folder / name)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def remove_stale_work(out_dir):
    """Remove private folders left by workers that died mid-job (call when no job runs)."""
    for folder in Path(out_dir).glob(f"*/{WORK_PREFIX}*"):
        shutil.rmtree(folder, ignore_errors=True)
