"""The generation chain: A -> B -> A' -> B' -> A'' ...; how far each regenerated A drifts from
the real A.

Iteration k generates the via modality B from the current A (the real raster first, then the
previous iteration's A), then A again from that B, and compares the new A with the real A's
rendering. Everything stays on the real raster's grid; every iteration uses the same seed.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ..engine.errors import InputError
from ..geo.condition_spec import ConditionSpec
from ..geo.grid import TargetGrid
from .metrics import Comparison, compare
from .renderings import read_rendering, reference_rendering
from .sequence import GenerationSequence


@dataclass(frozen=True)
class ChainStep:
    """One generated layer of the chain; ``metrics`` against the real input (None for the via
    modality, which has no real counterpart)."""

    iteration: int
    modality: str
    path: Path
    metrics: Optional[Comparison]


def run_chain(
    model,
    condition,
    via,
    iterations,
    out_dir,
    seed=0,
    steps=50,
    solver="dpm-solver-fast",
    run_name="chain",
    max_area_km2=None,
    progress=None,
    cancel=None,
):
    """Run the chain from ``condition`` (a ConditionSpec) through modality ``via``; returns the
    ChainSteps in the order they were generated. A failure or cancel leaves no file behind."""
    if via == condition.modality:
        raise InputError(f"via modality {via!r} must differ from the input modality")
    if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 1:
        raise InputError(f"iterations must be a whole number >= 1, got {iterations!r}")
    grid = TargetGrid.from_raster(condition.path)
    reference, reference_valid = reference_rendering(condition, grid, cancel)
    steps_done = []
    current = condition
    with GenerationSequence(
        model, grid, out_dir, 2 * iterations, seed, steps, solver, max_area_km2, progress, cancel
    ) as sequence:
        sequence.announce([(1, 1)] * (2 * iterations))  # there and back: one modality from one
        for iteration in range(1, iterations + 1):
            name = f"{run_name}_iter{iteration:02d}"
            via_path = sequence.generate([current], [via], name)[via]
            steps_done.append(ChainStep(iteration, via, via_path, None))
            via_condition = _rendering_condition(via, via_path, f"{name} {via}")
            back_path = sequence.generate([via_condition], [condition.modality], name)[condition.modality]
            generated, valid = read_rendering(back_path)
            metrics = compare(reference, generated, reference_valid & valid)
            steps_done.append(ChainStep(iteration, condition.modality, back_path, metrics))
            current = _rendering_condition(condition.modality, back_path, f"{name} {condition.modality}")
    return steps_done


def _rendering_condition(modality, path, layer_name):
    """A generated file as the next condition: it is already a rendering."""
    return ConditionSpec(modality=modality, path=str(path), source="thumbnail", layer_name=layer_name)
