"""COP-GEN's analyses: metrics in physical units checked against hand-computed values, the
user's conditioning subsets (and bad input), and the chain and combinations run end to end on
the real Sentinel-2 L2A Major TOM tile with the tiny random COP-GEN (the values mean nothing;
counts, files, grids and the figures' arithmetic do)."""

import itertools
import math

import numpy as np
import pytest
import rasterio
from osgeo import gdal

from plugin.engine.errors import Cancelled, InputError

pytestmark = pytest.mark.timeout(300)
BANDS = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B11", "B12")
TEN_M = "S2L2A_B02_B03_B04_B08"  # channels B04, B03, B02, B08


@pytest.fixture(scope="module")
def tile(shared_dir):
    return shared_dir / "data" / "majortom_s2l2a" / "282D_485L_3_3.tif"


@pytest.fixture(scope="module")
def model(copgen_model_dir):
    from plugin import engine

    return engine.load(copgen_model_dir)


def s2l2a(tile, modality="s2l2a"):
    from plugin.geo.physical_pipeline import PhysicalConditionSpec

    return PhysicalConditionSpec(modality, str(tile), bands=BANDS)


# -- metrics --------------------------------------------------------------------------------------

def test_measurements_are_compared_in_their_unit_over_common_valid_pixels():
    from plugin.analysis.physical_metrics import compare_modality

    real = np.array([[[1.0, 2.0], [3.0, 4.0]]])
    generated = np.array([[[2.0, 2.0], [3.0, 8.0]]])
    real_valid = np.ones((2, 2), bool)
    generated_valid = np.array([[True, True], [True, True]])
    (dem,) = compare_modality("DEM_DEM", real, real_valid, generated, generated_valid)
    # differences 1, 0, 0, 4 metres
    assert (dem.unit, dem.pixels) == ("metre", 4)
    assert dem.mae == pytest.approx(1.25) and dem.bias == pytest.approx(1.25)
    assert dem.rmse == pytest.approx(math.sqrt(17 / 4))
    a, b = np.array([1, 2, 3, 4.0]), np.array([2, 2, 3, 8.0])
    assert dem.correlation == pytest.approx(((a - 2.5) * (b - 3.75)).sum() / math.sqrt(5 * ((b - 3.75) ** 2).sum()))
    assert dem.accuracy is None and dem.miou is None
    # the pixel without data in the generated layer never counts: differences 1, 0, 0
    generated_valid[1, 1] = False
    (dem,) = compare_modality("DEM_DEM", real, real_valid, generated, generated_valid)
    assert (dem.pixels, dem.mae, dem.rmse) == (3, pytest.approx(1 / 3), pytest.approx(math.sqrt(1 / 3)))


def test_backscatter_is_compared_in_db_and_s2_in_dn():
    from plugin.analysis.physical_metrics import compare_modality

    valid = np.ones((1, 2), bool)
    real = np.array([[[0.01, 0.1]], [[0.001, 0.01]]])  # VV, VH linear: -20, -10 / -30, -20 dB
    generated = real * 10  # +10 dB everywhere
    vv, vh = compare_modality("S1RTC_vh_vv", real, valid, generated, valid)
    for band in (vv, vh):
        assert band.unit == "dB"
        assert (band.mae, band.rmse, band.bias) == pytest.approx((10, 10, 10), rel=1e-5)
        assert band.correlation == pytest.approx(1.0)
    s2 = compare_modality(TEN_M, np.full((4, 1, 2), 1000.0), valid, np.full((4, 1, 2), 1250.0), valid)
    assert [(b.band, b.unit, b.mae, b.correlation) for b in s2] == [(band, "DN", 250.0, None)
                                                                     for band in ("B04", "B03", "B02", "B08")]


def test_class_maps_are_compared_as_classes():
    from plugin.analysis.physical_metrics import compare_modality

    valid = np.ones((1, 6), bool)
    real = np.array([[[1, 1, 2, 2, 2, 4]]], float)
    generated = np.array([[[1, 2, 2, 2, 5, 4]]], float)
    (lulc,) = compare_modality("LULC_LULC", real, valid, generated, valid)
    # agree on 4 of 6; IoU: class 1 1/2, class 2 2/4, class 4 1/1, class 5 (only generated) 0/1
    assert lulc.accuracy == pytest.approx(4 / 6)
    assert lulc.miou == pytest.approx((0.5 + 0.5 + 1 + 0) / 4)
    assert lulc.mae is None and lulc.unit == "class"


def test_no_pixel_in_common_is_refused():
    from plugin.analysis.physical_metrics import compare_modality

    with pytest.raises(InputError, match="no valid pixel"):
        compare_modality("DEM_DEM", np.ones((1, 2, 2)), np.zeros((2, 2), bool), np.ones((1, 2, 2)), np.ones((2, 2), bool))


