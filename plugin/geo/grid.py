"""The 10 m target grid that conditions are warped onto and outputs are written on.

A grid is north-up, in a metric CRS that keeps true scale over the area (the UTM zone of
its centre unless the given CRS already qualifies), snapped to whole pixels, and padded
(centred) so that width and height are multiples of the VAE stride and at least one model
tile: the latent canvas is then whole. Pixels lie on multiples of 10 m, or on the lattice of
a 10 m raster in the grid's CRS (a condition is then copied, not shifted by a sub-pixel
resampling). An area must hold at least one pixel centre.
"""

import math
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Optional

import numpy as np
import pyproj
import rasterio
import rasterio.features
from affine import Affine
from rasterio.crs import CRS
from rasterio.errors import CRSError, NotGeoreferencedWarning, RasterioIOError
from shapely.geometry import Polygon, box, shape
from shapely.geometry.base import BaseGeometry
from shapely.ops import transform as transform_geometry

from ..engine.errors import InputError
from ..engine.families.beta.registry import LATENT_SIZE, PIXEL_SIZE_M, TILE_PIXELS
from .local_files import check_raster

STRIDE = TILE_PIXELS // LATENT_SIZE  # image pixels per latent pixel
MAX_SIDE_PIXELS = 100_000  # 1000 km at 10 m: larger is a typo in the extent, not a job
TRUE_SCALE_TOLERANCE = 0.01  # a kept CRS may distort distances by at most 1 %
_EDGE_POINTS = 21  # points per edge when an extent box is reprojected
_SNAP_EPS = 1e-6  # pixels; absorbs float noise when snapping bounds to the pixel lattice


def utm_crs_for(lon, lat):
    """The WGS 84 UTM zone CRS (EPSG:326zz north, 327zz south) containing lon, lat."""
    zone = int(math.floor((lon + 180.0) / 6.0)) % 60 + 1
    return CRS.from_epsg((32600 if lat >= 0 else 32700) + zone)


