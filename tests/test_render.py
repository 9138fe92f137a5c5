import numpy as np
import pytest
from _geo_helpers import S2_TILES, read_bands

from plugin.geo import render


def major_tom_s2(b04, b03, b02):
    """Major TOM's s2l2a_thumbnail, written out from its published formula."""
    thumb = np.stack([b04, b03, b02], -1)
    thumb = 1.3 * ((thumb / 10_000) ** 0.6)
    return np.moveaxis((thumb.clip(0, 1) * 255).astype(np.uint8), -1, 0)


def major_tom_s1(vv, vh, nodata=-32768.0):
    """Major TOM's s1rtc_thumbnail on one whole scene, written out from its published steps."""
    vv, vh = vv.astype(np.float64), vh.astype(np.float64)
    vv_mask, vh_mask = vv != nodata, vh != nodata
    vv[vv < 0] = vv[vv >= 0].min()
    vh[vh < 0] = vh[vh >= 0].min()
    vv_db, vh_db = 10 * np.log10(vv), 10 * np.log10(vh)
    vv_db = (vv_db - vv_db[vv_mask].min()) / (vv_db[vv_mask].max() - vv_db[vv_mask].min()) * 255
    vh_db = (vh_db - vh_db[vh_mask].min()) / (vh_db[vh_mask].max() - vh_db[vh_mask].min()) * 255
    vv_db[~vv_mask] = 0
    vh_db[~vh_mask] = 0
    return np.stack([vv_db, 255 * (vv_db + vh_db) / np.max(vv_db + vh_db), vh_db]).astype(np.uint8)


@pytest.mark.parametrize("tile", S2_TILES, ids=lambda p: p.stem)
def test_render_s2_matches_major_tom_on_real_tile(tile):
    b04, b03, b02 = read_bands(tile, [4, 3, 2])
    assert np.array_equal(render.render_s2(b04, b03, b02), major_tom_s2(b04, b03, b02))
    shifted = [np.clip(b.astype(np.int32) - 1000, 0, None) for b in (b04, b03, b02)]
    assert np.array_equal(render.render_s2(b04, b03, b02, offset=1000), major_tom_s2(*shifted))


def test_s2_inverse_round_trips_below_saturation():
    levels = np.arange(255, dtype=np.uint8).reshape(1, 1, -1).repeat(3, axis=0)
    dn = render.s2_to_reflectance_dn(levels)
    assert dn.dtype == np.uint16
    assert np.array_equal(render.render_s2(*dn), levels)
    saturated = render.s2_to_reflectance_dn(np.full((3, 1, 1), 255, np.uint8))
    assert (render.render_s2(*saturated) == 255).all()
    assert (render.render_s2(*(saturated - 1)) == 254).all()  # lowest saturating DN


@pytest.mark.parametrize("tile", S2_TILES, ids=lambda p: p.stem)
def test_s2_inverse_recovers_real_dns_to_quantisation(tile):
    dn = read_bands(tile, [4, 3, 2]).astype(np.float64)
    rgb = render.render_s2(*dn)
    back = render.s2_to_reflectance_dn(rgb).astype(np.float64)
    below = rgb < 255
    # the DN range of one thumbnail level is ~ dDN/dlevel = DN / (0.6 * 255 * level / 255)
    level = rgb[below].astype(np.float64) + 0.5
    bin_width = dn[below] / (0.6 * level) + 2
    assert (np.abs(back[below] - dn[below]) <= bin_width).all()
    assert np.array_equal(render.render_s2(*back), rgb)


def synthetic_s1(seed=0, shape=(64, 80)):
    rng = np.random.default_rng(seed)
    vv = (10 ** rng.uniform(-3, 0, shape)).astype(np.float32)
    vh = (10 ** rng.uniform(-3.5, -0.5, shape)).astype(np.float32)
    vv[rng.random(shape) < 0.02] = -0.004  # RTC produces some negative backscatter
    vh[rng.random(shape) < 0.02] = -0.001
    vv[:5, :7] = -32768.0
    vh[40:, 60:] = -32768.0  # nodata in one band only
    return vv, vh


def test_render_s1_matches_major_tom_on_synthetic_scene():
    vv, vh = synthetic_s1()
    stats = render.s1_stats(vv, vh, nodata=-32768.0)
    rendered = render.render_s1(vv, vh, stats, nodata=-32768.0)
    expected = major_tom_s1(vv.copy(), vh.copy())
    assert rendered.dtype == np.uint8 and rendered.shape == (3, 64, 80)
    # equal up to float rounding at integer boundaries
    assert np.abs(rendered.astype(int) - expected).max() <= 1
    assert (rendered != expected).mean() < 0.001
    assert (rendered[0, :5, :7] == 0).all() and (rendered[2, 40:, 60:] == 0).all()


