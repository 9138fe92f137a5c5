"""The plugin in a real QgsApplication: load, register the provider, unload, reload."""

import importlib
import sys

import pytest

from qgis_support import PLUGIN_NAME, install_plugin, qgis_application

pytest.importorskip("qgis.core")


@pytest.fixture(scope="module")
def plugin_package(tmp_path_factory):
    qgis_application()
    plugin_dir = install_plugin(tmp_path_factory.mktemp("home"))
    sys.path.insert(0, str(plugin_dir.parent))
    try:
        yield importlib.import_module(PLUGIN_NAME)
    finally:
        sys.path.remove(str(plugin_dir.parent))


@pytest.fixture
def iface():
    # The provider needs no GUI; a mock stands in for the desktop's QgisInterface.
    from unittest import mock

    from qgis.gui import QgisInterface

    return mock.MagicMock(spec=QgisInterface)


def copgen_providers():
    from qgis.core import QgsApplication

    return [p for p in QgsApplication.processingRegistry().providers() if p.id() == "copgen"]


def test_load_registers_provider_and_unload_removes_it(plugin_package, iface):
    from qgis.core import QgsApplication

    plugin = plugin_package.classFactory(iface)
    plugin.initGui()
    try:
        assert len(copgen_providers()) == 1
        registry = QgsApplication.processingRegistry()
        algorithm = registry.algorithmById("copgen:checkinstallation")
        assert algorithm is not None
        assert algorithm.group() and algorithm.shortHelpString()
    finally:
        plugin.unload()
    assert copgen_providers() == []
    assert QgsApplication.processingRegistry().algorithmById("copgen:checkinstallation") is None


def test_reloading_leaves_one_provider(plugin_package, iface):
    for _ in range(3):
        plugin = plugin_package.classFactory(iface)
        plugin.initProcessing()
        plugin.initGui()  # initGui after initProcessing must not add a second provider
        assert len(copgen_providers()) == 1
        plugin.unload()
    assert copgen_providers() == []


def test_check_installation_runs_through_processing(plugin_package, iface):
    import processing

    plugin = plugin_package.classFactory(iface)
    plugin.initGui()
    try:
        result = processing.run("copgen:checkinstallation", {})
    finally:
        plugin.unload()
    assert "onnxruntime" in result["REPORT"]
    assert "CPUExecutionProvider" in result["PROVIDERS"].split(",")
    assert result["MISSING"] == ""
