"""COP-GEN physical units <-> model domain, against arrays made by the official code
(../shared/fixtures/copgen_reference/expected.npz), plus round trips, edge cases and bad input."""

import datetime
import json
import re

import numpy as np
import pytest

from plugin.engine.errors import InputError
from plugin.engine.families.copgen import processing
from plugin.engine.families.copgen.processing import postprocess, preprocess, unknown_codes
from plugin.engine.families.copgen.registry import BY_KEY, MODALITIES
from tests.conftest import SHARED

REFERENCE = SHARED / "fixtures" / "copgen_reference"
S2, S2_60, S2_L1C_60 = "S2L2A_B02_B03_B04_B08", "S2L2A_B01_B09", "S2L1C_B01_B09_B10"
S1, DEM, LULC, CLOUD = "S1RTC_vh_vv", "DEM_DEM", "LULC_LULC", "S2L1C_cloud_mask"
LOC, DATE = "3d_cartesian_lat_lon", "mean_timestamps"


@pytest.fixture(scope="module")
def ref():
    return dict(np.load(REFERENCE / "expected.npz"))


def assert_close(actual, expected):
    """~1e-5 relative, measured against the largest |value| as the fixtures' README does."""
    assert actual.shape == expected.shape and actual.dtype == np.float32
    scale = float(np.abs(expected).max())
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-5 * scale)


# --- agreement with the official code ------------------------------------------------------

# (key, physical array, model-domain array): the fixture's S2 pre-processing has 2 channels
# (the rule is the same for every group), so it is checked on the 2-channel 60 m group.
PRE_CASES = [
    (S2_60, "prepost.S2.dn", "prepost.S2.pre"),
    (S1, "prepost.S1.lin", "prepost.S1.pre"),
    (DEM, "prepost.DEM.m", "prepost.DEM.pre"),
    (LOC, "prepost.latlon.deg", "prepost.latlon.pre"),
    (DATE, "prepost.time.date", "prepost.time.pre"),
    (LOC, "e2e.lat_lon_deg", "e2e.3d_cartesian_lat_lon.pre"),
    (DATE, "e2e.date_ymd", "e2e.mean_timestamps.pre"),
    (DEM, "e2e.DEM_DEM.physical", "e2e.DEM_DEM.pre"),
]


@pytest.mark.parametrize("key, physical, model", PRE_CASES, ids=[c[2] for c in PRE_CASES])
def test_preprocess_matches_official(ref, key, physical, model):
    assert_close(preprocess(key, ref[physical]), ref[model])


# The fixtures' post-processing inputs have one channel: repeat it to the group's channels.
@pytest.mark.parametrize("key, model, physical", [
    (S2_L1C_60, "prepost.S2.norm", "prepost.S2.post"),
    (S1, "prepost.S1.norm", "prepost.S1.post"),
    (DEM, "prepost.DEM.norm", "prepost.DEM.post"),
])
def test_image_postprocess_matches_official(ref, key, model, physical):
    x = np.repeat(ref[model], BY_KEY[key].channels, axis=1)
    out = postprocess(key, x)
    for channel in range(out.shape[1]):
        assert_close(out[:, channel:channel + 1], ref[physical])


@pytest.mark.parametrize("key, name", [(LULC, "LULC"), (CLOUD, "cloud")])
def test_class_maps_match_official_exactly(ref, key, name):
    codes = ref[f"prepost.{name}.codes"]  # [1, H, W]
    one_hot = preprocess(key, codes)
    assert one_hot.dtype == np.float32
    np.testing.assert_array_equal(one_hot, ref[f"prepost.{name}.pre"][None])
    np.testing.assert_array_equal(preprocess(key, codes[:, None]), one_hot)  # [B, 1, H, W] too
    back = postprocess(key, ref[f"prepost.{name}.logits"])
    assert back.dtype == np.uint8 and back.shape == ref[f"prepost.{name}.post"].shape
    np.testing.assert_array_equal(back, ref[f"prepost.{name}.post"])


def test_location_postprocess_matches_official(ref):
    out = postprocess(LOC, ref["prepost.latlon.xyz"])  # not unit vectors: no renormalisation
    assert out.shape == (8, 2)
    assert_close(out, ref["prepost.latlon.post"][:, 0, 0])


def test_date_postprocess_matches_official_in_year_month_day_order(ref):
    out = postprocess(DATE, ref["prepost.time.enc"])
    official = ref["prepost.time.post"][:, 0, 0]  # (day, month, year)
    np.testing.assert_array_equal(out, official[:, ::-1])


