"""How close the time a run announces is to the time it takes: estimate vs measured, per stage,
for both model families, on a tile and on a Major TOM cell.

Generates with generate_area, the engine's one generation path, conditioned on Sentinel-2 L2A,
and prints the estimate the run announced (its first progress message, priced by the kept speed
figures: plugin/engine/speed.py, families/copgen/speed.py) beside the measured wall time,
overall and per stage (encoding, denoising, decoding), with their ratio. A stage is measured from
the start of its network's first call to the end of its last (so the work between calls, such as
blending windows, counts); decoding runs to the end of the run (writing the files).

The area: --px 0 (default) is the real 224 px Major TOM tile as it is; --px N is an N x N px
square (1068: a Major TOM cell, 10.68 km) from the tile's top-left corner, conditioned on a
cell-sized copy of the tile mirrored over it (numpy 'symmetric' padding: real pixels, every band,
written to a scratch GeoTIFF) so every stage sees a full cell, as a real cell's product would.

--build DIR writes full-size random checkpoints of --family (plugin.benchmarks: random weights,
real timings and memory, meaningless pixels), converts them with --precision int8 into
DIR/<family>_int8 once and uses that folder. Without --model-dir or --build the tiny COP-GEN-Beta
checkpoints are converted on the fly: their figures are mostly overhead. Run twice: the first
run on a model measures the speed (said on the first line), later ones reuse it.

    .venv/bin/python bench/estimate_ratio.py --build /tmp/fullsize --family cop-gen --steps 2 --px 1068
    .venv/bin/python bench/estimate_ratio.py --model-dir DIR [--steps 10] [--generate s1_rtc,dem]
"""

import argparse
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from plugin.engine import load, speed  # noqa: E402
from plugin.engine.convert import convert  # noqa: E402
from plugin.engine.cpu_features import isa_summary  # noqa: E402
from plugin.engine.request import GenerationRequest  # noqa: E402
from plugin.geo import physical_pipeline, pipeline  # noqa: E402
from plugin.geo.condition_spec import ConditionSpec  # noqa: E402

FIXTURES = REPO.parent / "shared" / "fixtures" / "copgen_beta_reference"
TILE = REPO.parent / "shared" / "data" / "majortom_s2l2a" / "282D_485L_3_3.tif"
GENERATE = {"cop-gen-beta": "s1_rtc,dem", "cop-gen": "S1RTC_vh_vv,DEM_DEM"}
STAGES = {"encode_moments": "encoding", "denoise": "denoising", "decode": "decoding"}


def build(folder, family):
    """The converted full-size random model of ``family`` in ``folder`` (written once)."""
    folder = Path(folder)
    model = folder / f"{family}_int8"
    if (model / "model.json").exists():
        return model
    if family == "cop-gen":
        from plugin.benchmarks.copgen_weights import SIZES, write_copgen_checkpoints

        denoiser, vaes = write_copgen_checkpoints(folder / "copgen_weights")
        source, heads = ["--vae-dir", str(vaes)], SIZES["full"][0].num_heads
    else:
        from plugin.benchmarks.weights import DENOISER, fullsize_checkpoints

        denoiser, vae = fullsize_checkpoints(folder / "beta_weights")
        source, heads = ["--vae", str(vae)], DENOISER.num_heads
    subprocess.run([sys.executable, "-m", "plugin", "convert", "--denoiser", str(denoiser), *source,
                    "--out", str(model), "--heads", str(heads), "--precision", "int8"], cwd=REPO, check=True)
    return model