# -- the user's subsets ---------------------------------------------------------------------------

def test_subsets_as_written_and_the_small_default(tile):
    from plugin.analysis.physical_combinations import plan_combinations
    from plugin.engine.families.copgen.registry import IMAGE_MODALITIES, SENSORS

    dem = s2l2a(tile, "dem")  # the keys only matter here: nothing is read
    plan = plan_combinations([s2l2a(tile), dem], "none; s2l2a; S2L2A_B02_B03_B04_B08; s2l2a + DEM; all")
    given = [subset for subset, _ in plan]
    assert given == [(), SENSORS["s2l2a"], (TEN_M,), ("DEM_DEM",) + SENSORS["s2l2a"]]  # "all" repeats the 4th
    assert plan[0][1] == IMAGE_MODALITIES and all(set(made) == set(IMAGE_MODALITIES) - set(g) for g, made in plan)
    default = [subset for subset, _ in plan_combinations([s2l2a(tile), dem])]
    assert default == [(), SENSORS["s2l2a"], ("DEM_DEM",), ("DEM_DEM",) + SENSORS["s2l2a"]]  # none, each, all
    assert [s for s, _ in plan_combinations([s2l2a(tile)])] == [(), SENSORS["s2l2a"]]


@pytest.mark.parametrize("subsets, generate, words", [
    ("none; s2l2a + clouds", None, ["subset 2", "'clouds'"]),
    ("s1rtc", None, ["subset 1", "s1rtc", "no real raster gives S1RTC_vh_vv"]),
    ("s2l2a;;dem", None, ["subset 2", "empty"]),
    ("dem", "DEM_DEM,LULC_LULC", ["DEM_DEM", "also to be generated"]),
    ("s2l2a", "s2l2a", ["S2L2A_B01_B09", "also to be generated"]),
    ("none", "location", ["not a raster"]),
])
def test_bad_subsets_are_one_line_naming_the_option(tile, subsets, generate, words):
    from plugin.analysis.physical_combinations import plan_combinations

    with pytest.raises(InputError) as error:
        plan_combinations([s2l2a(tile), s2l2a(tile, "dem")], subsets, generate)
    assert error.value.field in ("subsets", "generate") and "\n" not in error.value.message
    assert all(word in error.value.message for word in words), error.value.message


def test_too_many_subsets_are_refused_never_cut(tile):
    from plugin.analysis.physical_combinations import plan_combinations
    from plugin.analysis.subsets import MAX_SUBSETS

    names = ["s2l2a", "dem", "s1rtc", "lulc", "cloud", "s2l1c"]
    specs = [s2l2a(tile, name) for name in names]
    text = "; ".join("+".join(c) or "none" for n in range(3) for c in itertools.combinations(names, n))  # 22
    assert len(plan_combinations(specs, text)) == 22
    text = "; ".join("+".join(c) or "none" for n in range(4) for c in itertools.combinations(names, n))  # 42
    with pytest.raises(InputError, match=f"42 subsets; at most {MAX_SUBSETS}") as error:
        plan_combinations(specs, text)
    assert error.value.field == "subsets"


# -- the analyses, end to end ---------------------------------------------------------------------

def real_band(tile, out_path, band_index):
    """The tile's band read straight from the file, placed where it lies in an output's grid."""
    with rasterio.open(tile) as source, rasterio.open(out_path) as out:
        row = round((out.bounds.top - source.bounds.top) / 10)
        col = round((source.bounds.left - out.bounds.left) / 10)
        return source.read(band_index).astype(float), (row, col)


def test_combinations_count_compare_and_draw_every_subset(model, tile, tmp_path):
    from plugin.analysis.physical_combinations import run_physical_combinations

    messages = []
    results = run_physical_combinations(
        model, [s2l2a(tile)], tmp_path / "out", tmp_path / "out" / "sheet.png",
        subsets="none; S2L2A_B02_B03_B04_B08", steps=1, date="2021-07-15",
        progress=lambda done, total, text: messages.append(text))
    assert messages[0].startswith("estimate: ") and "2 generations" in messages[0]  # the total, first
    by_run = {}
    for result in results:
        by_run.setdefault(result.label, []).append(result.modality)
    assert len(by_run["UNCONDITIONAL"]) == 10 and len(by_run["GIVEN S2L2A 10M"]) == 9
    tifs = sorted(p.name for p in (tmp_path / "out").glob("*.tif"))
    assert len(tifs) == 19 and all(p.path.is_file() for p in results)
    # the 10 m group given alone: its 20 and 60 m groups are compared with the real ones
    compared = {r.modality for r in results if r.metrics and r.label == "GIVEN S2L2A 10M"}
    assert compared == {"S2L2A_B01_B09", "S2L2A_B05_B06_B07_B11_B12_B8A"}
    (ten,) = [r for r in results if r.metrics and r.modality == TEN_M]
    assert [m.band for m in ten.metrics] == ["B04", "B03", "B02", "B08"] and ten.metrics[0].pixels == 224 * 224
    # B04 by hand: the tile's own pixels against the output's where they lie (the grids agree
    # to a few centimetres, so a resampled pixel differs from the file's by far less than 1 %)
    real, (row, col) = real_band(tile, ten.path, 4)
    with rasterio.open(ten.path) as out:
        generated = out.read(1)[row:row + 224, col:col + 224].astype(float)
    assert ten.metrics[0].mae == pytest.approx(np.abs(generated - real).mean(), rel=0.01)
    assert ten.metrics[0].bias == pytest.approx((generated - real).mean(), rel=0.01)
    sheet = gdal.Open(str(tmp_path / "out" / "sheet.png"))
    assert sheet.RasterYSize > 2 * 128 and sheet.RasterCount == 3  # one row per subset


