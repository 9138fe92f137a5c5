"""Parameters the copgen algorithms share: declaring them, and reading them back as engine values.

A condition raster is declared as its layer, what its values are (physical units, a ready
rendered thumbnail, or "as the layer says", guessed from the layer like the context action does)
and, in Advanced parameters, one band per channel in rendering order (see ..condition_names),
the Sentinel-1 dB switch and the Sentinel-2 DN offset ("auto": read from the product).

Every refusal is a QgsProcessingException that names the parameter by the label the dialog
shows (:func:`refusal`), never by its ID.
"""

from pathlib import Path

from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsCoordinateTransform,
    QgsGeometry,
    QgsProcessing,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingOutputLayerDefinition,
    QgsProcessingParameterBand,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterEnum,
    QgsProcessingParameterExtent,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
    QgsProperty,
)
from shapely import wkt as shapely_wkt

from ...engine.families.beta.registry import BY_KEY, LABELS, MODALITIES
from ...engine.solvers import SOLVERS
from ...geo.condition_spec import AUTO_OFFSET, SOURCES, ConditionSpec
from .. import settings
from ..condition_names import (  # noqa: F401 (parameter_name: the algorithms' import of it)
    CHANNEL_BANDS,
    CHANNELS,
    S1_IN_DB,
    S2_DN_OFFSET,
    SOURCE,
    channel_parameters,
    parameter_name,
)
from ..errors import engine_errors
from ..layer_guess import guess_modality

# In the order of geo.conditions.SOURCES, then the guess (last, so saved indexes keep their meaning).
SOURCE_OPTIONS = ("physical units", "rendered thumbnail", "as the layer says")
SOURCE_FROM_LAYER = len(SOURCES)
MODALITY_FROM_LAYER = "guessed from the layer"
MAX_SEED = 2**31 - 1
S2_OFFSET_HELP = (
    "Subtracted from every Sentinel-2 DN before the model reads it: 1000 for products of processing baseline "
    "04.00 or later (since 2022, BOA_ADD_OFFSET / RADIO_ADD_OFFSET = -1000), 0 for older ones. "
    "auto: read from the product's metadata, else from its SAFE / product name, else 0 (logged)."
)
# Where SOLVER was an index into the solvers of version 0.x (saved models, batch files, scripts).
LEGACY_SOLVER_ORDER = ("dpm-solver-fast", "dpm-solver++2m", "ddim")


def modality_options(with_guess=False):
    return [LABELS[modality] for modality in MODALITIES] + ([MODALITY_FROM_LAYER] if with_guess else [])


# -- words -------------------------------------------------------------------------------------


def label(algorithm, name):
    """The label the dialog shows for parameter ``name`` (its ID when it has none)."""
    definition = algorithm.parameterDefinition(name)
    return definition.description() if definition is not None else name


def refusal(algorithm, names, text):
    """QgsProcessingException "<label>, <label>: text" for the parameters ``names`` (one or a list)."""
    names = [names] if isinstance(names, str) else list(names)
    return QgsProcessingException(f"{', '.join(label(algorithm, name) for name in names)}: {text}")


# -- declaring ---------------------------------------------------------------------------------


def add_condition(algorithm, layer, description, modality=None, optional=True, prefix=None):
    """The raster layer parameter ``layer``; then, named ``prefix`` (default "<layer>_") plus a
    suffix of ..condition_names: its SOURCE and, as advanced parameters, a band per channel of
    ``modality`` (of every modality when None: another parameter chooses it), IN_DB for
    Sentinel-1 and DN_OFFSET for Sentinel-2."""
    prefix = f"{layer}_" if prefix is None else prefix
    modalities = [modality] if modality else list(MODALITIES)
    algorithm.addParameter(QgsProcessingParameterRasterLayer(layer, algorithm.tr(description), optional=optional))
    algorithm.addParameter(
        QgsProcessingParameterEnum(
            prefix + SOURCE,
            algorithm.tr(f"{description}: values are"),
            options=[algorithm.tr(option) for option in SOURCE_OPTIONS],
            defaultValue=SOURCE_FROM_LAYER,
        )
    )
    channels = dict.fromkeys(channel for each in modalities for channel in CHANNELS[each])
    for channel in channels:
        add_advanced(
            algorithm,
            QgsProcessingParameterBand(
                prefix + channel,
                algorithm.tr(f"{description}: {CHANNEL_BANDS[channel]} band (empty: from the layer)"),
                parentLayerParameterName=layer,
                optional=True,
            ),
        )
    if any("s1_in_db" in BY_KEY[each].reading_options for each in modalities):
        add_advanced(
            algorithm,
            QgsProcessingParameterBoolean(
                prefix + S1_IN_DB, algorithm.tr(f"{description}: Sentinel-1 values are in dB (not linear)"), False
            ),
        )
    if any("s2_offset" in BY_KEY[each].reading_options for each in modalities):
        offset = QgsProcessingParameterString(
            prefix + S2_DN_OFFSET, algorithm.tr(f"{description}: Sentinel-2 DN offset (auto or a number)"), AUTO_OFFSET
        )
        offset.setHelp(algorithm.tr(S2_OFFSET_HELP))
        add_advanced(algorithm, offset)


