"""Names of the Processing parameters that describe a condition raster.

Shared by the algorithms and the layer context action, which presets them and must not import
the algorithms (they need packages that may still be missing while the plugin loads).

A modality's own condition is the parameter parameter_name(modality), e.g. "S2_L2A". A condition
declared with the prefix P (e.g. "S2_L2A_", or "" where one input raster's modality
is chosen by another parameter) has the parameters P + "SOURCE", P + a channel name for each band
its modality is rendered from (e.g. "S2_L2A_RED"), P + "IN_DB" (Sentinel-1) and P + "DN_OFFSET"
(Sentinel-2).
"""

from ..engine.families.beta.registry import REGISTRY

SOURCE = "SOURCE"
S1_IN_DB = "IN_DB"
S2_DN_OFFSET = "DN_OFFSET"
# The values of P + SOURCE, in the order of plugin.geo.conditions.SOURCES (not imported here:
# it needs rasterio).
SOURCE_OPTIONS = ("physical", "thumbnail")

# One single-band parameter per channel, in the rendering's order: a multiple band parameter
# would hand the bands back sorted (B02, B03, B04), whatever order the user ticked them in.
# (Both from the modality registry.)
CHANNELS = {record.key: record.channels for record in REGISTRY}
CHANNEL_BANDS = {
    channel: label for record in REGISTRY for channel, label in zip(record.channels, record.channel_labels)
}


def parameter_name(modality):
    """The parameter key of a modality's condition (and the prefix of its options, its output
    OUTPUT_<key>): "s1_rtc" -> "S1_RTC"."""
    return modality.upper()


def channel_parameters(prefix, modality):
    """The band parameters of ``modality``'s channels, in rendering order."""
    return [prefix + channel for channel in CHANNELS[modality]]
