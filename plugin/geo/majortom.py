"""The Major TOM grid: named 10 km cells over the globe, and each cell's 10 m product grid.

Rules (ESA Major TOM, ``MajorTOM/grid.py``, with a 10 km distance on a sphere of the WGS 84
equatorial radius):

- Rows: the pole-to-pole arc is cut into ``ceil(pi R / 10 km)`` = 2004 equal steps of latitude;
  row lines lie at whole multiples of that step, the equator included. Row ``0U`` starts at the
  equator, ``kU`` k steps north of it, ``kD`` k steps south (``1D`` is the first row below the
  equator).
- Columns: each row's circle of latitude (at the row's bottom edge) is cut into
  ``ceil(circumference / 10 km)`` equal steps of longitude with a line on the prime meridian;
  column ``0R`` starts there, ``kR`` k steps east, ``kL`` k steps west. With an odd count, the
  last ``R`` column straddles the 180th meridian.
- A cell is named ``<row>_<col>`` after its bottom-left grid point, and its CRS is the UTM zone
  of that point (with the Norway and Svalbard exceptions; south of the equator the southern zone).

Two choices of ours, where the published code leaves a point on a line undecided: a point on a
row or column line belongs to the cell whose bottom or left edge that line is (so a cell's own
grid point lies in it), and longitudes are taken modulo 360.

Product grid: Major TOM Core products are 1068 x 1068 px at 10 m in the cell's UTM zone, on a
lattice through the cell's grid point, with a 34 px margin around the 10 km square above and to
the right of that point (the bundled tiles of cells 282D_485L and 38D_378R lie on that lattice).
"""

import math
import re
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pyproj
from affine import Affine
from rasterio.crs import CRS
from shapely.geometry import LineString, MultiPolygon, Polygon, box
from shapely.ops import transform as transform_geometry
from shapely.prepared import prep

from ..engine.errors import InputError
from ..engine.families.beta.registry import PIXEL_SIZE_M

EARTH_RADIUS_KM = 6378.137  # WGS 84 equatorial radius, as Major TOM uses
CELL_KM = 10.0
ROW_COUNT = math.ceil(math.pi * EARTH_RADIUS_KM / CELL_KM)  # 2004 rows pole to pole
ROW_STEP_DEG = 180.0 / ROW_COUNT
PRODUCT_PIXELS = 1068
PRODUCT_MARGIN_PX = (PRODUCT_PIXELS - round(CELL_KM * 1000 / PIXEL_SIZE_M)) // 2  # 34 px
MAX_CELLS = 500_000  # about 50 million km2: a larger request is a mistake in the area
_NAME = re.compile(r"(\d+)([UD])_(\d+)([RL])")


@lru_cache(maxsize=1)
def _row_latitudes():
    """Sorted bottom latitudes of all rows and the index of row 0U (the equator)."""
    latitudes = np.sort(np.mod(np.linspace(-90.0, 90.0, ROW_COUNT + 1)[:-1], 180.0) - 90.0)
    return latitudes, int(np.searchsorted(latitudes, 0.0))


@lru_cache(maxsize=4096)
def _row_longitudes(row):
    """Sorted left longitudes of the columns of ``row`` (signed: >= 0 north) and the index of 0R."""
    latitudes, equator = _row_latitudes()
    circumference = 2.0 * math.pi * EARTH_RADIUS_KM * math.cos(math.radians(latitudes[equator + row]))
    count = max(1, math.ceil(circumference / CELL_KM))
    longitudes = np.sort(np.mod(np.linspace(-180.0, 180.0, count + 1)[:-1], 360.0) - 180.0)
    return longitudes, int(np.flatnonzero(longitudes == 0.0)[0])


def _row_range():
    latitudes, equator = _row_latitudes()
    return -equator, len(latitudes) - 1 - equator


