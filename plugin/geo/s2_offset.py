"""The Sentinel-2 DN offset of a product, read from what GDAL exposes about it.

Since processing baseline 04.00 (25 January 2022) L1C and L2A DNs carry an added offset:
reflectance = (DN + RADIO_ADD_OFFSET or BOA_ADD_OFFSET) / 10000 with the offset at -1000, so
1000 must be subtracted before rendering. Older products have none. In order of trust:

1. an ``*ADD_OFFSET*`` metadata item (dataset or band, any domain): the offset itself;
2. a ``PROCESSING_BASELINE`` metadata item: 1000 from 04.00 on;
3. the baseline in a SAFE / product name (``..._N0400_...``) in PRODUCT_URI or the file path;
4. else 0, with a note saying nothing told.
"""

import re
from dataclasses import dataclass
from pathlib import Path

from osgeo import gdal

from ..engine.errors import InputError
from .local_files import check_raster

OFFSET_FROM_BASELINE_04 = 1000
FIRST_OFFSET_BASELINE = 4.0
_ADD_OFFSET = re.compile(r"(BOA|RADIO)_ADD_OFFSET", re.IGNORECASE)
# The processing baseline in SAFE and product names: S2B_MSIL2A_20220315T101649_N0400_R065_...
_NAME_BASELINE = re.compile(r"_N(\d{2})(\d{2})(?:_|\.|$)")


@dataclass(frozen=True)
class S2Offset:
    value: float  # DN to subtract (>= 0)
    reason: str  # why: logged and written into output tags


def detect_s2_offset(path):
    """The :class:`S2Offset` of the Sentinel-2 raster at ``path`` (any GDAL-readable source)."""
    items = _metadata_items(path)
    for key, value in items:
        if _ADD_OFFSET.search(key):
            number = _number(value)
            if number is not None:
                return S2Offset(abs(number), f"{key} = {value} in the product's metadata")
    for key, value in items:
        if key.upper().endswith("PROCESSING_BASELINE"):
            baseline = _number(value)
            if baseline is not None:
                return _from_baseline(baseline, f"processing baseline {value} in the product's metadata")
    names = [value for key, value in items if key.upper().endswith(("PRODUCT_URI", "PRODUCT_NAME"))]
    for name in [*names, Path(str(path)).name, str(path)]:
        match = _NAME_BASELINE.search(name)
        if match:
            baseline = float(f"{match.group(1)}.{match.group(2)}")
            return _from_baseline(baseline, f"processing baseline {baseline:05.2f} in the name {Path(name).name}")
    return S2Offset(0, "no processing baseline or offset found in the metadata or name: 0 assumed")


def _from_baseline(baseline, reason):
    value = OFFSET_FROM_BASELINE_04 if baseline >= FIRST_OFFSET_BASELINE else 0
    return S2Offset(value, reason)


def _metadata_items(path):
    """(key, value) of every metadata item of the dataset and its bands, all domains."""
    try:
        path = check_raster(path, path)
    except InputError:
        return []  # nothing read here: opening the raster refuses it, in one line
    try:
        dataset = gdal.OpenEx(str(path), gdal.OF_RASTER)
    except RuntimeError:  # GDAL exceptions on
        dataset = None
    if dataset is None:
        return []
    objects = [dataset] + [dataset.GetRasterBand(i) for i in range(1, dataset.RasterCount + 1)]
    items = []
    for obj in objects:
        for domain in [None, *(obj.GetMetadataDomainList() or [])]:
            metadata = obj.GetMetadata(domain) if domain else obj.GetMetadata()
            if isinstance(metadata, dict):
                items.extend(metadata.items())
    return items


def _number(text):
    try:
        return float(str(text).strip())
    except ValueError:
        return None
