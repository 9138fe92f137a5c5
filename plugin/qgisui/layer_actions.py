""""COP-GEN-Beta > Generate from this layer..." in the context menu of raster layers.

The entry opens the Generate dialog with the layer set as the condition whose modality, bands and
source (physical units or rendered thumbnail) are guessed from band names, count and data type;
every guess stays editable in the dialog.
"""

import re
from dataclasses import dataclass
from pathlib import Path

from qgis.core import Qgis, QgsMapLayerType, QgsProject
from qgis.PyQt import sip
from qgis.PyQt.QtWidgets import QAction

from ..engine.modalities import MODALITIES
from .condition_names import SOURCE, SOURCE_OPTIONS, channel_parameters
from .output_layers import SHORT_NAMES
from .resources import plugin_icon

GENERATE_ALGORITHM = "copgen:generate"
MENU = "COP-GEN-Beta"
ACTION_TEXT = "Generate from this layer…"

_S2_BAND = re.compile(r"(?<![a-z0-9])b0?(\d{1,2}a?)(?![0-9])", re.IGNORECASE)
_ELEVATION = re.compile(r"elevation|height|altitude|\bdem\b|\bdsm\b|\bdtm\b", re.IGNORECASE)
# Name hints for 8-bit RGB thumbnails, which carry no band names; first match wins.
_THUMBNAIL_HINTS = (
    ("dem", re.compile(r"dem|hillshade|elevation", re.IGNORECASE)),
    ("s1_rtc", re.compile(r"s1|sar|rtc|sentinel-?1", re.IGNORECASE)),
    ("s2_l1c", re.compile(r"l1c", re.IGNORECASE)),
    ("s2_l2a", re.compile(r"l2a|s2|sentinel-?2", re.IGNORECASE)),
)


@dataclass(frozen=True)
class ModalityGuess:
    modality: str  # a MODALITIES key
    bands: tuple  # 1-based band numbers in the order the modality needs; () = let the user pick
    source: str  # "physical" or "thumbnail"
    reason: str  # shown to the user


def raster_facts(layer):
    """(band descriptions, "" where a band has none; the modality tag this plugin writes into
    generated GeoTIFFs, "" if absent), as GDAL reads them from the layer's file."""
    from osgeo import gdal

    try:
        dataset = gdal.Open(layer.source())
    except RuntimeError:  # when GDAL exceptions are on
        dataset = None
    if dataset is None:
        return [""] * layer.bandCount(), ""
    names = [dataset.GetRasterBand(band).GetDescription() for band in range(1, dataset.RasterCount + 1)]
    return names, dataset.GetMetadataItem("modality") or ""


def guess_modality(layer):
    """The most plausible condition a raster layer holds, as a ModalityGuess."""
    names, tagged = raster_facts(layer)
    hint_text = f"{layer.name()} {Path(layer.source().split('|')[0]).name}"
    eight_bit = layer.dataProvider().dataType(1) == Qgis.DataType.Byte
    return guess_from_bands(names, eight_bit, hint_text, tagged)


