"""generate_area(): seamless generation over any area, from inputs on disk to COG outputs.

The order of work: validate every argument, derive the 10 m grid, prepare the conditions
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
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..engine.atomic import check_not_input, remove_leftovers, temp_sibling
from ..engine.errors import InputError
from ..engine.modalities import LATENT_CHANNELS, LATENT_SIZE, MODALITIES, PIXEL_SIZE_M, TILE_PIXELS, modality_index
from ..engine.solvers import check_solver_args, solve
from .conditions import ConditionSpec, prepare_condition
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

REFLECTANCE_MODALITIES = ("s2_l1c", "s2_l2a")
_RUN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def generate_area(model, conditions, generate, out_dir, grid=None, extent=None, aoi=None,
                  samples=1, seed=0, steps=50, solver="dpm-solver-fast", reflectance=False,
                  max_area_km2=None, overlap=DEFAULT_OVERLAP, progress=None, cancel=None,
                  run_name=None, option_names=None):
    """Generate ``generate`` modalities over an area; returns the written GeoTIFF paths.

    model: a :class:`plugin.engine.model.CopGenModel`. conditions: ConditionSpec list (at most
    one per modality, none of them generated). The area is ``grid`` (a TargetGrid), or
    ``extent`` = (xmin, ymin, xmax, ymax[, crs]) or "xmin,ymin,xmax,ymax[,EPSG]" (without a CRS:
    that of the first condition in a projected CRS, else of the first condition), or
    ``aoi`` = (polygon, crs) whose outside becomes nodata, or else the footprint of the first
    condition in a projected CRS (else of the first condition). ``overlap``: latents shared by
    neighbouring 32-latent windows (0 = independent tiles, for comparison only).
    ``reflectance``: write S2 outputs as UInt16 DN (B04, B03, B02). ``max_area_km2``: refuse
    larger areas (InputError with the estimated time and memory). ``progress(done, total,
    stage)``: ``done`` of ``total`` window evaluations (encoder, denoiser and decoder windows),
    ``stage`` says which. ``cancel()`` returning True stops between network calls with
    Cancelled, leaving no output. Files are named ``{run_name}_{modality}.tif``
    (``..._sample{k}.tif`` when samples > 1), replacing files of the same name.
    ``option_names``: {keyword: name} for messages about this function's arguments (the CLI
    passes its flags, e.g. {"max_area_km2": "--max-area-km2"}); default: the keywords.

    Where a condition has no data in a whole 256 px window, the model treats it as not given
    there; outputs record the fraction of the area each condition covers
    (``condition_coverage``).
    """
    name = _namer(option_names)
    generated_idx, user_specs = _check_modalities(generate, conditions, name)
    _check_counts(name, samples=samples, seed=seed, steps=steps, overlap=overlap)
    check_solver_args(steps, solver)
    run_name = _check_run_name(run_name, seed, name)
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"output folder {out_dir} exists and is not a folder")
    if max_area_km2 is not None and not (
        isinstance(max_area_km2, (int, float)) and not isinstance(max_area_km2, bool) and max_area_km2 > 0
    ):
        raise InputError(f"{name('max_area_km2')} must be a positive number of km2, got {max_area_km2!r}")
    if reflectance and not any(MODALITIES[i] in REFLECTANCE_MODALITIES for i in generated_idx):
        raise InputError(
            f"{name('reflectance')}: only S2 outputs (s2_l1c, s2_l2a) can be written as reflectance; none is generated"
        )
    grid = _resolve_grid(grid, extent, aoi, user_specs, name)
    if max_area_km2 is not None and area_km2(grid) > max_area_km2:
        estimate = estimate_run(model, grid, len(generated_idx), len(user_specs), samples, steps, overlap)
        raise InputError(
            f"{name('max_area_km2')}: the area is {area_km2(grid):.1f} km2 ({grid.width} x {grid.height} px), "
            f"above the limit of {max_area_km2:g} km2; it would take {estimate.describe()}. "
            "Choose a smaller area or raise the limit."
        )
    outputs = [_output_name(run_name, MODALITIES[i], k, samples) for i in generated_idx for k in range(samples)]
    check_not_input([out_dir / name for name in outputs], [spec.path for spec in user_specs], "output")
    cond_specs = sorted(user_specs, key=lambda spec: modality_index(spec.modality))
    prepared = [prepare_condition(spec, grid, cancel) for spec in cond_specs]
    _make_out_dir(out_dir)

    layout = WindowLayout(grid.height // PIXELS_PER_LATENT, grid.width // PIXELS_PER_LATENT, overlap)
    tracker = _Progress(progress, len(layout) * (len(prepared) + samples * (steps + len(generated_idx))))
    remove_leftovers(out_dir)  # of runs killed (kill -9) before they could clean up
    work = temp_sibling(out_dir / run_name)  # names this process: see plugin.engine.atomic
    work.mkdir()
    try:
        latents, coverage = _sample_canvas(model, prepared, generated_idx, layout, samples, seed, steps,
                                           solver, tracker, cancel)
        tags = _run_tags(model, prepared, coverage, seed, steps, solver, samples, overlap)
        written = []
        for k, index in enumerate(generated_idx):
            modality = MODALITIES[index]
            for sample in range(samples):
                name = _output_name(run_name, modality, sample, samples)
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


def _output_name(run_name, modality, sample, samples):
    return f"{run_name}_{modality}" + (f"_sample{sample + 1}" if samples > 1 else "") + ".tif"


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


def _namer(option_names):
    """How messages name a keyword argument: ``option_names``' name for it, else the keyword."""
    names = dict(option_names or {})
    return lambda keyword: names.get(keyword, keyword)


