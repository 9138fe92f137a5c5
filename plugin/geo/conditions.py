"""Condition rasters: validate, compute area-wide statistics, warp and render windows.

A condition is a user raster for one modality, either *physical* (S2 DNs, S1 linear or dB
backscatter, DEM elevations) rendered here exactly as Major TOM renders its thumbnails,
or a ready *thumbnail* (8-bit RGB, or grey for the DEM) used as it is. Whatever its CRS
and resolution, GDAL warps it onto windows of the 10 m :class:`~.grid.TargetGrid`.
"""

import re
from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np
from affine import Affine
from rasterio.enums import ColorInterp
from rasterio.warp import transform_bounds

from ..engine.cancel import check_cancel
from ..engine.errors import InputError
from ..engine.families.beta.registry import get_modality
from . import render
from .band_names import DEFAULT_LAYOUTS, canonical
from .grid import check_earth_crs, open_raster
from .local_files import check_raster
from .warp import warp_bands


# ESA order B01, B02, B03, B04, ... (12 bands as Major TOM, 13 with B10): B04, B03, B02 = 4, 3, 2
S2_STANDARD_INDEXES = (4, 3, 2)
S2_REFLECTANCE_MAX = 2.0  # an S2 area whose values all stay below this is reflectance, not DN
DEM_FACTOR = 3  # Major TOM renders the DEM at 30 m, then resizes it to 10 m
BLOCK = 1024  # pixels a side of the blocks of the statistics pass (bounded memory)


class PreparedCondition(ABC):
    """A validated condition with its area-wide statistics; renders windows of the grid."""

    def __init__(self, spec, grid, indexes, src_nodata):
        self.spec = spec
        self.grid = grid
        self.indexes = indexes
        self.src_nodata = src_nodata
        self.notes = []  # see prepare_condition

    @property
    def modality(self):
        return self.spec.modality

    def describe(self):
        """What output tags record about this condition (JSON-ready)."""
        return {
            "modality": self.modality,
            "layer": self.spec.layer_name or Path(self.spec.path).stem,
            "file": self.spec.path,
            "bands": list(self.indexes),
            "source": self.spec.source,
            "s1_in_db": self.spec.s1_in_db,
            "s2_offset": self.spec.s2_offset,
            **({"s2_offset_note": self.spec.s2_offset_note} if self.spec.s2_offset_note else {}),
        }

    @abstractmethod
    def read_window(self, row_off, col_off, height, width):
        """(rgb uint8 [3, h, w], valid bool [h, w]) of that window of the grid: the
        rendering the model sees there, and where the source has data."""

    def measure(self, cancel=None):
        """Pass over the area gathering what the rendering normalises with; returns
        whether any pixel of the area has data. Here: nothing to gather, so it stops at
        the first block with data."""
        for window in self.grid.blocks(BLOCK):
            check_cancel(cancel, f"preparing {self.spec.label}")
            if self.read_window(*window)[1].any():
                return True
        return False

    def _warp(self, indexes, transform, height, width, resampling):
        """Bands warped onto a window: float32 [n, h, w], NaN where the source has no data."""
        return warp_bands(check_raster(self.spec.path, self.spec.label), indexes, self.grid.crs, transform, height, width,
                          resampling, self.src_nodata, self.spec.label)

    def _warp_window(self, row_off, col_off, height, width, resampling):
        transform = self.grid.window_transform(row_off, col_off)
        return self._warp(self.indexes, transform, height, width, resampling)


