"""COP-GEN outputs in physical units: one COG per generated modality and sample, at its native
resolution on the run's :class:`.lattice.ModelLattice`, plus a VRT stacking a sensor's groups.

The files are written by :class:`.output.OutputWriter`'s machinery (work file, COG, checked,
renamed into place). Each rule of the table below says how a modality is stored:

* Sentinel-2 groups: UInt16 DN (reflectance x 10000, scale 0.0001 -> reflectance), nodata 0;
  valid DN are clipped to 1..65535 so that none reads as nodata. No processing-baseline offset
  is added (reflectance = DN / 10000): the ``offset_rule`` tag says so, and each band carries
  the product's own word for it, ``BOA_ADD_OFFSET`` (L2A) or ``RADIO_ADD_OFFSET`` (L1C) = 0, so
  an output read back as a condition is taken as it is (:mod:`.s2_offset`).
* Sentinel-1: Float32 linear gamma0 (or dB on request), nodata NaN.
* DEM: Float32 metres at 30 m, nodata -9999.
* Land cover and cloud mask: UInt8 codes with a colour table and class names (a categorical
  layer in QGIS); nodata 0 ("None/NoData") for land cover, 255 for the cloud mask (0 is clear).

Band descriptions name the bands (B04, VV, DEM, LULC...); units, scale and offset are band
metadata; pixels outside the area are nodata.
"""

import math
import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Optional
from xml.sax.saxutils import escape, quoteattr

import numpy as np
import rasterio
from osgeo import gdal
from rasterio.enums import ColorInterp
from rasterio.windows import Window

from ..engine.atomic import atomic_path
from ..engine.errors import InputError
from ..engine.families.copgen.classes import CLASS_MAPS
from ..engine.families.copgen.processing import s1_linear_to_db
from ..engine.families.copgen.registry import BY_KEY, SENSORS, get_modality
from .output import OutputWriter, _gdal_write_errors
from .band_names import sensor_bands

VRT_RESOLUTION_M = 10.0


@dataclass(frozen=True)
class Storage:
    """How one rule's modality is stored: dtype, nodata, unit, scale and offset."""

    dtype: str
    nodata: float
    unit: str
    scale: float = 1.0
    offset: float = 0.0
    value_range: Optional[tuple] = None  # valid values are clipped to it


# the S2 outputs' DN rule; inputs of processing baseline 04.00+ had their offset taken off
S2_OFFSET_RULE = ("reflectance = DN / 10000 (scale 0.0001, offset 0); no processing-baseline DN offset is "
                  "added (BOA_ADD_OFFSET / RADIO_ADD_OFFSET 0)")
S2_OFFSET_ITEMS = {"s2l2a": "BOA_ADD_OFFSET", "s2l1c": "RADIO_ADD_OFFSET"}

STORAGE = {
    "s2": Storage("uint16", 0, "reflectance x 10000", scale=1e-4, value_range=(1, 65535)),
    "s1": Storage("float32", math.nan, "linear gamma0"),
    "dem": Storage("float32", -9999.0, "metre"),
    "lulc": Storage("uint8", 0, "class"),
    "cloud": Storage("uint8", 255, "class"),
}
S1_DB = Storage("float32", math.nan, "dB")


def output_name(run, key, sample):
    """``<run>_<official key>_s<sample>.tif``: the file name of one modality of one sample."""
    return f"{run}_{get_modality(key).key}_s{int(sample)}.tif"


def storage_of(key, s1_db=False):
    """The :class:`Storage` of an image modality; InputError for location and date."""
    record = get_modality(key, "generate")
    if record.processing not in STORAGE:
        raise InputError(f"{key} ({record.label}) is not a raster; it has no GeoTIFF output", "generate")
    return S1_DB if s1_db and record.processing == "s1" else STORAGE[record.processing]


