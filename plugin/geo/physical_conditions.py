"""COP-GEN conditions from rasters in physical units, read onto a :class:`.lattice.ModelLattice`.

One raster stands for one sensor (``s2l2a``, ``s2l1c``, ``s1rtc``, ``dem``, ``lulc``,
``cloud``) and fills all of that sensor's groups at once, each at its native resolution and in
the registry's channel order (the 10 m S2 group is B04, B03, B02, B08). Which file band is
which comes from the names given, else band descriptions or GDAL band metadata, else the usual
layout of the sensor's products (Major TOM's band order), with a note saying so.

Values stay in physical units: S2 DN as stored, S1 linear gamma0, DEM metres, class codes.
Measurements are averaged when coarsened and interpolated bilinearly when refined; class codes
are only ever taken by nearest neighbour, and codes the model does not know are refused.
"""

import math
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Optional

import numpy as np
import pyproj
from affine import Affine
from osgeo import gdal

from ..engine.cancel import check_cancel
from ..engine.errors import InputError
from ..engine.families.copgen.classes import CLASS_MAPS
from ..engine.families.copgen.processing import s1_db_to_linear, unknown_codes
from ..engine.families.copgen.registry import BY_KEY, SENSORS
from .conditions import _band_tokens, _check_overlap
from .grid import _densified_box, open_raster
from .warp import warp_bands

S2_BAND_ORDER = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11",
                 "B12")
# the band order of a product file without band names: Major TOM's (L2A has no B10)
DEFAULT_LAYOUTS = {
    "s2l2a": tuple(band for band in S2_BAND_ORDER if band != "B10"),
    "s2l1c": S2_BAND_ORDER,
    "s1rtc": ("VV", "VH"),
}
READ_SENSORS = ("s2l2a", "s2l1c", "s1rtc", "dem", "lulc", "cloud")
_NAME_KEYS = ("BANDNAME", "BAND_NAME", "NAME")  # GDAL band metadata items naming a band
_RES_TOLERANCE = 1e-3  # relative: a source this close to the target size counts as equal


class SensorLayers(dict):
    """{official key: (values float32 [C, H, W], valid bool [H, W])} of one sensor, each on
    the lattice grid of that key's native resolution; values are NaN where not valid. ``notes``:
    what the reader assumed (a band order taken without band names), one line each."""

    def __init__(self, layers, notes):
        super().__init__(layers)
        self.notes = list(notes)


@dataclass(frozen=True)
class _Source:
    """Where one band is read: file, 1-based band, its nodata and pixel size (metres)."""

    path: str
    index: int
    nodata: Optional[float]
    res_m: float


def sensor_bands(sensor):
    """The bands a file of ``sensor`` must provide: all of its groups', S2 in ESA order."""
    bands = {band for key in SENSORS[sensor] for band in BY_KEY[key].bands}
    return tuple(sorted(bands, key=lambda b: S2_BAND_ORDER.index(b) if b in S2_BAND_ORDER else 0))


def read_sensor(path, sensor, lattice, bands=None, s1_in_db=False, cancel=None):
    """Read ``path`` as ``sensor`` onto ``lattice``: a :class:`SensorLayers`.

    ``path``: one file (a product GeoTIFF, a Major TOM tile, a SAFE or JP2 product GDAL opens:
    a container of subdatasets stands for them all), or a list of files (one per band, or per
    resolution), a band being read from the first file that has it. ``bands``: names of the
    files' bands in order (a list, or "B01,B02,..."); None reads them from descriptions,
    metadata or (one-band files) the file name. ``s1_in_db``: the S1 file holds dB (turned
    linear before resampling). ``cancel()`` returning True stops between groups (Cancelled).
    InputError (field ``conditions.<sensor>`` or ``conditions.<sensor>.bands``), one line
    naming the file: unreadable, not georeferenced, off the area, bands missing, no valid
    pixel in the area, class codes the model does not know.
    """
    field = f"conditions.{sensor}"
    paths = [str(p) for p in (path if isinstance(path, (list, tuple)) else [path])]
    label = paths[0] if len(paths) == 1 else f"{paths[0]} (and {len(paths) - 1} more file(s))"
    if sensor not in READ_SENSORS:
        raise InputError(f"{label}: unknown sensor {sensor!r}; expected one of {', '.join(READ_SENSORS)}",
                         "conditions")
    try:
        sources, notes = _band_sources(_expand(paths), sensor, bands, lattice, label, field)
        layers = {}
        for key in SENSORS[sensor]:
            check_cancel(cancel, f"reading {label}")
            layers[key] = _read_group(sources, key, lattice, s1_in_db, label)
    except InputError as exc:  # every problem of a condition is about its field
        exc.field = exc.field or field
        raise
    return SensorLayers(layers, notes)


def _expand(paths):
    """The files to read: a container of subdatasets (a SAFE's metadata file) -> its
    subdatasets, in GDAL's order (10 m first)."""
    files = []
    for path in paths:
        with open_raster(path) as ds:
            files += list(ds.subdatasets) if ds.count == 0 and ds.subdatasets else [path]
    return files


