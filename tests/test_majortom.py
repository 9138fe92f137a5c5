"""The Major TOM grid against known cells (the bundled Core tiles) and its naming rules."""

import math

import numpy as np
import pytest
import rasterio
from shapely.geometry import Point, box

from plugin.engine.errors import InputError
from plugin.geo.majortom import (
    PRODUCT_PIXELS,
    ROW_COUNT,
    ROW_STEP_DEG,
    Cell,
    cell_at,
    cell_named,
    cells_in_area,
    parse_cell_names,
    utm_epsg,
)

# Bundled Major TOM Core S2 L2A patches: cell name, and the patch's top-left pixel in the cell's
# 1068 px product grid (patches of 224 px every 264 px, named <col>_<row>).
TILES = {"282D_485L_3_3.tif": ("282D_485L", 32722, (792, 792)), "38D_378R_2_3.tif": ("38D_378R", 32736, (528, 792))}


@pytest.mark.parametrize("tile", sorted(TILES))
def test_bundled_tiles_lie_on_their_cells_product_grid(shared_dir, tile):
    name, epsg, (col, row) = TILES[tile]
    with rasterio.open(shared_dir / "data" / "majortom_s2l2a" / tile) as ds:
        crs, transform, width = ds.crs, ds.transform, ds.width
        centre = ds.lnglat()
    cell = cell_named(name)
    assert cell.name == name and cell.epsg == epsg and crs.to_epsg() == epsg
    assert cell_at(*centre) == cell
    grid_crs, grid_transform, size, _ = cell.product_grid()
    assert grid_crs == crs and size == PRODUCT_PIXELS
    offset_col, offset_row = ~grid_transform * (transform.c, transform.f)
    assert offset_col == pytest.approx(col, abs=1e-6) and offset_row == pytest.approx(row, abs=1e-6)
    # the tile is inside the cell's footprint and its product grid covers the 10 km square + margin
    left, bottom, right, top = cell.product_bounds()
    assert right - left == top - bottom == 10680.0
    assert left <= transform.c and transform.c + width * 10 <= right


def test_the_first_cells_of_each_quadrant_meet_at_zero_zero():
    assert cell_at(0.0, 0.0).name == "0U_0R"
    assert cell_at(-1e-9, 1e-9).name == "0U_1L"
    assert cell_at(1e-9, -1e-9).name == "1D_0R"
    assert cell_at(-1e-9, -1e-9).name == "1D_1L"
    origin = cell_named("0U_0R")
    assert (origin.lat, origin.lon) == (0.0, 0.0)
    assert cell_named("1D_0R").lat == pytest.approx(-ROW_STEP_DEG)
    assert ROW_COUNT == 2004 and ROW_STEP_DEG == pytest.approx(180 / 2004)


def test_rows_are_10_km_and_columns_about_10_km_everywhere():
    # Columns per row: ceil(circumference / 10 km) of the row's bottom circle of latitude.
    for name in ("500U_0R", "500D_0R", "282D_0R", "38D_0R"):
        cell = cell_named(name)
        circumference = 2 * math.pi * 6378.137 * math.cos(math.radians(cell.lat))
        assert cell.width_deg == pytest.approx(360 / math.ceil(circumference / 10))
        assert cell.width_deg * circumference / 360 <= 10.0
    assert ROW_STEP_DEG * math.pi * 6378.137 / 180 == pytest.approx(9.9988, abs=1e-3)


@pytest.mark.parametrize("lon, lat", [(-48.1, -25.3), (34.05, -3.4), (2.35, 48.85), (-74.0, 40.7),
                                      (151.2, -33.9), (-0.001, 51.5), (0.001, 51.5), (-179.99, 10.0),
                                      (179.99, -10.0), (12.0, 89.95), (-60.0, -89.95), (0.0, -90.0)])
def test_point_to_cell_to_name_and_back(lon, lat):
    cell = cell_at(lon, lat)
    again = cell_named(cell.name)
    assert again == cell
    footprint = cell.footprint()
    assert footprint.buffer(1e-9).contains(Point(lon, lat)) or footprint.buffer(1e-9).contains(Point(lon + 360, lat))
    # the grid point is the bottom-left corner and belongs to its own cell
    assert cell_at(cell.lon, cell.lat) == cell
    row, col = cell.name.split("_")
    assert row[-1] == ("U" if lat >= 0 else "D")
    if abs(lon) < 179 and abs(lat) < 89:  # near the poles and 180 degrees a column may span both sides
        assert col[-1] == ("R" if lon >= 0 else "L")


