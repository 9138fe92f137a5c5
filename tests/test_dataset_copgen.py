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
def copgen_dir(shared_dir, tmp_path_factory):
    from plugin.engine.convert import convert

    root = shared_dir / "fixtures" / "copgen_reference"
    return convert(root / "denoiser_tiny.pth", None, tmp_path_factory.mktemp("cg") / "model", heads=2,
                   vae_dir=root / "vae")


@pytest.fixture(scope="module")
def tiles(shared_dir, tmp_path_factory):
    folder = tmp_path_factory.mktemp("cg_tiles")
    place_tile(shared_dir / "data" / "majortom_s2l2a" / "282D_485L_3_3.tif", "282D_485L", folder / "282D_485L.tif")
    return folder


def dataset(model, tiles, out, *extra):
    return subprocess.run(
        [sys.executable, "-m", "plugin", "dataset", "--model", str(model), "--condition",
         f"s2l2a={tiles}/{{cell}}.tif:{BANDS}", "--generate", "dem,lulc,S2L2A_B01_B09,date", "--steps", "2",
         "--cell-size-px", "256", "--seed", "5", "--out", str(out), *extra],
        cwd=REPO, capture_output=True, text=True, timeout=400)


@pytest.mark.timeout(900)
def test_copgen_dataset_writes_physical_cells_reruns_and_lists_failures(copgen_dir, tiles, tmp_path):
    from plugin.dataset.jobs import cell_seed
    from plugin.geo.lattice import ModelLattice
    from plugin.geo.majortom import cell_named, cell_target_grid

    out = tmp_path / "out"
    first = dataset(copgen_dir, tiles, out, "--cells", "282D_485L", "--date", "2021-07-15")
    assert first.returncode == 0, first.stderr
    folder = out / "282D_485L"
    lattice = ModelLattice.from_grid(cell_target_grid(cell_named("282D_485L"), 256))
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

    again = dataset(copgen_dir, tiles, out, "--cells", "282D_485L", "--date", "2021-07-15")
    assert again.returncode == 0, again.stderr
    assert "cells 1/1 done (1 already complete), 0 failed" in again.stderr
    assert (folder / "DEM_DEM.tif").stat().st_mtime_ns == mtime

    # another date is another cell: redone; a cell without its tile fails, listed, the other is kept
    changed = dataset(copgen_dir, tiles, out, "--cells", "282D_485L,38D_378R", "--date", "2022-01-03")
    assert changed.returncode == 1, changed.stderr
    assert "cells 1/2 done (0 already complete), 1 failed" in changed.stderr
    assert f"38D_378R: condition s2l2a: {tiles / '38D_378R.tif'} does not exist" in changed.stderr
    with rasterio.open(folder / "DEM_DEM.tif") as ds:
        assert ds.tags()["date"] == "2022-01-03"
    assert not (out / "38D_378R").exists()
