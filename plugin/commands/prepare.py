"""prepare: write the rendering the model will see for one condition raster.

The raster is warped onto the 10 m grid (its own footprint, or --extent), rendered as
Major TOM thumbnails are, and written as a georeferenced RGB Cloud Optimized GeoTIFF, so
a condition can be checked in a GIS before generating from it. Nothing is left behind if
it fails or is interrupted (Ctrl-C or SIGTERM).
"""

from pathlib import Path

from ..engine.atomic import check_not_input
from ..engine.errors import InputError
from ..engine.families.beta.registry import MODALITIES
from ..geo.conditions import prepare_condition
from ..geo.condition_spec import ConditionSpec
from ..geo.grid import open_raster, parse_extent, raster_lattice
from ..geo.prepare_output import rendering_grid, write_rendering
from .cleanup import folders_removed_on_failure
from .options import add_condition_reading_options, add_limit_options, add_network_option, apply_network_option

GEOTIFF_SUFFIXES = (".tif", ".tiff")
# a rendering costs seconds per cell, not minutes: a whole Sentinel-2 tile (110 x 110 km) fits
MAX_AREA_KM2 = 15000.0


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "prepare",
        help="render a condition raster on the 10 m grid as the model sees it (RGB COG)",
        description=__doc__,
    )
    parser.add_argument("--modality", required=True, choices=MODALITIES)
    parser.add_argument("--input", required=True, metavar="FILE", help="condition raster (any CRS / resolution)")
    parser.add_argument(
        "--bands", help="band names or 1-based indexes in rendering order, e.g. B04,B03,B02 or 4,3,2"
    )
    add_condition_reading_options(parser, "the input is")
    parser.add_argument(
        "--extent", metavar="XMIN,YMIN,XMAX,YMAX[,EPSG]",
        help="area to render (default: the input's footprint), in the order xmin,ymin,xmax,ymax (QGIS "
        "writes extents as xmin,xmax,ymin,ymax); without EPSG, in the input's CRS; "
        "write --extent=... when it starts with a minus sign",
    )
    parser.add_argument("--out", required=True, metavar="FILE.tif", help="output GeoTIFF (.tif or .tiff)")
    # a rendering is written window by window (its memory does not grow with the area) and has
    # no sampling: its cost is its area
    add_limit_options(parser, hours=False, memory=False, area_default=MAX_AREA_KM2)
    add_network_option(parser)
    # the condition's options are this command's own flags (see .flags)
    fields = {f"conditions.{key}": "--input" for key in MODALITIES}
    parser.set_defaults(func=run, flags={**fields, **{f"{field}.bands": "--bands" for field in fields}})


def run(args):
    from ..geo.pipeline import check_area

    apply_network_option(args)
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
