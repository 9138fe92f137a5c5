"""Seamless generation over areas larger than one model tile (MultiDiffusion on a latent canvas).

The model only sees 32 x 32 latent windows (256 px, 2.56 km). An area is a latent canvas of any
size (the target grid is a whole number of latents, 8 px each) covered by overlapping windows.
Every network call cuts all windows out of the canvas, denoises them in batches and blends the
predicted noise back with smooth weights; conditions are VAE-encoded in overlapping tiles whose
moments are blended the same way, and decoding feathers overlapping decoded windows into the
output, one strip of rows at a time, so only the 1/8-resolution latent canvas is ever whole-area.
With ``overlap=0`` the same code stitches independent tiles (kept for comparison only).
"""

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from ..engine.errors import Cancelled, InputError
from ..engine.model import LOGVAR_MAX, LOGVAR_MIN, assemble_network_input, split_generated
from ..engine.modalities import LATENT_CHANNELS, LATENT_SIZE, TILE_PIXELS, VAE_SCALE

PIXELS_PER_LATENT = TILE_PIXELS // LATENT_SIZE
DEFAULT_OVERLAP = LATENT_SIZE // 2


def window_starts(length, window=LATENT_SIZE, overlap=DEFAULT_OVERLAP):
    """Offsets of windows of ``window`` cells covering ``length`` cells exactly.

    Windows advance by ``window - overlap``; the last one is snapped to the far edge, so it may
    overlap its neighbour by more than ``overlap``.
    """
    if length < window:
        raise InputError(f"canvas of {length} latents is smaller than one window ({window})")
    if not 0 <= overlap < window:
        raise InputError(f"overlap must be 0..{window - 1} latents, got {overlap}")
    stride = window - overlap
    starts = list(range(0, length - window + 1, stride))
    if starts[-1] != length - window:
        starts.append(length - window)
    return starts


def blend_ramp(size, overlap):
    """1-D blend weights of one window: raised-cosine ramps over ``overlap`` cells at each end.

    Cell centres are sampled, so the weights never reach 0 and every canvas cell has a positive
    total weight; with ``overlap == size / 2`` neighbouring ramps sum to exactly 1.
    """
    weights = np.ones(size, dtype=np.float64)
    if overlap:
        ramp = np.sin(0.5 * np.pi * (np.arange(overlap) + 0.5) / overlap) ** 2
        weights[:overlap] = ramp
        weights[size - overlap:] = np.minimum(weights[size - overlap:], ramp[::-1])
    return weights


@dataclass(frozen=True)
class WindowLayout:
    """Overlapping 32 x 32 windows over a latent canvas of ``height`` x ``width`` latents."""

    height: int
    width: int
    overlap: int = DEFAULT_OVERLAP

    @cached_property
    def rows(self):
        return window_starts(self.height, LATENT_SIZE, self.overlap)

    @cached_property
    def cols(self):
        return window_starts(self.width, LATENT_SIZE, self.overlap)

    @cached_property
    def windows(self):
        """(row, col) latent offsets of every window, row-major."""
        return tuple((row, col) for row in self.rows for col in self.cols)

    def __len__(self):
        return len(self.rows) * len(self.cols)

    @cached_property
    def weights(self):
        """Blend weights of one latent window, [32, 32] float32."""
        ramp = blend_ramp(LATENT_SIZE, self.overlap)
        return np.outer(ramp, ramp).astype(np.float32)

    @cached_property
    def pixel_weights(self):
        """Blend weights of one decoded 256 x 256 px window, [256, 256] float32."""
        ramp = blend_ramp(TILE_PIXELS, self.overlap * PIXELS_PER_LATENT)
        return np.outer(ramp, ramp).astype(np.float32)

    @cached_property
    def weight_sum(self):
        """Total blend weight of every canvas cell, [height, width] float32 (all > 0)."""
        total = np.zeros((self.height, self.width), dtype=np.float32)
        for row, col in self.windows:
            total[row:row + LATENT_SIZE, col:col + LATENT_SIZE] += self.weights
        return total

    def accumulate(self, canvas, values, windows):
        """Add window values [K, ..., 32, 32] times the blend weights onto canvas [..., H, W].

        Callers accumulate every window (in as many chunks as they like), then divide by
        :attr:`weight_sum`.
        """
        for value, (row, col) in zip(values, windows):
            canvas[..., row:row + LATENT_SIZE, col:col + LATENT_SIZE] += value * self.weights


