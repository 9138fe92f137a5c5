"""Where a denoiser call spends its time: onnxruntime's profiler, summed per operator.

Opens a denoiser graph on the CPU exactly as the plugin does (plugin.engine.runtime: every
graph optimisation, threads = physical cores) plus `SessionOptions.enable_profiling`, runs a
few calls on random inputs and prints, per operator type and per output shape, the kernel
time per call and its share; then the operator counts of the optimised graph, which show the
fusions that fired (SkipLayerNormalization, BiasGelu, DynamicQuantizeMatMul, ...).

    .venv/bin/python bench/profile_denoiser.py /tmp/copgen_bench/model_int8/denoiser.onnx \\
        [--calls 3] [--threads N] [--batch 1]
"""

import argparse
import collections
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from plugin.engine.runtime import physical_cores  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("graph", type=Path, help="denoiser.onnx or denoiser.int8.onnx")
    parser.add_argument("--calls", type=int, default=3)
    parser.add_argument("--threads", type=int, default=physical_cores() or 0)
    parser.add_argument("--batch", type=int, default=1)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="copgen_profile_") as scratch:
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = args.threads
        options.enable_profiling = True
        options.profile_file_prefix = os.path.join(scratch, "profile")
        options.optimized_model_filepath = os.path.join(scratch, "optimized.onnx")
        session = ort.InferenceSession(str(args.graph), options, providers=["CPUExecutionProvider"])

        rng = np.random.default_rng(0)
        latents = rng.standard_normal((args.batch, 4, 4, 32, 32), dtype=np.float32)
        timesteps = np.zeros((args.batch, 4), dtype=np.float32)
        timesteps[:, 3] = 500.0
        seconds = []
        for _ in range(args.calls):
            start = time.perf_counter()
            session.run(None, {"latents": latents, "timesteps": timesteps})
            seconds.append(time.perf_counter() - start)
        events = json.loads(Path(session.end_profiling()).read_text())
        optimized = onnx.load(options.optimized_model_filepath, load_external_data=False)

    print(f"{args.graph}: {args.threads} threads, batch {args.batch}, load {os.getloadavg()}")
    print("calls (s): " + ", ".join(f"{s:.2f}" for s in seconds))
    by_op, by_shape = kernel_times(events)
    total = sum(by_op.values())
    print(f"\n{'operator':32} {'s/call':>8} {'share':>6}")
    for op, micros in sorted(by_op.items(), key=lambda item: -item[1]):
        print(f"{op:32} {micros / 1e6 / args.calls:8.3f} {100 * micros / total:5.1f}%")
    print(f"\n{'operator, output shape':70} {'s/call':>8}")
    for key, micros in sorted(by_shape.items(), key=lambda item: -item[1])[:12]:
        print(f"{key:70} {micros / 1e6 / args.calls:8.3f}")
    counts = collections.Counter(
        f"{node.domain or 'ai.onnx'}:{node.op_type}" for node in optimized.graph.node
    )
    print("\noptimised graph: " + ", ".join(f"{op} {n}" for op, n in counts.most_common()))


def kernel_times(events):
    """Kernel microseconds summed per operator type and per (operator, output shape)."""
    by_op = collections.Counter()
    by_shape = collections.Counter()
    for event in events:
        if event.get("cat") != "Node" or not event["name"].endswith("_kernel_time"):
            continue
        op = event["args"]["op_name"]
        shapes = [list(shape.values())[0] for shape in event["args"].get("output_type_shape", [])]
        by_op[op] += event["dur"]
        by_shape[f"{op} {shapes}"] += event["dur"]
    return by_op, by_shape


if __name__ == "__main__":
    main()