def test_class_tables_match_the_official_ones():
    facts = json.loads((REFERENCE / "README.json").read_text())["preprocessing"]
    for key, name in ((LULC, "LULC"), (CLOUD, "cloud_mask")):
        table = facts["class_code_to_index"][name]
        codes = [int(code) for code, _ in sorted(table.items(), key=lambda item: item[1])]
        colours = processing.colour_table(key)
        assert list(colours) == codes
        assert [name for name, _ in colours.values()] == facts["class_names"][name]
        assert list(processing.class_names(key)) == facts["class_names"][name]
        assert all(re.fullmatch(r"#[0-9a-f]{6}", colour) for _, colour in colours.values())
        assert len({colour for _, colour in colours.values()}) == len(codes)
    assert processing.colour_table(LULC)[1] == ("Water", "#419bdf")


# --- round trips -----------------------------------------------------------------------------

def test_s2_round_trip_keeps_digital_numbers():
    dn = np.random.default_rng(0).integers(0, 20000, (2, 4, 8, 8)).astype(np.uint16)
    x = preprocess(S2, dn)
    assert x.dtype == np.float32 and x.min() >= -1 and x.max() > 1  # no clamp on the way in
    np.testing.assert_allclose(postprocess(S2, x), dn, atol=0.01)


@pytest.mark.parametrize("key, low, high", [(S1, 1e-5, 1e3), (DEM, 0.5, 8800.0)])
def test_log_rules_round_trip_within_the_training_range(key, low, high):
    values = np.geomspace(low, high, 48, dtype=np.float32).reshape(1, 1, 6, 8)
    values = np.repeat(values, BY_KEY[key].channels, axis=1)
    back = postprocess(key, preprocess(key, values))
    np.testing.assert_allclose(back, values, rtol=1e-4)


@pytest.mark.parametrize("key", [LULC, CLOUD])
def test_every_known_code_round_trips(key):
    codes = np.array(list(processing.colour_table(key)), np.uint8).reshape(1, 1, 1, -1)
    np.testing.assert_array_equal(postprocess(key, preprocess(key, codes)), codes)


def test_location_round_trip():
    rng = np.random.default_rng(1)
    degrees = np.stack([rng.uniform(-89, 89, 50), rng.uniform(-179.9, 179.9, 50)], axis=1)
    np.testing.assert_allclose(postprocess(LOC, preprocess(LOC, degrees)), degrees, atol=1e-3)


@pytest.mark.parametrize("year", [1950, 2019, 2020, 2000, 2050])
def test_every_day_of_a_year_round_trips(year):
    first = datetime.date(year, 1, 1)
    days = [first + datetime.timedelta(n) for n in range(366)]
    days = [d for d in days if d.year == year]
    ymd = np.array([(d.year, d.month, d.day) for d in days], dtype=np.int32)
    np.testing.assert_array_equal(postprocess(DATE, preprocess(DATE, ymd)), ymd)


# --- edge cases --------------------------------------------------------------------------------

def test_s1_nodata_and_non_positive_values_sit_at_minus_one():
    lin = np.array([0.0, -1.0, -32768.0, processing.S1.min_positive], np.float32)
    x = preprocess(S1, np.repeat(lin.reshape(1, 1, 1, 4), 2, axis=1))
    np.testing.assert_allclose(x, -1.0, atol=1e-6)
    # a positive value below the floor is kept, so it falls below -1, as in the official code
    assert preprocess(S1, np.full((1, 2, 1, 1), 1e-9))[0, 0, 0, 0] < -1.5


def test_s1_and_dem_outputs_are_clamped_to_the_training_range():
    x = np.array([-50.0, -1.0, 1.0, 50.0], np.float32).reshape(1, 1, 1, 4)
    s1 = postprocess(S1, np.repeat(x, 2, axis=1))
    np.testing.assert_allclose(s1[0, 0, 0], [processing.S1.min_positive] * 2 + [10534.0] * 2,
                               rtol=1e-4)
    # 10 ** (low / 10) is a hair under min_positive: the floor gives exactly min_positive
    assert s1.min() == np.float32(processing.S1.min_positive)
    dem = postprocess(DEM, x)[0, 0, 0]
    assert (dem > 0).all() and dem.max() < 8848  # no negative elevations, nothing above Everest
    assert dem[0] == dem[1] and dem[2] == dem[3]


