"""generate_area(): seamless generation over any area, from inputs on disk to COG outputs.

The order of work (the request was validated when it was made): derive the 10 m grid, prepare the conditions
(validating the rasters), VAE-encode them onto the latent canvas, sample the canvas with
MultiDiffusion (:mod:`plugin.engine.canvas`, a tiling strategy of :mod:`plugin.engine.tiling`), then decode and write one COG per generated modality and
sample. Everything is written inside a temporary folder in ``out_dir`` and moved out only when
the whole run succeeded, so a failure or a cancel leaves no output behind.

The area, when no grid is given, comes from the conditions in the order the user gave them:
the first one in a projected CRS (else the first one) gives a bare extent its CRS, or its
footprint is the area; a 10 m north-up condition raster in the grid's CRS gives the pixel
lattice. Sampling takes the conditions in modality order.

Random streams: those of :mod:`plugin.engine.canvas` (the same as ``CopGenModel.sample``'s for
one tile). The same seed, inputs and tiling give the same outputs.
"""

import importlib
import os
import shutil
from functools import partial
from pathlib import Path

import numpy as np

from ..engine.canvas import canvas_streams, sample_canvas, sample_posterior, to_uint8
from ..engine.vae_canvas import PIXELS_PER_LATENT, decode_canvas
from ..engine.atomic import check_not_input, move_into_place, remove_leftovers, temp_sibling
from ..engine.errors import InputError
from ..engine.families import BETA, COPGEN
from ..engine.families.beta.registry import (
    LATENT_CHANNELS,
    PIXEL_SIZE_M,
    REGISTRY,
    TILE_PIXELS,
    modality_index,
)
from ..engine.estimate import RunProgress, check_limits, estimate_canvas
from ..engine.model_folder import source_hashes
from ..engine.provenance import checkpoint_provenance
from ..engine.request import GenerationRequest
from ..engine.tiling import parse_tiling
from ..engine.wording import percent
from .conditions import prepare_condition
from .grid import TargetGrid, open_raster, parse_extent, raster_lattice
from .output import OutputWriter, provenance_tags
from .condition_tiles import encode_condition

FULL_COVERAGE = 0.995  # below this a condition is told as partial (edge pixels lost to warping aside)


def generate_area(model, request, out_dir, progress=None, cancel=None, notify=None):
    """Run a :class:`plugin.engine.request.GenerationRequest`; returns the written GeoTIFF paths.

    model: a :class:`plugin.engine.model.CopGenModel`. The area is the request's grid, extent
    (without a CRS: that of the first condition in a projected CRS, else of the first
    condition) or AOI (outside it: nodata), else the footprint of the first condition in a
    projected CRS (else of the first condition). ``progress(done, total, stage)``: ``done`` of
    ``total`` window evaluations (encoder, denoiser and decoder windows), ``stage`` says which.
    The first progress call (done = 0) carries the run's estimate
    (:class:`plugin.engine.estimate.RunEstimate`); later stages carry the time left.
    ``cancel()`` returning True stops between network calls with Cancelled, leaving no
    output. ``notify(message)`` is told, before sampling, what a user must know about the
    inputs: a condition that covers only part of the area (measured on its pixels). Files are ``request.output_names()`` in ``out_dir``, replacing files of the same
    name. Errors are InputErrors naming the request field at fault.

    Where a condition has no data in any latent cell of a denoiser window, the model treats it
    as not given in that window; outputs record the fraction of the area each condition covers
    (``condition_coverage``).
    """
    _check_pair(model, request, "generate_area")
    return area_pipeline(request.family).run_area(model, request, out_dir, progress, cancel, notify)


def estimate_area(model, request):
    """What ``request`` would cost with ``model``, counted without reading or allocating: an
    estimate with ``seconds`` (None where not priced), ``peak_bytes`` and ``describe()``, the
    one :func:`plugin.engine.estimate.check_limits` holds against the limits. Each family's
    pipeline prices its own canvases (COP-GEN-Beta: :func:`estimate_run`; COP-GEN:
    :func:`.physical_pipeline.canvas_cost`)."""
    _check_pair(model, request, "estimate_area")
    return area_pipeline(request.family).price_area(model, request)


# The area pipeline of each model family: a module with run_area(model, request, out_dir,
# progress, cancel, notify) and price_area(model, request). The engine's family table
# (engine/families) cannot name it: the engine does not import geo.
AREA_PIPELINES = {BETA: "pipeline", COPGEN: "physical_pipeline"}


def area_pipeline(family):
    """The area pipeline module of model family ``family``."""
    return importlib.import_module(f"{__package__}.{AREA_PIPELINES[family]}")


