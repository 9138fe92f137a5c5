"""COP-GEN-Beta for QGIS: the plugin entry point QGIS looks for."""


def classFactory(iface):  # noqa: N802 (QGIS's name)
    from .plugin.qgisui.main import CopGenPlugin

    return CopGenPlugin(iface)
