import numpy as np
import pytest
from _geo_helpers import S2_TILE, THUMBNAILS, UTM33, best_shift, georeferenced_thumbnail, read_bands, write_raster
from affine import Affine
from osgeo import gdal

from plugin.engine.errors import Cancelled, InputError
from plugin.geo import render
from plugin.geo.conditions import prepare_condition
from plugin.geo.condition_spec import ConditionSpec, parse_condition_arg
from plugin.geo.grid import TargetGrid


@pytest.fixture(scope="module")
def s2_grid():
    return TargetGrid.from_raster(S2_TILE)


@pytest.fixture(scope="module")
def s2_reference():
    return render.render_s2(*read_bands(S2_TILE, [4, 3, 2]))


def read_all(prepared):
    return prepared.read_window(0, 0, prepared.grid.height, prepared.grid.width)


def square_grid(size=256):
    """A UTM33 grid of size x size px whose top-left corner is UTM33_ORIGIN's."""
    return TargetGrid.from_extent(400000, 5000000 - 10 * size, 400000 + 10 * size, 5000000, UTM33)


# --- parsing -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text,path,bands",
    [
        ("s2_l2a=/data/tile.tif:B04,B03,B02", "/data/tile.tif", ("B04", "B03", "B02")),
        ("s2_l1c=/data/tile.tif", "/data/tile.tif", None),
        ("dem=/data/dem.tif:1", "/data/dem.tif", ("1",)),
        ("dem=C:\\gis\\dem.tif", "C:\\gis\\dem.tif", None),
        ("s1_rtc=/vsicurl/https://example.org/s1.tif", "/vsicurl/https://example.org/s1.tif", None),
    ],
)
def test_parse_condition_arg(text, path, bands):
    spec = parse_condition_arg(text, source="physical")
    assert (spec.path, spec.bands) == (path, bands)


@pytest.mark.parametrize("text", ["s3=/data/x.tif", "/data/x.tif", "s2_l2a="])
def test_parse_condition_arg_rejects_malformed(text):
    with pytest.raises(InputError, match="condition"):
        parse_condition_arg(text)


def test_spec_rejects_bad_options():
    with pytest.raises(InputError, match="source"):
        ConditionSpec("s2_l2a", "x.tif", source="png")
    with pytest.raises(InputError, match="s2_offset"):
        ConditionSpec("s2_l2a", "x.tif", s2_offset=-1000)
    with pytest.raises(InputError, match="modality"):
        ConditionSpec("s2", "x.tif")


# --- S2 ----------------------------------------------------------------------------------


def test_s2_on_its_own_grid_is_the_major_tom_rendering(s2_grid, s2_reference):
    rgb, valid = read_all(prepare_condition(ConditionSpec("s2_l2a", S2_TILE), s2_grid))
    assert rgb.dtype == np.uint8 and rgb.shape == (3, 256, 256)
    assert np.array_equal(rgb[:, 16:240, 16:240], s2_reference)
    assert valid.sum() == 224 * 224 and valid[16:240, 16:240].all()


def test_s2_bands_by_description_and_offset(tmp_path, s2_grid, s2_reference):
    b04, b03, b02 = read_bands(S2_TILE, [4, 3, 2])
    tile_transform = s2_grid.window_transform(16, 16)
    path = write_raster(
        tmp_path / "bgr.tif", np.stack([b02, b03, b04]) + 1000, s2_grid.crs, tile_transform,
        descriptions=["B2", "B3", "B4"],
    )
    prepared = prepare_condition(ConditionSpec("s2_l2a", path, s2_offset=1000), s2_grid)
    assert prepared.indexes == (3, 2, 1)
    assert np.array_equal(prepared.read_window(16, 16, 224, 224)[0], s2_reference)
    named = prepare_condition(ConditionSpec("s2_l2a", path, bands="B04,B03,B02", s2_offset=1000), s2_grid)
    assert named.indexes == (3, 2, 1)


