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
from types import SimpleNamespace

import numpy as np
import pyproj

from ..engine.cancel import check_cancel
from ..engine.errors import InputError
from ..engine.families.copgen.classes import CLASS_MAPS
from ..engine.families.copgen.processing import s1_db_to_linear, unknown_codes
from ..engine.families.copgen.registry import BY_KEY, SENSORS
from .conditions import _band_tokens, _check_overlap
from .grid import open_raster
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


def sensor_bands(sensor):
    """The bands a file of ``sensor`` must provide: all of its groups', S2 in ESA order."""
    bands = {band for key in SENSORS[sensor] for band in BY_KEY[key].bands}
    return tuple(sorted(bands, key=lambda b: S2_BAND_ORDER.index(b) if b in S2_BAND_ORDER else 0))


def read_sensor(path, sensor, lattice, bands=None, s1_in_db=False, cancel=None):
    """Read ``path`` as ``sensor`` onto ``lattice``: a :class:`SensorLayers`.

    ``bands``: names of the file's bands in order (a list, or "B01,B02,..."); None reads them
    from descriptions or metadata. ``s1_in_db``: the S1 file holds dB (resampled in dB, then
    turned linear). ``cancel()`` returning True stops between groups (Cancelled).
    InputError (field ``conditions.<sensor>`` or ``conditions.<sensor>.bands``), one line
    naming the file: unreadable, not georeferenced, off the area, bands missing, no valid
    pixel in the area, class codes the model does not know.
    """
    field = f"conditions.{sensor}"
    if sensor not in READ_SENSORS:
        raise InputError(f"{path}: unknown sensor {sensor!r}; expected one of {', '.join(READ_SENSORS)}",
                         "conditions")
    label = str(path)
    try:
        with open_raster(path, label) as ds:
            index_of, notes = _band_indexes(ds, sensor, bands, label, field)
            src_nodata = ds.nodata if ds.nodata is not None else _default_nodata(sensor)
            _check_overlap(SimpleNamespace(label=label), ds, lattice.grid(10))
            src_res = _source_resolution(ds, lattice)
        layers = {}
        for key in SENSORS[sensor]:
            check_cancel(cancel, f"reading {label}")
            layers[key] = _read_group(path, key, lattice, index_of, src_nodata, src_res, s1_in_db, label)
    except InputError as exc:  # every problem of a condition is about its field
        exc.field = exc.field or field
        raise
    return SensorLayers(layers, notes)


def _read_group(path, key, lattice, index_of, src_nodata, src_res, s1_in_db, label):
    record = BY_KEY[key]
    grid = lattice.grid(record.resolution_m)
    indexes = [index_of[_canonical(band)] for band in record.bands]
    values = warp_bands(path, indexes, grid.crs, grid.transform, grid.height, grid.width,
                        _resampling(record, src_res), src_nodata, label)
    if s1_in_db and record.processing == "s1":
        values = s1_db_to_linear(values)
    valid = np.isfinite(values).all(axis=0)
    values[:, ~valid] = np.nan
    if not (valid & lattice.aoi_mask(record.resolution_m)).any():
        raise InputError(f"{label}: no valid pixel inside the area (all nodata there)")
    if record.processing in CLASS_MAPS:
        _check_codes(key, values[0], valid, grid, label)
    return values.astype(np.float32, copy=False), valid


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


def _band_indexes(ds, sensor, bands, label, field):
    """({canonical band: 1-based index}, notes) for the bands ``sensor`` needs."""
    needed = [_canonical(band) for band in sensor_bands(sensor)]
    notes = []
    if bands is not None:
        found = _named(ds, bands, label, field)
        how = "the band names given"
    else:
        found = _described(ds, needed)
        how = "the band descriptions"
        layout = DEFAULT_LAYOUTS.get(sensor, sensor_bands(sensor))
        if not found and ds.count == len(layout):
            found = {_canonical(band): i for i, band in enumerate(layout, 1)}
            if len(layout) > 1:
                notes.append(f"{label}: no band names; its {ds.count} bands are taken in the order "
                             f"{', '.join(layout)}")
    missing = [band for band in needed if band not in found]
    if missing and not found:
        raise InputError(
            f"{label}: has {ds.count} band(s) without names; {sensor} needs {len(needed)} "
            f"({', '.join(sensor_bands(sensor))}): name the file's bands in order", field + ".bands")
    if missing:
        raise InputError(
            f"{label}: {sensor} needs bands {', '.join(sensor_bands(sensor))}; missing "
            f"{', '.join(missing)} (going by {how})", field + ".bands")
    return found, notes


def _named(ds, bands, label, field):
    names = [_canonical(name) for name in _band_tokens(bands)]
    if len(names) > ds.count:
        raise InputError(f"{label}: {len(names)} band names given for its {ds.count} band(s)",
                         field + ".bands")
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise InputError(f"{label}: band name(s) {', '.join(repeated)} given twice", field + ".bands")
    return {name: index for index, name in enumerate(names, 1)}


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
