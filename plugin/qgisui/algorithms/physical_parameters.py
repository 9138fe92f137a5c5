"""COP-GEN's parameters, declared and read back as engine values: one condition raster per
sensor (with its band names, the Sentinel-1 dB switch and the Sentinel-2 DN offset as advanced
parameters), the modalities to generate, the date and the model.

Every algorithm that runs COP-GEN declares these with the add_* functions and reads them with
the read_* ones, so that a sensor, its bands, a date or the model are asked and checked alike
everywhere. Refusals are QgsProcessingExceptions naming the dialog's labels
(:func:`.parameters.refusal`, :func:`..errors.engine_errors`); the engine's own checks (bands
missing, codes unknown, dates outside the model's range) come back in the same words.

    add_sensor_conditions(algorithm)
    read_sensor_conditions(algorithm, parameters, context) -> [PhysicalConditionSpec]
    sensor_layers(algorithm, parameters, context) -> {parameter: QgsRasterLayer}
    tell_s2_offsets(feedback, conditions): the DN offset of each Sentinel-2 condition, in the log
    add_generate(algorithm) / read_generate(algorithm, parameters, context) -> [official keys]
    add_date(algorithm) / read_date(algorithm, parameters, context) -> "YYYY-MM-DD" or None
    add_model(algorithm) / read_model(algorithm, parameters, context) -> ModelChoice
    add_key_destinations(algorithm, words) / read_key_destinations(run) -> {key: file or None}
    place_outputs(run, destinations, written) -> ({key: [paths]}, {key: load?})
"""

from dataclasses import dataclass
from pathlib import Path

from qgis.core import (
    QgsProcessingParameterBoolean,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterDateTime,
    QgsProcessingParameterEnum,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
    QgsProcessingParameters,
)

from ...engine.families import BETA, COPGEN
from ...geo.condition_spec import AUTO_OFFSET, band_tokens, describe_s2_offset
from ...engine.errors import InputError
from ...engine.families.copgen.registry import IMAGE_MODALITIES, MODALITIES
from ...engine.families.copgen.request_rules import check_date
from .. import settings
from ..errors import engine_errors
from ..physical_names import (
    BANDS,
    DATE,
    DN_OFFSET,
    GENERATE,
    IN_DB,
    MODEL,
    SENSOR_LABELS,
    SENSORS,
    family_of_folder,
    generate_options,
    is_s2,
    modality_label,
    other_family_hint,
    sensor_parameter,
)
from .parameters import (
    S2_OFFSET_HELP,
    add_advanced,
    check_geotiff_destination,
    is_set,
    raster_layer,
    read_s2_offset,
    refusal,
)
from .run_context import declare_modality_destinations

BANDS_HELP = (
    "The names of the file's bands in the file's order, separated by commas (e.g. "
    "B01,B02,B03,B04,B05,B06,B07,B08,B8A,B09,B11,B12; a Sentinel-2 band may be given by its number: "
    "1,2,3,4,5,6,7,8,8A,9,11,12). Empty: read from the band descriptions or "
    "metadata; a file without band names whose band count is the sensor's usual one is read in "
    "Major TOM's order, and the log says so."
)


# -- the sensors' condition rasters -------------------------------------------------------------


def add_sensor_conditions(algorithm):
    """One optional raster parameter per sensor ("S2L2A", ...), each with its advanced band names
    and, for Sentinel-1, its dB switch, for Sentinel-2 its DN offset ("auto" or a number, as
    COP-GEN-Beta's conditions take it)."""
    for sensor in SENSORS:
        name, words = sensor_parameter(sensor), SENSOR_LABELS[sensor]
        algorithm.addParameter(
            QgsProcessingParameterRasterLayer(name, algorithm.tr(f"{words} condition"), optional=True)
        )
        bands = QgsProcessingParameterString(
            name + BANDS, algorithm.tr(f"{words}: the file's band names in order (empty: from the file)"),
            optional=True,
        )
        bands.setHelp(algorithm.tr(BANDS_HELP))
        add_advanced(algorithm, bands)
        if sensor == "s1rtc":
            add_advanced(
                algorithm,
                QgsProcessingParameterBoolean(
                    name + IN_DB, algorithm.tr(f"{words}: values are in dB (not linear)"), False
                ),
            )
        if is_s2(sensor):
            offset = QgsProcessingParameterString(
                name + DN_OFFSET, algorithm.tr(f"{words}: DN offset (auto or a number)"), AUTO_OFFSET
            )
            offset.setHelp(algorithm.tr(S2_OFFSET_HELP))
            add_advanced(algorithm, offset)


