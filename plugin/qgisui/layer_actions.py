""""COP-GEN-Beta > Generate from this layer..." in the context menu of raster layers.

The entry opens the Generate dialog with the layer set as the condition whose modality, bands and
source (physical units or rendered thumbnail) are guessed from band names, count and data type;
every guess stays editable in the dialog.
"""

from qgis.core import Qgis, QgsMapLayerType, QgsProject
from qgis.PyQt.QtWidgets import QAction

from ..engine.families.beta.registry import MODALITIES
from .condition_names import SOURCE, SOURCE_OPTIONS, channel_parameters, parameter_name
from .dialogs import open_algorithm_dialog
from .first_run import push_below_offer
from .layer_guess import guess_modality
from .output_layers import SHORT_NAMES
from .resources import plugin_icon

GENERATE_ALGORITHM = "copgen:generate"
CHECK_INSTALLATION_ALGORITHM = "copgen:checkinstallation"
MENU = "COP-GEN-Beta"
ACTION_TEXT = "Generate from this layer…"


def generate_parameters(layer, guess):
    """Initial copgen:generate parameters: the layer as the guessed condition (with its bands
    where they fill the modality's channels: not an S1 thumbnail's R, G, B, which the
    engine reads by itself), every other modality to generate."""
    key = parameter_name(guess.modality)
    parameters = {
        key: layer.id(),
        f"{key}_{SOURCE}": SOURCE_OPTIONS.index(guess.source),
        "GENERATE": [index for index, modality in enumerate(MODALITIES) if modality != guess.modality],
    }
    channels = channel_parameters(f"{key}_", guess.modality)
    if len(guess.bands) == len(channels):
        parameters.update(zip(channels, guess.bands))
    return parameters


def is_generation_source(layer):
    """File-based raster layers: the engine reads conditions with GDAL, not web services."""
    return (
        layer is not None
        and layer.type() == QgsMapLayerType.RasterLayer
        and layer.providerType() == "gdal"
        and layer.isValid()
    )


def open_generate_dialog(layer=None):
    """Open the Generate dialog, set up for ``layer`` when given (the dialog itself offers Install
    model where no model is installed). Returns it, or None without the algorithm."""
    guess = guess_modality(layer) if layer is not None else None
    dialog = open_algorithm_dialog(GENERATE_ALGORITHM, generate_parameters(layer, guess) if guess else None)
    if dialog is None:
        return None
    if guess is not None:
        push_below_offer(
            dialog,
            "COP-GEN-Beta",
            f"“{layer.name()}” set as the {SHORT_NAMES[guess.modality]} condition ({guess.reason}); "
            "edit below if wrong.",
            Qgis.MessageLevel.Info,
        )
    return dialog


class LayerActions:
    """Owns the context-menu action: offered on file-based raster layers present and to come."""

    def __init__(self, iface):
        self.iface = iface
        self.action = None

    def install(self):
        self.action = QAction(plugin_icon(), ACTION_TEXT)
        self.action.triggered.connect(self.generate_from_current_layer)
        # allLayers=False: offered per layer, so web and virtual rasters (unreadable by the engine) never get it.
        self.iface.addCustomActionForLayerType(self.action, MENU, QgsMapLayerType.RasterLayer, False)
        QgsProject.instance().layersAdded.connect(self.offer_for)
        self.offer_for(QgsProject.instance().mapLayers().values())

    def unload(self):
        if self.action is None:
            return
        QgsProject.instance().layersAdded.disconnect(self.offer_for)
        self.iface.removeCustomActionForLayerType(self.action)
        self.action.deleteLater()
        self.action = None

    def offer_for(self, layers):
        for layer in layers:
            if is_generation_source(layer):
                self.iface.addCustomActionForLayer(self.action, layer)

    def generate_from_current_layer(self):
        # The layer tree makes the right-clicked layer current before showing its menu.
        layer = self.iface.activeLayer()
        if is_generation_source(layer):
            if open_generate_dialog(layer) is None:  # the provider holds only "Check installation" while packages are missing
                self.iface.messageBar().pushWarning(
                    "COP-GEN-Beta",
                    "generating needs the missing Python packages: Raster > COP-GEN-Beta > Python packages…",
                )
