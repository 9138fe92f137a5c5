"""Warp bands of a raster onto a window of a north-up grid: the one GDAL warp of conditions."""

from osgeo import gdal

from ..engine.errors import InputError


def warp_bands(path, indexes, crs, transform, height, width, resampling, src_nodata, label):
    """Bands ``indexes`` (1-based) of ``path`` warped onto the ``height`` x ``width`` window
    whose affine is ``transform`` in ``crs``: float32 [n, h, w], NaN where the source has no
    data. ``resampling``: a GDAL name ("bilinear", "average", "near"...); ``label`` names the
    raster in the InputError raised when GDAL cannot warp it.

    GDAL's exact transformer (no 1/8-pixel approximation) makes every pixel independent of
    the window it is read in, so overlapping windows agree exactly.
    """
    left, top = transform.c, transform.f
    bounds = (left, top - height * transform.a, left + width * transform.a, top)
    try:
        source = gdal.OpenEx(str(path), gdal.OF_RASTER | gdal.OF_READONLY)
        selected = source and gdal.Translate("", source, format="VRT", bandList=list(indexes))
        warped = selected and gdal.Warp(
            "", selected, format="MEM", outputBounds=bounds, width=width, height=height,
            dstSRS=crs.to_wkt(), resampleAlg=resampling, srcNodata=src_nodata,
            dstNodata="nan", outputType=gdal.GDT_Float32, errorThreshold=0,
            warpOptions=["UNIFIED_SRC_NODATA=NO"],  # each band masks its own nodata
        )
    except RuntimeError:  # GDAL raises instead of returning None when its exceptions are on
        warped = None
    if not warped:
        raise InputError(f"{label}: cannot warp the raster: {gdal.GetLastErrorMsg()}")
    return warped.ReadAsArray().reshape(len(indexes), height, width)
