"""generate_area(): seamless generation over any area, from inputs on disk to COG outputs.

The order of work (the request was validated when it was made): derive the 10 m grid, prepare the conditions
(validating the rasters), VAE-encode them onto the latent canvas, sample the canvas with
MultiDiffusion (:mod:`.tiling`), then decode and write one COG per generated modality and
sample. Everything is written inside a temporary folder in ``out_dir`` and moved out only when
the whole run succeeded, so a failure or a cancel leaves no output behind.

The area, when no grid is given, comes from the conditions in the order the user gave them:
the first one in a projected CRS (else the first one) gives a bare extent its CRS, or its
footprint is the area; a 10 m north-up condition raster in the grid's CRS gives the pixel
lattice. Sampling takes the conditions in modality order.

Random streams: ``SeedSequence(seed).spawn(3)`` gives three numpy Generators: the first draws
the initial noise x_T [n_generated, samples, 4, H, W] (float32, once), the second the
conditions' posterior noise ([samples, 4, H, W] float32 per condition, in modality order, once),
the third the fresh noise of the modalities neither generated nor given, and of conditions in
the windows they do not cover (at every network call, window batch by window batch; see
:class:`.tiling.CanvasDenoiser`). The same seed, inputs and model batch size give the same outputs.
"""

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..engine.atomic import check_not_input, remove_leftovers, temp_sibling
from ..engine.errors import InputError
from ..engine.modalities import (
    LATENT_CHANNELS,
    LATENT_SIZE,
    MODALITIES,
    PIXEL_SIZE_M,
    REGISTRY,
    TILE_PIXELS,
    modality_index,
)
from ..engine.request import GenerationRequest, tiling_overlap
from ..engine.solvers import solve
from .conditions import prepare_condition
from .grid import TargetGrid, open_raster, parse_extent, raster_lattice
from .output import OutputWriter, provenance_tags
from .tiling import (
    DEFAULT_OVERLAP,
    PIXELS_PER_LATENT,
    CanvasDenoiser,
    WindowLayout,
    decode_canvas,
    encode_condition,
    sample_posterior,
    window_starts,
)



