"""COP-GEN on the map: the model lattice, conditions in physical units, physical COG outputs.

Real data: a 12-band Sentinel-2 L2A Major TOM tile (int16 DN, 10 m, 224 x 224, no band
descriptions). Other rasters are built in tmp_path.
"""

import math

import numpy as np
import pyproj
import pytest
import rasterio
from affine import Affine
from osgeo import gdal
from rasterio.crs import CRS
from shapely.geometry import box

from _geo_helpers import S2_TILE, UTM33, UTM33_ORIGIN, write_raster
from plugin.engine.errors import InputError
from plugin.engine.families.copgen.classes import CLOUD, LULC
from plugin.engine.families.copgen.registry import SENSORS
from plugin.geo.lattice import UNIT_M, ModelLattice
from plugin.geo.physical_conditions import SensorReader, read_sensor
from plugin.geo.physical_outputs import output_name, write_physical, write_sensor_vrt

pytestmark = pytest.mark.timeout(120)

MAJOR_TOM = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B11", "B12")


@pytest.fixture(scope="module")
def tile():
    with rasterio.open(S2_TILE) as ds:
        return ds.read(), ds.transform, ds.crs


@pytest.fixture(scope="module")
def tile_lattice():
    return ModelLattice.from_raster(S2_TILE)