def _check_modalities(generate, conditions, name):
    """Generated modality indices (sorted) and the condition specs in the order given."""
    if isinstance(generate, str):
        generate = [item.strip() for item in generate.split(",") if item.strip()]
    modalities = list(generate)
    if not modalities:
        raise InputError(f"{name('generate')}: nothing to generate; name at least one of " + ", ".join(MODALITIES))
    generated_idx = []
    for modality in modalities:
        index = modality_index(modality)
        if index in generated_idx:
            raise InputError(f"{name('generate')}: modality {modality!r} named twice")
        generated_idx.append(index)
    specs = {}
    for spec in conditions or []:
        if not isinstance(spec, ConditionSpec):
            raise InputError(f"{name('conditions')}: expected ConditionSpec items, got {spec!r}")
        index = modality_index(spec.modality)
        if index in specs:
            raise InputError(
                f"{name('conditions')}: two conditions for {spec.modality} ({specs[index].label} and {spec.label})"
            )
        if index in generated_idx:
            raise InputError(f"{spec.modality}: both generated and given as a condition ({spec.label})")
        specs[index] = spec
    return sorted(generated_idx), list(specs.values())


def _check_counts(name, **counts):
    lowest = {"samples": 1, "seed": 0, "steps": 1, "overlap": 0}
    for keyword, value in counts.items():
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < lowest[keyword]:
            raise InputError(f"{name(keyword)} must be a whole number >= {lowest[keyword]}, got {value!r}")
    if counts["overlap"] >= LATENT_SIZE:
        raise InputError(f"{name('overlap')} must be 0..31 latents (8 px each), got {counts['overlap']}")


def _check_run_name(run_name, seed, name):
    run_name = f"copgen_seed{seed}" if run_name is None else str(run_name)
    if not _RUN_NAME.fullmatch(run_name):
        raise InputError(f"{name('run_name')} {run_name!r}: use letters, digits, '.', '_' and '-' only")
    return run_name


def _make_out_dir(out_dir):
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"output folder {out_dir} cannot be created: {exc.strerror}") from None
    if not os.access(out_dir, os.W_OK):
        raise InputError(f"output folder {out_dir} is not writable")


def _resolve_grid(grid, extent, aoi, specs, name):
    """The grid: given, or from the extent / AOI / conditions (``specs`` in the user's order)."""
    given = [keyword for keyword, value in (("grid", grid), ("extent", extent), ("aoi", aoi)) if value is not None]
    if len(given) > 1:
        raise InputError(f"give only one of {name('grid')}, {name('extent')} and {name('aoi')} "
                         f"(got {' and '.join(map(name, given))})")
    if grid is not None:
        for side, size in (("width", grid.width), ("height", grid.height)):
            if size % PIXELS_PER_LATENT or size < TILE_PIXELS:
                raise InputError(f"{name('grid')} {side} {size} px must be a multiple of 8 and at least {TILE_PIXELS}")
        return grid
    lattices = [lattice for lattice in (raster_lattice(s.path, PIXEL_SIZE_M, s.label) for s in specs) if lattice]
    if extent is not None:
        default_crs = _raster_crs(_area_condition(specs)) if specs else None
        if isinstance(extent, str):
            return parse_extent(extent, default_crs=default_crs, pixel=PIXEL_SIZE_M, lattices=lattices)
        values = list(extent)
        if len(values) not in (4, 5):
            raise InputError(f"{name('extent')} {extent!r}: expected xmin, ymin, xmax, ymax[, crs]")
        crs = values.pop() if len(values) == 5 else default_crs
        if crs is None:
            raise InputError(f"{name('extent')} {extent!r}: give its CRS (no condition raster to take it from)")
        try:
            bounds = [float(v) for v in values]
        except (TypeError, ValueError):
            raise InputError(f"{name('extent')} {extent!r}: xmin, ymin, xmax, ymax must be numbers") from None
        return TargetGrid.from_extent(*bounds, crs, pixel=PIXEL_SIZE_M, lattices=lattices)
    if aoi is not None:
        try:
            geometry, crs = aoi
        except (TypeError, ValueError):
            raise InputError(f"{name('aoi')}: expected (polygon, crs)") from None
        return TargetGrid.from_polygon(geometry, crs, pixel=PIXEL_SIZE_M, lattices=lattices)
    if not specs:
        raise InputError(
            f"no area: unconditional generation needs an extent ({name('extent')}) or an AOI polygon ({name('aoi')})"
        )
    return TargetGrid.from_raster(_area_condition(specs).path, pixel=PIXEL_SIZE_M, lattices=lattices)


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
