"""The raster side of the latent canvas: reading a rendered condition tile by tile for
:func:`plugin.engine.vae_canvas.encode_canvas`, with its nodata filled and its coverage counted.

The canvas itself (windows, tiling strategies, the sampler, the VAE over a canvas) lives in the
engine (:mod:`plugin.engine.canvas`, :mod:`plugin.engine.tiling`).
"""

import numpy as np

from ..engine.vae_canvas import PIXELS_PER_LATENT, encode_canvas
from ..engine.families.beta.registry import LATENT_CHANNELS, TILE_PIXELS


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


class ConditionReader:
    """``read_tile`` for :func:`plugin.engine.vae_canvas.encode_canvas` over a prepared condition:
    pixels without data are filled (:func:`fill_nodata`), and the valid pixels inside the area
    are counted per latent cell, so :attr:`coverage` is the fraction of the area with data.

    ``read_window(row_off, col_off, height, width) -> (rgb uint8 [3, h, w], valid)`` reads the
    rendering in pixels; ``area_mask(row_off, col_off, height, width)`` (default: everywhere)
    says which pixels count. Tiles overlap, so per-cell counts are set, not added.
    """

    def __init__(self, read_window, height, width, area_mask=None):
        self.read_window = read_window
        self.area_mask = area_mask
        self.valid_cells = np.zeros((height, width), dtype=np.int32)
        self.area_cells = np.zeros((height, width), dtype=np.int32)

    def __call__(self, row_off, col_off, height, width):
        rgb, valid = self.read_window(row_off, col_off, height, width)
        area = np.ones_like(valid) if self.area_mask is None else self.area_mask(row_off, col_off, height, width)
        cells = np.s_[row_off // PIXELS_PER_LATENT:(row_off + height) // PIXELS_PER_LATENT,
                      col_off // PIXELS_PER_LATENT:(col_off + width) // PIXELS_PER_LATENT]
        self.valid_cells[cells] = _per_cell(valid & area)
        self.area_cells[cells] = _per_cell(area)
        # the model domain of the RGB renderings: [-1, 1]
        return fill_nodata(rgb, valid).astype(np.float32) / 127.5 - 1.0, valid

    @property
    def coverage(self):
        return float(self.valid_cells.sum() / self.area_cells.sum()) if self.area_cells.any() else 0.0


def encode_condition(encode_moments, read_window, height, width, area_mask=None, cancel=None, on_tiles=None):
    """(EncodedCanvas, coverage) of a rendered condition over a canvas of ``height`` x ``width``
    latents (see :class:`ConditionReader` and :func:`plugin.engine.vae_canvas.encode_canvas`)."""
    reader = ConditionReader(read_window, height, width, area_mask)
    encoded = encode_canvas(encode_moments, reader, height, width, 2 * LATENT_CHANNELS, cancel=cancel,
                            on_tiles=on_tiles)
    return encoded, reader.coverage


def _per_cell(mask):
    """Count of True pixels in each 8 x 8 px latent cell of a mask [8h, 8w]."""
    height, width = mask.shape[0] // PIXELS_PER_LATENT, mask.shape[1] // PIXELS_PER_LATENT
    return mask.reshape(height, PIXELS_PER_LATENT, width, PIXELS_PER_LATENT).sum(axis=(1, 3))