def cut_windows(canvas, windows):
    """Stack the 32 x 32 windows of a canvas [..., H, W] into [K, ..., 32, 32]."""
    return np.stack(
        [canvas[..., row:row + LATENT_SIZE, col:col + LATENT_SIZE] for row, col in windows]
    )


def chunks(items, size):
    for start in range(0, len(items), size):
        yield items[start:start + size]


def seam_score(image, period=TILE_PIXELS):
    """How visible a tile grid of ``period`` px is in an image [C, H, W] or [H, W].

    Mean absolute difference between neighbouring pixels across the grid lines, divided by the
    same mean everywhere else: about 1 when the grid is invisible, larger when tiles show seams.
    """
    image = np.asarray(image, dtype=np.float64)
    if image.ndim == 2:
        image = image[None]
    across, within = [], []
    for axis in (1, 2):
        steps = np.abs(np.diff(image, axis=axis))
        # diff index i compares pixels i and i + 1: a grid line lies between period - 1 and period.
        on_line = (np.arange(steps.shape[axis]) + 1) % period == 0
        across.append(np.compress(on_line, steps, axis=axis).ravel())
        within.append(np.compress(~on_line, steps, axis=axis).ravel())
    across, within = np.concatenate(across), np.concatenate(within)
    if not across.size:
        raise InputError(f"image of {image.shape[1]} x {image.shape[2]} px has no {period} px tile grid")
    return float(across.mean() / within.mean())


def _check_cancel(cancel, what):
    if cancel is not None and cancel():
        raise Cancelled(f"cancelled while {what}")


def fill_nodata(rgb, valid, max_iterations=TILE_PIXELS):
    """``rgb`` with pixels where ``valid`` is False filled by growing the valid area inwards.

    Each pass gives the invalid pixels that touch valid ones the mean of those neighbours, so a
    tile padded beyond its raster (or with holes) continues its edges instead of showing the
    thumbnails' black fill, which the model would copy. A tile with no valid pixel is returned
    as it is.
    """
    if valid.all() or not valid.any():
        return rgb
    image = rgb.astype(np.float32)
    known = valid.copy()
    for _ in range(max_iterations):
        total = np.zeros_like(image)
        count = np.zeros(known.shape, dtype=np.float32)
        for axis, shift in ((1, 1), (1, -1), (2, 1), (2, -1)):
            neighbour_known = np.roll(known, shift, axis=axis - 1)
            neighbour_image = np.roll(image, shift, axis=axis)
            # np.roll wraps around: the wrapped edge row/column is not a neighbour
            edge = 0 if shift == 1 else -1
            if axis == 1:
                neighbour_known[edge, :] = False
            else:
                neighbour_known[:, edge] = False
            total += neighbour_image * neighbour_known
            count += neighbour_known
        grow = ~known & (count > 0)
        if not grow.any():
            break
        image[:, grow] = total[:, grow] / count[grow]
        known |= grow
        if known.all():
            break
    return np.rint(image).astype(rgb.dtype)


@dataclass(frozen=True)
class EncodedCondition:
    """A condition on the latent canvas: ``moments`` [8, H, W] float32 (mean, log-variance),
    ``covered`` bool [windows] (the window has at least one pixel with data), ``coverage``
    (the fraction of the area's pixels with data)."""

    moments: np.ndarray
    covered: np.ndarray
    coverage: float