def guess_from_bands(names, eight_bit, hint_text="", tagged=""):
    """Guess from band descriptions (list, "" where unnamed), whether band 1 is 8-bit, the layer
    and file name (which thumbnails and Sentinel product names carry) and the modality tag of
    generated GeoTIFFs."""
    count = len(names)
    if tagged in MODALITIES:  # a generated layer: an 8-bit rendering, or S2 reflectance DN
        source = "thumbnail" if eight_bit else "physical"
        return ModalityGuess(tagged, (1, 2, 3), source, "a generated layer")
    s2_bands = {_s2_band_key(name): index + 1 for index, name in enumerate(names) if _s2_band_key(name)}
    if {"B04", "B03", "B02"} <= set(s2_bands):
        level = _s2_level(hint_text, "B10" in s2_bands, count)
        bands = (s2_bands["B04"], s2_bands["B03"], s2_bands["B02"])
        source = "thumbnail" if eight_bit else "physical"  # reflectance needs more than 8 bits
        return ModalityGuess(level, bands, source, "band names B04, B03, B02")
    upper = [name.upper() for name in names]
    if "VV" in upper and "VH" in upper:
        bands = (upper.index("VV") + 1, upper.index("VH") + 1)
        return ModalityGuess("s1_rtc", bands, "physical", "band names VV, VH")
    if eight_bit and count == 1:  # elevations need more than 8 bits: a grey hillshade rendering
        return ModalityGuess("dem", (1,), "thumbnail", "one 8-bit band: a hillshade thumbnail")
    if count == 1 or any(_ELEVATION.search(name) for name in names):
        band = next((i + 1 for i, name in enumerate(names) if _ELEVATION.search(name)), 1)
        return ModalityGuess("dem", (band,), "physical", "one band" if count == 1 else f"elevation in band {band}")
    if eight_bit and count in (3, 4):  # RGB or RGBA renderings
        modality = next((key for key, pattern in _THUMBNAIL_HINTS if pattern.search(hint_text)), "s2_l2a")
        return ModalityGuess(modality, (1, 2, 3), "thumbnail", "an 8-bit RGB thumbnail")
    if count in (12, 13):  # Sentinel-2 band stacks in band order B01, B02, B03, B04, ...
        level = _s2_level(hint_text, count == 13, count)
        return ModalityGuess(level, (4, 3, 2), "physical", f"{count} bands in Sentinel-2 order")
    if count == 2:
        return ModalityGuess("s1_rtc", (1, 2), "physical", "2 bands: VV, VH")
    return ModalityGuess("s2_l2a", (), "physical", f"{count} unnamed bands: pick the modality and bands")


def _s2_band_key(name):
    """"B04" for descriptions like B4, B04, "B04 (red)"; "" when the name holds no S2 band."""
    match = _S2_BAND.search(name)
    if not match:
        return ""
    number = match.group(1).upper()
    if number.endswith("A"):
        return "B8A" if number == "8A" else ""
    return f"B{int(number):02d}"


def _s2_level(hint_text, has_b10, count):
    """L1C or L2A: product names say so; else L1C has B10 (13 bands), L2A drops it (12)."""
    if re.search(r"l1c", hint_text, re.IGNORECASE):
        return "s2_l1c"
    if re.search(r"l2a", hint_text, re.IGNORECASE):
        return "s2_l2a"
    return "s2_l1c" if has_b10 or count == 13 else "s2_l2a"


def generate_parameters(layer, guess):
    """Initial copgen:generate parameters: the layer as the guessed condition (with its bands
    where they fill the modality's channels: not an S1 thumbnail's R, G, B, which the
    engine reads by itself), every other modality to generate."""
    key = guess.modality.upper()
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


def open_generate_dialog(layer):
    """Open the Generate dialog set up for ``layer``; returns it, or None without the algorithm."""
    import processing

    guess = guess_modality(layer)
    dialog = processing.createAlgorithmDialog(GENERATE_ALGORITHM, generate_parameters(layer, guess))
    if dialog is None:
        return None
    dialog.messageBar().pushMessage(
        "COP-GEN-Beta",
        f"“{layer.name()}” set as the {SHORT_NAMES[guess.modality]} condition ({guess.reason}); edit below if wrong.",
        Qgis.MessageLevel.Info,
        0,
    )
    dialog.show()
    return dialog


class LayerActions:
    """Owns the context-menu action: offered on file-based raster layers present and to come."""

    def __init__(self, iface):
        self.iface = iface
        self.action = None
        self.dialog = None

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
        if self.dialog is not None and not sip.isdeleted(self.dialog):  # closed dialogs delete themselves
            self.dialog.close()
        self.dialog = None
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
            dialog = open_generate_dialog(layer)
            if dialog is None:  # the provider holds only "Check installation" while packages are missing
                self.iface.messageBar().pushWarning(
                    "COP-GEN-Beta",
                    "generating needs the missing Python packages: Raster > COP-GEN-Beta > Python packages…",
                )
            self.dialog = dialog
