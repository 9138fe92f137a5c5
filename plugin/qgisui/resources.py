"""Paths of the plugin's bundled resources (icons, styles, sample data)."""

from pathlib import Path

RESOURCES = Path(__file__).resolve().parents[2] / "resources"


def resource_path(name):
    return RESOURCES / name


def plugin_icon():
    from qgis.PyQt.QtGui import QIcon

    return QIcon(str(resource_path("icon.png")))
