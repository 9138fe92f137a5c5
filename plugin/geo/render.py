"""Major TOM thumbnail renderings (what COP-GEN-Beta sees) and the inverse used for outputs.

Pure numpy. Formulas follow Major TOM's ``extras/thumbnail_*.py`` (see the facts sheet,
"Thumbnail renderings"); where a rendering normalises over the scene, the statistics are
passed in so that every window of an area is rendered with the area-wide numbers.
"""

from dataclasses import dataclass

import numpy as np

S2_GAIN = 1.3
S2_GAMMA = 0.6
S2_SCALE = 10000.0  # DN = reflectance x 10000
S1_NODATA = -32768.0
HILLSHADE_AZIMUTH_DEG = 315.0
HILLSHADE_ALTITUDE_DEG = 45.0


def render_s2(b04, b03, b02, offset=0):
    """Sentinel-2 true colour thumbnail, uint8 [3, h, w].

    ``value = uint8(clip(1.3 * ((DN - offset) / 10000) ** 0.6, 0, 1) * 255)`` per band.
    ``offset`` is subtracted from the DNs first: 1000 for products of processing baseline
    04.00 or later (``BOA_ADD_OFFSET = -1000``), 0 as in Major TOM. Negative or non-finite
    values render as 0.
    """
    dn = np.stack([b04, b03, b02]).astype(np.float64) - offset
    dn[~np.isfinite(dn) | (dn < 0)] = 0.0
    value = S2_GAIN * (dn / S2_SCALE) ** S2_GAMMA
    return (np.clip(value, 0.0, 1.0) * 255).astype(np.uint8)


def s2_to_reflectance_dn(rgb):
    """Invert the S2 thumbnail curve: uint8 [3, h, w] -> uint16 DN (reflectance x 10000).

    Each value maps to the DN at the centre of its quantisation bin, so that
    ``render_s2(*s2_to_reflectance_dn(v)) == v`` below saturation; 255 maps to the lowest
    saturating DN (6458).
    """
    rgb = np.asarray(rgb)
    level = np.minimum((rgb.astype(np.float64) + 0.5) / 255.0, 1.0)
    dn = S2_SCALE * (level / S2_GAIN) ** (1.0 / S2_GAMMA)
    dn = np.where(rgb >= 255, np.ceil(dn), np.rint(dn))
    return dn.astype(np.uint16)


@dataclass(frozen=True)
class S1Stats:
    """Scene-wide numbers of the S1 rendering, mergeable across blocks.

    Values are in the input's unit (linear backscatter, or dB when ``db_input``).
    ``vv_floor`` / ``vh_floor`` are the smallest positive valid values (what Major TOM
    puts in place of negative ones), ``vv_max`` / ``vh_max`` the largest. ``front`` holds
    the Pareto front of (VV, VH) over pixels where both are valid, ``vv_alone`` /
    ``vh_alone`` the largest value where only that band is valid: ``max(VV + VH)`` of the
    scaled bands is reached on those points whatever the area-wide scaling, which is what
    makes the statistics mergeable in one pass.
    """

    vv_floor: float = np.inf
    vv_max: float = -np.inf
    vh_floor: float = np.inf
    vh_max: float = -np.inf
    front: tuple = ()
    vv_alone: float = -np.inf
    vh_alone: float = -np.inf

    @property
    def empty(self):
        """True when no valid pixel has been seen."""
        return not (self.vv_max > -np.inf or self.vh_max > -np.inf)

    def merge(self, other):
        """Statistics of the union of both areas."""
        points = np.array(self.front + other.front, dtype=np.float64).reshape(-1, 2)
        return S1Stats(
            vv_floor=min(self.vv_floor, other.vv_floor),
            vv_max=max(self.vv_max, other.vv_max),
            vh_floor=min(self.vh_floor, other.vh_floor),
            vh_max=max(self.vh_max, other.vh_max),
            front=_pareto_front(points),
            vv_alone=max(self.vv_alone, other.vv_alone),
            vh_alone=max(self.vh_alone, other.vh_alone),
        )


