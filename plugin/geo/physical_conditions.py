"""COP-GEN conditions from rasters in physical units, read onto a :class:`.lattice.ModelLattice`.

One raster stands for one sensor (``s2l2a``, ``s2l1c``, ``s1rtc``, ``dem``, ``lulc``,
``cloud``) and fills all of that sensor's groups at once, each at its native resolution and in
the registry's channel order (the 10 m S2 group is B04, B03, B02, B08). Which file band is
which comes from the names given, else band descriptions, GDAL band metadata or the names of
one-band files (:mod:`.band_names`), else the usual layout of the sensor's products (Major
TOM's band order), with a note saying so. :class:`SensorReader` reads any window (bounded
memory), :func:`read_sensor` the whole area.

Values stay in physical units: S2 DN (less the product's DN offset where it carries one: the
model reads reflectance x 10000), S1 linear gamma0, DEM metres, class codes. Measurements
are averaged when coarsened and interpolated bilinearly when refined; class codes are only
ever taken by nearest neighbour, and codes the model does not know are refused.
"""

import math
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, replace
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
from .band_names import (
    DEFAULT_LAYOUTS,
    canonical,
    check_names,
    described,
    given_name,
    named_by_file,
    sensor_bands,
)
from .condition_spec import band_tokens
from .conditions import S2_REFLECTANCE_MAX, _check_overlap
from .grid import _densified_box, open_raster
from .warp import warp_bands

READ_SENSORS = ("s2l2a", "s2l1c", "s1rtc", "dem", "lulc", "cloud")
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
    """Where one band is: file, 1-based band, its nodata and pixel size (metres);
    ``read_path``: where it is read from when not the file itself (a linear copy)."""

    path: str
    index: int
    nodata: Optional[float]
    res_m: float
    read_path: Optional[str] = None

    def __post_init__(self):
        object.__setattr__(self, "read_path", self.read_path or self.path)


def read_sensor(path, sensor, lattice, bands=None, s1_in_db=False, s2_offset=None, cancel=None):
    """Read ``path`` as ``sensor`` over the whole of ``lattice``: a :class:`SensorLayers`.

    Arguments as :class:`SensorReader`. ``cancel()`` returning True stops between groups
    (Cancelled). InputError as :class:`SensorReader`, and when a group has no valid pixel in
    the area or class codes the model does not know.
    """
    with SensorReader(path, sensor, lattice, bands=bands, s1_in_db=s1_in_db, s2_offset=s2_offset) as reader:
        return read_all(reader, cancel)


def read_all(reader, cancel=None):
    """Every group of an open :class:`SensorReader` over its whole lattice, checked: a
    :class:`SensorLayers` (see :func:`read_sensor`)."""
    layers = {}
    for key in reader.keys:
        check_cancel(cancel, f"reading {reader.label}")
        layers[key] = reader.read(key)
        reader.check(key, *layers[key])
        reader.check_any_valid(key, layers[key][1])
    return SensorLayers(layers, reader.notes)


