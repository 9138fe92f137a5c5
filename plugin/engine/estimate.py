"""What a canvas run will cost, told before it starts, and the time left while it runs.

:func:`estimate_canvas` counts the network evaluations of a run (denoiser windows at every call
of the tiling strategy, VAE tiles of the encoder and the decoder) and prices them with this
machine's measured call times (one denoiser call and one VAE tile, timed once per model,
device and ONNX Runtime, and kept between runs by :mod:`.speed`). :class:`RunProgress` turns
the counts into ``progress(done, total, message)`` calls whose message carries the time left,
rescaled by the speed measured so far; it serves both families (COP-GEN's estimate,
:class:`plugin.geo.physical_pipeline.CanvasCost`, has the same ``evaluations``, ``unit_seconds``,
``seconds`` and ``describe()``).
"""

import time
import weakref
from dataclasses import dataclass

import numpy as np

from . import speed
from .errors import InputError
from .families.beta.registry import LATENT_CHANNELS, LATENT_SIZE, MODALITIES, TILE_PIXELS
from .tiling import parse_tiling, vae_layout

_MEASURED = weakref.WeakKeyDictionary()  # model -> (denoiser s per window, decoder s, encoder s per tile)


@dataclass(frozen=True)
class RunEstimate:
    """What a run costs: evaluations of each network, seconds and peak bytes (rough)."""

    tiling: str
    calls: int  # denoiser calls (steps x samples: each sample's windows share a call's layout)
    denoiser_windows: int
    encoder_tiles: int
    decoder_tiles: int
    seconds_per_window: float
    seconds: float
    peak_bytes: int
    stage_seconds: dict  # {"encoding": s per tile, "denoising": s per window, "decoding": s per tile}

    @property
    def unit_seconds(self):
        """{stage: seconds per unit its progress counts} (RunProgress's figures): stage_seconds,
        which here is already per window or per tile."""
        return self.stage_seconds

    @property
    def vae_windows(self):
        return self.encoder_tiles + self.decoder_tiles

    @property
    def evaluations(self):
        return self.denoiser_windows + self.vae_windows

    def describe(self):
        return (
            f"about {duration(self.seconds)} ({self.denoiser_windows} denoiser windows over {self.calls} calls "
            f"with tiling {self.tiling}, {self.vae_windows} VAE tiles; {self.seconds_per_window:.2f} s per "
            f"window here) and about {self.peak_bytes / 2**30:.1f} GiB of memory"
        )


