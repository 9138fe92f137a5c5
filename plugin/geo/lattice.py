"""The model lattice of an area for COP-GEN: one footprint, seen at 10, 20, 30 and 60 m.

COP-GEN's coarsest latent pixel is 8 pixels at 60 m = 480 m (a *unit*); every modality's
latent canvas has whole latents on a 480 m lattice, so an area is a whole number of units,
its corner on the lattice, and each resolution's grid covers exactly the same footprint (one
unit is 48 px at 10 m, 24 at 20 m, 16 at 30 m, 8 at 60 m). A model window is 1920 m = 4 units:
an area has at least 4 x 4 units (small ones are padded, centred).

The CRS, the AOI and the checks on extents, polygons and rasters are those of :mod:`.grid`
(a north-up metric CRS, the UTM zone of the centre unless the given one keeps true scale).
The lattice is anchored on a lattice given in that CRS, else on the area's own top-left corner
put on the grid's pixels: a raster's footprint (a Major TOM tile) then starts the lattice and
its 10 m pixels are fed as they are, never shifted by a sub-pixel resampling.
"""

import math
from dataclasses import dataclass
from typing import Optional

import pyproj
from affine import Affine
from rasterio.crs import CRS
from shapely.geometry import box
from shapely.geometry.base import BaseGeometry

from ..engine.families.copgen.registry import WINDOW_METRES
from .grid import TargetGrid, parse_extent, raster_lattice