def test_dem_nodata_and_sea_level_become_the_floor():
    metres = np.array([-9999.0, -428.0, 0.0, 1.0], np.float32).reshape(1, 1, 1, 4)
    x = preprocess(DEM, metres)[0, 0, 0]
    np.testing.assert_allclose(x[:3], -1.0, atol=1e-6)
    assert x[3] > -0.9


def test_s1_db_helpers():
    db = np.array([-30.0, -10.0, 0.0, 10.0], np.float32)
    linear = processing.s1_db_to_linear(db)
    np.testing.assert_allclose(linear, [1e-3, 0.1, 1.0, 10.0], rtol=1e-6)
    np.testing.assert_allclose(processing.s1_linear_to_db(linear), db, atol=1e-5)
    floor_db = processing.s1_linear_to_db(np.array([0.0, -5.0]))
    np.testing.assert_allclose(floor_db, 10 * np.log10(processing.S1.min_positive), rtol=1e-6)
    # dB data through the helper lands where the model expects it
    np.testing.assert_allclose(preprocess(S1, np.full((1, 2, 1, 1), linear[1])),
                               (-10.0 + 55.787186) / (40.2258 + 55.787186) * 2 - 1, atol=1e-6)


def test_unmapped_codes_go_to_channel_zero_and_are_reported():
    codes = np.array([[[3, 6, 255, 1], [-255, 300, 11, 0]]], np.int32)  # [B, H, W]
    one_hot = preprocess(LULC, codes)
    assert one_hot.shape == (1, 10, 2, 4)
    channel = one_hot.argmax(axis=1)[0]
    np.testing.assert_array_equal(channel, [[0, 0, 0, 1], [0, 0, 9, 0]])
    assert ((one_hot == 1).sum(axis=1) == 1).all()
    assert unknown_codes(LULC, codes) == [-255, 3, 6, 255, 300]
    assert unknown_codes(CLOUD, np.array([[[0, 1, 2, 3]]])) == []
    assert unknown_codes(CLOUD, np.array([[[0, 4, 7]]], np.float32)) == [4, 7]
    with pytest.raises(InputError, match="DEM_DEM.*not a class map"):
        unknown_codes(DEM, codes)


def test_float_class_rasters_are_accepted_when_whole():
    codes = np.array([[[[1.0, 2.0]]]], np.float32)
    np.testing.assert_array_equal(preprocess(LULC, codes), preprocess(LULC, codes.astype(int)))
    with pytest.raises(InputError, match="LULC_LULC.*whole numbers"):
        preprocess(LULC, codes + 0.5)


@pytest.mark.parametrize("ymd, angle_days", [
    ((2020, 12, 31), 366 / 366), ((2021, 12, 31), 365 / 365), ((2021, 1, 1), 1 / 365),
    ((2020, 1, 1), 1 / 366), ((2020, 2, 29), 60 / 366), ((2021, 3, 1), 60 / 365),
])
def test_date_encoding_uses_the_calendar_day_of_year(ymd, angle_days):
    enc = preprocess(DATE, np.array([ymd]))[0, 0, 0]
    angle = 2 * np.pi * angle_days
    np.testing.assert_allclose(enc[:2], [np.sin(angle), np.cos(angle)], atol=1e-7)
    assert enc[2] == np.float32(2 * (ymd[0] - 1950) / 100 - 1)


def test_date_decoding_reads_angle_zero_as_the_last_day():
    year = 2 * (2024 - 1950) / 100 - 1
    enc = np.array([[0.0, 1.0, year], [-1e-9, 1.0, year], [1e-9, 1.0, year]])
    np.testing.assert_array_equal(postprocess(DATE, enc[:, None, None]),
                                  [[2024, 12, 31], [2024, 12, 31], [2024, 12, 31]])


def test_date_decoding_knows_century_years():
    # decoded years may leave 1950..2050: 2100 is not a leap year, 2000 is
    angle = 2 * np.pi * 60 / np.array([365, 366])
    enc = np.stack([np.sin(angle), np.cos(angle), [2.0, 0.0]], axis=1)
    np.testing.assert_array_equal(postprocess(DATE, enc), [[2100, 3, 1], [2000, 2, 29]])


@pytest.mark.parametrize("ymd, message", [
    ((1949, 12, 31), "1949-12-31 is outside the model's years 1950..2050"),
    ((2051, 1, 1), "2051-01-01 is outside"),
    ((2021, 2, 29), "2021-2-29 is not a valid date"),
    ((2020, 13, 1), "2020-13-1 is not a valid date"),
    ((2020, 4, 0), "2020-4-0 is not a valid date"),
])
def test_bad_dates_name_the_date(ymd, message):
    with pytest.raises(InputError, match=f"mean_timestamps.*{re.escape(message)}"):
        preprocess(DATE, np.array([(2020, 1, 1), ymd]))