@dataclass(frozen=True)
class TargetGrid:
    """A north-up pixel grid: ``crs`` (rasterio CRS), ``transform`` (affine), ``width``,
    ``height`` and the optional area of interest ``aoi`` (shapely polygon in the grid CRS;
    pixels whose centre lies outside it are nodata in outputs)."""

    crs: CRS
    transform: Affine
    width: int
    height: int
    aoi: Optional[BaseGeometry] = None

    @property
    def pixel_size(self):
        return self.transform.a

    @property
    def bounds(self):
        """(left, bottom, right, top) in the grid CRS."""
        left, top = self.transform.c, self.transform.f
        return (left, top - self.height * self.pixel_size, left + self.width * self.pixel_size, top)

    def window_transform(self, row_off, col_off):
        """Affine transform of the window whose top-left pixel is (row_off, col_off)."""
        return self.transform * Affine.translation(col_off, row_off)

    def aoi_mask(self, row_off, col_off, height, width):
        """bool [height, width]: True where the pixel centre is inside the AOI (all True
        without one). Only the window is rasterized, so memory follows the window."""
        if self.aoi is None:
            return np.ones((height, width), dtype=bool)
        transform = self.window_transform(row_off, col_off)
        left, top = transform.c, transform.f
        window_box = box(left, top - height * self.pixel_size, left + width * self.pixel_size, top)
        if self.aoi.contains(window_box):
            return np.ones((height, width), dtype=bool)
        part = self.aoi.intersection(window_box)
        if part.is_empty or part.area == 0:
            return np.zeros((height, width), dtype=bool)
        return rasterio.features.geometry_mask(
            [part], out_shape=(height, width), transform=transform, invert=True
        )

    def blocks(self, size=1024):
        """Yield (row_off, col_off, height, width) windows of at most size x size tiling the grid."""
        for row_off in range(0, self.height, size):
            for col_off in range(0, self.width, size):
                yield row_off, col_off, min(size, self.height - row_off), min(size, self.width - col_off)

    @classmethod
    def from_extent(cls, xmin, ymin, xmax, ymax, crs, pixel=PIXEL_SIZE_M, lattices=()):
        """Grid covering the extent (given in ``crs``); the extent becomes the AOI.
        ``lattices``: see :meth:`from_polygon`."""
        crs = parse_crs(crs, "extent CRS")
        values = [float(v) for v in (xmin, ymin, xmax, ymax)]
        if crs.is_geographic and values[0] - values[2] > 180:
            values[2] += 360.0  # crosses the antimeridian, e.g. 179.9 .. -179.9
        if not all(math.isfinite(v) for v in values) or not (values[0] < values[2] and values[1] < values[3]):
            raise InputError(f"extent {values} is empty: need xmin < xmax and ymin < ymax")
        if crs.is_geographic and not (
            -180 <= values[0] <= 180 and values[2] <= values[0] + 360 and -90 <= values[1] and values[3] <= 90
        ):
            raise InputError(f"extent {values} is outside longitude/latitude range for {crs}")
        return _grid_for(_densified_box(*values), crs, pixel, lattices, f"extent {values}")

    @classmethod
    def from_polygon(cls, geometry, crs, pixel=PIXEL_SIZE_M, lattices=()):
        """Grid covering a polygon (shapely geometry or GeoJSON-like mapping in ``crs``),
        which becomes the AOI. ``lattices``: :class:`Lattice` items; the first in the grid's
        CRS gives the pixel lattice (default: multiples of ``pixel``)."""
        crs = parse_crs(crs, "polygon CRS")
        return _grid_for(_area_geometry(geometry), crs, pixel, lattices, "polygon")

    @classmethod
    def from_raster(cls, path, pixel=PIXEL_SIZE_M, lattices=()):
        """Grid covering a raster's footprint (the AOI), in any CRS, geographic included.
        A raster already on a north-up ``pixel`` grid in the grid's CRS keeps its own pixel
        lattice, so it is copied, not resampled; otherwise ``lattices`` apply as in
        :meth:`from_polygon`."""
        with open_raster(path) as ds:
            crs, transform, width, height = ds.crs, ds.transform, ds.width, ds.height
        if crs is None:
            raise InputError(f"raster {path} has no CRS (not georeferenced); georeference it in a GIS first")
        check_earth_crs(crs, f"raster {path}")
        corners = Polygon([transform * xy for xy in ((0, 0), (width, 0), (width, height), (0, height))])
        own = _lattice_of(crs, transform, pixel)
        own_lattice = (own,) if own else ()
        return _grid_for(_densified_box(*corners.bounds), crs, pixel, own_lattice + tuple(lattices), f"raster {path}")


@dataclass(frozen=True)
class Lattice:
    """The pixel lattice of a north-up raster: pixel corners at ``origin + k * pixel`` in ``crs``."""

    crs: CRS
    origin: tuple


def raster_lattice(path, pixel=PIXEL_SIZE_M, label=None):
    """The :class:`Lattice` of a raster on a north-up ``pixel`` grid, else None (no CRS,
    rotated or another pixel size)."""
    with open_raster(path, label) as ds:
        crs, transform = ds.crs, ds.transform
    return _lattice_of(crs, transform, pixel) if crs is not None else None


def _lattice_of(crs, transform, pixel):
    north_up = transform.b == 0 and transform.d == 0
    if north_up and math.isclose(transform.a, pixel, rel_tol=1e-9) and math.isclose(transform.e, -pixel, rel_tol=1e-9):
        return Lattice(crs, (transform.c, transform.f))
    return None


