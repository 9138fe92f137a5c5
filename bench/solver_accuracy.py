"""How close each solver gets, in few steps, to the reference 50-step DPM-Solver-fast result.

Uses the tiny fixture checkpoints (random weights), so the figures measure how fast the solvers
converge on this schedule, not image quality. Run from the repository root:

    .venv/bin/python bench/solver_accuracy.py [--batch 8] [--seed 0]

For the joint task (all four modalities generated) and the conditional task of the fixtures
(s1_rtc given, three generated), the initial noise is the fixture's x_T plus ``batch - 1``
seeded draws; every solver starts from the same x_T. Distances are to the 50-step
``dpm-solver-fast`` result and are relative to its standard deviation: RMS and maximum.

The random tiny network predicts small, slowly varying noise, an easy ODE. A last table uses
the exact noise predictor of Gaussian data N(0, 0.5^2), whose data prediction changes a lot
near t = 0 like a trained model's; there the exact ODE solution is known too.
"""

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO.parent / "shared" / "fixtures" / "copgen_beta_reference"
sys.path.insert(0, str(REPO))

from plugin.engine import load  # noqa: E402
from plugin.engine.convert import convert  # noqa: E402
from plugin.engine.families.beta.registry import MODALITIES  # noqa: E402
from plugin.engine.schedule import DiscreteVPSchedule  # noqa: E402
from plugin.engine.solvers import SOLVERS, T_END, T_START, solve  # noqa: E402

STEPS = (5, 10, 15, 20, 25, 50)
# DPM-Solver-fast ends with a second-order group when steps % 3 == 2: show such counts too.
GAUSSIAN_STEPS = (5, 8, 10, 11, 14, 15, 17, 20, 23, 25, 26, 50)
REFERENCE = ("dpm-solver-fast", 50)
GAUSSIAN_STD = 0.5


def tasks(expected, batch, seed):
    """(name, generate, conditions, x_T) with the fixture's noise first in the batch."""
    rng = np.random.default_rng(seed)

    def noise(fixture_x_T):
        extra = rng.standard_normal((len(fixture_x_T), batch - 1, 4, 32, 32), dtype=np.float32)
        return np.concatenate([fixture_x_T, extra], axis=1)

    cond_latents = np.concatenate(
        [expected["cond_s1_rtc"], rng.standard_normal((batch - 1, 4, 32, 32), dtype=np.float32)]
    )
    return [
        ("joint", list(MODALITIES), {}, noise(expected["joint_x_T"])),
        ("s1_rtc -> others", ["dem", "s2_l1c", "s2_l2a"], {"s1_rtc": cond_latents},
         noise(expected["cond_x_T"])),
    ]


def run(model, generate, conditions, x_T, solver, steps):
    result = model.sample(generate, conditions, steps=steps, solver=solver, x_T=x_T, seed=0)
    return np.stack([result[key] for key in generate])


def relative_distances(result, reference):
    diff = result.astype(np.float64) - reference
    scale = reference.std()
    return np.sqrt(np.mean(diff**2)) / scale, np.abs(diff).max() / scale


def print_table(columns, rows):
    print("| solver | " + " | ".join(f"{c} steps" for c in columns) + " |")
    print("|---" * (len(columns) + 1) + "|")
    for name, cells in rows:
        print(f"| {name} | " + " | ".join(cells) + " |")


def gaussian_table(batch, seed):
    schedule = DiscreteVPSchedule()

    def data_std(t):
        alpha, sigma = schedule.marginal_alpha(t), schedule.marginal_std(t)
        return np.sqrt(alpha**2 * GAUSSIAN_STD**2 + sigma**2)

    def noise_model(x, t):  # E[noise | x_t] for Gaussian data
        return schedule.marginal_std(t) * x / data_std(t) ** 2

    x_T = np.random.default_rng(seed).standard_normal((batch, 4, 32, 32))
    exact = x_T * data_std(T_END) / data_std(T_START)  # x_t / std(x_t) is constant
    reference = solve(noise_model, x_T, REFERENCE[1], REFERENCE[0])
    rms, _ = relative_distances(reference, exact)
    print(f"\n## Gaussian data N(0, {GAUSSIAN_STD}^2), exact noise predictor; "
          f"50-step reference vs exact ODE solution: RMS {rms:.4f}\n")
    rows = [
        (solver, [f"{relative_distances(solve(noise_model, x_T, steps, solver), reference)[0]:.4f}"
                  for steps in GAUSSIAN_STEPS])
        for solver in SOLVERS
    ]
    print_table(GAUSSIAN_STEPS, rows)
    print("\ncells: RMS distance to the reference, relative to its standard deviation")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8, help="samples per task (default 8)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the extra samples")
    args = parser.parse_args()

    expected = dict(np.load(FIXTURES / "expected.npz"))
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = convert(FIXTURES / "denoiser_tiny.pth", FIXTURES / "vae_tiny.pth",
                            Path(tmp) / "tiny", heads=2)
        model = load(model_dir, device="cpu", max_batch=64)
        for name, generate, conditions, x_T in tasks(expected, args.batch, args.seed):
            reference = run(model, generate, conditions, x_T, *REFERENCE)
            fixture = expected["joint_out" if name == "joint" else "cond_out"]
            official = float(np.abs(reference[:, :1] - fixture).max() / fixture.std())
            print(f"\n## {name}: batch {args.batch}; 50-step reference vs official fixture: "
                  f"max {official:.1e}\n")
            rows = []
            for solver in SOLVERS:
                cells = []
                for steps in STEPS:
                    result = run(model, generate, conditions, x_T, solver, steps)
                    cells.append("{:.4f} / {:.3f}".format(*relative_distances(result, reference)))
                rows.append((solver, cells))
            print_table(STEPS, rows)
        print("\ncells: RMS / max distance to the reference, relative to its standard deviation")
    gaussian_table(args.batch, args.seed)


if __name__ == "__main__":
    main()
