"""How close the time a run announces is to the time it takes: estimate vs measured, per stage.

Generates from the real Sentinel-2 L2A tile (or --condition) with generate_area, the engine's
one generation path, and prints the estimate the run announced (its first progress message,
priced by the kept speed figures, see plugin/engine/speed.py) beside the measured wall time,
overall and per stage (encoding, denoising, decoding), with their ratio. Run it twice: the
first run on a model measures the speed (said on the first line), later ones reuse it.

    .venv/bin/python bench/estimate_ratio.py [--model-dir DIR] [--steps 10] [--generate s1_rtc,dem]

Without --model-dir the tiny reference checkpoints (random weights) are converted on the fly:
their figures are mostly overhead; point --model-dir at an installed model for real ones.
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from plugin.engine import load, speed  # noqa: E402
from plugin.engine.convert import convert  # noqa: E402
from plugin.engine.request import GenerationRequest  # noqa: E402
from plugin.geo import pipeline  # noqa: E402
from plugin.geo.condition_spec import ConditionSpec  # noqa: E402

FIXTURES = REPO.parent / "shared" / "fixtures" / "copgen_beta_reference"
TILE = REPO.parent / "shared" / "data" / "majortom_s2l2a" / "282D_485L_3_3.tif"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", default=None)
    parser.add_argument("--condition", default=str(TILE), help="an S2 L2A GeoTIFF (bands 4,3,2 read)")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--generate", default="s1_rtc,dem")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="estimate-ratio-") as scratch:
        model_dir = args.model_dir or convert(FIXTURES / "denoiser_tiny.pth", FIXTURES / "vae_tiny.pth",
                                              Path(scratch) / "model", heads=2)
        model = load(model_dir, args.device)
        kept = speed.recall(speed.speed_key(model)) is not None
        print(f"speed figures: {'kept from an earlier run' if kept else 'measured now (first run here)'} "
              f"({speed.cache_file()})")
        request = GenerationRequest(
            generate=args.generate.split(","), conditions=(ConditionSpec("s2_l2a", args.condition, bands=(4, 3, 2)),),
            steps=args.steps,
        )
        announced, stages, marks = {}, {}, []
        original = pipeline.estimate_run

        def keep_estimate(*a, **k):  # the RunEstimate the run prices and announces
            announced["estimate"] = original(*a, **k)
            return announced["estimate"]

        pipeline.estimate_run = keep_estimate

        def progress(done, total, message):
            now = time.perf_counter()
            if not marks:
                marks.append(("start", now))  # the estimate is announced: the work starts
                announced["after_s"] = now - started
                return
            stage = message.split(" · ")[0].split()[0]
            if stage != marks[-1][0]:
                marks.append((stage, now))
            stages.setdefault(stage, 0)

        started = time.perf_counter()
        pipeline.generate_area(model, request, Path(scratch) / "out", progress=progress)
        ended = time.perf_counter()
    estimate = announced["estimate"]
    print(f"estimate announced {announced['after_s']:.2f} s after the start: {estimate.describe()}")
    marks.append(("end", ended))
    measured = {}
    for (stage, at), (_, until) in zip(marks[1:], marks[2:]):  # a stage runs until the next one's first report
        measured[stage] = measured.get(stage, 0.0) + until - at
    counts = {"encoding": estimate.encoder_tiles, "denoising": estimate.denoiser_windows, "decoding": estimate.decoder_tiles}
    print(f"{'stage':<10} {'estimated s':>12} {'measured s':>11} {'measured / estimated':>21}")
    for stage, count in counts.items():
        guess = count * estimate.stage_seconds[stage]
        taken = measured.get(stage, 0.0)
        print(f"{stage:<10} {guess:>12.2f} {taken:>11.2f} {taken / guess if guess else float('nan'):>21.2f}")
    total = ended - marks[0][1]
    print(f"{'run':<10} {estimate.seconds:>12.2f} {total:>11.2f} {total / estimate.seconds:>21.2f}")


if __name__ == "__main__":
    main()
