"""Full-size conversion benchmark: wall time and peak memory of `python -m plugin convert`.

Writes random-weight checkpoints in the official layouts at the real sizes
(plugin.benchmarks.weights), then converts them in
a child process so its peak RSS is the conversion's alone. Checkpoints are kept in --work and
reused by later runs.

    .venv/bin/python bench/convert_fullsize.py [--precision fp32|fp16] [--work DIR]
"""

import argparse
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from plugin.benchmarks.weights import DENOISER, fullsize_checkpoints  # noqa: E402
from plugin.engine.denoiser_layout import expected_shapes as denoiser_shapes  # noqa: E402

def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--precision", choices=("fp32", "fp16"), default="fp32")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "copgen_bench")
    args = parser.parse_args()

    denoiser, vae = fullsize_checkpoints(args.work)
    parameters = sum(int(np.prod(s)) for s in denoiser_shapes(DENOISER).values())
    print(f"denoiser parameters: {parameters / 1e6:.1f} M ({denoiser.stat().st_size / 1e9:.2f} GB)")

    out = args.work / f"model_{args.precision}"
    command = [
        sys.executable, "-m", "plugin", "convert",
        "--denoiser", str(denoiser), "--vae", str(vae), "--out", str(out),
        "--heads", str(DENOISER.num_heads), "--precision", args.precision,
    ]
    if out.exists():  # a re-run would be a no-op; time a real conversion
        shutil.rmtree(out)
    start = time.perf_counter()
    subprocess.run(command, cwd=REPO, check=True)
    wall = time.perf_counter() - start
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB on Linux
    print(f"convert {args.precision}: wall {wall:.1f} s, peak RSS {peak_kib / 2**20:.2f} GiB")
    for path in sorted(out.iterdir()):
        print(f"  {path.name:22s} {path.stat().st_size / 1e6:10.1f} MB")


if __name__ == "__main__":
    main()
