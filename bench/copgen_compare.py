"""COP-GEN: seconds per denoiser call, ours against the official PyTorch network, and memory.

Random full-size weights in the official layouts (plugin.benchmarks.copgen_weights; speed and
memory only, no output means anything) are written once into --work and converted with
``--precision int8`` (fp32 graphs plus the int8 denoiser). Then:

- memory: peak resident set (ru_maxrss) of a fresh process that opens the folder with
  ``plugin.engine.load``, encodes an S2L2A 10 m image, samples S1RTC from it (--steps) and
  decodes it; the model opens only the two VAEs it uses (printed: ``loaded_vaes()``);
- speed: one denoiser call at batch 1 (a translation call: S1RTC at t = 500, the rest at 0) of
  every path, round after round in a rotating order so that load changes hit all alike: ours
  faithful (fp32 on onnxruntime), ours fast (int8), and the official ``COPGEN`` class imported
  from --reference-repo (a checkout of miquel-espinosa/COP-GEN; its code is not part of this
  project), built as ``cop_gen_base`` and loaded with ``torch.load`` of the same checkpoint, in
  fp32 and under ``torch.autocast("cpu", dtype=torch.bfloat16)``.

The reference needs torch, which the plugin never uses: it runs in a worker process started with
--reference-python (a separate venv with torch, numpy and einops), timed there call by call on
the same inputs; ours run in this process (the plugin's venv). Two runtimes in one process
fought over the two cores (ours took 5 to 20x longer beside torch, once), hence the worker. Without
--reference-repo only our paths are timed.

    .venv/bin/python bench/copgen_compare.py --reference-repo /work/ref/COP-GEN \\
        --reference-python /work/torchvenv/bin/python [--work /tmp/cgbench_work] [--rounds 3] [--steps 3]
"""

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from plugin.benchmarks.copgen_weights import SIZES, denoiser_parameters, write_copgen_checkpoints  # noqa: E402
from plugin.engine.families.copgen.registry import BY_KEY, MODALITIES, REGISTRY  # noqa: E402
from plugin.engine.runtime import physical_cores  # noqa: E402

PAUSE_S = 0.5  # between calls: one runtime's spinning threads go idle before the next starts
ISA_FLAGS = {"avx2": "AVX2", "avx512f": "AVX-512F", "avx512_bf16": "AVX-512 BF16",
             "avx512_vnni": "AVX-512 VNNI", "avx_vnni": "AVX-VNNI", "amx_bf16": "AMX-BF16",
             "amx_int8": "AMX-INT8"}
CONDITION, TARGET = "S2L2A_B02_B03_B04_B08", "S1RTC_vh_vv"
PLUGIN_PYTHON = REPO / ".venv" / "bin" / "python"


def instruction_sets():
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return "unknown (no /proc/cpuinfo)"
    flags = next((set(line.split(":", 1)[1].split()) for line in lines if line.startswith("flags")), set())
    return ", ".join(f"{name} {'yes' if flag in flags else 'no'}" for flag, name in ISA_FLAGS.items())


def plugin_python():
    return str(PLUGIN_PYTHON if PLUGIN_PYTHON.exists() else sys.executable)


def prepare(work):
    """The converted folder, writing and converting the random checkpoints where missing."""
    sys.path.insert(0, str(REPO / "tests"))
    from checkpoint_write import save_pth  # a torch.save-layout writer, so torch.load reads it

    start = time.perf_counter()
    denoiser, vae_dir = write_copgen_checkpoints(work, save=save_pth)
    print(f"checkpoints: {denoiser} ({denoiser_parameters() / 1e6:.1f} M parameters), {vae_dir}: "
          f"{time.perf_counter() - start:.0f} s (reused when present)")
    model = work / "model_int8"
    if not (model / "model.json").exists():
        command = [plugin_python(), "-m", "plugin", "convert", "--denoiser", str(denoiser), "--vae-dir",
                   str(vae_dir), "--out", str(model), "--heads", str(SIZES["full"][0].num_heads),
                   "--precision", "int8"]
        start = time.perf_counter()
        subprocess.run(command, cwd=REPO, check=True)
        print(f"convert --precision int8: {time.perf_counter() - start:.0f} s")
    return denoiser, model


