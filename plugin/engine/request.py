"""GenerationRequest: everything one generation run is asked to do, checked once, here.

The CLI, the QGIS algorithms and the analysis runners build a request; ``geo.pipeline.
generate_area(model, request, out_dir)`` runs it. Constructing a request validates every
field and normalises it (modalities in model order, a default run name), so a request that
exists is a valid one: later layers never check these fields again. Every error is an
InputError whose ``field`` is the request field at fault ("steps", "conditions.s2_l2a"...),
which each face turns into its own words.

The area is opaque here (the engine has no GDAL): ``extent`` (xmin, ymin, xmax, ymax[, crs])
or "xmin,ymin,xmax,ymax[,EPSG]", ``aoi`` (polygon, crs), or ``grid`` (a geo TargetGrid);
at most one of them, and none means the footprint of the conditions. geo checks their
contents when it derives the grid. ``conditions`` are geo ConditionSpecs (anything with
``modality`` and ``label``).
"""

import numbers
import re
from dataclasses import dataclass, fields
from typing import Any, Optional

from .errors import InputError
from .families import BETA, FAMILIES, owner_hint, request_rules
from .schedule import NUM_TRAIN_STEPS
from .solvers import SOLVERS, check_solver_args
from .tiling import parse_tiling

RUN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
AREA_FIELDS = ("extent", "aoi", "grid")
# The faces' default area limit: one Major TOM cell (1068 x 1068 px at 10 m, 114 km²), the unit
# the model and `dataset` are built around, fits; a mistyped extent of days of work does not.
DEFAULT_MAX_AREA_KM2 = 120.0
# The faces' default time limit on one run's estimate (a dataset: per cell and for the whole run):
# generous, but a mistyped --samples or --steps must not start a run of weeks.
DEFAULT_MAX_HOURS = 24.0
LIMIT_FIELDS = ("max_area_km2", "max_hours", "max_memory_gib")


MAX_NAME_CHARS = 255  # a file name, on every usual file system (run names are ASCII)
MAX_STEPS = NUM_TRAIN_STEPS  # more solver steps than the schedule has noise levels add only cost

@dataclass(frozen=True)
class GenerationRequest:
    """One run: what to generate from what, where, and how to sample it (see the module doc).

    generate: modality keys (a list, or "a,b"); kept in model order. conditions: at most one
    per modality, none of them generated. samples: outputs per modality. seed: the random
    seed (>= 0). steps / solver: see plugin.engine.solvers. tiling: a tiling spec string
    (None: the engine's default), passed on to the canvas. reflectance: write Sentinel-2
    outputs as UInt16 reflectance. max_area_km2: refuse larger areas (None: no limit).
    max_hours / max_memory_gib: refuse runs whose estimate (plugin.engine.estimate) is longer
    or needs more memory, before any condition is read (None: no limit).
    run_name: output file prefix (default "copgen_seed<seed>"). family: the model family the
    modality names are of (its registry checks them; COP-GEN takes sensor names too). date:
    "YYYY-MM-DD", the date condition of families that have one (None: not conditioned).
    """

    generate: Any
    conditions: tuple = ()
    extent: Any = None
    aoi: Any = None
    grid: Any = None
    samples: int = 1
    seed: int = 0
    steps: int = 50
    solver: str = SOLVERS[0]
    tiling: Optional[str] = None
    reflectance: bool = False
    max_area_km2: Optional[float] = None
    max_hours: Optional[float] = None
    max_memory_gib: Optional[float] = None
    run_name: Optional[str] = None
    family: str = BETA
    date: Optional[str] = None

    def __post_init__(self):
        if self.family not in FAMILIES:
            raise InputError(f"unknown model family {self.family!r}; expected one of {', '.join(FAMILIES)}", "family")
        rules = request_rules(self.family)
        generate = _known_keys(rules, "generate", self.generate, self.family)
        if not generate:
            raise InputError(f"nothing to generate; name at least one of {', '.join(rules.MODALITIES)}", "generate")
        conditions = _conditions(self.conditions, generate, rules, self.family)
        rules.check_date(self.date)
        for name, lowest in (("samples", 1), ("seed", 0)):
            _whole_number(name, getattr(self, name), lowest)
        check_solver_args(self.steps, self.solver)
        if self.steps > MAX_STEPS:  # refused before anything counts or allocates per step
            raise InputError(f"must be at most {MAX_STEPS} (the model knows {MAX_STEPS} noise levels; the "
                             f"reference uses 50), got {self.steps}", "steps")
        given = [name for name in AREA_FIELDS if getattr(self, name) is not None]
        if len(given) > 1:
            raise InputError(f"give only one of {', '.join(AREA_FIELDS)} (got {' and '.join(given)})", given[1])
        if not given and not conditions:
            raise InputError("unconditional generation needs an extent or an AOI polygon", "extent")
        _check_tiling(self.tiling)
        if not isinstance(self.reflectance, bool):
            raise InputError(f"must be true or false, got {self.reflectance!r}", "reflectance")
        if self.reflectance and not set(generate) & set(rules.REFLECTANCE_MODALITIES):
            raise InputError(rules.no_reflectance_message(), "reflectance")
        for name, unit in zip(LIMIT_FIELDS, ("km²", "hours", "GiB")):
            limit = getattr(self, name)
            if limit is not None and not (isinstance(limit, numbers.Real) and not isinstance(limit, bool) and limit > 0):
                raise InputError(f"must be a positive number of {unit}, got {limit!r}", name)
        run_name = f"copgen_seed{self.seed}" if self.run_name is None else str(self.run_name)
        if not RUN_NAME.fullmatch(run_name):
            raise InputError(f"{run_name!r}: use letters, digits, '.', '_' and '-' only", "run_name")
        object.__setattr__(self, "generate", generate)
        object.__setattr__(self, "conditions", conditions)
        object.__setattr__(self, "samples", int(self.samples))
        object.__setattr__(self, "seed", int(self.seed))
        object.__setattr__(self, "steps", int(self.steps))
        object.__setattr__(self, "run_name", run_name)
        longest = self._longest_output_name()  # not the list: --samples may be absurd
        if len(longest) > MAX_NAME_CHARS:
            raise InputError(f"{run_name!r} makes file names like {longest[:40]}... of {len(longest)} characters, "
                             f"more than file systems allow ({MAX_NAME_CHARS}); choose a shorter name", "run_name")

    def output_names(self):
        """The file names a run of this request writes, in the order generate_area returns them."""
        return [output_file_name(self.run_name, key, sample, self.samples)
                for key in self.generate for sample in range(1, self.samples + 1)]

    def _longest_output_name(self):
        return output_file_name(self.run_name, max(self.generate, key=len), self.samples, self.samples)

    @property
    def area_field(self):
        """The field that gives the area ("extent", "aoi", "grid"), None for the conditions'."""
        return next((name for name in AREA_FIELDS if getattr(self, name) is not None), None)


