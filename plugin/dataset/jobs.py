"""One job per Major TOM cell: what it generates, from which conditions, with which seed, where.

A job is a small picklable value: it crosses to Dask workers, which run it with
:func:`plugin.dataset.worker.run_cell`. Everything that decides whether a cell is already done
lives here too, so the driver and the workers agree on it.
"""

import hashlib
import json
import os
import string
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Optional

from ..engine.errors import InputError
from ..engine.families import BETA
from ..engine.families.beta.registry import BY_KEY, PIXEL_SIZE_M
from ..engine.model_folder import source_hashes
from ..engine.precision import DEFAULT_PREFERENCE, check_device, check_preference
from ..engine.request import GenerationRequest, known_modality_keys
from ..engine.solvers import SOLVERS
from ..engine.tiling import parse_tiling
from ..geo.condition_spec import AUTO_OFFSET
from ..geo.local_files import check_raster, is_network
from ..geo.majortom import PRODUCT_PIXELS, cell_named, cell_target_grid

# The tags of an output that must match a job for the output to count as that job's result.
CHECKED_TAGS = ("seed", "steps", "solver", "samples", "tiling", "denoiser_sha256", "vae_sha256",
                "denoiser_precision", "modality")
# Written last into a cell folder: every option its outputs were made with (CellJob.record)
CELL_RECORD = ".copgen-cell.json"
# The run name of a cell's request: its files are renamed to <modality>[_sampleN].tif in the cell folder.
CELL_RUN_NAME = "cell"