def translation_child(model_dir, preference, steps):
    """Run in a fresh process: one 1-to-1 translation; prints a JSON line of its figures."""
    from plugin.engine import load

    start = time.perf_counter()
    model = load(model_dir, device="cpu", preference=preference)
    image = np.random.default_rng(0).uniform(-1, 1, (1, BY_KEY[CONDITION].channels, 192, 192)).astype(np.float32)
    condition = model.encode(CONDITION, image, seed=0)
    latents = model.sample([TARGET], {CONDITION: condition}, steps=steps, seed=0)
    model.decode(TARGET, latents[TARGET])
    print(json.dumps({
        "preference": preference, "denoiser": model.denoiser_precision, "steps": steps,
        "loaded_vaes": [f"{role} {key}" for role, key in model.loaded_vaes()],
        "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,  # KiB on Linux
        "wall_s": time.perf_counter() - start,
    }))


def measure_translation(model_dir, preference, steps):
    done = subprocess.run([plugin_python(), __file__, "--translation-child", str(model_dir), preference, str(steps)],
                          cwd=REPO, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def call_inputs(batch=1):
    rng = np.random.default_rng(0)
    latents = {key: rng.standard_normal((batch, *BY_KEY[key].latent_shape), dtype=np.float32) for key in MODALITIES}
    times = {key: np.full(batch, 500.0 if key == TARGET else 0.0, np.float32) for key in MODALITIES}
    return latents, times


def our_paths(model_dir, threads):
    """{name: call() -> (seconds, outputs)} of our faithful and fast paths, in this process."""
    from plugin.engine import load

    latents, times = call_inputs()
    calls = {}
    for name, preference in (("ours faithful (fp32)", "faithful"), ("ours fast (int8)", "fast")):
        model = load(model_dir, device="cpu", preference=preference, threads=threads)
        print(f"{name}: denoiser {model.denoiser_precision}, {model.provider}")

        def call(model=model):
            start = time.perf_counter()
            noise = model.denoise(latents, times)
            return time.perf_counter() - start, [noise[key] for key in MODALITIES]

        calls[name] = call
    return calls


def reference_paths(python, repo, checkpoint, threads, work):
    """{name: call() -> (seconds, outputs)} of the official network in a worker process."""
    worker = subprocess.Popen(
        [python, __file__, "--reference-worker", str(repo), str(checkpoint), str(threads)],
        cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    ready = worker.stdout.readline().strip()
    if not ready:  # no torch there, a wrong repo: its error went to stderr
        print(f"reference not timed: the worker ({python}) exited with {worker.wait()}")
        return {}, None
    print(f"reference: {ready}")

    def call(mode):
        saved = work / f"reference_{mode}.npz"
        worker.stdin.write(f"{mode} {saved}\n")
        worker.stdin.flush()
        seconds = json.loads(worker.stdout.readline())["seconds"]
        with np.load(saved) as outputs:
            return seconds, [outputs[key] for key in MODALITIES]

    return {"reference fp32": lambda: call("fp32"), "reference bf16 autocast": lambda: call("bf16")}, worker


def reference_worker(repo, checkpoint, threads):
    """In the torch venv: builds the official COPGEN (cop_gen_base) from torch.load of our
    checkpoint (strict), then answers "<fp32|bf16> <file.npz>" lines with one timed call."""
    protocol, sys.stdout = sys.stdout, sys.stderr  # the official code prints; keep the pipe clean
    import importlib

    import torch

    torch.set_num_threads(threads)
    sys.path.insert(0, str(repo))
    network_class = importlib.import_module("libs.copgen_multi_post_ln").COPGEN
    # the official config is an ml_collections ConfigDict (sorted keys); the network reads only
    # these two fields of each modality, in the same (network) order as our registry
    modalities = {
        m.key: SimpleNamespace(modality_type=m.kind, latent_input_resolution=m.latent_shape[1:]) for m in REGISTRY
    }
    config = SIZES["full"][0]
    network = network_class(
        img_sizes={m.key: m.latent_shape[1] for m in REGISTRY},
        in_chans={m.key: m.latent_shape[0] for m in REGISTRY},
        patch_size={m.key: 1 if m.kind == "scalar" else 2 for m in REGISTRY},
        embed_dim=config.embed_dim, depth=config.depth, num_heads=config.num_heads,
        mlp_ratio=config.mlp_hidden / config.embed_dim, qkv_bias=False, mlp_time_embed=False,
        use_checkpoint=False, modalities=modalities,
    )
    network.load_state_dict(torch.load(checkpoint, map_location="cpu", weights_only=True), strict=True)
    network.eval()
    latents, times = call_inputs()
    inputs = [torch.from_numpy(latents[key]) for key in MODALITIES]
    steps = [torch.from_numpy(times[key]) for key in MODALITIES]
    print(f"{repo} COPGEN, torch {torch.__version__} ({torch.backends.cpu.get_cpu_capability()}), "
          f"{torch.get_num_threads()} threads", file=protocol, flush=True)
    for line in sys.stdin:
        mode, saved = line.split()
        start = time.perf_counter()
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=mode == "bf16"):
            outputs = network(inputs, steps)
        seconds = time.perf_counter() - start
        np.savez(saved, **{key: out.float().numpy() for key, out in zip(MODALITIES, outputs)})
        print(json.dumps({"seconds": seconds}), file=protocol, flush=True)


def relative_rms(outputs, base):
    a, b = (np.concatenate([o.reshape(-1) for o in x]) for x in (outputs, base))
    return float(np.sqrt(np.mean((a - b) ** 2)) / np.sqrt(np.mean(b**2)))


def time_calls(calls, rounds):
    outputs = {name: call()[1] for name, call in calls.items()}  # also the warm-up
    names, seconds = list(calls), {name: [] for name in calls}
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for number in range(rounds):
        shift = number % len(names)
        for name in names[shift:] + names[:shift]:
            time.sleep(PAUSE_S)
            seconds[name].append(calls[name]()[0])
        print(f"round {number + 1}: " + ", ".join(f"{n} {seconds[n][-1]:.2f}" for n in names), flush=True)
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return outputs, seconds


def report(outputs, seconds):
    base = "reference fp32" if "reference fp32" in outputs else "ours faithful (fp32)"
    print(f"\n| path | s per call, min | median | output vs {base} (relative RMS) |")
    print("|---|---|---|---|")
    for name in seconds:
        print(f"| {name} | {min(seconds[name]):.2f} | {np.median(seconds[name]):.2f} | "
              f"{relative_rms(outputs[name], outputs[base]):.2g} |")
    pairs = [("ours faithful (fp32)", "reference fp32"), ("ours fast (int8)", "reference bf16 autocast"),
             ("ours fast (int8)", "reference fp32"), ("ours faithful (fp32)", "reference bf16 autocast")]
    for ours, ref in pairs:
        if ours in seconds and ref in seconds:
            per_round = np.array(seconds[ours]) / np.array(seconds[ref])
            print(f"{ours} / {ref}: {np.median(per_round):.2f} (median of per-round ratios; "
                  f"ratio of minima {min(seconds[ours]) / min(seconds[ref]):.2f}; < 1: ours faster)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/cgbench_work"), help="checkpoints and folder")
    parser.add_argument("--reference-repo", type=Path, help="checkout of the official COP-GEN code")
    parser.add_argument("--reference-python", default="/work/torchvenv/bin/python", help="a python with torch")
    parser.add_argument("--rounds", type=int, default=3, choices=range(1, 100), metavar="N")
    parser.add_argument("--steps", type=int, default=3, help="sampling steps of the memory run")
    args = parser.parse_args()

    threads = physical_cores() or os.cpu_count()
    print(f"CPU: {platform.processor() or platform.machine()}, {os.cpu_count()} logical CPUs, {threads} threads used")
    print(f"instruction sets: {instruction_sets()}")
    import onnxruntime

    print(f"onnxruntime {onnxruntime.__version__}; random weights: speed and memory only")
    checkpoint, model_dir = prepare(args.work)

    for preference in ("faithful", "fast"):
        figures = measure_translation(model_dir, preference, args.steps)
        print(f"translation {CONDITION} -> {TARGET}, {preference} ({figures['denoiser']} denoiser), "
              f"{figures['steps']} steps: peak RSS {figures['peak_rss_gib']:.2f} GiB, {figures['wall_s']:.0f} s, "
              f"VAEs opened: {', '.join(figures['loaded_vaes'])}")

    calls, worker = our_paths(model_dir, threads), None
    if args.reference_repo is None:
        print("reference not timed: no --reference-repo")
    else:
        reference, worker = reference_paths(args.reference_python, args.reference_repo, checkpoint, threads, args.work)
        calls.update(reference)
    try:
        report(*time_calls(calls, args.rounds))
    finally:
        if worker is not None:
            worker.stdin.close()
            worker.wait(timeout=60)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--translation-child"]:
        translation_child(Path(sys.argv[2]), sys.argv[3], int(sys.argv[4]))
    elif sys.argv[1:2] == ["--reference-worker"]:
        reference_worker(Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4]))
    else:
        main()
