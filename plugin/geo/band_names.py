"""Which band of a file is which: band names as users, products and GDAL spell them.

Band descriptions ("B04", "B4", "B04 (red)", GDAL's SENTINEL2 "B4, central wavelength 665 nm"),
band metadata items (BANDNAME...), file names of one-band files (``..._B04_10m.jp2``) and names
given by the user (who may also give a Sentinel-2 band by its number: "4", "8A") all come down
to one canonical spelling (B04, B8A, VV, VH, DEM), compared with the registry's band names.
"""

import re
from pathlib import Path

from ..engine.errors import InputError
from ..engine.families.copgen.registry import BY_KEY, SENSORS

S2_BAND_ORDER = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11",
                 "B12")
# the band order of a product file without band names: Major TOM's (L2A has no B10)
DEFAULT_LAYOUTS = {
    "s2l2a": tuple(band for band in S2_BAND_ORDER if band != "B10"),
    "s2l1c": S2_BAND_ORDER,
    "s1rtc": ("VV", "VH"),
}
_NAME_KEYS = ("BANDNAME", "BAND_NAME", "NAME")  # GDAL band metadata items naming a band


def sensor_bands(sensor):
    """The bands a file of ``sensor`` must provide: all of its groups', S2 in ESA order."""
    bands = {band for key in SENSORS[sensor] for band in BY_KEY[key].bands}
    return tuple(sorted(bands, key=lambda b: S2_BAND_ORDER.index(b) if b in S2_BAND_ORDER else 0))


def canonical(name):
    """A band name as compared: B4, b04, "B04 (red)", "B4, central wavelength" -> B04;
    "Gamma0_VV" -> VV; else upper case."""
    head = str(name).split(",")[0].strip().upper()
    match = re.match(r"B0*(\d{1,2}A?)(?![0-9A-Z])", head)
    if match:
        digits = match.group(1)
        return f"B{int(digits[:-1])}A" if digits.endswith("A") else f"B{int(digits):02d}"
    tokens = re.findall(r"[A-Z0-9]+", head)
    return next((token for token in ("VV", "VH", "DEM") if token in tokens), head)


def given_name(token, sensor):
    """A band name as a user gives it, compared as :func:`canonical`; for a Sentinel-2 sensor a
    bare band number names that band ("4" -> B04, "8A" -> B8A), as "B4" does. (A list names the
    file's bands in order, so a number there is a band's number, never a position.)"""
    token = str(token).strip()
    if set(sensor_bands(sensor)) <= set(S2_BAND_ORDER) and re.fullmatch(r"\d{1,2}[Aa]?", token):
        token = "B" + token
    return canonical(token)


def check_names(names, count, label, field):
    """InputError when the names given (canonical, None: none given) are more than the
    ``count`` bands of the files, or name a band twice."""
    if names is None:
        return
    if len(names) > count:
        raise InputError(f"{label}: {len(names)} band names given for its {count} band(s)",
                         field + ".bands")
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise InputError(f"{label}: band name(s) {', '.join(repeated)} given twice", field + ".bands")


def named_by_file(path, ds, needed):
    """A one-band file named after its band (T32TQM_20210715_B04_10m.jp2, B8A.tif)."""
    tokens = re.findall(r"(?<![A-Z0-9])(B\d{1,2}A?)(?![A-Z0-9])", Path(path).stem.upper())
    names = {canonical(token) for token in tokens} & set(needed)
    return {names.pop(): 1} if ds.count == 1 and len(names) == 1 else {}


def described(ds, needed):
    """Bands named by their description or by a BANDNAME-like metadata item."""
    found = {}
    for index in range(1, ds.count + 1):
        tags = {key.upper(): value for key, value in ds.tags(index).items()}
        candidates = [ds.descriptions[index - 1]] + [tags.get(key) for key in _NAME_KEYS]
        for text in filter(None, candidates):
            name = canonical(text)
            if name in needed and name not in found:
                found[name] = index
                break
    return found