def cell_seed(run_seed, cell_name):
    """The seed of one cell: a hash of the run seed and the cell name, so a cell's outputs do not
    depend on which cells run with it, where or in which order. 53 bits, so that JSON readers
    that hold numbers as doubles (the STAC Items) keep it exact."""
    digest = hashlib.sha256(f"copgen-majortom:{int(run_seed)}:{cell_name}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 11


@dataclass(frozen=True)
class ConditionSource:
    """A condition for every cell: ``spec`` (a ConditionSpec) whose path is one raster each cell
    reads its window from, or a pattern with ``{cell}`` (e.g. ``tiles/{cell}.tif``)."""

    spec: object

    @property
    def is_pattern(self):
        return "{" in self.spec.path or "}" in self.spec.path

    def check(self):
        """InputError when a pattern has no ``{cell}`` or other fields, or one raster is missing."""
        if is_network(self.spec.path):  # a cell's record holds its conditions' size and time
            raise InputError(f"condition {self.spec.modality}: {self.spec.path} is a network source; a dataset "
                             "reads its conditions from local files only")
        if not self.is_pattern:
            if not Path(self.spec.path).is_file():
                raise InputError(
                    f"condition {self.spec.modality}: {self.spec.path} does not exist "
                    "(for one file per cell, name the cell as {cell} in the path)"
                )
            return
        try:
            fields = {name for _, name, _, _ in string.Formatter().parse(self.spec.path) if name is not None}
        except ValueError as exc:
            raise InputError(f"condition {self.spec.modality}={self.spec.path}: bad pattern ({exc})") from None
        if fields != {"cell"}:
            raise InputError(
                f"condition {self.spec.modality}={self.spec.path}: a pattern must name the cell as {{cell}} "
                f"and nothing else (found {', '.join('{' + f + '}' for f in sorted(fields)) or 'no field'})"
            )

    def for_cell(self, cell_name):
        if not self.is_pattern:
            return self.spec
        path = self.spec.path.replace("{cell}", cell_name)
        if getattr(self.spec, "s2_offset_note", None) is not None:
            # an "auto" offset was resolved on the pattern, which is no product: read each cell's own
            return replace(self.spec, path=path, s2_offset=AUTO_OFFSET, s2_offset_note=None)
        return replace(self.spec, path=path)


@dataclass(frozen=True)
class RunOptions:
    """What every cell of a run shares: ``generate``'s options (the GenerationRequest fields
    that are the same for all cells, and how to load the model).

    tiling: a tiling spec (None: the engine's default). precision: the precision preference,
    "faithful" or "fast" (:mod:`plugin.engine.precision`). threads: ONNX Runtime threads per
    worker (None: all cores). cell_size_px: the centred part of each cell's product grid to
    generate. family: the model's family; date: COP-GEN's date condition ("YYYY-MM-DD", None:
    not conditioned). The request fields are checked by the request itself (:func:`make_jobs`).
    """

    model_dir: str
    generate: tuple
    seed: int = 0
    steps: int = 50
    solver: str = SOLVERS[0]
    samples: int = 1
    tiling: Optional[str] = None
    reflectance: bool = False
    device: str = "auto"
    precision: str = DEFAULT_PREFERENCE
    threads: Optional[int] = None
    cell_size_px: int = PRODUCT_PIXELS
    family: str = BETA
    date: Optional[str] = None

    def __post_init__(self):
        object.__setattr__(self, "generate", known_modality_keys(self.family, "generate", self.generate))
        check_device(self.device)
        check_preference(self.precision)

    @property
    def tiling_spec(self):
        """The tiling as outputs record it (the family's default spelled out)."""
        if self.tiling is None and self.family != BETA:
            from ..engine.families.copgen.canvas import DEFAULT_TILING

            return parse_tiling(DEFAULT_TILING).spec
        return parse_tiling(self.tiling).spec


# Output names do not depend on the area: a request made only for its names gets this stand-in
# for the cell's grid (computing a grid takes milliseconds, thousands of cells take minutes).
NO_GRID = object()


@dataclass(frozen=True)
class CellJob:
    cell: str
    seed: int
    conditions: tuple  # ConditionSpec per modality, paths resolved for this cell
    options: RunOptions
    out_dir: str

    @property
    def folder(self):
        return Path(self.out_dir) / self.cell

    def grid(self):
        """The cell's product grid, as ``generate`` derives it from the cell's extent."""
        return cell_target_grid(cell_named(self.cell), self.options.cell_size_px)

    def request(self, grid=None):
        """The GenerationRequest of this cell (``grid``: :meth:`grid`, when already known)."""
        options = self.options
        return GenerationRequest(
            generate=options.generate, conditions=self.conditions,
            grid=self.grid() if grid is None else grid,
            samples=options.samples, seed=self.seed, steps=options.steps, solver=options.solver,
            tiling=options.tiling, reflectance=options.reflectance, run_name=CELL_RUN_NAME,
            family=options.family, date=options.date,
        )

    def output_names(self):
        """File names of the outputs in the cell folder, in generation order: the request's
        names without the run name."""
        request = self.request(grid=NO_GRID)
        names = [name.removeprefix(f"{request.run_name}_") for name in request.output_names()]
        if self.options.family == BETA:
            return names
        from .physical_cells import physical_output_names

        return physical_output_names(self.options.generate, self.options.samples, names)

    def output_keys(self):
        """{file name: modality key} of the GeoTIFF outputs."""
        names = iter(self.request(grid=NO_GRID).output_names())
        keys = {next(names).removeprefix(f"{CELL_RUN_NAME}_"): key
                for key in self.options.generate for _ in range(self.options.samples)}
        return {name: key for name, key in keys.items() if name in self.output_names()}

    def expected_tags(self, model):
        """Tag values the outputs of this job carry (see :data:`CHECKED_TAGS`), by file name.
        ``model``: the folder as the workers see it (:class:`plugin.dataset.worker.ModelOnWorkers`)."""
        common = {
            "seed": str(self.seed),
            "steps": str(self.options.steps),
            "solver": self.options.solver,
            "samples": str(self.options.samples),
            "tiling": self.options.tiling_spec,
            **source_hashes(model.info),
            "denoiser_precision": model.plan.denoiser_precision,
        }
        return {name: {**common, "modality": key} for name, key in self.output_keys().items()}

    def condition_files(self):
        return sorted(spec.path for spec in self.conditions)

    def record(self, model):
        """Everything this cell's outputs depend on, JSON-ready: all options, the model's files
        and graphs, and each condition file's identity (size and modification time), so a rerun
        counts the cell as done only when nothing it was made from has changed."""
        options = self.options
        return json.loads(json.dumps({
            "cell": self.cell,
            "seed": self.seed,
            "outputs": self.output_names(),
            "options": {
                "generate": list(options.generate), "steps": options.steps, "solver": options.solver,
                "samples": options.samples, "tiling": options.tiling_spec, "reflectance": options.reflectance,
                "cell_size_px": options.cell_size_px, "precision": options.precision,
                # another family's options (Beta's records stay as they were, so reruns still skip)
                **({} if options.family == BETA else {"family": options.family, "date": options.date}),
            },
            "model": {
                **source_hashes(model.info),
                "files": {name: entry.get("sha256") for name, entry in sorted(model.info.get("files", {}).items())},
                "graphs": model.plan.describe(),
            },
            "conditions": [_condition_record(spec) for spec in self.conditions],
        }))


def _condition_record(spec):
    try:
        status = os.stat(spec.path)
        identity = {"bytes": status.st_size, "mtime_ns": status.st_mtime_ns}
    except OSError:
        identity = None
    return {"modality": spec.modality, "file": os.path.abspath(spec.path), "identity": identity,
            "bands": list(spec.bands) if spec.bands else None, "source": getattr(spec, "source", None),
            "s1_in_db": spec.s1_in_db, "s2_offset": getattr(spec, "s2_offset", None)}


def read_record(folder):
    """The record of a cell folder (see CellJob.record), or None."""
    try:
        return json.loads((Path(folder) / CELL_RECORD).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None


def file_reads(path):
    """Whether a GeoTIFF is whole: it opens and all its pixels (and mask) read."""
    import rasterio

    try:
        with rasterio.open(path) as ds:
            ds.read()
            ds.dataset_mask()
    except (rasterio.errors.RasterioError, OSError):
        return False
    return True


def make_jobs(cells, sources, options, out_dir):
    """One CellJob per cell (:class:`plugin.geo.majortom.Cell` items)."""
    for source in sources:
        source.check()
    jobs = [
        CellJob(cell.name, cell_seed(options.seed, cell.name), tuple(s.for_cell(cell.name) for s in sources),
                options, str(out_dir))
        for cell in cells
    ]
    if jobs:
        # Cells differ only in grid, conditions' paths and seed, which the request takes as they
        # are: one cell's request checks the run's options for all, before any work.
        jobs[0].request()
    return jobs


def completed(job, model):
    """True when every output of ``job`` exists, is whole (all pixels read), lies on the cell's
    grid and carries the job's tags and data type, and the cell's record says it was made with
    exactly this job's options, model and condition files (a symlinked cell folder never counts)."""
    import rasterio

    if job.folder.is_symlink() or read_record(job.folder) != job.record(model):
        return False
    grid = None
    physical = job.options.family != BETA
    if physical:
        from .physical_cells import condition_files_of_tags, output_grid, output_dtype, side_files_complete

        if not side_files_complete(job):
            return False
    for name, tags in job.expected_tags(model).items():
        path = job.folder / name
        if not path.is_file():
            return False
        try:
            with rasterio.open(path) as ds:
                found = ds.tags()
                georef = (ds.crs, ds.transform, ds.width, ds.height)
                dtype = ds.dtypes[0]
        except rasterio.errors.RasterioIOError:
            return False
        if any(found.get(key) != value for key, value in tags.items()):
            return False
        if physical:
            expected_dtype, files, grid = (output_dtype(tags["modality"]), condition_files_of_tags(found),
                                           output_grid(job, tags["modality"]))
        else:
            as_reflectance = job.options.reflectance and BY_KEY[tags["modality"]].reflectance
            expected_dtype, files = ("uint16" if as_reflectance else "uint8"), _condition_files(found)
            grid = grid or job.grid()
        if dtype != expected_dtype or files != job.condition_files() or not file_reads(path):
            return False
        if georef[0] != grid.crs or georef[2:] != (grid.width, grid.height) or not georef[1].almost_equals(
            grid.transform, precision=PIXEL_SIZE_M * 1e-6
        ):
            return False
    return True


def _condition_files(tags):
    try:
        return sorted(entry["file"] for entry in json.loads(tags.get("conditions", "[]")))
    except (ValueError, TypeError, KeyError):
        return None


def condition_problem(job):
    """Why a job's conditions cannot serve its cell (a missing file, no overlap), else None.
    Cheap: reads only the rasters' georeferencing."""
    import rasterio
    from rasterio.warp import transform_bounds

    cell = cell_named(job.cell)
    bounds = cell.product_bounds(job.options.cell_size_px)
    for spec in job.conditions:
        if not Path(spec.path).is_file():
            return f"condition {spec.modality}: {spec.path} does not exist"
        try:
            with rasterio.open(check_raster(spec.path, f"condition {spec.modality}")) as ds:
                crs, (left, bottom, right, top) = ds.crs, ds.bounds
        except InputError as exc:
            return str(exc)
        except rasterio.errors.RasterioIOError as exc:
            return f"condition {spec.modality}: {spec.path}: cannot read raster: {exc}"
        if crs is None:
            return f"condition {spec.modality}: {spec.path} has no CRS"
        # compared in lon/lat: a far-away cell may lie outside the raster CRS's projection domain
        west, south, east, north = transform_bounds(cell.crs, "EPSG:4326", *bounds, densify_pts=21)
        left, bottom, right, top = transform_bounds(crs, "EPSG:4326", left, bottom, right, top, densify_pts=21)
        if west >= right or east <= left or south >= top or north <= bottom:
            return f"condition {spec.modality}: {spec.path} covers none of cell {job.cell}"
    return None
