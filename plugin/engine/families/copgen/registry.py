"""The twelve COP-GEN modalities: one record each, in NETWORK order.

The official config is an ``ml_collections.ConfigDict``, which sorts its keys, so the network
order (index i = ``patch_embeds.i``, ``decoder_preds.i``, time token i) is alphabetical, not
the order written in the config file. Band orders follow the VAE's channels, which differ
from the key names (the 10 m group is B04, B03, B02, B08; S1 is vv then vh).

Pure data: every other module of the family looks shapes, scales, bands and units up here.
"""

from dataclasses import dataclass
from typing import Optional

from ...errors import InputError

LATENT_CHANNELS = 8
PATCH_SIZE = 2  # image modalities; scalars use a 1 x 1 "patch"
WINDOW_METRES = 1920  # every sample covers 1.92 x 1.92 km


@dataclass(frozen=True)
class CopGenModality:
    """One COP-GEN modality.

    key: the official key (file names, tags, requests). index: network order.
    kind: "image" (a VAE latent) or "scalar" (a 3-vector fed raw). sensor: the user-facing
    group name (s2l2a, s2l1c, s1rtc, dem, lulc, cloud, location, date). bands: the physical
    bands in channel order (class maps: one band of codes). channels: network input channels of
    the VAE (class maps are one-hot). pixels: side of one window in pixels; resolution_m: the
    pixel size. latent_shape: (C, h, w) in the denoiser. scale: the VAE latent scale factor.
    vae_folder: the official folder name under ``copgen-vaes``. processing: the rule of
    ``processing`` (s2, s1, dem, lulc, cloud, location, date). unit / nodata: physical output.
    """

    key: str
    index: int
    kind: str
    sensor: str
    label: str
    bands: tuple
    channels: int
    latent_shape: tuple
    processing: str
    pixels: int = 0
    resolution_m: float = 0.0
    scale: Optional[float] = None
    vae_folder: Optional[str] = None
    unit: str = ""
    nodata: Optional[float] = None

    @property
    def tokens(self):
        c, h, w = self.latent_shape
        return w if self.kind == "scalar" else (h // PATCH_SIZE) * (w // PATCH_SIZE)

    @property
    def latent_size(self):
        c, h, w = self.latent_shape
        return c * h * w

    @property
    def has_vae(self):
        return self.kind == "image"


def _image(key, index, sensor, label, bands, channels, pixels, resolution_m, scale, vae_folder,
           processing, unit, nodata):
    side = pixels // 8
    return CopGenModality(
        key=key, index=index, kind="image", sensor=sensor, label=label, bands=tuple(bands),
        channels=channels, latent_shape=(LATENT_CHANNELS, side, side), processing=processing,
        pixels=pixels, resolution_m=resolution_m, scale=scale, vae_folder=vae_folder, unit=unit,
        nodata=nodata,
    )


_S2_10 = ("B04", "B03", "B02", "B08")
_S2_20 = ("B05", "B06", "B07", "B8A", "B11", "B12")

# The six Sentinel-2 groups: key, network index, bands in channel order, window px, metres,
# latent scale, VAE folder (sensor s2l1c / s2l2a from the key; DN, nodata 0)
_S2_GROUPS = (
    ("S2L1C_B01_B09_B10", 4, ("B01", "B09", "B10"), 32, 60.0, 0.565812, "S2L1C_32x32_B1_9_10_latent_8"),
    ("S2L1C_B02_B03_B04_B08", 5, _S2_10, 192, 10.0, 0.772514, "S2L1C_192x192_B4_3_2_8_latent_8"),
    ("S2L1C_B05_B06_B07_B11_B12_B8A", 6, _S2_20, 96, 20.0, 0.765817, "S2L1C_96x96_B5_6_7_8A_11_12_latent_8"),
    ("S2L2A_B01_B09", 8, ("B01", "B09"), 32, 60.0, 0.571367, "S2L2A_32x32_B1_9_latent_8"),
    ("S2L2A_B02_B03_B04_B08", 9, _S2_10, 192, 10.0, 0.853416, "S2L2A_192x192_B4_3_2_8_latent_8"),
    ("S2L2A_B05_B06_B07_B11_B12_B8A", 10, _S2_20, 96, 20.0, 0.567267, "S2L2A_96x96_B5_6_7_8A_11_12_latent_8"),
)

REGISTRY = (
    CopGenModality(
        key="3d_cartesian_lat_lon", index=0, kind="scalar", sensor="location",
        label="Location (latitude, longitude)", bands=("lat", "lon"), channels=3,
        latent_shape=(1, 1, 3), processing="location", unit="degree",
    ),
    _image("DEM_DEM", 1, "dem", "Copernicus GLO-30 DEM", ("DEM",), 1, 64, 30.0, 0.404247,
           "DEM_64x64_DEM_latent_8", "dem", "metre", -9999.0),
    _image("LULC_LULC", 2, "lulc", "Land cover (10 classes)", ("LULC",), 10, 192, 10.0, 0.464794,
           "LULC_192x192_LULC_latent_8", "lulc", "class", 0),
    _image("S1RTC_vh_vv", 3, "s1rtc", "Sentinel-1 RTC VV, VH", ("VV", "VH"), 2, 192, 10.0, 0.633804,
           "S1RTC_192x192_VV_VH_latent_8", "s1", "linear gamma0", None),
    _image("S2L1C_cloud_mask", 7, "cloud", "Sentinel-2 L1C cloud mask", ("cloud_mask",), 4, 192,
           10.0, 0.557045, "S2L1C_192x192_cloud_mask_latent_8", "cloud", "class", None),
    *(_image(key, index, key[:5].lower(), f"Sentinel-2 {key[2:5]} {', '.join(bands)} ({metres:g} m)", bands,
             len(bands), pixels, metres, scale, folder, "s2", "reflectance x 10000", 0)
      for key, index, bands, pixels, metres, scale, folder in _S2_GROUPS),
    CopGenModality(
        key="mean_timestamps", index=11, kind="scalar", sensor="date",
        label="Date (year, month, day)", bands=("year", "month", "day"), channels=3,
        latent_shape=(1, 1, 3), processing="date", unit="date",
    ),
)

REGISTRY = tuple(sorted(REGISTRY, key=lambda record: record.index))  # network order
MODALITIES = tuple(record.key for record in REGISTRY)
BY_KEY = {record.key: record for record in REGISTRY}
IMAGE_MODALITIES = tuple(record.key for record in REGISTRY if record.has_vae)
SENSORS = {}
for _record in REGISTRY:
    SENSORS.setdefault(_record.sensor, []).append(_record.key)
SENSORS = {name: tuple(keys) for name, keys in SENSORS.items()}
NUM_TOKENS = len(REGISTRY) + sum(record.tokens for record in REGISTRY)  # 12 time tokens + 822 = 834


def get_modality(key, field=None):
    """The record of an official key; InputError (about ``field``) listing the valid keys."""
    try:
        return BY_KEY[key]
    except (KeyError, TypeError):
        raise InputError(
            f"unknown COP-GEN modality {key!r}; expected one of {', '.join(MODALITIES)} "
            f"(or a sensor: {', '.join(SENSORS)})", field,
        ) from None


def expand_names(names, field=None):
    """Official keys of a list of keys and sensor names (``s2l2a`` stands for its three
    groups), in network order, without repeats."""
    keys = set()
    for name in names:
        keys.update(SENSORS.get(name, ()) or (get_modality(name, field).key,))
    return tuple(key for key in MODALITIES if key in keys)
