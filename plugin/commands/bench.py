"""bench: time the denoiser, the VAE and whole tiles for every precision and provider here.

Without --model it writes full-size random-weight checkpoints in the official layouts into a
cache folder (plugin.benchmarks.weights, shipped with the plugin), converts them with an
int8 denoiser (and an fp16 folder where CUDA is available) and reuses them on later runs.
Each configuration runs in a child process of its own, so its peak memory is its own.

Figures: one denoiser call (batch 1, 4 modalities, 1028 tokens) and one VAE encode / decode
of a 256 px tile (minimum and median of the repeats); one 1-to-1 translation tile (encode
the condition, sample, decode); a 50-step tile and the fast preset (measured in the full run,
extrapolated from the per-call figures with --quick); one canvas step over areas of 1, 4 and
16 tiles (4 at most with --quick; MultiDiffusion windows at overlap 16, plugin.engine.canvas) and
their decode; one whole Major TOM cell (134 x 134 latents) with the earlier overlap 16 beside the
default tiling: denoiser windows per step, decoder tiles, seconds per step and the cell's time
(extrapolated; the full run also measures one default step and the default decode);
the peak RSS of the first tile (and the GPU memory on CUDA); the int8 and fp16 errors against
fp32 on the same random inputs.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from ..engine.atomic import write_json_atomic
from ..engine.errors import InputError

# The recommended fast preset: int8 denoiser, DPM-Solver-fast with a step count that ends on
# a second-order group (docs/solvers.md), about 5x cheaper than the faithful 50 fp32 steps.

from .bench_report import CELL_LATENTS, PRESET, SOLVER_STEPS, TRANSLATION, format_report, load_average, machine

FULL_STEPS = 50
NOISE_TIMES = (999.0, 500.0, 50.0)  # network time of the generated modality in the error inputs
QUICK = {"repeats": 5, "tile_steps": 2, "area_sides": (1, 2), "area_decode": False, "cell_measured": False}
FULL = {"repeats": 5, "tile_steps": FULL_STEPS, "area_sides": (1, 2, 4), "area_decode": True, "cell_measured": True}
# One Major TOM cell: 1068 px, padded to 1072 px (134 latents) by the 10 m grid. Today's tiling
# (overlap 16, and 32-latent decoder windows at overlap 16) beside the default.
CELL_TILINGS = ("overlap:16", None)  # None: the default
FASTEST_PRESET_STEPS = {"int8": PRESET["steps"]}  # the others run the faithful 50 steps
PACKAGE = __package__.rsplit(".", 1)[0]  # "plugin", or "copgen_beta.plugin" inside QGIS


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "bench",
        help="benchmark the model on this machine (per call, per tile, memory, area scaling)",
        description=__doc__,
    )
    parser.add_argument(
        "--quick", action="store_true",
        help="fewer repeats, 2-step tiles and areas up to 4 tiles; extrapolate the rest",
    )
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the figures here")
    parser.add_argument(
        "--cache", type=Path, default=Path(tempfile.gettempdir()) / "copgen_bench",
        metavar="DIR", help="folder for the random full-size checkpoints and model folders",
    )
    parser.add_argument(
        "--model", type=Path, metavar="DIR",
        help="benchmark this converted folder instead of random weights (int8 if it has one)",
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # one configuration, as JSON
    parser.set_defaults(func=run)


def run(args):
    if args.worker:
        return _worker(json.loads(args.worker))
    plan = QUICK if args.quick else FULL
    folders = _model_folders(args.model, args.cache)
    load_before = load_average()
    results = []
    with tempfile.TemporaryDirectory(prefix="copgen_bench_") as scratch:
        for config in _configurations(folders):
            print(f"measuring {config['name']} ...", file=sys.stderr, flush=True)
            spec = {**config, **plan, "outputs": str(Path(scratch) / config["name"])}
            results.append(_run_worker(spec))
        _add_errors(results, Path(scratch))
    report = {
        "command": " ".join(["python -m plugin", *sys.argv[1:]]) if sys.argv else "",
        "quick": args.quick,
        "machine": machine(load_before),
        "model": str(args.model) if args.model else "random full-size weights (287 M)",
        "preset": PRESET,
        "configurations": results,
        "solver_overhead_s": _solver_overheads(),
    }
    print(format_report(report))
    if args.json:
        write_json_atomic(args.json, report)
    return 0


# --- models and configurations --------------------------------------------------------------


def _model_folders(model, cache):
    """{"fp32"/"int8"/"fp16": folder} of the models to time."""
    from ..engine.convert import convert
    from ..engine.runtime import cuda_available

    if model is not None:
        info = _read_json(model / "model.json")
        folders = {info.get("precision", "fp32"): model}
        if "int8" in info:
            folders["int8"] = model
        return folders
    from ..benchmarks.weights import DENOISER, fullsize_checkpoints

    print(f"preparing random full-size models in {cache} (reused by later runs)",
          file=sys.stderr, flush=True)
    denoiser, vae = fullsize_checkpoints(cache)
    heads = DENOISER.num_heads
    folder = convert(denoiser, vae, cache / "model_int8", heads=heads, precision="int8")
    folders = {"fp32": folder, "int8": folder}
    if cuda_available():
        folders["fp16"] = convert(
            denoiser, vae, cache / "model_fp16", heads=heads, precision="fp16"
        )
    return folders


def _configurations(folders):
    from ..engine.runtime import cuda_available

    configs = []
    if "fp32" in folders:
        configs.append({"name": "fp32-cpu", "model_dir": str(folders["fp32"]),
                        "precision": "faithful", "device": "cpu"})
    if "int8" in folders:
        configs.append({"name": "int8-cpu", "model_dir": str(folders["int8"]),
                        "precision": "fast", "device": "cpu"})
    if cuda_available():
        for precision in ("fp16", "fp32"):
            if precision in folders:
                configs.append({"name": f"{precision}-cuda", "model_dir": str(folders[precision]),
                                "precision": "faithful", "device": "cuda"})
    if not configs:
        raise InputError(f"nothing to benchmark here: {', '.join(folders)} graphs need CUDA")
    return configs


def _run_worker(spec):
    command = [sys.executable, "-m", PACKAGE, "bench", "--worker", json.dumps(spec)]
    top = Path(__file__).resolve().parents[PACKAGE.count(".") + 2]  # holds the top package
    done = subprocess.run(command, cwd=top, stdout=subprocess.PIPE, check=False)
    if done.returncode:
        raise InputError(f"benchmark of {spec['name']} failed (exit code {done.returncode})")
    return json.loads(done.stdout.decode().strip().splitlines()[-1])


# --- the child process: one configuration ---------------------------------------------------


def _worker(spec):
    from ..engine import load

    outputs = Path(spec["outputs"])
    outputs.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    model = load(spec["model_dir"], device=spec["device"], preference=spec["precision"])
    result = {"name": spec["name"], "provider": model.provider, "graphs": model.plan.describe(),
              "notes": list(model.plan.notes), "load_s": time.perf_counter() - start}
    rng = np.random.default_rng(0)
    image = rng.uniform(-1.0, 1.0, (1, 3, 256, 256)).astype(np.float32)

    # first the tile, in the fresh process, as a user's run meets it: its peak memory is the
    # tile's own and its time includes the first calls' allocations
    steps = spec["tile_steps"]
    seconds, generated = _translation_tile(model, image, steps)
    np.save(outputs / "tile.npy", generated)
    result["tile"] = {"steps": steps, "solver": PRESET["solver"], "measured_s": seconds,
                      "peak_rss_gib": _peak_rss_gib(), "gpu_memory_mib": _gpu_memory_mib(model)}

    latents, timesteps = _noise_inputs(rng)
    noise = np.empty_like(latents)

    def one_call(index):
        noise[index] = model.denoise(latents[index:index + 1], timesteps[index:index + 1])[0]

    result["denoiser_call_s"] = _timed(one_call, spec["repeats"], cycle=len(latents))
    np.save(outputs / "noise.npy", noise)
    tile_latents = rng.standard_normal((1, 4, 32, 32), dtype=np.float32)
    result["vae_encode_s"] = _timed(lambda _: model.encode_moments(image), spec["repeats"])
    result["vae_decode_s"] = _timed(lambda _: model.decode(tile_latents), spec["repeats"])

    result["tile_50_steps"] = _tile_figure(result, FULL_STEPS, steps, seconds)
    if spec["precision"] == PRESET["precision"]:
        if steps == FULL_STEPS:  # the full run measures the preset too
            steps = PRESET["steps"]
            seconds, generated = _translation_tile(model, image, steps)
            np.save(outputs / "preset.npy", generated)
        result["preset"] = _tile_figure(result, PRESET["steps"], steps, seconds)
    result["area"] = [_area_step(model, side, spec["area_decode"], result, rng)
                      for side in spec["area_sides"]]
    result["cell"] = cell_figures(model, result, spec, rng)
    print(json.dumps(result))
    return 0


def _solver_overheads():
    """{solver: {steps: seconds}} the solver's own arithmetic costs on one tile's latents,
    measured with a network that costs nothing: every solver makes exactly `steps` calls, so a
    tile costs encode + steps x call + this + decode."""
    from ..engine.solvers import SOLVERS, solve

    x_T = np.random.default_rng(0).standard_normal((1, 1, 4, 32, 32), dtype=np.float32)
    free_network = lambda x, t: np.zeros_like(x)  # noqa: E731
    overheads = {}
    for solver in SOLVERS:
        overheads[solver] = {}
        for steps in SOLVER_STEPS:
            start = time.perf_counter()
            solve(free_network, x_T, steps=steps, solver=solver)
            overheads[solver][steps] = time.perf_counter() - start
    return overheads


def _noise_inputs(rng):
    """Random latents at the NOISE_TIMES (for the generated modality), batch of one each."""
    count = len(NOISE_TIMES)
    latents = rng.standard_normal((count, 4, 4, 32, 32), dtype=np.float32)
    timesteps = np.zeros((count, 4), dtype=np.float32)
    timesteps[:, 3] = NOISE_TIMES
    return latents, timesteps


def _timed(call, repeats, cycle=1):
    """min / median seconds of `repeats` calls after one warm-up (the first call allocates)."""
    call(0)
    seconds = []
    for index in range(repeats):
        start = time.perf_counter()
        call(index % cycle)
        seconds.append(time.perf_counter() - start)
    return {"min": min(seconds), "median": float(np.median(seconds)), "repeats": repeats}


def _translation_tile(model, image, steps):
    """Seconds of one 1-to-1 translation tile (encode, sample, decode) and its latents."""
    start = time.perf_counter()
    condition = model.encode(image, seed=0)
    sample = model.sample([TRANSLATION["generate"]], {TRANSLATION["condition"]: condition},
                          steps=steps, solver=PRESET["solver"], seed=0)
    generated = sample[TRANSLATION["generate"]]
    model.decode(generated)
    return time.perf_counter() - start, generated


def _tile_figure(result, steps, measured_steps, measured_seconds):
    if steps == measured_steps:
        return {"steps": steps, "seconds": measured_seconds, "how": "measured"}
    seconds = (result["vae_encode_s"]["min"] + steps * result["denoiser_call_s"]["min"]
               + result["vae_decode_s"]["min"])
    return {"steps": steps, "seconds": seconds,
            "how": "extrapolated: encode + steps x call + decode (minimums)"}


def _area_step(model, side, decode, result, rng):
    """One canvas denoiser step (and the decode) over side x side tiles."""
    from ..engine.canvas import CanvasDenoiser
    from ..engine.vae_canvas import decode_canvas
    from ..engine.tiling import vae_layout

    size = 32 * side
    x = rng.standard_normal((1, 1, 4, size, size), dtype=np.float32)
    condition = rng.standard_normal((1, 1, 4, size, size), dtype=np.float32)
    denoiser = CanvasDenoiser(model.denoise, "overlap:16", 1, [3], [1], condition, rng,
                              max_windows=model.max_batch)
    start = time.perf_counter()
    denoiser(x, 0.5)
    figure = {"tiles": side * side, "windows": denoiser.windows_run[0],
              "step_s": time.perf_counter() - start, "step_how": "measured, 1 step"}
    tiles = vae_layout(size, size)
    if decode:
        start = time.perf_counter()
        decode_canvas(model.decode, x[0, 0], lambda *_: None, batch=model.max_batch)
        figure.update(decode_s=time.perf_counter() - start, decode_how="measured")
    else:
        area = len(tiles) * tiles.window_shape[0] * tiles.window_shape[1] / 32 ** 2
        figure.update(decode_s=area * result["vae_decode_s"]["min"],
                      decode_how="extrapolated: tile area x decode")
    return figure


def cell_figures(model, result, spec, rng):
    """One Major TOM cell (134 x 134 latents), today's tiling beside the default: denoiser windows
    per step, decoder tiles and their area, seconds per step and the whole cell (a 1-to-1
    translation: encode, steps, decode) at this configuration's preset (faithful: 50 steps; int8:
    the fast preset's 20). Extrapolated from the per-call minimums; the full run also measures one
    default step and the default decode."""
    from ..engine.canvas import CanvasDenoiser
    from ..engine.vae_canvas import decode_canvas
    from ..engine.tiling import Layout, lattice, parse_tiling, vae_layout

    size = CELL_LATENTS
    steps = FASTEST_PRESET_STEPS.get(spec["precision"], FULL_STEPS)
    call, decode, encode = (result[key]["min"] for key in ("denoiser_call_s", "vae_decode_s", "vae_encode_s"))
    figures = []
    for name in CELL_TILINGS:
        tiling = parse_tiling(name)
        windows = tiling.windows_per_call(size, size, steps)
        # today decoded 32-latent windows at overlap 16; now halo tiles
        vae = Layout(lattice(size, 16), lattice(size, 16)) if name == "overlap:16" else vae_layout(size, size)
        vae_area = len(vae) * vae.window_shape[0] * vae.window_shape[1] / 32 ** 2
        per_step = float(np.mean(windows)) * call
        figure = {
            "tiling": tiling.spec, "steps": steps, "windows_per_step": float(np.mean(windows)),
            "area_tiles": size * size / 32 ** 2, "vae_tiles": len(vae), "vae_area_tiles": vae_area,
            "step_s": per_step, "step_how": "extrapolated: windows x call",
            "cell_s": vae_area * (encode + decode) + steps * per_step,
            "cell_how": "extrapolated: VAE area x (encode + decode) + steps x windows x call",
        }
        if spec.get("cell_measured") and name is None:
            x = rng.standard_normal((1, 1, 4, size, size), dtype=np.float32)
            condition = rng.standard_normal((1, 1, 4, size, size), dtype=np.float32)
            denoiser = CanvasDenoiser(model.denoise, tiling, steps, [3], [1], condition, rng,
                                      max_windows=model.max_batch)
            start = time.perf_counter()
            denoiser(x, 0.5)
            figure.update(step_s=time.perf_counter() - start, step_how="measured, the first step")
            start = time.perf_counter()
            decode_canvas(model.decode, x[0, 0], lambda *_: None, batch=model.max_batch)
            figure.update(decode_s=time.perf_counter() - start)
            figure.update(cell_s=vae_area * encode + figure["decode_s"] + steps * figure["step_s"],
                          cell_how="measured: first step and decode; encode extrapolated")
        figures.append(figure)
    return figures


def _peak_rss_gib():
    """This process's peak resident memory in GiB.

    Linux's VmHWM starts afresh at exec; ru_maxrss would carry over the peak of the parent
    that converted the models.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 2**20  # kB
    except OSError:
        pass
    try:
        import resource  # not on Windows
    except ImportError:
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (2**30 if sys.platform == "darwin" else 2**20)  # bytes on macOS, KiB elsewhere


