"""Physical units <-> the COP-GEN model domain, both ways, for all twelve modalities.

``preprocess(key, physical)`` gives what the VAE encoder (images) or the denoiser (location,
date) takes; ``postprocess(key, model_domain)`` turns decoder outputs and generated 3-vectors
back into physical units. Each registry record names its rule (``processing``); one table maps
that name to the pair of functions, so a new modality is a registry entry, not a new branch.

The constants and rounding rules are those of the official code (see the "Physical
pre-processing" section of the project's COP-GEN facts). Numpy only: no GDAL, no QGIS.
"""

import calendar
import datetime
import math
from dataclasses import dataclass

import numpy as np

from ...errors import InputError
from .classes import CLASS_MAPS
from .registry import get_modality

S2_SCALE = 10000.0  # Major TOM stores reflectance x 10000 (the official README's 1000 is wrong)
YEARS = (1950, 2050)  # the date encoding maps this span to [-1, 1]


@dataclass(frozen=True)
class LogRange:
    """A log-scaled physical quantity normalised to [0, 1] between ``low`` and ``high``.

    Values <= 0 (nodata included) have no logarithm: they become ``min_positive`` (the
    smallest positive value of the training data). Positive values below it are kept, and may
    fall below -1, as in the official code.
    """

    min_positive: float
    low: float
    high: float
    to_log: object
    from_log: object


S1 = LogRange(2.6380407689430285e-06, -55.787186, 40.2258,  # dB of linear gamma0
              lambda v: 10.0 * np.log10(v), lambda db: np.power(10.0, db / 10.0))
DEM = LogRange(5.899129519093549e-06, 0.000006, 9.088, np.log1p, np.expm1)  # log1p(metres)


# --- input checks: one line naming the modality, raised before any work is done ------------

def _fail(record, text, field):
    raise InputError(f"{record.key} ({record.label}): {text}", field)


def _numeric(record, value, field):
    array = np.asarray(value)
    if not np.issubdtype(array.dtype, np.number):  # bool, str and object arrays fail here
        _fail(record, f"expected numbers, got {array.dtype}", field)
    if np.iscomplexobj(array):
        _fail(record, "expected real numbers, got complex values", field)
    return array


def _finite(record, array, field, what="values"):
    if np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all():
        _fail(record, f"{what} contain NaN or infinity (fill nodata before conversion)", field)
    return array


def _image(record, value, field, channels):
    """A finite [B, C, H, W] array with ``channels`` channels."""
    array = _numeric(record, value, field)
    if array.ndim != 4 or array.shape[1] != channels or 0 in array.shape:
        _fail(record, f"expected an array [B, {channels}, H, W], got shape "
                      f"{list(array.shape)}", field)
    return _finite(record, array, field)


def _vectors(record, value, field, width, shapes):
    """A finite [B, width] array; ``shapes`` names the accepted layouts for the message.
    Scalar model-domain vectors arrive as [B, 1, 1, width] and are flattened to [B, width]."""
    array = _numeric(record, value, field)
    if array.ndim == 4 and array.shape[1:3] == (1, 1):
        array = array.reshape(array.shape[0], array.shape[3])
    if array.ndim != 2 or array.shape[1] != width or array.shape[0] == 0:
        _fail(record, f"expected {shapes}, got shape {list(array.shape)}", field)
    return _finite(record, array, field)


def _codes(record, value, field):
    """Class codes as int64 [B, 1, H, W]; [B, H, W] is accepted. Float rasters are fine when
    every value is a whole number."""
    array = _numeric(record, value, field)
    if array.ndim == 3:
        array = array[:, None]
    if array.ndim != 4 or array.shape[1] != 1 or 0 in array.shape:
        _fail(record, f"expected class codes [B, 1, H, W] or [B, H, W], got shape "
                      f"{list(array.shape)}", field)
    if np.issubdtype(array.dtype, np.floating):
        _finite(record, array, field, "class codes")
        if not (array == np.round(array)).all():
            _fail(record, "class codes must be whole numbers", field)
    return array.astype(np.int64)


# --- images: Sentinel-2, Sentinel-1, DEM ---------------------------------------------------

def _s2_pre(record, physical, field):
    # float32 arithmetic, as the official code: results agree to the last bit
    dn = _image(record, physical, field, record.channels).astype(np.float32)
    return dn / np.float32(S2_SCALE) * np.float32(2) - np.float32(1)