def encode_condition(model, read_window, layout, cancel=None, on_windows=None, area_mask=None):
    """VAE-encode a rendered condition over the whole canvas.

    ``read_window(row_off, col_off, height, width) -> (rgb uint8 [3, h, w], valid)`` reads the
    rendering in pixels; pixels without data are filled from their valid neighbours
    (:func:`fill_nodata`) so the model is not conditioned on a black border. Each covered
    window's 256 px tile is encoded and its moments are blended like the denoiser's predictions,
    so tile borders leave no trace in the latents. Windows without any data are not encoded:
    the model is to treat the condition as absent there (see :class:`CanvasDenoiser`), and
    canvas cells that only such windows cover keep zero moments. ``area_mask(row_off, col_off,
    height, width)`` (default: everywhere) says which pixels count for ``coverage``.
    ``on_windows(n)`` is told how many windows each batch handled.
    """
    moments = np.zeros((2 * LATENT_CHANNELS, layout.height, layout.width), dtype=np.float32)
    weight_sum = np.zeros((layout.height, layout.width), dtype=np.float32)
    # valid and area pixels per latent cell; windows overlap, so cells are set, not added
    valid_cells = np.zeros((layout.height, layout.width), dtype=np.int32)
    area_cells = np.zeros_like(valid_cells)
    covered = np.zeros(len(layout), dtype=bool)
    for start in range(0, len(layout), model.max_batch):
        part = layout.windows[start:start + model.max_batch]
        _check_cancel(cancel, "encoding a condition")
        tiles, encoded = [], []
        for k, (row, col) in enumerate(part):
            window = (row * PIXELS_PER_LATENT, col * PIXELS_PER_LATENT, TILE_PIXELS, TILE_PIXELS)
            rgb, valid = read_window(*window)
            area = np.ones_like(valid) if area_mask is None else area_mask(*window)
            cells = np.s_[row:row + LATENT_SIZE, col:col + LATENT_SIZE]
            valid_cells[cells] = _per_cell(valid & area)
            area_cells[cells] = _per_cell(area)
            if valid.any():
                covered[start + k] = True
                tiles.append(fill_nodata(rgb, valid))
                encoded.append((row, col))
        if tiles:
            images = np.stack(tiles).astype(np.float32) / 127.5 - 1.0
            layout.accumulate(moments, model.encode_moments(images), encoded)
            for row, col in encoded:
                weight_sum[row:row + LATENT_SIZE, col:col + LATENT_SIZE] += layout.weights
        if on_windows is not None:
            on_windows(len(part))
    np.divide(moments, weight_sum, out=moments, where=weight_sum > 0)
    coverage = float(valid_cells.sum() / area_cells.sum()) if area_cells.any() else 0.0
    return EncodedCondition(moments, covered, coverage)


def _per_cell(mask):
    """Count of True pixels in each 8 x 8 px latent cell of a mask [8h, 8w]."""
    height, width = mask.shape[0] // PIXELS_PER_LATENT, mask.shape[1] // PIXELS_PER_LATENT
    return mask.reshape(height, PIXELS_PER_LATENT, width, PIXELS_PER_LATENT).sum(axis=(1, 3))


def decode_canvas(model, latents, layout, write, cancel=None, on_windows=None):
    """Decode a latent canvas [4, H, W] into RGB uint8 strips passed to ``write(row_off, col_off, rgb)``.

    Window rows are decoded top to bottom; their 256 px images are feathered with
    :attr:`WindowLayout.pixel_weights` into a band one window tall, and each strip of rows that
    no later window touches is written and dropped, so the full-resolution image never exists.
    """
    width = layout.width * PIXELS_PER_LATENT
    height = layout.height * PIXELS_PER_LATENT
    band = np.zeros((3, TILE_PIXELS, width), dtype=np.float32)
    band_weight = np.zeros((TILE_PIXELS, width), dtype=np.float32)
    weights = layout.pixel_weights
    for index, row in enumerate(layout.rows):
        for part in chunks([(row, col) for col in layout.cols], model.max_batch):
            _check_cancel(cancel, "decoding")
            images = model.decode(cut_windows(latents, part))
            for image, (_, col) in zip(images, part):
                left = col * PIXELS_PER_LATENT
                band[:, :, left:left + TILE_PIXELS] += image * weights
                band_weight[:, left:left + TILE_PIXELS] += weights
            if on_windows is not None:
                on_windows(len(part))
        top = row * PIXELS_PER_LATENT
        next_top = layout.rows[index + 1] * PIXELS_PER_LATENT if index + 1 < len(layout.rows) else height
        finished = next_top - top
        write(top, 0, to_uint8(band[:, :finished] / band_weight[:finished]))
        band = np.roll(band, -finished, axis=1)
        band_weight = np.roll(band_weight, -finished, axis=0)
        band[:, TILE_PIXELS - finished:] = 0
        band_weight[TILE_PIXELS - finished:] = 0


