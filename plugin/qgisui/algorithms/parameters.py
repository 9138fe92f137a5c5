"""Parameters the copgen algorithms share: declaring them, and reading them back as engine values.

A condition raster is declared as its layer, its source (physical units, or a ready thumbnail
rendering) and, in Advanced parameters, one band per channel in rendering order (see
..condition_names) and its Sentinel-1 dB / Sentinel-2 DN offset options.
"""

import re
from contextlib import contextmanager
from pathlib import Path

from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsCoordinateTransform,
    QgsFeature,
    QgsFeatureSink,
    QgsFields,
    QgsGeometry,
    QgsProcessing,
    QgsProcessingException,
    QgsProcessingParameterBand,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterEnum,
    QgsProcessingParameterExtent,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterLayer,
    QgsWkbTypes,
)
from qgis.PyQt.QtCore import QMetaType
from shapely import wkt as shapely_wkt

from ... import engine
from ...engine.errors import CopGenError
from ...engine.modalities import BY_KEY, LABELS, MODALITIES
from ...engine.solvers import SOLVERS
from ...geo.conditions import SOURCES, ConditionSpec
from .. import settings
from ..compat import field
from ..condition_names import CHANNEL_BANDS, CHANNELS, S1_IN_DB, S2_DN_OFFSET, SOURCE, channel_parameters
from ..errors import describe_error
from .base import engine_callbacks

SOURCE_OPTIONS = ("physical units", "rendered thumbnail")  # in the order of geo.conditions.SOURCES
INSTALL_HINT = 'run the "Install model" algorithm (copgen:installmodel) or `python -m plugin models install`'
MAX_SEED = 2**31 - 1
S2_OFFSET_HELP = (
    "Subtracted from every Sentinel-2 DN before rendering: 1000 for products of processing baseline "
    "04.00 or later (since 2022, BOA_ADD_OFFSET / RADIO_ADD_OFFSET = -1000), 0 for older ones."
)


def parameter_name(modality):
    """The parameter key of a modality: "s1_rtc" -> "S1_RTC"."""
    return modality.upper()