def generate_area(model, request, out_dir, progress=None, cancel=None):
    """Run a :class:`plugin.engine.request.GenerationRequest`; returns the written GeoTIFF paths.

    model: a :class:`plugin.engine.model.CopGenModel`. The area is the request's grid, extent
    (without a CRS: that of the first condition in a projected CRS, else of the first
    condition) or AOI (outside it: nodata), else the footprint of the first condition in a
    projected CRS (else of the first condition). ``progress(done, total, stage)``: ``done`` of
    ``total`` window evaluations (encoder, denoiser and decoder windows), ``stage`` says which.
    ``cancel()`` returning True stops between network calls with Cancelled, leaving no
    output. Files are ``request.output_names()`` in ``out_dir``, replacing files of the same
    name. Errors are InputErrors naming the request field at fault.

    Where a condition has no data in a whole 256 px window, the model treats it as not given
    there; outputs record the fraction of the area each condition covers
    (``condition_coverage``).
    """
    if not isinstance(request, GenerationRequest):
        raise TypeError(f"generate_area takes a GenerationRequest, not {type(request).__name__}")
    generated_idx = [modality_index(key) for key in request.generate]
    samples, seed, steps, solver = request.samples, request.seed, request.steps, request.solver
    overlap = tiling_overlap(request.tiling, DEFAULT_OVERLAP)
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"output folder {out_dir} exists and is not a folder")
    grid = _resolve_grid(request)
    if request.max_area_km2 is not None and area_km2(grid) > request.max_area_km2:
        estimate = estimate_run(model, grid, len(generated_idx), len(request.conditions), samples, steps, overlap)
        raise InputError(
            f"the area is {area_km2(grid):.1f} km2 ({grid.width} x {grid.height} px), "
            f"above the limit of {request.max_area_km2:g} km2; it would take {estimate.describe()}. "
            "Choose a smaller area or raise the limit.", "max_area_km2"
        )
    check_not_input([out_dir / name for name in request.output_names()], [spec.path for spec in request.conditions],
                    "output")
    cond_specs = sorted(request.conditions, key=lambda spec: modality_index(spec.modality))
    prepared = [prepare_condition(spec, grid, cancel) for spec in cond_specs]
    _make_out_dir(out_dir)

    layout = WindowLayout(grid.height // PIXELS_PER_LATENT, grid.width // PIXELS_PER_LATENT, overlap)
    tracker = _Progress(progress, len(layout) * (len(prepared) + samples * (steps + len(generated_idx))))
    remove_leftovers(out_dir)  # of runs killed (kill -9) before they could clean up
    work = temp_sibling(out_dir / request.run_name)  # names this process: see plugin.engine.atomic
    work.mkdir()
    try:
        latents, coverage = _sample_canvas(model, prepared, generated_idx, layout, samples, seed, steps,
                                           solver, tracker, cancel)
        tags = _run_tags(model, prepared, coverage, seed, steps, solver, samples, overlap)
        names = iter(request.output_names())
        written = []
        for k, index in enumerate(generated_idx):
            record = REGISTRY[index]
            for sample in range(samples):
                name = next(names)
                sample_tags = {**tags, "modality": record.key, "sample": str(sample + 1)}
                as_reflectance = request.reflectance and record.reflectance
                with OutputWriter(work / name, grid, record.key, sample_tags, reflectance=as_reflectance) as writer:
                    decode_canvas(model, latents[k, sample], layout, writer.write_window, cancel,
                                  tracker.stage(f"decoding {record.key}"))
                written.append(name)
        for name in written:
            os.replace(work / name, out_dir / name)
        return [out_dir / name for name in written]
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _sample_canvas(model, prepared, generated_idx, layout, samples, seed, steps, solver, tracker, cancel):
    """Generated latents [n_generated, samples, 4, H, W] on the canvas (streams: module
    docstring) and {modality: fraction of the area the condition covers}."""
    init_stream, posterior_stream, ignored_stream = (
        np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3)
    )
    shape = (samples, LATENT_CHANNELS, layout.height, layout.width)
    cond_latents = np.empty((len(prepared),) + shape, dtype=np.float32)
    covered = np.empty((len(prepared), len(layout)), dtype=bool)
    coverage = {}
    for k, condition in enumerate(prepared):
        encoded = encode_condition(model, condition.read_window, layout, cancel,
                                   tracker.stage(f"encoding {condition.modality}"), condition.grid.aoi_mask)
        noise = posterior_stream.standard_normal(shape, dtype=np.float32)
        cond_latents[k] = sample_posterior(encoded.moments[None], noise)
        covered[k] = encoded.covered
        coverage[condition.modality] = encoded.coverage
    x_T = init_stream.standard_normal((len(generated_idx),) + shape, dtype=np.float32)
    denoiser = CanvasDenoiser(
        model, layout, generated_idx, [modality_index(p.modality) for p in prepared], cond_latents,
        ignored_stream, cancel=cancel, on_windows=tracker.stage("denoising"), cond_covered=covered,
    )
    return solve(denoiser, x_T, steps, solver, cancel=cancel), coverage


def area_km2(grid):
    return grid.width * grid.height * abs(grid.transform.a * grid.transform.e) / 1e6


@dataclass(frozen=True)
class RunEstimate:
    """What a run costs: window evaluations of each network, seconds and peak bytes (rough)."""

    denoiser_windows: int
    vae_windows: int
    seconds: float
    peak_bytes: int

    def describe(self):
        return (
            f"about {_duration(self.seconds)} ({self.denoiser_windows} denoiser and {self.vae_windows} "
            f"VAE window evaluations) and about {self.peak_bytes / 2**30:.1f} GiB of memory"
        )


