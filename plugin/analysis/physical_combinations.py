"""Conditioning combinations for COP-GEN: for each subset of the real rasters the user names
(:mod:`.subsets`), generate the other modalities and compare them with the real ones, band by
band in physical units (:mod:`.physical_metrics`), with a comparison sheet of quicklooks.

Every run shares one area (the real raster with the smallest footprint) and one seed; the
real rasters are read on the grids the outputs lie on. A subset that gives only some groups
of a sensor conditions on those groups of its file alone. Every request is built (checked)
before the first run, so bad input writes nothing; the total is said before any work.
"""

from dataclasses import dataclass, replace
from pathlib import Path

from ..engine.errors import InputError
from ..engine.families import COPGEN
from ..engine.families.copgen.registry import BY_KEY, IMAGE_MODALITIES
from ..engine.request import known_modality_keys
from .physical_metrics import compare_modality
from .physical_renderings import footprint_area, output_lattice, quicklook, read_physical, real_layers
from .renderings import shown_on
from .sequence import GenerationSequence
from .sheet import SheetRow, fit, write_sheet
from .subsets import compact_names, generated_keys, parse_subsets, short_label, subset_label

SHEET_CELL = 128


@dataclass(frozen=True)
class PhysicalCombinationResult:
    """One generated modality of one combination; ``metrics``: one BandComparison per band
    against the real layer, () where no real raster gives the modality."""

    conditions: tuple  # official keys given
    modality: str
    path: Path
    metrics: tuple

    @property
    def label(self):
        return subset_label(self.conditions)


def plan_combinations(conditions, subsets=None, generate=None):
    """[(given keys, generated keys)] of the real rasters ``conditions`` (PhysicalConditionSpec
    list), the user's ``subsets`` text (None: the default) and ``generate`` (names; None:
    every image modality not given). InputError naming the field at fault."""
    filled = {}
    for spec in conditions:
        for key in spec.keys:
            if key in filled:
                raise InputError(f"{key} is given by two rasters ({filled[key].label} and {spec.label})",
                                 "conditions")
            filled[key] = spec
    targets = None
    if generate is not None:
        targets = known_modality_keys(COPGEN, "generate", generate)
        scalar = [key for key in targets if not BY_KEY[key].has_vae]
        if scalar:
            raise InputError(f"{', '.join(BY_KEY[key].label for key in scalar)}: not a raster; the combinations "
                             "compare rasters", "generate")
    subsets = parse_subsets(subsets, filled, [spec.modality for spec in conditions])
    return [(subset, generated_keys(subset, targets)) for subset in subsets]


def run_physical_combinations(model, conditions, out_dir, sheet_path, subsets=None, generate=None, seed=0, steps=50,
                              solver="dpm-solver-fast", run_name="combo", date=None, max_area_km2=None,
                              progress=None, cancel=None):
    """Run every planned combination (see :func:`plan_combinations`), writing one COG per
    generated modality and combination into ``out_dir`` and the comparison sheet PNG at
    ``sheet_path``; the PhysicalCombinationResults. A failure or cancel leaves no file."""
    plan = plan_combinations(conditions, subsets, generate)
    with GenerationSequence(model, None, out_dir, len(plan), seed, steps, solver, max_area_km2, progress, cancel,
                            area=footprint_area([spec.path for spec in conditions]), date=date) as sequence:
        runs = [(_given(conditions, subset), made, _run_name(run_name, subset)) for subset, made in plan]
        sequence.announce_requests([sequence.request(*run) for run in runs])  # all checked before any work
        results, rows, references = [], [], None
        for (subset, _), run in zip(plan, runs):
            outputs = sequence.generate(*run)
            if references is None:  # the real rasters, read on the outputs' own grids
                lattice = output_lattice(next(iter(outputs.values())))
                references = real_layers(conditions, lattice, cancel)
                real = {key: fit(_shown(key, *layer), SHEET_CELL) for key, layer in references.items()}
            generated = {}
            for key, path in outputs.items():
                values, valid = read_physical(path)
                reference = references.get(key)
                metrics = () if reference is None else tuple(compare_modality(key, *reference, values, valid))
                results.append(PhysicalCombinationResult(subset, key, path, metrics))
                generated[key] = fit(_shown(key, values, valid, reference), SHEET_CELL)
            rows.append(SheetRow(subset_label(subset), real, generated, subset))
        columns = [key for key in IMAGE_MODALITIES if key in references or any(key in row.generated for row in rows)]
        write_sheet(rows, sheet_path, columns, SHEET_CELL, {key: short_label(key) for key in columns})
    return results


def _shown(key, values, valid, reference=None):
    """A layer's quicklook as the sheet shows it: over the real layer's valid pixels (its own
    without one), stretched like the real layer."""
    area = valid if reference is None else reference[1]
    return shown_on(area, quicklook(key, values, valid, like=reference), valid)


def _given(conditions, subset):
    """The condition specs of a subset: a raster whose keys are all given as it is, else one
    spec per given key of it (its file then fills that group alone)."""
    specs = []
    for spec in conditions:
        keys = [key for key in spec.keys if key in subset]
        specs.extend([spec] if keys == list(spec.keys) else [replace(spec, modality=key) for key in keys])
    return specs


def _run_name(run_name, subset):
    if not subset:
        return f"{run_name}_unconditional"
    return f"{run_name}_given-" + "-".join(name.replace("_", "") for name in compact_names(subset))
