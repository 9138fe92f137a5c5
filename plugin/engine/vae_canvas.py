"""The VAE over a latent canvas of any size, tile by tile, for both model families.

The encoder and decoder run in tiles of :func:`plugin.engine.tiling.vae_layout` (in latents)
through callbacks, so no raster library enters the engine: :func:`encode_canvas` reads the image
tile by tile (already in the model domain), :func:`decode_canvas` hands finished strips of rows
to a writer, and only the latent canvas is ever whole-area. Both families' VAEs are f8: a
latent is 8 x 8 pixels.
"""

from dataclasses import dataclass

import numpy as np

from .cancel import check_cancel
from .tiling import Layout, vae_layout

PIXELS_PER_LATENT = 8  # the VAEs' downsampling factor (both families)
LOGVAR_MIN, LOGVAR_MAX = -30.0, 20.0  # the reference's clamp of the posterior's log-variance
MODEL_TILE_LATENTS = 32 * 32  # the area that ``batch`` counts in: a memory budget per VAE call


def sample_posterior(moments, noise, scale):
    """Scaled latents from moments [..., 2C, H, W] (mean, log-variance) and standard normal
    noise [..., C, H, W]: (mean + exp(logvar / 2) * noise) * scale, logvar clamped; the
    official encode of both families (never the mean)."""
    mean, logvar = np.split(moments, 2, axis=-3)
    std = np.exp(0.5 * np.clip(logvar, LOGVAR_MIN, LOGVAR_MAX))
    return ((mean + std * noise) * scale).astype(np.float32)


def chunks(items, size):
    for start in range(0, len(items), size):
        yield items[start:start + size]


@dataclass(frozen=True)
class EncodedCanvas:
    """An image encoded on the latent canvas: ``moments`` [8, H, W] float32 (zero where no tile
    had data) and ``cells`` bool [H, W], the latent cells with at least one valid pixel."""

    moments: np.ndarray
    cells: np.ndarray


def encode_canvas(encode_moments, read_tile, height, width, moment_channels, layout=None, cancel=None,
                  on_tiles=None, batch=4):
    """VAE-encode an image over a canvas of ``height`` x ``width`` latents, tile by tile.

    read_tile(row_px, col_px, height_px, width_px) -> (image float32 [C, h, w] in the model
    domain, valid bool [h, w]) (pixels without data already filled as the caller likes). Tiles
    with no valid pixel are not encoded: the model is to treat the image as absent there.
    Moments of overlapping tiles are crossfaded like the denoiser's windows. ``on_tiles(n)`` is
    told how many tiles each batch handled (``batch`` 32 x 32 tiles' worth of area per call);
    encode_moments(images [B, C, h, w]) -> [B, moment_channels, h/8, w/8].
    """
    layout = vae_layout(height, width) if layout is None else layout
    batch = _tiles_per_call(batch, layout)
    moments = np.zeros((moment_channels, height, width), dtype=np.float32)
    weight_sum = np.zeros((height, width), dtype=np.float32)
    cells = np.zeros((height, width), dtype=bool)
    for part in chunks(range(len(layout)), batch):
        check_cancel(cancel, "encoding")
        tiles, encoded = [], []
        for index in part:
            row, col = layout.windows[index]
            h, w = layout.window_shape
            image, valid = read_tile(row * PIXELS_PER_LATENT, col * PIXELS_PER_LATENT,
                                     h * PIXELS_PER_LATENT, w * PIXELS_PER_LATENT)
            cells[layout.slices(index)] |= _any_per_cell(valid)
            if valid.any():
                tiles.append(image)
                encoded.append(index)
        if tiles:
            layout.accumulate(moments, encode_moments(np.stack(tiles)), encoded)
            for index in encoded:
                weight_sum[layout.slices(index)] += layout.weights(index)
        if on_tiles is not None:
            on_tiles(len(part))
    np.divide(moments, weight_sum, out=moments, where=weight_sum > 0)
    return EncodedCanvas(moments, cells)


def _any_per_cell(mask):
    """bool [h, w]: whether each 8 x 8 px latent cell of ``mask`` [8h, 8w] has a True pixel."""
    h, w = mask.shape[0] // PIXELS_PER_LATENT, mask.shape[1] // PIXELS_PER_LATENT
    return mask.reshape(h, PIXELS_PER_LATENT, w, PIXELS_PER_LATENT).any(axis=(1, 3))


def decode_canvas(decode, latents, write, layout=None, cancel=None, on_tiles=None, batch=4):
    """Decode a latent canvas [C, H, W] into float32 strips passed to ``write(row_px, col_px,
    image [C', rows, cols])``.

    decode(latents [B, C, h, w]) -> images [B, C', 8h, 8w]. Rows of tiles are decoded top to
    bottom and crossfaded into a band one tile tall; each strip of rows that no later tile
    touches is written and dropped, so the full-resolution image never exists.
    """
    height, width = latents.shape[-2:]
    layout = vae_layout(height, width) if layout is None else layout
    batch = _tiles_per_call(batch, layout)
    pixels = Layout(layout.rows.scaled(PIXELS_PER_LATENT), layout.cols.scaled(PIXELS_PER_LATENT))
    rows, cols = pixels.rows, pixels.cols
    tile_h, tile_w = pixels.window_shape
    band = None  # [C', tile_h, W px], sized by the first decoded tile
    band_weight = np.zeros((tile_h, cols.length), dtype=np.float32)
    for i, top in enumerate(rows.starts):
        indices = [i * len(cols) + j for j in range(len(cols))]
        for part in chunks(indices, batch):
            check_cancel(cancel, "decoding")
            images = decode(layout.cut(latents, part))
            if band is None:
                band = np.zeros((images.shape[1], tile_h, cols.length), dtype=np.float32)
            for image, index in zip(images, part):
                weights = pixels.weights(index)
                left = cols.starts[index % len(cols)]
                band[:, :, left:left + tile_w] += image * weights
                band_weight[:, left:left + tile_w] += weights
            if on_tiles is not None:
                on_tiles(len(part))
        check_cancel(cancel, "decoding")  # a large tile takes a while: stop before writing its band
        next_top = rows.starts[i + 1] if i + 1 < len(rows) else rows.length
        finished = next_top - top
        write(top, 0, band[:, :finished] / band_weight[:finished])
        band = np.roll(band, -finished, axis=1)
        band_weight = np.roll(band_weight, -finished, axis=0)
        band[:, tile_h - finished:] = 0
        band_weight[tile_h - finished:] = 0


def _tiles_per_call(batch, layout):
    """Tiles per VAE call: ``batch`` 32 x 32 latents' worth of area (at least one), so memory
    stays bounded when tiles are larger."""
    return max(1, batch * MODEL_TILE_LATENTS // (layout.window_shape[0] * layout.window_shape[1]))