FIELDS = tuple(field.name for field in fields(GenerationRequest))


def output_file_name(run_name, key, sample=1, samples=1):
    """``<run>_<key>.tif`` (``<run>_<key>_sample<N>.tif`` when a run has several samples): how
    every output of a run, and each of prepare's files, is named."""
    return f"{run_name}_{key}" + (f"_sample{sample}" if samples > 1 else "") + ".tif"


def _check_tiling(tiling):
    if tiling is None:
        return
    if not isinstance(tiling, str) or not tiling.strip():
        raise InputError(f"must be a tiling spec such as 'overlap:16', got {tiling!r}", "tiling")
    parse_tiling(tiling)


def listed_names(field, names, what):
    """A list of names from a list or a comma-separated string; InputError naming ``what``
    was expected otherwise."""
    if isinstance(names, str):
        return [item.strip() for item in names.split(",") if item.strip()]
    try:
        return list(names)
    except TypeError:
        raise InputError(f"expected {what}, got {names!r}", field) from None


def _conditions(conditions, generate, rules, family):
    """The conditions as a tuple in the order given (the first may define the area)."""
    if conditions is None:
        return ()
    if isinstance(conditions, (str, bytes)) or not hasattr(conditions, "__iter__"):
        raise InputError(f"expected a list of condition rasters, got {conditions!r}", "conditions")
    seen = {}
    for spec in conditions:
        key = getattr(spec, "modality", None)
        if key is None:
            raise InputError(f"expected condition rasters, got {spec!r}", "conditions")
        field = f"conditions.{key}"
        filled_keys = _known_keys(rules, "conditions", [key], family, lambda name: rules.condition_keys(name, generate))
        if not filled_keys:
            raise InputError(f"every group of {key} is generated; nothing is left to condition on ({spec.label})", field)
        for filled in filled_keys:
            if filled in seen:
                raise InputError(f"two conditions ({seen[filled].label} and {spec.label})", field)
            if filled in generate:
                raise InputError(f"both generated and given as a condition ({spec.label})", field)
            seen[filled] = spec
    return tuple(conditions)


def known_modality_keys(family, field, names):
    """The modality keys of ``names`` (a list, or "a,b") as family ``family`` reads them, in its
    network order; InputError as a request gives it (a name of the other family says so)."""
    return tuple(_known_keys(request_rules(family), field, names, family))


def _known_keys(rules, field, names, family, lookup=None):
    """``rules``' keys of ``names``; an unknown name that another family knows says so."""
    try:
        return lookup(names[0]) if lookup else rules.modality_keys(field, names)
    except InputError as error:
        listed = names.split(",") if isinstance(names, str) else names if isinstance(names, (list, tuple)) else ()
        unknown = [str(n).strip() for n in listed if not _knows(rules, str(n).strip())]
        hint = next((owner_hint(name, family) for name in unknown if owner_hint(name, family)), "")
        raise InputError(error.message + hint, error.field) from None


def _knows(rules, name):
    try:
        rules.condition_keys(name)
    except InputError:
        return False
    return True


def _whole_number(name, value, lowest):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < lowest:
        raise InputError(f"must be a whole number >= {lowest}, got {value!r}", name)