@pytest.mark.parametrize("how", ["epsg4326", "20m"])
def test_s2_resampled_input_lands_on_the_10m_grid(tmp_path, s2_grid, s2_reference, how):
    path = tmp_path / f"{how}.tif"
    if how == "epsg4326":
        options = dict(dstSRS="EPSG:4326", xRes=0.00005, yRes=0.00005, resampleAlg="bilinear")
    else:
        options = dict(xRes=20, yRes=20, resampleAlg="average")
    assert gdal.Warp(str(path), str(S2_TILE), **options) is not None
    rgb, valid = prepare_condition(ConditionSpec("s2_l2a", path), s2_grid).read_window(16, 16, 224, 224)
    assert valid[4:-4, 4:-4].all()
    shift, errors = best_shift(rgb, s2_reference, margin=8)
    assert shift == (0, 0)
    assert errors[(0, 0)] < 0.75 * min(e for s, e in errors.items() if s != (0, 0))
    assert errors[(0, 0)] < 3.0  # mean |difference| in thumbnail levels


def test_windows_of_a_reprojected_input_agree_exactly(tmp_path, s2_grid):
    path = tmp_path / "geo.tif"
    gdal.Warp(str(path), str(S2_TILE), dstSRS="EPSG:4326", xRes=0.0001, yRes=0.0001, resampleAlg="bilinear")
    prepared = prepare_condition(ConditionSpec("s2_l2a", path), s2_grid)
    whole, whole_valid = read_all(prepared)
    part, part_valid = prepared.read_window(100, 37, 90, 120)
    assert np.array_equal(part, whole[:, 100:190, 37:157])
    assert np.array_equal(part_valid, whole_valid[100:190, 37:157])


def test_s2_bands_found_by_gdal_sentinel2_descriptions(tmp_path, s2_grid, s2_reference):
    b04, b03, b02 = read_bands(S2_TILE, [4, 3, 2])
    descriptions = [f"B{n}, central wavelength {w} nm" for n, w in ((8, 842), (4, 665), (3, 560), (2, 490))]
    path = write_raster(
        tmp_path / "safe.tif", np.stack([b04, b04, b03, b02]), s2_grid.crs, s2_grid.window_transform(16, 16),
        descriptions=descriptions,
    )
    assert prepare_condition(ConditionSpec("s2_l2a", path), s2_grid).indexes == (2, 3, 4)
    prepared = prepare_condition(ConditionSpec("s2_l2a", path, bands="B04,B3,B02"), s2_grid)
    assert prepared.indexes == (2, 3, 4)
    assert np.array_equal(prepared.read_window(16, 16, 224, 224)[0], s2_reference)
    with pytest.raises(InputError) as error:
        prepare_condition(ConditionSpec("s2_l2a", path, bands="B04,B03,B8A"), s2_grid)
    # every description quoted whole, though they contain commas
    assert "'B8A'" in str(error.value)
    assert all(repr(d) in str(error.value) for d in descriptions)


def test_a_12_band_s2_file_without_band_names_is_read_in_major_tom_order_with_a_note(s2_grid, s2_reference):
    # the Major TOM tile has 12 bands and no descriptions: B01..B08, B8A, B09, B11, B12
    prepared = prepare_condition(ConditionSpec("s2_l2a", S2_TILE), s2_grid)
    assert prepared.indexes == (4, 3, 2)
    assert prepared.notes == [
        f"{S2_TILE} has no band names; read in Major TOM's S2 L2A order of 12 bands "
        "(B04, B03, B02 = bands 4, 3, 2)"
    ]
    named = prepare_condition(ConditionSpec("s2_l2a", S2_TILE, bands="B4,B03,B02"), s2_grid)
    assert named.indexes == (4, 3, 2) and len(named.notes) == 1
    assert np.array_equal(named.read_window(16, 16, 224, 224)[0], s2_reference)
    # B8A sits before B09 in that order
    assert prepare_condition(ConditionSpec("s2_l2a", S2_TILE, bands="B8A,B09,B12"), s2_grid).indexes == (9, 10, 12)
    # numbers need no note
    assert prepare_condition(ConditionSpec("s2_l2a", S2_TILE, bands="4,3,2"), s2_grid).notes == []


def test_a_band_name_outside_the_layout_names_the_layout(s2_grid):
    with pytest.raises(InputError, match=r"no band named 'B10' .*Major TOM's S2 L2A order of 12 bands: B01, B02"):
        prepare_condition(ConditionSpec("s2_l2a", S2_TILE, bands="B10,B03,B02"), s2_grid)


