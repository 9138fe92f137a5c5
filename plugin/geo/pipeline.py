"""generate_area(): seamless generation over any area, from inputs on disk to COG outputs.

The order of work: validate every argument, derive the 10 m grid, prepare the conditions
(validating the rasters), VAE-encode them onto the latent canvas, sample the canvas with
MultiDiffusion (:mod:`.tiling`), then decode and write one COG per generated modality and
sample. Everything is written inside a temporary folder in ``out_dir`` and moved out only when
the whole run succeeded, so a failure or a cancel leaves no output behind.

Random streams: ``SeedSequence(seed).spawn(3)`` gives three numpy Generators: the first draws
the initial noise x_T [n_generated, samples, 4, H, W] (float32, once), the second the
conditions' posterior noise ([samples, 4, H, W] float32 per condition, in modality order, once),
the third the fresh noise of the modalities neither generated nor given (at every network call,
window batch by window batch). The same seed, inputs and model batch size give the same outputs.
"""

import json
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import __version__
from ..engine.errors import InputError
from ..engine.modalities import LATENT_CHANNELS, LATENT_SIZE, MODALITIES, PIXEL_SIZE_M, TILE_PIXELS, modality_index
from ..engine.solvers import check_solver_args, solve
from .conditions import ConditionSpec, prepare_condition
from .grid import TargetGrid, open_raster, parse_extent
from .output import OutputWriter
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

