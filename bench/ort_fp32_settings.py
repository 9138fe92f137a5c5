"""The faithful fp32 denoiser call under each onnxruntime setting that could change its speed.

Opens the fp32 ``denoiser.onnx`` of a model folder once per setting (one at a time: a full-size
session holds 1.15 GB) and times denoiser calls (batch 1, inputs built from the graph's declared
shapes). Every pass visits all settings, in a rotating order, so load changes hit them alike;
the ratio to the plugin's own setting (``runtime.open_session``) is taken within each pass.

Settings: the intra-op thread count (1, the physical cores, onnxruntime's default), spinning,
the graph optimisation level (basic, extended, all), the fused (flash) attention kernel of
``com.microsoft`` MultiHeadAttention on and off, the memory arena and memory pattern, weight
prepacking.

    .venv/bin/python bench/ort_fp32_settings.py MODEL_DIR [--passes 2] [--calls 2]
"""

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from plugin.engine.cpu_features import isa_summary  # noqa: E402
from plugin.engine.fast_path import timing_inputs  # noqa: E402
from plugin.engine.runtime import physical_cores  # noqa: E402

FLASH_OFF = "ORT_DISABLE_FLASH_ATTENTION"  # read by the CPU MultiHeadAttention kernel when made


def settings(cores):
    """name -> (SessionOptions changes, environment while the session is made)."""
    level = ort.GraphOptimizationLevel
    return {
        "plugin (all, threads=cores)": ({}, {}),
        "threads=1": ({"intra_op_num_threads": 1}, {}),
        "threads=0 (ort decides)": ({"intra_op_num_threads": 0}, {}),
        "no spinning": ({"config": {"session.intra_op.allow_spinning": "0"}}, {}),
        "opt extended": ({"graph_optimization_level": level.ORT_ENABLE_EXTENDED}, {}),
        "opt basic": ({"graph_optimization_level": level.ORT_ENABLE_BASIC}, {}),
        "flash attention off": ({}, {FLASH_OFF: "1"}),
        "arena off": ({"enable_cpu_mem_arena": False}, {}),
        "mem pattern off": ({"enable_mem_pattern": False}, {}),
        "prepacking off": ({"config": {"session.disable_prepacking": "1"}}, {}),
    }


def open_with(path, changes, environment, cores):
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = cores
    for key, value in changes.items():
        if key == "config":
            for entry, text in value.items():
                options.add_session_config_entry(entry, text)
        else:
            setattr(options, key, value)
    saved = {name: os.environ.get(name) for name in environment}
    os.environ.update(environment)
    try:
        return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("--passes", type=int, default=2)
    parser.add_argument("--calls", type=int, default=2, help="timed calls per setting and pass (after one warm-up)")
    args = parser.parse_args()
    path = args.model_dir / "denoiser.onnx"
    cores = physical_cores() or 0
    table = settings(cores)
    print(f"onnxruntime {ort.__version__}, {cores} physical cores, ISA: {isa_summary()}")
    print(f"load average before: {os.getloadavg()}")
    seconds = {name: [] for name in table}
    ratios = {name: [] for name in table}
    reference = None
    names = list(table)
    for number in range(args.passes):
        order = names[number % len(names):] + names[:number % len(names)]
        this_pass = {}
        for name in order:
            session = open_with(path, *table[name], cores)
            feeds = timing_inputs(path, np.random.default_rng(0))
            output = session.run(None, feeds)[0]
            if reference is None:
                reference = output
            error = float(np.sqrt(np.mean((output - reference) ** 2) / np.mean(reference**2)))
            times = []
            for _ in range(args.calls):
                start = time.perf_counter()
                session.run(None, feeds)
                times.append(time.perf_counter() - start)
            del session
            this_pass[name] = min(times)
            seconds[name].append(min(times))
            print(f"pass {number + 1}: {name:28s} {min(times):6.2f} s per call (rms vs first {error:.1e})", flush=True)
        for name in names:
            ratios[name].append(this_pass[name] / this_pass[names[0]])
    print(f"load average after: {os.getloadavg()}")
    print("\n| setting | s per call (min over passes) | ratio to the plugin's setting (median of passes) |")
    print("|---|---|---|")
    for name in names:
        print(f"| {name} | {min(seconds[name]):.2f} | {np.median(ratios[name]):.3f} |")


if __name__ == "__main__":
    main()
