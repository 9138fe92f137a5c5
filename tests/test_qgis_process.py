"""The installed plugin as `qgis_process` sees it (build.py install into a throwaway profile)."""

import json
import shutil
import subprocess

import pytest

from qgis_support import PLUGIN_NAME, QGIS_PROCESS, headless_env, install_plugin, qgis_process

pytestmark = pytest.mark.skipif(shutil.which(QGIS_PROCESS) is None, reason="Debian's qgis_process is not installed")


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    home = tmp_path_factory.mktemp("qgis-home")
    install_plugin(home)
    return home


def test_plugin_is_enabled_in_profile(home):
    listing = qgis_process(home, "plugins")
    assert listing.returncode == 0, listing.stderr
    enabled = [line for line in listing.stdout.splitlines() if PLUGIN_NAME in line]
    assert enabled and enabled[0].lstrip().startswith("*"), listing.stdout


def test_list_shows_provider_and_algorithms(home):
    listing = qgis_process(home, "list")
    assert listing.returncode == 0, listing.stderr
    assert "COP-GEN-Beta" in listing.stdout
    assert "copgen:checkinstallation" in listing.stdout


def test_run_check_installation(home):
    run = qgis_process(home, "--json", "run", "copgen:checkinstallation")
    assert run.returncode == 0, run.stderr + run.stdout
    results = json.loads(run.stdout[run.stdout.index("{"):])["results"]
    assert "CPUExecutionProvider" in results["PROVIDERS"]
    assert results["MISSING"] == ""


def _system_python_has(*modules):
    probe = subprocess.run(["/usr/bin/python3", "-c", "import " + ", ".join(modules)], capture_output=True)
    return probe.returncode == 0


@pytest.mark.timeout(120)
def test_check_installation_lists_what_is_missing_where_qgis_python_lacks_the_packages(home):
    """The README's first step without the GUI: QGIS's own Python, none of the venv's packages
    (onnx, onnxruntime). Check installation runs, lists them and prints the pip command."""
    if _system_python_has("onnx") and _system_python_has("onnxruntime"):
        pytest.skip("this system's Python has onnx and onnxruntime: nothing is missing")
    env = headless_env(home)
    env.pop("PYTHONPATH")  # only what QGIS's interpreter has
    run = subprocess.run([QGIS_PROCESS, "--json", "run", "copgen:checkinstallation"], capture_output=True,
                         text=True, env=env, timeout=100)
    assert run.returncode == 0, run.stderr + run.stdout
    assert "Traceback" not in run.stderr + run.stdout
    results = json.loads(run.stdout[run.stdout.index("{"):])["results"]
    missing = {name for name in ("onnx", "onnxruntime") if not _system_python_has(name)}
    assert missing <= set(results["MISSING"].replace(",", " ").split()), results["MISSING"]
    assert "-m pip install" in run.stdout