REFLECTANCE_MODALITIES = ("s2_l1c", "s2_l2a")
_RUN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def generate_area(model, conditions, generate, out_dir, grid=None, extent=None, aoi=None,
                  samples=1, seed=0, steps=50, solver="dpm-solver-fast", reflectance=False,
                  max_area_km2=None, overlap=DEFAULT_OVERLAP, progress=None, cancel=None,
                  run_name=None):
    """Generate ``generate`` modalities over an area; returns the written GeoTIFF paths.

    model: a :class:`plugin.engine.model.CopGenModel`. conditions: ConditionSpec list (at most
    one per modality, none of them generated). The area is ``grid`` (a TargetGrid), or
    ``extent`` = (xmin, ymin, xmax, ymax[, crs]) or "xmin,ymin,xmax,ymax[,EPSG]" (without a CRS:
    the first condition raster's), or
    ``aoi`` = (polygon, crs) whose outside becomes nodata, or else the first condition's
    footprint. ``overlap``: latents shared by neighbouring 32-latent windows (0 = independent
    tiles, for comparison only). ``reflectance``: write S2 outputs as UInt16 DN (B04, B03, B02).
    ``max_area_km2``: refuse larger areas (InputError with the estimated time and memory).
    ``progress(done, total, stage)``: ``done`` of ``total`` window evaluations (encoder,
    denoiser and decoder windows), ``stage`` says which. ``cancel()`` returning True stops
    between network calls with Cancelled, leaving no output. Files are named
    ``{run_name}_{modality}.tif`` (``..._sample{k}.tif`` when samples > 1), replacing files of
    the same name.
    """
    generated_idx, cond_specs = _check_modalities(generate, conditions)
    _check_counts(samples, seed, overlap)
    check_solver_args(steps, solver)
    run_name = _check_run_name(run_name, seed)
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"output folder {out_dir} exists and is not a folder")
    if max_area_km2 is not None and not (isinstance(max_area_km2, (int, float)) and max_area_km2 > 0):
        raise InputError(f"max_area_km2 must be a positive number of km2, got {max_area_km2!r}")
    if reflectance and not any(MODALITIES[i] in REFLECTANCE_MODALITIES for i in generated_idx):
        raise InputError("reflectance: only S2 outputs (s2_l1c, s2_l2a) can be written as reflectance; none is generated")
    grid = _resolve_grid(grid, extent, aoi, cond_specs)
    if max_area_km2 is not None and area_km2(grid) > max_area_km2:
        estimate = estimate_run(model, grid, len(generated_idx), len(cond_specs), samples, steps, overlap)
        raise InputError(
            f"max_area_km2: the area is {area_km2(grid):.1f} km2 ({grid.width} x {grid.height} px), above the "
            f"limit of {max_area_km2:g} km2; it would take {estimate.describe()}. "
            "Choose a smaller extent or raise the limit."
        )
    prepared = [prepare_condition(spec, grid, cancel) for spec in cond_specs]
    _make_out_dir(out_dir)

    layout = WindowLayout(grid.height // PIXELS_PER_LATENT, grid.width // PIXELS_PER_LATENT, overlap)
    tracker = _Progress(progress, len(layout) * (len(prepared) + samples * (steps + len(generated_idx))))
    work = Path(tempfile.mkdtemp(prefix=f".{run_name}.", suffix=".partial", dir=out_dir))
    try:
        latents = _sample_canvas(model, prepared, generated_idx, layout, samples, seed, steps, solver,
                                 tracker, cancel)
        tags = _run_tags(model, prepared, seed, steps, solver, samples, overlap)
        written = []
        for k, index in enumerate(generated_idx):
            modality = MODALITIES[index]
            for sample in range(samples):
                name = f"{run_name}_{modality}" + (f"_sample{sample + 1}" if samples > 1 else "") + ".tif"
                sample_tags = {**tags, "modality": modality, "sample": str(sample + 1)}
                as_reflectance = reflectance and modality in REFLECTANCE_MODALITIES
                with OutputWriter(work / name, grid, modality, sample_tags, reflectance=as_reflectance) as writer:
                    decode_canvas(model, latents[k, sample], layout, writer.write_window, cancel,
                                  tracker.stage(f"decoding {modality}"))
                written.append(name)
        for name in written:
            os.replace(work / name, out_dir / name)
        return [out_dir / name for name in written]
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _sample_canvas(model, prepared, generated_idx, layout, samples, seed, steps, solver, tracker, cancel):
    """Generated latents [n_generated, samples, 4, H, W] on the canvas (streams: module docstring)."""
    init_stream, posterior_stream, ignored_stream = (
        np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3)
    )
    shape = (samples, LATENT_CHANNELS, layout.height, layout.width)
    cond_latents = np.empty((len(prepared),) + shape, dtype=np.float32)
    for k, condition in enumerate(prepared):
        moments = encode_condition(model, condition.read_window, layout, cancel,
                                   tracker.stage(f"encoding {condition.modality}"))
        cond_latents[k] = sample_posterior(moments[None], posterior_stream.standard_normal(shape, dtype=np.float32))
    x_T = init_stream.standard_normal((len(generated_idx),) + shape, dtype=np.float32)
    denoiser = CanvasDenoiser(
        model, layout, generated_idx, [modality_index(p.modality) for p in prepared], cond_latents,
        ignored_stream, cancel=cancel, on_windows=tracker.stage("denoising"),
    )
    return solve(denoiser, x_T, steps, solver, cancel=cancel)


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


def _check_modalities(generate, conditions):
    """Generated modality indices (sorted) and the condition specs in modality order."""
    names = [name.strip() for name in generate.split(",")] if isinstance(generate, str) else list(generate)
    if not names:
        raise InputError("generate: nothing to generate; name at least one of " + ", ".join(MODALITIES))
    generated_idx = []
    for name in names:
        index = modality_index(name)
        if index in generated_idx:
            raise InputError(f"generate: modality {name!r} named twice")
        generated_idx.append(index)
    specs = {}
    for spec in conditions or []:
        if not isinstance(spec, ConditionSpec):
            raise InputError(f"conditions: expected ConditionSpec items, got {spec!r}")
        index = modality_index(spec.modality)
        if index in specs:
            raise InputError(f"conditions: two conditions for {spec.modality} ({specs[index].label} and {spec.label})")
        if index in generated_idx:
            raise InputError(f"{spec.modality}: both generated and given as a condition ({spec.label})")
        specs[index] = spec
    return sorted(generated_idx), [specs[i] for i in sorted(specs)]


