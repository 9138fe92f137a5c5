"""generate_physical_area(): COP-GEN over an area, from rasters in physical units to COGs.

The order of work: the model lattice of the area (480 m units; ``.lattice``), each condition
read in physical units at its groups' native resolutions (``.physical_conditions``), put in the
model domain and VAE-encoded onto its modality's latent canvas (posterior samples, the
modality's scale), the canvases sampled together (:mod:`plugin.engine.families.copgen.canvas`,
each window conditioned on its own centre's location and on the date), then each generated
image modality decoded, put back in physical units and written as a COG at its native resolution
(``.physical_outputs``); generated location and date become one GeoJSON point per window: what
the model thinks of the window. Everything is written in a temporary folder inside ``out_dir``
and moved out when the whole run succeeded.

Random streams: ``SeedSequence(seed).spawn(3)`` = (init, neither, posterior); the first two are
the canvas sampler's, ``posterior`` draws each condition's posterior noise ([S, 8, H, W] per
image condition, in network order). The same seed, inputs and tiling give the same outputs.
"""

import math
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from ..engine.atomic import check_not_input, move_into_place, remove_leftovers, temp_sibling, write_json_atomic
from ..engine.vae_canvas import MODEL_TILE_LATENTS, PIXELS_PER_LATENT, decode_canvas, encode_canvas, sample_posterior
from ..engine.errors import InputError
from ..engine.estimate import ENCODER_MAPS, RunProgress, check_limits, duration
from ..engine.wording import count
from ..engine.families.copgen.speed import seconds_per_vae_latent, seconds_per_window
from ..engine.families.copgen.canvas import DEFAULT_TILING, WINDOW_UNITS, canvas_shape, sample_area
from ..engine.families.copgen.registry import BY_KEY, NUM_TOKENS, expand_names
from ..engine.families.copgen.request_rules import parse_date
from ..engine.model_folder import source_hashes
from ..engine.tiling import parse_tiling, vae_layout
from .lattice import ModelLattice
from .output import provenance_tags
from .condition_spec import AUTO_OFFSET, resolve_s2_offset
from .physical_conditions import SensorReader, read_all
from .s2_offset import S2Offset
from .physical_outputs import PhysicalWriter
from .pipeline import check_area, make_out_dir, resolve_grid
from .window_points import DATE, LOCATION, points_name, window_points


@dataclass(frozen=True)
class PhysicalConditionSpec:
    """One condition raster of COP-GEN: ``modality`` a sensor name (s2l2a, s1rtc, dem, ...) or
    an official key (its sensor's file then fills only that group); ``bands`` the file's band
    names in order (None: from descriptions, metadata or the sensor's usual order).
    ``s2_offset``: the DN offset a Sentinel-2 product carries (1000 from processing baseline
    04.00 on), subtracted so the model reads reflectance x 10000; "auto" reads it from the
    product as COP-GEN-Beta's conditions do (:func:`.condition_spec.resolve_s2_offset`), with
    why in ``s2_offset_note``."""

    modality: str
    path: str
    bands: Optional[tuple] = None
    s1_in_db: bool = False
    layer_name: Optional[str] = None
    s2_offset: object = AUTO_OFFSET
    s2_offset_note: Optional[str] = None

    def __post_init__(self):
        keys = expand_names([self.modality], "conditions")
        sensors = {BY_KEY[key].sensor for key in keys}
        if sensors & {"location", "date"}:
            raise InputError(f"{self.modality} is not read from a raster: the location is the area's own "
                             "and the date a parameter", "conditions")
        object.__setattr__(self, "path", str(self.path))
        resolve_s2_offset(self, BY_KEY[keys[0]].processing == "s2", f"conditions.{self.sensor}")

    def reader(self, lattice):
        """The :class:`.physical_conditions.SensorReader` of this condition over ``lattice``: the
        one way a condition is read, for generate and prepare alike."""
        return SensorReader(self.path, self.sensor, lattice, bands=self.bands, s1_in_db=self.s1_in_db,
                            s2_offset=S2Offset(self.s2_offset, self.s2_offset_note or "given"))

    @property
    def keys(self):
        return expand_names([self.modality], "conditions")

    @property
    def sensor(self):
        return BY_KEY[self.keys[0]].sensor

    @property
    def label(self):
        return f"layer {self.layer_name!r} ({self.path})" if self.layer_name else str(self.path)


