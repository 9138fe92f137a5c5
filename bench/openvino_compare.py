"""OpenVINO on the CPU against the plugin's onnxruntime paths: speed and error (issue 14).

OpenVINO reads the plugin's fp32 ``denoiser.onnx`` as it is and runs it with bf16 or f32
inference precision; onnxruntime runs the same graph in fp32 (the faithful reference) and the
plugin's int8 graph (``denoiser.int8.onnx``, the fast preset's denoiser). With --int8-weights,
also OpenVINO's own int8 path (int8 MatMul weights, activations quantised at run time).

1. Full size (random weights, official layout): one denoiser call (batch 1, 4 modalities,
   1028 tokens) per backend, interleaved: every round calls each backend once on the same
   input, in a rotating order, so a change of machine load hits them all; the ratios to
   onnxruntime fp32 and int8 are taken within each round, then their median. Error of the
   noise prediction against onnxruntime fp32.
2. Tiny fixture model: a joint 20-step dpm-solver-fast sample of all four modalities from the
   fixture's x_T with each backend's denoiser; error of the final latents against fp32.

    .venv/bin/python bench/openvino_compare.py [--fullsize DIR] [--rounds N] [--int8-weights]

DIR: an fp32 model folder with its int8 denoiser (e.g. the bench cache's model_int8); without
it the random full-size folder of ``python -m plugin bench`` is written (or reused) in
/tmp/copgen_bench. Errors are RMS(difference) / RMS(reference) and max|difference| / std.
Needs ``pip install openvino`` (not a dependency of the plugin).
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from int8_accuracy import FIXTURES, errors  # noqa: E402
from plugin.commands.bench import _model_folders  # noqa: E402
from plugin.engine.convert import convert  # noqa: E402
from plugin.engine.model import CopGenModel  # noqa: E402
from plugin.engine.families.beta.registry import MODALITIES  # noqa: E402
from plugin.engine.model_folder import read_info  # noqa: E402
from plugin.engine.quantize import INT8_FILE  # noqa: E402
from plugin.engine.runtime import open_session, physical_cores  # noqa: E402

NETWORK_TIMES = (999.0, 500.0, 100.0, 10.0)  # of the generated modality in the random inputs
SAMPLE = {"steps": 20, "solver": "dpm-solver-fast"}  # the fast preset's solver
REFERENCE = "onnxruntime fp32"
INT8 = "onnxruntime int8"


class OpenVinoSession:
    """An OpenVINO CPU model with the .run(feeds) -> [outputs] of runtime.RuntimeSession.

    int8_weights: OpenVINO's own int8 path instead: the MatMul weights stored as int8 per
    output channel (symmetric, as the plugin's int8 graph) behind a Convert and a Multiply by
    the scales, the pattern its CPU plugin runs as compressed-weight FullyConnected layers
    with dynamically quantised activations.
    """

    def __init__(self, path, precision, int8_weights=False):
        import openvino as ov

        start = time.perf_counter()
        model = ov.Core().read_model(str(path))
        if int8_weights:
            _compress_weights(model)
        config = {
            "INFERENCE_PRECISION_HINT": precision,  # "bf16" or "f32"
            "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_NUM_THREADS": physical_cores() or 0,  # as onnxruntime's pool
        }
        self._model = ov.Core().compile_model(model, "CPU", config)
        self._request = self._model.create_infer_request()
        self.compile_s = time.perf_counter() - start
        self.provider = f"OpenVINO CPU {precision}"

    def run(self, feeds):
        results = self._request.infer(feeds)
        return [np.array(results[output]) for output in self._model.outputs]


def _compress_weights(model):
    """Every MatMul's constant 2-D weight as int8 x per-output-channel scale, in place."""
    import openvino as ov
    import openvino.opset13 as ops

    for node in model.get_ordered_ops():
        weight = node.input_value(1).get_node() if node.get_type_name() == "MatMul" else None
        if weight is None or weight.get_type_name() != "Constant":
            continue
        values = weight.get_data().astype(np.float32)
        if values.ndim != 2:
            continue
        inner = 1 if node.get_attributes().get("transpose_b") else 0  # the summed axis
        scale = np.abs(values).max(axis=inner, keepdims=True) / np.float32(127)
        scale[scale == 0] = 1
        quantized = np.clip(np.round(values / scale), -127, 127).astype(np.int8)
        restored = ops.multiply(ops.convert(ops.constant(quantized), ov.Type.f32),
                                ops.constant(scale.astype(np.float32)))
        node.input(1).replace_source_output(restored.output(0))


def open_backends(folder, int8_weights=False):
    """{label: session} of the backends on one model folder."""
    fp32 = folder / "denoiser.onnx"
    openers = [
        (REFERENCE, lambda: open_session(fp32, device="cpu")),
        (INT8, lambda: open_session(folder / INT8_FILE, device="cpu")),
        ("OpenVINO bf16", lambda: OpenVinoSession(fp32, "bf16")),
        ("OpenVINO f32", lambda: OpenVinoSession(fp32, "f32")),
    ]
    if int8_weights:
        openers.append(("OpenVINO int8 w.", lambda: OpenVinoSession(fp32, "f32", True)))
    sessions = {}
    for label, opener in openers:
        start = time.perf_counter()
        sessions[label] = opener()
        print(f"  opened {label:18} in {time.perf_counter() - start:5.1f} s", flush=True)
    return sessions


def fullsize(folder, rounds, int8_weights):
    print(f"full size ({folder}):", flush=True)
    sessions = open_backends(folder, int8_weights)
    labels = list(sessions)
    rng = np.random.default_rng(0)
    latents = rng.standard_normal((len(NETWORK_TIMES), 1, 4, 4, 32, 32), dtype=np.float32)
    timesteps = np.zeros((len(NETWORK_TIMES), 1, 4), dtype=np.float32)
    timesteps[:, 0, 3] = NETWORK_TIMES
    feeds = [{"latents": x, "timesteps": t} for x, t in zip(latents, timesteps)]
    for session in sessions.values():  # warm-up: the first call allocates
        session.run(feeds[0])

    outputs = {label: [] for label in labels}
    seconds = {label: [] for label in labels}
    for round_index in range(rounds):
        for index, feed in enumerate(feeds):
            turn = round_index * len(feeds) + index
            for label in labels[turn % len(labels):] + labels[:turn % len(labels)]:
                start = time.perf_counter()
                output = sessions[label].run(feed)[0]
                seconds[label].append(time.perf_counter() - start)
                if round_index == 0:
                    outputs[label].append(output)

    calls = rounds * len(feeds)
    reference = np.concatenate(outputs[REFERENCE])
    print(f"\n  seconds per call (median / min of {calls} interleaved calls), ratio to "
          f"{REFERENCE} and to {INT8} (median of the per-round ratios); noise prediction "
          f"against {REFERENCE}, network times {NETWORK_TIMES}:")
    for label in labels:
        mine = np.array(seconds[label])
        to_fp32 = np.median(mine / np.array(seconds[REFERENCE]))
        to_int8 = np.median(mine / np.array(seconds[INT8]))
        error = "" if label == REFERENCE else errors(np.concatenate(outputs[label]), reference)
        print(f"  {label:18} {np.median(mine):5.2f} / {mine.min():5.2f} s   "
              f"x{to_fp32:4.2f} of fp32   x{to_int8:4.2f} of int8   {error}", flush=True)


def tiny(work, int8_weights):
    folder = convert(FIXTURES / "denoiser_tiny.pth", FIXTURES / "vae_tiny.pth",
                     work / "tiny", heads=2, precision="int8")
    info = read_info(folder / "model.json", "")
    encoder = open_session(folder / "vae_encoder.onnx", device="cpu")
    decoder = open_session(folder / "vae_decoder.onnx", device="cpu")
    x_T = np.load(FIXTURES / "expected.npz")["joint_x_T"]
    print(f"\ntiny fixture model: joint {SAMPLE['steps']}-step {SAMPLE['solver']} sample of "
          f"all modalities from the fixture x_T, final latents against {REFERENCE}:")
    samples = {}
    for label, denoiser in open_backends(folder, int8_weights).items():
        model = CopGenModel(info, denoiser, encoder, decoder)
        result = model.sample(list(MODALITIES), x_T=x_T, **SAMPLE)
        samples[label] = np.stack([result[key] for key in MODALITIES])
        if label != REFERENCE:
            print(f"  {label:18} {errors(samples[label], samples[REFERENCE])}", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fullsize", type=Path, metavar="DIR",
                        help="fp32 model folder with denoiser.int8.onnx (default: bench cache)")
    parser.add_argument("--rounds", type=int, default=2,
                        help=f"rounds of {len(NETWORK_TIMES)} calls per backend (default 2)")
    parser.add_argument("--int8-weights", action="store_true",
                        help="add OpenVINO with int8 MatMul weights (its own int8 path)")
    args = parser.parse_args()
    try:
        import openvino
    except ImportError:
        sys.exit("openvino is not installed: pip install -c .venv/constraints.txt openvino==2026.4.1")

    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    print(f"openvino {openvino.__version__}; {physical_cores()} threads; load average {load}")
    with tempfile.TemporaryDirectory(prefix="copgen_ov_") as scratch:
        tiny(Path(scratch), args.int8_weights)
    folder = args.fullsize or _model_folders(None, Path(tempfile.gettempdir()) / "copgen_bench")["int8"]
    fullsize(folder, args.rounds, args.int8_weights)
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    print(f"load average after: {load}")


if __name__ == "__main__":
    main()
