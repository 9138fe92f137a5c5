"""Test raster builders for the geo tests (real data from ../shared/data, synthetic rasters)."""

import warnings
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.errors import NotGeoreferencedWarning

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
S2_TILES = sorted((SHARED_DATA / "majortom_s2l2a").glob("*.tif"))
THUMBNAILS = SHARED_DATA / "copgen_beta_thumbnails"
S2_TILE = SHARED_DATA / "majortom_s2l2a" / "282D_485L_3_3.tif"

# A made-up 10 m UTM placement (zone 33N, on the 10 m lattice) for unreferenced images.
UTM33 = CRS.from_epsg(32633)
UTM33_ORIGIN = Affine(10.0, 0.0, 400000.0, 0.0, -10.0, 5000000.0)


def write_raster(path, bands, crs=UTM33, transform=UTM33_ORIGIN, nodata=None, descriptions=None):
    """Write bands [n, h, w] (or [h, w]) as a GeoTIFF; returns the path."""
    bands = np.asarray(bands)
    if bands.ndim == 2:
        bands = bands[None]
    profile = dict(
        driver="GTiff", width=bands.shape[2], height=bands.shape[1], count=bands.shape[0],
        dtype=bands.dtype.name, crs=crs, transform=transform, nodata=nodata,
    )
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(bands)
        if descriptions:
            ds.descriptions = tuple(descriptions)
    return Path(path)


def read_bands(path, indexes=None):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)  # the webp thumbnails
        with rasterio.open(path) as ds:
            return ds.read(indexes)


def georeferenced_thumbnail(tmp_path, name, transform=UTM33_ORIGIN, crs=UTM33):
    """The real ``name``.webp thumbnail as a GeoTIFF placed on a made-up UTM grid."""
    return write_raster(tmp_path / f"{name}.tif", read_bands(THUMBNAILS / f"{name}.webp"), crs, transform)


def best_shift(a, b, margin=4, reach=1):
    """(dy, dx) in [-reach, reach]^2 minimising the mean |a - b shifted|, over the interior."""
    h, w = a.shape[-2:]
    errors = {}
    for dy in range(-reach, reach + 1):
        for dx in range(-reach, reach + 1):
            errors[(dy, dx)] = np.abs(
                a[..., margin:h - margin, margin:w - margin].astype(float)
                - b[..., margin + dy:h - margin + dy, margin + dx:w - margin + dx].astype(float)
            ).mean()
    return min(errors, key=errors.get), errors
