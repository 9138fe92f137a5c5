"""Engine errors in the dialog's words (the QGIS counterpart of the CLI's plugin.commands.flags).

An engine error's ``field`` (a GenerationRequest field, a policy word, a runner's option) is
named in QGIS by the label of the Processing parameter that sets it, or, for the plugin's
settings, by the setting's label. :data:`FIELD_PARAMETERS` and :data:`SETTING_LABELS` are the
one table of that mapping; every algorithm's errors go through :func:`engine_errors`.
"""

from contextlib import contextmanager

from qgis.core import QgsProcessingException

from ..engine.errors import CopGenError
from ..engine.families.beta.registry import MODALITIES
from . import settings
from .condition_names import parameter_name
from .physical_names import error_fields

# The engine's fields -> the parameter whose label names them in QGIS.
FIELD_PARAMETERS = {
    "generate": "GENERATE",
    "samples": "SAMPLES",
    "seed": "SEED",
    "steps": "STEPS",
    "solver": "SOLVER",
    "reflectance": "REFLECTANCE",
    "extent": "EXTENT",
    "aoi": "AOI",
    "run_name": "OUTPUT_FOLDER",
    "out_dir": "OUTPUT_FOLDER",
    "iterations": "ITERATIONS",
    "via": "VIA",  # COP-GEN's chain
    "subsets": "SUBSETS",  # COP-GEN's combinations
    "local_files": "DENOISER_FILE",
    "local_files.denoiser": "DENOISER_FILE",
    "local_files.vae": "VAE_FILE",
    "local_files.vae_dir": "VAE_DIR",
    "vae_dir": "VAE_DIR",
    "allow_unofficial": "ALLOW_UNOFFICIAL",
    "heads": "HEADS",
    "conditions": "INPUT",  # algorithms whose one input's modality is chosen by a parameter
    **{f"conditions.{modality}": parameter_name(modality) for modality in MODALITIES},
    **error_fields(),  # COP-GEN's sensors, their band names, the date and the model
}
# Fields that are settings, not parameters -> where the user changes them.
SETTING_LABELS = {
    field: f'"{settings.LABELS[field]}" setting (Settings > Options > COP-GEN-Beta)'
    for field in ("max_area_km2", "device", "precision", "model")
}


def parameter_labels(algorithm):
    """{field: label} for the fields ``algorithm`` (None: none) has a parameter for, and the settings."""
    labels = dict(SETTING_LABELS)
    for field, name in FIELD_PARAMETERS.items():
        definition = algorithm.parameterDefinition(name) if algorithm is not None else None
        if definition is not None:
            labels[field] = definition.description()
    return labels


def describe_error(error, labels):
    """``error`` (a CopGenError) with its field shown as its label (``labels``: {field: label};
    the most specific field wins, see CopGenError.describe)."""
    return error.describe(labels)


@contextmanager
def engine_errors(algorithm=None):
    """Engine errors (bad input, cancel) as Processing errors naming ``algorithm``'s labels."""
    try:
        yield
    except CopGenError as exc:
        raise QgsProcessingException(describe_error(exc, parameter_labels(algorithm))) from exc
