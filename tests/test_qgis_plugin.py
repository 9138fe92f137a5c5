"""The plugin in a real QgsApplication: load, register the provider, unload, reload."""

import ast
import enum
import importlib
import sys

import pytest

from qgis_support import PLUGIN_NAME, REPO, install_plugin, qgis_application

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
    assert "CPUExecutionProvider" in result["PROVIDERS"].split(",")
    assert result["MISSING"] == ""


def test_unload_withdraws_the_missing_packages_warning(plugin_package, iface, monkeypatch):
    from qgis.gui import QgsMessageBar
    from qgis.PyQt.QtWidgets import QPushButton

    dependencies = sys.modules[f"{PLUGIN_NAME}.plugin.dependencies"]
    without_onnx = [
        dependencies.PackageStatus(status.requirement, "" if status.requirement.module == "onnx" else status.version)
        for status in dependencies.check()
    ]
    monkeypatch.setattr(dependencies, "check", lambda: without_onnx)
    bar = QgsMessageBar()
    iface.messageBar.return_value = bar
    plugin = plugin_package.classFactory(iface)
    plugin.initGui()
    (message,) = bar.items()
    assert "onnx" in message.text()
    button = message.findChild(QPushButton)
    assert button.receivers(button.clicked) == 1  # the Install button opens the plugin's dialog
    plugin.unload()
    assert bar.items() == []
    assert button.receivers(button.clicked) == 0  # nothing left pointing into the unloaded plugin


def unscoped_enum_values(path):
    """Each ``Class.Member`` in ``path`` whose Member is an enum value of a Qt or QGIS class
    reached through the class instead of through its enum: Qt6 (and QGIS built on it) knows
    only the scoped form, ``Class.Enum.Member``, which QGIS 3.22 on Qt5 takes too."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    imported = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("qgis."):
            module = importlib.import_module(node.module)
            imported.update({alias.asname or alias.name: getattr(module, alias.name) for alias in node.names})
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in imported:
            owner = imported[node.value.id]
            value = getattr(owner, node.attr, None)
            is_enum = isinstance(value, enum.Enum) or type(type(value)).__name__ == "enumtype"  # Python or sip enum
            if is_enum and type(value) is not owner:
                found.append(f"{path.relative_to(REPO)}:{node.lineno}: {node.value.id}.{node.attr}")
    return found


def test_qt_and_qgis_enums_are_fully_scoped(plugin_package):
    sources = sorted((REPO / "plugin" / "qgisui").rglob("*.py")) + [REPO / "scripts" / "screenshots.py"]
    assert [use for path in sources for use in unscoped_enum_values(path)] == []


def test_table_fields_are_made_from_qmetatype():
    qgis_application()
    from qgis.PyQt.QtCore import QMetaType

    from plugin.qgisui.compat import field

    for kind in (QMetaType.Type.Int, QMetaType.Type.Double, QMetaType.Type.QString):
        assert int(field("name", kind).type()) == int(kind)


def test_help_texts_hold_no_word_the_dialog_takes_for_html(plugin_package, iface):
    """The dialog shows shortHelpString as HTML: "<folder>/x.pth" would show as "/x.pth"."""
    import re

    from qgis.core import QgsApplication

    plugin = plugin_package.classFactory(iface)
    plugin.initGui()
    try:
        (provider,) = copgen_providers()
        for algorithm in provider.algorithms():
            assert not re.search(r"<[A-Za-z/!][^>]*>", algorithm.shortHelpString()), algorithm.id()
    finally:
        plugin.unload()
    assert QgsApplication.processingRegistry().providerById("copgen") is None