def s1_stats(vv, vh, nodata=S1_NODATA, db_input=False):
    """S1Stats of one block of VV and VH (pixels equal to ``nodata`` or non-finite are
    invalid; in dB input every finite value counts, in linear input only positive ones
    set the floor)."""
    vv = np.asarray(vv, dtype=np.float64)
    vh = np.asarray(vh, dtype=np.float64)
    vv_ok, vh_ok = _valid(vv, nodata), _valid(vh, nodata)
    vv_floor, vv_max = _floor_and_max(vv[vv_ok], db_input)
    vh_floor, vh_max = _floor_and_max(vh[vh_ok], db_input)
    both = vv_ok & vh_ok
    return S1Stats(
        vv_floor=vv_floor,
        vv_max=vv_max,
        vh_floor=vh_floor,
        vh_max=vh_max,
        front=_pareto_front(np.stack([vv[both], vh[both]], axis=1)),
        vv_alone=_max_or_minus_inf(vv[vv_ok & ~vh_ok]),
        vh_alone=_max_or_minus_inf(vh[vh_ok & ~vv_ok]),
    )


def render_s1(vv, vh, stats, nodata=S1_NODATA, db_input=False):
    """Sentinel-1 RTC false colour thumbnail, uint8 [3, h, w]: R = VV, G = VV + VH, B = VH.

    As Major TOM: values below the floor (negative ones) take the floor, ``10 log10``
    (skipped for dB input), each band min-max scaled to 0..255 with ``stats``, nodata -> 0,
    ``G = 255 (R + B) / max(R + B)`` with the maximum taken over the whole area. Zeros
    take the floor like negative values (Major TOM would take log10(0) of a zero floor),
    and a constant band, where Major TOM would divide by zero, renders as 0.
    """
    vv = np.asarray(vv, dtype=np.float64)
    vh = np.asarray(vh, dtype=np.float64)
    vv_ok, vh_ok = _valid(vv, nodata), _valid(vh, nodata)
    red = _scale_band(vv, vv_ok, stats.vv_floor, stats.vv_max, db_input)
    blue = _scale_band(vh, vh_ok, stats.vh_floor, stats.vh_max, db_input)
    total = red + blue
    peak = _s1_sum_peak(stats, db_input)
    green = 255.0 * total / peak if peak > 0 else np.zeros_like(total)
    return np.stack([red, green, blue]).astype(np.uint8)


def _valid(band, nodata):
    ok = np.isfinite(band)
    if nodata is not None and np.isfinite(nodata):
        ok &= band != nodata
    return ok


def _floor_and_max(values, db_input):
    low = values if db_input else values[values > 0]
    return (float(low.min()) if low.size else np.inf, _max_or_minus_inf(values))


def _max_or_minus_inf(values):
    return float(values.max()) if values.size else -np.inf


def _pareto_front(points):
    """Points [n, 2] not dominated in both coordinates, as a tuple of (x, y) pairs."""
    if len(points) == 0:
        return ()
    order = np.lexsort((-points[:, 1], -points[:, 0]))  # x descending, then y descending
    ordered = points[order]
    best_y_before = np.maximum.accumulate(np.concatenate([[-np.inf], ordered[:-1, 1]]))
    front = np.unique(ordered[ordered[:, 1] > best_y_before], axis=0)
    return tuple(map(tuple, front.tolist()))


def _scaled(values, floor, top, db_input):
    """Valid values -> 0..255 between the dB of ``floor`` and ``top`` (0 if they coincide)."""
    if not (np.isfinite(floor) and np.isfinite(top)):
        return np.zeros(values.shape)
    if db_input:
        low, high, db = floor, top, values
    else:
        low, high = 10.0 * np.log10(floor), 10.0 * np.log10(top)
        db = 10.0 * np.log10(np.maximum(values, floor))
    if not high > low:
        return np.zeros(values.shape)
    return (db - low) / (high - low) * 255.0


def _scale_band(values, ok, floor, top, db_input):
    scaled = np.zeros(values.shape)
    scaled[ok] = _scaled(values[ok], floor, top, db_input)
    return scaled


