"""The installed plugin as `qgis_process` sees it (build.py install into a throwaway profile)."""

import json
import shutil

import pytest

from qgis_support import PLUGIN_NAME, QGIS_PROCESS, install_plugin, qgis_process

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
