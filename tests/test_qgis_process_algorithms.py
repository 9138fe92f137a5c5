"""The copgen algorithms run by `qgis_process` on the installed plugin (tiny model, real tiles)."""

import json
import re
import shutil
from pathlib import Path

import pytest
from osgeo import gdal

from plugin.qgisui.physical_names import SENSORS
from qgis_support import QGIS_PROCESS, install_plugin, qgis_process
from test_qgis_algorithms import provider  # noqa: F401 (fixture)

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


# -- every algorithm, a saved model, errors --------------------------------------------------------

# One run per copgen algorithm as a user types it (besides generate and prepare above, and
# checkinstallation in test_qgis_process.py): {algorithm: (arguments(tmp_path, shared_dir), files it writes)}.
def _thumbnail_arguments(tmp_path, shared_dir):
    """The four real thumbnails (8-bit renderings) as georeferenced conditions."""
    arguments = []
    for parameter, name in (("DEM", "dem"), ("S1_RTC", "s1rtc"), ("S2_L1C", "s2l1c"), ("S2_L2A", "s2l2a")):
        path = tmp_path / f"{name}.tif"
        gdal.Translate(str(path), str(shared_dir / "data" / "copgen_beta_thumbnails" / f"{name}.webp"),
                       outputSRS="EPSG:32633", outputBounds=[500000, 5002560, 502560, 5000000])
        arguments += [f"--{parameter}={path}", f"--{parameter}_SOURCE=1"]
    return arguments


def _tile(shared_dir):
    return shared_dir / "data" / "majortom_s2l2a" / TILES[0]


RUNS = {
    "chain": (lambda tmp_path, shared_dir: [
        f"--INPUT={_tile(shared_dir)}", "--RED=4", "--GREEN=3", "--BLUE=2", "--INPUT_MODALITY=3", "--VIA_MODALITY=0",
        "--ITERATIONS=1", "--STEPS=2", f"--OUTPUT_FOLDER={tmp_path / 'out'}", f"--OUTPUT_TABLE={tmp_path / 'chain.gpkg'}",
    ], {"OUTPUT_FOLDER": 2, "OUTPUT_TABLE": 1}),
    "combinations": (lambda tmp_path, shared_dir: [
        *_thumbnail_arguments(tmp_path, shared_dir), "--STEPS=1", f"--OUTPUT_FOLDER={tmp_path / 'out'}",
        f"--OUTPUT_SHEET={tmp_path / 'sheet.html'}", f"--OUTPUT_TABLE={tmp_path / 'table.gpkg'}",
    ], {"OUTPUT_FOLDER": 32, "OUTPUT_SHEET": 1, "OUTPUT_TABLE": 1}),
    "majortom_cells": (lambda tmp_path, shared_dir: [
        f"--EXTENT={','.join(map(str, _extent(_tile(shared_dir))))} [EPSG:32722]", f"--OUTPUT={tmp_path / 'cells.gpkg'}",
    ], {"OUTPUT": 1}),
    "installmodel": (lambda tmp_path, shared_dir: [
        "--MODEL=0", "--PRECISION=1", "--ALLOW_UNOFFICIAL=1", "--HEADS=2",
        f"--DENOISER_FILE={shared_dir / 'fixtures' / 'copgen_beta_reference' / 'denoiser_tiny.pth'}",
        f"--VAE_FILE={shared_dir / 'fixtures' / 'copgen_beta_reference' / 'vae_tiny.pth'}",
    ], {"MODEL_DIR": 1}),
    # COP-GEN (its tiny model: see the test): S2 L2A -> S1 -> S2 L2A's three groups; one subset's nine outputs
    "chainphysical": (lambda tmp_path, shared_dir: [
        f"--S2L2A={_tile(shared_dir)}", f"--VIA={SENSORS.index('s1rtc')}", "--ITERATIONS=1", "--STEPS=1",
        f"--OUTPUT_FOLDER={tmp_path / 'out'}", f"--OUTPUT_TABLE={tmp_path / 'chain.gpkg'}",
    ], {"OUTPUT_FOLDER": 4, "OUTPUT_TABLE": 1}),
    "combinationsphysical": (lambda tmp_path, shared_dir: [
        f"--S2L2A={_tile(shared_dir)}", "--SUBSETS=S2L2A_B02_B03_B04_B08", "--STEPS=1",
        f"--OUTPUT_FOLDER={tmp_path / 'out'}", f"--OUTPUT_SHEET={tmp_path / 'sheet.html'}",
        f"--OUTPUT_TABLE={tmp_path / 'table.gpkg'}",
    ], {"OUTPUT_FOLDER": 9, "OUTPUT_SHEET": 1, "OUTPUT_TABLE": 1}),
}
# generatephysical: test_qgis_copgen.py; preparephysical: above
COVERED_ELSEWHERE = {"generate", "prepare", "checkinstallation", "generatephysical", "preparephysical"}


def _extent(path):
    """xmin, xmax, ymin, ymax of a raster file (qgis_process's extent order)."""
    ds = gdal.Open(str(path))
    x0, dx, _, y0, _, dy = ds.GetGeoTransform()
    return x0, x0 + dx * ds.RasterXSize, y0 + dy * ds.RasterYSize, y0


def _written(value):
    """Files behind an output value: a folder's files, else the file."""
    path = Path(str(value).split("|")[0])
    return [p for p in path.rglob("*") if p.is_file()] if path.is_dir() else [path] if path.is_file() else []


