"""Our denoiser paths against the official PyTorch network, interleaved on this CPU.

Prints the host's instruction sets (from /proc/cpuinfo flags), then one denoiser call (batch 1)
of every path, round after round in a rotating order so that load changes hit them all alike:

- the reference: the official network class imported from a checkout of the official
  repository (``--reference-repo``; its code is not part of this project), with the same random
  full-size weights as our folder (the checkpoint the folder was converted from), in fp32 and
  under ``torch.autocast("cpu", dtype=torch.bfloat16)``;
- ours: the fp32 graph on onnxruntime (the faithful preference), the int8 graph on onnxruntime,
  the fp32 graph on OpenVINO at bf16 (where ``openvino`` is installed), and which of them the
  fast preference's selection (``plugin.engine.fast_path``) picks on this host and why.

Ratios are taken within each round (then their median): faithful = reference fp32 / our fp32
(>= 1 means ours is at least as fast), fast = reference bf16 / our fast path (the target is
>= 1.3). Errors are RMS(path - reference fp32) / RMS(reference fp32) on the same input.

Needs torch (a separate venv: never the plugin's), plus numpy, onnx and onnxruntime there:

    python3.11 -m venv /work/torchvenv
    /work/torchvenv/bin/pip install torch==2.13.0 numpy==1.24.2 onnxruntime==1.31.1 onnx einops [openvino]
    /work/torchvenv/bin/python bench/reference_compare.py --model DIR --checkpoint FILE \\
        --reference-repo PATH [--rounds 3]

DIR: a converted fp32 folder with its int8 denoiser, FILE: the denoiser checkpoint it was
converted from (``python -m plugin bench`` writes both: ``model_int8`` and
``denoiser_fullsize.safetensors`` in its cache). Without ``--reference-repo`` (or torch) only
our paths are timed.
"""

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from plugin.engine import fast_path  # noqa: E402
from plugin.engine.cpu_features import isa_summary  # noqa: E402
from plugin.engine.model_folder import read_info  # noqa: E402
from plugin.engine.precision import resolve  # noqa: E402
from plugin.engine.runtime import physical_cores  # noqa: E402

PAUSE_S = 0.5  # between calls: lets one runtime's spinning threads go idle before the next
BETA_NETWORK = ("libs.triffuser_multi_post_ln", "Triffuser")  # module and class, in the official repo


def reference_paths(repo, checkpoint, info, threads):
    """{"reference fp32": call, "reference bf16 autocast": call} of the official network with
    the weights of ``checkpoint``; each call takes our feeds and returns the noise as ours."""
    import importlib

    import torch

    from plugin.engine.checkpoint import load_state_dict

    torch.set_num_threads(threads)
    sys.path.insert(0, str(repo))
    module, name = BETA_NETWORK
    network_class = getattr(importlib.import_module(module), name)
    config = info["denoiser"]
    network = network_class(
        img_size=config["img_size"], in_chans=config["in_chans"], patch_size=config["patch_size"],
        embed_dim=config["embed_dim"], depth=2 * config["num_in_blocks"], num_heads=config["num_heads"],
        mlp_ratio=config["mlp_hidden"] / config["embed_dim"], qkv_bias=False, mlp_time_embed=False,
        num_modalities=config["num_modalities"], use_checkpoint=False,  # checkpointing is for training
    )
    state = {key: torch.from_numpy(np.array(value)) for key, value in load_state_dict(checkpoint).items()}
    network.load_state_dict(state, strict=True)
    network.eval()

    def call(feeds, autocast):
        latents = torch.from_numpy(feeds["latents"])
        times = torch.from_numpy(feeds["timesteps"])
        modalities = latents.shape[1]
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            out = network([latents[:, m] for m in range(modalities)], [times[:, m] for m in range(modalities)])
        return torch.stack([o.float() for o in out], dim=1).numpy()

    return {
        "reference fp32": lambda feeds: call(feeds, False),
        "reference bf16 autocast": lambda feeds: call(feeds, True),
    }


def our_paths(model_dir, info, threads):
    """{path name: call} of every candidate of the fast path selection (fp32 is the faithful one)."""
    plan = resolve(model_dir, "cpu", "fast", info=info)
    calls = {}
    for candidate in fast_path.candidates(plan, info):
        session = fast_path.open_candidate(candidate, threads)
        calls[f"ours {candidate.name}"] = lambda feeds, s=session: s.run(feeds)[0]
    return calls


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True, help="fp32 model folder with its int8 denoiser")
    parser.add_argument("--checkpoint", type=Path, help="the denoiser checkpoint the folder was converted from")
    parser.add_argument("--reference-repo", type=Path, help="checkout of the official COP-GEN-Beta code")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    threads = physical_cores() or os.cpu_count()
    info = read_info(args.model / "model.json")
    print(f"CPU: {platform.processor() or platform.machine()}, {threads} physical cores in use")
    print(f"instruction sets: {isa_summary()}")
    import onnxruntime

    print(f"onnxruntime {onnxruntime.__version__}, openvino {fast_path.openvino_version() or 'not installed'}")

    plan = fast_path.apply(resolve(args.model, "cpu", "fast", info=info), info)
    print(f"selection: {plan.notes[-1]}")
    fast_name = f"ours {plan.denoiser_precision} on {plan.runtimes['denoiser']}"

    calls = {}
    if args.reference_repo and args.checkpoint:
        try:
            calls.update(reference_paths(args.reference_repo, args.checkpoint, info, threads))
            import torch

            print(f"torch {torch.__version__} ({torch.backends.cpu.get_cpu_capability()}), {args.reference_repo}")
        except ImportError as exc:
            print(f"reference not timed: {exc}")
    calls.update(our_paths(args.model, info, threads))

    feeds = fast_path.timing_inputs(plan.graphs["denoiser"], np.random.default_rng(0))
    outputs = {name: call(feeds) for name, call in calls.items()}  # also the warm-up
    base = "reference fp32" if "reference fp32" in outputs else "ours fp32 on onnxruntime"
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    names = list(calls)
    seconds = {name: [] for name in names}
    for number in range(args.rounds):
        shift = number % len(names)
        for name in names[shift:] + names[:shift]:
            time.sleep(PAUSE_S)
            start = time.perf_counter()
            calls[name](feeds)
            seconds[name].append(time.perf_counter() - start)
        print(f"round {number + 1}: " + ", ".join(f"{n} {seconds[n][-1]:.2f}" for n in names), flush=True)
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")

    print(f"\n| path | s per call, min | median | error vs {base} (RMS) |")
    print("|---|---|---|---|")
    for name in names:
        error = fast_path.relative_rms(outputs[name], outputs[base])
        mark = " (fast: selected)" if name == fast_name else ""
        print(f"| {name}{mark} | {min(seconds[name]):.2f} | {np.median(seconds[name]):.2f} | {error:.4f} |")
    ratios = []
    if "reference fp32" in seconds:
        ratios.append(("faithful: reference fp32 / ours fp32", "reference fp32", "ours fp32 on onnxruntime"))
        ratios.append((f"fast: reference bf16 autocast / {fast_name}", "reference bf16 autocast", fast_name))
        for name in names:
            if name.startswith("ours") and name != fast_name:
                ratios.append((f"reference bf16 autocast / {name}", "reference bf16 autocast", name))
    for text, over, under in ratios:
        per_round = np.array(seconds[over]) / np.array(seconds[under])
        print(f"{text}: {np.median(per_round):.2f}x (median of rounds; ratio of minima {min(seconds[over]) / min(seconds[under]):.2f}x)")


if __name__ == "__main__":
    main()
