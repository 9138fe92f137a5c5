"""Dataset throughput: Major TOM cells per hour on this machine, 1 and 2 Dask workers, tiny model.

Converts the tiny reference checkpoints (random weights, the full architecture's layout at toy
width) into a model folder, then for each worker count runs the same cells through the
`dataset` machinery (a fresh LocalCluster, unconditional generation of --generate) into a fresh
folder and prints wall time and cells per hour, cluster start-up included and excluded. The
tiny model makes the figures mostly overhead (cluster, VAE-sized windows, GeoTIFF writing):
they show scaling, not the full model's speed; see the estimate printed last for that.

    .venv/bin/python bench/dataset_cells.py [--cells 4] [--steps 10] [--size 1068] [--workers 1,2]
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from plugin.dataset.jobs import RunOptions, make_jobs  # noqa: E402
from plugin.dataset.run import model_on_workers, run_jobs, start_client  # noqa: E402
from plugin.engine.vae_canvas import PIXELS_PER_LATENT  # noqa: E402
from plugin.engine.convert import convert  # noqa: E402
from plugin.engine.families.beta.registry import LATENT_SIZE  # noqa: E402
from plugin.engine.tiling import DEFAULT_TILING, parse_tiling, vae_layout  # noqa: E402
from plugin.geo.majortom import cell_named, cell_target_grid  # noqa: E402

FIXTURES = REPO.parent / "shared" / "fixtures" / "copgen_beta_reference"
CELLS = ("282D_485L", "282D_484L", "282D_483L", "282D_482L", "38D_378R", "38D_379R", "38D_380R", "38D_381R")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cells", type=int, default=4)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--size", type=int, default=1068, help="cell size in px (default: the whole product)")
    parser.add_argument("--generate", default="s1_rtc")
    parser.add_argument("--workers", default="1,2")
    args = parser.parse_args()
    cells = [cell_named(name) for name in CELLS[: args.cells]]
    with tempfile.TemporaryDirectory(prefix="copgen-dataset-bench-") as work:
        model_dir = convert(FIXTURES / "denoiser_tiny.pth", FIXTURES / "vae_tiny.pth", Path(work) / "model", heads=2)
        print(f"{len(cells)} cells of {args.size} px, {args.steps} steps, generating {args.generate}, "
              f"tiny model, {os.cpu_count()} CPU cores, load {os.getloadavg()[0]:.1f}")
        for workers in (int(w) for w in args.workers.split(",")):
            options = RunOptions(model_dir=str(model_dir), generate=args.generate, steps=args.steps,
                                 threads=max(1, (os.cpu_count() or 1) // workers), cell_size_px=args.size)
            jobs = make_jobs(cells, [], options, Path(work) / f"out{workers}")
            start = time.perf_counter()
            client, cluster = start_client(workers=workers)
            try:
                model = model_on_workers(client, options)
                ready = time.perf_counter()
                report = run_jobs(client, jobs, model)
                end = time.perf_counter()
            finally:
                client.close()
                cluster.close()
            assert len(report.done) == len(cells), report.failed
            print(f"{workers} worker(s): {end - start:6.1f} s with cluster start ({ready - start:.1f} s), "
                  f"{3600 * len(cells) / (end - start):7.1f} cells/h; "
                  f"{3600 * len(cells) / (end - ready):7.1f} cells/h once started")
    print_full_size_estimate(cells[0], args.size)


def print_full_size_estimate(cell, size, steps=50):
    """Cells per hour of the full-size model, on paper: the engine's window counts for the
    default tiling times per-window costs."""
    grid = cell_target_grid(cell, size)  # the grid generate pads the cell to
    height, width = grid.height // PIXELS_PER_LATENT, grid.width // PIXELS_PER_LATENT
    denoiser_calls = sum(parse_tiling(DEFAULT_TILING).windows_per_call(height, width, steps))
    vae = vae_layout(height, width)
    decoder_tiles = len(vae) * vae.window_shape[0] * vae.window_shape[1] / LATENT_SIZE ** 2  # in 256 px tiles
    # Full-size denoiser window: ~0.7 TFLOP (287 M parameters x 1028 tokens x 2, plus attention);
    # SD VAE decoder at 256 px: ~0.3 TFLOP. Assumed sustained fp16 throughput per GPU:
    # 300 TFLOP/s (a third of an H100/H200's dense peak). CPU fp32: 3.7 s per denoiser window
    # (docs/performance.md, this machine's CPU).
    gpu_seconds = (denoiser_calls * 0.7 + decoder_tiles * 0.3) / 300.0
    cpu_seconds = denoiser_calls * 3.7
    print(f"full-size model, one {size} px cell ({grid.width} px grid), 1 generated modality, {steps} steps, "
          f"tiling {DEFAULT_TILING}: {denoiser_calls} denoiser window calls, {decoder_tiles:.1f} decoder tiles of 256 px")
    print(f"  paper: ~{gpu_seconds:.0f} s per cell per GPU worker -> ~{3600 / gpu_seconds:.0f} cells/h per GPU, "
          f"N GPU workers ~{3600 / gpu_seconds:.0f} x N cells/h (cells are independent)")
    print(f"  measured basis: CPU fp32 3.7 s per window -> {cpu_seconds / 3600:.1f} h per cell on this CPU")


if __name__ == "__main__":
    main()