def estimate_canvas(model, height, width, n_generated, n_conditions, samples, steps, tiling=None):
    """RunEstimate of generating ``n_generated`` modalities on a ``height`` x ``width`` latent
    canvas from ``n_conditions`` conditions. The first estimate for a model runs one denoiser
    call and one VAE tile of each direction (the first call includes its allocations, so the
    figure leans high).

    Memory counts the model files, the activations of one call of each network (ONNX Runtime
    keeps each session's memory once it has grown, so they add up rather than take turns),
    the latent canvases with the solver's history and the decoder's band of rows.
    """
    tiling = parse_tiling(tiling)
    windows = sum(tiling.windows_per_call(height, width, steps)) * samples
    vae = vae_layout(height, width)
    tile_area = vae.window_shape[0] * vae.window_shape[1] / LATENT_SIZE ** 2  # in 32 x 32 tiles
    encoder_tiles, decoder_tiles = len(vae) * n_conditions, len(vae) * samples * n_generated
    per_window, per_decode, per_encode = _measured(model, n_conditions > 0)
    stage_seconds = {"encoding": per_encode * tile_area, "denoising": per_window,
                     "decoding": per_decode * tile_area}
    seconds = (windows * per_window + encoder_tiles * stage_seconds["encoding"]
               + decoder_tiles * stage_seconds["decoding"])
    model_bytes = sum(entry.get("bytes", 0) for entry in model.info.get("files", {}).values())
    canvas = LATENT_CHANNELS * height * width * 4
    # x, x0 history (up to 3 for DPM-Solver-fast), the blended noise and a temporary, per sample.
    latent_bytes = canvas * samples * (6 * n_generated + n_conditions) + canvas * 2 * n_conditions
    band_bytes = 2 * 4 * 3 * vae.window_shape[0] * 8 * width * 8
    activations = _activation_bytes(model.info, min(model.max_batch, max(windows // max(steps * samples, 1), 1)),
                                    min(len(vae), _vae_tiles_per_call(model.max_batch, tile_area)) * tile_area,
                                    n_conditions > 0)
    peak = model_bytes + activations + latent_bytes + band_bytes
    return RunEstimate(tiling.spec, steps * samples, windows, encoder_tiles, decoder_tiles, per_window,
                       seconds, int(peak), stage_seconds)


def check_limits(estimate, max_hours=None, max_memory_gib=None, what="the run", seconds=None):
    """InputError naming the limit (the request field max_hours / max_memory_gib) that ``estimate``
    is beyond, with the estimated figure; checked before a run reads or allocates anything.
    ``seconds``: the time to hold against max_hours when it is not the estimate's own (a
    dataset's cells together). An estimate whose ``seconds`` is None (not priced) is held
    against memory only."""
    seconds = estimate.seconds if seconds is None else seconds
    if max_hours is not None and seconds is not None and seconds > max_hours * 3600:
        raise InputError(f"{what} would take {estimate.describe() if seconds == estimate.seconds else 'about ' + duration(seconds)}, "
                         f"above the limit of {max_hours:g} h; use fewer samples, steps or a smaller area, "
                         "or raise the limit", "max_hours")
    gib = estimate.peak_bytes / 2 ** 30
    if max_memory_gib is not None and gib > max_memory_gib:
        raise InputError(f"{what} would need about {gib:.1f} GiB of memory, above the limit of {max_memory_gib:g} GiB "
                         f"({estimate.describe()}); use fewer samples or a smaller area, or raise the limit",
                         "max_memory_gib")


def machine_memory_gib():
    """This machine's RAM in GiB (the faces' default memory limit), None where it cannot be told."""
    import os

    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2 ** 30
    except (AttributeError, ValueError, OSError):
        return None


def _measured(model, with_encoder):
    """(s per denoiser window, s per decoded 32 x 32 tile, s per encoded tile), measured once."""
    known = _MEASURED.get(model)
    if known is None:
        kept = speed.recall(speed.speed_key(model))
        known = tuple(kept) if kept and len(kept) == 3 else None
    if known is None or (with_encoder and known[2] is None):
        latents = np.zeros((1, len(MODALITIES), LATENT_CHANNELS, LATENT_SIZE, LATENT_SIZE), dtype=np.float32)
        timesteps = np.zeros((1, len(MODALITIES)), dtype=np.float32)
        window = _timed(lambda: model.denoise(latents, timesteps))
        decode = _timed(lambda: model.decode(latents[:, 0]))
        image = np.zeros((1, 3, TILE_PIXELS, TILE_PIXELS), dtype=np.float32)
        encode = _timed(lambda: model.encode_moments(image)) if with_encoder else None
        known = (window, decode, encode)
        speed.remember(speed.speed_key(model), known)
    _MEASURED[model] = known
    return known[0], known[1], known[2] or known[1]


def _timed(call):
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def _vae_tiles_per_call(batch, tile_area):
    """VAE tiles per call: ``batch`` 32 x 32 tiles' worth of area, at least one (as vae_canvas does)."""
    return max(1, int(batch / tile_area))


# Full-resolution feature maps (of ch x ch_mult[0] channels) one VAE call holds at its peak,
# measured with /proc/self/status VmHWM on the full-size fp32 graphs (CPU): decoding a 1072 px
# canvas in 608 px tiles grew the process by 1.42 GiB, encoding it by 0.63 GiB
DECODER_MAPS = 8
ENCODER_MAPS = 4


def _activation_bytes(info, windows, vae_area, with_encoder):
    """Rough float32 activations of one call of each network: the denoiser's over ``windows``
    windows (attention scores, MLP hidden, token copies), the decoder's and (with conditions)
    the encoder's over ``vae_area`` (in 32 x 32 latent tiles) of full-resolution feature maps."""
    net = info.get("denoiser", {})
    grid_side = net.get("img_size", 32) // net.get("patch_size", 2)
    tokens = net.get("num_modalities", len(MODALITIES)) * (1 + grid_side ** 2)
    denoiser = (
        net.get("num_heads", 16) * tokens ** 2 * 2
        + tokens * net.get("mlp_hidden", 4096) * 2
        + tokens * net.get("embed_dim", 1024) * 8
    )
    vae = info.get("vae", {})
    feature_map = vae.get("ch", 128) * vae.get("ch_mult", [1])[0] * TILE_PIXELS ** 2 * vae_area
    maps = DECODER_MAPS + (ENCODER_MAPS if with_encoder else 0)
    return int(4 * (windows * denoiser + maps * feature_map))


def duration(seconds):
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


# Time left is told once this much of the run has passed (earlier figures are mostly noise).
TELL_AFTER_S = 5.0
SEPARATOR = " · "


class RunProgress:
    """Counts evaluations across the stages and reports ``progress(done, total, message)``.

    ``estimate``: any run estimate with ``evaluations`` (the units all stages count together),
    ``unit_seconds`` ({stage: seconds per unit}, None when not priced), ``seconds`` and
    ``describe()`` (:class:`RunEstimate`, COP-GEN's CanvasCost). The first report (done = 0) is
    the estimate ("estimate: ..."). Later messages are the stage name, followed by
    `` · about N min left`` once the first stage is TELL_AFTER_S old: the estimate's remaining
    seconds, rescaled by how the measured time so far compares with the estimate. The clock
    starts with the first stage, so reading the inputs (not priced) does not skew the rescaling.
    """

    def __init__(self, callback, estimate, clock=time.monotonic):
        self.callback = callback
        self.estimate = estimate
        self.total = estimate.evaluations
        self.done = 0
        self.clock = clock
        self.started = None  # when the first stage started
        self.expected_done = 0.0  # estimated seconds of the work done so far
        if callback is not None:
            callback(0, self.total, f"estimate: {estimate.describe()}")

    def stage(self, name):
        """The ``on_evaluations(count)`` callback of stage ``name`` ("encoding KEY", "denoising",
        "decoding KEY"), made as the stage starts: the progress text names it now (not once its
        first unit is done, which made the text lag a stage: "denoising" through a whole VAE
        tile of decoding)."""
        if self.started is None:
            self.started = self.clock()
        unit = (self.estimate.unit_seconds or {}).get(name.split()[0]) or 0.0
        if self.callback is not None:
            self.callback(self.done, self.total, self.message(name))

        def on_evaluations(count):
            self.done += count
            self.expected_done += count * unit
            if self.callback is not None:
                self.callback(self.done, self.total, self.message(name))

        return on_evaluations

    def seconds_left(self):
        if self.started is None or self.estimate.seconds is None:
            return None
        elapsed = self.clock() - self.started
        if elapsed < TELL_AFTER_S or self.expected_done <= 0:
            return None
        return max(0.0, self.estimate.seconds - self.expected_done) * elapsed / self.expected_done

    def message(self, name):
        left = self.seconds_left()
        return name if left is None else f"{name}{SEPARATOR}about {duration(left)} left"
