"""Command-line options that several commands share, so they read and behave the same."""

from ..geo.conditions import SOURCES


def add_condition_reading_options(parser, applies_to="conditions are"):
    """--source, --s1-db and --s2-offset: how condition rasters are read."""
    parser.add_argument(
        "--source", choices=SOURCES, default="physical",
        help=f"how {applies_to} read: physical values (default) or ready 8-bit thumbnails used as they are",
    )
    parser.add_argument("--s1-db", action="store_true", help="S1 values are in dB (default: linear)")
    parser.add_argument(
        "--s2-offset", type=float, default=0, metavar="N",
        help="DN offset to subtract from S2 bands: 1000 for processing baseline 04.00+ (default 0)",
    )