def _check_counts(samples, seed, overlap):
    for name, value, low in (("samples", samples, 1), ("seed", seed, 0), ("overlap", overlap, 0)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise InputError(f"{name} must be a whole number >= {low}, got {value!r}")
    if overlap >= 32:
        raise InputError(f"overlap must be 0..31 latents (8 px each), got {overlap}")


def _check_run_name(run_name, seed):
    run_name = f"copgen_seed{seed}" if run_name is None else str(run_name)
    if not _RUN_NAME.fullmatch(run_name):
        raise InputError(f"run_name {run_name!r}: use letters, digits, '.', '_' and '-' only")
    return run_name


def _make_out_dir(out_dir):
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"output folder {out_dir} cannot be created: {exc.strerror}") from None
    if not os.access(out_dir, os.W_OK):
        raise InputError(f"output folder {out_dir} is not writable")


def _resolve_grid(grid, extent, aoi, cond_specs):
    given = [name for name, value in (("grid", grid), ("extent", extent), ("aoi", aoi)) if value is not None]
    if len(given) > 1:
        raise InputError(f"give only one of grid, extent and aoi (got {' and '.join(given)})")
    if grid is not None:
        for name, size in (("width", grid.width), ("height", grid.height)):
            if size % PIXELS_PER_LATENT or size < TILE_PIXELS:
                raise InputError(f"grid {name} {size} px must be a multiple of 8 and at least {TILE_PIXELS}")
        return grid
    if extent is not None:
        default_crs = _raster_crs(cond_specs[0]) if cond_specs else None
        if isinstance(extent, str):
            return parse_extent(extent, default_crs=default_crs, pixel=PIXEL_SIZE_M)
        values = list(extent)
        if len(values) not in (4, 5):
            raise InputError(f"extent {extent!r}: expected xmin, ymin, xmax, ymax[, crs]")
        crs = values.pop() if len(values) == 5 else default_crs
        if crs is None:
            raise InputError(f"extent {extent!r}: give its CRS (no condition raster to take it from)")
        try:
            bounds = [float(v) for v in values]
        except (TypeError, ValueError):
            raise InputError(f"extent {extent!r}: xmin, ymin, xmax, ymax must be numbers") from None
        return TargetGrid.from_extent(*bounds, crs, pixel=PIXEL_SIZE_M)
    if aoi is not None:
        try:
            geometry, crs = aoi
        except (TypeError, ValueError):
            raise InputError("aoi: expected (polygon, crs)") from None
        return TargetGrid.from_polygon(geometry, crs, pixel=PIXEL_SIZE_M)
    if not cond_specs:
        raise InputError("no area: unconditional generation needs an extent or an AOI polygon")
    return TargetGrid.from_raster(cond_specs[0].path, pixel=PIXEL_SIZE_M)


def _raster_crs(spec):
    with open_raster(spec.path, spec.label) as ds:
        return ds.crs


def _run_tags(model, prepared, seed, steps, solver, samples, overlap):
    """GeoTIFF metadata that says how an output was made (all values strings)."""
    info = model.info
    sources = info.get("sources", {})
    conditions = [
        {"modality": p.modality, "layer": p.spec.layer_name or Path(p.spec.path).stem, "file": str(p.spec.path)}
        for p in prepared
    ]
    return {
        "model": str(info.get("name", "")),
        "model_precision": str(info.get("precision", "")),
        "denoiser_sha256": str(sources.get("denoiser", {}).get("sha256", "")),
        "vae_sha256": str(sources.get("vae", {}).get("sha256", "")),
        "seed": str(seed),
        "steps": str(steps),
        "solver": solver,
        "samples": str(samples),
        "overlap_latents": str(overlap),
        "conditions": json.dumps(conditions),
        "software": f"copgen_beta {__version__}",
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