def add_advanced(algorithm, parameter):
    """Add ``parameter`` under the dialog's Advanced parameters."""
    parameter.setFlags(parameter.flags() | QgsProcessingParameterDefinition.Flag.FlagAdvanced)
    algorithm.addParameter(parameter)


def add_sampling(algorithm):
    """SEED, STEPS (default from the settings) and SOLVER (by name; default from the settings)."""
    algorithm.addParameter(
        QgsProcessingParameterNumber(
            "SEED",
            algorithm.tr("Random seed"),
            QgsProcessingParameterNumber.Type.Integer,
            0,
            minValue=0,
            maxValue=MAX_SEED,
        )
    )
    low, high = settings.STEPS_RANGE
    algorithm.addParameter(
        QgsProcessingParameterNumber(
            "STEPS",
            algorithm.tr("Solver steps (network calls)"),
            QgsProcessingParameterNumber.Type.Integer,
            settings.default_steps(),
            minValue=low,
            maxValue=high,
        )
    )
    # By name (static strings): models and saved runs keep their solver when solvers are added.
    algorithm.addParameter(
        QgsProcessingParameterEnum(
            "SOLVER",
            algorithm.tr("Solver"),
            options=list(SOLVERS),
            defaultValue=settings.default_solver(),
            usesStaticStrings=True,
        )
    )


def upgrade_legacy_values(parameters):
    """``parameters`` with a SOLVER given as an index (saved before solvers were stored by name)
    replaced by its name; read once, where the algorithm first sees the parameters."""
    value = parameters.get("SOLVER")
    if isinstance(value, bool) or not isinstance(value, (int, str)) or not str(value).isdigit():
        return parameters
    index = int(value)
    if index >= len(LEGACY_SOLVER_ORDER):
        return parameters
    return {**parameters, "SOLVER": LEGACY_SOLVER_ORDER[index]}


def add_area(algorithm):
    """EXTENT and AOI, both optional."""
    algorithm.addParameter(
        QgsProcessingParameterExtent("EXTENT", algorithm.tr("Area (default: the first condition layer)"), optional=True)
    )
    algorithm.addParameter(
        QgsProcessingParameterFeatureSource(
            "AOI",
            algorithm.tr("Area of interest polygons (outside them: nodata)"),
            [QgsProcessing.SourceType.TypeVectorPolygon],
            optional=True,
        )
    )


# -- reading -----------------------------------------------------------------------------------


def is_set(parameters, name):
    """Given: not None, "", nor an output definition left empty (batch rows, runAndLoadResults)."""
    value = parameters.get(name)
    if isinstance(value, QgsProcessingOutputLayerDefinition) and value.sink.propertyType() == QgsProperty.Type.StaticProperty:
        value = value.sink.staticValue()
    return value not in (None, "")


def raster_layer(algorithm, parameters, context, name):
    """The raster layer of parameter ``name``, None when unset; refused when the value is not a
    file-based raster layer (a vector layer, a missing file, a web service...)."""
    if not is_set(parameters, name):
        return None
    layer = algorithm.parameterAsRasterLayer(parameters, name, context)
    if layer is None or not layer.isValid():
        raise refusal(algorithm, name, f"{parameters[name]!r} is not a raster layer")
    if layer.providerType() != "gdal":
        raise refusal(
            algorithm,
            name,
            f"layer {layer.name()!r} is not a raster file (provider {layer.providerType()}); save it as a GeoTIFF first",
        )
    return layer


def add_guessed_modality(algorithm, name, description):
    """Enum ``name``: a modality, or (the default) the guess from the input layer, which
    :func:`read_modality` makes."""
    algorithm.addParameter(
        QgsProcessingParameterEnum(
            name,
            algorithm.tr(description),
            options=modality_options(with_guess=True),
            defaultValue=len(modality_options()),
        )
    )


def read_modality(algorithm, parameters, context, name, layer_name):
    """The modality chosen by enum ``name`` (declared with ``modality_options(with_guess=True)``);
    the guess from the layer of parameter ``layer_name`` for the last option."""
    index = algorithm.parameterAsEnum(parameters, name, context)
    if index < len(MODALITIES):
        return MODALITIES[index]
    layer = raster_layer(algorithm, parameters, context, layer_name)
    if layer is None:
        raise refusal(algorithm, name, "no layer to guess the modality from; choose one")
    return guess_modality(layer).modality