def test_hemispheres_and_sides_of_the_prime_meridian_have_their_letters_and_utm_zones():
    assert cell_at(2.35, 48.85).name.endswith("R") and cell_at(2.35, 48.85).name.split("_")[0].endswith("U")
    assert cell_at(-74.0, 40.7).name.endswith("L")
    assert cell_at(151.2, -33.9).name.split("_")[0].endswith("D")
    assert cell_at(2.35, 48.85).epsg == 32631 and cell_at(-74.0, 40.7).epsg == 32618
    assert cell_at(151.2, -33.9).epsg == 32756 and cell_at(-48.1, -25.3).epsg == 32722
    # UTM zone of the bottom-left point: a cell starting just west of 0 is in zone 30
    west = cell_at(-0.01, 45.0)
    assert west.lon < 0 < west.lon + west.width_deg and west.epsg == 32630
    assert cell_named("0U_0R").epsg == 32631 and cell_named("1D_0R").epsg == 32731


def test_utm_zone_exceptions_of_norway_and_svalbard():
    assert utm_epsg(5.0, 60.0) == 32632  # Norway: 32V widened west
    assert utm_epsg(5.0, 55.9) == 32631
    assert [utm_epsg(lon, 78.0) for lon in (8.0, 15.0, 25.0, 40.0)] == [32631, 32633, 32635, 32637]
    assert utm_epsg(-174.34, -1.0) == 32701 and utm_epsg(175.7, -36.0) == 32760


def test_near_the_poles_rows_have_few_columns():
    top = cell_at(10.0, 89.99)
    assert top.name.startswith("1001U_")
    assert top.width_deg > 45  # a handful of columns around the pole
    bottom = cell_at(123.0, -90.0)
    assert bottom.name == "1002D_0R" and bottom.width_deg == 360.0
    with pytest.raises(InputError, match="no such column in row 1002D"):
        cell_named("1002D_1R")
    with pytest.raises(InputError, match="no such row"):
        cell_named("1002U_0R")


def test_the_last_column_of_an_odd_row_straddles_the_180th_meridian():
    rows = [row for row in range(100, 130) if round(360 / cell_named(f"{row}U_0R").width_deg) % 2]
    assert rows, "some row has an odd count of columns"
    row = rows[0]
    count = round(360 / cell_named(f"{row}U_0R").width_deg)
    lat = cell_named(f"{row}U_0R").lat + ROW_STEP_DEG / 2
    last = cell_named(f"{row}U_{count // 2}R")
    assert last.lon < 180 < last.lon + last.width_deg
    assert cell_at(-179.9999, lat) == last and cell_at(179.9999, lat) == last and cell_at(180.0, lat) == last
    westmost = cell_named(f"{row}U_{count // 2}L")
    assert westmost.lon > -180
    # an area across the antimeridian, given with longitudes past 180
    found = cells_in_area(box(179.99, lat - 0.001, 180.2, lat + 0.001))
    assert last in found and westmost in found


def test_even_rows_meet_at_the_antimeridian():
    row = next(row for row in range(100, 130) if round(360 / cell_named(f"{row}U_0R").width_deg) % 2 == 0)
    count = round(360 / cell_named(f"{row}U_0R").width_deg)
    lat = cell_named(f"{row}U_0R").lat + ROW_STEP_DEG / 2
    assert cell_at(-180.0, lat).name == f"{row}U_{count // 2}L"
    assert cell_at(179.9999, lat).name == f"{row}U_{count // 2 - 1}R"
    assert cell_named(f"{row}U_{count // 2}L").lon == -180.0


def test_cells_in_area_match_brute_force_over_any_crs():
    area = box(-0.3, -0.25, 0.28, 0.2)
    found = cells_in_area(area)
    expected = {cell_at(lon, lat) for lon in np.arange(-0.3, 0.2801, 0.005) for lat in np.arange(-0.25, 0.2001, 0.005)}
    assert set(found) == expected and found == sorted(found)
    # the same area in a projected CRS (Web Mercator) gives the same cells
    import pyproj
    from shapely.ops import transform

    to_mercator = pyproj.Transformer.from_crs(4326, 3857, always_xy=True).transform
    assert cells_in_area(transform(to_mercator, area), "EPSG:3857") == found


def test_a_cells_product_grid_is_its_only_cell_when_centred_small():
    cell = cell_named("282D_485L")
    assert cells_in_area(box(*cell.product_bounds(256)), "EPSG:32722") == [cell]
    crs, transform, width, height = cell.product_grid(256)
    full = cell.product_grid()[1]
    assert (width, height) == (256, 256)
    assert ~full * (transform.c, transform.f) == pytest.approx(((1068 - 256) / 2, (1068 - 256) / 2))


@pytest.mark.parametrize("name, message", [("282X_485L", "not a Major TOM cell name"), ("0D_0R", "no such row"),
                                           ("1U_0L", "no such column"), ("282D_99999L", "no such column")])
def test_unknown_cell_names_are_refused(name, message):
    with pytest.raises(InputError, match=message):
        cell_named(name)


def test_parse_cell_names_keeps_order_and_drops_repeats():
    assert [c.name for c in parse_cell_names("38D_378R, 282D_485L,38D_378R")] == ["38D_378R", "282D_485L"]
    assert isinstance(parse_cell_names("0U_0R")[0], Cell)
