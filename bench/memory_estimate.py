"""The estimate's memory figure against the measured peak, on the full-size model.

Runs ``generate`` (one solver step from the bundled Sentinel-2 tile: s1_rtc for COP-GEN-Beta;
S1RTC_vh_vv and DEM_DEM from all the s2l2a groups for COP-GEN, read from the model folder) in a
child process over a square of --px pixels around the tile and prints the estimate the run
announced beside the child's peak RSS (ru_maxrss). The model folder is a converted full-size
one: the official weights, or random ones written by plugin.benchmarks.weights.fullsize_checkpoints
(COP-GEN: plugin.benchmarks.copgen_weights) and converted with `python -m plugin convert`
(random weights give real memory, never real images).

    .venv/bin/python bench/memory_estimate.py --model DIR [--px 256] [--px 1068]
"""

import argparse
import json
import re
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TILE = REPO.parent / "shared" / "data" / "majortom_s2l2a" / "282D_485L_3_3.tif"
# the tile's top-left corner in EPSG:32722, the squares' top-left corner
LEFT, TOP = 790236, 7198039


# what each family generates from the tile
RUNS = {"cop-gen-beta": ("s1_rtc", "s2_l2a"), "cop-gen": ("S1RTC_vh_vv,DEM_DEM", "s2l2a")}


def measure(model, px):
    extent = f"{LEFT},{TOP - 10 * px},{LEFT + 10 * px},{TOP},32722"
    family = json.loads((Path(model) / "model.json").read_text()).get("family", "cop-gen-beta")
    generate, sensor = RUNS[family]
    with tempfile.TemporaryDirectory() as out:
        result = subprocess.run(
            [sys.executable, "-m", "plugin", "generate", "--model", str(model), "--generate", generate,
             "--condition", f"{sensor}={TILE}", "--extent", extent, "--max-area-km2", "1000", "--out", out,
             "--steps", "1", "--device", "cpu"],
            cwd=REPO, capture_output=True, text=True,
        )
    if result.returncode:
        sys.exit(result.stderr.strip().splitlines()[-1])
    estimate = float(re.search(r"about ([0-9.]+) GiB of memory", result.stderr).group(1))
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20  # KiB -> GiB
    return estimate, peak


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="converted full-size model folder")
    parser.add_argument("--px", type=int, action="append", help="square side in pixels (repeatable; default 256)")
    args = parser.parse_args()
    for px in args.px or [256]:
        estimate, peak = measure(args.model, px)  # children run one after the other: ru_maxrss is the largest
        print(f"{px} px: estimate {estimate:.1f} GiB, peak so far {peak:.2f} GiB, ratio {peak / estimate:.2f}", flush=True)


if __name__ == "__main__":
    main()