def generate_physical_area(model, request, out_dir, progress=None, cancel=None, notify=None):
    """Run a COP-GEN :class:`plugin.engine.request.GenerationRequest`; the written paths
    (``request.output_names()`` for the image modalities, then ``<run>_windows.geojson`` when
    location or date is generated). Errors are InputErrors naming the request field."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"output folder {out_dir} exists and is not a folder")
    lattice = area_lattice(request)
    grid = lattice.grid(10)
    check_area(grid, request.max_area_km2)
    # before any condition is read or canvas allocated
    cost = canvas_cost(model, request, lattice)
    check_limits(cost, request.max_hours, request.max_memory_gib)
    tracker = RunProgress(progress, cost)  # the estimate before any work; each stage named as it starts
    images = [key for key in request.generate if BY_KEY[key].has_vae]
    scalars = [key for key in request.generate if not BY_KEY[key].has_vae]
    names = _image_names(request, images)
    outputs = [out_dir / name for name in names.values()] + ([out_dir / points_name(request)] if scalars else [])
    check_not_input(outputs, [spec.path for spec in request.conditions], "output")
    layers, notes = _read_conditions(request, lattice, cancel)
    for note in notes:
        _tell(notify, note)
    make_out_dir(out_dir)
    remove_leftovers(out_dir)
    work = temp_sibling(out_dir / request.run_name)
    work.mkdir()
    try:
        init, neither, posterior = (np.random.default_rng(s) for s in np.random.SeedSequence(request.seed).spawn(3))
        conditions, cells = _encode_conditions(model, layers, request.samples, posterior, cancel, tracker)
        if request.date is not None and DATE not in request.generate:
            conditions[DATE] = np.repeat(model.preprocess(DATE, np.array([parse_date(request.date)])),
                                         request.samples, axis=0)
        location = None if LOCATION in request.generate else _window_location(model, lattice)
        tiling = parse_tiling(request.tiling or DEFAULT_TILING)
        result = sample_area(model.denoise, request.generate, conditions, lattice.units, request.samples,
                             request.steps, request.solver, tiling=tiling, streams=(init, neither),
                             location=location, cond_cells=cells, max_windows=model.max_batch,
                             cancel=cancel, on_windows=tracker.stage("denoising"))
        tags = _run_tags(model, request, tiling)
        written = []
        for key in images:
            for sample in range(request.samples):
                name = names[(key, sample)]
                _write_image(model, key, result[key][sample], work / name, lattice,
                             {**tags, "sample": str(sample + 1)}, cancel, tracker.stage(f"decoding {key}"))
                sidecar = name + ".aux.xml"  # class names and colours (GDAL's PAM), before the COG
                written.extend(([sidecar] if (work / sidecar).is_file() else []) + [name])
        if scalars:
            points = window_points(model, lattice, tiling, request, result, scalars)
            write_json_atomic(work / points_name(request), points)
            written.append(points_name(request))
        move_into_place([(work / name, out_dir / name) for name in written])
        return [out_dir / name for name in written if not name.endswith(".aux.xml")]
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run_area(model, request, out_dir, progress=None, cancel=None, notify=None):
    """COP-GEN's area pipeline, as :data:`.pipeline.AREA_PIPELINES` names it."""
    return generate_physical_area(model, request, out_dir, progress, cancel, notify)


def price_area(model, request):
    """COP-GEN's estimate of ``request``: its :class:`CanvasCost` on the area's lattice."""
    return canvas_cost(model, request, area_lattice(request))


def area_lattice(request):
    """The model lattice of a request's area (its grid, extent, AOI or conditions, as COP-GEN-Beta's)."""
    return ModelLattice.from_grid(resolve_grid(request))


