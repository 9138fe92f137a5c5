"""The plugin object QGIS creates through ``classFactory``."""

from qgis.core import QgsApplication

from .provider import CopGenProvider


class CopGenPlugin:
    def __init__(self, iface):
        self.iface = iface
        self.provider = None

    def initProcessing(self):  # noqa: N802 (QGIS's name)
        # qgis_process calls this alone (no GUI); the desktop calls it through initGui.
        if self.provider is None:
            self.provider = CopGenProvider()
            QgsApplication.processingRegistry().addProvider(self.provider)

    def initGui(self):  # noqa: N802
        self.initProcessing()

    def unload(self):
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