def test_s1_stats_merged_over_blocks_render_like_the_whole_scene():
    vv, vh = synthetic_s1(seed=3)
    whole = render.s1_stats(vv, vh)
    merged = render.S1Stats()
    for rows in (slice(0, 30), slice(30, 64)):
        for cols in (slice(0, 50), slice(50, 80)):
            merged = merged.merge(render.s1_stats(vv[rows, cols], vh[rows, cols]))
    assert np.array_equal(render.render_s1(vv, vh, merged), render.render_s1(vv, vh, whole))
    block = (slice(0, 30), slice(50, 80))
    assert np.array_equal(
        render.render_s1(vv[block], vh[block], merged), render.render_s1(vv, vh, whole)[(slice(None),) + block]
    )


def test_render_s1_in_db_equals_linear():
    vv, vh = synthetic_s1(seed=5)
    vv, vh = np.abs(vv) + 1e-4, np.abs(vh) + 1e-4  # positive: dB defined everywhere
    linear = render.render_s1(vv, vh, render.s1_stats(vv, vh))
    vv_db, vh_db = 10 * np.log10(vv.astype(np.float64)), 10 * np.log10(vh.astype(np.float64))
    in_db = render.render_s1(vv_db, vh_db, render.s1_stats(vv_db, vh_db, db_input=True), db_input=True)
    assert np.abs(in_db.astype(int) - linear).max() <= 1


def analytic_illumination(slope_east, slope_north, azimuth=315.0, altitude=45.0):
    """Lambert illumination of a plane z = slope_east * x + slope_north * y (x east, y north)."""
    slope = np.arctan(np.hypot(slope_east, slope_north))
    downhill_azimuth = np.degrees(np.arctan2(-slope_east, -slope_north))  # clockwise from north
    zenith = np.radians(90.0 - altitude)
    return np.cos(zenith) * np.cos(slope) + np.sin(zenith) * np.sin(slope) * np.cos(
        np.radians(azimuth - downhill_azimuth)
    )


@pytest.mark.parametrize("east,north", [(0.0, 0.0), (1.0, -1.0), (-1.0, 1.0), (0.3, 0.0), (0.0, -2.0)])
def test_hillshade_of_plane_matches_slope_aspect_formula(east, north):
    rows, cols = np.mgrid[0:20, 0:30].astype(float)
    dem = 100.0 + east * cols - north * rows  # rows run south
    expected = analytic_illumination(east, north)
    assert np.allclose(render.hillshade_intensity(dem), expected, atol=1e-12)
    # a plane has one illumination: matplotlib only clips, it does not stretch
    assert np.allclose(render.hillshade(dem), np.clip(expected, 0, 1), atol=1e-12)


def test_hillshade_stretches_with_scene_min_max():
    rows, cols = np.mgrid[0:16, 0:16].astype(float)
    dem = np.where(cols < 8, 2.0 * cols, 32.0 - 2.0 * cols) + rows  # a north-south ridge
    shade = render.hillshade(dem)
    west, east = analytic_illumination(2.0, -1.0), analytic_illumination(-2.0, -1.0)
    low, high = min(west, east), max(west, east)
    assert np.allclose(shade[:, :6], (west - low) / (high - low))
    assert np.allclose(shade[:, 9:], (east - low) / (high - low))
    assert shade.min() == 0.0 and shade.max() == 1.0


def test_hillshade_intensity_uses_numpy_gradient():
    rng = np.random.default_rng(1)
    dem = rng.normal(size=(12, 17)).cumsum(axis=0).cumsum(axis=1)
    d_row, d_col = np.gradient(dem, -1, 1)  # matplotlib's call, rows run south
    normal = np.stack([-d_col, -d_row, np.ones_like(dem)], -1)
    normal /= np.linalg.norm(normal, axis=-1, keepdims=True)
    az, alt = np.radians(90 - 315), np.radians(45)
    light = np.array([np.cos(az) * np.cos(alt), np.sin(az) * np.cos(alt), np.sin(alt)])
    assert np.allclose(render.hillshade_intensity(dem), normal @ light, atol=1e-12)


def test_hillshade_windows_agree_with_area_wide_stretch():
    rng = np.random.default_rng(2)
    dem = rng.normal(size=(40, 40)).cumsum(axis=0).cumsum(axis=1)
    whole = render.hillshade_intensity(dem)
    span = (np.nanmin(whole), np.nanmax(whole))
    full = render.hillshade(dem, span)
    # a window read with a one-pixel margin matches the whole-area rendering inside
    window = render.hillshade(dem[9:31, 4:25], span)[1:-1, 1:-1]
    assert np.array_equal(window, full[10:30, 5:24])


def test_hillshade_treats_nodata_like_an_edge():
    rows, cols = np.mgrid[0:10, 0:10].astype(float)
    dem = 3.0 * cols + rows
    dem[:, 5] = np.nan
    intensity = render.hillshade_intensity(dem)
    assert np.isnan(intensity[:, 5]).all()
    assert np.allclose(intensity[:, [0, 4, 6, 9]], analytic_illumination(3.0, -1.0))
