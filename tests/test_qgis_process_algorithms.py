"""The copgen algorithms run by `qgis_process` on the installed plugin (tiny model, real tiles)."""

import json
import re
import shutil

import pytest
from osgeo import gdal

from qgis_support import QGIS_PROCESS, install_plugin, qgis_process

pytestmark = pytest.mark.skipif(shutil.which(QGIS_PROCESS) is None, reason="Debian's qgis_process is not installed")

TILES = ("282D_485L_3_3.tif", "38D_378R_2_3.tif")
ALGORITHMS = ("generate", "prepare", "installmodel", "chain", "combinations", "chainphysical", "combinationsphysical")


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    home = tmp_path_factory.mktemp("qgis-home")
    install_plugin(home)
    return home


@pytest.fixture(autouse=True)
def tiny_model(tiny_model_dir, monkeypatch):
    # qgis_process inherits this process's environment (tests/qgis_support.headless_env).
    monkeypatch.setenv("COPGEN_MODEL_DIR", str(tiny_model_dir))


def run_json(home, algorithm, *arguments):
    completed = qgis_process(home, "--json", "run", f"copgen:{algorithm}", *arguments)
    assert completed.returncode == 0, completed.stderr + completed.stdout
    return json.loads(completed.stdout[completed.stdout.index("{") :])


def epsg(path):
    return int(gdal.Open(str(path)).GetSpatialRef().GetAuthorityCode(None))


def test_all_algorithms_are_listed(home):
    listing = qgis_process(home, "list")
    assert listing.returncode == 0, listing.stderr
    for algorithm in ALGORITHMS:
        assert f"copgen:{algorithm}" in listing.stdout


@pytest.mark.parametrize("tile", TILES)
def test_generate_one_run_per_tile(home, shared_dir, tmp_path, tile):
    path = shared_dir / "data" / "majortom_s2l2a" / tile
    output = run_json(
        home,
        "generate",
        f"--S2_L2A={path}",
        "--S2_L2A_RED=4",
        "--S2_L2A_GREEN=3",
        "--S2_L2A_BLUE=2",
        "--GENERATE=0",
        "--GENERATE=1",
        "--STEPS=2",
        "--SEED=1",
        f"--OUTPUT_FOLDER={tmp_path}",
    )
    results = output["results"]
    assert sorted(results["OUTPUT_FILES"]) == sorted([results["OUTPUT_DEM"], results["OUTPUT_S1_RTC"]])
    for key in ("OUTPUT_DEM", "OUTPUT_S1_RTC"):
        assert epsg(results[key]) == epsg(path)
        assert gdal.Open(results[key]).GetMetadataItem("seed") == "1"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.rsplit("/", 1)[1] for p in results["OUTPUT_FILES"])


def test_prepare(home, shared_dir, tmp_path):
    path = shared_dir / "data" / "majortom_s2l2a" / TILES[1]
    out = tmp_path / "rendering.tif"
    results = run_json(
        home, "prepare", f"--INPUT={path}", "--MODALITY=3", "--RED=4", "--GREEN=3", "--BLUE=2", f"--OUTPUT={out}"
    )["results"]
    assert results["OUTPUT"] == str(out)
    rendering = gdal.Open(str(out))
    assert (rendering.RasterCount, rendering.RasterXSize, epsg(out)) == (3, 256, epsg(path))


def test_bad_input_is_refused_naming_the_parameter(home, shared_dir, tmp_path):
    path = shared_dir / "data" / "majortom_s2l2a" / TILES[0]
    completed = qgis_process(
        home, "run", "copgen:generate", f"--S2_L2A={path}", "--GENERATE=3", f"--OUTPUT_FOLDER={tmp_path / 'out'}"
    )
    assert completed.returncode != 0
    # the engine's request refuses it; the message names the parameter by its label
    assert "Sentinel-2 L2A true colour condition: both generated and given as a condition" in (
        completed.stdout + completed.stderr
    )
    assert not (tmp_path / "out").exists()


def test_stage_text_is_never_spliced_into_the_progress_dots(home, shared_dir, tmp_path):
    path = shared_dir / "data" / "majortom_s2l2a" / TILES[0]
    completed = qgis_process(home, "run", "copgen:generate", f"--S2_L2A={path}", "--GENERATE=0", "--STEPS=2",
                             "--SEED=1", f"--OUTPUT_FOLDER={tmp_path}")
    assert completed.returncode == 0, completed.stderr + completed.stdout
    lines = completed.stdout.splitlines()
    # qgis_process prints "0...10...20" without line ends: each stage has a line of its own
    for stage in ("encoding s2_l2a", "denoising", "decoding dem"):
        assert stage in lines, completed.stdout
    dots = [line for line in lines if "..." in line]
    assert dots and all(re.fullmatch(r"[0-9.]+( - done\.)?", line) for line in dots), dots
    assert dots[-1].endswith("100 - done.")


def test_prepare_physical_for_cop_gen(home, shared_dir, tmp_path):
    """COP-GEN's Prepare model inputs needs no model and only static parameters: qgis_process runs it."""
    tile = shared_dir / "data" / "majortom_s2l2a" / TILES[0]
    output = run_json(home, "preparephysical", f"--S2L2A={tile}", "--DATE=2021-07-15",
                      f"--OUTPUT_FOLDER={tmp_path / 'fed'}")["results"]
    fed = gdal.Open(output["OUTPUT_S2L2A_B05_B06_B07_B11_B12_B8A"])
    assert fed.GetGeoTransform()[1] == 20 and fed.RasterCount == 6
    assert fed.GetMetadataItem("synthetic") == "false" and fed.GetMetadataItem("command") == "prepare"
    assert sorted(p.name for p in (tmp_path / "fed").glob("*.tif")) == [
        "prepared_S2L2A_B01_B09.tif", "prepared_S2L2A_B02_B03_B04_B08.tif", "prepared_S2L2A_B05_B06_B07_B11_B12_B8A.tif"]
