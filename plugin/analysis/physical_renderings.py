"""COP-GEN layers as the analyses see them: physical values read from real rasters and generated
COGs on one lattice, and their quicklooks for the comparison sheet.

Quicklooks use the Major TOM renderings of :mod:`plugin.geo.render` where one exists (S2 true
colour for the 10 m group, the same curve on SWIR / NIR / red edge for the 20 m group and on
B01 in grey for the 60 m group; S1 false colour; DEM hillshade) and the class map's own
colours for land cover and the cloud mask. A generated layer is drawn with the real layer's
statistics (``like``), so both stretch alike and a colour means the same value on both.
"""

import numpy as np
import rasterio
from rasterio.errors import RasterioIOError

from ..engine.errors import InputError
from ..engine.families.copgen.classes import CLASS_MAPS
from ..engine.families.copgen.registry import BY_KEY
from ..geo.grid import TargetGrid
from ..geo.lattice import UNIT_M, ModelLattice
from ..geo.physical_conditions import read_sensor
from ..geo.render import hillshade_intensity, hillshade_to_uint8, render_s1, render_s2, s1_stats, stretch_intensity

# The S2 bands a group's quicklook shows as red, green, blue (the first that the group has).
S2_QUICKLOOKS = (("B04", "B03", "B02"), ("B11", "B8A", "B05"), ("B01", "B01", "B01"))


def read_physical(path):
    """(values float32 [C, H, W] with NaN where nodata, valid bool [H, W]) of a generated COG."""
    try:
        with rasterio.open(path) as ds:
            data = ds.read(masked=True)
    except RasterioIOError as exc:
        raise InputError(f"{path}: cannot read raster: {exc}") from None
    values = data.astype(np.float32).filled(np.nan)
    valid = ~np.ma.getmaskarray(data).any(axis=0) & np.isfinite(values).all(axis=0)
    values[:, ~valid] = np.nan
    return values, valid


def real_layers(specs, lattice, cancel=None):
    """{official key: (values, valid)} of the real rasters ``specs`` (PhysicalConditionSpec:
    each fills its keys) on ``lattice``, read as the pipeline reads conditions."""
    layers = {}
    for spec in specs:
        read = read_sensor(spec.path, spec.sensor, lattice, bands=spec.bands, s1_in_db=spec.s1_in_db,
                           cancel=cancel)
        layers.update({key: read[key] for key in spec.keys})
    return layers


def quicklook(key, values, valid, like=None):
    """uint8 [3, H, W] of modality ``key``'s physical ``values`` [C, H, W]; pixels not
    ``valid`` are black. ``like``: (values, valid) of the layer whose statistics stretch it."""
    record = BY_KEY[key]
    values = np.asarray(values, np.float64)
    values = np.where(valid[None], values, np.nan)
    reference = values if like is None else np.where(like[1][None], np.asarray(like[0], np.float64), np.nan)
    if record.processing == "s2":
        bands = next(choice for choice in S2_QUICKLOOKS if set(choice) <= set(record.bands))
        image = render_s2(*(values[record.bands.index(band)] for band in bands))
    elif record.processing == "s1":
        image = render_s1(values[0], values[1], _s1_stats_of(reference, values))
    elif record.processing == "dem":
        image = np.repeat(hillshade_to_uint8(_hillshade(values[0], reference[0]))[None], 3, axis=0)
    else:
        image = _class_colours(record.processing, values[0])
    return np.where(valid[None], image, 0).astype(np.uint8)


def _s1_stats_of(reference, values):
    stats = s1_stats(reference[0], reference[1])
    return stats if np.isfinite(stats.vv_max) and np.isfinite(stats.vh_max) else s1_stats(values[0], values[1])


def _hillshade(dem, reference):
    intensity = hillshade_intensity(reference)
    finite = intensity[np.isfinite(intensity)]
    if not finite.size:
        return stretch_intensity(hillshade_intensity(dem))
    return stretch_intensity(hillshade_intensity(dem), (finite.min(), finite.max()))


def _class_colours(processing, codes):
    class_map = CLASS_MAPS[processing]
    palette = np.zeros((256, 3), np.uint8)
    for code, colour in zip(class_map.codes, class_map.colours):
        palette[code] = [int(colour[i:i + 2], 16) for i in (1, 3, 5)]
    index = np.clip(np.nan_to_num(codes, nan=0), 0, 255).astype(np.int64)
    return np.moveaxis(palette[index], -1, 0)


def footprint_area(paths):
    """The area field every run of a COP-GEN analysis shares: the footprint (bounds and CRS) of
    the raster with the smallest one among ``paths``, so the runs cover what Generate covers
    with that raster as a condition (not its 10 m grid, which is padded to 256 px)."""
    grid = min((TargetGrid.from_raster(path) for path in paths), key=lambda g: g.aoi.area)
    return {"extent": (*grid.aoi.bounds, grid.crs)}


def output_lattice(path):
    """The :class:`ModelLattice` a generated COG lies on (its footprint in 480 m units), so
    real rasters are read on exactly the outputs' grids."""
    with rasterio.open(path) as ds:
        left, bottom, right, top = ds.bounds
        crs = ds.crs
    return ModelLattice(crs=crs, origin=(left, top), rows=round((top - bottom) / UNIT_M),
                        cols=round((right - left) / UNIT_M))
