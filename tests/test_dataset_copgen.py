"""`python -m plugin dataset` with a COP-GEN model on a real Dask LocalCluster: conditions by
sensor name from a {cell} pattern, the date, per-cell seeds, physical outputs at native
resolution on each cell's lattice, reruns that skip complete cells and redo changed ones, and a
failing cell listed. Tiny random weights: the checks are about form and plumbing, never values."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import rasterio

from test_dataset import place_tile

REPO = Path(__file__).resolve().parents[1]
BANDS = "B01,B02,B03,B04,B05,B06,B07,B08,B8A,B09,B11,B12"
# key: (bands, dtype, metres, nodata)
EXPECTED = {"DEM_DEM": (("DEM",), "float32", 30), "LULC_LULC": (("LULC",), "uint8", 10),
            "S2L2A_B01_B09": (("B01", "B09"), "uint16", 60)}


@pytest.fixture(scope="module")
def tiles(shared_dir, tmp_path_factory):
    folder = tmp_path_factory.mktemp("cg_tiles")
    for cell in ("282D_485L", "282D_484L"):
        place_tile(shared_dir / "data" / "majortom_s2l2a" / "282D_485L_3_3.tif", cell, folder / f"{cell}.tif")
    return folder


def dataset(model, tiles, out, *extra):
    return subprocess.run(
        [sys.executable, "-m", "plugin", "dataset", "--model", str(model), "--condition",
         f"s2l2a={tiles}/{{cell}}.tif:{BANDS}", "--generate", "dem,lulc,S2L2A_B01_B09,date", "--steps", "2",
         "--cell-size-px", "256", "--seed", "5", "--out", str(out), *extra],
        cwd=REPO, capture_output=True, text=True, timeout=400)


@pytest.mark.timeout(900)
def test_copgen_dataset_writes_physical_cells_reruns_and_lists_failures(copgen_model_dir, tiles, tmp_path):
    from plugin.dataset.jobs import cell_seed
    from plugin.engine.families.copgen.canvas import DEFAULT_TILING
    from plugin.engine.tiling import parse_tiling
    from plugin.geo.lattice import ModelLattice
    from plugin.geo.majortom import cell_named, cell_target_grid

    out = tmp_path / "out"
    first = dataset(copgen_model_dir, tiles, out, "--cells", "282D_485L", "--date", "2021-07-15")
    assert first.returncode == 0, first.stderr
    folder = out / "282D_485L"
    lattice = ModelLattice.from_grid(cell_target_grid(cell_named("282D_485L"), 256))
    # the estimate before any cell starts, priced as generate prices the cell: its windows counted
    tiling = parse_tiling(DEFAULT_TILING)
    windows = sum(len(tiling.layout(*lattice.units, call, 2, size=4)) for call in range(2))
    estimate = next(line for line in first.stderr.splitlines() if line.startswith("estimate: "))
    assert estimate.startswith("estimate: 1 cell, each about ") and "s per window here" in estimate, estimate
    assert f"{windows} denoiser windows over 2 calls" in estimate and "in all on 1 worker" in estimate, estimate
    for key, (bands, dtype, metres) in EXPECTED.items():
        grid = lattice.grid(metres)
        with rasterio.open(folder / f"{key}.tif") as ds:
            assert ds.descriptions == bands and ds.dtypes[0] == dtype and ds.res == (metres, metres)
            assert (ds.crs, ds.width, ds.height) == (grid.crs, grid.width, grid.height)
            assert ds.transform.almost_equals(grid.transform)
            tags = ds.tags()
            assert tags["seed"] == str(cell_seed(5, "282D_485L")) and tags["date"] == "2021-07-15"
            assert ds.read(masked=True).count() > 0
    assert (folder / "LULC_LULC.tif.aux.xml").is_file()  # its class names and colours
    windows = json.loads((folder / "windows.geojson").read_text())
    assert windows["features"] and all("predicted_date" in f["properties"] for f in windows["features"])
    record = json.loads((folder / ".copgen-cell.json").read_text())
    assert record["options"]["date"] == "2021-07-15" and record["options"]["family"] == "cop-gen"
    mtime = (folder / "DEM_DEM.tif").stat().st_mtime_ns

    again = dataset(copgen_model_dir, tiles, out, "--cells", "282D_485L", "--date", "2021-07-15")
    assert again.returncode == 0, again.stderr
    assert "cells 1/1 done (1 already complete), 0 failed" in again.stderr
    assert (folder / "DEM_DEM.tif").stat().st_mtime_ns == mtime

    # a class map that lost its class names and colours is not complete: the cell is redone
    (folder / "LULC_LULC.tif.aux.xml").unlink()
    redone = dataset(copgen_model_dir, tiles, out, "--cells", "282D_485L", "--date", "2021-07-15")
    assert "cells 1/1 done (0 already complete), 0 failed" in redone.stderr, redone.stderr
    assert (folder / "LULC_LULC.tif.aux.xml").is_file()

    # another date is another cell: redone; a cell without its tile fails, listed, the other is kept
    changed = dataset(copgen_model_dir, tiles, out, "--cells", "282D_485L,38D_378R", "--date", "2022-01-03")
    assert changed.returncode == 1, changed.stderr
    assert "cells 1/2 done (0 already complete), 1 failed" in changed.stderr
    assert f"38D_378R: condition s2l2a: {tiles / '38D_378R.tif'} does not exist" in changed.stderr
    with rasterio.open(folder / "DEM_DEM.tif") as ds:
        assert ds.tags()["date"] == "2022-01-03"
    assert not (out / "38D_378R").exists()


# Schemas of our own for the eo and raster extensions' fields (from their documented field
# tables): pystac fetches extension schemas over HTTP, and these tests never touch the network.
def _bands_schema(field, band):
    listed = {"type": "object", "properties": {field: {"type": "array", "minItems": 1, "items": band}}}
    return {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object", "required": ["assets"],
            "properties": {"assets": {"type": "object", "additionalProperties": listed}}}


EO_SCHEMA = _bands_schema("eo:bands", {
    "type": "object", "required": ["name", "common_name", "center_wavelength"],
    "properties": {"name": {"type": "string"}, "description": {"type": "string"},
                   "common_name": {"enum": ["coastal", "blue", "green", "red", "rededge", "yellow", "pan", "nir",
                                            "nir08", "nir09", "cirrus", "swir16", "swir22", "lwir", "lwir11",
                                            "lwir12"]},
                   "center_wavelength": {"type": "number"}, "full_width_half_max": {"type": "number"}}})
RASTER_SCHEMA = _bands_schema("raster:bands", {
    "type": "object", "required": ["data_type", "nodata", "scale", "unit"],
    "properties": {"nodata": {"oneOf": [{"type": "number"}, {"enum": ["nan", "inf", "-inf"]}]},
                   "data_type": {"enum": ["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
                                          "float16", "float32", "float64", "cint16", "cint32", "cfloat32",
                                          "cfloat64", "other"]},
                   "scale": {"type": "number"}, "offset": {"type": "number"}, "unit": {"type": "string"},
                   "sampling": {"enum": ["area", "point"]}, "bits_per_sample": {"type": "integer"}}})


@pytest.mark.timeout(600)
def test_copgen_stac_items_carry_eo_and_raster_bands_validated_offline(copgen_model_dir, tiles, tmp_path, monkeypatch):
    import pystac
    from pystac.extensions.eo import EOExtension
    from pystac.extensions.projection import ProjectionExtension
    from pystac.extensions.raster import RasterExtension
    from pystac.validation import JsonSchemaSTACValidator, set_validator
    from test_dataset import PROJECTION_SCHEMA

    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "-m", "plugin", "dataset", "--model", str(copgen_model_dir), "--condition",
         f"s2l2a={tiles}/{{cell}}.tif:{BANDS}", "--generate", "S2L2A_B01_B09,s1rtc,dem,S2L2A_B02_B03_B04_B08,location",
         "--steps", "2", "--cell-size-px", "256", "--out", str(out), "--cells", "282D_485L"],
        cwd=REPO, capture_output=True, text=True, timeout=400)
    assert result.returncode == 0, result.stderr
    validator = JsonSchemaSTACValidator()
    validator.schema_cache.update({ProjectionExtension.get_schema_uri(): PROJECTION_SCHEMA,
                                   EOExtension.get_schema_uri(): EO_SCHEMA,
                                   RasterExtension.get_schema_uri(): RASTER_SCHEMA})
    local_read = pystac.stac_io.DefaultStacIO.read_text_from_href

    def local_only(self, href, *args, **kwargs):
        assert not str(href).startswith("http"), f"validation tried to fetch {href}"
        return local_read(self, href, *args, **kwargs)

    monkeypatch.setattr(pystac.stac_io.DefaultStacIO, "read_text_from_href", local_only)
    set_validator(validator)
    try:
        collection = pystac.Collection.from_file(str(out / "collection.json"))
        collection.validate_all()
    finally:
        set_validator(JsonSchemaSTACValidator())
    item = next(collection.get_items())
    assert {EOExtension.get_schema_uri(), RasterExtension.get_schema_uri()} <= set(item.stac_extensions)
    raw = json.loads((out / "282D_485L" / "282D_485L.json").read_text())["assets"]
    # S2: reflectance x 10000 in UInt16, band order of the file, standard centre wavelengths
    assert [(b["name"], b["common_name"], b["center_wavelength"]) for b in raw["S2L2A_B02_B03_B04_B08"]["eo:bands"]] == [
        ("B04", "red", 0.665), ("B03", "green", 0.56), ("B02", "blue", 0.49), ("B08", "nir", 0.842)]
    assert [b["name"] for b in raw["S2L2A_B01_B09"]["eo:bands"]] == ["B01", "B09"]
    assert raw["S2L2A_B01_B09"]["raster:bands"][0] == {"data_type": "uint16", "nodata": 0, "scale": 0.0001,
                                                       "offset": 0.0, "unit": "reflectance x 10000"}
    assert raw["S2L2A_B01_B09"]["proj:shape"] != raw["S2L2A_B02_B03_B04_B08"]["proj:shape"]  # 60 m vs 10 m
    assert [b["nodata"] for b in raw["S1RTC_vh_vv"]["raster:bands"]] == ["nan", "nan"]
    assert raw["DEM_DEM"]["raster:bands"][0]["unit"] == "metre" and "eo:bands" not in raw["DEM_DEM"]
    assert item.properties["copgen:date"] is None and item.properties["copgen:family"] == "cop-gen"
    assert item.assets["windows"].media_type == pystac.MediaType.GEOJSON

    # a later run of other cells (one fails: no tile) keeps this cell's Item, windows asset and all
    later = subprocess.run(
        [sys.executable, "-m", "plugin", "dataset", "--model", str(copgen_model_dir), "--condition",
         f"s2l2a={tiles}/{{cell}}.tif:{BANDS}", "--generate", "S2L2A_B01_B09,s1rtc,dem,S2L2A_B02_B03_B04_B08,location",
         "--steps", "2", "--cell-size-px", "256", "--out", str(out), "--cells", "282D_484L,38D_378R"],
        cwd=REPO, capture_output=True, text=True, timeout=400)
    assert later.returncode == 1 and "38D_378R" in later.stderr, later.stderr
    kept = pystac.Collection.from_file(str(out / "collection.json"))
    assert sorted(item.id for item in kept.get_items()) == ["282D_484L", "282D_485L"]


@pytest.mark.timeout(120)
@pytest.mark.parametrize("extra, words", [
    (["--date", "2021-02-30"], ["--date", "not a date"]),
    (["--generate", "s2_l1c"], ["--generate", "s2_l1c is a COP-GEN-Beta modality"]),
])
def test_copgen_dataset_bad_input_is_one_line_before_any_cluster(copgen_model_dir, tiles, tmp_path, extra, words):
    out = tmp_path / "out"
    result = dataset(copgen_model_dir, tiles, out, "--cells", "282D_485L", *extra)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1 and len(lines) == 1 and all(word in lines[0] for word in words), result.stderr
    assert not out.exists()
