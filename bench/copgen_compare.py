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

The reference needs torch, which the plugin never uses: run the script with a separate venv's
python that also has numpy, onnx and onnxruntime (the conversion and the memory run use the
plugin's .venv). Without torch or --reference-repo only our paths are timed.

    /work/torchvenv/bin/python bench/copgen_compare.py --reference-repo /work/ref/COP-GEN \\
        [--work /tmp/cgbench_work] [--rounds 3] [--steps 3]
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
    from plugin.engine import load

    calls = {}
    for name, preference in (("ours faithful (fp32)", "faithful"), ("ours fast (int8)", "fast")):
        model = load(model_dir, device="cpu", preference=preference, threads=threads)
        print(f"{name}: denoiser {model.denoiser_precision}, {model.provider}")
        calls[name] = lambda latents, times, m=model: [m.denoise(latents, times)[key] for key in MODALITIES]
    return calls


def reference_paths(repo, checkpoint, threads):
    """The official network, cop_gen_base, with torch.load of our checkpoint (strict)."""
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
    print(f"reference: {repo} COPGEN, torch {torch.__version__} ({torch.backends.cpu.get_cpu_capability()})")

    def call(latents, times, autocast):
        inputs = [torch.from_numpy(latents[key]) for key in MODALITIES]
        steps = [torch.from_numpy(times[key]) for key in MODALITIES]
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            return [out.float().numpy() for out in network(inputs, steps)]

    return {
        "reference fp32": lambda latents, times: call(latents, times, False),
        "reference bf16 autocast": lambda latents, times: call(latents, times, True),
    }


def relative_rms(outputs, base):
    a, b = (np.concatenate([o.reshape(-1) for o in x]) for x in (outputs, base))
    return float(np.sqrt(np.mean((a - b) ** 2)) / np.sqrt(np.mean(b**2)))


def time_calls(calls, rounds):
    latents, times = call_inputs()
    outputs = {name: call(latents, times) for name, call in calls.items()}  # also the warm-up
    names, seconds = list(calls), {name: [] for name in calls}
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for number in range(rounds):
        shift = number % len(names)
        for name in names[shift:] + names[:shift]:
            time.sleep(PAUSE_S)
            start = time.perf_counter()
            calls[name](latents, times)
            seconds[name].append(time.perf_counter() - start)
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
    parser.add_argument("--rounds", type=int, default=3)
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

    calls = our_paths(model_dir, threads)
    if args.reference_repo is None:
        print("reference not timed: no --reference-repo")
    else:
        try:
            calls.update(reference_paths(args.reference_repo, checkpoint, threads))
        except ImportError as exc:
            print(f"reference not timed: {exc} (run this script with a python that has torch)")
    report(*time_calls(calls, args.rounds))


if __name__ == "__main__":
    if sys.argv[1:2] == ["--translation-child"]:
        translation_child(Path(sys.argv[2]), sys.argv[3], int(sys.argv[4]))
    else:
        main()
