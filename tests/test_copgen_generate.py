"""`python -m plugin generate` with a COP-GEN model on a real Sentinel-2 L2A Major TOM tile:
physical layers at native resolution on one footprint, deterministic, and bad input refused in
one line naming the option (tiny random weights: the values mean nothing, their form does)."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.timeout(300)
BANDS = "B01,B02,B03,B04,B05,B06,B07,B08,B8A,B09,B11,B12"
GENERATE = ("S1RTC_vh_vv,DEM_DEM,LULC_LULC,S2L1C_cloud_mask,S2L1C_B05_B06_B07_B11_B12_B8A,S2L2A_B01_B09")
EXPECTED = {  # key: (bands, dtype, metres)
    "S1RTC_vh_vv": (("VV", "VH"), "float32", 10),
    "DEM_DEM": (("DEM",), "float32", 30),
    "LULC_LULC": (("LULC",), "uint8", 10),
    "S2L1C_cloud_mask": (("cloud_mask",), "uint8", 10),
    "S2L1C_B05_B06_B07_B11_B12_B8A": (("B05", "B06", "B07", "B8A", "B11", "B12"), "uint16", 20),
    "S2L2A_B01_B09": (("B01", "B09"), "uint16", 60),
}


@pytest.fixture(scope="module")
def tile(shared_dir):
    return shared_dir / "data" / "majortom_s2l2a" / "282D_485L_3_3.tif"


def cli(*args):
    return subprocess.run([sys.executable, "-m", "plugin", *map(str, args)], cwd=REPO, capture_output=True,
                          text=True, timeout=280)


def contract(copgen_model_dir, tile, out, *extra):
    return cli("generate", "--model", copgen_model_dir, "--condition", f"s2l2a={tile}:{BANDS}", "--generate", GENERATE,
               "--date", "2021-07-15", "--steps", 3, "--seed", 5, "--out", out, *extra)


def test_the_contract_writes_physical_layers_on_one_footprint_and_repeats_exactly(copgen_model_dir, tile, tmp_path):
    first = contract(copgen_model_dir, tile, tmp_path / "a")
    assert first.returncode == 0, first.stderr
    paths = sorted((tmp_path / "a").glob("*.tif"))
    assert [p.name for p in paths] == sorted(f"copgen_seed5_{key}.tif" for key in EXPECTED)
    with rasterio.open(tile) as source:
        footprint, crs = source.bounds, source.crs
    bounds = set()
    for path in paths:
        key = path.stem.replace("copgen_seed5_", "")
        bands, dtype, metres = EXPECTED[key]
        # class names and colours live in the .aux.xml beside the COG: read with GDAL's PAM on
        with rasterio.Env(GDAL_PAM_ENABLED="YES"), rasterio.open(path) as out:
            assert out.descriptions == bands and out.dtypes[0] == dtype and out.res == (metres, metres)
            assert out.crs == crs
            bounds.add(tuple(out.bounds))
            data = out.read(masked=True)
            assert data.count() > 0 and out.tags()["synthetic"] == "true"
            assert json.loads(out.tags()["s2_offset"])["s2l2a"].startswith("0 (")  # a Major TOM tile: none
            if key == "LULC_LULC":
                assert set(np.unique(data.compressed())) <= {1, 2, 4, 5, 7, 8, 9, 10, 11}
                assert out.colormap(1)[1][:3] == (65, 155, 223)  # water
            if key == "S2L1C_cloud_mask":
                assert set(np.unique(data.compressed())) <= {0, 1, 2, 3}
            if dtype == "uint16":  # the S2 groups
                assert out.nodata == 0 and out.units[0] == "reflectance x 10000" and data.min() >= 1
            if key == "DEM_DEM":
                assert out.units[0] == "metre"
    assert len(bounds) == 1  # every resolution on one footprint
    left, bottom, right, top = bounds.pop()
    assert left <= footprint.left and right >= footprint.right and bottom <= footprint.bottom and top >= footprint.top
    assert (right - left) % 480 == 0 and (top - bottom) % 480 == 0  # whole lattice units
    second = contract(copgen_model_dir, tile, tmp_path / "b")
    assert second.returncode == 0, second.stderr
    for path in paths:
        with rasterio.open(path) as a, rasterio.open(tmp_path / "b" / path.name) as b:
            assert np.array_equal(a.read(), b.read(), equal_nan=True), path.name


def test_location_and_date_asked_for_come_back_per_window(copgen_model_dir, tile, tmp_path):
    done = cli("generate", "--model", copgen_model_dir, "--condition", f"s2l2a={tile}:{BANDS}", "--generate",
               "location,date", "--steps", 2, "--out", tmp_path)
    assert done.returncode == 0, done.stderr
    points = json.loads((tmp_path / "copgen_seed0_windows.geojson").read_text())
    assert len(points["features"]) == 4  # spread:1 over 5 x 5 units: 2 x 2 windows
    props = points["features"][0]["properties"]
    assert {"predicted_lat", "predicted_lon", "distance_km", "predicted_date"} <= set(props)
    assert -90 <= props["predicted_lat"] <= 90 and props["distance_km"] >= 0


@pytest.mark.parametrize("args, words", [
    (["--date", "2021-02-30"], ["--date", "not a date"]),
    (["--date", "1900-01-01"], ["--date", "1950..2050"]),
    (["--generate", "s2_l1c"], ["--generate", "s2_l1c is a COP-GEN-Beta modality"]),
])
def test_bad_input_is_one_line_naming_the_option(copgen_model_dir, tile, tmp_path, args, words):
    base = {"--generate": "s1rtc", "--condition": f"s2l2a={tile}:{BANDS}"}
    extra = dict(zip(args[::2], args[1::2]))
    options = [item for flag, value in {**base, **extra}.items() for item in (flag, value)]
    done = cli("generate", "--model", copgen_model_dir, *options, "--steps", 1, "--out", tmp_path / "out")
    assert done.returncode != 0
    lines = [line for line in done.stderr.strip().splitlines() if not line.startswith("estimate: ")]
    assert len(lines) == 1 and all(word in lines[0] for word in words), done.stderr
    assert not (tmp_path / "out").exists()


def test_three_band_file_named_as_s2l2a_names_the_missing_bands(copgen_model_dir, tile, tmp_path):
    small = tmp_path / "rgb.tif"
    with rasterio.open(tile) as source:
        profile = {**source.profile, "count": 3}
        with rasterio.open(small, "w", **profile) as out:
            out.write(source.read([4, 3, 2]))
    done = cli("generate", "--model", copgen_model_dir, "--condition", f"s2l2a={small}:B04,B03,B02", "--generate", "s1rtc",
               "--steps", 1, "--out", tmp_path / "out")
    assert done.returncode != 0 and "B01" in done.stderr and "--condition" in done.stderr, done.stderr
    errors = [line for line in done.stderr.strip().splitlines() if not line.startswith("estimate: ")]
    assert len(errors) == 1 and not (tmp_path / "out").exists()


def test_cop_gen_modality_asked_of_a_beta_model_is_named(tiny_model_dir, tile, tmp_path):
    done = cli("generate", "--model", tiny_model_dir, "--condition", f"s2_l2a={tile}:B04,B03,B02", "--generate",
               "S1RTC_vh_vv", "--steps", 1, "--out", tmp_path / "out")
    assert done.returncode != 0 and "S1RTC_vh_vv is a COP-GEN modality" in done.stderr, done.stderr
