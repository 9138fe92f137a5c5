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
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ..engine.atomic import check_not_input, move_into_place, remove_leftovers, temp_sibling, write_json_atomic
from ..engine.errors import CopGenError, InputError
from ..engine.model_folder import INFO_FILE, read_info
from ..engine.precision import resolve
from .jobs import CELL_RECORD

WORK_NAME = "work"  # a cell's private folder: .work.<pid>-<host>....partial (engine.atomic)
_MODELS = {}
_LOAD_LOCK = threading.Lock()


@dataclass(frozen=True)
class CellResult:
    """How a cell's job ended. A failure keeps its error's ``message`` and ``field`` apart
    (:class:`plugin.engine.errors.CopGenError`), so each face words the field its own way."""

    cell: str
    ok: bool
    message: str = ""
    seconds: float = 0.0
    worker_pid: int = 0
    field: Optional[str] = None

    def error(self):
        """The failure as a CopGenError (its field kept), for the faces' wording."""
        return CopGenError(self.message, self.field)


@dataclass(frozen=True)
class ModelOnWorkers:
    """The model folder as a worker reads it: ``info`` (model.json) and ``plan`` (what the
    precision policy runs there for the run's device and preference, a
    :class:`plugin.engine.precision.Plan`)."""

    info: dict
    plan: object


def model_for(options):
    """The worker process's model for these options, loaded on first use and kept."""
    key = (options.model_dir, options.device, options.precision, options.threads)
    with _LOAD_LOCK:
        if key not in _MODELS:
            from ..engine import load

            _MODELS[key] = load(options.model_dir, device=options.device, preference=options.precision,
                                threads=options.threads)
        return _MODELS[key]


def loaded_models():
    """How many models this process holds (tests check that each worker loads once)."""
    return len(_MODELS)


def model_folder_status(options):
    """(None, ModelOnWorkers) when this machine can read the model folder of ``options`` (a
    RunOptions) and its files, else (the reason, None). Run on every worker before any job."""
    folder = Path(options.model_dir)
    try:
        info = read_info(folder / INFO_FILE)
        for name in sorted(info.get("files", {})):
            with open(folder / name, "rb") as stream:
                stream.read(1)
        plan = resolve(folder, options.device, options.precision, info=info)
    except CopGenError as exc:
        return exc.message, None
    except OSError as exc:
        return f"{exc.filename or folder}: {exc.strerror or exc}", None
    return None, ModelOnWorkers(info, plan)


PROGRESS_TOPIC = "copgen-cell-progress"  # Dask events: each cell's stages and warnings, for the driver


def cell_reporters(cell):
    """(progress, notify) for generate_area on a Dask worker: each stage a cell starts and each
    warning on its inputs (a condition covering part of it) become events the driver prints.
    (None, None) outside a worker."""
    try:
        from distributed import get_worker

        worker = get_worker()
    except (ImportError, ValueError):
        return None, None
    shown = {}

    def progress(done, total, message):
        stage = message.split(" · ")[0]
        if not stage.startswith("estimate: ") and stage != shown.get("stage"):
            shown["stage"] = stage
            worker.log_event(PROGRESS_TOPIC, {"cell": cell, "stage": stage})

    def notify(message):
        worker.log_event(PROGRESS_TOPIC, {"cell": cell, "warning": message})

    return progress, notify


def estimate_cell(job):
    """The estimate of ``job``'s cell on this worker (its model, its measured and kept speed), as
    generate prices the cell's request (:func:`plugin.geo.pipeline.estimate_area`, either family)."""
    from ..geo.pipeline import estimate_area

    return estimate_area(model_for(job.options), job.request())


def run_cell(job):
    """Generate one cell's outputs (OUT/<cell>/<modality>.tif); a CellResult."""
    start = time.perf_counter()
    try:
        model = model_for(job.options)
        generate_cell(model, job)
    except CopGenError as exc:
        return CellResult(job.cell, False, exc.message, time.perf_counter() - start, os.getpid(), exc.field)
    return CellResult(job.cell, True, "", time.perf_counter() - start, os.getpid())


def generate_cell(model, job):
    """Run the cell's GenerationRequest (its grid: the cell's product grid) with the area
    pipeline, exactly as ``generate`` over the cell's extent would."""
    from ..geo.pipeline import generate_area

    request = job.request()
    finals = [job.folder / name for name in job.output_names()]
    # generate_area checks its own (work folder) names; the cell's final names are checked here
    check_not_input(finals, [spec.path for spec in request.conditions])
    if job.folder.is_symlink():
        raise InputError(f"{job.folder} is a symbolic link; a cell folder is written only as a real folder", "out")
    created = not job.folder.exists()
    job.folder.mkdir(parents=True, exist_ok=True)
    record = job.record(model)  # the conditions as they are when the cell starts
    (job.folder / CELL_RECORD).unlink(missing_ok=True)  # it vouches for the old files no more
    # marked with this process and host, so only a dead worker's folder is ever removed
    work = temp_sibling(job.folder / WORK_NAME)
    progress, notify = cell_reporters(job.cell)
    try:
        written = generate_area(model, request, work, progress=progress, notify=notify)
        # class maps' names and colours live in an .aux.xml beside the COG: moved first, with it
        pairs = [(Path(f"{path}.aux.xml"), Path(f"{final}.aux.xml")) for path, final in zip(written, finals)]
        move_into_place([pair for pair in pairs if pair[0].is_file()] + list(zip(written, finals)))
        write_json_atomic(job.folder / CELL_RECORD, record)  # last: the cell is complete
    except BaseException:
        if created:
            _remove_if_empty(job.folder, work)
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _remove_if_empty(folder, work):
    """A failed cell leaves no folder behind that it made (its work folder goes first)."""
    shutil.rmtree(work, ignore_errors=True)
    try:
        folder.rmdir()
    except OSError:
        pass  # not empty: something else lives there


def remove_stale_work(out_dir):
    """Remove the work folders of workers of this machine that died mid-job; a folder that
    merely looks like one, or a live or remote worker's, is left alone."""
    for cell in Path(out_dir).iterdir() if Path(out_dir).is_dir() else ():
        if cell.is_dir() and not cell.is_symlink():
            remove_leftovers(cell)