def read_condition(algorithm, parameters, context, layer, modality, prefix=None):
    """ConditionSpec of a condition declared by :func:`add_condition`, None when unset.
    "as the layer says" and empty bands take the layer's guess where it is of ``modality``."""
    prefix = f"{layer}_" if prefix is None else prefix
    raster = raster_layer(algorithm, parameters, context, layer)
    if raster is None:
        return None
    refuse_stray_options(algorithm, parameters, context, prefix, modality)
    guess = guess_modality(raster)
    choice = algorithm.parameterAsEnum(parameters, prefix + SOURCE, context)
    source = guess.source if choice == SOURCE_FROM_LAYER else SOURCES[choice]
    bands = read_bands(algorithm, parameters, context, prefix, modality, source)
    if bands is None and guess.modality == modality and guess.source == source and not guess.assumed_order:
        bands = guessed_bands(guess, modality, source)
    options = BY_KEY[modality].reading_options
    s1_in_db = "s1_in_db" in options and algorithm.parameterAsBoolean(parameters, prefix + S1_IN_DB, context)
    s2_offset = read_s2_offset(algorithm, parameters, context, prefix + S2_DN_OFFSET) if "s2_offset" in options else 0
    with engine_errors(algorithm):
        return ConditionSpec(
            modality=modality,
            path=raster.source(),
            bands=bands,
            source=source,
            s1_in_db=s1_in_db,
            s2_offset=s2_offset,
            layer_name=raster.name(),
        )


def guessed_bands(guess, modality, source):
    """The guess's bands where they fill the modality's channels; a Sentinel-1 thumbnail's
    R, G, B are read by the engine itself."""
    if source == "thumbnail" and len(CHANNELS[modality]) == 2:
        return None
    return guess.bands if len(guess.bands) == len(CHANNELS[modality]) else None


def read_s2_offset(algorithm, parameters, context, name):
    """"auto", or the number given; refused otherwise."""
    text = (algorithm.parameterAsString(parameters, name, context) or AUTO_OFFSET).strip()
    if text.lower() == AUTO_OFFSET:
        return AUTO_OFFSET
    try:
        value = float(text)
    except ValueError:
        raise refusal(algorithm, name, f"{text!r} is neither auto nor a number") from None
    if value < 0:
        raise refusal(algorithm, name, f"{text} must be 0 or more (1000 for baseline 04.00+)")
    return value


def read_bands(algorithm, parameters, context, prefix, modality, source):
    """The 1-based bands of ``modality``'s channels in rendering order, or None when none is
    set (then the layer's guess, else the engine picks them from band names and count)."""
    names = channel_parameters(prefix, modality)
    unset = [name for name in names if not is_set(parameters, name)]
    if len(unset) == len(names):
        return None
    if unset:
        raise refusal(algorithm, unset, f"set every band of the {LABELS[modality]} condition or none")
    if source == "thumbnail" and len(names) == 2:
        raise refusal(algorithm, names, "a rendered thumbnail is read as its R, G, B bands; leave these empty")
    return tuple(algorithm.parameterAsInt(parameters, name, context) for name in names)


def refuse_stray_options(algorithm, parameters, context, prefix, modality):
    """Refuse a band or option set for another modality than ``modality`` (where one input's
    modality is chosen by a parameter, all are declared)."""
    others = [prefix + channel for channel in CHANNEL_BANDS if channel not in CHANNELS[modality]]
    stray = [name for name in others if is_declared(algorithm, name) and is_set(parameters, name)]
    in_db, offset = prefix + S1_IN_DB, prefix + S2_DN_OFFSET
    options = BY_KEY[modality].reading_options
    if "s1_in_db" not in options and is_declared(algorithm, in_db):
        if algorithm.parameterAsBoolean(parameters, in_db, context):
            stray.append(in_db)
    if "s2_offset" not in options and is_declared(algorithm, offset):
        value = (algorithm.parameterAsString(parameters, offset, context) or AUTO_OFFSET).strip().lower()
        if value not in (AUTO_OFFSET, "0", "0.0"):
            stray.append(offset)
    if stray:
        raise refusal(algorithm, stray, f"not used for a {LABELS[modality]} input; leave it unset")


def is_declared(algorithm, name):
    return algorithm.parameterDefinition(name) is not None


def read_sampling(algorithm, parameters, context):
    """{"seed", "steps", "solver"} as the engine takes them (a legacy solver index was upgraded
    where the algorithm first saw the parameters: ModelAlgorithm)."""
    return {
        "seed": algorithm.parameterAsInt(parameters, "SEED", context),
        "steps": algorithm.parameterAsInt(parameters, "STEPS", context),
        "solver": algorithm.parameterAsEnumString(parameters, "SOLVER", context) or settings.default_solver(),
    }


