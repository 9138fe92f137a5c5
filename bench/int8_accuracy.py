"""How far the int8 (and fp16) denoiser is from fp32, and which quantisation options pay.

1. Tiny fixture model: noise predictions on the fixture inputs and the 50-step joint sample
   from the fixture's x_T, int8 and fp16 against fp32 (tests/test_quantize.py bounds these).
2. Full-size random weights (a folder from `python -m plugin bench`): noise-prediction error
   and call time (fastest, calls interleaved) of the quantisation variants (per channel or
   per tensor, 8- or 7-bit weights) on random inputs at several network times.

    .venv/bin/python bench/int8_accuracy.py [--fullsize /tmp/copgen_bench/model_int8]

Errors are RMS(difference) / RMS(fp32) and max|difference| / std(fp32).
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from plugin.engine import load  # noqa: E402
from plugin.engine.convert import convert  # noqa: E402
from plugin.engine.families.beta.registry import MODALITIES  # noqa: E402
from plugin.engine.quantize import quantize_denoiser  # noqa: E402
from plugin.engine.runtime import open_session  # noqa: E402

FIXTURES = REPO.parent / "shared" / "fixtures" / "copgen_beta_reference"
VARIANTS = {
    "per channel, 8-bit (shipped)": {"per_channel": True, "reduce_range": False},
    "per tensor, 8-bit": {"per_channel": False, "reduce_range": False},
    "per channel, 7-bit (reduce_range)": {"per_channel": True, "reduce_range": True},
}
NETWORK_TIMES = (999.0, 500.0, 100.0, 10.0)


def errors(actual, reference):
    difference = actual - reference
    rms = np.sqrt(np.mean(difference**2) / np.mean(reference**2))
    return f"RMS {rms:.4f}, max {np.abs(difference).max() / reference.std():.4f}"


def tiny(work):
    expected = dict(np.load(FIXTURES / "expected.npz"))
    folders = {
        precision: convert(FIXTURES / "denoiser_tiny.pth", FIXTURES / "vae_tiny.pth",
                           work / f"tiny_{precision}", heads=2, precision=precision)
        for precision in ("int8", "fp16")
    }
    models = {
        "fp32": load(folders["int8"], device="cpu"),
        "int8": load(folders["int8"], device="cpu", preference="fast"),
        "fp16": load(folders["fp16"], device="cpu"),
    }
    latents, timesteps = expected["denoiser_latents"], expected["denoiser_timesteps"]
    noise = {name: model.denoise(latents, timesteps) for name, model in models.items()}
    samples = {}
    for name, model in models.items():
        result = model.sample(list(MODALITIES), x_T=expected["joint_x_T"], steps=50)
        samples[name] = np.stack([result[key] for key in MODALITIES])
    print("tiny model (embed 32, depth 2), against fp32:")
    for name in ("int8", "fp16"):
        print(f"  {name}: noise {errors(noise[name], noise['fp32'])}; "
              f"50-step joint sample {errors(samples[name], samples['fp32'])}")
    print(f"  fp32 against the official 50-step output: "
          f"{errors(samples['fp32'], expected['joint_out'])}")


def fullsize(folder, work, rounds=3):
    rng = np.random.default_rng(0)
    latents = rng.standard_normal((len(NETWORK_TIMES), 4, 4, 32, 32), dtype=np.float32)
    timesteps = np.zeros((len(NETWORK_TIMES), 4), dtype=np.float32)
    timesteps[:, 3] = NETWORK_TIMES
    sessions = {"fp32": open_session(folder / "denoiser.onnx", device="cpu")}
    for index, (label, options) in enumerate(VARIANTS.items()):
        target = work / f"variant{index}.onnx"
        quantize_denoiser(folder / "denoiser.onnx", target, **options)
        sessions[label] = open_session(target, device="cpu")
    # rounds alternate between the variants, so a change of machine load hits them all
    outputs = {label: [] for label in sessions}
    seconds = {label: [] for label in sessions}
    for round_index in range(rounds):
        for index in range(len(latents)):
            feeds = {"latents": latents[index:index + 1], "timesteps": timesteps[index:index + 1]}
            for label, session in sessions.items():
                start = time.perf_counter()
                output = session.run(feeds)[0]
                seconds[label].append(time.perf_counter() - start)
                if round_index == 0:
                    outputs[label].append(output)
    reference = np.concatenate(outputs["fp32"])
    print(f"\nfull size ({folder}), noise predictions against fp32, network times "
          f"{NETWORK_TIMES} of the generated modality; fastest of {rounds * len(latents)} calls:")
    for label in sessions:
        error = "" if label == "fp32" else errors(np.concatenate(outputs[label]), reference)
        print(f"  {label:36} {min(seconds[label]):.2f} s  {error}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fullsize", type=Path, metavar="DIR",
                        help="an fp32 full-size model folder (e.g. the bench cache's model_int8)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="copgen_int8_") as scratch:
        tiny(Path(scratch))
        if args.fullsize:
            fullsize(args.fullsize, Path(scratch))


if __name__ == "__main__":
    main()
