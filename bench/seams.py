"""Seams of the MultiDiffusion canvas against independent tiles, and the cost of a large area.

Uses the tiny fixture checkpoints (random weights, converted here with plugin.engine.convert),
so the figures measure the tiling, memory and time of the pipeline, not image quality.
Run from the repository root:

    .venv/bin/python bench/seams.py [--steps 4] [--km 20] [--seeds 3]

1. A 3 x 3-tile area (768 x 768 px, 7.68 km) around the real Sentinel-2 tile, conditioned on it,
   generating dem and s1_rtc, once as the canvas (overlap 16 latents) and once as independent
   tiles (overlap 0), for a few seeds: the seam score (mean absolute neighbour difference across
   the 256 px tile grid over the same elsewhere; about 1 = no visible grid) of every output.
2. A --km x --km area generated the same way in a child process: wall time and peak RSS
   (the child's ru_maxrss), compared with the 4 GB target.

With --decoder instead: the VAE decoder's tiles with a real-size random VAE (the official
structure at full size, random weights as bench/convert_fullsize.py writes them): seconds per
tile at 256 px and at the default tile size on that canvas, and the seam excess of a smooth
latent canvas decoded in the default tiles (plugin.engine.tiling.vae_layout), in the previous
3 x 3-style halo tiles (overlap 8, at most 56 latents), in the old 32-latent windows at overlap 16
(and with --hard-cuts in hard-cut tiles) over the whole canvas decoded at once
(plugin.analysis.seams.decoder_seam_excess: at the tile boundaries / layout-free).
"""

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
FIXTURES = SHARED / "fixtures" / "copgen_beta_reference"
TILE = SHARED / "data" / "majortom_s2l2a" / "282D_485L_3_3.tif"
sys.path.insert(0, str(REPO))

import rasterio  # noqa: E402

from plugin.engine import load  # noqa: E402
from plugin.engine.convert import convert  # noqa: E402
from plugin.geo.condition_spec import ConditionSpec  # noqa: E402
from plugin.engine.request import GenerationRequest  # noqa: E402
from plugin.geo.pipeline import generate_area  # noqa: E402
from plugin.analysis.seams import decoder_seam_excess, seam_score  # noqa: E402

GENERATE = ["dem", "s1_rtc"]
TARGET_BYTES = 4 * 10**9


def square_around_tile(side_m):
    """(xmin, ymin, xmax, ymax, crs) of a square on the 10 m lattice centred on the tile."""
    with rasterio.open(TILE) as ds:
        crs, b = ds.crs, ds.bounds
    left = round(((b.left + b.right) / 2 - side_m / 2) / 10) * 10
    bottom = round(((b.bottom + b.top) / 2 - side_m / 2) / 10) * 10
    return (left, bottom, left + side_m, bottom + side_m, crs.to_string())


def run_area(model, out_dir, side_m, steps, seed, overlap):
    start = time.perf_counter()
    request = GenerationRequest(
        generate=GENERATE, conditions=[ConditionSpec("s2_l2a", TILE)], extent=square_around_tile(side_m),
        seed=seed, steps=steps, tiling=f"overlap:{overlap}",
    )
    paths = generate_area(model, request, out_dir)
    return paths, time.perf_counter() - start


def seam_table(model, work, steps, seeds):
    print(f"1. seam score, 768 x 768 px area conditioned on {TILE.name}, {steps} steps")
    print(f"{'mode':<22}{'seed':>5}" + "".join(f"{m:>10}" for m in GENERATE) + f"{'time s':>9}")
    for mode, overlap in (("canvas (overlap 16)", 16), ("independent tiles", 0)):
        for seed in range(seeds):
            paths, seconds = run_area(model, work / f"{overlap}_{seed}", 7680, steps, seed, overlap)
            scores = []
            for path in paths:
                with rasterio.open(path) as ds:
                    scores.append(seam_score(ds.read()))
            print(f"{mode:<22}{seed:>5}" + "".join(f"{s:>10.3f}" for s in scores) + f"{seconds:>9.1f}")


def big_area(model_dir, out_dir, km, steps):
    """Child process: one large run; prints its time and peak RSS as JSON."""
    model = load(model_dir, device="cpu")
    paths, seconds = run_area(model, Path(out_dir), km * 1000, steps, 0, 16)
    with rasterio.open(paths[0]) as ds:
        size = (ds.width, ds.height)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB
    print(json.dumps({"seconds": seconds, "peak_bytes": peak, "size": size, "files": len(paths)}))