class SensorReader:
    """A sensor's raster(s) resolved against a lattice; reads any window of any of its groups
    (bounded memory over large areas; windows agree exactly where they overlap).

    ``path``: one file (a product GeoTIFF, a Major TOM tile, a SAFE or JP2 product GDAL opens:
    a container of subdatasets stands for them all), or a list of files (one per band, or per
    resolution), a band being read from the first file that has it. ``bands``: names of the
    files' bands in order (a list, or "B01,B02,..."); None reads them from descriptions,
    metadata or (one-band files) the file name. ``s1_in_db``: the S1 file holds dB (turned
    linear before resampling). ``s2_offset``: an :class:`.s2_offset.S2Offset` whose value is
    subtracted from every Sentinel-2 DN (a note says so and why). InputError (field ``conditions.<sensor>`` or
    ``conditions.<sensor>.bands``), one line naming the file: unreadable, not georeferenced,
    off the area, bands missing. Use as a context manager (it may hold in-memory copies).
    """

    def __init__(self, path, sensor, lattice, bands=None, s1_in_db=False, s2_offset=None):
        self.field = f"conditions.{sensor}"
        paths = [str(p) for p in (path if isinstance(path, (list, tuple)) else [path])]
        self.label = paths[0] if len(paths) == 1 else f"{paths[0]} (and {len(paths) - 1} more file(s))"
        if sensor not in READ_SENSORS:
            raise InputError(f"{self.label}: unknown sensor {sensor!r}; expected one of "
                             f"{', '.join(READ_SENSORS)}", "conditions")
        self.sensor, self.lattice, self.keys = sensor, lattice, SENSORS[sensor]
        self._copies = []
        is_s2 = BY_KEY[self.keys[0]].processing == "s2"
        self.s2_offset = float(s2_offset.value) if is_s2 and s2_offset is not None else 0.0
        with self._about():
            self.sources, self.notes = _band_sources(_expand(paths), sensor, bands, lattice,
                                                     self.label, self.field)
            if self.s2_offset:
                self.notes.append(f"{self.label}: {self.s2_offset:g} subtracted from every DN ({s2_offset.reason}), "
                                  "so the model reads reflectance x 10000")
            if s1_in_db and sensor == "s1rtc":
                try:
                    self._to_linear()
                except BaseException:
                    self.close()
                    raise

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        """Drop the in-memory copies."""
        for name in self._copies:
            gdal.Unlink(name)
        self._copies = []

    def read(self, key, window=None):
        """(values float32 [C, h, w] NaN where not valid, valid bool [h, w]) of ``window``
        (row_off, col_off, height, width; default: all) of ``key``'s grid on the lattice."""
        record = BY_KEY[key]
        grid = self.lattice.grid(record.resolution_m)
        row_off, col_off, height, width = window or (0, 0, grid.height, grid.width)
        transform = grid.window_transform(row_off, col_off)
        wanted = [self.sources[canonical(band)] for band in record.bands]
        values = np.empty((len(wanted), height, width), dtype=np.float32)
        with self._about():
            for path in dict.fromkeys(source.path for source in wanted):  # one warp per file
                channels = [i for i, source in enumerate(wanted) if source.path == path]
                first = wanted[channels[0]]
                values[channels] = warp_bands(
                    first.read_path, [wanted[i].index for i in channels], grid.crs, transform,
                    height, width, _resampling(record, first.res_m), first.nodata, path)
        valid = np.isfinite(values).all(axis=0)
        values[:, ~valid] = np.nan
        values -= self.s2_offset  # a product's DN offset (0 but for Sentinel-2 products that carry one)
        return values, valid

    def check(self, key, values, valid, window=None):
        """InputError when a class map's window holds codes the model does not know, or an
        S2 window's values all look like reflectance 0..1 (the model reads DN)."""
        record = BY_KEY[key]
        with self._about():
            if record.processing in CLASS_MAPS:
                grid = self.lattice.grid(record.resolution_m)
                _check_codes(key, values[0], valid, grid, (window or (0, 0))[:2], self.label)
            if record.processing == "s2" and valid.any() and values[:, valid].max() <= S2_REFLECTANCE_MAX:
                raise InputError(
                    f"{self.label}: values look like reflectance 0..1 (all <= {S2_REFLECTANCE_MAX:g}); "
                    "digital numbers (reflectance x 10000) are expected")

    def check_any_valid(self, key, valid, window=None):
        """InputError when no pixel of ``valid`` (a window, default all) lies in the area."""
        row_off, col_off = (window or (0, 0))[:2]
        inside = self.lattice.grid(BY_KEY[key].resolution_m).aoi_mask(row_off, col_off, *valid.shape)
        if not (valid & inside).any():
            raise InputError(f"{self.label}: no valid pixel inside the area (all nodata there)", self.field)

    def _to_linear(self):
        """S1 in dB: read through a linear copy of the area, so that averages and
        interpolations are of power, not of dB."""
        for path in dict.fromkeys(source.path for source in self.sources.values()):
            here = {band: source for band, source in self.sources.items() if source.path == path}
            name = _linear_copy(path, [source.index for source in here.values()],
                                next(iter(here.values())).nodata, self.lattice)
            self._copies.append(name)
            for number, (band, source) in enumerate(here.items(), 1):
                self.sources[band] = replace(source, index=number, nodata=math.nan, read_path=name)

    @contextmanager
    def _about(self):
        """Every problem of a condition is about its field."""
        try:
            yield
        except InputError as exc:
            exc.field = exc.field or self.field
            raise


def _expand(paths):
    """The files to read: a container of subdatasets (a SAFE's metadata file) -> its
    subdatasets, in GDAL's order (10 m first)."""
    files = []
    for path in paths:
        with open_raster(path) as ds:
            files += list(ds.subdatasets) if ds.count == 0 and ds.subdatasets else [path]
    return files


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


def _band_sources(files, sensor, bands, lattice, label, field):
    """({canonical band: _Source}, notes) for the bands ``sensor`` needs, from ``files``."""
    needed = [canonical(band) for band in sensor_bands(sensor)]
    names = None if bands is None else [given_name(name, sensor) for name in band_tokens(bands)]
    found, notes, count, offset = {}, [], 0, 0
    for path in files:
        with open_raster(path) as ds:
            _check_overlap(SimpleNamespace(label=path), ds, lattice.grid(10))
            nodata = ds.nodata if ds.nodata is not None else _default_nodata(sensor)
            res_m = _source_resolution(ds, lattice)
            if names is not None:
                here = {name: i for i, name in enumerate(names[offset:offset + ds.count], 1)}
            else:
                here = described(ds, needed) or named_by_file(path, ds, needed)
            layout = DEFAULT_LAYOUTS.get(sensor, sensor_bands(sensor))
            if names is None and not here and len(files) == 1 and ds.count == len(layout):
                here = {canonical(band): i for i, band in enumerate(layout, 1)}
                if len(layout) > 1:
                    notes.append(f"{path}: no band names; its {ds.count} bands are taken in the "
                                 f"order {', '.join(layout)}")
            for name, index in here.items():
                found.setdefault(name, _Source(path, index, nodata, res_m))
            count, offset = count + ds.count, offset + ds.count
    check_names(names, count, label, field)
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


# --- class codes -----------------------------------------------------------------------------

def _check_codes(key, codes, valid, grid, offset, label):
    """InputError naming the codes ``key``'s model does not know and where the first lies
    (``offset``: row and column of the window in the grid)."""
    unknown = unknown_codes(key, codes[valid].reshape(1, 1, 1, -1))
    if not unknown:
        return
    row, col = np.argwhere(valid & np.isin(codes, unknown))[0] + np.asarray(offset)
    x, y = grid.transform * (col + 0.5, row + 0.5)
    lon, lat = pyproj.Transformer.from_crs(grid.crs.to_wkt(), "EPSG:4326", always_xy=True).transform(x, y)
    known = ", ".join(str(code) for code in CLASS_MAPS[BY_KEY[key].processing].codes)
    raise InputError(
        f"{label}: {BY_KEY[key].label} has code(s) {', '.join(map(str, unknown))} the model does not "
        f"know (it knows {known}); first at row {row}, column {col} of the "
        f"{grid.pixel_size:g} m grid (lat {lat:.5f}, lon {lon:.5f})")