@pytest.fixture(scope="module")
def listed(home):
    listing = qgis_process(home, "list")
    assert listing.returncode == 0, listing.stderr
    return sorted(set(re.findall(r"copgen:(\w+)", listing.stdout)))


def test_every_listed_algorithm_has_a_run_here(listed):
    # An algorithm added to the provider gets a row in RUNS (or a qgis_process test of its own).
    assert set(listed) - COVERED_ELSEWHERE - set(RUNS) == set()


@pytest.mark.timeout(300)
@pytest.mark.parametrize("algorithm", sorted(RUNS))
def test_each_algorithm_runs_from_qgis_process(home, shared_dir, tmp_path, monkeypatch, request, algorithm):
    if algorithm == "installmodel":
        monkeypatch.setenv("COPGEN_MODEL_DIR", str(tmp_path / "models"))
    if algorithm.endswith("physical"):
        monkeypatch.setenv("COPGEN_MODEL_DIR", str(request.getfixturevalue("copgen_model_dir")))
    arguments, expected = RUNS[algorithm]
    results = run_json(home, algorithm, *arguments(tmp_path, shared_dir))["results"]
    for output, at_least in expected.items():
        files = _written(results[output])
        assert len(files) >= at_least and all(f.stat().st_size for f in files), (output, results[output])
        assert all(tmp_path in f.parents for f in files), files  # where it was told, nowhere else
    if algorithm == "installmodel":
        assert json.loads((tmp_path / "models" / "cop-gen-beta" / "model.json").read_text())["num_heads"] == 2


def assert_own_lines(stdout):
    """qgis_process's progress dots are never followed by text on their line."""
    dots = [line for line in stdout.splitlines() if re.match(r"[0-9]*\.", line)]
    assert dots and all(re.fullmatch(r"[0-9.]+( - done\.)?", line) for line in dots), stdout


@pytest.mark.timeout(120)
def test_install_model_stages_start_their_own_lines(home, shared_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("COPGEN_MODEL_DIR", str(tmp_path / "models"))
    arguments, _ = RUNS["installmodel"]
    completed = qgis_process(home, "run", "copgen:installmodel", *arguments(tmp_path, shared_dir))
    assert completed.returncode == 0, completed.stderr + completed.stdout
    assert "building and writing denoiser.onnx" in completed.stdout.splitlines()
    assert_own_lines(completed.stdout)


@pytest.fixture(scope="module")
def chain_model_file(tmp_path_factory, provider):  # the provider: the model's steps are copgen's
    from chain_model import write_chain_model

    return write_chain_model(tmp_path_factory.mktemp("model") / "chain.model3")


@pytest.mark.timeout(300)
def test_a_saved_graphical_model_runs_from_qgis_process(home, shared_dir, tmp_path, chain_model_file):
    """Generate S1 from the tile, a DEM from that S1, then GDAL's warp: the .model3 file run as
    ``qgis_process run FILE.model3`` writes the model's outputs where they were asked."""
    dem, warped = tmp_path / "dem.tif", tmp_path / "dem_wgs84.tif"
    completed = qgis_process(home, "run", str(chain_model_file), f"--tile={_tile(shared_dir)}",
                             f"--dem:dem={dem}", f"--warp:dem_wgs84={warped}")
    assert completed.returncode == 0, completed.stderr + completed.stdout
    assert gdal.Open(str(dem)).GetMetadataItem("modality") == "dem"
    assert [c["modality"] for c in json.loads(gdal.Open(str(dem)).GetMetadataItem("conditions"))] == ["s1_rtc"]
    assert epsg(dem) == epsg(_tile(shared_dir)) and epsg(warped) == 4326
    # Each step's "Wrote ..." and the next step's lines start lines of their own, never spliced
    # into the model's progress dots (a step's 100 % is not the model's, so the line stays open).
    assert_own_lines(completed.stdout)


@pytest.fixture(scope="module")
def broken_model(tmp_path_factory, tiny_model_dir):
    """The tiny model with a truncated VAE decoder: loading it fails inside processAlgorithm."""
    folder = tmp_path_factory.mktemp("broken") / "model"
    shutil.copytree(tiny_model_dir, folder)
    decoder = folder / "vae_decoder.onnx"
    decoder.write_bytes(decoder.read_bytes()[:1000])
    return folder


def test_an_error_is_printed_only_by_qgis(home, shared_dir, tmp_path, monkeypatch, broken_model):
    """QGIS 3.22's qgis_process prints a failed algorithm's error three times, all its own: the
    Critical log of QgsProcessingAlgorithm::run's catch (echoed by qgis_process), the "ERROR:"
    line of its ConsoleFeedback::reportError, and the Critical log of the base
    QgsProcessingFeedback::reportError (echoed again). The plugin adds none."""
    monkeypatch.setenv("COPGEN_MODEL_DIR", str(broken_model))
    completed = qgis_process(home, "run", "copgen:generate", f"--S2_L2A={_tile(shared_dir)}", "--GENERATE=0",
                             "--STEPS=2", f"--OUTPUT_FOLDER={tmp_path / 'out'}")
    assert completed.returncode != 0
    message = f"{broken_model / 'vae_decoder.onnx'}: not a loadable ONNX model"
    assert message not in completed.stdout
    assert completed.stderr.count(f"ERROR:\t{message}") == 1
    assert 1 <= completed.stderr.count(message) <= 3, completed.stderr
    assert not (tmp_path / "out").exists()
