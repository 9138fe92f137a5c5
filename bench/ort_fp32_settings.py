"""The faithful fp32 denoiser call under each onnxruntime setting that could change its speed.

Keeps a session with the plugin's own setting (``runtime.open_session``: every optimisation,
one thread per physical core) open and pairs it with one session per other setting in turn (a
full-size session holds 1.15 GB): calls alternate between the two, round after round, so a
change of machine load hits both; the ratio is taken within each round, then its median.
Inputs: one denoiser call, batch 1, built from the graph's declared shapes.

Settings: the intra-op thread count (1, the physical cores, onnxruntime's default), spinning,
the graph optimisation level (basic, extended, all), the fused (flash) attention kernel of
``com.microsoft`` MultiHeadAttention on and off, the memory arena and memory pattern, weight
prepacking.

    .venv/bin/python bench/ort_fp32_settings.py MODEL_DIR [--rounds 3]
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


def timed(session, feeds):
    start = time.perf_counter()
    session.run(None, feeds)
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("--rounds", type=int, default=3, help="alternating call pairs per setting (after a warm-up)")
    args = parser.parse_args()
    path = args.model_dir / "denoiser.onnx"
    cores = physical_cores() or 0
    table = settings(cores)
    names = list(table)
    print(f"onnxruntime {ort.__version__}, {cores} physical cores, ISA: {isa_summary()}")
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    feeds = timing_inputs(path, np.random.default_rng(0))
    plugin = open_with(path, *table[names[0]], cores)  # stays open: every setting is paired with it
    reference = plugin.run(None, feeds)[0]
    rows = []
    for name in names[1:]:
        session = open_with(path, *table[name], cores)
        error = float(np.sqrt(np.mean((session.run(None, feeds)[0] - reference) ** 2) / np.mean(reference**2)))
        ours, theirs = [], []
        for number in range(args.rounds):  # alternate who goes first
            pair = [(plugin, ours), (session, theirs)]
            for runner, times in pair if number % 2 == 0 else pair[::-1]:
                times.append(timed(runner, feeds))
        del session
        ratio = float(np.median(np.array(theirs) / np.array(ours)))
        rows.append((name, min(ours), min(theirs), ratio, error))
        print(f"{name:28s} {min(theirs):6.2f} s per call against {min(ours):6.2f} s: ratio {ratio:.3f} (rms {error:.1e})", flush=True)
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"\n| setting | s per call (min) | plugin's setting in the same rounds | ratio (median of rounds; < 1 is faster) |")
    print("|---|---|---|---|")
    for name, ours, theirs, ratio, _ in rows:
        print(f"| {name} | {theirs:.2f} | {ours:.2f} | {ratio:.3f} |")


if __name__ == "__main__":
    main()
