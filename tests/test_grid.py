import numpy as np
import pyproj
import pytest
from _geo_helpers import S2_TILE, UTM33, write_raster
from affine import Affine
from rasterio.crs import CRS
from shapely.geometry import Point, Polygon, box

from plugin.engine.errors import InputError
from plugin.geo.grid import Lattice, TargetGrid, parse_extent, raster_lattice, utm_crs_for


def assert_model_ready(grid):
    assert grid.width % 8 == 0 and grid.height % 8 == 0
    assert grid.width >= 256 and grid.height >= 256
    assert grid.transform.a == 10.0 and grid.transform.e == -10.0
    assert grid.transform.b == 0.0 and grid.transform.d == 0.0


def margins(grid, inner):
    """Pixels between the grid edges and ``inner`` (left, bottom, right, top bounds)."""
    left, bottom, right, top = grid.bounds
    return ((inner[0] - left) / 10, (inner[1] - bottom) / 10, (right - inner[2]) / 10, (top - inner[3]) / 10)


@pytest.mark.parametrize(
    "lon,lat,epsg", [(9.19, 45.46, 32632), (-48.1, -25.3, 32722), (-179.9, 10.0, 32601), (179.9, -1.0, 32760)]
)
def test_utm_crs_for(lon, lat, epsg):
    assert utm_crs_for(lon, lat) == CRS.from_epsg(epsg)


def test_from_extent_in_degrees_uses_utm_of_centre_and_covers_extent():
    grid = TargetGrid.from_extent(12.40, 41.85, 12.45, 41.88, "EPSG:4326")
    assert grid.crs == CRS.from_epsg(32633)
    assert_model_ready(grid)
    assert grid.transform.c % 10 == 0 and grid.transform.f % 10 == 0
    to_utm = pyproj.Transformer.from_crs("EPSG:4326", "EPSG:32633", always_xy=True)
    for lon, lat in [(12.40, 41.85), (12.45, 41.85), (12.40, 41.88), (12.45, 41.88), (12.425, 41.85)]:
        x, y = to_utm.transform(lon, lat)
        left, bottom, right, top = grid.bounds
        assert left <= x <= right and bottom <= y <= top
    # the extent's image in UTM is the AOI; padding is centred
    m_left, m_bottom, m_right, m_top = margins(grid, grid.aoi.bounds)
    assert abs(m_left - m_right) <= 1.0 and abs(m_top - m_bottom) <= 1.0
    # the tightest multiple of 8 around the AOI
    assert grid.width - 8 < (grid.aoi.bounds[2] - grid.aoi.bounds[0]) / 10


def test_from_extent_keeps_a_metric_crs_and_pads_small_areas():
    grid = TargetGrid.from_extent(400003, 5000007, 401003, 5000507, 32633)
    assert grid.crs == UTM33
    assert (grid.width, grid.height) == (256, 256)
    assert grid.transform.c % 10 == 0 and grid.transform.f % 10 == 0
    m_left, m_bottom, m_right, m_top = margins(grid, (400000, 5000000, 401010, 5000510))
    assert min(m_left, m_bottom, m_right, m_top) >= 0
    assert abs(m_left - m_right) <= 1 and abs(m_top - m_bottom) <= 1


def test_from_extent_leaves_a_distorting_metric_crs_for_utm():
    # Web Mercator is metric, but at 60 N its metres are half the ground's
    x, y = pyproj.Transformer.from_crs("EPSG:4326", "EPSG:3857", always_xy=True).transform(10.0, 60.0)
    grid = TargetGrid.from_extent(x, y, x + 4000, y + 4000, "EPSG:3857")
    assert grid.crs == CRS.from_epsg(32632)
    assert 190 <= grid.aoi.bounds[2] / 10 - grid.aoi.bounds[0] / 10 <= 210  # 4 km of map ~ 2 km of ground


def test_parse_extent():
    grid = parse_extent("12.40,41.85,12.45,41.88,4326")
    assert grid.crs == CRS.from_epsg(32633)
    assert parse_extent("400000,5000000,403000,5003000", default_crs=UTM33).width == 304
    with pytest.raises(InputError, match="EPSG"):
        parse_extent("400000,5000000,403000,5003000")
    with pytest.raises(InputError, match="extent"):
        parse_extent("1,2,3")
    with pytest.raises(InputError, match="extent"):
        parse_extent("3,2,1,4,4326")
    with pytest.raises(InputError, match="extent"):
        parse_extent("400000,5000000,403000,5003000,4326")  # metres given as degrees


def test_polygon_grid_masks_outside_the_polygon_only():
    triangle = Polygon([(400000, 5000000), (403000, 5000000), (400000, 5003000)])
    grid = TargetGrid.from_polygon(triangle, "EPSG:32633")
    assert_model_ready(grid)
    mask = grid.aoi_mask(0, 0, grid.height, grid.width)
    assert abs(mask.sum() - triangle.area / 100) < 0.01 * triangle.area / 100
    # pixel centres decide: the pixel just inside the right angle is in, the far corner is out
    col, row = ~grid.transform * (400005, 5000005)
    assert mask[int(row), int(col)]
    col, row = ~grid.transform * (402995, 5002995)
    assert not mask[int(row), int(col)]
    # windows rasterize only themselves and agree with the whole
    tiles = [[grid.aoi_mask(r, c, 100, 100) for c in range(0, 300, 100)] for r in range(0, 300, 100)]
    assert np.array_equal(np.block(tiles), mask[:300, :300])


