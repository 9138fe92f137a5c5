"""The ``copgen`` Processing provider."""

from qgis.core import QgsProcessingProvider

from .. import __version__
from .algorithms import algorithm_classes
from .resources import plugin_icon


class CopGenProvider(QgsProcessingProvider):
    def id(self):
        return "copgen"

    def name(self):
        return "COP-GEN-Beta"

    def longName(self):  # noqa: N802
        return f"COP-GEN-Beta generative Copernicus imagery ({__version__})"

    def icon(self):
        return plugin_icon()

    def loadAlgorithms(self):  # noqa: N802
        for algorithm_class in algorithm_classes():
            self.addAlgorithm(algorithm_class())