def test_a_13_band_l1c_file_without_band_names_takes_the_l1c_order(tmp_path):
    path = write_raster(tmp_path / "l1c.tif", np.full((13, 30, 30), 1500, np.uint16))
    spec = ConditionSpec("s2_l1c", path, bands="B8A,B10,B11")
    assert prepare_condition(spec, square_grid()).indexes == (9, 11, 12)


def test_undescribed_bands_hint_names_the_bands_field(tmp_path):
    path = write_raster(tmp_path / "five.tif", np.ones((5, 30, 30), np.uint16))
    with pytest.raises(InputError, match=r"five\.tif.*e\.g\. 1,2,3") as error:
        prepare_condition(ConditionSpec("s2_l2a", path), square_grid())
    assert error.value.field == "conditions.s2_l2a.bands"
    assert "--" not in error.value.message  # no command-line text inside geo


def test_s2_float_reflectance_is_refused(tmp_path, s2_grid):
    reflectance = read_bands(S2_TILE, [4, 3, 2]).astype(np.float32) / 10000
    path = write_raster(tmp_path / "refl.tif", reflectance, s2_grid.crs, s2_grid.window_transform(16, 16))
    with pytest.raises(InputError, match=r"refl\.tif.*reflectance 0\.\.1.*digital numbers"):
        prepare_condition(ConditionSpec("s2_l2a", path), s2_grid)
    # the same values as digital numbers are fine
    dn = write_raster(tmp_path / "dn.tif", reflectance * 10000, s2_grid.crs, s2_grid.window_transform(16, 16))
    assert prepare_condition(ConditionSpec("s2_l2a", dn), s2_grid).indexes == (1, 2, 3)


# --- S1 ----------------------------------------------------------------------------------


def synthetic_s1_raster(tmp_path, size=300):
    rng = np.random.default_rng(7)
    vv = (10 ** rng.uniform(-3, 0, (size, size))).astype(np.float32)
    vh = (10 ** rng.uniform(-3.5, -0.5, (size, size))).astype(np.float32)
    vv[rng.random(vv.shape) < 0.01] = -0.002
    vv[:20, :30] = -32768.0
    vh[200:, 250:] = -32768.0
    return write_raster(tmp_path / "s1.tif", np.stack([vv, vh]), nodata=-32768.0), vv, vh


def test_s1_renders_with_area_wide_statistics_in_any_window(tmp_path):
    path, vv, vh = synthetic_s1_raster(tmp_path)
    grid = square_grid(256)
    prepared = prepare_condition(ConditionSpec("s1_rtc", path), grid)
    rgb, valid = read_all(prepared)
    area_vv, area_vh = vv[:256, :256], vh[:256, :256]
    expected = render.render_s1(area_vv, area_vh, render.s1_stats(area_vv, area_vh))
    assert np.array_equal(rgb, expected)
    assert np.array_equal(valid, (area_vv != -32768) & (area_vh != -32768))
    part, _ = prepared.read_window(64, 128, 128, 128)
    assert np.array_equal(part, rgb[:, 64:192, 128:256])


def test_s1_in_db(tmp_path):
    _, vv, vh = synthetic_s1_raster(tmp_path)
    vv, vh = np.abs(vv[:256, :256]) + 1e-4, np.abs(vh[:256, :256]) + 1e-4
    db = write_raster(tmp_path / "s1db.tif", 10 * np.log10(np.stack([vv, vh])).astype(np.float32))
    rgb, _ = read_all(prepare_condition(ConditionSpec("s1_rtc", db, s1_in_db=True), square_grid()))
    expected = render.render_s1(vv, vh, render.s1_stats(vv, vh))
    assert np.abs(rgb.astype(int) - expected).max() <= 1


def test_s1_db_values_read_as_linear_are_refused(tmp_path):
    db = np.random.default_rng(2).uniform(-30.0, -1.0, (2, 256, 256)).astype(np.float32)
    path = write_raster(tmp_path / "s1db.tif", db)
    with pytest.raises(InputError, match=r"s1db\.tif.*VV values look like dB \(all <= 0\)") as error:
        prepare_condition(ConditionSpec("s1_rtc", path), square_grid())
    assert error.value.field == "conditions.s1_rtc.s1_in_db"
    assert prepare_condition(ConditionSpec("s1_rtc", path, s1_in_db=True), square_grid()).stats.vv_max < 0