def _gpu_memory_mib(model):
    """This process's GPU memory from nvidia-smi (None without CUDA or nvidia-smi)."""
    if model.provider != "CUDAExecutionProvider" or not shutil.which("nvidia-smi"):
        return None
    query = ["nvidia-smi", "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"]
    lines = subprocess.run(query, capture_output=True, text=True, check=False).stdout.splitlines()
    for line in lines:
        pid, _, used = line.partition(",")
        if pid.strip() == str(os.getpid()):
            return float(used)
    return None


# --- errors and the report ------------------------------------------------------------------


def _add_errors(results, scratch):
    """Errors against fp32 on the CPU from the same inputs: noise predictions, tile latents
    (same seed and steps) and, in the full run, the preset's tile against the 50-step one."""
    if not any(r["name"] == "fp32-cpu" for r in results):
        return
    reference = scratch / "fp32-cpu"
    for result in results:
        if result["name"] == "fp32-cpu":
            continue
        mine = scratch / result["name"]
        pairs = {"noise": ("noise", "noise"), "tile": ("tile", "tile"),
                 "preset_vs_fp32_50_steps": ("preset", "tile")}
        result["error_vs_fp32"] = {
            label: _relative_errors(np.load(mine / f"{a}.npy"), np.load(reference / f"{b}.npy"))
            for label, (a, b) in pairs.items()
            if (mine / f"{a}.npy").is_file()
        }


def _relative_errors(actual, reference):
    difference = actual - reference
    return {"rms": float(np.sqrt(np.mean(difference**2) / np.mean(reference**2))),
            "max_over_std": float(np.abs(difference).max() / reference.std())}


def _read_json(path):
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: not a readable model.json ({exc})") from None