def sensor_layers(algorithm, parameters, context):
    """{parameter: QgsRasterLayer} of the sensors' condition rasters given (refused when not a
    raster file)."""
    layers = {}
    for sensor in SENSORS:
        name = sensor_parameter(sensor)
        layer = raster_layer(algorithm, parameters, context, name)
        if layer is not None:
            layers[name] = layer
    return layers


def read_sensor_conditions(algorithm, parameters, context):
    """The engine's condition specs (PhysicalConditionSpec) of the sensors' rasters given, in the
    dialog's order."""
    from ...geo.physical_pipeline import PhysicalConditionSpec

    specs = []
    for sensor in SENSORS:
        name = sensor_parameter(sensor)
        layer = raster_layer(algorithm, parameters, context, name)
        if layer is None:
            continue
        bands = None
        if is_set(parameters, name + BANDS):
            text = algorithm.parameterAsString(parameters, name + BANDS, context).strip()
            if text:
                with engine_errors(algorithm):
                    bands = band_tokens(text)
        in_db = algorithm.parameterDefinition(name + IN_DB) is not None and algorithm.parameterAsBoolean(
            parameters, name + IN_DB, context
        )
        offset = AUTO_OFFSET
        if algorithm.parameterDefinition(name + DN_OFFSET) is not None:
            offset = read_s2_offset(algorithm, parameters, context, name + DN_OFFSET)
        with engine_errors(algorithm):
            specs.append(PhysicalConditionSpec(sensor, layer.source(), bands, s1_in_db=in_db,
                                               layer_name=layer.name(), s2_offset=offset))
    return specs


def tell_s2_offsets(feedback, conditions):
    """Before any work, in the log: the DN offset each Sentinel-2 condition has taken off and why
    (0 included: the engine itself tells only an offset it subtracts)."""
    for spec in conditions:
        if is_s2(spec.sensor):
            feedback.pushInfo(f"{SENSOR_LABELS[spec.sensor]} condition {spec.layer_name!r}: {describe_s2_offset(spec)}")


# -- what to generate ----------------------------------------------------------------------------


def add_generate(algorithm, name=GENERATE, description="Modalities to generate", optional=False):
    """A multiple choice over COP-GEN's twelve modalities (readable labels, network order)."""
    algorithm.addParameter(
        QgsProcessingParameterEnum(
            name, algorithm.tr(description), options=generate_options(), allowMultiple=True, optional=optional
        )
    )


def read_generate(algorithm, parameters, context, name=GENERATE):
    """The official keys chosen, in network order; none chosen is refused where the parameter is
    not optional (in the dialog's words: the engine's refusal lists official keys)."""
    keys = [MODALITIES[index] for index in sorted(set(algorithm.parameterAsEnums(parameters, name, context)))]
    definition = algorithm.parameterDefinition(name)
    if not keys and not definition.flags() & QgsProcessingParameterDefinition.Flag.FlagOptional:
        raise refusal(algorithm, name, "choose at least one")
    return keys


# -- the date ------------------------------------------------------------------------------------


def add_date(algorithm, name=DATE):
    """An optional date (empty: the generation is not conditioned on a date)."""
    algorithm.addParameter(
        QgsProcessingParameterDateTime(
            name,
            algorithm.tr("Date (empty: not conditioned on a date)"),
            type=QgsProcessingParameterDateTime.Type.Date,
            optional=True,
        )
    )