# --- DEM ---------------------------------------------------------------------------------


def synthetic_dem(shape):
    rows, cols = np.mgrid[0:shape[0], 0:shape[1]].astype(np.float64)
    return (200 + 40 * np.sin(rows / 7.0) * np.cos(cols / 5.0) + 3.0 * cols + 0.02 * rows**2).astype(np.float32)


def test_dem_is_hillshaded_at_30m_then_resized_like_major_tom(tmp_path):
    grid = square_grid(256)
    margin = 5  # 30 m pixels of DEM beyond the grid on every side
    dem = synthetic_dem((86 + 2 * margin, 86 + 2 * margin))
    dem_transform = grid.transform * Affine.scale(3) * Affine.translation(-margin, -margin)
    path = write_raster(tmp_path / "dem30.tif", dem, UTM33, dem_transform)
    rgb, valid = read_all(prepare_condition(ConditionSpec("dem", path), grid))
    assert valid.all() and (rgb[0] == rgb[1]).all() and (rgb[0] == rgb[2]).all()

    # Major TOM: uint8(255 * hillshade) of the 30 m DEM, stretched over the area's 30 m
    # pixels (rows/cols -1 .. 86 of the grid's 30 m lattice), then a bilinear x3 resize.
    intensity = render.hillshade_intensity(dem)[margin - 1:margin + 87, margin - 1:margin + 87]
    grey = render.hillshade_to_uint8(render.stretch_intensity(intensity))
    coarse = write_raster(tmp_path / "shade30.tif", grey, UTM33, grid.transform * Affine.scale(3) * Affine.translation(-1, -1))
    resized = gdal.Warp(
        "", str(coarse), format="MEM", outputBounds=grid.bounds, width=256, height=256, resampleAlg="bilinear"
    ).ReadAsArray()
    assert np.array_equal(rgb[0], resized)


def test_dem_windows_agree_and_nodata_is_invalid(tmp_path):
    grid = square_grid(256)
    dem = synthetic_dem((70, 100))
    dem[:, 60:] = -9999.0  # no data in the east
    path = write_raster(tmp_path / "dem.tif", dem, UTM33, grid.transform * Affine.scale(3), nodata=-9999.0)
    prepared = prepare_condition(ConditionSpec("dem", path), grid)
    whole, valid = read_all(prepared)
    assert not valid[:, 180:].any() and valid[:200, :170].all()
    assert not valid[215:, :].any()  # south of the DEM
    part, part_valid = prepared.read_window(31, 47, 100, 101)
    assert np.array_equal(part, whole[:, 31:131, 47:148])
    assert np.array_equal(part_valid, valid[31:131, 47:148])


# --- thumbnails --------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["s2l2a", "s1rtc", "dem", "s2l1c"])
def test_thumbnail_is_used_as_is(tmp_path, name):
    path = georeferenced_thumbnail(tmp_path, name)
    grid = TargetGrid.from_raster(path)
    modality = {"s2l2a": "s2_l2a", "s2l1c": "s2_l1c", "s1rtc": "s1_rtc", "dem": "dem"}[name]
    rgb, valid = read_all(prepare_condition(ConditionSpec(modality, path, source="thumbnail"), grid))
    assert grid.width == grid.height == 256 and valid.all()
    assert np.array_equal(rgb, read_bands(THUMBNAILS / f"{name}.webp"))


def test_grey_thumbnail_at_20m_is_replicated_and_nearest_resampled(tmp_path):
    grey = read_bands(THUMBNAILS / "dem.webp", 1)[:128, :128]
    path = write_raster(tmp_path / "grey20.tif", grey, UTM33, Affine(20.0, 0, 400000, 0, -20.0, 5000000))
    prepared = prepare_condition(ConditionSpec("dem", path, source="thumbnail"), square_grid())
    rgb, valid = read_all(prepared)
    upsampled = np.repeat(np.repeat(grey, 2, axis=0), 2, axis=1)
    assert valid.all() and all(np.array_equal(band, upsampled) for band in rgb)