def _read_group(sources, key, lattice, s1_in_db, label):
    record = BY_KEY[key]
    grid = lattice.grid(record.resolution_m)
    wanted = [sources[_canonical(band)] for band in record.bands]
    values = np.empty((len(wanted), grid.height, grid.width), dtype=np.float32)
    for path in dict.fromkeys(source.path for source in wanted):  # one warp per file
        channels = [i for i, source in enumerate(wanted) if source.path == path]
        first = wanted[channels[0]]
        indexes, nodata, linear = [wanted[i].index for i in channels], first.nodata, None
        if s1_in_db and record.processing == "s1":
            # averaged and interpolated as power, not as dB: a linear copy of the area first
            linear = _linear_copy(path, indexes, nodata, lattice)
            indexes, nodata = list(range(1, len(indexes) + 1)), math.nan
        try:
            values[channels] = warp_bands(linear or path, indexes, grid.crs, grid.transform,
                                          grid.height, grid.width,
                                          _resampling(record, first.res_m), nodata, path)
        finally:
            if linear:
                gdal.Unlink(linear)
    valid = np.isfinite(values).all(axis=0)
    values[:, ~valid] = np.nan
    if not (valid & lattice.aoi_mask(record.resolution_m)).any():
        raise InputError(f"{label}: no valid pixel inside the area (all nodata there)")
    if record.processing in CLASS_MAPS:
        _check_codes(key, values[0], valid, grid, label)
    return values, valid


def _linear_copy(path, indexes, nodata, lattice):
    """A /vsimem/ GeoTIFF of the bands (S1 in dB) turned to linear power, over the source
    pixels the area needs (two pixels of margin), nodata -> NaN; its name."""
    with open_raster(path) as ds:
        left, bottom, right, top = lattice.bounds
        to_source = pyproj.Transformer.from_crs(lattice.crs.to_wkt(), ds.crs.to_wkt(), always_xy=True)
        xs, ys = np.asarray(_densified_box(left, bottom, right, top).exterior.coords).T
        cols, rows = ~ds.transform * to_source.transform(xs, ys)
        col0, row0 = max(0, int(np.floor(np.min(cols))) - 2), max(0, int(np.floor(np.min(rows))) - 2)
        col1 = min(ds.width, int(np.ceil(np.max(cols))) + 2)
        row1 = min(ds.height, int(np.ceil(np.max(rows))) + 2)
        transform = ds.transform * Affine.translation(col0, row0)
        width, height, wkt = max(1, col1 - col0), max(1, row1 - row0), ds.crs.to_wkt()
    source = gdal.OpenEx(str(path), gdal.OF_RASTER | gdal.OF_READONLY)
    name = f"/vsimem/s1_linear_{uuid.uuid4().hex}.tif"
    copy = gdal.GetDriverByName("GTiff").Create(name, width, height, len(indexes), gdal.GDT_Float32)
    copy.SetProjection(wkt)
    copy.SetGeoTransform(transform.to_gdal())
    for number, index in enumerate(indexes, 1):
        db = source.GetRasterBand(index).ReadAsArray(col0, row0, width, height).astype(np.float64)
        bad = ~np.isfinite(db) | ((db == nodata) if nodata is not None else False)
        band = copy.GetRasterBand(number)
        band.WriteArray(np.where(bad, np.nan, s1_db_to_linear(np.where(bad, 0.0, db))))
        band.SetNoDataValue(math.nan)
    copy = None  # closes the file
    return name


def _resampling(record, src_res):
    """Codes: nearest only. Measurements: average when coarsening, bilinear otherwise (a
    source on the same lattice is then copied exactly)."""
    if record.processing in CLASS_MAPS:
        return "near"
    return "average" if src_res < record.resolution_m * (1 - _RES_TOLERANCE) else "bilinear"


def _source_resolution(ds, lattice):
    """The source's pixel size in metres of the lattice CRS, at the area's centre (any CRS,
    degrees included)."""
    left, bottom, right, top = lattice.bounds
    centre = ((left + right) / 2, (bottom + top) / 2)
    to_source = pyproj.Transformer.from_crs(lattice.crs.to_wkt(), ds.crs.to_wkt(), always_xy=True)
    sx, sy = to_source.transform(*centre)
    back = pyproj.Transformer.from_crs(ds.crs.to_wkt(), lattice.crs.to_wkt(), always_xy=True)
    a = ds.transform
    steps = []
    for dx, dy in ((a.a, a.d), (a.b, a.e)):  # one pixel along each of the source's axes
        x, y = back.transform(sx + dx, sy + dy)
        steps.append(math.hypot(x - centre[0], y - centre[1]))
    size = math.sqrt(steps[0] * steps[1])
    return size if math.isfinite(size) and size > 0 else abs(a.a)  # unmeasurable: nominal