def estimate_run(model, grid, n_generated, n_conditions, samples, steps, overlap=DEFAULT_OVERLAP):
    """Estimate a run on ``grid`` from one timed denoiser window and one timed VAE window.

    Memory counts the model files, the largest network activations of one batch (from the
    configurations in model.json), the latent canvases with the solver's history and the
    decoder's strip of rows.
    """
    height, width = grid.height // PIXELS_PER_LATENT, grid.width // PIXELS_PER_LATENT
    windows = len(window_starts(height, overlap=overlap)) * len(window_starts(width, overlap=overlap))
    denoiser_windows = windows * samples * steps
    vae_windows = windows * (n_conditions + samples * n_generated)
    latents = np.zeros((1, len(MODALITIES), LATENT_CHANNELS, LATENT_SIZE, LATENT_SIZE), dtype=np.float32)
    timesteps = np.zeros((1, len(MODALITIES)), dtype=np.float32)
    seconds = (
        denoiser_windows * _seconds_per_window(lambda: model.denoise(latents, timesteps))
        + vae_windows * _seconds_per_window(lambda: model.decode(latents[:, 0]))
    )
    model_bytes = sum(entry.get("bytes", 0) for entry in model.info.get("files", {}).values())
    canvas = LATENT_CHANNELS * height * width * 4
    # x, x0 history (up to 3 for DPM-Solver-fast), the blended noise and a temporary, per sample.
    latent_bytes = canvas * samples * (6 * n_generated + n_conditions) + canvas * 2 * n_conditions
    strip_bytes = 2 * 4 * 3 * TILE_PIXELS * grid.width
    peak = model_bytes + _activation_bytes(model.info, model.max_batch) + latent_bytes + strip_bytes
    return RunEstimate(denoiser_windows, vae_windows, seconds, int(peak))


def _activation_bytes(info, batch):
    """Rough float32 activations of one batch: the larger of the denoiser's (attention scores,
    MLP hidden, token copies) and the VAE decoder's (a few full-resolution feature maps)."""
    net = info.get("denoiser", {})
    grid_side = net.get("img_size", 32) // net.get("patch_size", 2)
    tokens = net.get("num_modalities", len(MODALITIES)) * (1 + grid_side ** 2)
    denoiser = (
        net.get("num_heads", 16) * tokens ** 2 * 2
        + tokens * net.get("mlp_hidden", 4096) * 2
        + tokens * net.get("embed_dim", 1024) * 8
    )
    vae = info.get("vae", {})
    decoder = 4 * vae.get("ch", 128) * vae.get("ch_mult", [1])[0] * TILE_PIXELS ** 2
    return 4 * batch * max(denoiser, decoder)


def _seconds_per_window(run_one_window):
    """Wall time of one call, after a warm-up call (the first one allocates)."""
    run_one_window()
    start = time.perf_counter()
    run_one_window()
    return time.perf_counter() - start


def _duration(seconds):
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _make_out_dir(out_dir):
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"output folder {out_dir} cannot be created: {exc.strerror}") from None
    if not os.access(out_dir, os.W_OK):
        raise InputError(f"output folder {out_dir} is not writable")


def _resolve_grid(request):
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


def _run_tags(model, prepared, coverage, seed, steps, solver, samples, overlap):
    """GeoTIFF metadata that says how an output was made (OutputWriter stores non-strings as JSON)."""
    info = model.info
    sources = info.get("sources", {})
    return {
        "model": str(info.get("name", "")),
        "model_precision": str(info.get("precision", "")),
        "denoiser_precision": str(model.denoiser_precision),
        "denoiser_sha256": str(sources.get("denoiser", {}).get("sha256", "")),
        "vae_sha256": str(sources.get("vae", {}).get("sha256", "")),
        "seed": str(seed),
        "steps": str(steps),
        "solver": solver,
        "samples": str(samples),
        "overlap_latents": str(overlap),
        "conditions": [p.describe() for p in prepared],
        "condition_coverage": {modality: round(fraction, 4) for modality, fraction in coverage.items()},
        **provenance_tags("generate"),
    }


class _Progress:
    """Counts window evaluations across the stages and reports progress(done, total, stage)."""

    def __init__(self, callback, total):
        self.callback = callback
        self.total = total
        self.done = 0

    def stage(self, name):
        def on_windows(count):
            self.done += count
            if self.callback is not None:
                self.callback(self.done, self.total, name)

        return on_windows
