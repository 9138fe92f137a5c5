"""cells: the Major TOM cells of an area as a vector layer (name, UTM EPSG code, footprint).

The area is --extent (in EPSG:4326 unless an EPSG code follows) or an --aoi polygon file in
any CRS. Each cell is named after its bottom-left grid point (e.g. 282D_485L); its footprint is
written in EPSG:4326.
"""

from shapely.geometry import box

from ..engine.atomic import check_not_input
from ..engine.errors import InputError
from ..engine.wording import count
from ..geo.majortom import cells_in_area
from .options import add_network_option, apply_network_option


def add_parser(subparsers):
    parser = subparsers.add_parser("cells", help="the Major TOM cells of an area (vector layer)", description=__doc__)
    add_area_options(parser.add_mutually_exclusive_group(required=True))
    parser.add_argument("--out", required=True, metavar="FILE", help="vector file to write (.gpkg, .geojson, .shp)")
    add_network_option(parser)
    parser.set_defaults(func=run)


def add_area_options(group):
    """--extent and --aoi, in a mutually exclusive ``group``."""
    group.add_argument(
        "--extent", metavar="XMIN,YMIN,XMAX,YMAX[,EPSG]",
        help="the area, in EPSG:4326 (longitude, latitude) unless an EPSG code follows",
    )
    group.add_argument("--aoi", metavar="FILE", help="polygon vector file (any CRS)")


def cells_of_area_args(args):
    """The cells of --extent or --aoi."""
    if args.extent is not None:
        return cells_in_area(*parse_area_extent(args.extent))
    from .generate import read_aoi

    return cells_in_area(*read_aoi(args.aoi))


def parse_area_extent(text):
    """(box, crs) of "xmin,ymin,xmax,ymax[,EPSG]" (EPSG:4326 by default)."""
    parts = [part.strip() for part in str(text).split(",")]
    if len(parts) not in (4, 5):
        raise InputError(f"{text!r}: expected xmin,ymin,xmax,ymax[,EPSG]", "extent")
    try:
        xmin, ymin, xmax, ymax = (float(part) for part in parts[:4])
    except ValueError:
        raise InputError(f"{text!r}: xmin, ymin, xmax, ymax must be numbers", "extent") from None
    if not (xmin < xmax and ymin < ymax):
        raise InputError(f"{text!r} is empty: need xmin < xmax and ymin < ymax", "extent")
    crs = _checked_crs("EPSG:" + parts[4].upper().removeprefix("EPSG:") if len(parts) == 5 else "EPSG:4326", text)
    if crs.is_geographic and not (-90 <= ymin and ymax <= 90):  # longitudes past 180 cross the antimeridian
        raise InputError(f"{text!r}: latitudes must lie in -90..90 degrees", "extent")
    return box(xmin, ymin, xmax, ymax), crs


def _checked_crs(crs, text):
    import pyproj

    try:
        return pyproj.CRS.from_user_input(crs)
    except pyproj.exceptions.CRSError:
        raise InputError(f"{text!r}: unknown CRS {crs}", "extent") from None


def run(args):
    from ..dataset.cells_layer import write_cells_layer

    apply_network_option(args)
    check_not_input([args.out], [args.aoi], "--out")
    cells = cells_of_area_args(args)
    if not cells:
        raise InputError("the area holds no Major TOM cell")
    path = write_cells_layer(cells, args.out)
    print(f"{count(len(cells), 'cell')} -> {path}")
    return 0