def _default_nodata(sensor):
    """The nodata of a sensor's files that declare none (S2 DN 0, the DEM's -9999)."""
    return BY_KEY[SENSORS[sensor][0]].nodata


# --- which file band is which ------------------------------------------------------------

def _canonical(name):
    """A band name as compared: B4, b04, "B04 (red)", "B4, central wavelength" -> B04;
    "Gamma0_VV" -> VV; else upper case."""
    head = str(name).split(",")[0].strip().upper()
    match = re.match(r"B0*(\d{1,2}A?)(?![0-9A-Z])", head)
    if match:
        digits = match.group(1)
        return f"B{int(digits[:-1])}A" if digits.endswith("A") else f"B{int(digits):02d}"
    tokens = re.findall(r"[A-Z0-9]+", head)
    return next((token for token in ("VV", "VH", "DEM") if token in tokens), head)


def _band_sources(files, sensor, bands, lattice, label, field):
    """({canonical band: _Source}, notes) for the bands ``sensor`` needs, from ``files``."""
    needed = [_canonical(band) for band in sensor_bands(sensor)]
    names = None if bands is None else [_canonical(name) for name in _band_tokens(bands)]
    found, notes, count, offset = {}, [], 0, 0
    for path in files:
        with open_raster(path) as ds:
            _check_overlap(SimpleNamespace(label=path), ds, lattice.grid(10))
            nodata = ds.nodata if ds.nodata is not None else _default_nodata(sensor)
            res_m = _source_resolution(ds, lattice)
            if names is not None:
                here = {name: i for i, name in enumerate(names[offset:offset + ds.count], 1)}
            else:
                here = _described(ds, needed) or _named_by_file(path, ds, needed)
            layout = DEFAULT_LAYOUTS.get(sensor, sensor_bands(sensor))
            if names is None and not here and len(files) == 1 and ds.count == len(layout):
                here = {_canonical(band): i for i, band in enumerate(layout, 1)}
                if len(layout) > 1:
                    notes.append(f"{path}: no band names; its {ds.count} bands are taken in the "
                                 f"order {', '.join(layout)}")
            for name, index in here.items():
                found.setdefault(name, _Source(path, index, nodata, res_m))
            count, offset = count + ds.count, offset + ds.count
    _check_names(names, count, label, field)
    missing = [band for band in needed if band not in found]
    if missing and not found:
        raise InputError(
            f"{label}: has {count} band(s) without names; {sensor} needs {len(needed)} "
            f"({', '.join(sensor_bands(sensor))}): name the file's bands in order", field + ".bands")
    if missing:
        how = "the band names given" if names is not None else "the band descriptions"
        raise InputError(
            f"{label}: {sensor} needs bands {', '.join(sensor_bands(sensor))}; missing "
            f"{', '.join(missing)} (going by {how})", field + ".bands")
    return found, notes


def _check_names(names, count, label, field):
    if names is None:
        return
    if len(names) > count:
        raise InputError(f"{label}: {len(names)} band names given for its {count} band(s)",
                         field + ".bands")
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise InputError(f"{label}: band name(s) {', '.join(repeated)} given twice", field + ".bands")


def _named_by_file(path, ds, needed):
    """A one-band file named after its band (T32TQM_20210715_B04_10m.jp2, B8A.tif)."""
    tokens = re.findall(r"(?<![A-Z0-9])(B\d{1,2}A?)(?![A-Z0-9])", Path(path).stem.upper())
    names = {_canonical(token) for token in tokens} & set(needed)
    return {names.pop(): 1} if ds.count == 1 and len(names) == 1 else {}


def _described(ds, needed):
    """Bands named by their description or by a BANDNAME-like metadata item."""
    found = {}
    for index in range(1, ds.count + 1):
        tags = {key.upper(): value for key, value in ds.tags(index).items()}
        candidates = [ds.descriptions[index - 1]] + [tags.get(key) for key in _NAME_KEYS]
        for text in filter(None, candidates):
            name = _canonical(text)
            if name in needed and name not in found:
                found[name] = index
                break
    return found


# --- class codes -----------------------------------------------------------------------------

def _check_codes(key, codes, valid, grid, label):
    """InputError naming the codes ``key``'s model does not know and where the first lies."""
    unknown = unknown_codes(key, codes[valid].reshape(1, 1, 1, -1))
    if not unknown:
        return
    row, col = np.argwhere(valid & np.isin(codes, unknown))[0]
    x, y = grid.transform * (col + 0.5, row + 0.5)
    lon, lat = pyproj.Transformer.from_crs(grid.crs.to_wkt(), "EPSG:4326", always_xy=True).transform(x, y)
    known = ", ".join(str(code) for code in CLASS_MAPS[BY_KEY[key].processing].codes)
    raise InputError(
        f"{label}: {BY_KEY[key].label} has code(s) {', '.join(map(str, unknown))} the model does not "
        f"know (it knows {known}); first at row {row}, column {col} of the "
        f"{grid.pixel_size:g} m grid (lat {lat:.5f}, lon {lon:.5f})")