def test_polygon_from_geojson_mapping_in_degrees():
    ring = [(12.40, 41.85), (12.45, 41.85), (12.45, 41.88), (12.40, 41.88), (12.40, 41.85)]
    grid = TargetGrid.from_polygon({"type": "Polygon", "coordinates": [ring]}, "EPSG:4326")
    assert grid.crs == CRS.from_epsg(32633)
    assert grid.aoi.area == pytest.approx(TargetGrid.from_extent(12.40, 41.85, 12.45, 41.88, 4326).aoi.area, rel=1e-3)


@pytest.mark.parametrize("geometry", [Polygon(), box(0, 0, 0, 10), Polygon([(0, 0), (1, 1), (2, 2)])])
def test_empty_polygon_is_an_input_error(geometry):
    with pytest.raises(InputError, match="polygon"):
        TargetGrid.from_polygon(geometry, "EPSG:32633")


def test_from_raster_keeps_the_lattice_of_a_10m_raster():
    grid = TargetGrid.from_raster(S2_TILE)
    assert grid.crs == CRS.from_epsg(32722)
    assert (grid.width, grid.height) == (256, 256)
    # the real tile's origin is not on the 10 m lattice: the grid keeps the tile's pixels
    assert grid.transform == Affine(10.0, 0.0, 790236.040382003877312 - 160, 0.0, -10.0, 7198039.252334284596145 + 160)
    mask = grid.aoi_mask(0, 0, 256, 256)
    assert mask.sum() == 224 * 224 and mask[16:240, 16:240].all()


def test_from_raster_with_other_resolution_snaps_to_10m(tmp_path):
    path = write_raster(
        tmp_path / "dem30.tif", np.zeros((40, 50), np.float32), transform=Affine(30.0, 0, 400003.0, 0, -30.0, 5000001.0)
    )
    grid = TargetGrid.from_raster(path)
    assert grid.crs == UTM33 and grid.transform.c % 10 == 0 and grid.transform.f % 10 == 0
    assert (grid.width, grid.height) == (256, 256)
    assert grid.aoi.bounds == pytest.approx((400003.0, 4998801.0, 401503.0, 5000001.0))


def test_from_raster_in_degrees_covers_its_footprint_in_utm(tmp_path):
    path = write_raster(
        tmp_path / "dem4326.tif", np.zeros((30, 40), np.float32), crs="EPSG:4326",
        transform=Affine(0.001, 0, 12.4, 0, -0.001, 41.9),
    )
    grid = TargetGrid.from_raster(path)
    assert grid.crs == CRS.from_epsg(32633)
    assert_model_ready(grid)
    assert grid.transform.c % 10 == 0 and grid.transform.f % 10 == 0
    # every corner and edge midpoint of the footprint lies inside the AOI
    to_utm = pyproj.Transformer.from_crs("EPSG:4326", "EPSG:32633", always_xy=True)
    for lon, lat in [(12.4, 41.9), (12.44, 41.9), (12.44, 41.87), (12.4, 41.87), (12.42, 41.87)]:
        x, y = to_utm.transform(lon, lat)
        assert grid.aoi.buffer(1e-6).contains(Point(x, y))
    assert grid.aoi.area == pytest.approx(TargetGrid.from_extent(12.4, 41.87, 12.44, 41.9, 4326).aoi.area, rel=1e-9)


def test_extent_in_the_crs_of_a_10m_raster_snaps_to_its_lattice():
    lattice = raster_lattice(S2_TILE)
    x0, y0 = lattice.origin
    assert x0 % 10 != 0  # the real tile is off the 10 m lattice
    grid = TargetGrid.from_extent(x0 + 503, y0 - 1997, x0 + 1497, y0 - 1003, lattice.crs, lattices=[lattice])
    col, row = ~Affine(10.0, 0.0, x0, 0.0, -10.0, y0) * (grid.transform.c, grid.transform.f)
    assert col == pytest.approx(round(col), abs=1e-6) and row == pytest.approx(round(row), abs=1e-6)
    # a lattice in another CRS is not used
    other = TargetGrid.from_extent(400003, 5000007, 401003, 5000507, UTM33, lattices=[lattice])
    assert other.transform.c % 10 == 0 and other.transform.f % 10 == 0


def test_polygon_snaps_to_the_first_lattice_in_its_crs():
    triangle = Polygon([(400000, 5000000), (403000, 5000000), (400000, 5003000)])
    lattices = [Lattice(CRS.from_epsg(32632), (1.5, 2.5)), Lattice(UTM33, (3.25, 7.75)), Lattice(UTM33, (4.0, 4.0))]
    grid = TargetGrid.from_polygon(triangle, UTM33, lattices=lattices)
    assert grid.transform.c % 10 == pytest.approx(3.25) and grid.transform.f % 10 == pytest.approx(7.75)


@pytest.mark.parametrize("make", [
    lambda: TargetGrid.from_extent(400006, 5000000, 400009, 5003000, UTM33),  # 3 m wide, between centres
    lambda: TargetGrid.from_polygon(box(400001, 5000001, 400004, 5000004), UTM33),
])
def test_area_without_a_pixel_centre_is_an_input_error(make):
    with pytest.raises(InputError, match="no 10 m pixel centre"):
        make()


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
def test_from_raster_without_crs_is_an_input_error(tmp_path):
    path = write_raster(tmp_path / "plain.tif", np.zeros((10, 10), np.uint8), crs=None, transform=Affine.identity())
    with pytest.raises(InputError, match="plain.tif.*CRS"):
        TargetGrid.from_raster(path)


def test_blocks_tile_the_grid_once():
    grid = TargetGrid.from_extent(400000, 5000000, 413000, 5011000, 32633)
    seen = np.zeros((grid.height, grid.width), int)
    for row, col, height, width in grid.blocks(512):
        seen[row:row + height, col:col + width] += 1
    assert (seen == 1).all()