def read_area(algorithm, parameters, context):
    """(QgsGeometry, its CRS, the parameter it came from) of EXTENT and AOI, or None when both are
    unset. With both, the AOI polygons clipped to the extent."""
    area = None
    if is_set(parameters, "EXTENT"):
        extent = algorithm.parameterAsExtent(parameters, "EXTENT", context)
        crs = algorithm.parameterAsExtentCrs(parameters, "EXTENT", context)
        if not crs.isValid():
            raise refusal(algorithm, "EXTENT", "the extent has no CRS; give it as 'xmin,xmax,ymin,ymax [EPSG:code]'")
        if extent.isEmpty():
            raise refusal(algorithm, "EXTENT", f"the extent {extent.toString()} is empty")
        area = (QgsGeometry.fromRect(extent), crs, "EXTENT")
    if is_set(parameters, "AOI"):
        source = algorithm.parameterAsSource(parameters, "AOI", context)
        if source is None:
            raise refusal(algorithm, "AOI", f"{parameters['AOI']!r} is not a polygon layer")
        crs = source.sourceCrs()
        polygons = QgsGeometry.unaryUnion(
            [feature.geometry() for feature in source.getFeatures() if feature.hasGeometry()]
        )
        if area is not None:
            polygons = polygons.intersection(transformed_box(area[0], area[1], crs, context))
        if polygons.isNull() or polygons.isEmpty() or polygons.area() == 0:
            where = f"inside the {label(algorithm, 'EXTENT')}" if area is not None else "in the layer"
            raise refusal(algorithm, "AOI", f"no polygon area {where}")
        area = (polygons, crs, "AOI")
    return area


def area_arguments(area):
    """generate_area's ``extent=`` or ``aoi=`` argument for an area from :func:`read_area`."""
    geometry, crs, origin = area
    if origin == "EXTENT":
        box = geometry.boundingBox()
        return {"extent": (box.xMinimum(), box.yMinimum(), box.xMaximum(), box.yMaximum(), engine_crs(crs))}
    return {"aoi": (shapely_wkt.loads(geometry.asWkt()), engine_crs(crs))}


def check_overlap(algorithm, area, layers, context):
    """Refuse an area that misses one of ``layers`` ({parameter: layer})."""
    geometry, crs, origin = area
    for name, layer in layers.items():
        footprint = transformed_box(QgsGeometry.fromRect(layer.extent()), layer.crs(), crs, context)
        if not footprint.intersects(geometry):
            raise refusal(
                algorithm, origin, f"the area does not overlap the layer {layer.name()!r} ({label(algorithm, name)})"
            )


def coverage_fractions(area, layers, context):
    """{parameter: fraction of the area's footprint inside the layer's extent} for ``layers``
    ({parameter: layer}); the area defaults to the first layer's extent. Told before any work,
    from footprints alone (the outputs record the coverage the engine measured on the pixels)."""
    if not layers:
        return {}
    if area is None:
        first = next(iter(layers.values()))
        area = (QgsGeometry.fromRect(first.extent()), first.crs(), None)
    geometry, crs, _ = area
    total = geometry.area()
    if not total:
        return {}
    return {
        name: transformed_box(QgsGeometry.fromRect(layer.extent()), layer.crs(), crs, context)
        .intersection(geometry)
        .area()
        / total
        for name, layer in layers.items()
    }


def transformed_box(geometry, source_crs, target_crs, context):
    """The bounding box of ``geometry`` in ``target_crs`` (the box of the reprojected box)."""
    box = geometry.boundingBox()
    if source_crs != target_crs:
        box = QgsCoordinateTransform(source_crs, target_crs, context.transformContext()).transformBoundingBox(box)
    return QgsGeometry.fromRect(box)


def destination_path(algorithm, parameters, context, name):
    """The file or folder destination ``name`` as a Path; refused when empty, so nothing is ever
    written into the working directory by accident."""
    path = algorithm.parameterAsFileOutput(parameters, name, context)
    if not path:
        raise refusal(algorithm, name, "no output location given")
    return Path(path)


def check_geotiff_destination(algorithm, parameters, context, name):
    """Refuse a raster destination ``name`` that is not a GeoTIFF file (what the engine writes)."""
    if not is_set(parameters, name):
        return
    # A context of its own: reading a destination registers its layer to load, and the dialog
    # would then report this never-written name as "not correctly generated".
    output = algorithm.parameterAsOutputLayer(parameters, name, QgsProcessingContext())
    if output and not output.lower().endswith((".tif", ".tiff")):
        raise refusal(algorithm, name, f"{output} must be a GeoTIFF (.tif)")


def engine_crs(crs):
    """A QgsCoordinateReferenceSystem as the engine (rasterio) reads it: EPSG code, else WKT."""
    if crs.authid().upper().startswith("EPSG:"):
        return crs.authid()
    return crs.toWkt(QgsCoordinateReferenceSystem.WktVariant.WKT_PREFERRED)