def test_thumbnail_alpha_marks_invalid_pixels(tmp_path):
    rgb = read_bands(THUMBNAILS / "s2l2a.webp")
    alpha = np.full((1, 256, 256), 255, np.uint8)
    alpha[0, :, :100] = 0
    path = write_raster(tmp_path / "rgba.tif", np.concatenate([rgb, alpha]))
    ds = gdal.OpenEx(str(path), gdal.OF_UPDATE)
    ds.GetRasterBand(4).SetColorInterpretation(gdal.GCI_AlphaBand)
    ds = None  # closes the file
    out, valid = read_all(prepare_condition(ConditionSpec("s2_l2a", path, source="thumbnail"), square_grid()))
    assert not valid[:, :100].any() and valid[:, 100:].all()
    assert np.array_equal(out[:, :, 100:], rgb[:, :, 100:]) and (out[:, :, :100] == 0).all()


# --- errors ------------------------------------------------------------------------------


def test_unknown_band_name_names_file_and_band(s2_grid):
    with pytest.raises(InputError, match=r"282D_485L_3_3\.tif.*'B99'"):
        prepare_condition(ConditionSpec("s2_l2a", S2_TILE, bands="4,B99,2"), s2_grid)


def test_band_index_out_of_range(s2_grid):
    with pytest.raises(InputError, match=r"band 13 does not exist"):
        prepare_condition(ConditionSpec("s2_l2a", S2_TILE, bands="4,3,13"), s2_grid)


def test_wrong_number_of_bands_given(s2_grid):
    with pytest.raises(InputError, match=r"2 band\(s\) given.*needs 3"):
        prepare_condition(ConditionSpec("s2_l2a", S2_TILE, bands="4,3"), s2_grid)


def test_too_few_bands(tmp_path):
    path = write_raster(tmp_path / "two.tif", np.ones((2, 30, 30), np.uint16))
    with pytest.raises(InputError, match=r"two\.tif.*2 band.*; Sentinel-2 L2A true colour needs 3 \(B04, B03, B02\)"):
        prepare_condition(ConditionSpec("s2_l2a", path), square_grid())


def test_thumbnail_must_be_8_bit(tmp_path):
    path = write_raster(tmp_path / "dn.tif", np.ones((3, 30, 30), np.uint16))
    with pytest.raises(InputError, match=r"dn\.tif.*8-bit.*uint16"):
        prepare_condition(ConditionSpec("s2_l2a", path, source="thumbnail", bands="1,2,3"), square_grid())


def test_no_overlap(tmp_path):
    far = Affine(10.0, 0, 600000, 0, -10.0, 5500000)
    path = write_raster(tmp_path / "far.tif", np.ones((3, 30, 30), np.uint16), UTM33, far)
    with pytest.raises(InputError, match=r"far\.tif.*does not overlap"):
        prepare_condition(ConditionSpec("s2_l2a", path, layer_name="Far away"), square_grid())


@pytest.mark.parametrize("modality,data,nodata", [
    ("s2_l2a", np.zeros((3, 40, 40), np.uint16), None),
    ("s1_rtc", np.full((2, 40, 40), -32768, np.float32), None),
    ("dem", np.full((1, 40, 40), -1, np.int16), -1),
])
def test_all_nodata_condition(tmp_path, modality, data, nodata):
    path = write_raster(tmp_path / "empty.tif", data, nodata=nodata)
    with pytest.raises(InputError, match=r"layer 'Empty' \(.*empty\.tif\).*no valid pixel"):
        prepare_condition(ConditionSpec(modality, path, layer_name="Empty"), square_grid())


def test_unreferenced_and_unreadable_files(tmp_path):
    with pytest.raises(InputError, match=r"s2l2a\.webp.*no CRS"):
        prepare_condition(ConditionSpec("s2_l2a", THUMBNAILS / "s2l2a.webp", source="thumbnail"), square_grid())
    junk = tmp_path / "junk.tif"
    junk.write_text("not a raster")
    with pytest.raises(InputError, match=r"junk\.tif.*cannot read"):
        prepare_condition(ConditionSpec("s2_l2a", junk), square_grid())
    with pytest.raises(InputError, match=r"missing\.tif.*cannot read"):
        prepare_condition(ConditionSpec("s2_l2a", tmp_path / "missing.tif"), square_grid())


def test_cancel_stops_the_statistics_pass(tmp_path):
    path, _, _ = synthetic_s1_raster(tmp_path)
    with pytest.raises(Cancelled):
        prepare_condition(ConditionSpec("s1_rtc", path), square_grid(), cancel=lambda: True)
