"""`python -m plugin prepare` with a COP-GEN model: the conditions as the model will be fed them,
per official key, in physical units at native resolution on the footprint `generate` covers,
written as generate writes its outputs; bad input in the same one line as generate's.

Real data: the 12-band Major TOM S2 L2A tile; S1, DEM and land-cover rasters are built on its
grid in tmp_path (tiny random COP-GEN weights only for the one generate run compared)."""

import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import rasterio
from affine import Affine

from _geo_helpers import S2_TILE, S2_TILES, write_raster
from plugin.engine.families.copgen.registry import SENSORS

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.timeout(300)


def cli(*args):
    return subprocess.run([sys.executable, "-m", "plugin", *map(str, args)], cwd=REPO, capture_output=True,
                          text=True, timeout=280)


# The tile moved onto a multiple of 480 m (the footprint starts at a raster's own corner wherever it
# lies: test_a_tile_where_it_lies_is_fed_unresampled_from_its_own_corner).
PLACED = Affine(10.0, 0.0, 790080.0, 0.0, -10.0, 7198080.0)


@pytest.fixture(scope="module")
def tile():
    with rasterio.open(S2_TILE) as ds:
        return ds.read().astype(np.float64), PLACED, ds.crs


@pytest.fixture(scope="module")
def rasters(tile, tmp_path_factory):
    """The placed tile (12 bands, no names, as Major TOM stores them); S1 in dB, a DEM and a
    land-cover map at 20 m (so nearest neighbour shows) on its grid."""
    data, transform, crs = tile
    folder = tmp_path_factory.mktemp("conditions")
    s2 = write_raster(folder / "s2.tif", data.astype(np.int16), crs=crs, transform=transform)
    rows, cols = np.mgrid[0:224, 0:224]
    db = np.stack([-10.0 + cols / 100.0, -17.0 + rows / 100.0]).astype(np.float32)  # VV, VH
    s1 = write_raster(folder / "s1_db.tif", db, crs=crs, transform=transform, descriptions=("VV", "VH"))
    dem = write_raster(folder / "dem.tif", (100.0 + rows + 2.0 * cols).astype(np.float32), crs=crs,
                       transform=transform, nodata=-9999.0)
    codes = np.where((rows[:112, :112] // 4 + cols[:112, :112] // 4) % 2, 11, 2).astype(np.uint8)
    lulc = write_raster(folder / "lulc.tif", codes, crs=crs, transform=transform * Affine.scale(2), nodata=0)
    return {"s2": s2, "s1": s1, "dem": dem, "lulc": lulc}


@pytest.fixture(scope="module")
def prepared(copgen_model_dir, rasters, tmp_path_factory):
    out = tmp_path_factory.mktemp("prepared") / "out"
    done = cli("prepare", "--model", copgen_model_dir, "--condition", f"s2l2a={rasters['s2']}",
               "--condition", f"s1rtc={rasters['s1']}", "--condition", f"dem={rasters['dem']}",
               "--condition", f"lulc={rasters['lulc']}", "--s1-db", "--date", "2021-07-15", "--out", out)
    assert done.returncode == 0, done.stderr
    return out, done


def read(path):
    """(masked values, what the file says of itself), read with GDAL's PAM on (class maps' .aux.xml)."""
    with rasterio.Env(GDAL_PAM_ENABLED="YES"), rasterio.open(path) as ds:
        said = SimpleNamespace(descriptions=ds.descriptions, dtypes=ds.dtypes, res=ds.res, units=ds.units,
                               tags=ds.tags(), scales=ds.scales, bounds=ds.bounds, crs=ds.crs,
                               tiled=ds.profile.get("tiled"), colormap=ds.colormap(1) if ds.dtypes[0] == "uint8" else None)
        return ds.read(masked=True), said


def test_every_key_of_every_condition_is_written_as_generate_writes_outputs(prepared):
    out, done = prepared
    keys = SENSORS["s2l2a"] + SENSORS["s1rtc"] + SENSORS["dem"] + SENSORS["lulc"]
    assert sorted(p.name for p in out.glob("*.tif")) == sorted(f"prepared_{key}.tif" for key in keys)
    assert done.stdout.split() == [str(out / f"prepared_{key}.tif") for key in SENSORS["s2l2a"] + SENSORS["s1rtc"]
                                   + SENSORS["dem"] + SENSORS["lulc"]]
    expected = {"S2L2A_B02_B03_B04_B08": (("B04", "B03", "B02", "B08"), "uint16", 10, "reflectance x 10000"),
                "S2L2A_B05_B06_B07_B11_B12_B8A": (("B05", "B06", "B07", "B8A", "B11", "B12"), "uint16", 20,
                                                  "reflectance x 10000"),
                "S2L2A_B01_B09": (("B01", "B09"), "uint16", 60, "reflectance x 10000"),
                "S1RTC_vh_vv": (("VV", "VH"), "float32", 10, "linear gamma0"),
                "DEM_DEM": (("DEM",), "float32", 30, "metre"),
                "LULC_LULC": (("LULC",), "uint8", 10, "class")}
    footprints = set()
    for key, (bands, dtype, metres, unit) in expected.items():
        _, ds = read(out / f"prepared_{key}.tif")
        assert ds.descriptions == bands and ds.dtypes[0] == dtype and ds.res == (metres, metres), key
        assert ds.units[0] == unit and ds.tiled
        tags = ds.tags
        assert tags["modality"] == key and tags["command"] == "prepare" and tags["synthetic"] == "false"
        assert tags["date"] == "2021-07-15"
        if dtype == "uint16":
            assert "DN / 10000" in tags["offset_rule"] and ds.scales[0] == 1e-4
        footprints.add(tuple(ds.bounds))
    assert len(footprints) == 1
    notes = [line for line in done.stderr.splitlines() if line.startswith("note: ")]
    assert any("taken in the order B01, B02" in line for line in notes)  # the tile has no band names
    assert any("S1RTC_vh_vv from" in line and "covers 100 % of the area" in line for line in notes)
    assert any("date 2021-07-15" in line for line in notes)


def test_values_are_the_fed_physical_values(prepared, tile):
    out, _ = prepared
    data, _, _ = tile
    s2, _ = read(out / "prepared_S2L2A_B02_B03_B04_B08.tif")  # the tile is on the lattice: copied
    assert np.array_equal(s2[:, :224, :224].filled(0), data[[3, 2, 1, 7]].astype(np.uint16))
    assert s2[:, 224:, :].mask.all() and s2[:, :, 224:].mask.all()  # the padding to whole units: nodata
    b05, _ = read(out / "prepared_S2L2A_B05_B06_B07_B11_B12_B8A.tif")
    mean = data[4].reshape(112, 2, 112, 2).mean(axis=(1, 3))  # 10 m -> 20 m: averaged
    assert np.abs(b05[0, :112, :112].astype(np.float64) - mean).max() <= 0.5
    s1, _ = read(out / "prepared_S1RTC_vh_vv.tif")  # given in dB (--s1-db), fed linear
    cols = np.arange(224)
    np.testing.assert_allclose(s1[0, 0, :224], 10 ** ((-10.0 + cols / 100.0) / 10), rtol=1e-5)
    dem, _ = read(out / "prepared_DEM_DEM.tif")  # 10 m -> 30 m: averaged metres
    rows, cols = np.mgrid[0:222, 0:222]
    expected = (100.0 + rows + 2.0 * cols).reshape(74, 3, 74, 3).mean(axis=(1, 3))
    np.testing.assert_allclose(dem[0, :74, :74], expected, atol=1e-3)
    lulc, _ = read(out / "prepared_LULC_LULC.tif")  # 20 m codes at 10 m: nearest, never blended
    assert set(np.unique(lulc.compressed())) == {2, 11}
    _, said = read(out / "prepared_LULC_LULC.tif")
    assert said.colormap[11][:3] == (227, 226, 195)  # rangeland, from the class map beside the COG


def test_footprint_is_the_one_generate_covers(copgen_model_dir, tmp_path):
    # the tile where it lies (off the 480 m lattice), with an extent inside it
    with rasterio.open(S2_TILE) as ds:
        left, top = ds.bounds.left, ds.bounds.top
    extent = f"--extent={left + 300},{top - 1500},{left + 1700},{top - 200}"
    options = ["--model", copgen_model_dir, "--condition", f"s2l2a={S2_TILE}", extent]
    done = cli("generate", *options, "--generate", "cloud", "--steps", 1, "--out", tmp_path / "gen")
    assert done.returncode == 0, done.stderr
    fed = cli("prepare", *options, "--out", tmp_path / "fed")
    assert fed.returncode == 0, fed.stderr
    _, generated = read(tmp_path / "gen" / "copgen_seed0_S2L1C_cloud_mask.tif")
    for key in SENSORS["s2l2a"]:
        _, said = read(tmp_path / "fed" / f"prepared_{key}.tif")
        assert said.bounds == generated.bounds and said.crs == generated.crs


@pytest.mark.parametrize("path", S2_TILES, ids=lambda path: path.stem)
def test_a_tile_where_it_lies_is_fed_unresampled_from_its_own_corner(copgen_model_dir, tmp_path, path):
    """Off the 480 m multiples (as every real tile is), the lattice starts at the tile's corner and
    its 10 m pixels are fed as they are (they were shifted by 4 m and blended bilinearly)."""
    done = cli("prepare", "--model", copgen_model_dir, "--condition", f"s2l2a={path}", "--out", tmp_path)
    assert done.returncode == 0, done.stderr
    with rasterio.open(path) as ds:
        data, corner = ds.read(), (ds.bounds.left, ds.bounds.top)
    fed, said = read(tmp_path / "prepared_S2L2A_B02_B03_B04_B08.tif")
    assert (said.bounds.left, said.bounds.top) == pytest.approx(corner, abs=1e-6)
    assert np.array_equal(fed[:, :224, :224].filled(0), data[[3, 2, 1, 7]].astype(np.uint16))


def _offset_copy(source_path, folder, tags):
    path = folder / "offset.tif"
    with rasterio.open(source_path) as source:
        data, profile = source.read().astype(np.int32), {**source.profile, "dtype": "uint16", "nodata": 0}
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(np.where(data > 0, data + 1000, 0).astype(np.uint16))
        ds.update_tags(**tags)
    return path


def test_a_products_s2_offset_is_taken_off_and_said(copgen_model_dir, prepared, rasters, tmp_path):
    out, _ = prepared
    shifted = _offset_copy(rasters["s2"], tmp_path, {"PROCESSING_BASELINE": "04.00"})
    done = cli("prepare", "--model", copgen_model_dir, "--condition", f"s2l2a={shifted}", "--out", tmp_path / "o")
    assert done.returncode == 0, done.stderr
    assert "1000 subtracted from every DN (processing baseline 04.00" in done.stderr
    for key in SENSORS["s2l2a"]:
        a, _ = read(out / f"prepared_{key}.tif")
        b, ds = read(tmp_path / "o" / f"prepared_{key}.tif")
        assert np.array_equal(a.filled(0), b.filled(0)), key
        assert ds.tags["s2_offset"] == '{"s2l2a": "1000 (processing baseline 04.00 in the product\'s metadata)"}'
    kept = cli("prepare", "--model", copgen_model_dir, "--condition", f"s2l2a={shifted}", "--s2-offset", "0",
               "--out", tmp_path / "kept")
    assert kept.returncode == 0 and "subtracted" not in kept.stderr
    b, _ = read(tmp_path / "kept" / "prepared_S2L2A_B01_B09.tif")
    a, _ = read(out / "prepared_S2L2A_B01_B09.tif")
    assert np.array_equal(b.filled(0)[b.filled(0) > 0], a.filled(0)[a.filled(0) > 0] + 1000)


def _error_lines(done):
    return [line for line in done.stderr.strip().splitlines() if not line.startswith(("estimate: ", "note: "))]


@pytest.mark.parametrize("case", ["three_bands", "bad_date", "unknown_codes", "beta_name", "off_the_area"])
def test_bad_input_is_generates_one_line(copgen_model_dir, tile, tmp_path, case):
    data, transform, crs = tile
    conditions, extra = [f"s2l2a={S2_TILE}"], []
    if case == "three_bands":
        conditions = [f"s2l2a={write_raster(tmp_path / 'rgb.tif', data[[3, 2, 1]].astype(np.uint16), crs=crs, transform=transform)}:B04,B03,B02"]
    elif case == "bad_date":
        extra = ["--date", "2021-02-30"]
    elif case == "unknown_codes":
        codes = np.full((224, 224), 2, np.uint8)
        codes[100, 50] = 3  # a code the model does not know
        conditions.append(f"lulc={write_raster(tmp_path / 'lulc.tif', codes, crs=crs, transform=transform)}")
    elif case == "beta_name":
        conditions = [f"s2_l2a={S2_TILE}"]
    elif case == "off_the_area":
        conditions.append(f"dem={write_raster(tmp_path / 'far.tif', np.ones((50, 50), np.float32), crs=crs, transform=Affine(10, 0, transform.c + 50000, 0, -10, transform.f))}")
    options = [item for text in conditions for item in ("--condition", text)] + extra
    prepare = cli("prepare", "--model", copgen_model_dir, *options, "--out", tmp_path / "p")
    generate = cli("generate", "--model", copgen_model_dir, *options, "--generate", "cloud", "--steps", 1,
                   "--out", tmp_path / "g")
    assert prepare.returncode != 0 and generate.returncode != 0
    assert len(_error_lines(prepare)) == 1, prepare.stderr
    assert _error_lines(prepare) == _error_lines(generate)
    assert not (tmp_path / "p").exists() and not (tmp_path / "g").exists()


def test_beta_options_with_a_copgen_model_and_the_reverse_are_one_line(copgen_model_dir, tmp_path):
    done = cli("prepare", "--model", copgen_model_dir, "--modality", "s2_l2a", "--input", S2_TILE,
               "--out", tmp_path / "x")
    assert done.returncode != 0 and "--modality is COP-GEN-Beta's" in done.stderr
    done = cli("prepare", "--condition", f"s2l2a={S2_TILE}", "--out", tmp_path / "x.tif")
    assert done.returncode != 0 and "--condition is for a COP-GEN model" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and not (tmp_path / "x").exists()


def test_cancel_midway_leaves_nothing(rasters, tmp_path):
    from plugin.engine.errors import Cancelled
    from plugin.geo.physical_pipeline import PhysicalConditionSpec
    from plugin.geo.physical_prepare import prepare_physical, prepare_request

    request = prepare_request([PhysicalConditionSpec("s2l2a", rasters["s2"]), PhysicalConditionSpec("dem", rasters["dem"])])
    seen = []
    with pytest.raises(Cancelled):
        prepare_physical(request, tmp_path / "out", progress=lambda done, total: seen.append((done, total)),
                         cancel=lambda: len(seen) >= 2)
    assert seen == [(1, 4), (2, 4)]  # one window per key: three S2 groups and the DEM
    assert not (tmp_path / "out").exists()
