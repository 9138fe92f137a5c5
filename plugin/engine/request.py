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
from .modalities import MODALITIES, REFLECTANCE_MODALITIES, get_modality
from .solvers import SOLVERS, check_solver_args
from .tiling import parse_tiling

RUN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
AREA_FIELDS = ("extent", "aoi", "grid")
# The faces' default area limit: one Major TOM cell (1068 x 1068 px at 10 m, 114 km²), the unit
# the model and `dataset` are built around, fits; a mistyped extent of days of work does not.
DEFAULT_MAX_AREA_KM2 = 120.0


@dataclass(frozen=True)
class GenerationRequest:
    """One run: what to generate from what, where, and how to sample it (see the module doc).

    generate: modality keys (a list, or "a,b"); kept in model order. conditions: at most one
    per modality, none of them generated. samples: outputs per modality. seed: the random
    seed (>= 0). steps / solver: see plugin.engine.solvers. tiling: a tiling spec string
    (None: the engine's default), passed on to the canvas. reflectance: write Sentinel-2
    outputs as UInt16 reflectance. max_area_km2: refuse larger areas (None: no limit).
    run_name: output file prefix (default "copgen_seed<seed>").
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
    run_name: Optional[str] = None

    def __post_init__(self):
        generate = modality_keys("generate", self.generate)
        if not generate:
            raise InputError(f"nothing to generate; name at least one of {', '.join(MODALITIES)}", "generate")
        conditions = _conditions(self.conditions, generate)
        for name, lowest in (("samples", 1), ("seed", 0)):
            _whole_number(name, getattr(self, name), lowest)
        check_solver_args(self.steps, self.solver)
        given = [name for name in AREA_FIELDS if getattr(self, name) is not None]
        if len(given) > 1:
            raise InputError(f"give only one of {', '.join(AREA_FIELDS)} (got {' and '.join(given)})", given[1])
        if not given and not conditions:
            raise InputError("unconditional generation needs an extent or an AOI polygon", "extent")
        _check_tiling(self.tiling)
        if not isinstance(self.reflectance, bool):
            raise InputError(f"must be true or false, got {self.reflectance!r}", "reflectance")
        if self.reflectance and not set(generate) & set(REFLECTANCE_MODALITIES):
            raise InputError(f"only {', '.join(REFLECTANCE_MODALITIES)} outputs can be written as reflectance; "
                             "none is generated", "reflectance")
        if self.max_area_km2 is not None and not (
            isinstance(self.max_area_km2, numbers.Real) and not isinstance(self.max_area_km2, bool)
            and self.max_area_km2 > 0
        ):
            raise InputError(f"must be a positive number of km², got {self.max_area_km2!r}", "max_area_km2")
        run_name = f"copgen_seed{self.seed}" if self.run_name is None else str(self.run_name)
        if not RUN_NAME.fullmatch(run_name):
            raise InputError(f"{run_name!r}: use letters, digits, '.', '_' and '-' only", "run_name")
        object.__setattr__(self, "generate", generate)
        object.__setattr__(self, "conditions", conditions)
        object.__setattr__(self, "samples", int(self.samples))
        object.__setattr__(self, "seed", int(self.seed))
        object.__setattr__(self, "steps", int(self.steps))
        object.__setattr__(self, "run_name", run_name)

    def output_names(self):
        """The file names a run of this request writes, in the order generate_area returns them."""
        return [
            f"{self.run_name}_{key}" + (f"_sample{sample}" if self.samples > 1 else "") + ".tif"
            for key in self.generate
            for sample in range(1, self.samples + 1)
        ]

    @property
    def area_field(self):
        """The field that gives the area ("extent", "aoi", "grid"), None for the conditions'."""
        return next((name for name in AREA_FIELDS if getattr(self, name) is not None), None)


FIELDS = tuple(field.name for field in fields(GenerationRequest))


def _check_tiling(tiling):
    if tiling is None:
        return
    if not isinstance(tiling, str) or not tiling.strip():
        raise InputError(f"must be a tiling spec such as 'overlap:16', got {tiling!r}", "tiling")
    parse_tiling(tiling)


def modality_keys(field, names):
    """Modality keys in model order, from a list or a comma-separated string; InputError for
    an unknown or repeated key."""
    if isinstance(names, str):
        names = [item.strip() for item in names.split(",") if item.strip()]
    try:
        names = list(names)
    except TypeError:
        raise InputError(f"expected modality keys, got {names!r}", field) from None
    keys = []
    for name in names:
        get_modality(name, field)
        if name in keys:
            raise InputError(f"modality {name!r} named twice", field)
        keys.append(name)
    return tuple(sorted(keys, key=MODALITIES.index))


def _conditions(conditions, generate):
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
        get_modality(key, "conditions")
        if key in seen:
            raise InputError(f"two conditions ({seen[key].label} and {spec.label})", field)
        if key in generate:
            raise InputError(f"both generated and given as a condition ({spec.label})", field)
        seen[key] = spec
    return tuple(conditions)


def _whole_number(name, value, lowest):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < lowest:
        raise InputError(f"must be a whole number >= {lowest}, got {value!r}", name)