def cell_condition(px, folder):
    """A px x px 12-band GeoTIFF from the tile's top-left corner: the tile mirrored over it."""
    import rasterio

    with rasterio.open(TILE) as src:
        data, profile, descriptions = src.read(), src.profile, src.descriptions
    reps = -(-px // data.shape[1])
    grow = ((0, 0), (0, (reps - 1) * data.shape[1]), (0, (reps - 1) * data.shape[2]))
    padded = np.pad(data, grow, mode="symmetric")[:, :px, :px]
    profile.update(width=px, height=px, tiled=True, blockxsize=256, blockysize=256, compress="deflate")
    path = Path(folder) / f"mirrored_{px}px.tif"
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(padded)
        for band, text in enumerate(descriptions, start=1):
            if text:
                dst.set_band_description(band, text)
    return path


def request_for(model, condition, px, args):
    generate = (args.generate or GENERATE[model.family]).split(",")
    if model.family == "cop-gen":
        spec = physical_pipeline.PhysicalConditionSpec("s2l2a", str(condition))
    else:
        spec = ConditionSpec("s2_l2a", str(condition), bands=(4, 3, 2))
    extent = None
    if px:
        import rasterio

        with rasterio.open(condition) as src:
            b = src.bounds
            extent = f"{b.left:.0f},{b.bottom:.0f},{b.right:.0f},{b.top:.0f},{src.crs.to_epsg()}"
    return GenerationRequest(generate=generate, conditions=(spec,), extent=extent, steps=args.steps,
                             max_area_km2=1000, family=model.family, seed=1)


def peak_rss_gib():
    """This process's peak resident set so far (VmHWM), GiB; None off Linux."""
    try:
        line = next(l for l in Path("/proc/self/status").read_text().splitlines() if l.startswith("VmHWM:"))
    except (OSError, StopIteration):
        return None
    return int(line.split()[1]) / 2 ** 20


def timed_calls(model, spans):
    """Wrap the model's network calls: spans[stage] = [first start, last end, seconds in calls,
    calls, peak RSS (GiB) before the stage's first call]."""
    for name, stage in STAGES.items():
        call = getattr(model, name)

        def wrapper(*a, call=call, stage=stage, **k):
            before = peak_rss_gib() if stage not in spans else None
            start = time.perf_counter()
            try:
                return call(*a, **k)
            finally:
                end = time.perf_counter()
                span = spans.setdefault(stage, [start, end, 0.0, 0, before])
                span[1], span[2], span[3] = end, span[2] + end - start, span[3] + 1

        setattr(model, name, wrapper)


def keep_estimate(announced):
    """Keep the estimate each family's pipeline prices (and announces as its first message), and
    announced["again"](): the same estimate priced with the speed measured anew, now."""
    beta, copgen = pipeline.estimate_run, physical_pipeline.canvas_cost

    def keep(price, *a, **k):
        announced["estimate"] = price(*a, **k)
        announced["again"] = lambda: reprice(price, *a, **k)
        return announced["estimate"]

    pipeline.estimate_run = lambda *a, **k: keep(beta, *a, **k)
    physical_pipeline.canvas_cost = lambda *a, **k: keep(copgen, *a, **k)


def reprice(price, *args, **kwargs):
    """``price(*args)`` with this machine's speed measured again (an empty speed cache): the
    other people on a shared machine change its speed between the kept measurement and the run."""
    from plugin.engine import estimate
    from plugin.engine.families.copgen import speed as copgen_speed

    estimate._MEASURED.clear()
    copgen_speed._KNOWN.clear()
    with tempfile.TemporaryDirectory(prefix="estimate-ratio-speed-") as cache:
        kept, os.environ[speed.CACHE_DIR_ENV] = os.environ.get(speed.CACHE_DIR_ENV), cache
        try:
            return price(*args, **kwargs)
        finally:
            if kept is None:
                os.environ.pop(speed.CACHE_DIR_ENV)
            else:
                os.environ[speed.CACHE_DIR_ENV] = kept


def estimated_stages(estimate):
    if hasattr(estimate, "stage_seconds") and isinstance(estimate, physical_pipeline.CanvasCost):
        return estimate.stage_seconds, {"encoding": estimate.encoder_tiles, "denoising": estimate.windows,
                                        "decoding": estimate.decoder_tiles}
    counts = {"encoding": estimate.encoder_tiles, "denoising": estimate.denoiser_windows,
              "decoding": estimate.decoder_tiles}
    return {stage: n * estimate.stage_seconds[stage] for stage, n in counts.items()}, counts


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", default=None)
    parser.add_argument("--build", default=None, help="folder for full-size random models of --family")
    parser.add_argument("--family", choices=sorted(GENERATE), default="cop-gen-beta")
    parser.add_argument("--px", type=int, default=0, help="square side in px (0: the tile itself; 1068: a cell)")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--generate", default=None, help="modalities (default: S1 and the DEM)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--preference", default="fast", choices=("fast", "faithful"))
    parser.add_argument("--reprice", action="store_true",
                        help="also price the run with the speed measured again right after it")
    args = parser.parse_args()
    print(f"host: {platform.machine()}, {os.cpu_count()} logical CPUs; instruction sets: {isa_summary()}")
    print(f"load average at start: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    with tempfile.TemporaryDirectory(prefix="estimate-ratio-") as scratch:
        if args.build:
            model_dir = build(args.build, args.family)
        else:
            model_dir = args.model_dir or convert(FIXTURES / "denoiser_tiny.pth", FIXTURES / "vae_tiny.pth",
                                                  Path(scratch) / "model", heads=2)
        model = load(model_dir, args.device, preference=args.preference)
        key = speed.speed_key(model)
        kept = any(name.startswith(key) for name in speed._read())  # Beta's key, or COP-GEN's key:figure
        print(f"model {model_dir} ({model.family}, denoiser {model.denoiser_precision}); speed figures: "
              f"{'kept from an earlier run' if kept else 'measured now (first run here)'} ({speed.cache_file()})")
        condition = cell_condition(args.px, scratch) if args.px else TILE
        request = request_for(model, condition, args.px, args)
        print(f"area: {'the 224 px tile' if not args.px else f'{args.px} x {args.px} px (mirrored tile)'}, "
              f"generate {','.join(request.generate)}, steps {args.steps}, samples 1, tiling default")
        announced, spans = {}, {}
        keep_estimate(announced)
        timed_calls(model, spans)

        def progress(done, total, message):
            if "after_s" not in announced:  # the estimate: its speed measurement is not the run's work
                spans.clear()
                announced["after_s"] = time.perf_counter() - started
                announced["work_from"] = time.perf_counter()

        started = time.perf_counter()
        pipeline.generate_area(model, request, Path(scratch) / "out", progress=progress)
        timed_calls_done = time.perf_counter()
        estimate = announced["estimate"]
        model_calls = {stage: list(span) for stage, span in spans.items()}
        after = announced["again"]() if args.reprice else None
    print(f"estimate announced {announced['after_s']:.2f} s after the start: {estimate.describe()}")
    report(estimate, model_calls, timed_calls_done, announced["work_from"])
    if after is not None:
        print(f"\nthe same run priced with the speed measured again just after it (same load as its end): "
              f"{after.describe()}")
        report(after, model_calls, timed_calls_done, announced["work_from"])


def report(estimate, model_calls, ended, work_from):
    guesses, counts = estimated_stages(estimate)
    print(f"{'stage':<10} {'evaluations':>11} {'estimated s':>12} {'measured s':>11} {'in calls s':>11} "
          f"{'measured / estimated':>21}")
    if "decoding" in model_calls:
        model_calls["decoding"][1] = ended  # writing the outputs is part of the last stage
    peaks = []
    for stage in ("encoding", "denoising", "decoding"):
        guess = guesses.get(stage) or 0.0
        first, last, inside, calls, rss = model_calls.get(stage, (0.0, 0.0, 0.0, 0, None))
        if rss is not None:
            peaks.append(f"{rss:.2f} GiB before {stage}")
        taken = last - first
        ratio = taken / guess if guess else float("nan")
        print(f"{stage:<10} {counts[stage]:>11} {guess:>12.2f} {taken:>11.2f} {inside:>11.2f} {ratio:>21.2f}")
    total = ended - work_from
    print(f"{'run':<10} {'':>11} {estimate.seconds:>12.2f} {total:>11.2f} {'':>11} {total / estimate.seconds:>21.2f}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20  # KiB on Linux
    print(f"memory: estimate {estimate.peak_bytes / 2 ** 30:.2f} GiB, peak RSS {peak:.2f} GiB "
          f"(measured / estimated {peak / (estimate.peak_bytes / 2 ** 30):.2f}); peak RSS {', '.join(peaks)}")
    print(f"load average at end: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
