"""Command-line options that several commands share, so they read and behave the same.

``generate`` and ``dataset`` take the model, the conditions, what to generate, how to sample
it and the precision from here; ``generate`` and ``prepare`` take how conditions are read.
"""

import argparse

from ..engine.families.beta.registry import MODALITIES, describe_choices
from ..engine.precision import DEFAULT_PREFERENCE, DEVICES, PREFERENCES
from ..engine.solvers import SOLVERS
from ..engine.tiling import DEFAULT_TILING
from ..geo.condition_spec import AUTO_OFFSET, SOURCES


def add_model_option(parser):
    parser.add_argument(
        "--model", required=True, metavar="DIR",
        help="converted model folder (the one holding model.json, e.g. MODEL_ROOT/cop-gen-beta)",
    )


def add_condition_option(parser, what="a conditioning raster", example=f"{MODALITIES[-1]}=scene.tif:B04,B03,B02"):
    """--condition MODALITY=FILE[:BANDS], repeatable (``what`` a FILE is, for the help)."""
    parser.add_argument(
        "--condition", action="append", default=[], metavar="MODALITY=FILE[:BANDS]",
        help=f"{what}, e.g. {example} (repeatable); MODALITY is one of: {describe_choices()}; for a "
        "COP-GEN model: a sensor (s2l2a, s2l1c, s1rtc, dem, lulc, cloud) or an official key, e.g. "
        "s2l2a=scene.tif:B01,B02,B03,B04,B05,B06,B07,B08,B8A,B09,B11,B12",
    )


def add_generation_options(parser):
    """--generate and how to sample it: the GenerationRequest fields a user sets by flag."""
    parser.add_argument(
        "--generate", required=True, metavar="MODALITIES",
        help=f"comma-separated modalities to generate, from {', '.join(MODALITIES)}; for a COP-GEN model "
        "official keys (S1RTC_vh_vv, DEM_DEM, ...) or sensor names (s2l2a, s1rtc, dem, lulc, cloud, location, date)",
    )
    parser.add_argument(
        "--date", metavar="YYYY-MM-DD",
        help="COP-GEN: the date to condition on (1950..2050; default: not conditioned)",
    )
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


def add_limit_options(parser, area=True, hours=True, memory=True, what="runs", area_default=None):
    """--max-area-km2, --max-hours and --max-memory-gib: the limits on a run's estimated cost
    (plugin.engine.estimate.check_limits), each raisable; a run beyond one is refused before it
    reads or allocates anything, naming the flag."""
    from ..engine.estimate import machine_memory_gib
    from ..engine.request import DEFAULT_MAX_AREA_KM2, DEFAULT_MAX_HOURS

    if area and area_default:
        parser.add_argument("--max-area-km2", type=float, default=area_default, metavar="KM2",
                            help=f"refuse larger areas (default {area_default:g} km²)")
    elif area:
        parser.add_argument(
            "--max-area-km2", type=float, default=DEFAULT_MAX_AREA_KM2, metavar="KM2",
            help=f"refuse larger areas, saying how long they would take (default {DEFAULT_MAX_AREA_KM2:g} km²: "
            "one Major TOM cell fits; a mistyped extent must not start a run of days)",
        )
    if hours:
        parser.add_argument(
            "--max-hours", type=float, default=DEFAULT_MAX_HOURS, metavar="H",
            help=f"refuse {what} estimated to take longer (area x samples x steps; default {DEFAULT_MAX_HOURS:g} h)",
        )
    if memory:
        ram = machine_memory_gib()
        parser.add_argument(
            "--max-memory-gib", type=float, default=ram, metavar="GIB",
            help=f"refuse {what} estimated to need more memory (default: this machine's RAM"
            + (f", {ram:.0f} GiB)" if ram else "; none where it cannot be told)"),
        )


def add_network_option(parser):
    """--allow-network: let GDAL read /vsicurl/ and http(s) sources (off: only local files)."""
    parser.add_argument(
        "--allow-network", action="store_true",
        help="let rasters and vector files named by URL (http://, https://, /vsicurl/) be read over the "
        "network (default: only local files are read, and GDAL never contacts any host)",
    )


def apply_network_option(args):
    """Turns GDAL network reading on for this process (and the workers it starts) when
    --allow-network was given."""
    if getattr(args, "allow_network", False):
        from ..geo.local_files import allow_network

        allow_network()


def add_precision_options(parser):
    """--device and --precision (with --int8, the earlier spelling of --precision fast)."""
    parser.add_argument("--device", choices=DEVICES, default="auto")
    parser.add_argument(
        "--precision", choices=PREFERENCES, default=DEFAULT_PREFERENCE,
        help="faithful: the model folder's own graphs, exactly the reference (default); fast: the "
        "int8 denoiser on the CPU, about 2.5x faster per step, not bit-faithful (docs/performance.md)",
    )
    parser.add_argument("--int8", dest="precision", action="store_const", const="fast", help=argparse.SUPPRESS)


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


def condition_specs(args, family=None):
    """The ConditionSpecs of the --condition arguments, read as --source, --s1-db and --s2-offset
    say; for a COP-GEN model (``family``) physical-unit specs of sensors or official keys."""
    from ..engine.families import BETA
    from ..geo.condition_spec import parse_condition_arg, split_bands

    if family not in (None, BETA):
        from ..geo.physical_pipeline import PhysicalConditionSpec

        specs = []
        for text in args.condition:
            name, sep, rest = text.partition("=")
            if not sep or not rest:
                from ..engine.errors import InputError

                raise InputError(f"{text!r}: expected SENSOR=FILE[:BANDS]", "conditions")
            path, bands = split_bands(rest)
            specs.append(PhysicalConditionSpec(name.strip(), path, bands, s1_in_db=getattr(args, "s1_db", False),
                                               s2_offset=getattr(args, "s2_offset", AUTO_OFFSET)))
        return specs
    reading = {"source": args.source, "s1_in_db": args.s1_db, "s2_offset": args.s2_offset}
    return [parse_condition_arg(text, **reading) for text in args.condition]


def model_family(model_dir):
    """The family the model folder's model.json says (COP-GEN-Beta when it cannot be read:
    opening the model then says what is wrong)."""
    from pathlib import Path

    from ..engine.errors import ModelError
    from ..engine.families import BETA, family_name
    from ..engine.model_folder import read_info

    try:
        return family_name(read_info(Path(model_dir).expanduser() / "model.json"))
    except ModelError:
        return BETA


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