@dataclass(frozen=True)
class CanvasCost:
    """What a COP-GEN run holds and runs, counted without allocating: its peak bytes, its
    denoiser windows and the VAE tiles (and their area in latent cells) it encodes and decodes
    with the VAEs it opens; when the model's speed on this machine is known (``speed``: seconds
    per window, per encoded and decoded latent cell, per VAE opened), the seconds of each stage."""

    peak_bytes: int
    windows: int
    calls: int
    encoder_tiles: int = 0
    decoder_tiles: int = 0
    encoder_latents: int = 0
    decoder_latents: int = 0
    vaes_opened: tuple = (0, 0)  # (encoders, decoders)
    speed: Optional[dict] = None  # {"window", "encoder", "decoder", "open encoder", "open decoder": s}

    @property
    def seconds_per_window(self):
        return None if self.speed is None else self.speed["window"]

    @property
    def stage_seconds(self):
        """{"encoding", "denoising", "decoding": seconds of the whole stage}, None if not priced."""
        if self.speed is None:
            return None
        get = lambda name: self.speed.get(name) or 0.0  # noqa: E731 (a role the run does not use)
        return {"encoding": self.encoder_latents * get("encoder") + self.vaes_opened[0] * get("open encoder"),
                "denoising": self.windows * get("window"),
                "decoding": self.decoder_latents * get("decoder") + self.vaes_opened[1] * get("open decoder")}

    @property
    def evaluations(self):
        """The units the run's progress counts: denoiser windows and VAE tiles (RunProgress's total)."""
        return self.windows + self.encoder_tiles + self.decoder_tiles

    @property
    def unit_seconds(self):
        """{stage: seconds per window or VAE tile} (RunProgress's figures: a stage's seconds over
        its count, the VAEs' opening spread over their tiles), None if not priced."""
        stages = self.stage_seconds
        counts = {"encoding": self.encoder_tiles, "denoising": self.windows, "decoding": self.decoder_tiles}
        return None if stages is None else {stage: stages[stage] / max(n, 1) for stage, n in counts.items()}

    @property
    def seconds(self):
        stages = self.stage_seconds
        return None if stages is None else sum(stages.values())

    def describe(self):
        time = "" if self.seconds is None else (
            f"about {duration(self.seconds)} ({self.seconds_per_window:.2f} s per window here): ")
        return (f"{time}{count(self.windows, 'denoiser window')} over {count(self.calls, 'call')}, "
                f"{count(self.encoder_tiles + self.decoder_tiles, 'VAE tile')} and about "
                f"{self.peak_bytes / 2 ** 30:.1f} GiB of memory")


def canvas_cost(model, request, lattice):
    """The run's :class:`CanvasCost`: every network evaluation counted (the tiling's windows at
    each call, the VAE tiles of each condition encoded and of each generated image decoded), and
    priced with the model's speed on this machine (measured once, on VAEs the run opens; the
    denoiser at the batch of windows the run calls it with)."""
    tiling = parse_tiling(request.tiling or DEFAULT_TILING)
    steps, samples = request.steps, request.samples
    fixed = any(not BY_KEY[key].has_vae for key in request.generate)  # generated scalars: one layout (sample_area)
    per_call = [len(tiling.layout(*lattice.units, 0 if fixed else call, steps, size=WINDOW_UNITS))
                for call in range(steps)]
    floats = lambda key: math.prod(canvas_shape(key, lattice.units))  # noqa: E731
    given = [key for spec in request.conditions for key in spec.keys
             if BY_KEY[key].has_vae and key not in request.generate]
    decoded = [key for key in request.generate if BY_KEY[key].has_vae]
    # per sample: x, the solver's history (up to 3), the noise and a temporary of each generated
    # canvas, the scaled latents and the posterior sample of each condition
    canvas = 4 * samples * (6 * sum(floats(k) for k in decoded) + 2 * sum(floats(k) for k in given))
    encoder = _vae_tiles(lattice, given)
    decoder = tuple(samples * n for n in _vae_tiles(lattice, decoded))
    batch = min(model.max_batch, max(per_call) * samples)
    graphs = ["denoiser"] + [f"vae_encoder.{k}" for k in given] + [f"vae_decoder.{k}" for k in decoded]
    peak = (sum(_graph_bytes(model, name) for name in graphs) + canvas
            + _activation_bytes(model.info, batch, lattice, given, decoded, model.max_batch))
    return CanvasCost(int(peak), sum(per_call) * samples, steps * samples, encoder[0], decoder[0],
                      encoder[1], decoder[1], (len(given), len(decoded)), _speed(model, batch, given, decoded))


