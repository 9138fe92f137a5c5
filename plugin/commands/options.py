"""Command-line options that several commands share, so they read and behave the same."""

import argparse

from ..geo.conditions import AUTO_OFFSET, SOURCES


def add_condition_reading_options(parser, applies_to="conditions are"):
    """--source, --s1-db and --s2-offset: how condition rasters are read."""
    parser.add_argument(
        "--source", choices=SOURCES, default="physical",
        help=f"how {applies_to} read: physical values (default) or ready 8-bit thumbnails used as they are",
    )
    parser.add_argument("--s1-db", action="store_true", help="S1 values are in dB (default: linear)")
    parser.add_argument(
        "--s2-offset", type=s2_offset, default=AUTO_OFFSET, metavar="N|auto",
        help="DN offset to subtract from S2 bands: 1000 for processing baseline 04.00+; "
        "auto (default) reads it from the product's metadata or name, else 0",
    )


def s2_offset(text):
    """--s2-offset's value: "auto" or a number >= 0."""
    if text.strip().lower() == AUTO_OFFSET:
        return AUTO_OFFSET
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is neither auto nor a number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be >= 0")
    return value