class PhysicalWriter(OutputWriter):
    """Write one COP-GEN modality in physical units at its native resolution as a COG.

    ``lattice``: the run's :class:`ModelLattice`; ``key``: the official key; ``s1_db``: store
    S1 in dB. Windows are given in physical units (S2 DN, S1 linear, metres, codes) as
    [C, h, w] (or [h, w] for one band) at the modality's resolution.
    """

    def __init__(self, path, lattice, key, tags=None, s1_db=False):
        self.record = get_modality(key, "generate")
        self.storage = storage_of(key, s1_db)
        self.class_map = CLASS_MAPS.get(self.record.processing)
        self.sidecars = self.class_map is not None  # class names live in the .aux.xml
        count = len(self.record.bands)
        self._start(path, lattice.grid(self.record.resolution_m),
                    {"count": count, "dtype": self.storage.dtype, "nodata": self.storage.nodata},
                    self.record.bands, (ColorInterp.gray,) + (ColorInterp.undefined,) * (count - 1),
                    {"modality": key, "sensor": self.record.sensor, "unit": self.storage.unit,
                     **({"offset_rule": S2_OFFSET_RULE} if self.record.processing == "s2" else {}),
                     **(tags or {})})
        try:
            with _gdal_write_errors(self.path):
                for band in range(1, count + 1):
                    self._dataset.set_band_unit(band, self.storage.unit)
                    if self.record.processing == "s2":
                        self._dataset.update_tags(band, **{S2_OFFSET_ITEMS[self.record.sensor]: "0"})
                self._dataset.scales = (self.storage.scale,) * count
                self._dataset.offsets = (self.storage.offset,) * count
        except BaseException:
            self.abort()
            raise

    def write_window(self, row_off, col_off, values, valid=None):
        """Write ``values`` at (row_off, col_off) of the modality's grid; pixels outside the
        area, where ``valid`` (bool [h, w]) is False, or not finite are nodata."""
        values = np.asarray(values)
        values = values[None] if values.ndim == 2 else values
        count, height, width = values.shape
        if count != self._count:
            raise ValueError(f"{self.record.key} has {self._count} band(s), got {count}")
        if row_off < 0 or col_off < 0 or row_off + height > self.grid.height or col_off + width > self.grid.width:
            raise ValueError(f"window ({row_off}, {col_off}, {height}, {width}) is outside the grid")
        mask = self.grid.aoi_mask(row_off, col_off, height, width) & np.isfinite(values).all(axis=0)
        if valid is not None:
            mask &= np.asarray(valid, dtype=bool)
        data = self._stored(values)
        data[:, ~mask] = self.storage.nodata
        with _gdal_write_errors(self.path):
            self._dataset.write(data, window=Window(col_off, row_off, width, height))

    def _stored(self, values):
        storage = self.storage
        with np.errstate(invalid="ignore"):
            if storage.unit == "dB":
                values = s1_linear_to_db(values)
            if np.dtype(storage.dtype).kind in "ui":
                values = np.rint(np.nan_to_num(values, nan=storage.nodata))
            if storage.value_range:
                values = np.clip(values, *storage.value_range)
        return values.astype(storage.dtype)

    def close(self):
        """Finish as OutputWriter does; class maps with GDAL's PAM on (their .aux.xml)."""
        if not self.class_map:
            return super().close()
        with _pam_enabled():
            return super().close()

    def _finish_cog(self, cog):
        """Class maps: a colour table (with transparency) and class names up to the highest
        code, in the COG's .aux.xml: inside a TIFF a palette always has 256 opaque entries,
        which QGIS would list as 256 classes. Codes the model never writes are transparent."""
        if not self.class_map:
            return
        size = max(self.class_map.codes) + 1
        names, table = [""] * size, gdal.ColorTable()
        for code in range(size):
            table.SetColorEntry(code, (0, 0, 0, 0))
        for code, name, colour in zip(self.class_map.codes, self.class_map.names, self.class_map.colours):
            names[code] = name
            table.SetColorEntry(code, tuple(int(colour[i:i + 2], 16) for i in (1, 3, 5)) + (255,))
        dataset = gdal.OpenEx(str(cog), gdal.OF_RASTER | gdal.OF_READONLY)  # PAM: the .aux.xml
        band = dataset.GetRasterBand(1)
        band.SetColorTable(table)
        band.SetColorInterpretation(gdal.GCI_PaletteIndex)
        band.SetCategoryNames(names)
        dataset = None


def write_physical(path, lattice, key, values, valid=None, tags=None, s1_db=False):
    """Write a whole modality (``values`` over the full grid of its resolution); the path."""
    with PhysicalWriter(path, lattice, key, tags=tags, s1_db=s1_db) as writer:
        writer.write_window(0, 0, values, valid)
    return writer.path


@contextmanager
def _pam_enabled():
    """GDAL's PAM (.aux.xml sidecars) on in this thread, whatever GDAL_PAM_ENABLED says."""
    old = gdal.GetThreadLocalConfigOption("GDAL_PAM_ENABLED", None)
    gdal.SetThreadLocalConfigOption("GDAL_PAM_ENABLED", "YES")
    try:
        yield
    finally:
        gdal.SetThreadLocalConfigOption("GDAL_PAM_ENABLED", old)


# --- a sensor as one product ------------------------------------------------------------------