def _block_mean(band, factor):
    h, w = (s // factor * factor for s in band.shape)
    return band[:h, :w].astype(np.float64).reshape(h // factor, factor, w // factor, factor).mean(axis=(1, 3))


# --- the lattice ---------------------------------------------------------------------------

def test_lattice_of_a_major_tom_tile_covers_it_in_whole_units_at_every_resolution(tile, tile_lattice):
    _, transform, crs = tile
    assert tile_lattice.crs == crs
    assert tile_lattice.units == (5, 5)  # 2240 m -> 5 units of 480 m
    assert tile_lattice.origin == (transform.c, transform.f)  # anchored on the tile's own pixels
    footprints = set()
    for res, side in ((10, 240), (20, 120), (30, 80), (60, 40)):
        grid = tile_lattice.grid(res)
        assert (grid.width, grid.height, grid.pixel_size) == (side, side, res)
        footprints.add(tuple(round(v, 6) for v in grid.bounds))
    assert len(footprints) == 1
    assert tile_lattice.aoi_mask(10).sum() == 224 * 224  # the tile itself, not the padding
    assert tile_lattice.aoi_mask(10)[:224, :224].all()


def test_small_area_is_one_window_centred_on_it_from_its_own_corner():
    lattice = ModelLattice.from_extent(500100, 4000100, 500900, 4000700, 32631)
    assert lattice.units == (4, 4)  # padded to one window (1920 m)
    # 800 x 600 m: 2 x 2 units from the extent's corner, one unit of padding on each side
    assert lattice.origin == (500100 - UNIT_M, 4000700 + UNIT_M)
    left, bottom, right, top = lattice.bounds
    assert left <= 500100 and right >= 500900 and bottom <= 4000100 and top >= 4000700
    on_lattice = ModelLattice.from_extent(499680, 3999840, 504480, 4001760, 32631)
    assert on_lattice.units == (4, 10) and on_lattice.origin == (499680, 4001760)
    # off the 480 m multiples: the lattice starts at the area's corner, no unit more
    shifted = ModelLattice.from_extent(499780, 3999840, 504580, 4001760, 32631)
    assert shifted.units == (4, 10) and shifted.origin == (499780, 4001760)
    # a corner between 10 m pixels: on the pixel that holds it
    between = ModelLattice.from_extent(499785, 3999840, 504580, 4001755, 32631)
    assert between.origin == (499780, 4001760) and between.units == (4, 10)


def test_polygon_and_extent_text_in_degrees_go_to_their_utm_zone():
    triangle = {"type": "Polygon", "coordinates": [[(3.0, 36.0), (3.05, 36.0), (3.0, 36.04), (3.0, 36.0)]]}
    lattice = ModelLattice.from_polygon(triangle, 4326)
    assert lattice.crs == CRS.from_epsg(32631)
    left, bottom, right, top = lattice.aoi.bounds
    x0, y0 = lattice.origin  # the triangle's corner on the 10 m pixels
    assert x0 % 10 == 0 and y0 % 10 == 0 and 0 <= left - x0 < 10 and 0 <= y0 - top < 10
    for res in (10, 60):
        inside = lattice.aoi_mask(res)
        col, row = ~lattice.grid(res).transform * (left + res, bottom + res)  # the right angle
        assert inside[int(row), int(col)] and not inside[0, 0] and not inside[-1, -1]
        assert 0.3 < inside.sum() / inside.size < 0.45  # the triangle: about half its box
    from_text = ModelLattice.from_extent_text("3.0,36.0,3.05,36.04,4326")
    assert from_text.crs == lattice.crs and from_text.units == lattice.units
    with pytest.raises(InputError) as error:
        ModelLattice.from_extent_text("3.0,36.0,3.05")
    assert error.value.field == "extent"


def test_window_centre_is_the_windows_own_position_in_wgs84():
    lattice = ModelLattice.from_extent(500000, 4000000, 505000, 4002000, 32631)
    x0, y0 = lattice.origin
    lat, lon = lattice.window_centre_lonlat(1, 3)
    x, y = pyproj.Transformer.from_crs("EPSG:4326", "EPSG:32631", always_xy=True).transform(lon, lat)
    assert x == pytest.approx(x0 + 5 * UNIT_M, abs=1e-3)  # columns 3..6: centre at 5 units
    assert y == pytest.approx(y0 - 3 * UNIT_M, abs=1e-3)
    assert 36.0 < lat < 36.2 and 2.9 < lon < 3.1
    with pytest.raises(ValueError):
        lattice.window_centre_lonlat(2, 0)  # rows 2..5 of 5: outside


# --- conditions ------------------------------------------------------------------------------

def test_major_tom_tile_fills_the_three_l2a_groups_at_their_resolutions(tile, tile_lattice):
    data, _, _ = tile
    layers = read_sensor(S2_TILE, "s2l2a", tile_lattice)
    assert set(layers) == set(SENSORS["s2l2a"])
    assert len(layers.notes) == 1 and "B01, B02, B03, B04" in layers.notes[0]
    ten, valid10 = layers["S2L2A_B02_B03_B04_B08"]
    assert ten.shape == (4, 240, 240) and ten.dtype == np.float32
    # the 10 m group is B04, B03, B02, B08: file bands 4, 3, 2, 8, copied unresampled
    np.testing.assert_array_equal(ten[:, :224, :224], data[[3, 2, 1, 7]].astype(np.float32))
    assert valid10[:224, :224].all() and not valid10[224:].any()
    assert np.isnan(ten[:, 230, 230]).all()
    twenty, _ = layers["S2L2A_B05_B06_B07_B11_B12_B8A"]
    assert twenty.shape == (6, 120, 120)
    # B05, B06, B07, B8A, B11, B12 = file bands 5, 6, 7, 9, 11, 12, averaged 2 x 2
    for channel, band in enumerate((5, 6, 7, 9, 11, 12)):
        np.testing.assert_allclose(twenty[channel, :112, :112], _block_mean(data[band - 1], 2), rtol=1e-5)
    sixty, valid60 = layers["S2L2A_B01_B09"]
    assert sixty.shape == (2, 40, 40) and valid60[:37, :37].all()
    for channel, band in enumerate((1, 10)):
        np.testing.assert_allclose(sixty[channel, :37, :37], _block_mean(data[band - 1], 6), rtol=1e-5)


def test_windows_read_the_same_pixels_as_the_whole_area(tile_lattice):
    whole = read_sensor(S2_TILE, "s2l2a", tile_lattice)
    with SensorReader(S2_TILE, "s2l2a", tile_lattice) as reader:
        for key, window in (("S2L2A_B02_B03_B04_B08", (37, 101, 96, 80)),
                            ("S2L2A_B05_B06_B07_B11_B12_B8A", (5, 60, 48, 60)),
                            ("S2L2A_B01_B09", (30, 30, 10, 10))):
            row, col, height, width = window
            values, valid = reader.read(key, window)
            np.testing.assert_array_equal(values, whole[key][0][:, row:row + height, col:col + width])
            np.testing.assert_array_equal(valid, whole[key][1][row:row + height, col:col + width])


def test_band_names_given_or_described_pick_the_bands(tmp_path, tile, tile_lattice):
    data, transform, crs = tile
    expected = read_sensor(S2_TILE, "s2l2a", tile_lattice)
    order = list(reversed(range(12)))  # the file's bands in reverse: B12 first
    shuffled = write_raster(tmp_path / "reversed.tif", data[order], crs=crs, transform=transform)
    given = read_sensor(shuffled, "s2l2a", tile_lattice, bands=",".join(MAJOR_TOM[i] for i in order))
    described = write_raster(tmp_path / "described.tif", data[order], crs=crs, transform=transform,
                             descriptions=[f"B{MAJOR_TOM[i][1:].lstrip('0')} (band)" for i in order])
    by_description = read_sensor(described, "s2l2a", tile_lattice)
    assert given.notes == [] and by_description.notes == []
    for key, (values, valid) in expected.items():
        for other in (given, by_description):
            np.testing.assert_array_equal(other[key][0], values)
            np.testing.assert_array_equal(other[key][1], valid)


def test_one_file_per_band_at_native_resolutions(tmp_path, tile, tile_lattice):
    """A SAFE's layout: one JP2-like file per band, named after it, at 10, 20 or 60 m."""
    data, transform, crs = tile
    files, native = [], {}
    for number, band in enumerate(MAJOR_TOM, 1):
        factor = 1 if band in ("B02", "B03", "B04", "B08") else 6 if band in ("B01", "B09") else 2
        native[band] = _block_mean(data[number - 1], factor).astype(np.float32)
        files.append(write_raster(tmp_path / f"T22JGR_20210715T131249_{band}_{10 * factor}m.tif",
                                  native[band], crs=crs, transform=transform * Affine.scale(factor)))
    layers = read_sensor(files[::-1], "s2l2a", tile_lattice)
    assert layers.notes == []
    ten, _ = layers["S2L2A_B02_B03_B04_B08"]
    np.testing.assert_array_equal(ten[:, :224, :224], data[[3, 2, 1, 7]].astype(np.float32))
    twenty, _ = layers["S2L2A_B05_B06_B07_B11_B12_B8A"]
    np.testing.assert_array_equal(twenty[3, :112, :112], native["B8A"])  # copied, not resampled
    sixty, _ = layers["S2L2A_B01_B09"]
    np.testing.assert_array_equal(sixty[1, :37, :37], native["B09"])
    with pytest.raises(InputError, match=r"missing B8A \(going by the band descriptions\)"):
        read_sensor([f for f in files if "B8A" not in f.name], "s2l2a", tile_lattice)


def test_band_names_from_gdal_metadata_and_nodata(tmp_path, tile, tile_lattice):
    data, transform, crs = tile
    data = data.copy()
    data[:, 5, 7] = 0  # nodata 0: invalid
    path = write_raster(tmp_path / "meta.tif", data, crs=crs, transform=transform)
    with rasterio.open(path, "r+") as ds:
        for number, band in enumerate(MAJOR_TOM, 1):
            ds.update_tags(number, BANDNAME=band.replace("B0", "B"))
    layers = read_sensor(path, "s2l2a", tile_lattice)
    assert layers.notes == []  # the names came from the metadata
    ten, valid = layers["S2L2A_B02_B03_B04_B08"]
    assert not valid[5, 7] and np.isnan(ten[:, 5, 7]).all() and valid[5, 8]
    np.testing.assert_array_equal(ten[:, 5, 8], data[[3, 2, 1, 7], 5, 8])


def test_reflectance_instead_of_dn_is_refused(tmp_path, tile, tile_lattice):
    data, transform, crs = tile
    reflectance = write_raster(tmp_path / "reflectance.tif", data.astype(np.float32) / 10000,
                               crs=crs, transform=transform)
    with pytest.raises(InputError, match="reflectance.tif: values look like reflectance 0..1"):
        read_sensor(reflectance, "s2l2a", tile_lattice)


def test_unknown_sensor_and_cancel(tile_lattice):
    from plugin.engine.errors import Cancelled

    with pytest.raises(InputError, match="unknown sensor 's2'") as error:
        read_sensor(S2_TILE, "s2", tile_lattice)
    assert error.value.field == "conditions"
    calls = []
    with pytest.raises(Cancelled):
        read_sensor(S2_TILE, "s2l2a", tile_lattice, cancel=lambda: calls.append(1) or len(calls) > 1)
    assert len(calls) == 2  # stopped before the second group


def test_three_band_file_named_as_s2l2a_names_the_missing_bands(tmp_path, tile, tile_lattice):
    data, transform, crs = tile
    rgb = write_raster(tmp_path / "rgb.tif", data[[3, 2, 1]], crs=crs, transform=transform,
                       descriptions=["B04", "B03", "B02"])
    with pytest.raises(InputError) as error:
        read_sensor(rgb, "s2l2a", tile_lattice)
    assert error.value.field == "conditions.s2l2a.bands"
    assert "missing B01, B05, B06, B07, B08, B8A, B09, B11, B12" in str(error.value)
    assert str(rgb) in str(error.value) and "\n" not in str(error.value)
    bare = write_raster(tmp_path / "bare.tif", data[[3, 2, 1]], crs=crs, transform=transform)
    with pytest.raises(InputError, match="3 band.* without names; s2l2a needs 12"):
        read_sensor(bare, "s2l2a", tile_lattice)
    with pytest.raises(InputError, match="missing B10"):  # L1C needs B10 too
        read_sensor(S2_TILE, "s2l1c", tile_lattice, bands=MAJOR_TOM)


def test_condition_in_another_crs_is_warped_onto_the_lattice(tmp_path, tile, tile_lattice):
    data, _, _ = tile
    mercator = tmp_path / "tile_3857.tif"
    gdal.Warp(str(mercator), str(S2_TILE), dstSRS="EPSG:3857", xRes=9.0, yRes=9.0, resampleAlg="near")
    ten, valid = read_sensor(mercator, "s2l2a", tile_lattice, bands=MAJOR_TOM)["S2L2A_B02_B03_B04_B08"]
    inner = (slice(None), slice(20, 200), slice(20, 200))
    assert valid[inner[1:]].all()
    error = np.abs(ten[inner] - data[[3, 2, 1, 7]][inner])
    scale = np.abs(np.diff(data[[3, 2, 1, 7]].astype(np.float64), axis=2)).mean()  # neighbour step
    # in place: 9 DN here; a shift of one pixel would give 31, two 50 (neighbour steps: 98)
    assert np.median(error) < scale / 4


def test_condition_off_the_area_is_refused_naming_the_file(tmp_path, tile_lattice):
    far = write_raster(tmp_path / "far.tif", np.ones((12, 64, 64), np.int16))  # UTM 33N, Europe
    with pytest.raises(InputError, match="far.tif: the raster does not overlap the area") as error:
        read_sensor(far, "s2l2a", tile_lattice)
    assert error.value.field == "conditions.s2l2a"


def _lulc_lattice():
    """One window (4 x 4 units) on the pixels of the helpers' rasters (400000, 5000000)."""
    return ModelLattice.around(box(400000, 4998080, 401920, 5000000), UTM33, anchor=(400000.0, 5000000.0))


def test_land_cover_is_resampled_by_nearest_only(tmp_path):
    lattice = _lulc_lattice()
    rng = np.random.default_rng(3)
    codes = rng.choice([1, 2, 5, 7, 11], size=(300, 300)).astype(np.uint8)
    # 7 m pixels off the lattice: every output pixel takes one source pixel's code
    shifted = Affine(7.0, 0.0, 399993.0, 0.0, -7.0, 5000011.0)
    path = write_raster(tmp_path / "lulc.tif", codes, transform=shifted)
    layers = read_sensor(path, "lulc", lattice)
    values, valid = layers["LULC_LULC"]
    assert values.shape == (1, 192, 192) and valid.all()
    assert set(np.unique(values[0][valid])) <= {1, 2, 5, 7, 11}  # no blend of two codes
    assert len(np.unique(values[0][valid])) == 5
    # and in degrees: warped from EPSG:4326
    lon_lat = write_raster(tmp_path / "lulc_4326.tif", codes, crs=CRS.from_epsg(4326),
                           transform=Affine(0.0001, 0, 13.72, 0, -0.0001, 45.13))
    geographic = ModelLattice.from_raster(lon_lat)
    values, valid = read_sensor(lon_lat, "lulc", geographic)["LULC_LULC"]
    assert valid.any() and set(np.unique(values[0][valid])) <= {1, 2, 5, 7, 11}


def test_unknown_land_cover_codes_are_named_with_where(tmp_path):
    lattice = _lulc_lattice()
    codes = np.full((192, 192), 2, np.uint8)
    codes[10, 20] = 3
    codes[100:, 100:] = 12
    path = write_raster(tmp_path / "lulc.tif", codes, transform=UTM33_ORIGIN)
    with pytest.raises(InputError) as error:
        read_sensor(path, "lulc", lattice)
    message = str(error.value)
    assert "code(s) 3, 12 the model does not know" in message
    assert "row 10, column 20" in message and "lulc.tif" in message
    assert error.value.field == "conditions.lulc"
    with SensorReader(path, "lulc", lattice) as reader:  # a window: where in the whole grid
        window = (96, 96, 64, 64)
        with pytest.raises(InputError, match="code.s. 12 .*row 100, column 100"):
            reader.check("LULC_LULC", *reader.read("LULC_LULC", window), window=window)


def test_s1_in_db_dem_and_cloud(tmp_path):
    lattice = _lulc_lattice()
    db = np.stack([np.full((192, 192), -10.0), np.full((192, 192), -20.0)]).astype(np.float32)
    s1 = write_raster(tmp_path / "s1.tif", db, descriptions=["Gamma0_VH", "Gamma0_VV"])
    values, _ = read_sensor(s1, "s1rtc", lattice, s1_in_db=True)["S1RTC_vh_vv"]
    np.testing.assert_allclose(values[0], 0.01, rtol=1e-5)  # VV first, from its description
    np.testing.assert_allclose(values[1], 0.1, rtol=1e-5)
    # 5 m dB pixels alternating -10 / -20 dB: averaged as power (0.055), not as dB (-15 dB)
    stripes = np.where(np.arange(384) % 2 == 0, -10.0, -20.0).astype(np.float32) * np.ones((384, 1), np.float32)
    fine = write_raster(tmp_path / "s1_5m.tif", np.stack([stripes, stripes]),
                        transform=Affine(5.0, 0, 400000.0, 0, -5.0, 5000000.0))
    values, _ = read_sensor(fine, "s1rtc", lattice, bands="VV,VH", s1_in_db=True)["S1RTC_vh_vv"]
    np.testing.assert_allclose(values, 0.055, rtol=1e-5)
    heights = np.arange(192 * 192, dtype=np.float32).reshape(192, 192)
    dem, valid = read_sensor(write_raster(tmp_path / "dem.tif", heights), "dem", lattice)["DEM_DEM"]
    assert dem.shape == (1, 64, 64) and valid.all()
    np.testing.assert_allclose(dem[0], _block_mean(heights, 3), rtol=1e-6)  # averaged to 30 m
    clouds = np.random.default_rng(1).integers(0, 4, (192, 192)).astype(np.uint8)
    cloud, _ = read_sensor(write_raster(tmp_path / "cloud.tif", clouds), "cloud", lattice)["S2L1C_cloud_mask"]
    np.testing.assert_array_equal(cloud[0], clouds)


# --- outputs ---------------------------------------------------------------------------------

def _read_pam(path):
    """Category names, colour table and band facts with GDAL's PAM on (conftest turns it off)."""
    gdal.SetThreadLocalConfigOption("GDAL_PAM_ENABLED", "YES")
    try:
        dataset = gdal.Open(str(path))
        band = dataset.GetRasterBand(1)
        band.GetMetadata()  # GTiff loads the .aux.xml lazily
        table = band.GetColorTable()
        colours = {i: table.GetColorEntry(i) for i in range(table.GetCount())} if table else None
        return band.GetCategoryNames(), colours
    finally:
        gdal.SetThreadLocalConfigOption("GDAL_PAM_ENABLED", None)


def test_outputs_in_physical_units_on_one_footprint(tmp_path):
    # the area is smaller than its lattice (padded to one window): outside it, nodata
    lattice = ModelLattice.around(box(400000, 4998560, 400960, 5000000), UTM33)
    assert lattice.units == (4, 4)
    rng = np.random.default_rng(0)
    s2 = rng.uniform(-50, 70000, (4, 192, 192)).astype(np.float32)
    corner = tuple(np.argwhere(lattice.aoi_mask(10))[0])  # the area's first pixel
    s2[(0,) + corner], s2[(1,) + corner] = 0.0, 0.4  # valid DN must never read as nodata 0
    outputs = {
        "S2L2A_B02_B03_B04_B08": s2,
        "S2L2A_B01_B09": rng.uniform(1, 5000, (2, 32, 32)),
        "S1RTC_vh_vv": rng.uniform(0.001, 0.5, (2, 192, 192)).astype(np.float32),
        "DEM_DEM": rng.uniform(-10, 3000, (1, 64, 64)).astype(np.float32),
        "LULC_LULC": rng.choice(LULC.codes[1:], (1, 192, 192)).astype(np.uint8),
        "S2L1C_cloud_mask": rng.choice(CLOUD.codes, (192, 192)).astype(np.uint8),
    }
    paths = {key: write_physical(tmp_path / output_name("run", key, 0), lattice, key, values)
             for key, values in outputs.items()}
    assert paths["S1RTC_vh_vv"].name == "run_S1RTC_vh_vv_s0.tif"
    sidecars = {f"run_{key}_s0.tif.aux.xml" for key in ("LULC_LULC", "S2L1C_cloud_mask")}
    assert {p.name for p in tmp_path.iterdir()} == {p.name for p in paths.values()} | sidecars
    expected = {  # dtype, nodata, resolution, descriptions, unit
        "S2L2A_B02_B03_B04_B08": ("uint16", 0, 10, ("B04", "B03", "B02", "B08"), "reflectance x 10000"),
        "S2L2A_B01_B09": ("uint16", 0, 60, ("B01", "B09"), "reflectance x 10000"),
        "S1RTC_vh_vv": ("float32", "nan", 10, ("VV", "VH"), "linear gamma0"),
        "DEM_DEM": ("float32", -9999, 30, ("DEM",), "metre"),
        "LULC_LULC": ("uint8", 0, 10, ("LULC",), "class"),
        "S2L1C_cloud_mask": ("uint8", 255, 10, ("cloud_mask",), "class"),
    }
    for key, (dtype, nodata, res, descriptions, unit) in expected.items():
        with rasterio.open(paths[key]) as ds:
            assert ds.dtypes[0] == dtype and ds.descriptions == descriptions, key
            assert (math.isnan(ds.nodata) if nodata == "nan" else ds.nodata == nodata), key
            assert ds.crs == UTM33 and ds.transform == lattice.grid(res).transform, key
            assert ds.bounds == pytest.approx(lattice.bounds), key  # one footprint
            assert set(ds.units) == {unit}, key
            assert ds.tags()["modality"] == key and ds.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
            data = ds.read()
        inside = lattice.aoi_mask(res)
        assert not inside.all() and inside.any()
        outside = data[:, ~inside]
        assert (np.isnan(outside).all() if nodata == "nan" else (outside == nodata).all()), key
        if key == "S2L2A_B02_B03_B04_B08":
            assert data[:, inside].min() == 1 and data[:, inside].max() == 65535
            assert data[(0,) + corner] == 1 and data[(1,) + corner] == 1  # clipped, not nodata
            np.testing.assert_array_equal(data[2][inside], np.clip(np.rint(s2[2]), 1, 65535)[inside])
            with rasterio.open(paths[key]) as ds:
                assert ds.scales == (1e-4,) * 4 and ds.offsets == (0.0,) * 4
        if key in ("S1RTC_vh_vv", "DEM_DEM"):
            np.testing.assert_array_equal(data[:, inside], outputs[key][:, inside])
        if key == "LULC_LULC":
            np.testing.assert_array_equal(data[0][inside], outputs[key][0][inside])
    names, colours = _read_pam(paths["LULC_LULC"])
    assert len(names) == len(colours) == 12  # codes 0..11, not a TIFF's 256 palette entries
    assert names[1] == "Water" and names[11] == "Rangeland" and names[3] == ""
    assert colours[1] == (0x41, 0x9B, 0xDF, 255) and colours[7] == (0xC4, 0x28, 0x1B, 255)
    assert colours[3][3] == colours[6][3] == 0  # codes the model never writes: transparent
    names, colours = _read_pam(paths["S2L1C_cloud_mask"])
    assert names == ["Clear", "Thick", "Thin", "Shadow"] and len(colours) == 4


def test_land_cover_output_loads_in_qgis_as_a_categorical_layer(tmp_path):
    """Real QGIS (3.22) picks a paletted renderer with the class names as labels."""
    from qgis_support import qgis_application

    qgis_application()
    from qgis.core import QgsPalettedRasterRenderer, QgsRasterLayer

    lattice = _lulc_lattice()
    codes = np.random.default_rng(2).choice(LULC.codes[1:], (1, 192, 192)).astype(np.uint8)
    path = write_physical(tmp_path / "run_LULC_LULC_s0.tif", lattice, "LULC_LULC", codes)
    gdal.SetThreadLocalConfigOption("GDAL_PAM_ENABLED", "YES")  # QGIS users have it on
    try:
        layer = QgsRasterLayer(str(path), "land cover")
        assert layer.isValid()
        renderer = layer.renderer()
        classes = {int(item.value): item for item in renderer.classes()}
    finally:
        gdal.SetThreadLocalConfigOption("GDAL_PAM_ENABLED", None)
    assert isinstance(renderer, QgsPalettedRasterRenderer)
    assert len(classes) == 12
    for code, name, colour in zip(LULC.codes[1:], LULC.names[1:], LULC.colours[1:]):
        assert classes[code].label == name and classes[code].color.name() == colour


def test_a_failed_or_cancelled_output_leaves_nothing(tmp_path):
    from plugin.geo.physical_outputs import PhysicalWriter

    lattice = _lulc_lattice()
    with pytest.raises(KeyboardInterrupt):
        with PhysicalWriter(tmp_path / "run_LULC_LULC_s0.tif", lattice, "LULC_LULC") as writer:
            writer.write_window(0, 0, np.ones((1, 96, 96), np.uint8))
            raise KeyboardInterrupt  # Ctrl-C half way
    with pytest.raises(ValueError, match="has 1 band"):
        with PhysicalWriter(tmp_path / "run_DEM_DEM_s0.tif", lattice, "DEM_DEM") as writer:
            writer.write_window(0, 0, np.ones((2, 64, 64), np.float32))
    assert list(tmp_path.iterdir()) == []  # no COG, no work file, no .aux.xml


def test_s1_output_in_db_on_request(tmp_path):
    lattice = _lulc_lattice()
    linear = np.full((2, 192, 192), 0.1, np.float32)
    path = write_physical(tmp_path / "s1.tif", lattice, "S1RTC_vh_vv", linear, s1_db=True)
    with rasterio.open(path) as ds:
        assert set(ds.units) == {"dB"}
        np.testing.assert_allclose(ds.read(), -10.0, rtol=1e-6)


def test_location_is_not_a_raster_output(tmp_path):
    with pytest.raises(InputError, match="not a raster"):
        write_physical(tmp_path / "loc.tif", _lulc_lattice(), "3d_cartesian_lat_lon", np.zeros((2, 1, 1)))
    assert not list(tmp_path.iterdir())


def test_sensor_vrt_stacks_the_groups_at_10_m_without_copying(tmp_path, tile_lattice):
    layers = read_sensor(S2_TILE, "s2l2a", tile_lattice)
    out = tmp_path / "out"
    paths = {key: write_physical(out / output_name("run", key, 0), tile_lattice, key, values, valid)
             for key, (values, valid) in layers.items()}
    vrt = write_sensor_vrt(paths, "s2l2a", out / "run_S2L2A_s0.vrt")
    assert vrt.stat().st_size < 20_000  # references, no pixels
    with rasterio.open(vrt) as ds:
        assert ds.count == 12 and ds.descriptions == MAJOR_TOM
        assert (ds.width, ds.height, ds.res) == (240, 240, (10.0, 10.0))
        assert ds.transform == tile_lattice.grid(10).transform and ds.dtypes[0] == "uint16"
        stacked = ds.read()
    native = {}
    for key, path in paths.items():
        with rasterio.open(path) as ds:
            factor = 240 // ds.width
            for band, values in zip(ds.descriptions, ds.read()):
                native[band] = np.repeat(np.repeat(values, factor, axis=0), factor, axis=1)
    for index, band in enumerate(MAJOR_TOM):
        np.testing.assert_array_equal(stacked[index], native[band], err_msg=band)
    with pytest.raises(InputError, match="DEM_DEM"):
        write_sensor_vrt({"DEM_DEM": paths["S2L2A_B01_B09"]}, "s2l2a", out / "bad.vrt")