def modality_options():
    return [LABELS[modality] for modality in MODALITIES]


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
            defaultValue=0,
        )
    )
    channels = dict.fromkeys(channel for each in modalities for channel in CHANNELS[each])
    for channel in channels:
        add_advanced(
            algorithm,
            QgsProcessingParameterBand(
                prefix + channel,
                algorithm.tr(f"{description}: {CHANNEL_BANDS[channel]} band (empty: from band names and count)"),
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
        offset = QgsProcessingParameterNumber(
            prefix + S2_DN_OFFSET,
            algorithm.tr(f"{description}: Sentinel-2 DN offset"),
            QgsProcessingParameterNumber.Type.Integer,
            0,
            minValue=0,
        )
        offset.setHelp(algorithm.tr(S2_OFFSET_HELP))
        add_advanced(algorithm, offset)


def add_advanced(algorithm, parameter):
    """Add ``parameter`` under the dialog's Advanced parameters."""
    parameter.setFlags(parameter.flags() | QgsProcessingParameterDefinition.Flag.FlagAdvanced)
    algorithm.addParameter(parameter)


def add_sampling(algorithm):
    """SEED, STEPS (default from the settings) and SOLVER (default from the settings)."""
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
    algorithm.addParameter(
        QgsProcessingParameterEnum(
            "SOLVER",
            algorithm.tr("Solver"),
            options=list(SOLVERS),
            defaultValue=SOLVERS.index(settings.default_solver()),
        )
    )


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
    return parameters.get(name) not in (None, "")


def raster_layer(algorithm, parameters, context, name):
    """The raster layer of parameter ``name``, None when unset; QgsProcessingException naming the
    parameter when the value is not a raster layer (a vector layer, a missing file...)."""
    if not is_set(parameters, name):
        return None
    layer = algorithm.parameterAsRasterLayer(parameters, name, context)
    if layer is None or not layer.isValid():
        raise QgsProcessingException(f"{name}: {parameters[name]!r} is not a raster layer")
    if layer.providerType() != "gdal":
        raise QgsProcessingException(
            f"{name}: layer {layer.name()!r} is not a raster file (provider {layer.providerType()}); save it as a "
            "GeoTIFF first"
        )
    return layer


def read_condition(algorithm, parameters, context, layer, modality, prefix=None):
    """ConditionSpec of a condition declared by :func:`add_condition`, None when unset;
    QgsProcessingException naming the parameter at fault."""
    prefix = f"{layer}_" if prefix is None else prefix
    raster = raster_layer(algorithm, parameters, context, layer)
    if raster is None:
        return None
    refuse_stray_options(algorithm, parameters, context, prefix, modality)
    source = SOURCES[algorithm.parameterAsEnum(parameters, prefix + SOURCE, context)]
    options = BY_KEY[modality].reading_options
    s1_in_db = "s1_in_db" in options and algorithm.parameterAsBoolean(parameters, prefix + S1_IN_DB, context)
    s2_offset = algorithm.parameterAsInt(parameters, prefix + S2_DN_OFFSET, context) if "s2_offset" in options else 0
    with engine_errors():
        return ConditionSpec(
            modality=modality,
            path=raster.source(),
            bands=read_bands(algorithm, parameters, context, prefix, modality, source),
            source=source,
            s1_in_db=s1_in_db,
            s2_offset=s2_offset,
            layer_name=raster.name(),
        )


def read_bands(algorithm, parameters, context, prefix, modality, source):
    """The 1-based bands of ``modality``'s channels in rendering order, or None when none is
    set (the engine then picks them from band names and count)."""
    names = channel_parameters(prefix, modality)
    unset = [name for name in names if not is_set(parameters, name)]
    if len(unset) == len(names):
        return None
    if unset:
        raise QgsProcessingException(
            f"{', '.join(unset)}: set every band of the {LABELS[modality]} condition ({', '.join(names)}) or none"
        )
    if source == "thumbnail" and len(names) == 2:
        raise QgsProcessingException(
            f"{', '.join(names)}: a rendered thumbnail is read as its R, G, B bands; leave these empty"
        )
    return tuple(algorithm.parameterAsInt(parameters, name, context) for name in names)


def refuse_stray_options(algorithm, parameters, context, prefix, modality):
    """QgsProcessingException naming a band or option set for another modality than
    ``modality`` (where one input's modality is chosen by a parameter, all are declared)."""
    others = [prefix + channel for channel in CHANNEL_BANDS if channel not in CHANNELS[modality]]
    stray = [name for name in others if is_declared(algorithm, name) and is_set(parameters, name)]
    in_db, offset = prefix + S1_IN_DB, prefix + S2_DN_OFFSET
    options = BY_KEY[modality].reading_options
    if "s1_in_db" not in options and is_declared(algorithm, in_db):
        if algorithm.parameterAsBoolean(parameters, in_db, context):
            stray.append(in_db)
    if "s2_offset" not in options and is_declared(algorithm, offset):
        if algorithm.parameterAsInt(parameters, offset, context):
            stray.append(offset)
    if stray:
        raise QgsProcessingException(f"{', '.join(stray)}: not used for a {LABELS[modality]} input; leave it unset")


def is_declared(algorithm, name):
    return algorithm.parameterDefinition(name) is not None


def read_sampling(algorithm, parameters, context):
    """{"seed", "steps", "solver"} as the engine takes them."""
    return {
        "seed": algorithm.parameterAsInt(parameters, "SEED", context),
        "steps": algorithm.parameterAsInt(parameters, "STEPS", context),
        "solver": SOLVERS[algorithm.parameterAsEnum(parameters, "SOLVER", context)],
    }


def read_area(algorithm, parameters, context):
    """(QgsGeometry, its CRS, the parameter it came from) of EXTENT and AOI, or None when both are
    unset. With both, the AOI polygons clipped to the extent."""
    area = None
    if is_set(parameters, "EXTENT"):
        extent = algorithm.parameterAsExtent(parameters, "EXTENT", context)
        crs = algorithm.parameterAsExtentCrs(parameters, "EXTENT", context)
        if not crs.isValid():
            raise QgsProcessingException("EXTENT: the extent has no CRS; give it as 'xmin,xmax,ymin,ymax [EPSG:code]'")
        if extent.isEmpty():
            raise QgsProcessingException(f"EXTENT: the extent {extent.toString()} is empty")
        area = (QgsGeometry.fromRect(extent), crs, "EXTENT")
    if is_set(parameters, "AOI"):
        source = algorithm.parameterAsSource(parameters, "AOI", context)
        if source is None:
            raise QgsProcessingException(f"AOI: {parameters['AOI']!r} is not a polygon layer")
        crs = source.sourceCrs()
        polygons = QgsGeometry.unaryUnion(
            [feature.geometry() for feature in source.getFeatures() if feature.hasGeometry()]
        )
        if area is not None:
            polygons = polygons.intersection(transformed_box(area[0], area[1], crs, context))
        if polygons.isNull() or polygons.isEmpty() or polygons.area() == 0:
            what = "inside the EXTENT" if area is not None else "in the layer"
            raise QgsProcessingException(f"AOI: no polygon area {what}")
        area = (polygons, crs, "AOI")
    return area


def area_arguments(area):
    """generate_area's ``extent=`` or ``aoi=`` argument for an area from :func:`read_area`."""
    geometry, crs, origin = area
    if origin == "EXTENT":
        box = geometry.boundingBox()
        return {"extent": (box.xMinimum(), box.yMinimum(), box.xMaximum(), box.yMaximum(), engine_crs(crs))}
    return {"aoi": (shapely_wkt.loads(geometry.asWkt()), engine_crs(crs))}


def check_overlap(area, layers, context):
    """QgsProcessingException when the area misses one of ``layers`` ({parameter: layer})."""
    geometry, crs, origin = area
    for name, layer in layers.items():
        footprint = transformed_box(QgsGeometry.fromRect(layer.extent()), layer.crs(), crs, context)
        if not footprint.intersects(geometry):
            raise QgsProcessingException(f"{origin}: the area does not overlap the {name} layer {layer.name()!r}")


def transformed_box(geometry, source_crs, target_crs, context):
    """The bounding box of ``geometry`` in ``target_crs`` (the box of the reprojected box)."""
    box = geometry.boundingBox()
    if source_crs != target_crs:
        box = QgsCoordinateTransform(source_crs, target_crs, context.transformContext()).transformBoundingBox(box)
    return QgsGeometry.fromRect(box)


def engine_crs(crs):
    """A QgsCoordinateReferenceSystem as the engine (rasterio) reads it: EPSG code, else WKT."""
    if crs.authid().upper().startswith("EPSG:"):
        return crs.authid()
    return crs.toWkt(QgsCoordinateReferenceSystem.WktVariant.WKT_PREFERRED)


# -- the model ---------------------------------------------------------------------------------


def model_problem():
    """Why no model can be loaded (a message saying how to install one), or None."""
    folder = settings.model_dir()
    if (folder / "model.json").is_file():
        return None
    return f"no COP-GEN-Beta model is installed in {folder}: {INSTALL_HINT}"


def load_model(feedback):
    """The model of the settings (folder, device, precision), opened through the engine's one
    policy (plugin.engine.precision.resolve); what it substituted is a warning, never a failure."""
    folder = settings.model_dir()
    with engine_errors():
        model = engine.load(folder, device=settings.device(), preference=settings.precision())
    for note in model.plan.notes:
        feedback.pushWarning(f"Precision {settings.precision()}: {note}")
    feedback.pushInfo(f"Model {folder} ({model.plan.describe()}) on {model.provider}")
    return model


@contextmanager
def engine_errors(labels=None):
    """Engine errors (bad input, cancel) as Processing errors, with the engine's message and
    its field as the parameter's label (``labels``: {field: label}, see ..errors)."""
    try:
        yield
    except CopGenError as exc:
        raise QgsProcessingException(describe_error(exc, labels or {})) from exc


def pipeline_callbacks(feedback):
    """(progress(done, total, stage), cancel()) for the geo pipeline and the analysis runners:
    engine_callbacks plus the stage shown as the progress text."""
    progress, cancel = engine_callbacks(feedback)
    shown = {"stage": None}

    def staged_progress(done, total, stage):
        if stage != shown["stage"]:
            shown["stage"] = stage
            feedback.setProgressText(stage)
        progress(done, total)

    return staged_progress, cancel


def unique_run_name(out_dir, base):
    """``base``, else ``base_2``, ``base_3``...: the first name that no file of ``out_dir``
    starts with (``name_``), so runs into one folder never overwrite each other."""
    candidate, number = base, 1
    while any(Path(out_dir).glob(f"{candidate}_*")):
        number += 1
        candidate = f"{base}_{number}"
    return candidate


def file_safe(text, fallback="copgen"):
    """``text`` reduced to letters, digits, '.', '_' and '-' (what run names may hold)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._-") or fallback


# -- metrics tables ----------------------------------------------------------------------------

METRIC_FIELDS = ("psnr", "ssim", "mae", "histogram_distance")


def metrics_table(algorithm, parameters, context, name, leading_fields):
    """(sink, destination id) of a table without geometry: ``leading_fields`` ((name,
    QMetaType.Type) pairs), then the metrics, then the file compared."""
    fields = QgsFields()
    for field_name, field_type in leading_fields:
        fields.append(field(field_name, field_type))
    for field_name in METRIC_FIELDS:
        fields.append(field(field_name, QMetaType.Type.Double))
    fields.append(field("file", QMetaType.Type.QString))
    sink, destination = algorithm.parameterAsSink(
        parameters, name, context, fields, QgsWkbTypes.Type.NoGeometry, QgsCoordinateReferenceSystem()
    )
    if sink is None:
        raise QgsProcessingException(algorithm.invalidSinkError(parameters, name))
    return sink, destination


def add_metrics_row(sink, leading_values, metrics, path):
    feature = QgsFeature()
    feature.setAttributes([*leading_values, *(getattr(metrics, name) for name in METRIC_FIELDS), str(path)])
    sink.addFeature(feature, QgsFeatureSink.Flag.FastInsert)


def describe_metrics(metrics):
    return (
        f"PSNR {metrics.psnr:.2f} dB, SSIM {metrics.ssim:.4f}, MAE {metrics.mae:.2f}, "
        f"histogram distance {metrics.histogram_distance:.2f}"
    )


def destination_path(algorithm, parameters, context, name):
    """The file or folder destination ``name`` as a Path; refused when empty, so nothing is ever
    written into the working directory by accident."""
    path = algorithm.parameterAsFileOutput(parameters, name, context)
    if not path:
        raise QgsProcessingException(f"{name}: no output location given")
    return Path(path)