def _s2_post(record, model, field):
    x = _image(record, model, field, record.channels).astype(np.float32)
    return (x + np.float32(1)) / np.float32(2) * np.float32(S2_SCALE)  # no clamp: the model's DN


def _log_pre(rule):
    def pre(record, physical, field):
        values = _image(record, physical, field, record.channels).astype(np.float64)
        values = np.where(values <= 0, rule.min_positive, values)
        unit = (rule.to_log(values) - rule.low) / (rule.high - rule.low)
        return (unit * 2.0 - 1.0).astype(np.float32)  # no clamp on the way in
    return pre


def _log_post(rule):
    def post(record, model, field):
        x = _image(record, model, field, record.channels).astype(np.float64)
        # clamp to the training range: outside it the exponential runs away
        unit = np.clip((x + 1.0) / 2.0, 0.0, 1.0)
        values = rule.from_log(unit * (rule.high - rule.low) + rule.low)
        return np.maximum(values, rule.min_positive).astype(np.float32)
    return post


def s1_linear_to_db(linear):
    """Sentinel-1 linear gamma0 -> dB, float32. Values <= 0 (nodata) become the model's
    ``min_positive`` first, as the model sees them; NaN stays NaN."""
    values = np.asarray(linear, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        values = np.where(values <= 0, S1.min_positive, values)
    return S1.to_log(values).astype(np.float32)


def s1_db_to_linear(db):
    """Sentinel-1 gamma0 in dB -> linear, float32 (for users whose data is in dB)."""
    return S1.from_log(np.asarray(db, dtype=np.float64)).astype(np.float32)


# --- class maps: land cover, cloud mask ----------------------------------------------------

def _channels_of(class_map, codes):
    """The channel of each code; codes outside the table (negative, > 255 too) -> channel 0."""
    inside = (codes >= 0) & (codes <= 255)
    return class_map.code_to_channel()[np.where(inside, codes, 0)]


def _class_pre(record, physical, field):
    class_map = CLASS_MAPS[record.processing]
    channel = _channels_of(class_map, _codes(record, physical, field))  # [B, 1, H, W]
    one_hot = channel == np.arange(class_map.channels).reshape(1, -1, 1, 1)
    return one_hot.astype(np.float32) * np.float32(2) - np.float32(1)


def _class_post(record, model, field):
    class_map = CLASS_MAPS[record.processing]
    x = _image(record, model, field, class_map.channels)
    channel = np.argmax(x, axis=1)[:, None]  # first maximum on ties, as torch.argmax on CPU
    return np.asarray(class_map.codes, dtype=np.uint8)[channel]


def unknown_codes(key, codes, field=None):
    """The sorted codes of ``codes`` that the class map of ``key`` does not know (the model
    reads them as channel 0): for one clear message upstream. Empty when all are known."""
    record = get_modality(key, field)
    if record.processing not in CLASS_MAPS:
        _fail(record, "is not a class map", field)
    found = np.unique(_codes(record, codes, field))
    return [int(code) for code in found if code not in CLASS_MAPS[record.processing].codes]


def class_names(key):
    """The class names of a class-map modality, in channel order."""
    return CLASS_MAPS[get_modality(key).processing].names


def colour_table(key):
    """{code: (name, "#rrggbb")} of a class-map modality."""
    return CLASS_MAPS[get_modality(key).processing].colour_table()


# --- location ------------------------------------------------------------------------------

def _location_pre(record, physical, field):
    degrees = _vectors(record, physical, field, 2, "[B, 2] degrees (lat, lon)")
    lat, lon = degrees[:, 0].astype(np.float64), degrees[:, 1].astype(np.float64)
    if (np.abs(lat) > 90).any():
        _fail(record, f"latitude {lat[np.abs(lat) > 90][0]:g} is outside [-90, 90] "
                      "(are latitude and longitude swapped?)", field)
    if (np.abs(lon) > 180).any():
        _fail(record, f"longitude {lon[np.abs(lon) > 180][0]:g} is outside [-180, 180]", field)
    lat, lon = np.radians(lat), np.radians(lon)
    xyz = np.stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)], axis=1)
    return xyz.astype(np.float32).reshape(-1, 1, 1, 3)


def _location_post(record, model, field):
    xyz = _vectors(record, model, field, 3, "[B, 1, 1, 3] or [B, 3] vectors").astype(np.float64)
    x, y, z = xyz[:, 0], xyz[:, 1], xyz[:, 2]
    # no renormalisation: generated vectors are not unit length, and the official code reads
    # the latitude from z alone
    lat = np.degrees(np.arcsin(np.clip(z, -1.0, 1.0)))
    lon = np.degrees(np.arctan2(y, x))
    return np.stack([lat, lon], axis=1).astype(np.float32)


