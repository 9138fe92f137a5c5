"""generate: seamless generation over an area, conditioned on rasters or unconditional.

The area is --extent, an --aoi polygon file (outside it the outputs are nodata), or else the
footprint of the first --condition in a projected CRS (else of the first --condition). One
Cloud Optimized GeoTIFF is written per generated modality (and per sample) into --out;
nothing is left there if the run fails or is interrupted (Ctrl-C or SIGTERM).
"""

import sys
from pathlib import Path

from ..engine.errors import InputError, ModelError
from .cleanup import folders_removed_on_failure
from .options import (
    add_condition_option,
    add_condition_reading_options,
    add_generation_options,
    add_limit_options,
    add_network_option,
    apply_network_option,
    add_model_option,
    add_precision_options,
    condition_specs,
    model_family,
)
from .progress import ProgressBar



def add_parser(subparsers):
    parser = subparsers.add_parser(
        "generate",
        help="generate modalities over an area (GeoTIFF outputs)",
        description=__doc__,
    )
    add_model_option(parser)
    add_condition_option(parser)
    parser.add_argument("--out", required=True, metavar="DIR", help="folder for the GeoTIFFs")
    parser.add_argument(
        "--extent", metavar="XMIN,YMIN,XMAX,YMAX[,EPSG]",
        help="area to generate, in the order xmin,ymin,xmax,ymax (QGIS writes extents as "
        "xmin,xmax,ymin,ymax); without EPSG, in the CRS of the first condition in a projected CRS",
    )
    parser.add_argument("--aoi", metavar="FILE", help="polygon vector file; outside it outputs are nodata")
    add_generation_options(parser)
    add_condition_reading_options(parser)
    add_limit_options(parser)
    add_network_option(parser)
    parser.add_argument("--run-name", metavar="NAME", help="output file name prefix (default copgen_seed<SEED>)")
    parser.add_argument(
        "--vrt", action="store_true",
        help="COP-GEN: also write <run>_<sensor>.vrt for each generated Sentinel-2 sensor, stacking its groups' "
        "files at 10 m in band order without copying pixels",
    )
    add_precision_options(parser)
    parser.set_defaults(func=run, flags={"vrt": "--vrt"})


def build_request(args, aoi=None):
    """The GenerationRequest of the parsed arguments (it validates every field)."""
    from ..engine.request import GenerationRequest

    family = model_family(args.model)
    return GenerationRequest(
        generate=args.generate, conditions=condition_specs(args, family), extent=args.extent, aoi=aoi,
        samples=args.samples, seed=args.seed, steps=args.steps, solver=args.solver, tiling=args.tiling,
        reflectance=args.reflectance, max_area_km2=args.max_area_km2, max_hours=args.max_hours,
        max_memory_gib=args.max_memory_gib, run_name=args.run_name,
        family=family, date=args.date,
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

    apply_network_option(args)
    request = build_request(args, aoi=read_aoi(args.aoi) if args.aoi else None)
    if getattr(args, "vrt", False):
        _check_vrt(request)
    check_model_folder(args.model)
    model = open_model(args.model, args)
    with folders_removed_on_failure(args.out):
        bar = ProgressBar(sys.stderr)
        try:
            paths = generate_area(model, request, args.out, progress=bar,
                                  notify=lambda message: bar.note(f"warning: {message}"))
        finally:
            bar.close()
        if getattr(args, "vrt", False):
            from ..geo.sensor_vrts import write_sensor_vrts

            paths = list(paths) + write_sensor_vrts(request, paths)
    for path in paths:
        print(path)
    return 0


def _check_vrt(request):
    """--vrt is COP-GEN's (Beta writes one file per modality already) and needs a sensor to stack."""
    from ..engine.families import BETA
    from ..geo.sensor_vrts import check_vrt_request

    if request.family == BETA:
        raise InputError("stacks a COP-GEN sensor's groups; this is a COP-GEN-Beta model", "vrt")
    check_vrt_request(request)


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

    from ..engine.cancel import interruptible
    from ..geo.local_files import check_vector

    try:
        source = ogr.Open(check_vector(path, path, "aoi"))
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
            problem = _ring_problem(geometry)
            if problem:
                raise InputError(f"{path}: feature {feature.GetFID()} {problem}", "aoi")
            shapes.append(wkb.loads(bytes(geometry.ExportToIsoWkb())))
    polygons = [shape for shape in shapes if shape.area > 0]
    if not polygons:
        raise InputError(f"{path}: layer {layer.GetName()!r} has no polygon", "aoi")
    _check_on_earth(path, polygons, reference)
    # one GEOS call that can run for minutes over many features: Ctrl-C must not wait for it
    return interruptible(unary_union, polygons), reference.ExportToWkt()



def _ring_problem(geometry):
    """Why an OGR polygon geometry cannot be read as an area (a ring not closed, too few
    points), else None. Checked before GEOS, which reports it only as an internal error."""
    rings = []
    for part in range(geometry.GetGeometryCount()) if geometry.GetGeometryCount() else ():
        child = geometry.GetGeometryRef(part)
        rings.extend([child] if child.GetGeometryCount() == 0 else
                     [child.GetGeometryRef(i) for i in range(child.GetGeometryCount())])
    for ring in rings:
        if ring.GetPointCount() == 0 or ring.GetGeometryName() not in ("LINEARRING", "LINESTRING"):
            continue
        if ring.GetPointCount() < 4:
            return f"has a ring of {ring.GetPointCount()} points (a closed ring needs at least 4)"
        if ring.GetPoint_2D(0) != ring.GetPoint_2D(ring.GetPointCount() - 1):
            return "has a ring that is not closed (its first and last points differ)"
    return None


def _check_on_earth(path, polygons, reference):
    """InputError when the polygons' coordinates cannot lie on the Earth in the layer's CRS
    (e.g. metres read as degrees), instead of an area of no cell or an internal error."""
    import math

    from osgeo import osr

    xmin = min(shape.bounds[0] for shape in polygons)
    ymin = min(shape.bounds[1] for shape in polygons)
    xmax = max(shape.bounds[2] for shape in polygons)
    ymax = max(shape.bounds[3] for shape in polygons)
    bounds = (xmin, ymin, xmax, ymax)
    if reference.IsGeographic():
        ok = -540 <= xmin <= xmax <= 540 and -90 <= ymin <= ymax <= 90
    else:
        wgs84 = osr.SpatialReference()
        wgs84.ImportFromEPSG(4326)
        wgs84.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
        source = reference.Clone()
        source.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
        try:
            corners = osr.CoordinateTransformation(source, wgs84).TransformPoints(
                [(xmin, ymin), (xmin, ymax), (xmax, ymin), (xmax, ymax)])
            ok = all(math.isfinite(x) and math.isfinite(y) and abs(y) <= 90 for x, y, *_ in corners)
        except (RuntimeError, TypeError, AttributeError):
            ok = False
    if not ok:
        name = reference.GetName() or "its CRS"
        raise InputError(f"{path}: coordinates {tuple(round(v, 6) for v in bounds)} do not lie on the Earth "
                         f"in the layer's CRS ({name}); check the layer's CRS", "aoi")