def _graph_bytes(model, name):
    """Bytes of the graph ``name`` the run opens (with its external weights), from model.json;
    every file of the folder where the model has no plan (built by hand)."""
    files = model.info.get("files", {})
    plan = getattr(model, "plan", None)
    if plan is None or name not in plan.graphs:
        return sum(entry.get("bytes", 0) for entry in files.values()) if name == "denoiser" else 0
    graph = Path(plan.graphs[name]).name
    return sum(files.get(file, {}).get("bytes", 0) for file in (graph, graph + ".data"))


def _vae_call_latents(lattice, key, batch):
    """Latent cells of the largest VAE call over ``key``'s canvas (tiles of vae_canvas, as many
    per call as its batch rule allows)."""
    layout = vae_layout(*canvas_shape(key, lattice.units)[1:])
    area = layout.window_shape[0] * layout.window_shape[1]
    return area * min(len(layout), max(1, batch * MODEL_TILE_LATENTS // area))


# Full-resolution feature maps (of ch x ch_mult[0] channels) a COP-GEN decoder session holds at
# its peak: decoding a cell's S1 canvas in 624 px tiles and its DEM in one 368 px tile grew the
# peak RSS by 3.8 GiB (bench/estimate_ratio.py, full-size fp32, CPU), about twice as many maps as
# COP-GEN-Beta's decoder (engine.estimate.DECODER_MAPS); the encoders matched ENCODER_MAPS.
DECODER_MAPS = 16


def _activation_bytes(info, windows, lattice, given, decoded, batch):
    """Rough float32 activations of the run's networks, each session's at its largest call
    (ONNX Runtime keeps a session's memory once it has grown, so the sessions add up): the
    denoiser's over ``windows`` windows (attention scores, MLP hidden, token copies) and each
    VAE's full-resolution feature maps (ENCODER_MAPS as for COP-GEN-Beta, DECODER_MAPS above)."""
    net = info.get("denoiser", {})
    denoiser = (net.get("num_heads", 16) * NUM_TOKENS ** 2 * 2 + NUM_TOKENS * net.get("mlp_hidden", 4096) * 2
                + NUM_TOKENS * net.get("embed_dim", 1024) * 8)
    vae = next(iter(info.get("vaes", {}).values()), {})
    per_pixel = vae.get("ch", 128) * vae.get("ch_mult", [1])[0] * PIXELS_PER_LATENT ** 2
    maps = sum(ENCODER_MAPS * _vae_call_latents(lattice, key, batch) for key in given)
    maps += sum(DECODER_MAPS * _vae_call_latents(lattice, key, batch) for key in decoded)
    return 4 * (windows * denoiser + maps * per_pixel)


def _speed(model, batch, given, decoded):
    """CanvasCost.speed: the model's figures on this machine (measured once), None when unknown."""
    window = seconds_per_window(model, batch)
    if window is None:
        return None
    figures = {"window": window}
    for role, keys in (("encoder", given), ("decoder", decoded)):
        if keys:
            figures[role], figures[f"open {role}"] = seconds_per_vae_latent(model, role, keys[0])
    return figures


def _vae_tiles(lattice, keys):
    """(tiles, latent cells in them) of encoding or decoding the canvases of ``keys`` once, in the
    tiles of vae_canvas (overlaps count twice: the VAE runs on them twice)."""
    tiles = area = 0
    for key in keys:
        layout = vae_layout(*canvas_shape(key, lattice.units)[1:])
        tiles += len(layout)
        area += len(layout) * layout.window_shape[0] * layout.window_shape[1]
    return tiles, area


def s2_offset_tags(specs):
    """{"s2_offset": {condition: "DN subtracted (why)"}} of the Sentinel-2 conditions, or {}."""
    offsets = {spec.modality: f"{spec.s2_offset:g} ({spec.s2_offset_note or 'given'})"
               for spec in specs if BY_KEY[spec.keys[0]].processing == "s2"}
    return {"s2_offset": offsets} if offsets else {}


def _image_names(request, images):
    """{(key, sample): file name} in request.output_names() order."""
    names = iter(request.output_names())
    table = {}
    for key in request.generate:
        for sample in range(request.samples):
            name = next(names)
            if key in images:
                table[key, sample] = name
    return table


def _tell(notify, message):
    if notify is not None:
        notify(message)


def _read_conditions(request, lattice, cancel):
    """{key: (values, valid)} of every given image modality, and the readers' notes."""
    layers, notes = {}, []
    for spec in request.conditions:
        with spec.reader(lattice) as reader:
            read = read_all(reader, cancel)
        notes.extend(read.notes)
        layers.update({key: read[key] for key in spec.keys if key not in request.generate})
    return layers, notes


def _encode_conditions(model, layers, samples, posterior, cancel, tracker):
    """({key: scaled latent canvas [S, 8, H, W]}, {key: latent cells with data}), network order;
    each key's encoding is a stage of ``tracker`` (a RunProgress)."""
    conditions, cells = {}, {}
    for key in sorted(layers, key=lambda k: BY_KEY[k].index):
        values, valid = layers[key]
        height, width = valid.shape[0] // PIXELS_PER_LATENT, valid.shape[1] // PIXELS_PER_LATENT
        filled = _filled(values, valid)
        domain = model.preprocess(key, _as_codes(key, filled)[None])[0]

        def read_tile(row, col, h, w, domain=domain, valid=valid):
            return domain[:, row:row + h, col:col + w], valid[row:row + h, col:col + w]

        encoded = encode_canvas(lambda x, key=key: model.encode_moments(key, x, cancel), read_tile, height, width,
                                2 * BY_KEY[key].latent_shape[0], cancel=cancel,
                                on_tiles=tracker.stage(f"encoding {key}"))
        noise = posterior.standard_normal((samples,) + (BY_KEY[key].latent_shape[0], height, width), dtype=np.float32)
        conditions[key] = sample_posterior(encoded.moments[None], noise, BY_KEY[key].scale)
        cells[key] = encoded.cells
    return conditions, cells


def _filled(values, valid):
    """Values with pixels without data set to the mean of the valid ones (per band), so the
    encoder sees no NaN; the canvas treats latents without data as absent anyway."""
    filled = np.array(values, dtype=np.float32, copy=True)
    for band in filled:
        band[~valid] = float(np.nanmean(band[valid])) if valid.any() else 0.0
    return filled


def _as_codes(key, values):
    """Class maps arrive as float codes from the reader: whole numbers for the one-hot rule."""
    return np.rint(values).astype(np.int64) if BY_KEY[key].processing in ("lulc", "cloud") else values


def _window_location(model, lattice):
    cache = {}

    def location(row, col):
        if (row, col) not in cache:
            lat, lon = lattice.window_centre_lonlat(row, col)
            cache[row, col] = model.preprocess(LOCATION, np.array([[lat, lon]]))[0]
        return cache[row, col]

    return location


def _write_image(model, key, canvas, path, lattice, tags, cancel, on_tiles):
    with PhysicalWriter(path, lattice, key, tags=tags) as writer:
        def write(top, left, strip):
            writer.write_window(top, left, model.postprocess(key, strip[None])[0])

        decode_canvas(lambda z: model.decode(key, z, cancel), canvas, write, cancel=cancel, on_tiles=on_tiles,
                      batch=model.max_batch)


def _run_tags(model, request, tiling):
    info = model.info
    return {
        "model": str(info.get("name", "")),
        "model_precision": str(info.get("precision", "")),
        "denoiser_precision": str(model.denoiser_precision),
        **source_hashes(info),
        "seed": str(request.seed),
        "steps": str(request.steps),
        "solver": request.solver,
        "samples": str(request.samples),
        "tiling": tiling.spec,
        "date": request.date or "",
        "conditions": [f"{spec.modality}={spec.path}" for spec in request.conditions],
        **s2_offset_tags(request.conditions),
        "synthetic": "true",
        **provenance_tags("generate"),
    }