class _S2Condition(PreparedCondition):
    def read_window(self, row_off, col_off, height, width):
        bands = self._warp_window(row_off, col_off, height, width, "bilinear")
        valid = np.isfinite(bands).all(axis=0)
        return render.render_s2(*bands, offset=self.spec.s2_offset), valid

    def measure(self, cancel=None):
        """Stops at the first block with a value above reflectance range; a whole area of
        values <= 2 is float reflectance (0..1), which would render almost black."""
        has_data = False
        for window in self.grid.blocks(BLOCK):
            check_cancel(cancel, f"preparing {self.spec.label}")
            bands = self._warp_window(*window, "bilinear")
            values = bands[:, np.isfinite(bands).all(axis=0)]
            if values.size and values.max() > S2_REFLECTANCE_MAX:
                return True
            has_data = has_data or bool(values.size)
        if has_data:
            raise InputError(
                f"{self.spec.label}: values look like reflectance 0..1 (all <= {S2_REFLECTANCE_MAX:g}); "
                "digital numbers (reflectance x 10000) are expected"
            )
        return False


class _S1Condition(PreparedCondition):
    def __init__(self, spec, grid, indexes, src_nodata):
        super().__init__(spec, grid, indexes, src_nodata)
        self.stats = render.S1Stats()

    def read_window(self, row_off, col_off, height, width):
        vv, vh = self._warp_window(row_off, col_off, height, width, "bilinear")
        valid = np.isfinite(vv) & np.isfinite(vh)
        return render.render_s1(vv, vh, self.stats, nodata=None, db_input=self.spec.s1_in_db), valid

    def measure(self, cancel=None):
        """Area-wide dB ranges and max(VV + VH), merged block by block."""
        stats = render.S1Stats()
        for window in self.grid.blocks(BLOCK):
            check_cancel(cancel, f"preparing {self.spec.label}")
            vv, vh = self._warp_window(*window, "bilinear")
            stats = stats.merge(render.s1_stats(vv, vh, nodata=None, db_input=self.spec.s1_in_db))
        if not self.spec.s1_in_db:
            # linear backscatter is positive; a band without a positive value is dB (and
            # would render black)
            for band, floor, top in (("VV", stats.vv_floor, stats.vv_max), ("VH", stats.vh_floor, stats.vh_max)):
                if top > -np.inf and floor == np.inf:
                    raise InputError(
                        f"{self.spec.label}: {band} values look like dB (all <= 0); read them as dB",
                        f"conditions.{self.modality}.s1_in_db",
                    )
        self.stats = stats
        return not stats.empty