def write_sensor_vrt(paths_by_key, sensor, out_path):
    """A VRT stacking ``sensor``'s group files (official key -> path, all on one footprint) at
    10 m in band order (B01, B02, ..., B12 for S2), referencing the files (relative paths when
    possible) without copying pixels: coarser groups are read by nearest neighbour. Returns
    the path; InputError when a key is not the sensor's or the files are not on one footprint."""
    out_path = Path(out_path)
    foreign = [key for key in paths_by_key if key not in SENSORS.get(sensor, ())]
    if foreign or not paths_by_key:
        raise InputError(f"VRT of {sensor}: {', '.join(foreign) or 'no files'} "
                         f"(expected files of {', '.join(SENSORS.get(sensor, ())) or 'a known sensor'})")
    sources = {}  # band name -> (path, band index, dtype, nodata, unit, scale, offset, width, height)
    footprint, tags = None, None
    for key, path in paths_by_key.items():
        with rasterio.open(path) as ds:
            # the stack says what its files all say of themselves (synthetic, model, seed...)
            tags = ds.tags().items() if tags is None else tags & ds.tags().items()
            if footprint is not None and (ds.crs != footprint[0] or not np.allclose(
                    ds.bounds, footprint[1], rtol=0, atol=1e-6)):
                raise InputError(f"VRT of {sensor}: {path} is not on the footprint of the other files")
            footprint = (ds.crs, tuple(ds.bounds))
            for index, band in enumerate(BY_KEY[key].bands, 1):
                sources[band] = (Path(path), index, ds.dtypes[index - 1], ds.nodata, ds.units[index - 1],
                                 ds.scales[index - 1], ds.offsets[index - 1], ds.width, ds.height)
    crs, (left, bottom, right, top) = footprint
    width = int(round((right - left) / VRT_RESOLUTION_M))
    height = int(round((top - bottom) / VRT_RESOLUTION_M))
    order = [band for band in sensor_bands(sensor) if band in sources]
    tags = {name: value for name, value in tags if name not in ("modality", "AREA_OR_POINT")}
    xml = _vrt_xml(crs, left, top, width, height, order, sources, out_path.parent, tags)

    def verify(temp):
        with rasterio.open(temp) as ds:
            if ds.count != len(order) or (ds.width, ds.height) != (width, height):
                raise InputError(f"VRT of {sensor}: {out_path} read back wrong")
            ds.read(window=Window(0, 0, 1, 1))

    with atomic_path(out_path, verify=verify) as temp:
        temp.write_text(xml, encoding="utf-8")
    return out_path


def _vrt_xml(crs, left, top, width, height, order, sources, folder, tags):
    lines = [f'<VRTDataset rasterXSize="{width}" rasterYSize="{height}">',
             f"  <SRS>{escape(crs.to_wkt())}</SRS>",
             f"  <GeoTransform>{left!r}, {VRT_RESOLUTION_M!r}, 0.0, {top!r}, 0.0, {-VRT_RESOLUTION_M!r}</GeoTransform>",
             "  <Metadata>", *(f"    <MDI key={quoteattr(k)}>{escape(v)}</MDI>" for k, v in sorted(tags.items())),
             "  </Metadata>"]
    for number, band in enumerate(order, 1):
        path, index, dtype, nodata, unit, scale, offset, src_w, src_h = sources[band]
        relative = _relative(path, folder)
        lines += [f'  <VRTRasterBand dataType="{gdal.GetDataTypeName(_gdal_type(dtype))}" band="{number}">',
                  f"    <Description>{escape(band)}</Description>"]
        if nodata is not None:
            lines.append(f"    <NoDataValue>{'nan' if math.isnan(nodata) else repr(nodata)}</NoDataValue>")
        lines += [f"    <UnitType>{escape(unit or '')}</UnitType>",
                  f"    <Offset>{offset!r}</Offset>", f"    <Scale>{scale!r}</Scale>",
                  "    <SimpleSource>",
                  f'      <SourceFilename relativeToVRT="{int(relative is not None)}">'
                  f"{escape(relative or str(path.resolve()))}</SourceFilename>",
                  f"      <SourceBand>{index}</SourceBand>",
                  f'      <SrcRect xOff="0" yOff="0" xSize="{src_w}" ySize="{src_h}"/>',
                  f'      <DstRect xOff="0" yOff="0" xSize="{width}" ySize="{height}"/>',
                  "    </SimpleSource>", "  </VRTRasterBand>"]
    return "\n".join(lines + ["</VRTDataset>", ""])


def _relative(path, folder):
    try:
        return os.path.relpath(path.resolve(), Path(folder).resolve()).replace(os.sep, "/")
    except ValueError:  # another drive (Windows): keep the absolute path
        return None


def _gdal_type(dtype):
    return {"uint8": gdal.GDT_Byte, "uint16": gdal.GDT_UInt16, "float32": gdal.GDT_Float32}[dtype]
