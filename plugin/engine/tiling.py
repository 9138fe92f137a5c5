"""Window layouts over a latent canvas, and the tiling strategies that choose one per network call.

The denoiser sees 32 x 32 latent windows. A layout covers a canvas of any size with windows
that never leave it: it is the product of a placement along the rows and one along the columns.
Neighbouring windows of a placement share a crossfade (a start and a width): the first window's
weight falls from 1 to 0 across it while the second's rises, with raised-cosine ramps that sum to
exactly 1, and a width of 0 is a hard cut. So every canvas cell gets a positive total weight, and
weights away from the crossfades are exactly 1 (one window on a 32-latent canvas weighs 1
everywhere, which keeps the one-window case bit-exact).

A tiling strategy is asked for the layout at every network call (:meth:`Tiling.layout` with
the call index and the number of calls), so the overlap can follow the noise level. The solvers
never see the layout: each call's window predictions are blended into one canvas prediction.

Strategies (:func:`parse_tiling` specs):

- ``overlap:N``: windows N latents apart from their neighbours (stride 32 - N) from the top-left
  corner, the last one moved back onto the far edge (N = 0: independent tiles). Today's
  behaviour with N = 16.
- ``schedule:A@F,...,Z``: strategy A for the first fraction F of the network calls, ..., then Z;
  a bare number N stands for ``overlap:N`` (``schedule:4@0.7,8``).
- ``shifted[:N]``: a lattice of stride 32 - N (default N = 0, no overlap) shifted by a different
  offset at every call, so the window boundaries never stay in place; windows that would cross
  the canvas edge are replaced by windows on the edge (nothing wraps around).
- ``spread:N``: as few windows as give overlaps of at least N, spread evenly over the canvas.
"""

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .errors import InputError
from .families.beta.registry import LATENT_SIZE

WINDOW = LATENT_SIZE
FIELD = "tiling"


def fade_in(width):
    """Raised-cosine ramp rising over ``width`` cells, sampled at cell centres; fade_in(w) +
    fade_in(w)[::-1] == 1."""
    return np.sin(0.5 * np.pi * (np.arange(width) + 0.5) / width) ** 2 if width else np.ones(0)