def test_bad_subsets_write_nothing(model, tile, tmp_path):
    from plugin.analysis.physical_combinations import run_physical_combinations

    with pytest.raises(InputError, match="subset 2"):
        run_physical_combinations(model, [s2l2a(tile)], tmp_path / "out", tmp_path / "out" / "sheet.png",
                                  subsets="none; dem", steps=1)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_cancelled_combinations_leave_no_file(model, tile, tmp_path):
    from plugin.analysis.physical_combinations import run_physical_combinations

    seen = []
    with pytest.raises(Cancelled):
        run_physical_combinations(model, [s2l2a(tile)], tmp_path / "out", tmp_path / "out" / "sheet.png",
                                  subsets="none; s2l2a", steps=1,
                                  progress=lambda done, total, text: seen.append(text),
                                  cancel=lambda: any("(2/2)" in text for text in seen))
    assert not list((tmp_path / "out").iterdir())  # the first run's files (and sidecars) gone


def test_chain_regenerates_the_sensor_through_another_and_measures_it(model, tile, tmp_path):
    from plugin.analysis.physical_chain import run_physical_chain

    messages = []
    steps = run_physical_chain(model, s2l2a(tile), "s1rtc", 2, tmp_path / "chain", steps=1,
                               progress=lambda done, total, text: messages.append(text))
    assert "4 generations" in messages[0]
    assert [(s.iteration, s.modality, bool(s.metrics)) for s in steps] == [
        (i, key, key != "S1RTC_vh_vv") for i in (1, 2)
        for key in ("S1RTC_vh_vv", "S2L2A_B01_B09", TEN_M, "S2L2A_B05_B06_B07_B11_B12_B8A")]
    assert all(s.path.is_file() for s in steps)
    # the regenerated sensor goes back in as one VRT of its three groups, written beside them
    # (the last iteration's goes nowhere: none)
    assert [p.name for p in (tmp_path / "chain").glob("*.vrt")] == ["chain_iter01_s2l2a.vrt"]
    first, second = (rasterio.open(s.path).read() for s in steps if s.modality == "S1RTC_vh_vv")
    assert not np.array_equal(first, second, equal_nan=True)  # the same seed, from the regenerated input
    ten = next(s for s in steps if s.modality == TEN_M)
    assert ten.metrics[0].unit == "DN" and ten.metrics[0].pixels == 224 * 224
    # the footprint Generate gives the same raster: the tile's 480 m units, not a padded grid's
    assert rasterio.open(ten.path).bounds == generated_bounds(tile)


def generated_bounds(tile):
    """The bounds of what a generation conditioned on ``tile`` covers."""
    from plugin.engine.families import COPGEN
    from plugin.engine.request import GenerationRequest
    from plugin.geo.physical_pipeline import area_lattice

    lattice = area_lattice(GenerationRequest(generate=["S1RTC_vh_vv"], conditions=[s2l2a(tile)], family=COPGEN))
    return rasterio.coords.BoundingBox(*lattice.bounds)


@pytest.mark.parametrize("via, words", [
    ("S2L1C_B02_B03_B04_B08", ["one group of s2l1c", "name s2l1c"]),
    ("s2l2a", ["must differ from the input"]),
    ("date", ["not a raster"]),
    ("s1_rtc", ["s1_rtc", "COP-GEN-Beta"]),
])
def test_chain_bad_via_is_one_line_and_writes_nothing(model, tile, tmp_path, via, words):
    from plugin.analysis.physical_chain import run_physical_chain

    with pytest.raises(InputError) as error:
        run_physical_chain(model, s2l2a(tile), via, 1, tmp_path / "chain", steps=1)
    assert error.value.field == "via" and all(word in error.value.message for word in words), error.value.message
    assert not (tmp_path / "chain").exists()
