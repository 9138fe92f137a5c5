"""What a raster layer holds, guessed from its band names, count, data type, name and the tags
this plugin writes into its outputs: the one guess behind the layer context action, the
"from the layer" defaults of the algorithms and Prepare's and the chain's modality."""

import re
from dataclasses import dataclass
from pathlib import Path

from qgis.core import Qgis

from ..engine.families.beta.registry import BY_KEY, MODALITIES

_S2_BAND = re.compile(r"(?<![a-z0-9])b0?(\d{1,2}a?)(?![0-9])", re.IGNORECASE)
_ELEVATION = re.compile(r"elevation|height|altitude|\bdem\b|\bdsm\b|\bdtm\b", re.IGNORECASE)
S2_BANDS = BY_KEY["s2_l2a"].bands  # ("B04", "B03", "B02"), as the registry names them
S1_BANDS = BY_KEY["s1_rtc"].bands  # ("VV", "VH")
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
    # the bands are the sensor's usual order assumed for a file without band names: the engine
    # reads such a file by the same rule and says so in the run's log, so it is left to it
    assumed_order: bool = False


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
    if set(S2_BANDS) <= set(s2_bands):
        level = _s2_level(hint_text, "B10" in s2_bands, count)
        bands = tuple(s2_bands[band] for band in S2_BANDS)
        source = "thumbnail" if eight_bit else "physical"  # reflectance needs more than 8 bits
        return ModalityGuess(level, bands, source, f"band names {', '.join(S2_BANDS)}")
    upper = [name.upper() for name in names]
    if set(S1_BANDS) <= set(upper):
        bands = tuple(upper.index(band) + 1 for band in S1_BANDS)
        return ModalityGuess("s1_rtc", bands, "physical", f"band names {', '.join(S1_BANDS)}")
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
        return ModalityGuess(level, (4, 3, 2), "physical", f"{count} bands in Sentinel-2 order", assumed_order=True)
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


# -- COP-GEN: which sensor a raster is -----------------------------------------------------------

# COP-GEN-Beta's guesses that are a COP-GEN sensor too (in physical units)
_SENSOR_OF_MODALITY = {"s2_l2a": "s2l2a", "s2_l1c": "s2l1c", "s1_rtc": "s1rtc", "dem": "dem"}
_CLASS_HINTS = (
    ("lulc", re.compile(r"lulc|land.?cover|landuse|land.?use", re.IGNORECASE)),
    ("cloud", re.compile(r"cloud", re.IGNORECASE)),
)


@dataclass(frozen=True)
class SensorGuess:
    sensor: str  # a COP-GEN sensor: s2l2a, s2l1c, s1rtc, dem, lulc, cloud; None: recognised, not one
    reason: str  # shown to the user


def guess_sensor(layer):
    """The COP-GEN sensor a raster layer most plausibly holds (a SensorGuess), None when it looks
    like none (an 8-bit rendering, an unnamed stack of another band count)."""
    names, tagged = raster_facts(layer)
    hint_text = f"{layer.name()} {Path(layer.source().split('|')[0]).name}"
    eight_bit = layer.dataProvider().dataType(1) == Qgis.DataType.Byte
    return guess_sensor_from_bands(names, eight_bit, hint_text, tagged)


def guess_sensor_from_bands(names, eight_bit, hint_text="", tagged=""):
    """As :func:`guess_from_bands`, for COP-GEN's sensors: a generated COP-GEN layer by its tag,
    class maps (one 8-bit band) by their name, the rest as COP-GEN-Beta guesses them where it
    reads physical units."""
    from ..engine.families.copgen.registry import BY_KEY as COPGEN_KEYS, SENSORS
    from ..geo.band_names import sensor_bands
    from .physical_names import SENSOR_LABELS

    if tagged in COPGEN_KEYS and COPGEN_KEYS[tagged].has_vae:
        sensor = COPGEN_KEYS[tagged].sensor
        if len(SENSORS[sensor]) > 1:  # one band group: a condition is the sensor's whole file
            return SensorGuess(None, f"one band group of a generated {SENSOR_LABELS[sensor]}; that condition is "
                                     f"one file with all {len(sensor_bands(sensor))} bands")
        return SensorGuess(sensor, "a generated layer")
    if eight_bit and len(names) == 1:
        sensor = next((sensor for sensor, pattern in _CLASS_HINTS if pattern.search(hint_text)), None)
        return SensorGuess(sensor, "one 8-bit band of class codes named so") if sensor else None
    guess = guess_from_bands(names, eight_bit, hint_text, tagged)
    if guess.source != "physical" or guess.modality not in _SENSOR_OF_MODALITY or not guess.bands:
        return None
    return SensorGuess(_SENSOR_OF_MODALITY[guess.modality], guess.reason)