def check_earth_crs(crs, what):
    """InputError naming ``what`` unless ``crs`` can be placed on the Earth: a local
    (engineering) CRS, e.g. a drone survey's site coordinates, cannot be warped anywhere."""
    try:
        pyproj.Transformer.from_crs(crs.to_wkt(), "EPSG:4326", always_xy=True)
    except (pyproj.exceptions.ProjError, pyproj.exceptions.CRSError):
        name = pyproj.CRS.from_wkt(crs.to_wkt()).name if crs.to_wkt() else "unnamed"
        raise InputError(
            f"{what}: its CRS ({name[:60]}) is a local (engineering) CRS with no position on the "
            "Earth; georeference it in a real CRS (e.g. its UTM zone) in a GIS first"
        ) from None


def _grid_for(geometry, crs, pixel, lattices, what):
    """The grid around ``geometry`` (in ``crs``), on the first lattice in the grid's CRS."""
    check_earth_crs(crs, what)
    grid_crs = _metric_crs_for(geometry, crs)
    origin = next((lattice.origin for lattice in lattices if lattice.crs == grid_crs), (0.0, 0.0))
    try:
        grid = _grid_around(_reproject(geometry, crs, grid_crs), grid_crs, pixel, origin)
    except InputError as exc:
        raise InputError(f"{what}: {exc}") from None
    if not any(grid.aoi_mask(*window).any() for window in grid.blocks()):
        raise InputError(
            f"{what}: no {pixel:g} m pixel centre falls inside the area (it is smaller or thinner than a pixel); enlarge it"
        )
    return grid


