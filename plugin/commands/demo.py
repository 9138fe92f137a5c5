"""demo: the main job on the bundled sample, end to end.

Installs the official COP-GEN-Beta model on first use (download from Hugging Face, checksum,
conversion to ONNX), then generates the other modalities from the bundled real Sentinel-2 L2A
tile (Major TOM cell 282D_485L) as georeferenced GeoTIFFs, and writes preview.png beside them.
"""

import sys
from pathlib import Path

from ..engine.families import BETA
from ..engine.families.beta.registry import MODALITIES
from ..engine.precision import DEVICES
from ..engine.provenance import describe_weights
from ..engine.solvers import SOLVERS
from .offline import local_install_advice
from .progress import ProgressBar

SAMPLE = Path(__file__).resolve().parents[2] / "resources" / "sample" / "majortom_s2l2a_282D_485L.tif"
SAMPLE_MODALITY = "s2_l2a"
DEFAULT_MODEL = "cop-gen-beta"
FAST_STEPS = 20  # docs/solvers.md: dpm-solver-fast stays close to its 50-step result from 20 steps


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "demo",
        help="install the model if needed and generate the other modalities from the bundled S2 L2A tile "
        "(--model cop-gen: every COP-GEN modality in physical units)",
        description=__doc__,
    )
    parser.add_argument("--out", default="copgen-demo", help="output folder (default ./copgen-demo)")
    parser.add_argument("--model", default=DEFAULT_MODEL, help=f"registry model (default {DEFAULT_MODEL})")
    parser.add_argument("--model-dir", default=None, help="model root (default: per-user data folder)")
    parser.add_argument("--registry", default=None, help="registry JSON (default: models/registry.json)")
    parser.add_argument("--device", choices=DEVICES, default="auto")
    parser.add_argument("--steps", type=int, default=50, help="solver steps (default 50, as the reference)")
    parser.add_argument("--solver", choices=SOLVERS, default=SOLVERS[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--fast", action="store_true",
        help="the fast preset: precision fast and 20 steps (on a 2-core CPU about 5.5x cheaper than 50 "
        "faithful steps; on CUDA the fp16 graphs, which are fast already)",
    )
    parser.set_defaults(func=run)  # a failed download names the whole `models install` command (offline.py)


def run(args):
    from ..analysis.renderings import read_rendering, reference_rendering, shown_on
    from ..analysis.sheet import SheetRow, write_sheet
    from ..engine.manager import ModelManager
    from ..engine.precision import install_precision
    from ..engine.request import GenerationRequest
    from ..geo.condition_spec import ConditionSpec
    from ..geo.grid import TargetGrid
    from ..geo.pipeline import generate_area
    from .generate import open_model

    manager = ModelManager(model_root=args.model_dir, registry=args.registry)
    precision = install_precision(args.device)
    bar = ProgressBar(sys.stderr)
    try:
        with local_install_advice(manager, args.model, precision, args.model_dir, args.registry):
            model_dir = manager.install(args.model, precision=precision, progress=bar)
    finally:
        bar.close()
    args.precision = "fast" if args.fast else "faithful"
    model = open_model(model_dir, args)
    # The weights' provenance too: a model from unofficial (e.g. test) checkpoints says so.
    print(f"model: {model_dir} ({model.plan.describe()}, {model.provider}; {describe_weights(model_dir)})")
    if model.family != BETA:
        return _physical_demo(model, args)

    condition = ConditionSpec(SAMPLE_MODALITY, SAMPLE, layer_name="Major TOM sample 282D_485L (S2 L2A)")
    request = GenerationRequest(
        generate=[m for m in MODALITIES if m != SAMPLE_MODALITY], conditions=[condition],
        grid=TargetGrid.from_raster(SAMPLE), seed=args.seed, steps=FAST_STEPS if args.fast else args.steps,
        solver=args.solver, run_name=f"demo_seed{args.seed}",
    )
    bar = ProgressBar(sys.stderr)
    try:
        outputs = generate_area(model, request, args.out, progress=bar)
    finally:
        bar.close()
    generate, grid = request.generate, request.grid

    reference, area = reference_rendering(condition, grid)
    real = {SAMPLE_MODALITY: shown_on(area, reference, area)}  # the tile's pixels, no nodata rim
    generated = {modality: shown_on(area, *read_rendering(path)) for modality, path in zip(generate, outputs)}
    preview = Path(args.out) / "preview.png"
    write_sheet([SheetRow("SAMPLE", real, generated, (SAMPLE_MODALITY,))], preview)
    for path in outputs:
        print(f"wrote {path}")
    print(f"wrote {preview}")
    return 0


def _physical_demo(model, args):
    """COP-GEN on the sample: every modality but the tile's own sensor and the location (the
    tile's own), in physical units at native resolution."""
    from ..engine.families.copgen.registry import MODALITIES as KEYS, SENSORS
    from ..engine.request import GenerationRequest
    from ..geo.grid import TargetGrid
    from ..geo.physical_pipeline import PhysicalConditionSpec
    from ..geo.pipeline import generate_area

    condition = PhysicalConditionSpec("s2l2a", SAMPLE, layer_name="Major TOM sample 282D_485L (S2 L2A)")
    skip = set(SENSORS["s2l2a"]) | set(SENSORS["location"])
    request = GenerationRequest(
        generate=[key for key in KEYS if key not in skip], conditions=[condition], grid=TargetGrid.from_raster(SAMPLE),
        seed=args.seed, steps=FAST_STEPS if args.fast else args.steps, solver=args.solver,
        run_name=f"demo_seed{args.seed}", family=model.family,
    )
    bar = ProgressBar(sys.stderr)
    try:
        outputs = generate_area(model, request, args.out, progress=bar, notify=lambda m: bar.note(f"note: {m}"))
    finally:
        bar.close()
    for path in outputs:
        print(f"wrote {path}")
    return 0