def _check_pair(model, request, what):
    if not isinstance(request, GenerationRequest):
        raise TypeError(f"{what} takes a GenerationRequest, not {type(request).__name__}")
    if getattr(model, "family", BETA) != request.family:
        raise InputError(f"the request is for a {request.family} model, this model is {model.family}", "model")


def price_area(model, request):
    """COP-GEN-Beta's estimate of ``request`` (see :func:`estimate_area`)."""
    return estimate_run(model, resolve_grid(request), len(request.generate), len(request.conditions),
                        request.samples, request.steps, request.tiling)


def run_area(model, request, out_dir, progress=None, cancel=None, notify=None):
    """COP-GEN-Beta's area pipeline (see :func:`generate_area`)."""
    generated_idx = [modality_index(key) for key in request.generate]
    samples, seed, steps, solver = request.samples, request.seed, request.steps, request.solver
    tiling = parse_tiling(request.tiling)
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"output folder {out_dir} exists and is not a folder")
    grid = resolve_grid(request)
    # priced (counts, no array per step or sample) and held against the limits before any
    # condition is read or any canvas allocated
    estimate = estimate_run(model, grid, len(generated_idx), len(request.conditions), samples, steps, tiling)
    check_area(grid, request.max_area_km2, f"; it would take {estimate.describe()}")
    check_limits(estimate, request.max_hours, request.max_memory_gib)
    check_not_input([out_dir / name for name in request.output_names()], [spec.path for spec in request.conditions],
                    "output")
    cond_specs = sorted(request.conditions, key=lambda spec: modality_index(spec.modality))
    prepared = [prepare_condition(spec, grid, cancel) for spec in cond_specs]
    for note in (note for condition in prepared for note in condition.notes):
        if notify is not None:
            notify(note)
    make_out_dir(out_dir)
    tracker = RunProgress(progress, estimate)
    remove_leftovers(out_dir)  # of runs killed (kill -9) before they could clean up
    work = temp_sibling(out_dir / request.run_name)  # names this process: see plugin.engine.atomic
    work.mkdir()
    try:
        latents, coverage = _sample_canvas(model, prepared, generated_idx, grid, samples, seed, steps,
                                           solver, tiling, tracker, cancel, notify)
        tags = _run_tags(model, prepared, coverage, seed, steps, solver, samples, tiling)
        names = iter(request.output_names())
        written = []
        for k, index in enumerate(generated_idx):
            record = REGISTRY[index]
            for sample in range(samples):
                name = next(names)
                sample_tags = {**tags, "modality": record.key, "sample": str(sample + 1)}
                as_reflectance = request.reflectance and record.reflectance
                with OutputWriter(work / name, grid, record.key, sample_tags, reflectance=as_reflectance) as writer:
                    decode_canvas(partial(model.decode, cancel=cancel), latents[k, sample],
                                  _as_uint8(writer.write_window), cancel=cancel,
                                  on_tiles=tracker.stage(f"decoding {record.key}"), batch=model.max_batch)
                written.append(name)
        move_into_place([(work / name, out_dir / name) for name in written])
        return [out_dir / name for name in written]
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _as_uint8(write):
    """A decode writer taking the decoder's [0, 1] strips as the 8-bit renderings are saved."""
    return lambda top, left, image: write(top, left, to_uint8(image))


def _sample_canvas(model, prepared, generated_idx, grid, samples, seed, steps, solver, tiling, tracker, cancel,
                   notify=None):
    """Generated latents [n_generated, samples, 4, H, W] on the canvas (streams: module
    docstring) and {modality: fraction of the area the condition covers}."""
    init_stream, ignored_stream, posterior_stream = canvas_streams(seed)
    height, width = grid.height // PIXELS_PER_LATENT, grid.width // PIXELS_PER_LATENT
    shape = (samples, LATENT_CHANNELS, height, width)
    cond_latents = np.empty((len(prepared),) + shape, dtype=np.float32)
    cond_cells = np.empty((len(prepared), height, width), dtype=bool)
    coverage = {}
    for k, condition in enumerate(prepared):
        encoded, coverage[condition.modality] = encode_condition(
            partial(model.encode_moments, cancel=cancel), condition.read_window, height, width,
            condition.grid.aoi_mask, cancel, tracker.stage(f"encoding {condition.modality}"))
        noise = posterior_stream.standard_normal(shape, dtype=np.float32)
        cond_latents[k] = sample_posterior(encoded.moments[None], noise)
        cond_cells[k] = encoded.cells
        if notify is not None and coverage[condition.modality] < FULL_COVERAGE:
            notify(f"{condition.modality} condition {condition.spec.label} covers "
                   f"{percent(coverage[condition.modality])} of the area; outside it the model "
                   "generates without this condition")
    cond_idx = [modality_index(p.modality) for p in prepared]
    latents = sample_canvas(
        model.denoise, generated_idx, cond_idx, cond_latents, (samples, height, width), steps, solver,
        tiling, streams=(init_stream, ignored_stream), cond_cells=cond_cells, max_windows=model.max_batch,
        cancel=cancel, on_windows=tracker.stage("denoising"),
    )
    return latents, coverage