def read_date(algorithm, parameters, context, name=DATE):
    """"YYYY-MM-DD", or None when unset; a date outside the model's years (the engine's rule) is
    refused here, so the analyses refuse it in check(), before their table is made."""
    if not is_set(parameters, name):
        return None
    # (QgsProcessingAlgorithm has no parameterAsDate on QGIS 3.22)
    value = QgsProcessingParameters.parameterAsDate(algorithm.parameterDefinition(name), parameters, context)
    if value is None or not value.isValid():
        raise refusal(algorithm, name, f"{parameters[name]!r} is not a date (YYYY-MM-DD)")
    date = value.toString("yyyy-MM-dd")
    try:
        check_date(date)
    except InputError as exc:
        raise refusal(algorithm, name, exc.message) from None
    return date


# -- the model -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelChoice:
    name: str  # the registry's model name
    folder: Path  # its converted folder (what settings.model_dir resolves it to)
    family: str  # what the folder's model.json says


def registry_models():
    """{name: family} of the models the registry lists."""
    from ...engine.manager import ModelManager

    entries = ModelManager(settings.model_root()).registry["models"]
    return {name: entry.get("family", BETA) for name, entry in entries.items()}


def add_model(algorithm, family=COPGEN, name=MODEL):
    """The model to use, by registry name: default the "Model" setting where it is of ``family``,
    else the registry's first model of ``family``."""
    models = registry_models()
    current = settings.model_name()
    default = current if models.get(current) == family else next(
        (each for each, of in models.items() if of == family), current
    )
    algorithm.addParameter(
        QgsProcessingParameterEnum(
            name, algorithm.tr("Model"), options=list(models), defaultValue=default, usesStaticStrings=True
        )
    )


def read_model(algorithm, parameters, context, family=COPGEN, name=MODEL):
    """The ModelChoice of the model parameter; refused, naming the label, when it is not installed
    or its folder is of another family than ``family`` (saying which algorithm runs it)."""
    chosen = algorithm.parameterAsEnumString(parameters, name, context) or settings.model_name()
    folder = settings.model_dir(chosen)
    found = family_of_folder(folder)
    if found is None:
        raise refusal(algorithm, name, f"no {chosen} model is installed in {folder}: {settings.INSTALL_HINT}")
    if found != family:
        raise refusal(algorithm, name, other_family_hint(folder, found, family))
    return ModelChoice(chosen, folder, found)


# -- one destination per image modality -----------------------------------------------------------


def destination_name(key):
    return f"OUTPUT_{key}"


def add_key_destinations(algorithm, words):
    """OUTPUT_<official key>, an optional raster destination per image modality (label: the
    modality's, then ``words``); empty or temporary: the file in the Output folder. They chain
    in graphical models and say whether the user wants the layers loaded (the dialog's "Open
    output file", a batch's "Load layers on completion", processing.runAndLoadResults)."""
    declare_modality_destinations(
        algorithm, {destination_name(key): f"{modality_label(key)} ({words})" for key in IMAGE_MODALITIES}
    )


def check_key_destinations(algorithm, parameters, context, keys):
    """Refuse a destination of ``keys`` that is not a GeoTIFF (what is written)."""
    for key in keys:
        check_geotiff_destination(algorithm, parameters, context, destination_name(key))


def read_key_destinations(run):
    """{key: the file its destination asks for, or None}, read before the run (RunContext.destination)."""
    return {key: run.destination(destination_name(key)) for key in IMAGE_MODALITIES}


def place_outputs(run, destinations, written):
    """Each key's first file where its destination asked (RunContext.settle) -> (placed, load):
    ``written`` and ``placed`` {key: [paths, sample 1 first]}, ``load`` {key: whether the user
    asked for its layers}. Destinations of keys not written are withdrawn from the layers to
    load, so no "not correctly generated" line names them."""
    for key, destination in destinations.items():
        if key not in written:
            run.forget(destination)
    placed, load = {}, {}
    for key, paths in written.items():
        first = run.settle(destinations.get(key), paths[0])
        placed[key] = [first, *map(str, paths[1:])]
        load[key] = run.wants_layers(first)
    return placed, load