# --- date ------------------------------------------------------------------------------------

def _calendar_date(record, row, field):
    text = "-".join(str(int(v)) for v in row)
    try:
        date = datetime.date(*(int(v) for v in row))
    except (ValueError, OverflowError):
        _fail(record, f"{text} is not a valid date (year, month, day)", field)
    if not YEARS[0] <= date.year <= YEARS[1]:
        _fail(record, f"{date.isoformat()} is outside the model's years "
                      f"{YEARS[0]}..{YEARS[1]}", field)
    return date


def _date_pre(record, physical, field):
    dates = _vectors(record, physical, field, 3, "[B, 3] integers (year, month, day)")
    if np.issubdtype(dates.dtype, np.floating) and not (dates == np.round(dates)).all():
        _fail(record, "dates must be whole numbers (year, month, day)", field)
    out = np.empty((len(dates), 3), dtype=np.float64)
    for i, row in enumerate(dates):
        # straight from the calendar: a POSIX timestamp would shift the day by the time zone
        date = _calendar_date(record, row, field)
        day = date.timetuple().tm_yday  # 1-based
        days = 366 if calendar.isleap(date.year) else 365
        angle = 2.0 * math.pi * day / days
        out[i] = (math.sin(angle), math.cos(angle), 2.0 * (date.year - YEARS[0]) / 100.0 - 1.0)
    return out.astype(np.float32).reshape(-1, 1, 1, 3)


# First day-of-year of each month (1-based), plain and leap years.
_MONTH_STARTS = {
    leap: np.cumsum([1] + [calendar.monthrange(2000 if leap else 2001, m)[1]
                           for m in range(1, 12)])
    for leap in (False, True)
}


def _date_post(record, model, field):
    enc = _vectors(record, model, field, 3, "[B, 1, 1, 3] or [B, 3] vectors").astype(np.float64)
    year = np.rint((enc[:, 2] + 1.0) / 2.0 * 100.0 + YEARS[0]).astype(np.int64)
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    days = np.where(leap, 366, 365)
    angle = np.mod(np.arctan2(enc[:, 0], enc[:, 1]), 2.0 * math.pi)  # [0, 2 pi)
    day = np.rint(angle * days / (2.0 * math.pi)).astype(np.int64) % days
    day = np.where(day == 0, days, day)  # angle 0 is the last day of the year
    starts = np.where(leap[:, None], _MONTH_STARTS[True], _MONTH_STARTS[False])  # [B, 12]
    month = (starts <= day[:, None]).sum(axis=1)
    day_of_month = day - starts[np.arange(len(day)), month - 1] + 1
    return np.stack([year, month, day_of_month], axis=1)  # (year, month, day), int64


# --- the one table -----------------------------------------------------------------------------

_RULES = {
    "s2": (_s2_pre, _s2_post),
    "s1": (_log_pre(S1), _log_post(S1)),
    "dem": (_log_pre(DEM), _log_post(DEM)),
    "lulc": (_class_pre, _class_post),
    "cloud": (_class_pre, _class_post),
    "location": (_location_pre, _location_post),
    "date": (_date_pre, _date_post),
}


def preprocess(key, physical, field=None):
    """Physical units -> the model domain (float32) of modality ``key``.

    Images: [B, C, H, W] (S2 DN, S1 linear gamma0 vv/vh, DEM metres) -> [B, C, H, W];
    class maps: codes [B, 1, H, W] or [B, H, W] -> one-hot [B, C, H, W] in {-1, 1};
    location: [B, 2] degrees (lat, lon) -> [B, 1, 1, 3]; date: [B, 3] (year, month, day)
    -> [B, 1, 1, 3]. Bad input raises InputError naming the modality (and ``field``).
    """
    record = get_modality(key, field)
    return _RULES[record.processing][0](record, physical, field)


def postprocess(key, model_domain, field=None):
    """The model domain of ``key`` -> physical units: images float32 [B, C, H, W]; class maps
    uint8 codes [B, 1, H, W]; location float32 [B, 2] (lat, lon) degrees; date int64 [B, 3]
    (year, month, day)."""
    record = get_modality(key, field)
    return _RULES[record.processing][1](record, model_domain, field)
