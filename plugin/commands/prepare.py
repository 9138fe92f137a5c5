"""prepare: write what the model will see of its conditions, so they can be checked in a GIS
before generating from them.

COP-GEN-Beta (no --model, or a COP-GEN-Beta --model): one condition raster (--modality,
--input) is warped onto the 10 m grid (its own footprint, or --extent), rendered as Major TOM
thumbnails are, and written as a georeferenced RGB Cloud Optimized GeoTIFF (--out FILE.tif).

COP-GEN (--model a COP-GEN folder): the conditions are given as to generate (--condition
SENSOR=FILE[:BANDS], repeatable; --extent or --aoi; --date) and each official key they fill is
written into --out DIR as it will be fed, in physical units at its native resolution on the
run's 480 m lattice footprint (bands picked, S1 dB made linear, the S2 DN offset taken off, the
DEM at 30 m, class codes by nearest neighbour): <run>_<key>.tif, with generate's band
descriptions, units and tags. The notes (band order, offset, coverage) are printed.

Nothing is left behind if it fails or is interrupted (Ctrl-C or SIGTERM).
"""

import argparse
import sys
from pathlib import Path

from ..engine.atomic import check_not_input
from ..engine.errors import InputError
from ..engine.families import BETA, COPGEN, family_name
from ..engine.families.beta.registry import MODALITIES
from ..geo.conditions import prepare_condition
from ..geo.condition_spec import ConditionSpec
from ..geo.grid import open_raster, parse_extent, raster_lattice
from ..geo.prepare_output import rendering_grid, write_rendering
from .cleanup import folders_removed_on_failure
from ..geo.physical_prepare import RUN_NAME
from .options import (add_condition_option, add_condition_reading_options, add_limit_options, add_network_option,
                      apply_network_option, condition_specs)

GEOTIFF_SUFFIXES = (".tif", ".tiff")
# a rendering costs seconds per cell, not minutes: a whole Sentinel-2 tile (110 x 110 km) fits
MAX_AREA_KM2 = 15000.0


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "prepare",
        help="render a condition raster on the 10 m grid as the model sees it (RGB COG)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--model", metavar="DIR",
        help="converted model folder whose inputs to show (default: a COP-GEN-Beta rendering); with a "
        "COP-GEN model, give --condition as to generate and --out DIR",
    )
    parser.add_argument("--modality", choices=MODALITIES, help="COP-GEN-Beta: the condition's modality")
    parser.add_argument("--input", metavar="FILE", help="COP-GEN-Beta: condition raster (any CRS / resolution)")
    parser.add_argument(
        "--bands", help="band names or 1-based indexes in rendering order, e.g. B04,B03,B02 or 4,3,2"
    )
    add_condition_option(parser, what="COP-GEN: a condition raster, as to generate",
                         example="s2l2a=scene.tif:B01,B02,B03,B04,B05,B06,B07,B08,B8A,B09,B11,B12")
    parser.add_argument("--aoi", metavar="FILE", help="COP-GEN: polygon vector file of the area")
    parser.add_argument("--date", metavar="YYYY-MM-DD", help="COP-GEN: the date the run is conditioned on")
    parser.add_argument("--run-name", metavar="NAME", help=f"COP-GEN: file name prefix (default {RUN_NAME})")
    add_condition_reading_options(parser, "the inputs are")
    parser.add_argument(
        "--extent", metavar="XMIN,YMIN,XMAX,YMAX[,EPSG]",
        help="area to render (default: the input's footprint), in the order xmin,ymin,xmax,ymax (QGIS "
        "writes extents as xmin,xmax,ymin,ymax); without EPSG, in the input's CRS",
    )
    parser.add_argument("--out", required=True, metavar="FILE.tif|DIR",
                        help="output GeoTIFF (.tif or .tiff); for a COP-GEN model a folder")
    # a rendering is written window by window (its memory does not grow with the area) and has
    # no sampling: its cost is its area
    add_limit_options(parser, hours=False, memory=False, area_default=MAX_AREA_KM2)
    add_network_option(parser)
    # the condition's options are this command's own flags (see .flags)
    fields = {f"conditions.{key}": "--input" for key in MODALITIES}
    parser.set_defaults(func=run, flags={**fields, **{f"{field}.bands": "--bands" for field in fields},
                                         "modality": "--modality", "out": "--out"})


def run(args):
    from ..geo.pipeline import check_area

    apply_network_option(args)
    family = _family(args.model)
    if family != BETA:
        return run_physical(args)
    given = [flag for flag, value in (("--condition", args.condition), ("--aoi", args.aoi), ("--date", args.date),
                                      ("--run-name", args.run_name)) if value]
    if given:
        raise InputError(f"{given[0]} is for a COP-GEN model (--model); a COP-GEN-Beta rendering takes --modality and "
                         "--input")
    for flag, value in (("--modality", args.modality), ("--input", args.input)):
        if not value:
            raise InputError(f"{flag} is required for a COP-GEN-Beta rendering (or give a COP-GEN --model and "
                             "--condition)")
    if not args.out.lower().endswith(GEOTIFF_SUFFIXES):
        raise InputError(f"--out {args.out}: must be a GeoTIFF file name ending in .tif or .tiff")
    spec = ConditionSpec(
        modality=args.modality,
        path=args.input,
        bands=args.bands,
        source=args.source,
        s1_in_db=args.s1_db,
        s2_offset=args.s2_offset,
    )
    check_not_input([args.out], [args.input], "--out")
    grid = _grid(args)
    check_area(grid, args.max_area_km2)
    prepared = prepare_condition(spec, grid)
    with folders_removed_on_failure(Path(args.out).parent):
        write_rendering(prepared, grid, args.out)
    print(f"wrote {args.out}: {grid.width} x {grid.height} px at {grid.pixel_size:g} m, {grid.crs}")
    return 0


def _grid(args):
    if not args.extent:
        return rendering_grid(args.input)
    with open_raster(args.input) as ds:
        input_crs = ds.crs
    lattice = raster_lattice(args.input)
    return parse_extent(args.extent, default_crs=input_crs, lattices=[lattice] if lattice else [])


def run_physical(args):
    """prepare with a COP-GEN model: the conditions as generate reads them (see the module doc)."""
    from ..engine.model_folder import read_info
    from ..geo.physical_prepare import prepare_physical, prepare_request
    from .generate import read_aoi

    args.flags = {"out": "--out"}  # errors name generate's flags (--condition SENSOR=...), not --input
    for flag, value in (("--modality", args.modality), ("--input", args.input), ("--bands", args.bands)):
        if value:
            raise InputError(f"{flag} is COP-GEN-Beta's; with a COP-GEN model give --condition SENSOR=FILE[:BANDS]")
    request = prepare_request(condition_specs(args, COPGEN), extent=args.extent,
                              aoi=read_aoi(args.aoi) if args.aoi else None, date=args.date, run_name=args.run_name,
                              max_area_km2=args.max_area_km2)
    name = str(read_info(Path(args.model).expanduser() / "model.json").get("name", ""))
    with folders_removed_on_failure(args.out):
        paths = prepare_physical(request, args.out, notify=lambda line: print(f"note: {line}", file=sys.stderr),
                                 model_name=name)
    for path in paths:
        print(path)
    return 0


def _family(model_dir):
    """The family of --model (COP-GEN-Beta without one); a folder that is no model says so."""
    if model_dir is None:
        return BETA
    from ..engine.errors import ModelError
    from ..engine.model_folder import read_info

    try:
        return family_name(read_info(Path(model_dir).expanduser() / "model.json"))
    except ModelError as error:
        error.field = error.field or "model"
        raise
