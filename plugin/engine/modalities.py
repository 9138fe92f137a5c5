"""The four COP-GEN-Beta modalities, in the model's order (index 0..3 everywhere)."""

MODALITIES = ("dem", "s1_rtc", "s2_l1c", "s2_l2a")

LABELS = {
    "dem": "DEM hillshade (Copernicus GLO-30)",
    "s1_rtc": "Sentinel-1 RTC (VV, VV+VH, VH)",
    "s2_l1c": "Sentinel-2 L1C true colour",
    "s2_l2a": "Sentinel-2 L2A true colour",
}

LATENT_CHANNELS = 4
LATENT_SIZE = 32  # one model tile: 32 x 32 latents = 256 x 256 px at 10 m
TILE_PIXELS = 256
VAE_SCALE = 0.18215
PIXEL_SIZE_M = 10.0


def modality_index(name):
    """Index of a modality by key; raises InputError listing the valid keys."""
    from .errors import InputError

    try:
        return MODALITIES.index(name)
    except ValueError:
        raise InputError(
            f"unknown modality {name!r}; expected one of {', '.join(MODALITIES)}"
        ) from None
