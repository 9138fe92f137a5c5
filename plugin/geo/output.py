"""Cloud Optimized GeoTIFF outputs on a TargetGrid, written atomically.

Windows go into a temporary tiled GeoTIFF beside the destination; ``close()`` turns it
into a COG (DEFLATE, 256 px tiles, overviews) with GDAL's COG driver, reopens and reads it,
and renames it into place (:mod:`..engine.atomic`). Pixels outside the grid's AOI, or flagged invalid, are masked with a GDAL
mask band (an 8-bit nodata value would collide with real values: every S1 rendering
contains 0). Any failure, cancel included, removes the temporary files and leaves no
output.
"""

import errno
import json
import os
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import rasterio
from osgeo import gdal
from rasterio.enums import ColorInterp
from rasterio.errors import RasterioError
from rasterio.windows import Window

from .. import __version__
from ..engine.atomic import WriteError, atomic_files, atomic_path, disk_error, remove_temp, temp_sibling
from ..engine.errors import InputError
from ..engine.families.beta.registry import get_modality
from .render import s2_to_reflectance_dn

REFLECTANCE_DESCRIPTIONS = ("B04", "B03", "B02")
COG_OPTIONS = ["COMPRESS=DEFLATE", "PREDICTOR=YES", "BLOCKSIZE=256", "OVERVIEW_RESAMPLING=AVERAGE", "BIGTIFF=IF_SAFER"]


class OutputWriter:
    """Write one modality's RGB rendering of a grid to ``path`` as a COG.

    ``tags`` (any dict; non-string values stored as JSON) become dataset metadata along
    with ``modality``. ``reflectance=True`` (S2 only) stores UInt16 DNs (reflectance x
    10000, the inverse of the thumbnail curve) as bands B04, B03, B02 instead of uint8 RGB.
    Use as a context manager: leaving it normally finishes the file, an exception removes it.
    A GDAL error while writing, flushing or closing (a full disk) is a WriteError naming
    ``path``; the COG is reopened and read in full before it is renamed into place.
    Subclasses (:mod:`.physical_outputs`) open other layouts through ``_start``.
    """

    sidecars = False  # True: GDAL writes an .aux.xml beside the COG, moved in with it

    def __init__(self, path, grid, modality, tags=None, reflectance=False):
        record = get_modality(modality)
        if reflectance and not record.reflectance:
            raise InputError(f"reflectance output is for Sentinel-2 modalities, not {modality!r}", "reflectance")
        self.reflectance = reflectance
        self._start(path, grid, {"count": 3, "dtype": "uint16" if reflectance else "uint8"},
                    REFLECTANCE_DESCRIPTIONS if reflectance else record.output_bands,
                    (ColorInterp.red, ColorInterp.green, ColorInterp.blue),
                    {"modality": modality, **(tags or {})})

    def _start(self, path, grid, profile, descriptions, colorinterp, tags):
        """Open the work file: ``profile`` gives count, dtype (and nodata) of the bands."""
        self.path = Path(path)
        self.grid = grid
        self._count = profile["count"]
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise disk_error(self.path, exc) from None
        # named by the atomic-write helper, so a killed run's leftover is recognisable
        self._work = temp_sibling(self.path, ".work.tif")
        self._dataset = None
        self._done = False
        try:
            with _gdal_write_errors(self.path):
                self._dataset = rasterio.open(
                    self._work,
                    "w",
                    driver="GTiff",
                    width=grid.width,
                    height=grid.height,
                    crs=grid.crs,
                    transform=grid.transform,
                    tiled=True,
                    blockxsize=256,
                    blockysize=256,
                    compress="deflate",
                    zlevel=1,
                    bigtiff="if_safer",
                    **profile,
                )
                self._dataset.descriptions = descriptions
                self._dataset.colorinterp = colorinterp
                self._dataset.update_tags(**_tag_strings(tags))
        except BaseException:
            self.abort()
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
        with _gdal_write_errors(self.path):
            self._dataset.write(data, window=window)
            self._dataset.write_mask(mask.astype(np.uint8) * 255, window=window)

    def close(self):
        """Finish: build the COG, check it, and move it to ``path``; returns the path."""
        if self._done:
            return self.path
        try:
            with _gdal_write_errors(self.path):
                dataset, self._dataset = self._dataset, None
                dataset.close()
            with (atomic_files if self.sidecars else atomic_path)(self.path, verify=self._verify) as cog:
                with _gdal_write_errors(self.path):
                    result = gdal.Translate(str(cog), str(self._work), format="COG", creationOptions=COG_OPTIONS)
                    if result is None:
                        raise _GdalFailure(gdal.GetLastErrorMsg())
                    result.FlushCache()
                    del result  # dropping the GDAL dataset closes and flushes it
                    self._finish_cog(cog)
        except BaseException:
            self.abort()
            raise
        remove_temp(self._work)
        self._done = True
        return self.path

    def _finish_cog(self, cog):
        """Last touches on the finished COG before it is checked, for subclasses (Beta's
        outputs have none)."""

    def abort(self):
        """Drop everything written so far; no output is left behind."""
        if self._dataset is not None:
            try:
                self._dataset.close()
            except Exception:  # already failing; the file goes anyway
                pass
            self._dataset = None
        remove_temp(self._work)
        self._done = True

    def _verify(self, cog):
        """Reopen the finished COG and read every block of every band and overview: a file
        GDAL cannot read back is never renamed into place."""
        with _gdal_write_errors(self.path):
            dataset = gdal.OpenEx(str(cog), gdal.OF_RASTER | gdal.OF_READONLY)
            if dataset is None:
                raise _GdalFailure(gdal.GetLastErrorMsg() or "cannot be reopened")
            if (dataset.RasterXSize, dataset.RasterYSize, dataset.RasterCount) != (
                self.grid.width, self.grid.height, self._count,
            ):
                raise _GdalFailure("the file read back has the wrong size")
            for index in range(1, dataset.RasterCount + 1):
                band = dataset.GetRasterBand(index)
                for level in [band] + [band.GetOverview(i) for i in range(band.GetOverviewCount())]:
                    if level.Checksum() < 0 or gdal.GetLastErrorType() >= gdal.CE_Failure:
                        raise _GdalFailure(gdal.GetLastErrorMsg() or "unreadable block")
            dataset = None


