"""How visible window or tile boundaries are in an image or a latent canvas [C, H, W] or [H, W].

:func:`seam_score` looks where the boundaries are (a tile grid of some period, or the lines a
layout gives): the mean absolute difference between neighbouring cells across those lines over
the same mean everywhere else, so about 1 when nothing shows and larger at seams.
:func:`blind_seam_score` needs no layout: the largest mean step across any grid line over the
median line, so it finds seams wherever they are (about 1.3 to 1.5 on a seamless smooth field,
from the spread of the line means).
"""

import numpy as np

from ..engine.errors import InputError
from ..engine.families.beta.registry import TILE_PIXELS


def _as_channels(image):
    image = np.asarray(image, dtype=np.float64)
    return image[None] if image.ndim == 2 else image


def seam_score(image, period=TILE_PIXELS, rows=None, cols=None):
    """Seam score at the lines between cells i - 1 and i for i in ``rows`` (horizontal lines)
    and ``cols`` (vertical lines); by default every multiple of ``period``."""
    image = _as_channels(image)
    lines = {1: rows, 2: cols}
    across, within = [], []
    for axis in (1, 2):
        steps = np.abs(np.diff(image, axis=axis))
        positions = lines[axis]
        if positions is None:
            positions = range(period, image.shape[axis], period)
        on_line = np.zeros(steps.shape[axis], dtype=bool)
        # diff index i compares cells i and i + 1: a line before cell p is diff index p - 1
        on_line[[p - 1 for p in positions if 0 < p < image.shape[axis]]] = True
        across.append(np.compress(on_line, steps, axis=axis).ravel())
        within.append(np.compress(~on_line, steps, axis=axis).ravel())
    across, within = np.concatenate(across), np.concatenate(within)
    if not across.size:
        raise InputError(f"image of {image.shape[1]} x {image.shape[2]} has no boundary line inside it")
    return float(across.mean() / within.mean())


def blind_seam_score(image, cell=1, margin=0):
    """The largest mean absolute step across one grid line (horizontal or vertical) over the
    median line, looking only at the lines between cells of ``cell`` pixels and at least
    ``margin`` pixels inside the image (a decoder's own border effects are no seam)."""
    image = _as_channels(image)
    ratios = []
    for axis in (1, 2):
        steps = np.abs(np.diff(image, axis=axis))
        other = tuple(a for a in (0, 1, 2) if a != axis)
        profile = steps.mean(axis=other)
        inside = np.arange(1, profile.size + 1)  # diff index i is the line before pixel i + 1
        inside = (inside % cell == 0) & (inside >= margin) & (inside <= profile.size + 1 - margin)
        profile = profile[inside]
        ratios.append(profile.max() / np.median(profile))
    return float(max(ratios))


def layout_seam_score(image, tiling, height, width, calls, scale=1, size=None):
    """Seam score of a canvas sampled with ``tiling`` (a plugin.engine.tiling strategy) over
    ``calls`` network calls, at its window boundaries: the larger of the score at every boundary
    any call used and at the last call's (shifting spreads boundaries everywhere, which dilutes
    the first). ``scale``: image pixels per latent (or latents per lattice unit); ``size``: the
    window in the layout's cells (default: the tiling's own, COP-GEN-Beta's 32 latents)."""
    rows, cols = set(), set()
    for call in range(calls):
        call_rows, call_cols = _layout(tiling, height, width, call, calls, size).boundaries()
        rows.update(call_rows)
        cols.update(call_cols)
    last_rows, last_cols = _layout(tiling, height, width, calls - 1, calls, size).boundaries()
    return max(
        seam_score(image, rows=[scale * r for r in sorted(rows)], cols=[scale * c for c in sorted(cols)]),
        seam_score(image, rows=[scale * r for r in last_rows], cols=[scale * c for c in last_cols]),
    )


def _layout(tiling, height, width, call, calls, size):
    return tiling.layout(height, width, call, calls) if size is None else tiling.layout(height, width, call, calls, size=size)


def decoder_seam_excess(tiled, whole, layout, scale=8, margin=16):
    """How much more a canvas decoded in ``layout``'s tiles (an image [C, H, W], ``scale`` px per
    latent) shows seams than the same canvas decoded at once (``whole``): (seam score at the
    layout's boundaries, blind seam score), each minus the whole decode's. A random decoder has
    its own structure on the latent grid, which the subtraction removes, and its own border
    effects, which the layout-free score skips (``margin`` px); about 0 = no seam."""
    rows, cols = layout.boundaries()
    lines = {"rows": [scale * r for r in rows], "cols": [scale * c for c in cols]}
    return (seam_score(tiled, **lines) - seam_score(whole, **lines),
            blind_seam_score(tiled, margin=margin) - blind_seam_score(whole, margin=margin))