def area_km2(grid):
    return grid.width * grid.height * abs(grid.transform.a * grid.transform.e) / 1e6


def check_area(grid, max_area_km2, cost=""):
    """InputError (field max_area_km2) when ``grid`` is larger than the limit (None: no limit);
    ``cost`` says what the area would cost."""
    if max_area_km2 is not None and area_km2(grid) > max_area_km2:
        raise InputError(
            f"the area is {area_km2(grid):.1f} km² ({grid.width} x {grid.height} px at {grid.pixel_size:g} m), "
            f"above the limit of {max_area_km2:g} km²{cost}. Choose a smaller area or raise this limit.", "max_area_km2"
        )


def estimate_run(model, grid, n_generated, n_conditions, samples, steps, tiling=None):
    """The :class:`plugin.engine.estimate.RunEstimate` of a run on ``grid``."""
    return estimate_canvas(model, grid.height // PIXELS_PER_LATENT, grid.width // PIXELS_PER_LATENT,
                           n_generated, n_conditions, samples, steps, tiling)


def make_out_dir(out_dir):
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"output folder {out_dir} cannot be created: {exc.strerror}") from None
    if not os.access(out_dir, os.W_OK):
        raise InputError(f"output folder {out_dir} is not writable")


def resolve_grid(request):
    """The grid: given, or from the extent / AOI / conditions (in the user's order)."""
    specs = request.conditions
    if request.grid is not None:
        grid = request.grid
        for side, size in (("width", grid.width), ("height", grid.height)):
            if size % PIXELS_PER_LATENT or size < TILE_PIXELS:
                raise InputError(f"{side} {size} px must be a multiple of 8 and at least {TILE_PIXELS}", "grid")
        return grid
    lattices = [lattice for lattice in (raster_lattice(s.path, PIXEL_SIZE_M, s.label) for s in specs) if lattice]
    try:
        if request.extent is not None:
            return _extent_grid(request.extent, specs, lattices)
        if request.aoi is not None:
            try:
                geometry, crs = request.aoi
            except (TypeError, ValueError):
                raise InputError("expected (polygon, crs)") from None
            return TargetGrid.from_polygon(geometry, crs, pixel=PIXEL_SIZE_M, lattices=lattices)
    except InputError as exc:
        exc.field = exc.field or request.area_field
        raise
    return TargetGrid.from_raster(_area_condition(specs).path, pixel=PIXEL_SIZE_M, lattices=lattices)


def _extent_grid(extent, specs, lattices):
    default_crs = _raster_crs(_area_condition(specs)) if specs else None
    if isinstance(extent, str):
        return parse_extent(extent, default_crs=default_crs, pixel=PIXEL_SIZE_M, lattices=lattices)
    values = list(extent)
    if len(values) not in (4, 5):
        raise InputError(f"{extent!r}: expected xmin, ymin, xmax, ymax[, crs]")
    crs = values.pop() if len(values) == 5 else default_crs
    if crs is None:
        raise InputError(f"{extent!r}: give its CRS (no condition raster to take it from)")
    try:
        bounds = [float(v) for v in values]
    except (TypeError, ValueError):
        raise InputError(f"{extent!r}: xmin, ymin, xmax, ymax must be numbers") from None
    return TargetGrid.from_extent(*bounds, crs, pixel=PIXEL_SIZE_M, lattices=lattices)


def _area_condition(specs):
    """The condition that defines the area: the first in a projected CRS, else the first."""
    return next((spec for spec in specs if _is_projected(_raster_crs(spec))), specs[0])


def _is_projected(crs):
    return crs is not None and crs.is_projected


def _raster_crs(spec):
    with open_raster(spec.path, spec.label) as ds:
        return ds.crs


def _run_tags(model, prepared, coverage, seed, steps, solver, samples, tiling):
    """GeoTIFF metadata that says how an output was made (OutputWriter stores non-strings as JSON)."""
    info = model.info
    return {
        "model": str(info.get("name", "")),
        "model_precision": str(info.get("precision", "")),
        "denoiser_precision": str(model.denoiser_precision),
        **source_hashes(info),
        **checkpoint_provenance(model.plan.model_dir if model.plan else None, info),
        "seed": str(seed),
        "steps": str(steps),
        "solver": solver,
        "samples": str(samples),
        "tiling": tiling.spec,
        "conditions": [p.describe() for p in prepared],
        "condition_coverage": {modality: round(fraction, 4) for modality, fraction in coverage.items()},
        **provenance_tags("generate"),
    }
