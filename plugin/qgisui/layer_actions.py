""""COP-GEN-Beta > Generate from this layer..." in the context menu of raster layers.

The entry opens the Generate dialog with the layer set as the condition whose modality, bands and
source (physical units or rendered thumbnail) are guessed from band names, count and data type;
every guess stays editable in the dialog.
"""

from qgis.core import Qgis, QgsMapLayerType, QgsProject
from qgis.PyQt.QtWidgets import QAction

from ..engine.errors import CopGenError
from ..engine.families import BETA, COPGEN
from ..engine.families.beta.registry import MODALITIES
from .condition_names import SOURCE, SOURCE_OPTIONS, channel_parameters, parameter_name
from .dialogs import open_algorithm_dialog
from .first_run import push_below_offer
from . import settings
from .layer_guess import guess_modality, guess_sensor
from .physical_names import GENERATE, GENERATE_ALGORITHMS, SENSOR_LABELS, family_of_folder, sensor_parameter
from .output_layers import SHORT_NAMES
from .resources import plugin_icon

GENERATE_ALGORITHM = GENERATE_ALGORITHMS[BETA][0]
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


def physical_generate_parameters(layer, guess):
    """Initial copgen:generatephysical parameters: the layer as the guessed sensor's condition,
    every modality of the other sensors to generate."""
    from ..engine.families.copgen.registry import MODALITIES as COPGEN_MODALITIES, SENSORS

    return {
        sensor_parameter(guess.sensor): layer.id(),
        GENERATE: [index for index, key in enumerate(COPGEN_MODALITIES) if key not in SENSORS[guess.sensor]],
    }


def generate_family():
    """The family of the model the "Model" setting names: its folder's model.json where it is
    installed, else the registry's word for it (COP-GEN-Beta when neither says)."""
    found = family_of_folder(settings.model_dir())
    if found:
        return found
    try:
        from ..engine.model_registry import load_registry

        return load_registry()["models"].get(settings.model_name(), {}).get("family", BETA)
    except CopGenError:  # a registry that cannot be read: the dialog says what is wrong
        return BETA


def open_generate_dialog(layer=None):
    """Open the Generate dialog of the "Model" setting's family (COP-GEN-Beta's Generate
    modalities, or Generate physical layers for a COP-GEN model), set up for ``layer`` when
    given (the dialog itself offers Install model where no model is installed). Returns it, or
    None without the algorithm."""
    if generate_family() == COPGEN:
        return open_physical_dialog(layer)
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


def open_physical_dialog(layer=None):
    """Generate physical layers (COP-GEN), with ``layer`` set as the sensor it looks like."""
    guess = guess_sensor(layer) if layer is not None else None
    algorithm_id = GENERATE_ALGORITHMS[COPGEN][0]
    known = guess is not None and guess.sensor is not None
    dialog = open_algorithm_dialog(algorithm_id, physical_generate_parameters(layer, guess) if known else None)
    if dialog is None or layer is None:
        return dialog
    if guess is None:
        text = f"“{layer.name()}” does not look like a COP-GEN condition; set it below as the sensor it holds."
    elif not known:
        text = f"“{layer.name()}” is {guess.reason}: set that file below."
    else:
        text = f"“{layer.name()}” set as the {SENSOR_LABELS[guess.sensor]} condition ({guess.reason}); edit below if wrong."
    push_below_offer(dialog, "COP-GEN", text, Qgis.MessageLevel.Info)
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