def decoder_seams(size, hard_cuts=False):
    """Decoder figures with a real-size random VAE; see the module docstring."""
    import numpy as np
    import onnx

    from plugin.benchmarks.weights import VAE, random_state
    from plugin.engine.canvas import to_uint8
    from plugin.engine.vae_canvas import decode_canvas
    from plugin.engine.runtime import open_session
    from plugin.engine.tiling import Layout, lattice, vae_layout
    from plugin.engine.vae_layout import expected_shapes
    from plugin.engine.vae_onnx import build_vae_decoder

    with tempfile.TemporaryDirectory(prefix="copgen-decoder-") as tmp:
        path = Path(tmp) / "vae_decoder.onnx"
        onnx.save(build_vae_decoder(random_state(expected_shapes(VAE), 1), VAE), path)
        session = open_session(path, device="cpu")

    def decode(latents):
        return np.clip((session.run({"latents": latents})[0] + 1.0) / 2.0, 0.0, 1.0)

    rng = np.random.default_rng(0)
    default = vae_layout(size, size)
    for side in sorted({32, default.window_shape[0]}):
        tile = rng.standard_normal((1, 4, side, side), dtype=np.float32)
        decode(tile)
        start = time.perf_counter()
        decode(tile)
        print(f"decode of one {side * 8} px tile: {time.perf_counter() - start:.2f} s", flush=True)
    field = rng.standard_normal((4, size, size))
    kernel = np.exp(-0.5 * (np.arange(-18, 19) / 6.0) ** 2)
    for axis in (1, 2):
        field = np.apply_along_axis(lambda v: np.convolve(v, kernel, mode="same"), axis, field)
    latents = (field / field.std()).astype(np.float32)
    start = time.perf_counter()
    whole = decode(latents[None])[0] * 255.0
    print(f"whole canvas decoded at once: {time.perf_counter() - start:.0f} s", flush=True)
    layouts = {"halo tiles (default)": default,
               "halo tiles <= 56, overlap 8 (previous)": vae_layout(size, size, min_overlap=8, max_tile=56,
                                                                          budget=1.0),
               "32-latent windows, overlap 16 (before)": Layout(lattice(size, 16), lattice(size, 16))}
    if hard_cuts:
        layouts["hard-cut tiles"] = Layout(lattice(size, 0), lattice(size, 0))
    print(f"seam excess over the whole decode, {size} x {size} latents: at the tile boundaries / layout-free:")
    for name, layout in layouts.items():
        image = np.zeros((3, size * 8, size * 8), np.float64)

        def write(row, col, strip):
            rgb = to_uint8(strip)
            image[:, row:row + rgb.shape[1], col:col + rgb.shape[2]] = rgb

        start = time.perf_counter()
        decode_canvas(decode, latents, write, layout=layout, batch=1)
        at_layout, blind = decoder_seam_excess(image, whole, layout)
        area = len(layout) * layout.window_shape[0] * layout.window_shape[1] / size ** 2
        print(f"  {name:46} {len(layout):3d} tiles of {layout.window_shape[0]:2d} ({area:.2f}x area) "
              f"{at_layout:+.3f} / {blind:+.3f}  (mean |difference| {np.abs(image - whole).mean():.1f} / 255; "
              f"{time.perf_counter() - start:.0f} s)", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--km", type=float, default=20)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--decoder", type=int, metavar="LATENTS",
                        help="only the decoder figures with a real-size random VAE on this canvas side")
    parser.add_argument("--hard-cuts", action="store_true", help="with --decoder: also hard-cut tiles")
    parser.add_argument("--child", nargs=2, metavar=("MODEL_DIR", "OUT_DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.decoder:
        decoder_seams(args.decoder, args.hard_cuts)
        return
    if args.child:
        big_area(*args.child, args.km, args.steps)
        return

    with tempfile.TemporaryDirectory(prefix="copgen-seams-") as tmp:
        work = Path(tmp)
        model_dir = convert(FIXTURES / "denoiser_tiny.pth", FIXTURES / "vae_tiny.pth", work / "model", heads=2)
        seam_table(load(model_dir, device="cpu"), work, args.steps, args.seeds)

        print(f"\n2. {args.km:g} km x {args.km:g} km area, {', '.join(GENERATE)} from s2_l2a, {args.steps} steps")
        child = subprocess.run(
            [sys.executable, __file__, "--km", str(args.km), "--steps", str(args.steps),
             "--child", str(model_dir), str(work / "big")],
            check=True, capture_output=True, text=True,
        )
        result = json.loads(child.stdout.strip().splitlines()[-1])
        verdict = "below" if result["peak_bytes"] < TARGET_BYTES else "ABOVE"
        print(f"grid {result['size'][0]} x {result['size'][1]} px, {result['files']} files")
        print(f"wall time {result['seconds']:.1f} s, peak RSS {result['peak_bytes'] / 2**30:.2f} GiB "
              f"({verdict} the 4 GB target)")


if __name__ == "__main__":
    main()
