"""All conditioning combinations: for every subset of the four real modalities given as
conditions (none included), generate the others and compare them with the real ones.

Every run shares one grid (that of the condition raster with the smallest footprint, which the
others must overlap) and one seed; the comparison sheet shows one row per combination.
"""

from dataclasses import dataclass
from itertools import combinations as subsets_of
from pathlib import Path

from ..engine.errors import InputError
from ..engine.families.beta.registry import MODALITIES
from ..geo.grid import TargetGrid
from .metrics import Comparison, compare
from .renderings import read_rendering, reference_rendering, shown_on
from .sequence import GenerationSequence
from .sheet import SheetRow, short_name, write_sheet


@dataclass(frozen=True)
class CombinationResult:
    """One generated modality of one combination, compared with the real one."""

    conditions: tuple
    modality: str
    path: Path
    metrics: Comparison

    @property
    def label(self):
        return combination_label(self.conditions)


def condition_subsets():
    """Every subset of the modalities short of all four, smallest first, in modality order."""
    return [subset for size in range(len(MODALITIES)) for subset in subsets_of(MODALITIES, size)]


def combination_label(conditions):
    return "GIVEN " + " + ".join(short_name(m) for m in conditions) if conditions else "UNCONDITIONAL"


def run_combinations(
    model,
    conditions,
    out_dir,
    sheet_path,
    seed=0,
    steps=50,
    solver="dpm-solver-fast",
    run_name="combo",
    max_area_km2=None,
    progress=None,
    cancel=None,
):
    """``conditions``: {modality: ConditionSpec} for all four modalities. Writes one GeoTIFF per
    generated modality and combination into ``out_dir`` and the comparison sheet PNG; returns
    the CombinationResults. A failure or cancel leaves no file behind."""
    missing = [m for m in MODALITIES if m not in conditions]
    if missing:
        raise InputError(f"all four modalities are needed as real rasters; missing: {', '.join(missing)}")
    grid = min((TargetGrid.from_raster(spec.path) for spec in conditions.values()), key=lambda g: g.width * g.height)
    references = {m: reference_rendering(conditions[m], grid, cancel) for m in MODALITIES}
    subsets = condition_subsets()
    results, rows = [], []
    with GenerationSequence(
        model, grid, out_dir, len(subsets), seed, steps, solver, max_area_km2, progress, cancel
    ) as sequence:
        sequence.announce([(len(MODALITIES) - len(subset), len(subset)) for subset in subsets])
        for subset in subsets:
            name = f"{run_name}_" + (
                "given-" + "-".join(m.replace("_", "") for m in subset) if subset else "unconditional"
            )
            generate = [m for m in MODALITIES if m not in subset]
            outputs = sequence.generate([conditions[m] for m in subset], generate, name)
            generated = {}
            for modality, path in outputs.items():
                rgb, valid = read_rendering(path)
                reference, reference_valid = references[modality]
                results.append(
                    CombinationResult(subset, modality, path, compare(reference, rgb, reference_valid & valid))
                )
                generated[modality] = shown_on(reference_valid, rgb, valid)
            real = {m: shown_on(references[m][1], *references[m]) for m in MODALITIES}
            rows.append(SheetRow(combination_label(subset), real, generated, subset))
        write_sheet(rows, sheet_path)
    return results
