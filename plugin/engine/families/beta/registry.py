"""The four COP-GEN-Beta modalities: one record each, in the model's order (index 0..3).

This registry is pure data. Whatever differs between modalities is a field here, and every
layer looks it up instead of branching on the key: geo picks the rendering and the condition
reader by ``rendering`` (one table in each module), the CLI builds its choices and help from
the keys and labels, QGIS its parameter labels, channel parameters and layer styles.
Adding a modality means one record here (and, for a new kind of rendering, its functions in
geo), nothing else.
"""

from dataclasses import dataclass
from typing import Optional


@dataclass(frozen=True)
class Modality:
    """What one modality is.

    key: the name in requests, file names and tags. index: its slot in the network input.
    label / short_label: words for users. bands: the physical bands its rendering is made of,
    in rendering order, as usually described in files. channels: one name per band for faces
    that ask for each band separately (QGIS parameters), with channel_labels. output_bands:
    the band descriptions of a generated RGB output. rendering: how geo renders and reads it
    ("hillshade", "s1", "s2"). reflectance: whether outputs may be written as UInt16
    reflectance (bands B04, B03, B02). style / reflectance_style: QML styles of outputs
    (paths under resources/). source_nodata: the nodata value assumed for physical rasters
    that declare none. reading_options: the ConditionSpec options that apply to it.
    note: what a user must know about outputs (appended to descriptions).
    """

    key: str
    index: int
    label: str
    short_label: str
    bands: tuple
    channels: tuple
    channel_labels: tuple
    output_bands: tuple
    rendering: str
    reflectance: bool = False
    style: str = "styles/rgb_uint8.qml"
    reflectance_style: Optional[str] = None
    source_nodata: Optional[float] = None
    reading_options: tuple = ()
    note: str = ""


_S2_COMMON = dict(
    bands=("B04", "B03", "B02"),
    channels=("RED", "GREEN", "BLUE"),
    channel_labels=("Sentinel-2 B04 (red)", "Sentinel-2 B03 (green)", "Sentinel-2 B02 (blue)"),
    output_bands=("R (B04)", "G (B03)", "B (B02)"),
    rendering="s2",
    reflectance=True,
    reflectance_style="styles/s2_reflectance.qml",
    source_nodata=0,  # ESA's NO_DATA DN
    reading_options=("s2_offset",),
)

REGISTRY = (
    Modality(
        key="dem", index=0,
        label="DEM hillshade (Copernicus GLO-30)", short_label="DEM hillshade",
        bands=("DEM",), channels=("ELEVATION",), channel_labels=("DEM elevation",),
        output_bands=("R (hillshade)", "G (hillshade)", "B (hillshade)"),
        rendering="hillshade", style="styles/dem_hillshade.qml",
        note="a hillshade rendering, not elevations",
    ),
    Modality(
        key="s1_rtc", index=1,
        label="Sentinel-1 RTC (VV, VV+VH, VH)", short_label="S1 RTC",
        bands=("VV", "VH"), channels=("VV", "VH"), channel_labels=("Sentinel-1 VV", "Sentinel-1 VH"),
        output_bands=("R (VV)", "G (VV+VH)", "B (VH)"),
        rendering="s1", source_nodata=-32768.0, reading_options=("s1_in_db",),
    ),
    Modality(key="s2_l1c", index=2, label="Sentinel-2 L1C true colour", short_label="S2 L1C", **_S2_COMMON),
    Modality(key="s2_l2a", index=3, label="Sentinel-2 L2A true colour", short_label="S2 L2A", **_S2_COMMON),
)

MODALITIES = tuple(record.key for record in REGISTRY)
BY_KEY = {record.key: record for record in REGISTRY}
LABELS = {record.key: record.label for record in REGISTRY}
REFLECTANCE_MODALITIES = tuple(record.key for record in REGISTRY if record.reflectance)

LATENT_CHANNELS = 4
LATENT_SIZE = 32  # one model tile: 32 x 32 latents = 256 x 256 px at 10 m
TILE_PIXELS = 256
VAE_SCALE = 0.18215
PIXEL_SIZE_M = 10.0


def get_modality(key, field=None):
    """The record of ``key``; InputError (about ``field``) listing the valid keys."""
    try:
        return BY_KEY[key]
    except (KeyError, TypeError):
        from ...errors import InputError

        raise InputError(f"unknown modality {key!r}; expected one of {', '.join(MODALITIES)}", field) from None


def modality_index(name, field=None):
    """Index of a modality by key; raises InputError listing the valid keys."""
    return get_modality(name, field).index


def describe_choices():
    """"key (label)" for every modality, for help texts."""
    return "; ".join(f"{record.key} ({record.label})" for record in REGISTRY)
