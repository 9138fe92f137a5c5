"""STAC band metadata of a COP-GEN cell's assets: the ``raster`` extension (data type, nodata,
scale, offset, unit of every band, read back from the written file) and, for Sentinel-2 groups,
the ``eo`` extension (band name, common name, centre wavelength), plus each asset's own
projection (its native resolution's shape and transform)."""

import math

import rasterio
from pystac.extensions.eo import Band, EOExtension
from pystac.extensions.projection import ProjectionExtension
from pystac.extensions.raster import DataType, RasterBand, RasterExtension

# Sentinel-2 MSI bands: (STAC common name, centre wavelength in micrometres), the published
# Sentinel-2A values rounded as the Copernicus documentation gives them.
S2_BANDS = {
    "B01": ("coastal", 0.443), "B02": ("blue", 0.490), "B03": ("green", 0.560), "B04": ("red", 0.665),
    "B05": ("rededge", 0.705), "B06": ("rededge", 0.740), "B07": ("rededge", 0.783), "B08": ("nir", 0.842),
    "B8A": ("nir08", 0.865), "B09": ("nir09", 0.945), "B10": ("cirrus", 1.375), "B11": ("swir16", 1.610),
    "B12": ("swir22", 2.190),
}


def describe_bands(asset):
    """Add the raster (and, for S2 bands, eo) extension fields of the GeoTIFF ``asset``
    (already added to its item) from the file, and its own projection shape and transform."""
    with rasterio.open(asset.get_absolute_href()) as ds:
        names = [name or f"band{index}" for index, name in enumerate(ds.descriptions, 1)]
        bands = [RasterBand.create(data_type=DataType(ds.dtypes[i]), nodata=_nodata(ds.nodata),
                                   scale=ds.scales[i], offset=ds.offsets[i], unit=ds.units[i] or None)
                 for i in range(ds.count)]
        shape, transform, epsg = [ds.height, ds.width], list(ds.transform)[:6], ds.crs.to_epsg()
    RasterExtension.ext(asset, add_if_missing=True).apply(bands)
    ProjectionExtension.ext(asset).apply(epsg=epsg, shape=shape, transform=transform)
    if names and all(name in S2_BANDS for name in names):
        EOExtension.ext(asset, add_if_missing=True).apply(bands=[
            Band.create(name=name, common_name=S2_BANDS[name][0], center_wavelength=S2_BANDS[name][1])
            for name in names
        ])


def _nodata(value):
    """The raster extension's nodata: a number, or "nan" / "inf" / "-inf" (not JSON numbers)."""
    if value is None:
        return None
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return value
