"""Seams and cost of the tiling strategies on a whole Major TOM cell, with the Gaussian-field oracle.

A Major TOM cell is 1068 px; the 10 m grid pads it to a multiple of 8 px, 1072 px, so the canvas
is 134 x 134 latents (``--size`` to change it). Each strategy samples that canvas with the
oracle denoiser of bench/gaussian_oracle.py (exact for a Gaussian random field of correlation
length l latents, applied per 32 x 32 window without context, as the real network is), for
several seeds, correlation lengths and step counts, and reports:

- cost: mean denoiser windows per network call over the canvas area in 32 x 32 tiles;
- seam: the seam score of the sampled latents at the window boundaries (crossfade middles): the
  larger of that at every boundary any call used and that at the last call's layout (shifting
  spreads boundaries everywhere, which dilutes the first); 1.00 = invisible, below 1 the blend
  is smoother than the field there;
- last: the score at the last call's layout only; blind: the layout-free detector (largest line
  over the median line: about 1.2 to 1.4 without seams);
- ok: whether seam <= max(seam of overlap:16, 1.00) + 0.02 for every l and step count.

Run from the repository root (about 10 min on 2 shared cores with the defaults):

    .venv/bin/python bench/tiling_oracle.py [--seeds 4] [--lengths 3,6,12] [--steps 20,50]
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.gaussian_oracle import GaussianFieldOracle  # noqa: E402
from plugin.analysis.seams import blind_seam_score, layout_seam_score, seam_score  # noqa: E402
from plugin.engine.canvas import canvas_streams, sample_canvas  # noqa: E402
from plugin.engine.tiling import DEFAULT_TILING, cost, parse_tiling  # noqa: E402

REFERENCE = "overlap:16"
CANDIDATES = (REFERENCE, "overlap:0", "overlap:4", "spread:4", "shifted", "overlap:8", "shifted:4",
              "schedule:4@0.7,8", "schedule:4@0.7,spread:8", "schedule:spread:4@0.7,8",
              "schedule:spread:4@0.7,spread:8", "schedule:spread:4@0.8,spread:8")
TOLERANCE = 0.02


def measure(tiling, size, length, steps, seeds, solver="dpm-solver-fast"):
    last_rows, last_cols = tiling.layout(size, size, steps - 1, steps).boundaries()
    seams, lasts, blinds = [], [], []
    for seed in range(seeds):
        oracle = GaussianFieldOracle(length)
        latents = sample_canvas(oracle.denoise, [0], [], np.zeros((0, 1, 4, size, size), np.float32),
                                (1, size, size), steps, solver, tiling, streams=canvas_streams(seed),
                                max_windows=256)[0, 0]
        lasts.append(seam_score(latents, rows=last_rows, cols=last_cols))
        seams.append(layout_seam_score(latents, tiling, size, size, steps))
        blinds.append(blind_seam_score(latents))
    return float(np.mean(seams)), float(np.mean(lasts)), float(np.mean(blinds))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=134, help="canvas side in latents (default 134: one cell)")
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--lengths", default="3,6,12", help="correlation lengths in latents")
    parser.add_argument("--steps", default="20,50")
    parser.add_argument("--strategies", default=" ".join(CANDIDATES + (DEFAULT_TILING,)),
                        help="specs separated by spaces (overlap:16, the reference, always runs first)")
    args = parser.parse_args()
    lengths = [float(v) for v in args.lengths.split(",")]
    step_counts = [int(v) for v in args.steps.split(",")]
    specs = list(dict.fromkeys(args.strategies.split()))
    specs = [REFERENCE] + [spec for spec in specs if spec != REFERENCE]
    start = time.perf_counter()
    print(f"canvas {args.size} x {args.size} latents ({args.size * 8} px), {args.seeds} seeds, "
          f"dpm-solver-fast; seam / last / blind per (steps, l)")
    header = f"{'strategy':32} {'cost':>5} " + " ".join(
        f"{f'{n} st l={length:g}':>19}" for n in step_counts for length in lengths) + "  ok"
    print(header)
    reference, ranked = None, []
    for spec in specs:
        tiling = parse_tiling(spec)
        result = {(n, length): measure(tiling, args.size, length, n, args.seeds)
                  for n in step_counts for length in lengths}
        reference = reference or result  # the first spec is the reference
        price = max(cost(tiling, args.size, args.size, n) for n in step_counts)
        ok = all(result[key][0] <= max(reference[key][0], 1.0) + TOLERANCE for key in reference)
        cells = " ".join(f"{s:5.2f}/{last:5.2f}/{blind:5.2f}" for s, last, blind in result.values())
        print(f"{spec:32} {price:5.2f} {cells}  {'yes' if ok else 'no'}", flush=True)
        if ok:
            ranked.append((price, spec))
    print(f"\ncheapest within {TOLERANCE} of max({REFERENCE}, 1.00) everywhere: "
          f"{min(ranked)[1] if ranked else 'none'} (cost {min(ranked)[0]:.2f})" if ranked else "none passes")
    print(f"({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
