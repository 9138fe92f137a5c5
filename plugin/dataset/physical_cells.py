"""What a dataset cell of a COP-GEN model holds, where it differs from COP-GEN-Beta's: one
GeoTIFF per image modality at its native resolution (on the cell's model lattice), the class
maps' .aux.xml beside them, and windows.geojson when location or date is generated."""

import json

from ..engine.families.copgen.classes import CLASS_MAPS
from ..engine.families.copgen.registry import BY_KEY
from ..geo.physical_outputs import storage_of
from ..geo.physical_pipeline import area_lattice

WINDOWS_FILE = "windows.geojson"  # generate's <run>_windows.geojson, in the cell folder


def physical_output_names(keys, samples, names):
    """The cell's file names: ``names`` (the request's, one per key and sample, without the run
    name) of the image modalities, then the windows file when a key is no image."""
    names = iter(names)
    images = [name for key in keys for name in [next(names) for _ in range(samples)] if BY_KEY[key].has_vae]
    return images + ([WINDOWS_FILE] if any(not BY_KEY[key].has_vae for key in keys) else [])


def output_dtype(key):
    return storage_of(key).dtype


def output_grid(job, key):
    """The grid of ``key``'s file: the cell's model lattice (the one its run lays out) at the
    modality's resolution."""
    return area_lattice(job.request()).grid(BY_KEY[key].resolution_m)


def condition_files_of_tags(tags):
    """Sorted condition paths of a COP-GEN output's ``conditions`` tag (["s2l2a=PATH", ...])."""
    try:
        return sorted(entry.partition("=")[2] for entry in json.loads(tags.get("conditions", "[]")))
    except (ValueError, TypeError, AttributeError):
        return None


def side_files_complete(job):
    """The class maps' .aux.xml (their class names and colours) are there, and the windows file
    (when the job has one) reads as GeoJSON."""
    for name, key in job.output_keys().items():
        if BY_KEY[key].processing in CLASS_MAPS and not (job.folder / f"{name}.aux.xml").is_file():
            return False
    if WINDOWS_FILE not in job.output_names():
        return True
    try:
        return json.loads((job.folder / WINDOWS_FILE).read_text(encoding="utf-8")).get("type") == "FeatureCollection"
    except (OSError, UnicodeDecodeError, ValueError, AttributeError):
        return False