@dataclass(frozen=True, order=True)
class Cell:
    """One Major TOM cell: ``row`` (>= 0: U, < 0: D) and ``col`` (>= 0: R, < 0: L)."""

    row: int
    col: int

    @property
    def name(self):
        row = f"{self.row}U" if self.row >= 0 else f"{-self.row}D"
        col = f"{self.col}R" if self.col >= 0 else f"{-self.col}L"
        return f"{row}_{col}"

    def __str__(self):
        return self.name

    @property
    def lat(self):
        """Latitude of the bottom edge (the grid point)."""
        latitudes, equator = _row_latitudes()
        return float(latitudes[equator + self.row])

    @property
    def lon(self):
        """Longitude of the left edge (the grid point)."""
        longitudes, zero = _row_longitudes(self.row)
        return float(longitudes[zero + self.col])

    @property
    def width_deg(self):
        return 360.0 / len(_row_longitudes(self.row)[0])

    @property
    def epsg(self):
        """EPSG code of the cell's UTM zone (that of its grid point)."""
        return utm_epsg(self.lon, self.lat)

    @property
    def crs(self):
        return CRS.from_epsg(self.epsg)

    def footprint(self):
        """The cell as a lon/lat polygon (EPSG:4326). The straddling last column of an odd row
        reaches past 180 degrees east."""
        return box(self.lon, self.lat, self.lon + self.width_deg, self.lat + ROW_STEP_DEG)

    def product_grid(self, size_px=PRODUCT_PIXELS):
        """The 10 m product grid: (crs, transform, size_px, size_px). ``size_px`` < 1068 gives the
        centred part of the Core product grid (same lattice)."""
        if not 1 <= size_px <= PRODUCT_PIXELS or (PRODUCT_PIXELS - size_px) % 2:
            raise InputError(f"{size_px} px: use an even count of 2..{PRODUCT_PIXELS} px", "cell_size_px")
        x, y = _to_crs(self.epsg).transform(self.lon, self.lat)
        inset = (PRODUCT_PIXELS - size_px) // 2 - PRODUCT_MARGIN_PX
        left = x + inset * PIXEL_SIZE_M
        top = y + (inset + size_px) * PIXEL_SIZE_M
        transform = Affine(PIXEL_SIZE_M, 0.0, left, 0.0, -PIXEL_SIZE_M, top)
        return self.crs, transform, size_px, size_px

    def product_bounds(self, size_px=PRODUCT_PIXELS):
        """(left, bottom, right, top) of :meth:`product_grid` in the cell's UTM CRS."""
        _, transform, width, height = self.product_grid(size_px)
        return transform.c, transform.f - height * PIXEL_SIZE_M, transform.c + width * PIXEL_SIZE_M, transform.f


@lru_cache(maxsize=64)
def _to_crs(epsg):
    return pyproj.Transformer.from_crs("EPSG:4326", f"EPSG:{epsg}", always_xy=True)


def utm_epsg(lon, lat):
    """Major TOM's UTM zone of a point: the regular 6 degree zones, the Norway (32V) and
    Svalbard (31X-37X) exceptions; EPSG 326zz north of the equator (on it too), 327zz south."""
    zone = math.floor((lon + 180.0) / 6.0) % 60 + 1
    if 56.0 <= lat < 64.0 and 3.0 <= lon < 12.0:
        zone = 32
    elif 72.0 <= lat < 84.0 and 0.0 <= lon < 42.0:
        zone = (31, 33, 35, 37)[sum(lon >= edge for edge in (9.0, 21.0, 33.0))]
    return (32700 if lat < 0 else 32600) + zone


def cell_named(name):
    """The :class:`Cell` called ``name`` (e.g. "282D_485L"); InputError if no cell has it."""
    match = _NAME.fullmatch(str(name).strip())
    if not match:
        raise InputError(f"cell {name!r}: not a Major TOM cell name (expected e.g. 282D_485L)")
    row = int(match[1]) * (1 if match[2] == "U" else -1)
    col = int(match[3]) * (1 if match[4] == "R" else -1)
    lowest, highest = _row_range()
    if (match[2] == "D" and row == 0) or not lowest <= row <= highest:
        raise InputError(f"cell {name!r}: no such row (rows are {-lowest}D..1D and 0U..{highest}U)")
    longitudes, zero = _row_longitudes(row)
    if (match[4] == "L" and col == 0) or not -zero <= col < len(longitudes) - zero:
        row_name = name.split("_")[0]
        raise InputError(
            f"cell {name!r}: no such column in row {row_name} (its columns are {zero}L..1L and 0R..{len(longitudes) - zero - 1}R)"
        )
    return Cell(row, col)


def parse_cell_names(text):
    """Cells of a comma-separated list of names, in order, each once."""
    names = [item.strip() for item in str(text).split(",") if item.strip()]
    if not names:
        raise InputError("no cell named")
    return list(dict.fromkeys(cell_named(name) for name in names))


