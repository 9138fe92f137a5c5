"""Seams of COP-GEN over an area, judged by the Gaussian-field oracle at every resolution: each
modality's window is denoised alone at its own resolution, so only the layout of the windows on
the 480 m lattice can make seams (bench/gaussian_oracle.MultiResolutionOracle)."""

import numpy as np
import pytest

from bench.gaussian_oracle import MultiResolutionOracle
from plugin.analysis.seams import blind_seam_score, layout_seam_score
from plugin.engine.families.copgen.canvas import DEFAULT_TILING, WINDOW_UNITS, latents_per_unit, sample_area
from plugin.engine.families.copgen.sampling import sampling_streams
from plugin.engine.tiling import parse_tiling

UNITS = (14, 14)  # 6.7 km: several windows each way
STEPS = 12
KEYS = ("S1RTC_vh_vv", "S2L2A_B05_B06_B07_B11_B12_B8A", "DEM_DEM")  # 10 m, 20 m, 30 m
pytestmark = pytest.mark.timeout(600)


def scores(spec, seed=0, length_units=1.0):
    tiling = parse_tiling(spec)
    oracle = MultiResolutionOracle(length_units)
    result = sample_area(oracle.denoise, KEYS, {}, UNITS, 1, STEPS, "dpm-solver-fast", tiling=tiling,
                         streams=sampling_streams(seed), max_windows=64)
    found = {}
    for key in KEYS:
        canvas = result[key][0]
        factor = latents_per_unit(key)
        found[key] = (layout_seam_score(canvas, tiling, *UNITS, STEPS, scale=factor, size=WINDOW_UNITS),
                      blind_seam_score(canvas, cell=factor))
    return found


def test_default_tiling_shows_no_seams_at_any_resolution_where_independent_windows_do():
    default, independent = scores(DEFAULT_TILING), scores("overlap:0")
    for key in KEYS:
        print(key, "default", default[key], "independent", independent[key])
    # the test can fail: independent windows show their grid at 10 m and 20 m
    for key in KEYS:
        assert independent[key][0] > 1.5 and independent[key][1] > 1.5, key
        assert default[key][0] < 1.1 and default[key][1] < 1.4, key


def test_windows_per_call_on_a_major_tom_cell_are_counted():
    """A cell (1068 px at 10 m) is 23 x 23 units; the default's windows per network call, and
    their area over the cell's (docs/performance.md)."""
    tiling = parse_tiling(DEFAULT_TILING)
    windows = tiling.windows_per_call(23, 23, 50, size=WINDOW_UNITS)
    assert set(windows) == {64}  # 8 x 8 windows of 4 units, overlaps >= 1 unit
    assert round(64 / (23 * 23 / WINDOW_UNITS ** 2), 2) == 1.94