class _GdalFailure(Exception):
    """A GDAL call failed; turned into a WriteError naming the output by _gdal_write_errors."""


@contextmanager
def _gdal_write_errors(path):
    """Run GDAL/rasterio writes with GDAL's errors collected (they are only logged otherwise,
    e.g. a failed flush at close); any error -> one WriteError line naming ``path``, saying so
    when the disk is full."""
    errors = []

    def handler(level, number, message):
        if level >= gdal.CE_Failure:
            errors.append(message)

    gdal.ErrorReset()
    gdal.PushErrorHandler(handler)
    try:
        yield
    except (_GdalFailure, RasterioError, RuntimeError, OSError) as exc:
        errors.append(str(exc))
    finally:
        gdal.PopErrorHandler()
    if errors:
        raise _write_error(path, errors)


def _write_error(path, messages):
    text = "; ".join(dict.fromkeys(m.strip() for m in messages if m.strip()))
    if "No space left" in text or _disk_full(path.parent):
        return disk_error(path, OSError(errno.ENOSPC, "No space left on device"))
    return WriteError(f"cannot write {path}: {text[:300]}; nothing was written")


def _disk_full(folder):
    try:
        stats = os.statvfs(folder)
    except (OSError, AttributeError):  # statvfs: POSIX only
        return False
    return stats.f_bavail * stats.f_frsize < 64 * 1024


def provenance_tags(command):
    """The tags every output carries: software and version, the command, the run's UTC date."""
    return {
        "software": f"COP-GEN-Beta for QGIS {__version__}",
        "command": command,
        "run_date_utc": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def _tag_strings(tags):
    return {str(k): v if isinstance(v, str) else json.dumps(v, default=str) for k, v in tags.items()}