@dataclass(frozen=True)
class Placement:
    """Windows of ``size`` cells along one axis of ``length`` cells.

    ``starts``: increasing offsets, the first 0 and the last ``length - size``. ``fades``: for
    each pair of neighbours, the (start, width) of their crossfade, inside both windows.
    """

    length: int
    size: int
    starts: tuple
    fades: tuple

    def __len__(self):
        return len(self.starts)

    def weights(self, index):
        """Blend weights [size] float64 of window ``index``: rises across the crossfade with its
        left neighbour, falls across the one with its right neighbour, 0 outside them."""
        start = self.starts[index]
        weights = np.ones(self.size)
        if index > 0:
            fade, width = self.fades[index - 1]
            local = fade - start
            weights[:local] = 0.0
            weights[local:local + width] *= fade_in(width)
        if index < len(self.starts) - 1:
            fade, width = self.fades[index]
            local = fade - start
            weights[local:local + width] *= fade_in(width)[::-1]
            weights[local + width:] = 0.0
        return weights

    def boundaries(self):
        """Positions (in cells, between cell i - 1 and i) where the blend passes from one window
        to the next: the middle of each crossfade."""
        return tuple(start + width // 2 for start, width in self.fades)

    def scaled(self, factor):
        """The same placement in units ``factor`` times smaller (latents -> pixels)."""
        return Placement(self.length * factor, self.size * factor,
                         tuple(s * factor for s in self.starts),
                         tuple((s * factor, w * factor) for s, w in self.fades))


def _check_length(length, size):
    if length < size:
        raise InputError(f"canvas of {length} latents is smaller than one window ({size})", field=FIELD)


@lru_cache(maxsize=256)
def lattice(length, overlap, offset=0, size=WINDOW):
    """Windows at ``offset + k * (size - overlap)`` that fit, plus windows on the canvas edges
    where the lattice leaves cells uncovered. Lattice neighbours crossfade across their whole
    overlap; an edge window crossfades at its lattice neighbour's boundary with the same width,
    so with overlap 0 every cell comes from exactly one window."""
    _check_length(length, size)
    stride = size - overlap
    inner = list(range(offset, length - size + 1, stride))
    starts = ([0] if not inner or inner[0] > 0 else []) + inner
    if starts[-1] < length - size:
        starts.append(length - size)
    on_lattice = set(inner)
    fades = []
    for left, right in zip(starts, starts[1:]):
        if right in on_lattice:
            fade = right
        elif left in on_lattice:
            fade = left + size - overlap
        else:  # two edge windows and no lattice window between: meet in the middle
            fade = (right + left + size - overlap) // 2
        fades.append((fade, overlap))
    return Placement(length, size, tuple(starts), tuple(fades))


@lru_cache(maxsize=256)
def spread(length, min_overlap, size=WINDOW):
    """The fewest windows whose overlaps are all >= ``min_overlap``, spread evenly (rounded);
    neighbours crossfade across their whole overlap."""
    _check_length(length, size)
    count = 1 if length == size else math.ceil((length - min_overlap) / (size - min_overlap))
    if count == 1:
        return Placement(length, size, (0,), ())
    span = length - size
    starts = tuple((2 * k * span + count - 1) // (2 * (count - 1)) for k in range(count))
    fades = tuple((right, left + size - right) for left, right in zip(starts, starts[1:]))
    return Placement(length, size, starts, fades)


class Layout:
    """Windows over a canvas [H, W]: the product of a row and a column placement."""

    def __init__(self, rows, cols):
        self.rows, self.cols = rows, cols
        self.height, self.width = rows.length, cols.length
        self.window_shape = (rows.size, cols.size)
        self.windows = tuple((r, c) for r in rows.starts for c in cols.starts)
        self._row_weights = [rows.weights(i) for i in range(len(rows))]
        self._col_weights = [cols.weights(j) for j in range(len(cols))]
        self._weight_sum = None

    def __len__(self):
        return len(self.windows)

    def weights(self, index):
        """Blend weights of window ``index`` (row-major), [h, w] float32."""
        i, j = divmod(index, len(self.cols))
        return np.outer(self._row_weights[i], self._col_weights[j]).astype(np.float32)

    def slices(self, index):
        row, col = self.windows[index]
        return np.s_[row:row + self.window_shape[0], col:col + self.window_shape[1]]

    @property
    def weight_sum(self):
        """Total blend weight of every canvas cell, [H, W] float32 (all > 0)."""
        if self._weight_sum is None:
            total = np.zeros((self.height, self.width), dtype=np.float32)
            for index in range(len(self)):
                total[self.slices(index)] += self.weights(index)
            self._weight_sum = total
        return self._weight_sum

    def cut(self, canvas, indices):
        """Windows ``indices`` of canvas [..., H, W] stacked as [K, ..., h, w]."""
        return np.stack([canvas[(Ellipsis,) + self.slices(i)] for i in indices])

    def accumulate(self, canvas, values, indices):
        """Add window values [K, ..., h, w] times their weights onto canvas [..., H, W]; callers
        divide by :attr:`weight_sum` once every window is in (a single window needs no divide:
        its weights are 1 everywhere)."""
        for value, index in zip(values, indices):
            canvas[(Ellipsis,) + self.slices(index)] += value * self.weights(index)

    def blend(self, canvas):
        """canvas / weight_sum, skipped for one window (exact)."""
        return canvas if len(self) == 1 else canvas / self.weight_sum

    def boundaries(self):
        """(row boundaries, column boundaries) in latents: see :meth:`Placement.boundaries`."""
        return self.rows.boundaries(), self.cols.boundaries()


# -- strategies ------------------------------------------------------------------------------

class Tiling:
    """A tiling strategy: which layout the denoiser uses at network call ``call`` of ``calls``."""

    spec = ""

    def layout(self, height, width, call=0, calls=1, size=WINDOW):
        """The layout of call ``call`` of ``calls`` over a canvas of height x width cells, with
        windows of ``size`` cells (COP-GEN-Beta: 32 latents; COP-GEN: 4 units of 480 m)."""
        return Layout(self._placement(height, call, calls, 0, size), self._placement(width, call, calls, 1, size))

    def windows_per_call(self, height, width, calls, size=WINDOW):
        """Number of windows at each of ``calls`` network calls (no arrays are built)."""
        return [len(self._placement(height, call, calls, 0, size)) * len(self._placement(width, call, calls, 1, size))
                for call in range(calls)]

    def _placement(self, length, call, calls, axis, size):
        """The placement along ``axis`` (0 rows, 1 columns) at this call."""
        raise NotImplementedError

    def __str__(self):
        return self.spec

    def __repr__(self):
        return f"<tiling {self.spec}>"

    def __eq__(self, other):
        return isinstance(other, Tiling) and other.spec == self.spec

    def __hash__(self):
        return hash(self.spec)


class FixedOverlap(Tiling):
    """``overlap:N``: the same lattice of windows N latents apart at every call."""

    def __init__(self, overlap):
        self.overlap = _overlap(overlap, "overlap")
        self.spec = f"overlap:{self.overlap}"

    def _placement(self, length, call, calls, axis, size):
        return lattice(length, _fitting(self.overlap, size, self.spec), size=size)


class Spread(Tiling):
    """``spread:N``: the fewest windows with overlaps >= N, spread evenly."""

    def __init__(self, min_overlap):
        self.min_overlap = _overlap(min_overlap, "spread")
        self.spec = f"spread:{self.min_overlap}"

    def _placement(self, length, call, calls, axis, size):
        return spread(length, _fitting(self.min_overlap, size, self.spec), size)


class Schedule(Tiling):
    """``schedule:A@F,...,Z``: strategy A while call / calls < F, ..., then Z. Each item is a
    strategy spec, or a bare number N for ``overlap:N``."""

    def __init__(self, stages, final):
        """stages: [(Tiling, until fraction)] with fractions increasing within (0, 1); final: the
        Tiling after the last fraction."""
        self.stages = tuple((tiling, float(until)) for tiling, until in stages)
        self.final = final
        fractions = [f for _, f in self.stages]
        if not fractions or not all(0 < f < 1 for f in fractions) or fractions != sorted(set(fractions)):
            raise InputError(
                f"schedule fractions must increase strictly within (0, 1), got {fractions}", field=FIELD
            )
        items = [f"{_short(t)}@{f:g}" for t, f in self.stages] + [_short(self.final)]
        self.spec = "schedule:" + ",".join(items)

    def at(self, call, calls):
        """The strategy of call ``call`` of ``calls``."""
        for tiling, until in self.stages:
            if call < until * calls:
                return tiling
        return self.final

    def _placement(self, length, call, calls, axis, size):
        return self.at(call, calls)._placement(length, call, calls, axis, size)


def _short(tiling):
    return str(tiling.overlap) if isinstance(tiling, FixedOverlap) else tiling.spec


# Offsets of the shifted lattice: call k shifts rows by frac(k * a) and columns by frac(k * b)
# of a stride (additive recurrences of the plastic number: well spread in 2-D, reproducible).
_SHIFT_ROWS, _SHIFT_COLS = 0.7548776662466927, 0.5698402909980532


class Shifted(Tiling):
    """``shifted[:N]``: a lattice of stride 32 - N moved by a different offset at every call."""

    def __init__(self, overlap=0):
        self.overlap = _overlap(overlap, "shifted")
        self.spec = "shifted" if self.overlap == 0 else f"shifted:{self.overlap}"

    def offset(self, call, axis, size=WINDOW):
        stride = size - self.overlap
        factor = _SHIFT_ROWS if axis == 0 else _SHIFT_COLS
        return int(((0.5 + call * factor) % 1.0) * stride)

    def _placement(self, length, call, calls, axis, size):
        overlap = _fitting(self.overlap, size, self.spec)
        return lattice(length, overlap, self.offset(call, axis, size), size)


def _overlap(value, option):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= value < WINDOW:
        raise InputError(f"{option}:N takes an overlap of 0..{WINDOW - 1} latents, got {value!r}",
                         field=FIELD)
    return int(value)


def _fitting(overlap, size, spec):
    """An overlap that fits a window of ``size`` cells, or InputError naming the strategy."""
    if overlap >= size:
        raise InputError(f"{spec}: an overlap of {overlap} does not fit windows of {size} cells", field=FIELD)
    return overlap


# The default: measured with the Gaussian-field oracle (bench/tiling_oracle.py, docs/performance.md).
DEFAULT_TILING = "schedule:spread:6@0.9,spread:8"
NAMES = ("overlap", "schedule", "shifted", "spread")


def parse_tiling(spec=None):
    """A :class:`Tiling` from a spec string (None or "" = the default); a Tiling is returned as
    it is. InputError(field="tiling") naming what is wrong, before any work."""
    if isinstance(spec, Tiling):
        return spec
    if spec is None or (isinstance(spec, str) and not spec.strip()):
        spec = DEFAULT_TILING
    if not isinstance(spec, str):
        raise InputError(f"expected a string such as 'overlap:16', got {spec!r}", field=FIELD)
    name, _, argument = spec.strip().partition(":")
    name, argument = name.strip().lower(), argument.strip()
    try:
        if name == "overlap":
            return FixedOverlap(_whole(argument, spec))
        if name == "spread":
            return Spread(_whole(argument, spec))
        if name == "shifted":
            return Shifted(_whole(argument, spec) if argument else 0)
        if name == "schedule":
            return _parse_schedule(argument, spec)
    except InputError as error:
        raise InputError(f"{spec!r}: {error.message}", field=FIELD) from None
    raise InputError(f"unknown strategy {name!r} in {spec!r}; expected one of "
                     "overlap:N, schedule:A@F,...,Z, shifted[:N], spread:N", field=FIELD)


def _whole(text, spec):
    if not text.isdigit():
        raise InputError(f"expected a whole number of latents, got {text!r}", field=FIELD)
    return int(text)


def _parse_schedule(argument, spec):
    items = [item.strip() for item in argument.split(",")] if argument else []
    if len(items) < 2 or "@" in items[-1] or any("@" not in item for item in items[:-1]):
        raise InputError("expected strategies with the fraction of calls they last, e.g. 4@0.7,8", field=FIELD)
    stages = []
    for item in items[:-1]:
        stage, _, until = item.rpartition("@")
        try:
            fraction = float(until)
        except ValueError:
            raise InputError(f"{until!r} is not a fraction of the calls", field=FIELD) from None
        stages.append((_stage(stage.strip(), spec), fraction))
    return Schedule(stages, _stage(items[-1], spec))


def _stage(text, spec):
    if text.isdigit():
        return FixedOverlap(int(text))
    if text.lower().startswith("schedule"):
        raise InputError("a schedule cannot hold a schedule", field=FIELD)
    return parse_tiling(text)


def cost(tiling, height, width, calls):
    """Mean windows per network call over the canvas area in 32 x 32 tiles (1.0 = its area)."""
    windows = tiling.windows_per_call(height, width, calls)
    return float(np.mean(windows)) / (height * width / WINDOW ** 2)


# -- the VAE's tiles -------------------------------------------------------------------------

# Decoder / encoder tiles. The SD VAE is not local: its mid-block self-attention spans the whole
# tile and its GroupNorms take statistics over the tile, so a tile's pixels depend on the tile's
# size and on everything in it, and two overlapping tiles disagree everywhere (mean |difference|
# to a whole decode: about 21 / 255 for 50-latent tiles and 13 / 255 for 76-latent ones with the
# random fixture VAE). A crossfade can only spread that disagreement over its width, so the seam
# falls with larger tiles (closer to the whole decode) and a wider overlap; 3 x 3 tiles of 50
# latents with an 8-latent crossfade showed more seam than the old 32-latent windows
# (docs/performance.md). So: the fewest tiles of at most VAE_MAX_TILE latents (640 px) with
# overlaps of at least VAE_MIN_OVERLAP, all of one size (the same statistics on both sides of a
# seam), then grown while the decoded area stays within VAE_AREA_BUDGET of the canvas, which
# widens the overlaps: a cell is 2 x 2 tiles of 76 latents crossfaded over 18 (1.29x its area).
VAE_MIN_OVERLAP = 12
VAE_MAX_TILE = 80
VAE_AREA_BUDGET = 1.3


@lru_cache(maxsize=64)
def vae_placement(length, min_overlap=VAE_MIN_OVERLAP, max_tile=VAE_MAX_TILE, budget=VAE_AREA_BUDGET):
    """Tiles along one axis (see above): spread evenly, crossfaded (raised cosine) across their
    whole overlap. One tile when the canvas side fits in ``max_tile``."""
    if length <= max_tile:
        return Placement(length, length, (0,), ())
    count = math.ceil((length - min_overlap) / (max_tile - min_overlap))
    smallest = -(-(length + min_overlap * (count - 1)) // count)
    size = max(smallest, min(max_tile, int(length * math.sqrt(budget) / count)))
    return spread(length, (count * size - length) // (count - 1), size)  # the overlap of ``count`` tiles


def vae_layout(height, width, **rule):
    """The VAE's tile layout over a latent canvas (in latents; see :meth:`Placement.scaled`): the
    one rule for encoding conditions and decoding outputs."""
    return Layout(vae_placement(height, **rule), vae_placement(width, **rule))
