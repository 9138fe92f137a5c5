"""generate: seamless generation over an area, conditioned on rasters or unconditional.

The area is --extent, an --aoi polygon file (outside it the outputs are nodata), or else the
footprint of the first --condition in a projected CRS (else of the first --condition). One
Cloud Optimized GeoTIFF is written per generated modality (and per sample) into --out;
nothing is left there if the run fails or is interrupted (Ctrl-C or SIGTERM).
"""

import argparse
import sys
from pathlib import Path

from ..engine.errors import InputError, ModelError
from ..engine.modalities import MODALITIES, describe_choices
from ..engine.precision import DEFAULT_PREFERENCE, DEVICES, PREFERENCES
from ..engine.solvers import SOLVERS
from ..engine.tiling import DEFAULT_TILING
from .cleanup import folders_removed_on_failure
from .options import add_condition_reading_options
from .progress import ProgressBar

DEFAULT_MAX_AREA_KM2 = 100.0  # 10 x 10 km: minutes to hours on a CPU


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "generate",
        help="generate modalities over an area (GeoTIFF outputs)",
        description=__doc__,
    )
    parser.add_argument(
        "--model", required=True, metavar="DIR",
        help="converted model folder (the one holding model.json, e.g. MODEL_ROOT/cop-gen-beta)",
    )
    parser.add_argument(
        "--condition", action="append", default=[], metavar="MODALITY=FILE[:BANDS]",
        help=f"a conditioning raster, e.g. {MODALITIES[-1]}=scene.tif:B04,B03,B02 (repeatable); "
        f"MODALITY is one of: {describe_choices()}",
    )
    parser.add_argument(
        "--generate", required=True, metavar="MODALITIES",
        help=f"comma-separated modalities to generate, from {', '.join(MODALITIES)}",
    )
    parser.add_argument("--out", required=True, metavar="DIR", help="folder for the GeoTIFFs")
    parser.add_argument(
        "--extent", metavar="XMIN,YMIN,XMAX,YMAX[,EPSG]",
        help="area to generate, in the order xmin,ymin,xmax,ymax (QGIS writes extents as "
        "xmin,xmax,ymin,ymax); without EPSG, in the CRS of the first condition in a projected CRS; "
        "write --extent=... when it starts with a minus sign",
    )
    parser.add_argument("--aoi", metavar="FILE", help="polygon vector file; outside it outputs are nodata")
    parser.add_argument("--samples", type=int, default=1, metavar="N", help="samples per modality (default 1)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--steps", type=int, default=50, metavar="N", help="solver steps (default 50)")
    parser.add_argument("--solver", choices=SOLVERS, default=SOLVERS[0], help=f"default {SOLVERS[0]}")
    parser.add_argument(
        "--tiling", metavar="SPEC",
        help="how the denoiser's windows cover the area at each step: overlap:N, schedule:A@F,...,Z "
        f"(overlap A for the first fraction F of the steps, ...), shifted[:N] or spread:N "
        f"(default {DEFAULT_TILING}; docs/performance.md)",
    )
    parser.add_argument(
        "--reflectance", action="store_true",
        help="write S2 outputs as UInt16 reflectance x 10000 (B04, B03, B02) instead of RGB",
    )
    add_condition_reading_options(parser)
    parser.add_argument(
        "--max-area-km2", type=float, default=DEFAULT_MAX_AREA_KM2, metavar="KM2",
        help=f"refuse larger areas, saying how long they would take (default {DEFAULT_MAX_AREA_KM2:g} km2: "
        "a mistyped extent must not start a run of days)",
    )
    parser.add_argument("--run-name", metavar="NAME", help="output file name prefix (default copgen_seed<SEED>)")
    add_precision_options(parser)
    parser.set_defaults(func=run)


def add_precision_options(parser):
    """--device and --precision (with --int8, the earlier spelling of --precision fast)."""
    parser.add_argument("--device", choices=DEVICES, default="auto")
    parser.add_argument(
        "--precision", choices=PREFERENCES, default=DEFAULT_PREFERENCE,
        help="faithful: the model folder's own graphs, exactly the reference (default); fast: the "
        "int8 denoiser on the CPU, about 2.5x faster per step, not bit-faithful (docs/performance.md)",
    )
    parser.add_argument("--int8", dest="precision", action="store_const", const="fast", help=argparse.SUPPRESS)


def build_request(args, aoi=None):
    """The GenerationRequest of the parsed arguments (it validates every field)."""
    from ..engine.request import GenerationRequest
    from ..geo.conditions import parse_condition_arg

    options = {"source": args.source, "s1_in_db": args.s1_db, "s2_offset": args.s2_offset}
    conditions = [parse_condition_arg(text, **options) for text in args.condition]
    return GenerationRequest(
        generate=args.generate, conditions=conditions, extent=args.extent, aoi=aoi,
        samples=args.samples, seed=args.seed, steps=args.steps, solver=args.solver, tiling=args.tiling,
        reflectance=args.reflectance, max_area_km2=args.max_area_km2, run_name=args.run_name,
    )


def open_model(model_dir, args):
    """The model for --device / --precision; prints what the policy substituted, if anything."""
    from ..engine import load

    model = load(model_dir, device=args.device, preference=args.precision)
    for note in model.plan.notes:
        print(f"note: {note}", file=sys.stderr)
    return model


def run(args):
    from ..geo.pipeline import generate_area

    request = build_request(args, aoi=read_aoi(args.aoi) if args.aoi else None)
    check_model_folder(args.model)
    model = open_model(args.model, args)
    with folders_removed_on_failure(args.out):
        bar = ProgressBar(sys.stderr)
        try:
            paths = generate_area(model, request, args.out, progress=bar)
        finally:
            bar.close()
    for path in paths:
        print(path)
    return 0


def check_model_folder(path):
    """ModelError pointing at the model folder when --model names a model root holding one."""
    folder = Path(path)
    if not folder.is_dir() or (folder / "model.json").is_file():
        return  # loading reports a missing folder or a broken one
    inside = sorted(str(child) for child in folder.iterdir() if (child / "model.json").is_file())
    if inside:
        raise ModelError(
            f"{folder} is a folder of models, not a converted model folder (no model.json); "
            f"use {inside[0]}" + (f" (or one of {', '.join(inside[1:])})" if len(inside) > 1 else ""), "model"
        )


def read_aoi(path):
    """(polygon, crs WKT) of all features of a vector file's first layer, read with OGR."""
    from osgeo import ogr
    from shapely import wkb
    from shapely.ops import unary_union

    try:
        source = ogr.Open(str(path))
    except RuntimeError:  # when GDAL exceptions are enabled (QGIS does)
        source = None
    if source is None or source.GetLayerCount() == 0:
        raise InputError(f"{path}: cannot read it as a vector file with layers", "aoi")
    layer = source.GetLayer(0)
    reference = layer.GetSpatialRef()
    if reference is None:
        raise InputError(f"{path}: layer {layer.GetName()!r} has no CRS", "aoi")
    shapes = []
    for feature in layer:
        geometry = feature.GetGeometryRef()
        if geometry is not None and not geometry.IsEmpty():
            shapes.append(wkb.loads(bytes(geometry.ExportToIsoWkb())))
    polygons = [shape for shape in shapes if shape.area > 0]
    if not polygons:
        raise InputError(f"{path}: layer {layer.GetName()!r} has no polygon", "aoi")
    return unary_union(polygons), reference.ExportToWkt()
