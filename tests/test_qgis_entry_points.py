"""Each entry point of the plugin's own dialogs runs what it shows, in a real QGIS desktop: the
Raster > COP-GEN-Beta menu's Generate…, Install model… and Check installation…, the "no model"
bar's Install model… button, "Generate from this layer…" for two layers at once, the Model
Designer's Run of a saved model; and every dialog's layout at its default size. The tour
(tests/desktop_entry_points.py) triggers each QAction, collects garbage, clicks Run, and records
the files, model folders and logs that appeared."""

import json
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from osgeo import gdal

from qgis_support import PLUGIN_NAME, REPO

pytestmark = pytest.mark.skipif(
    not (shutil.which("xvfb-run") and shutil.which("qgis.bin")), reason="needs xvfb-run and QGIS"
)


@pytest.fixture(scope="module")
def tour(tmp_path_factory, tiny_model_dir):
    work = tmp_path_factory.mktemp("entry_points")
    report_file = work / "report.json"
    result = subprocess.run(
        [sys.executable, str(REPO / "tests" / "desktop_entry_points.py"), "--work", str(work / "run"),
         "--model-dir", str(tiny_model_dir), "--report", str(report_file), "--timeout", "400"],
        capture_output=True, text=True, timeout=480,
    )
    assert report_file.is_file(), result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads(report_file.read_text())
    assert report["errors"] == [], report["errors"]
    return report


@pytest.mark.timeout(600)
def test_menu_check_installation_runs(tour):
    run = tour["checks"]["menu_check_installation"]
    assert run["done"] and "Model directory:" in run["log"]


@pytest.mark.timeout(600)
def test_check_installation_from_the_toolbox_opens_its_dialog_and_runs(tour):
    assert tour["checks"]["toolbox_selected"] == "copgen:checkinstallation"
    assert "toolbox_modal" not in tour["checks"], tour["checks"]["toolbox_modal"]  # an error box
    run = tour["checks"]["toolbox_check_installation"]
    assert run["done"] and "Model directory:" in run["log"]


@pytest.mark.timeout(600)
def test_check_installation_says_its_report_once_in_words(tour):
    log = tour["checks"]["menu_check_installation"]["log"]
    assert log.count("Model directory:") == 1  # not again inside the results' Python dict
    assert "AzureExecutionProvider" not in log
    # Python's version, not an executable on PATH: QGIS runs its embedded interpreter.
    assert [line for line in log.splitlines() if line.startswith("Python 3")] == [f"Python {platform.python_version()}"]


@pytest.mark.timeout(600)
def test_menu_generate_writes_its_files(tour):
    assert tour["checks"]["menu_generate"]["done"]
    assert tour["checks"]["files"]["menu_generate"] == ["A_282D_485L_3_3_seed0_dem.tif"]


@pytest.mark.timeout(600)
def test_the_layer_action_for_two_layers_keeps_both_dialogs_and_each_runs(tour):
    checks = tour["checks"]
    assert checks["layer_action_dialogs"] == 2
    assert checks["layer_A"]["done"] and checks["layer_B"]["done"]
    assert checks["files"]["layer_A"] == ["A_282D_485L_3_3_seed0_dem.tif"]
    assert checks["files"]["layer_B"] == ["B_282D_485L_3_3_seed0_dem.tif"]


@pytest.mark.timeout(600)
def test_without_a_model_the_layer_action_shows_the_no_model_offer_on_top(tour):
    bar = tour["checks"]["layer_action_without_model"]
    assert bar["shown"] == "No model yet"
    assert bar["all"] == ["COP-GEN-Beta", "No model yet"]  # the note on the layer is still there
    assert bar["cut"] is None, bar  # its text whole in the bar's one line, at the dialog's width


@pytest.mark.timeout(600)
def test_install_model_from_the_menu_and_from_the_no_model_bar_installs(tour):
    checks = tour["checks"]
    assert checks["no_model_bar_buttons"] == 1
    for entry in ("no_model_bar_install", "menu_install_model"):
        assert checks[entry]["done"], checks[entry]["log"][-2000:]
        assert checks["models"][entry] == ["cop-gen-beta"]


@pytest.mark.timeout(600)
def test_no_python_error_on_the_way(tour):
    assert tour["python_errors"] == []
    # Nor a Python warning (a deprecation, a runtime warning of the plugin's code) in the log.
    assert [w for w in tour.get("log_warnings", []) if w.startswith("Python") or PLUGIN_NAME in w] == []


@pytest.mark.timeout(600)
def test_the_model_designer_runs_a_saved_model_and_loads_its_outputs(tour):
    """tests/chain_model.py saved as .model3, opened in the Model Designer, run with its Run
    action: Generate S1 from the layer, a DEM from that S1, GDAL's warp of the DEM."""
    checks = tour["checks"]
    assert checks["modeler_model_valid"] == {"valid": True, "errors": []}
    assert checks["modeler_run"]["done"], checks["modeler_run"]["log"][-2000:]
    assert checks["modeler_files"] == ["dem.tif", "dem_wgs84.tif"]
    dem = gdal.Open(str(Path(checks["modeler_folder"]) / "dem.tif"))
    assert [c["modality"] for c in json.loads(dem.GetMetadataItem("conditions"))] == ["s1_rtc"]
    warped = gdal.Open(str(Path(checks["modeler_folder"]) / "dem_wgs84.tif"))
    assert warped.GetSpatialRef().GetAuthorityCode(None) == "4326"
    # Both model outputs loaded; the DEM styled and tagged as the plugin's DEM output.
    assert checks["modeler_layers"] == [["dem", "dem.tif", "dem"], ["dem_wgs84", "dem_wgs84.tif", None]]


@pytest.mark.timeout(600)
def test_every_copgen_dialog_shows_its_parameters_whole_at_its_default_size(tour):
    """Each algorithm of the provider (new ones too), opened as in a fresh profile, then with its
    Advanced parameters opened: no widget beyond the visible width or outside the scrolled
    column, no label or shown option cut, the minimum size within the screen. The PNGs are in
    the tour's folder (looked at when this changes)."""
    layouts = tour["checks"]["dialog_layouts"]
    assert {"copgen:generate", "copgen:installmodel", "copgen:checkinstallation"} <= set(layouts)
    for algorithm, layout in layouts.items():
        assert layout["problems"] == [], (algorithm, layout)
        assert Path(layout["png"]).stat().st_size and Path(layout["opened_png"]).stat().st_size
        assert layout["opened_size"][0] <= 1600  # the tour's screen


@pytest.mark.timeout(600)
def test_the_settings_page_shows_its_controls_whole(tour):
    layout = tour["checks"]["settings_layout"]
    assert layout["problems"] == [], layout
    assert Path(layout["png"]).stat().st_size