def test_year_bounds_are_accepted():
    enc = preprocess(DATE, np.array([(1950, 1, 1), (2050, 12, 31)]))
    np.testing.assert_allclose(enc[:, 0, 0, 2], [-1.0, 1.0])


# --- validation --------------------------------------------------------------------------------

@pytest.mark.parametrize("key, value, message", [
    (S2, np.zeros((1, 3, 4, 4)), r"\[B, 4, H, W\], got shape \[1, 3, 4, 4\]"),
    (S2, np.zeros((4, 4, 4)), r"got shape \[4, 4, 4\]"),
    (S2, np.full((1, 4, 2, 2), np.nan), "NaN or infinity"),
    (S1, np.full((1, 2, 2, 2), np.inf), "NaN or infinity"),
    (DEM, np.zeros((1, 1, 2, 2), bool), "expected numbers, got bool"),
    (DEM, np.array([["a"]]), "expected numbers"),
    (LULC, np.zeros((1, 2, 4, 4), np.uint8), r"class codes \[B, 1, H, W\] or \[B, H, W\]"),
    (CLOUD, np.array([[[np.nan]]]), "NaN or infinity"),
    (LOC, np.array([[91.0, 0.0]]), "latitude 91 is outside"),
    (LOC, np.array([[0.0, 181.0]]), "longitude 181 is outside"),
    (LOC, np.zeros((2, 3)), r"\[B, 2\] degrees"),
    (LOC, np.array([[np.nan, 0.0]]), "NaN or infinity"),
    (DATE, np.array([[2020.0, 1.5, 1.0]]), "whole numbers"),
    (DATE, np.array([2020, 1, 1]), r"\[B, 3\] integers"),
])
def test_bad_physical_input_names_the_modality(key, value, message):
    with pytest.raises(InputError) as caught:
        preprocess(key, value, field=f"conditions.{key}")
    assert re.search(f"^{key} .*{message}", caught.value.message), caught.value.message
    assert caught.value.field == f"conditions.{key}" and "\n" not in str(caught.value)


@pytest.mark.parametrize("key, value, message", [
    (S1, np.zeros((1, 1, 2, 2)), r"\[B, 2, H, W\]"),
    (LULC, np.zeros((1, 4, 2, 2)), r"\[B, 10, H, W\]"),
    (CLOUD, np.full((1, 4, 2, 2), np.nan), "NaN or infinity"),
    (LOC, np.zeros((2, 1, 1, 2)), r"\[B, 1, 1, 3\] or \[B, 3\]"),
    (DATE, np.full((1, 1, 1, 3), np.inf), "NaN or infinity"),
])
def test_bad_model_domain_input_names_the_modality(key, value, message):
    with pytest.raises(InputError, match=f"^{key} .*{message}"):
        postprocess(key, value)


def test_unknown_key_lists_the_valid_ones():
    with pytest.raises(InputError, match="unknown COP-GEN modality 'S2'.*DEM_DEM"):
        preprocess("S2", np.zeros((1, 4, 2, 2)))


# --- every key goes through the table -------------------------------------------------------------

def _physical_sample(record):
    if record.processing in ("lulc", "cloud"):
        return np.zeros((2, 1, 16, 16), np.uint8)
    if record.processing == "location":
        return np.array([[10.0, 20.0], [-30.0, 40.0]])
    if record.processing == "date":
        return np.array([[2020, 5, 6], [2021, 7, 8]])
    return np.full((2, record.channels, 16, 16), 100.0, np.float32)


@pytest.mark.parametrize("key", MODALITIES)
def test_every_modality_converts_both_ways(key):
    record = BY_KEY[key]
    physical = _physical_sample(record)
    model = preprocess(key, physical)
    assert model.dtype == np.float32
    if record.kind == "scalar":
        assert model.shape == (2, *record.latent_shape)
    else:
        assert model.shape == (2, record.channels, 16, 16)
    back = postprocess(key, model)
    if record.processing in ("s2", "s1", "dem"):
        np.testing.assert_allclose(back, physical, rtol=1e-4)
    else:
        np.testing.assert_allclose(back, physical.reshape(back.shape), atol=1e-3)
