"""Each entry point of the plugin's own dialogs runs what it shows, in a real QGIS desktop: the
Raster > COP-GEN-Beta menu's Generate…, Install model… and Check installation…, the "no model"
bar's Install model… button, and "Generate from this layer…" for two layers at once. The tour
(tests/desktop_entry_points.py) triggers each QAction, collects garbage, clicks Run, and records
the files, model folders and logs that appeared."""

import json
import platform
import shutil
import subprocess
import sys

import pytest

from qgis_support import REPO

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