def to_uint8(image):
    """[0, 1] floats to uint8 rounded half up, as the reference saves its images."""
    return np.clip(np.floor(image * 255.0 + 0.5), 0, 255).astype(np.uint8)


def sample_posterior(moments, noise):
    """Scaled latents from blended moments [..., 8, H, W] and standard normal noise [..., 4, H, W]."""
    mean, logvar = np.split(moments, 2, axis=-3)
    std = np.exp(0.5 * np.clip(logvar, LOGVAR_MIN, LOGVAR_MAX))
    return ((mean + std * noise) * VAE_SCALE).astype(np.float32)


class CanvasDenoiser:
    """``model_fn`` for :func:`plugin.engine.solvers.solve` over a whole latent canvas.

    ``x`` is the generated modalities' state [n_generated, S, 4, H, W] for S samples. Each call
    cuts every window of every sample, denoises them in batches with the reference semantics
    (:func:`plugin.engine.model.assemble_network_input`) and blends the predicted noise back.
    Every solver update is affine in the noise prediction, with the same coefficients all over
    the canvas, so blending the windows' predictions gives exactly the blend of the per-window
    updates that MultiDiffusion prescribes. In a window a condition does not cover, that
    modality is absent, as the reference treats modalities neither generated nor given: fresh
    N(0, 1) noise at time 0 on every call.
    """

    def __init__(self, model, layout, generated_idx, cond_idx, cond_latents, rng,
                 max_windows=None, cancel=None, on_windows=None, cond_covered=None):
        """cond_latents: [n_cond, S, 4, H, W] fixed latents of the conditioning modalities;
        rng: the stream of the ignored modalities' fresh noise, drawn in modality order for
        each batch, then for each condition's uncovered windows of the batch (in condition
        order); max_windows: windows per batch (default: the model's batch, so cancel and
        on_windows(n) follow every network call); cond_covered: bool [n_cond, windows] in
        ``layout.windows`` order (default: every window covered)."""
        self.model = model
        self.layout = layout
        self.generated_idx = list(generated_idx)
        self.cond_idx = list(cond_idx)
        self.cond_latents = cond_latents
        self.cond_covered = (
            np.ones((len(self.cond_idx), len(layout)), dtype=bool) if cond_covered is None
            else np.asarray(cond_covered, dtype=bool)
        )
        self.rng = rng
        self.max_windows = model.max_batch if max_windows is None else max_windows
        self.cancel = cancel
        self.on_windows = on_windows

    def __call__(self, x, t_continuous):
        noise = np.zeros(x.shape, dtype=np.float32)
        jobs = [(sample, index) for sample in range(x.shape[1]) for index in range(len(self.layout))]
        for part in chunks(jobs, self.max_windows):
            _check_cancel(self.cancel, "denoising")
            x_windows = self._cut(x, part)
            cond_windows = self._cut(self.cond_latents, part) if self.cond_idx else []
            latents, timesteps = assemble_network_input(
                x_windows, self.generated_idx, cond_windows, self.cond_idx, t_continuous, self.rng
            )
            windows = [index for _, index in part]
            for covered, index in zip(self.cond_covered, self.cond_idx):
                absent = ~covered[windows]
                if absent.any():
                    latents[absent, index] = self.rng.standard_normal(
                        (int(absent.sum()),) + latents.shape[2:], dtype=np.float32
                    )
            predicted = split_generated(self.model.denoise(latents, timesteps), self.generated_idx)
            for k, (sample, index) in enumerate(part):
                self.layout.accumulate(noise[:, sample], predicted[None, :, k], [self.layout.windows[index]])
            if self.on_windows is not None:
                self.on_windows(len(part))
        return noise / self.layout.weight_sum

    def _cut(self, canvas, jobs):
        """Windows of canvas [M, S, 4, H, W] for (sample, window index) jobs, as [M, K, 4, 32, 32]."""
        cuts = []
        for sample, index in jobs:
            row, col = self.layout.windows[index]
            cuts.append(canvas[:, sample, :, row:row + LATENT_SIZE, col:col + LATENT_SIZE])
        return np.stack(cuts, axis=1)