def cell_at(lon, lat):
    """The :class:`Cell` containing the point (degrees, EPSG:4326)."""
    if not (math.isfinite(lon) and math.isfinite(lat) and -90.0 <= lat <= 90.0):
        raise InputError(f"point ({lon}, {lat}) is not a longitude, latitude")
    latitudes, equator = _row_latitudes()
    row = max(0, int(np.searchsorted(latitudes, lat, side="right")) - 1) - equator
    longitudes, zero = _row_longitudes(row)
    lon = (lon + 180.0) % 360.0 - 180.0
    index = int(np.searchsorted(longitudes, lon, side="right")) - 1
    if index < 0:  # west of the westmost column: the straddling last column
        index = len(longitudes) - 1
    return Cell(row, index - zero)


def cells_in_area(geometry, crs="EPSG:4326"):
    """Cells intersecting ``geometry`` (a shapely geometry in ``crs``), sorted south to north,
    west to east. Polygons reprojected to lon/lat are densified first so their edges bend."""
    crs = pyproj.CRS.from_user_input(crs.to_wkt() if isinstance(crs, CRS) else crs)
    if not crs.equals(pyproj.CRS.from_epsg(4326)):
        to_lonlat = pyproj.Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
        geometry = transform_geometry(to_lonlat.transform, _densified(geometry))
    if geometry.is_empty or not geometry.is_valid:
        geometry = geometry.buffer(0)
    # Longitudes past 180 (an area drawn across the antimeridian) wrap to the west side.
    parts = [geometry.intersection(box(-180.0, -90.0, 180.0, 90.0)),
             transform_geometry(lambda x, y: (x - 360.0, y), geometry.intersection(box(180.0, -90.0, 540.0, 90.0))),
             transform_geometry(lambda x, y: (x + 360.0, y), geometry.intersection(box(-540.0, -90.0, -180.0, 90.0)))]
    found = set()
    for part in parts:
        if not part.is_empty:
            found.update(_cells_in_lonlat(part))
    return sorted(found)


def _densified(geometry, points_per_side=50):
    """The polygon(s) with points added along every edge (about ``points_per_side`` per bounding
    box side), so that reprojecting bends the edges as the projection does."""
    left, bottom, right, top = geometry.bounds
    spacing = max(right - left, top - bottom, 1e-9) / points_per_side

    def ring(coords):
        line = LineString(coords)
        count = max(2, int(math.ceil(line.length / spacing)) + 1)
        return [line.interpolate(distance) for distance in np.linspace(0.0, line.length, count)]

    polygons = getattr(geometry, "geoms", [geometry])
    return MultiPolygon([
        Polygon(ring(polygon.exterior.coords), [ring(hole.coords) for hole in polygon.interiors])
        for polygon in polygons if isinstance(polygon, Polygon)
    ])


def _cells_in_lonlat(geometry):
    """Cells intersecting a geometry within [-180, 180] x [-90, 90]."""
    west, south, east, north = geometry.bounds
    latitudes, equator = _row_latitudes()
    first = max(0, int(np.searchsorted(latitudes, south, side="right")) - 1)
    last = max(0, int(np.searchsorted(latitudes, north, side="right")) - 1)
    shape = prep(geometry)
    cells = []
    for index in range(first, last + 1):
        row = index - equator
        longitudes, zero = _row_longitudes(row)
        start = max(int(np.searchsorted(longitudes, west, side="right")) - 1, 0)
        stop = int(np.searchsorted(longitudes, east, side="right"))
        candidates = list(range(start, stop))
        if west < longitudes[0]:
            candidates.append(len(longitudes) - 1)  # the straddling last column, seen from the west
        for position in sorted(set(candidates)):
            cell = Cell(row, position - zero)
            footprint = cell.footprint()
            if shape.intersects(footprint) or shape.intersects(_shifted(footprint, -360.0)):
                cells.append(cell)
                if len(cells) > MAX_CELLS:
                    raise InputError(f"the area holds more than {MAX_CELLS} Major TOM cells; choose a smaller area")
    return cells


def _shifted(geometry, dx):
    return transform_geometry(lambda x, y: (x + dx, y), geometry)


def cell_target_grid(cell, size_px=PRODUCT_PIXELS):
    """The :class:`plugin.geo.grid.TargetGrid` that ``generate`` uses for the cell's product grid
    (``--extent`` of its bounds in its UTM CRS, on its lattice): the product area is the AOI, padded
    (centred) to whole model tiles, e.g. 1072 px for the 1068 px product."""
    from .grid import Lattice, TargetGrid

    crs, transform, _, _ = cell.product_grid(size_px)
    return TargetGrid.from_extent(*cell.product_bounds(size_px), crs, lattices=[Lattice(crs, (transform.c, transform.f))])
