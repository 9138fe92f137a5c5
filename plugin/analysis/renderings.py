"""The renderings the metrics compare: real conditions rendered on a grid, and generated files."""

import numpy as np
import rasterio
from rasterio.errors import RasterioIOError

from ..engine.errors import InputError
from ..geo.conditions import prepare_condition


def reference_rendering(spec, grid, cancel=None):
    """(rgb uint8 [3, h, w], valid bool [h, w]): what the model sees of ``spec`` on the whole grid."""
    prepared = prepare_condition(spec, grid, cancel)
    return prepared.read_window(0, 0, grid.height, grid.width)


def read_rendering(path):
    """(rgb uint8 [3, h, w], valid bool [h, w]) of a generated 8-bit GeoTIFF (valid: its mask band)."""
    try:
        with rasterio.open(path) as ds:
            if ds.count != 3 or ds.dtypes[0] != "uint8":
                raise InputError(f"{path}: not an 8-bit RGB rendering ({ds.count} bands of {ds.dtypes[0]})")
            return ds.read(), ds.dataset_mask() > 0
    except RasterioIOError as exc:
        raise InputError(f"{path}: cannot read raster: {exc}") from None


def masked(rgb, valid, fill=0):
    """The rendering with invalid pixels set to ``fill`` (for display)."""
    return np.where(valid[None], rgb, np.uint8(fill)).astype(np.uint8)


def shown_on(area, rgb, valid):
    """``rgb`` as the comparison sheet shows it beside the real layer whose valid pixels are
    ``area`` (bool [h, w]): cropped to the area's bounding box and black wherever the area or
    ``valid`` is not, so real and generated cells show the same pixels (a real raster's nodata
    rim is not drawn around it while the generated one fills the rim)."""
    area = np.asarray(area, bool)
    shown = masked(rgb, np.asarray(valid, bool) & area)
    if not area.any():
        return shown
    rows, cols = np.flatnonzero(area.any(axis=1)), np.flatnonzero(area.any(axis=0))
    return shown[:, rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