class _DemCondition(PreparedCondition):
    """Elevation warped onto the grid coarsened x3 (30 m), hillshaded there with the
    area-wide stretch and quantised as Major TOM does, then resized to 10 m bilinearly
    (pixel centres aligned, as PIL's resize of the 356 px thumbnail to 1068 px)."""

    def __init__(self, spec, grid, indexes, src_nodata):
        super().__init__(spec, grid, indexes, src_nodata)
        self.intensity_range = (np.inf, -np.inf)

    def coarse_intensity(self, row30, col30, height30, width30):
        """Raw hillshade illumination of a window of the 30 m grid (NaN where no data),
        from elevations read with a one-pixel margin so gradients ignore window edges."""
        transform = self.grid.transform * Affine.scale(DEM_FACTOR) * Affine.translation(col30 - 1, row30 - 1)
        (dem,) = self._warp(self.indexes, transform, height30 + 2, width30 + 2, "bilinear")
        return render.hillshade_intensity(dem)[1:-1, 1:-1]

    def read_window(self, row_off, col_off, height, width):
        rows, cols = _coarse_positions(row_off, height), _coarse_positions(col_off, width)
        row30, col30 = int(np.floor(rows.min())), int(np.floor(cols.min()))
        height30 = int(np.floor(rows.max())) + 2 - row30
        width30 = int(np.floor(cols.max())) + 2 - col30
        intensity = self.coarse_intensity(row30, col30, height30, width30)
        coarse_valid = np.isfinite(intensity)
        shade = render.stretch_intensity(intensity, self.intensity_range)
        grey = render.hillshade_to_uint8(shade).astype(np.float64)
        fine, weight = _bilinear_upsample(grey, coarse_valid, rows - row30, cols - col30)
        value = np.floor(np.divide(fine, weight, out=np.zeros_like(fine), where=weight > 0) + 0.5)
        centre_rows = (np.arange(row_off, row_off + height) // DEM_FACTOR) - row30
        centre_cols = (np.arange(col_off, col_off + width) // DEM_FACTOR) - col30
        valid = coarse_valid[np.ix_(centre_rows, centre_cols)] & (weight > 0)
        rgb = np.repeat(np.where(valid, value, 0).astype(np.uint8)[None], 3, axis=0)
        return rgb, valid

    def measure(self, cancel=None):
        """Area-wide min and max of the illumination (matplotlib's stretch), at 30 m."""
        low, high = np.inf, -np.inf
        for window30 in _coarse_blocks(self.grid):
            check_cancel(cancel, f"preparing {self.spec.label}")
            intensity = self.coarse_intensity(*window30)
            finite = intensity[np.isfinite(intensity)]
            if finite.size:
                low, high = min(low, float(finite.min())), max(high, float(finite.max()))
        self.intensity_range = (low, high)
        return low <= high


class _ThumbnailCondition(PreparedCondition):
    def __init__(self, spec, grid, indexes, src_nodata, alpha_index):
        super().__init__(spec, grid, indexes, src_nodata)
        self.alpha_index = alpha_index

    def read_window(self, row_off, col_off, height, width):
        indexes = self.indexes + ((self.alpha_index,) if self.alpha_index else ())
        transform = self.grid.window_transform(row_off, col_off)
        bands = self._warp(indexes, transform, height, width, "near")
        valid = np.isfinite(bands).all(axis=0)
        if self.alpha_index:
            valid &= bands[-1] > 0
            bands = bands[:-1]
        rgb = np.where(valid, np.nan_to_num(bands, nan=0.0), 0).astype(np.uint8)
        if len(rgb) == 1:
            rgb = np.repeat(rgb, 3, axis=0)
        return rgb, valid


def prepare_condition(spec, grid, cancel=None):
    """Validate ``spec`` against ``grid`` and compute its area-wide statistics.

    Raises InputError naming the file / layer / band when the file is unreadable or not
    georeferenced, a band is unknown or missing, the raster misses the area, or it has no
    valid pixel there. ``cancel()`` returning True stops the statistics pass (Cancelled).
    The result's ``notes`` say what a user should know about how the file was read.
    """
    notes = []
    try:
        with open_raster(spec.path, spec.label) as ds:
            indexes = resolve_bands(spec, ds, notes)
            alpha = _alpha_index(ds) if spec.source == "thumbnail" else None
            src_nodata = _source_nodata(spec, ds)
            _check_overlap(spec, ds, grid)
        if spec.source == "thumbnail":
            prepared = _ThumbnailCondition(spec, grid, indexes, src_nodata, alpha)
        else:
            prepared = _PHYSICAL_READERS[get_modality(spec.modality).rendering](spec, grid, indexes, src_nodata)
        if not prepared.measure(cancel):
            raise InputError(f"{spec.label}: no valid pixel inside the area (all nodata there)")
    except InputError as exc:  # every problem of a condition is about its field
        exc.field = exc.field or f"conditions.{spec.modality}"
        raise
    prepared.notes = notes
    return prepared


def resolve_bands(spec, ds, notes=None):
    """1-based band indexes of ``ds`` for ``spec``, in rendering order; InputError if a
    band is unknown, out of range, or the file has too few bands. A file without band names
    whose band count is its sensor's Major TOM layout is read in that order, said in ``notes``
    (a list the note is appended to)."""
    if spec.source == "thumbnail" and ds.dtypes[0] != "uint8":
        raise InputError(
            f"{spec.label}: a thumbnail must be 8-bit, this raster is {ds.dtypes[0]} "
            "(use source 'physical' for measured values)"
        )
    if spec.bands is not None:
        indexes = tuple(_band_index(spec, ds, token) for token in spec.bands)
        if any(not token.isdigit() for token in spec.bands) and _undescribed_layout(spec, ds):
            _tell_layout(spec, ds, spec.bands, indexes, notes)
        wanted = _wanted_counts(spec)
        if len(indexes) not in wanted:
            raise InputError(
                f"{spec.label}: {len(indexes)} band(s) given ({', '.join(spec.bands)}); "
                f"{_band_need(spec)}",
                _bands_field(spec),
            )
        return indexes
    if spec.source == "thumbnail":
        if ds.count in (3, 4):
            return (1, 2, 3)
        if ds.count == 1:
            return (1,)
        raise InputError(f"{spec.label}: a thumbnail must have 1 (grey) or 3 (RGB) bands, it has {ds.count}")
    names = get_modality(spec.modality).bands
    described = {_normalise_band_name(d): i for i, d in enumerate(ds.descriptions, 1) if d}
    if all(_normalise_band_name(n) in described for n in names):
        return tuple(described[_normalise_band_name(n)] for n in names)
    if ds.count == len(names):
        return tuple(range(1, len(names) + 1))
    layout = _undescribed_layout(spec, ds)
    if layout and all(canonical(name) in layout for name in names):
        indexes = tuple(layout.index(canonical(name)) + 1 for name in names)
        _tell_layout(spec, ds, names, indexes, notes)
        return indexes
    if get_modality(spec.modality).rendering == "s2" and ds.count >= 12:
        return S2_STANDARD_INDEXES
    if ds.count < len(names):
        raise InputError(f"{spec.label}: has {ds.count} band(s); {_band_need(spec)}")
    example = ",".join(map(str, range(1, len(names) + 1)))
    raise InputError(
        f"{spec.label}: cannot tell which of its {ds.count} bands are {', '.join(names)} "
        f"(no such band descriptions); give their numbers in that order as the bands, e.g. {example}",
        _bands_field(spec),
    )


def _coarse_positions(offset, size):
    """Where the centres of 10 m pixels offset .. offset + size - 1 fall on the 30 m grid,
    in 30 m pixel indexes (the centre of 30 m pixel i is at i)."""
    return (np.arange(offset, offset + size) + 0.5) / DEM_FACTOR - 0.5


def _coarse_blocks(grid):
    """Windows of the 30 m grid covering every 30 m pixel any 10 m window interpolates from."""
    first = int(np.floor(_coarse_positions(0, 1)[0]))
    last_row = int(np.floor(_coarse_positions(grid.height - 1, 1)[0])) + 1
    last_col = int(np.floor(_coarse_positions(grid.width - 1, 1)[0])) + 1
    for row30 in range(first, last_row + 1, BLOCK):
        for col30 in range(first, last_col + 1, BLOCK):
            yield row30, col30, min(BLOCK, last_row + 1 - row30), min(BLOCK, last_col + 1 - col30)


def _bilinear_upsample(values, valid, rows, cols):
    """Weighted sum and total weight of the bilinear interpolation of ``values`` at
    fractional (rows, cols), counting valid neighbours only."""
    r0 = np.floor(rows).astype(int)
    c0 = np.floor(cols).astype(int)
    fr = (rows - r0)[:, None]
    fc = (cols - c0)[None, :]
    total = np.zeros((len(rows), len(cols)))
    weight = np.zeros_like(total)
    for dr, wr in ((0, 1 - fr), (1, fr)):
        for dc, wc in ((0, 1 - fc), (1, fc)):
            idx = np.ix_(r0 + dr, c0 + dc)
            w = wr * wc * valid[idx]
            total += w * np.where(valid[idx], values[idx], 0.0)
            weight += w
    return total, weight


def _normalise_band_name(name):
    """Upper case, B4 == B04; a description counts by its text before the first comma, as in
    GDAL's SENTINEL2 driver ("B4, central wavelength 665 nm")."""
    name = name.split(",")[0].strip().upper()
    match = re.fullmatch(r"B0*(\d+A?)", name)
    return f"B{match.group(1)}" if match else name


def _band_index(spec, ds, token):
    if token.isdigit():
        index = int(token)
        if not 1 <= index <= ds.count:
            raise InputError(
                f"{spec.label}: band {index} does not exist (the raster has {ds.count} band(s))", _bands_field(spec)
            )
        return index
    wanted = _normalise_band_name(token)
    for index, description in enumerate(ds.descriptions, 1):
        if description and _normalise_band_name(description) == wanted:
            return index
    layout = _undescribed_layout(spec, ds)
    if layout and canonical(token) in layout:
        return layout.index(canonical(token)) + 1
    known = ", ".join(repr(d) for d in ds.descriptions if d) or "none"
    if layout:
        known += f"; read in {_layout_name(spec, layout)}: {', '.join(layout)}"
    raise InputError(
        f"{spec.label}: no band named {token!r} (band descriptions: {known}); use a 1-based index instead",
        _bands_field(spec),
    )


def _undescribed_layout(spec, ds):
    """The band order of a product file of this sensor without band names (Major TOM's, as the
    registry says) when ``ds`` has no band names and that many bands; else None."""
    if spec.source == "thumbnail" or any(ds.descriptions):
        return None
    layout = DEFAULT_LAYOUTS.get(spec.modality.replace("_", ""))  # s2_l2a -> s2l2a
    return layout if layout and len(layout) == ds.count else None


def _layout_name(spec, layout):
    return f"Major TOM's {get_modality(spec.modality).short_label} order of {len(layout)} bands"


def _tell_layout(spec, ds, names, indexes, notes):
    if notes is not None:
        notes.append(
            f"{spec.label} has no band names; read in {_layout_name(spec, _undescribed_layout(spec, ds))} "
            f"({', '.join(map(canonical, names))} = bands {', '.join(map(str, indexes))})"
        )


def _bands_field(spec):
    """The field of the bands a user gave for ``spec`` (faces name their own bands option)."""
    return f"conditions.{spec.modality}.bands"


def _wanted_counts(spec):
    return (1, 3) if spec.source == "thumbnail" else (len(get_modality(spec.modality).bands),)


def _band_need(spec):
    if spec.source == "thumbnail":
        return "a thumbnail needs 1 (grey) or 3 (R, G, B) bands"
    names = get_modality(spec.modality).bands
    return f"{get_modality(spec.modality).label} needs {len(names)} ({', '.join(names)})"


def _alpha_index(ds):
    for index, interp in enumerate(ds.colorinterp, 1):
        if interp == ColorInterp.alpha:
            return index
    return None


def _source_nodata(spec, ds):
    if ds.nodata is not None or spec.source == "thumbnail":
        return ds.nodata
    return get_modality(spec.modality).source_nodata


def _check_overlap(spec, ds, grid):
    if ds.crs is None:
        raise InputError(f"{spec.label}: the raster has no CRS (not georeferenced)")
    check_earth_crs(ds.crs, spec.label)
    # the area goes to the raster's CRS, not the other way: a world-wide raster in degrees
    # has no sensible bounds in a UTM zone
    left, bottom, right, top = transform_bounds(grid.crs, ds.crs, *grid.bounds, densify_pts=21)
    s_left, s_bottom, s_right, s_top = ds.bounds
    shifts = (0.0,)
    if ds.crs.is_geographic:
        if left > right:  # the area crosses the antimeridian: its bounds come back wrapped
            right += 360.0
        shifts = (-360.0, 0.0, 360.0)  # longitudes are equal modulo 360
    if bottom >= s_top or top <= s_bottom or all(
        left + shift >= s_right or right + shift <= s_left for shift in shifts
    ):
        raise InputError(f"{spec.label}: the raster does not overlap the area")


# The reader of physical rasters for each rendering of the modality registry.
_PHYSICAL_READERS = {"hillshade": _DemCondition, "s1": _S1Condition, "s2": _S2Condition}