def _s1_sum_peak(stats, db_input):
    """Area-wide max of scaled VV + scaled VH, from the front and single-band maxima."""
    front = np.array(stats.front, dtype=np.float64).reshape(-1, 2)
    vv_only = np.array([stats.vv_alone])[np.isfinite([stats.vv_alone])]
    vh_only = np.array([stats.vh_alone])[np.isfinite([stats.vh_alone])]
    sums = np.concatenate([
        _scaled(front[:, 0], stats.vv_floor, stats.vv_max, db_input)
        + _scaled(front[:, 1], stats.vh_floor, stats.vh_max, db_input),
        _scaled(vv_only, stats.vv_floor, stats.vv_max, db_input),
        _scaled(vh_only, stats.vh_floor, stats.vh_max, db_input),
    ])
    return float(sums.max(initial=0.0))


def _light_direction():
    """Unit vector (east, north, up) towards the light; azimuth is clockwise from north."""
    az = np.radians(90.0 - HILLSHADE_AZIMUTH_DEG)
    alt = np.radians(HILLSHADE_ALTITUDE_DEG)
    return np.array([np.cos(az) * np.cos(alt), np.sin(az) * np.cos(alt), np.sin(alt)])


def hillshade_intensity(dem):
    """Raw illumination of a DEM (before matplotlib's min-max stretch), float64 [h, w].

    Slopes are per pixel (dx = dy = 1), rows run southwards, the light comes from azimuth
    315, altitude 45. Gradients are numpy.gradient's (central inside, one-sided at the
    edges); NaN pixels (no data) are treated like the array edge, and come out NaN.
    """
    dem = np.asarray(dem, dtype=np.float64)
    valid = np.isfinite(dem)
    d_row = _masked_gradient(dem, valid, axis=0)
    d_col = _masked_gradient(dem, valid, axis=1)
    # rows run southwards, so the northward slope is -d_row (matplotlib's dy = -1)
    normal = np.stack([-d_col, d_row, np.ones_like(dem)], axis=-1)
    normal /= np.sqrt(np.sum(normal * normal, axis=-1, keepdims=True))
    intensity = normal @ _light_direction()
    intensity[~valid] = np.nan
    return intensity


def hillshade(dem_30m, intensity_range=None):
    """``LightSource(azdeg=315, altdeg=45).hillshade(dem, vert_exag=1)`` in [0, 1].

    Pass the whole area's ``intensity_range`` so that windows agree (see
    :func:`stretch_intensity`). NaN pixels (no data) come out NaN.
    """
    return stretch_intensity(hillshade_intensity(dem_30m), intensity_range)


def stretch_intensity(intensity, intensity_range=None):
    """matplotlib's contrast stretch of illumination to [0, 1]: minus min, over (max - min),
    then clipped; only clipped when max - min <= 1e-6. matplotlib uses the array's own min
    and max; ``intensity_range = (min, max)`` supplies the area-wide ones instead."""
    if intensity_range is None:
        finite = intensity[np.isfinite(intensity)]
        intensity_range = (finite.min(), finite.max()) if finite.size else (0.0, 0.0)
    low, high = intensity_range
    if high - low > 1e-6:
        intensity = (intensity - low) / (high - low)
    return np.clip(intensity, 0.0, 1.0)


def hillshade_to_uint8(shade):
    """Major TOM's grey DEM thumbnail value: ``uint8(255 * hillshade)`` (NaN -> 0)."""
    return (255.0 * np.nan_to_num(shade, nan=0.0)).astype(np.uint8)


def _masked_gradient(values, valid, axis):
    """numpy.gradient along ``axis`` with unit spacing, invalid pixels acting as edges."""
    values = np.moveaxis(np.where(valid, values, 0.0), axis, 0)
    valid = np.moveaxis(valid, axis, 0)
    forward = np.zeros_like(values)
    backward = np.zeros_like(values)
    has_next = np.zeros_like(valid)
    has_prev = np.zeros_like(valid)
    forward[:-1] = values[1:] - values[:-1]
    backward[1:] = values[1:] - values[:-1]
    has_next[:-1] = valid[1:] & valid[:-1]
    has_prev[1:] = valid[1:] & valid[:-1]
    central = np.zeros_like(values)
    central[1:-1] = (values[2:] - values[:-2]) / 2.0
    gradient = np.where(
        has_next & has_prev, central, np.where(has_next, forward, np.where(has_prev, backward, 0.0))
    )
    return np.moveaxis(gradient, 0, axis)