@contextmanager
def open_raster(path, label=None):
    """Open a user raster for reading; InputError naming ``label`` (default: the path)
    when it cannot be read, or is not a local file GDAL may open (:mod:`.local_files`).
    Georeferencing is the caller's to check (and report)."""
    path = check_raster(path, label or path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            dataset = rasterio.open(path)
    except RasterioIOError as exc:
        raise InputError(f"{label or path}: cannot read raster: {exc}") from None
    with dataset:
        yield dataset


def parse_crs(value, what):
    """A rasterio CRS from a CRS, 'EPSG:n', an EPSG code or WKT; InputError naming ``what``."""
    if isinstance(value, CRS):
        return value
    try:
        return CRS.from_epsg(value) if isinstance(value, int) else CRS.from_user_input(value)
    except (CRSError, ValueError, TypeError):
        raise InputError(f"{what}: unknown CRS {value!r}") from None


def _area_geometry(geometry):
    if not isinstance(geometry, BaseGeometry):
        try:
            geometry = shape(geometry)
        except (AttributeError, KeyError, TypeError, ValueError):
            raise InputError(f"polygon: not a geometry: {geometry!r}") from None
    if not geometry.is_valid:
        geometry = geometry.buffer(0)  # repairs self-intersections
    if geometry.is_empty or geometry.area == 0:
        raise InputError("polygon is empty (no area): draw or select a polygon covering the area")
    return geometry


def _densified_box(xmin, ymin, xmax, ymax):
    """The box as a polygon with points along its edges, so it bends when reprojected."""
    steps = np.linspace(0.0, 1.0, _EDGE_POINTS)[:-1]
    xs = xmin + (xmax - xmin) * steps
    ys = ymin + (ymax - ymin) * steps
    ring = (
        [(x, ymin) for x in xs]
        + [(xmax, y) for y in ys]
        + [(x, ymax) for x in (xmax + xmin - xs)]
        + [(xmin, y) for y in (ymax + ymin - ys)]
    )
    return Polygon(ring)


def _reproject(geometry, src_crs, dst_crs):
    if src_crs == dst_crs:
        return geometry
    transformer = pyproj.Transformer.from_crs(src_crs.to_wkt(), dst_crs.to_wkt(), always_xy=True)
    return transform_geometry(transformer.transform, geometry)


def _metric_crs_for(geometry, crs):
    """``crs`` if it is projected in metres with near-true scale at the area's centre,
    else the UTM zone of that centre."""
    centre = geometry.envelope.centroid
    lon, lat = pyproj.Transformer.from_crs(crs.to_wkt(), "EPSG:4326", always_xy=True).transform(
        centre.x, centre.y
    )
    if crs.is_projected and _in_metres(crs) and _true_scale(crs, lon, lat):
        return crs
    return utm_crs_for(lon, lat)


def _in_metres(crs):
    axes = pyproj.CRS.from_wkt(crs.to_wkt()).axis_info
    return bool(axes) and all(axis.unit_conversion_factor == 1.0 and axis.unit_name in ("metre", "meter") for axis in axes)


def _true_scale(crs, lon, lat):
    factors = pyproj.Proj(pyproj.CRS.from_wkt(crs.to_wkt())).get_factors(lon, lat)
    scales = (factors.meridional_scale, factors.parallel_scale)
    return all(math.isfinite(s) and abs(s - 1.0) <= TRUE_SCALE_TOLERANCE for s in scales)


def _grid_around(aoi, crs, pixel, origin=(0.0, 0.0)):
    """Smallest padded grid on the lattice ``origin + k * pixel`` containing ``aoi``."""
    left, bottom, right, top = aoi.bounds
    if not all(math.isfinite(v) for v in (left, bottom, right, top)):
        raise InputError(f"the area cannot be projected to {crs} (it reaches infinity there); check its CRS")
    x0, y0 = origin
    col_start = math.floor((left - x0) / pixel + _SNAP_EPS)
    col_stop = math.ceil((right - x0) / pixel - _SNAP_EPS)
    row_start = math.floor((y0 - top) / pixel + _SNAP_EPS)
    row_stop = math.ceil((y0 - bottom) / pixel - _SNAP_EPS)
    width, height = col_stop - col_start, row_stop - row_start
    if max(width, height) > MAX_SIDE_PIXELS:
        raise InputError(
            f"area is {width * pixel / 1000:.0f} x {height * pixel / 1000:.0f} km; at most "
            f"{MAX_SIDE_PIXELS * pixel / 1000:.0f} km a side (check the extent and its CRS)"
        )
    padded_width, padded_height = _padded(width), _padded(height)
    col_start -= (padded_width - width) // 2
    row_start -= (padded_height - height) // 2
    transform = Affine(pixel, 0.0, x0 + col_start * pixel, 0.0, -pixel, y0 - row_start * pixel)
    return TargetGrid(crs=crs, transform=transform, width=padded_width, height=padded_height, aoi=aoi)


def _padded(size):
    return max(TILE_PIXELS, -(-size // STRIDE) * STRIDE)


def parse_extent(text, default_crs=None, pixel=PIXEL_SIZE_M, lattices=()):
    """TargetGrid for an ``"xmin,ymin,xmax,ymax[,EPSG]"`` argument; without an EPSG code the
    extent is in ``default_crs``. ``lattices``: see :meth:`TargetGrid.from_polygon`. Errors
    carry the field "extent" (every face that takes this text names its own option)."""
    try:
        return _parse_extent(text, default_crs, pixel, lattices)
    except InputError as exc:
        exc.field = exc.field or "extent"
        raise


def _parse_extent(text, default_crs, pixel, lattices):
    parts = [p.strip() for p in text.split(",")]
    if len(parts) not in (4, 5):
        raise InputError(f"extent {text!r}: expected xmin,ymin,xmax,ymax[,EPSG]")
    try:
        values = [float(p) for p in parts[:4]]
    except ValueError:
        raise InputError(f"extent {text!r}: xmin, ymin, xmax, ymax must be numbers") from None
    if len(parts) == 5:
        code = parts[4].upper().removeprefix("EPSG:")
        crs = parse_crs(int(code) if code.isdigit() else parts[4], f"extent {text!r}")
    elif default_crs is not None:
        crs = default_crs
    else:
        raise InputError(f"extent {text!r}: add the EPSG code of its coordinates, e.g. {text},4326")
    return TargetGrid.from_extent(*values, crs=crs, pixel=pixel, lattices=lattices)
