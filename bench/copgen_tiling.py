"""COP-GEN's denoiser windows per Major TOM cell, and the seams of the layouts that would cost less.

A cell is 1068 px at 10 m, 22.25 units of 480 m: the lattice covers it with 23 x 23 units. A
window is 4 x 4 units and may only move by whole units (a 60 m latent is one unit, so a window of
every modality stays a whole block of its canvas). This prints:

1. the arithmetic: along one axis, n windows with overlaps >= v units cover 4 + (n - 1)(4 - v)
   units, so a 23-unit side needs n >= 1 + (23 - 4) / (4 - v): 8 with v = 1 (64 windows, 1.94x
   the canvas), 6 with v = 0 (hard cuts: 36 windows, 1.09x); any 7-window side has a hard cut;
2. for each candidate layout: windows per call (mean over the calls), cost (windows x 16 units^2
   over the 23 x 23 canvas, and over the cell's own 22.25^2) and the seam scores of the
   multi-resolution Gaussian-field oracle (bench/gaussian_oracle.MultiResolutionOracle, as
   tests/test_copgen_seams.py) at 10 m, 20 m and 30 m: at the layout's boundaries / layout-free,
   mean over the seeds; ok = every boundary score <= max(the default's, 1.00) + TOLERANCE (the
   bar of bench/tiling_oracle.py, with today's default as the reference; it runs first).

    .venv/bin/python bench/copgen_tiling.py [--units 23] [--steps 12] [--seeds 2] [--lengths 1,2]
"""

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.gaussian_oracle import MultiResolutionOracle  # noqa: E402
from plugin.analysis.seams import blind_seam_score, layout_seam_score  # noqa: E402
from plugin.engine.families.copgen.canvas import (  # noqa: E402
    DEFAULT_TILING, WINDOW_UNITS, latents_per_unit, sample_area)
from plugin.engine.families.copgen.sampling import sampling_streams  # noqa: E402
from plugin.engine.tiling import parse_tiling  # noqa: E402

CELL_UNITS = 1068 / 48  # a cell's side in 480 m units (48 px at 10 m)
KEYS = ("S1RTC_vh_vv", "S2L2A_B05_B06_B07_B11_B12_B8A", "DEM_DEM")  # 10 m, 20 m, 30 m
CANDIDATES = (DEFAULT_TILING, "overlap:0", "spread:0", "schedule:spread:0@0.3,spread:1",
              "schedule:spread:0@0.5,spread:1", "schedule:shifted@0.3,spread:1",
              "schedule:shifted@0.4,spread:1", "schedule:shifted@0.5,spread:1", "schedule:spread:1@0.6,shifted",
              "shifted:1")
TOLERANCE = 0.02


def windows_needed(side, overlap, size=WINDOW_UNITS):
    return 1 if side <= size else 1 + math.ceil((side - size) / (size - overlap))


def mean_windows(tiling, units, steps):
    return float(np.mean(tiling.windows_per_call(units, units, steps, size=WINDOW_UNITS)))


def seams(tiling, units, steps, seeds, length):
    found = {key: [] for key in KEYS}
    for seed in range(seeds):
        result = sample_area(MultiResolutionOracle(length).denoise, KEYS, {}, (units, units), 1, steps,
                             "dpm-solver-fast", tiling=tiling, streams=sampling_streams(seed), max_windows=256)
        for key in KEYS:
            factor = latents_per_unit(key)
            canvas = result[key][0]
            found[key].append((layout_seam_score(canvas, tiling, units, units, steps, scale=factor, size=WINDOW_UNITS),
                               blind_seam_score(canvas, cell=factor)))
    return {key: tuple(np.mean(values, axis=0)) for key, values in found.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--units", type=int, default=23, help="canvas side in 480 m units (23: a cell)")
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--lengths", default="1,2", help="correlation lengths in units")
    parser.add_argument("--strategies", default=" ".join(CANDIDATES))
    args = parser.parse_args()
    units, area = args.units, args.units ** 2 / WINDOW_UNITS ** 2
    print(f"canvas {units} x {units} units ({units * 0.48:.2f} km; a cell is {CELL_UNITS:.2f} units); "
          f"window {WINDOW_UNITS} units; 1.00x = {area:.2f} windows")
    for overlap in (0, 1, 2):
        n = windows_needed(units, overlap)
        print(f"  overlaps >= {overlap} unit: {n} per side, {n * n} windows, {n * n / area:.2f}x the canvas, "
              f"{n * n * WINDOW_UNITS ** 2 / CELL_UNITS ** 2:.2f}x the cell")
    print(f"  1.65x the canvas is {1.65 * area:.1f} windows per call on average; 7 x 8 = 56 is {56 / area:.2f}x "
          f"and has a hard cut on the 7-window side (4 + 6 x 3 = 22 < {units})")
    lengths = [float(v) for v in args.lengths.split(",")]
    start = time.perf_counter()
    print(f"\nseams: dpm-solver-fast, {args.steps} steps, {args.seeds} seeds; boundary / layout-free per "
          f"resolution (10 m, 20 m, 30 m) and correlation length (units)")
    specs = [DEFAULT_TILING] + [spec for spec in dict.fromkeys(args.strategies.split()) if spec != DEFAULT_TILING]
    reference = None
    for spec in specs:
        tiling = parse_tiling(spec)
        windows = mean_windows(tiling, units, args.steps)
        cells, scores = [], {}
        for length in lengths:
            found = seams(tiling, units, args.steps, args.seeds, length)
            scores.update({(length, key): found[key][0] for key in KEYS})
            cells.append(f"l={length:g}: " + " ".join(f"{found[key][0]:.2f}/{found[key][1]:.2f}" for key in KEYS))
        reference = reference or scores
        ok = all(score <= max(reference[where], 1.0) + TOLERANCE for where, score in scores.items())
        print(f"{spec:34} {windows:5.1f} windows {windows / area:5.2f}x canvas "
              f"{windows * WINDOW_UNITS ** 2 / CELL_UNITS ** 2:5.2f}x cell | {' | '.join(cells)} | "
              f"{'ok' if ok else 'no'}", flush=True)
    print(f"({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
