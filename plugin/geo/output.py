"""Cloud Optimized GeoTIFF outputs on a TargetGrid, written atomically.

Windows go into a temporary tiled GeoTIFF beside the destination; ``close()`` turns it
into a COG (DEFLATE, 256 px tiles, overviews) with GDAL's COG driver and renames that
into place. Pixels outside the grid's AOI, or flagged invalid, are masked with a GDAL
mask band (an 8-bit nodata value would collide with real values: every S1 rendering
contains 0). Any failure, cancel included, removes the temporary files and leaves no
output.
"""

import json
import os
import uuid
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import rasterio
from osgeo import gdal
from rasterio.enums import ColorInterp
from rasterio.windows import Window

from .. import __version__
from ..engine.errors import InputError
from ..engine.modalities import get_modality
from .render import s2_to_reflectance_dn

REFLECTANCE_DESCRIPTIONS = ("B04", "B03", "B02")
COG_OPTIONS = ["COMPRESS=DEFLATE", "PREDICTOR=YES", "BLOCKSIZE=256", "OVERVIEW_RESAMPLING=AVERAGE", "BIGTIFF=IF_SAFER"]


class OutputWriter:
    """Write one modality's RGB rendering of a grid to ``path`` as a COG.

    ``tags`` (any dict; non-string values stored as JSON) become dataset metadata along
    with ``modality``. ``reflectance=True`` (S2 only) stores UInt16 DNs (reflectance x
    10000, the inverse of the thumbnail curve) as bands B04, B03, B02 instead of uint8 RGB.
    Use as a context manager: leaving it normally finishes the file, an exception removes it.
    """

    def __init__(self, path, grid, modality, tags=None, reflectance=False):
        record = get_modality(modality)
        if reflectance and not record.reflectance:
            raise InputError(f"reflectance output is for Sentinel-2 modalities, not {modality!r}", "reflectance")
        self.path = Path(path)
        self.grid = grid
        self.reflectance = reflectance
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # random sibling names: the final rename stays on one file system
        token = uuid.uuid4().hex[:12]
        self._work = self.path.with_name(f".{self.path.name}.{token}.work.tif")
        self._cog = self.path.with_name(f".{self.path.name}.{token}.cog.tif")
        self._dataset = None
        self._done = False
        try:
            self._dataset = rasterio.open(
                self._work,
                "w",
                driver="GTiff",
                width=grid.width,
                height=grid.height,
                count=3,
                dtype="uint16" if reflectance else "uint8",
                crs=grid.crs,
                transform=grid.transform,
                tiled=True,
                blockxsize=256,
                blockysize=256,
                compress="deflate",
                zlevel=1,
                bigtiff="if_safer",
            )
            self._dataset.descriptions = REFLECTANCE_DESCRIPTIONS if reflectance else record.output_bands
            self._dataset.colorinterp = (ColorInterp.red, ColorInterp.green, ColorInterp.blue)
            self._dataset.update_tags(**_tag_strings({"modality": modality, **(tags or {})}))
        except BaseException:
            self._remove_temps()
            raise

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def write_window(self, row_off, col_off, rgb, valid=None):
        """Write uint8 RGB [3, h, w] at (row_off, col_off) of the grid; pixels outside the
        AOI or where ``valid`` (bool [h, w]) is False are masked."""
        rgb = np.asarray(rgb)
        _, height, width = rgb.shape
        if rgb.shape[0] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"write_window expects uint8 [3, h, w], got {rgb.dtype} {rgb.shape}")
        if row_off < 0 or col_off < 0 or row_off + height > self.grid.height or col_off + width > self.grid.width:
            raise ValueError(f"window ({row_off}, {col_off}, {height}, {width}) is outside the grid")
        mask = self.grid.aoi_mask(row_off, col_off, height, width)
        if valid is not None:
            mask &= np.asarray(valid, dtype=bool)
        data = s2_to_reflectance_dn(rgb) if self.reflectance else rgb.copy()
        data[:, ~mask] = 0
        window = Window(col_off, row_off, width, height)
        self._dataset.write(data, window=window)
        self._dataset.write_mask(mask.astype(np.uint8) * 255, window=window)

    def close(self):
        """Finish: build the COG and move it to ``path``; returns the path."""
        if self._done:
            return self.path
        try:
            self._dataset.close()
            try:
                result = gdal.Translate(str(self._cog), str(self._work), format="COG", creationOptions=COG_OPTIONS)
            except RuntimeError:  # GDAL raises instead of returning None when its exceptions are on
                result = None
            if result is None:
                raise InputError(f"cannot write {self.path}: {gdal.GetLastErrorMsg()}")
            del result  # dropping the GDAL dataset closes and flushes it
            os.replace(self._cog, self.path)
        except BaseException:
            self.abort()
            raise
        self._remove_temps()
        self._done = True
        return self.path

    def abort(self):
        """Drop everything written so far; no output is left behind."""
        if self._dataset is not None:
            self._dataset.close()
        self._remove_temps()
        self._done = True

    def _remove_temps(self):
        for temp in (self._work, self._cog):
            for path in (temp, temp.with_name(temp.name + ".aux.xml"), temp.with_name(temp.name + ".msk")):
                path.unlink(missing_ok=True)


def provenance_tags(command):
    """The tags every output carries: software and version, the command, the run's UTC date."""
    return {
        "software": f"COP-GEN-Beta for QGIS {__version__}",
        "command": command,
        "run_date_utc": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def _tag_strings(tags):
    return {str(k): v if isinstance(v, str) else json.dumps(v, default=str) for k, v in tags.items()}