UNIT_M = 480.0  # one 60 m latent pixel (8 pixels of 60 m)
WINDOW_UNITS = int(WINDOW_METRES // UNIT_M)  # 4: a model window is 1920 m
RESOLUTIONS = (10.0, 20.0, 30.0, 60.0)  # the native pixel sizes of COP-GEN's modalities
_SNAP_EPS = 1e-6  # units; absorbs float noise when snapping bounds to the lattice


@dataclass(frozen=True)
class ModelLattice:
    """``rows`` x ``cols`` units of 480 m whose top-left corner is ``origin`` (x, y in
    ``crs``); ``aoi``: the area (shapely, in ``crs``), pixels outside it are nodata."""

    crs: CRS
    origin: tuple
    rows: int
    cols: int
    aoi: Optional[BaseGeometry] = None

    @property
    def units(self):
        """(rows, cols) in 480 m units."""
        return self.rows, self.cols

    @property
    def bounds(self):
        """(left, bottom, right, top) in ``crs``: the footprint of every resolution."""
        x0, y0 = self.origin
        return (x0, y0 - self.rows * UNIT_M, x0 + self.cols * UNIT_M, y0)

    def grid(self, resolution_m):
        """The :class:`TargetGrid` at ``resolution_m`` (10, 20, 30 or 60) over the footprint."""
        per_unit = _pixels_per_unit(resolution_m)
        x0, y0 = self.origin
        res = float(resolution_m)
        return TargetGrid(
            crs=self.crs, transform=Affine(res, 0.0, x0, 0.0, -res, y0),
            width=self.cols * per_unit, height=self.rows * per_unit, aoi=self.aoi,
        )

    def aoi_mask(self, resolution_m):
        """bool [H, W] at ``resolution_m``: True where the pixel centre lies in the area."""
        grid = self.grid(resolution_m)
        return grid.aoi_mask(0, 0, grid.height, grid.width)

    def window_centre_lonlat(self, row_unit, col_unit):
        """(lat, lon) in WGS 84 degrees of the centre of the window whose top-left unit is
        (row_unit, col_unit): the window's own location condition."""
        if not (0 <= row_unit <= self.rows - WINDOW_UNITS and 0 <= col_unit <= self.cols - WINDOW_UNITS):
            raise ValueError(f"window at unit ({row_unit}, {col_unit}) is outside the {self.rows} x "
                             f"{self.cols} units of the lattice")
        x0, y0 = self.origin
        half = WINDOW_UNITS / 2.0
        x, y = x0 + (col_unit + half) * UNIT_M, y0 - (row_unit + half) * UNIT_M
        to_wgs84 = pyproj.Transformer.from_crs(self.crs.to_wkt(), "EPSG:4326", always_xy=True)
        lon, lat = to_wgs84.transform(x, y)
        return float(lat), float(lon)

    # --- construction: the area's CRS and AOI come from grid.py's checked helpers -------------

    @classmethod
    def around(cls, aoi, crs, anchor=(0.0, 0.0)):
        """The smallest lattice (at least one window) containing ``aoi`` (in ``crs``, a metric
        north-up CRS) whose units have a corner at ``anchor`` + k * 480 m."""
        ax, ay = (value - math.floor(value / UNIT_M) * UNIT_M for value in anchor)
        left, bottom, right, top = aoi.bounds
        col_start = math.floor((left - ax) / UNIT_M + _SNAP_EPS)
        col_stop = math.ceil((right - ax) / UNIT_M - _SNAP_EPS)
        row_start = math.floor((ay - top) / UNIT_M + _SNAP_EPS)
        row_stop = math.ceil((ay - bottom) / UNIT_M - _SNAP_EPS)
        cols, rows = col_stop - col_start, row_stop - row_start
        col_start -= max(0, WINDOW_UNITS - cols) // 2  # a small area sits in the window's middle
        row_start -= max(0, WINDOW_UNITS - rows) // 2
        origin = (ax + col_start * UNIT_M, ay - row_start * UNIT_M)
        return cls(crs=crs, origin=origin, rows=max(rows, WINDOW_UNITS), cols=max(cols, WINDOW_UNITS), aoi=aoi)

    @classmethod
    def from_grid(cls, grid, lattices=()):
        """The lattice over a :class:`TargetGrid`'s area (its CRS and AOI, else its bounds),
        anchored on the first of ``lattices`` (:class:`.grid.Lattice`) in its CRS."""
        aoi = grid.aoi
        if aoi is None:
            aoi = box(*grid.bounds)
        return cls.around(aoi, grid.crs, _anchor(grid, aoi, lattices))

    @classmethod
    def from_extent(cls, xmin, ymin, xmax, ymax, crs, lattices=()):
        """Over an extent given in ``crs`` (see :meth:`TargetGrid.from_extent`)."""
        return cls.from_grid(TargetGrid.from_extent(xmin, ymin, xmax, ymax, crs, lattices=lattices), lattices)

    @classmethod
    def from_polygon(cls, geometry, crs, lattices=()):
        """Over a polygon given in ``crs`` (see :meth:`TargetGrid.from_polygon`)."""
        return cls.from_grid(TargetGrid.from_polygon(geometry, crs, lattices=lattices), lattices)

    @classmethod
    def from_extent_text(cls, text, default_crs=None, lattices=()):
        """Over an ``"xmin,ymin,xmax,ymax[,EPSG]"`` argument (see :func:`.grid.parse_extent`)."""
        return cls.from_grid(parse_extent(text, default_crs, lattices=lattices), lattices)

    @classmethod
    def from_raster(cls, path, lattices=()):
        """Over a raster's footprint; a raster on a north-up 10 m grid anchors the lattice on
        its own pixels, so its 10 m values land on the lattice unresampled."""
        own = raster_lattice(path)
        lattices = ((own,) if own else ()) + tuple(lattices)
        return cls.from_grid(TargetGrid.from_raster(path, lattices=lattices), lattices)


def _pixels_per_unit(resolution_m):
    if float(resolution_m) not in RESOLUTIONS:
        raise ValueError(f"resolution {resolution_m} m is not one of COP-GEN's {RESOLUTIONS}")
    return int(round(UNIT_M / float(resolution_m)))


def _anchor(grid, aoi, lattices):
    """The first of ``lattices`` in the grid's CRS, else the area's top-left corner on the grid's
    pixels (a grid made over a raster has the raster's pixels, so its corner is the raster's)."""
    given = next((lattice.origin for lattice in lattices if lattice.crs == grid.crs), None)
    if given is not None:
        return given
    left, _, _, top = aoi.bounds
    x0, y0, res = grid.transform.c, grid.transform.f, grid.pixel_size
    return (x0 + math.floor((left - x0) / res + _SNAP_EPS) * res, y0 - math.floor((y0 - top) / res + _SNAP_EPS) * res)
