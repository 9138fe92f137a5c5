"""The command line's words for request fields: the one table that turns an error's ``field``
into the flag a user typed (as click's BadParameter(param_hint=...) does for its options).

cli.main renders every CopGenError with it; a command whose flags differ for a field adds
its own entries with ``parser.set_defaults(flags={...})``.
"""

from ..engine.families.beta.registry import MODALITIES


def _condition_flags():
    flags = {}
    for key in MODALITIES:
        field = f"conditions.{key}"
        flags[field] = f"--condition {key}=..."
        flags[field + ".bands"] = f"--condition {key}=FILE:BANDS"
        flags[field + ".source"] = "--source"
        flags[field + ".s1_in_db"] = "--s1-db"
        flags[field + ".s2_offset"] = "--s2-offset"
    for sensor in ("s2l2a", "s2l1c", "s1rtc"):  # COP-GEN's sensors read as --s1-db / --s2-offset say
        flags[f"conditions.{sensor}.s1_in_db"] = "--s1-db"
        flags[f"conditions.{sensor}.s2_offset"] = "--s2-offset"
    return flags


FLAGS = {
    "generate": "--generate",
    "conditions": "--condition",
    **_condition_flags(),
    "extent": "--extent",
    "aoi": "--aoi",
    "grid": "--extent",
    "samples": "--samples",
    "seed": "--seed",
    "steps": "--steps",
    "solver": "--solver",
    "tiling": "--tiling",
    "reflectance": "--reflectance",
    "max_area_km2": "--max-area-km2",
    "max_hours": "--max-hours",
    "max_memory_gib": "--max-memory-gib",
    "run_name": "--run-name",
    "date": "--date",
    "family": "--model",
    "model": "--model",
    "local_files": "--denoiser FILE --vae FILE",
    "local_files.denoiser": "--denoiser",
    "local_files.vae": "--vae",
    "vae": "--vae",
    "vae_dir": "--vae-dir",
    "local_files.vae_dir": "--vae-dir",
    "model_dir": "--model-dir",
    "allow_unofficial": "--allow-unofficial",
    "heads": "--heads",
    "device": "--device",
    "precision": "--precision",
}


def describe(error, args=None):
    """``error`` (a CopGenError) in the command line's words, for ``args`` (its parsed command)."""
    return error.describe({**FLAGS, **(getattr(args, "flags", None) or {})})
