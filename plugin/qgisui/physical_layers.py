"""COP-GEN's generated layers in the project: each styled as what it holds, marked synthetic.

    register_physical_layer(context, path, key, run_name, run_parameters, layer_name=None, visible=True)
    register_windows_layer(context, path, run_name, run_parameters)
    register_input_layer(context, path, key, run_name): a prepared model input (not synthetic)

Like ..output_layers.register_output_layer (whose run group and post-processor bookkeeping this
reuses): the file is marked to load on completion, and a post-processor styles it, writes its
metadata and moves it into the run's group once Processing added it to the project. Styles by
the registry's ``processing`` rule: class maps (land cover, cloud mask) as paletted layers with
their class names in the legend, Sentinel-2 groups as a colour composite (grey for two bands)
stretched on their values, Sentinel-1 as a grey stretch of VV, the DEM as an elevation colour
ramp in metres; the per-window GeoJSON as points labelled with what the model thinks.
"""

from qgis.core import (
    QgsColorRampShader,
    QgsContrastEnhancement,
    QgsGradientColorRamp,
    QgsGradientStop,
    QgsMapLayerLegendUtils,
    QgsMultiBandColorRenderer,
    QgsPalettedRasterRenderer,
    QgsPalLayerSettings,
    QgsProcessingContext,
    QgsProcessingLayerPostProcessorInterface,
    QgsProcessingUtils,
    QgsRasterBandStats,
    QgsRasterMinMaxOrigin,
    QgsRasterShader,
    QgsSingleBandGrayRenderer,
    QgsSingleBandPseudoColorRenderer,
    QgsVectorLayerSimpleLabeling,
)
from qgis.PyQt.QtGui import QColor

from .. import __version__
from ..engine.families.copgen.classes import CLASS_MAPS
from ..engine.families.copgen.registry import BY_KEY
from .output_layers import _PENDING, PROPERTY_MODALITY, PROPERTY_RUN, move_to_run_group

WINDOWS_OUTPUT = "OUTPUT_WINDOWS"
WINDOWS_KEY = "windows"  # the custom property of the per-window point layer
# Sentinel-2 composites (bands of the group's file, 1-based): natural colour for the 10 m group
# (B04, B03, B02), SWIR-NIR-red edge false colour for the 20 m group (B12, B8A, B05).
S2_COMPOSITES = {
    "S2L1C_B02_B03_B04_B08": (1, 2, 3),
    "S2L2A_B02_B03_B04_B08": (1, 2, 3),
    "S2L1C_B05_B06_B07_B11_B12_B8A": (6, 4, 1),
    "S2L2A_B05_B06_B07_B11_B12_B8A": (6, 4, 1),
}
ELEVATION_COLOURS = ("#2b83ba", "#abdda4", "#ffffbf", "#fdae61", "#a6611a")  # low to high
# the first legend entry of single-band layers, by the registry's processing rule
LEGEND_TITLES = {
    "dem": "Elevation (m)",
    "s1": "VV backscatter (linear, stretched)",
    "lulc": "Land cover class",
    "cloud": "Cloud mask class",
}
WINDOW_LABEL = (
    "concat(coalesce(\"predicted_date\", ''), "
    "if(\"distance_km\" IS NULL, '', concat(if(\"predicted_date\" IS NULL, '', ' · '), "
    "round(\"distance_km\", 0), ' km off')))"
)


def register_physical_layer(context, path, key, run_name, run_parameters, layer_name=None, visible=True):
    """Have the COP-GEN output ``path`` of modality ``key`` loaded, styled and documented;
    unticked, in a collapsed group, unless ``visible`` (see output_layers.move_to_run_group)."""
    _register(context, path, layer_name or f"{BY_KEY[key].label} (synthetic)", QgsProcessingUtils.LayerHint.Raster,
              PhysicalLayerPostProcessor(key, run_name, run_parameters, visible))


def register_windows_layer(context, path, run_name, run_parameters):
    """The per-window points (predicted location and date) as a labelled point layer."""
    _register(context, path, "Location and date per window (synthetic)", QgsProcessingUtils.LayerHint.Vector,
              PhysicalLayerPostProcessor(WINDOWS_KEY, run_name, run_parameters))


def register_input_layer(context, path, key, run_name):
    """A prepared model input (the user's data as the model is fed it): styled as its modality,
    documented as the user's data resampled, not synthetic."""
    _register(context, path, f"{BY_KEY[key].label} (model input)", QgsProcessingUtils.LayerHint.Raster,
              PhysicalLayerPostProcessor(key, run_name, {}, describe=write_input_metadata))


def _register(context, path, name, hint, processor):
    if context.project() is None:  # qgis_process: no project to load into
        return
    if not context.willLoadLayerOnCompletion(path):
        context.addLayerToLoadOnCompletion(path, QgsProcessingContext.LayerDetails(name, context.project(), "", hint))
    details = context.layerToLoadOnCompletionDetails(path)
    details.name = name
    details.forceName = True  # our words, even where QGIS prefers file names as layer names
    _PENDING.add(processor)
    details.setPostProcessor(processor)


class PhysicalLayerPostProcessor(QgsProcessingLayerPostProcessorInterface):
    def __init__(self, key, run_name, run_parameters, visible=True, describe=None):
        super().__init__()
        self.key = key
        self.run_name = run_name
        self.run_parameters = dict(run_parameters)
        self.visible = visible
        self.describe = describe or write_physical_metadata  # (layer, key, run_name, run_parameters)

    def postProcessLayer(self, layer, context, feedback):  # noqa: N802 (QGIS's name)
        try:
            if self.key == WINDOWS_KEY:
                style_windows(layer)
            else:
                style_physical(layer, self.key)
            self.describe(layer, self.key, self.run_name, self.run_parameters)
            title = LEGEND_TITLES.get(BY_KEY[self.key].processing) if self.key in BY_KEY else None
            if title:  # QGIS would say "Band 1: DEM (Gray)"; set before the move, whose clone keeps it
                node = context.project().layerTreeRoot().findLayer(layer.id())
                QgsMapLayerLegendUtils.setLegendNodeUserLabel(node, 0, title)
            move_to_run_group(context.project(), layer, self.run_name, self.visible)
        finally:
            _PENDING.discard(self)


def style_physical(layer, key):
    """The renderer of a COP-GEN output, by its registry ``processing`` rule."""
    record = BY_KEY[key]
    provider = layer.dataProvider()
    if record.processing in CLASS_MAPS:
        layer.setRenderer(QgsPalettedRasterRenderer(provider, 1, class_data(record.processing)))
    elif record.processing == "dem":
        layer.setRenderer(elevation_renderer(layer))
    else:
        bands = S2_COMPOSITES.get(key)
        renderer = QgsMultiBandColorRenderer(provider, *bands) if bands else QgsSingleBandGrayRenderer(provider, 1)
        layer.setRenderer(renderer)
        layer.setContrastEnhancement(
            QgsContrastEnhancement.ContrastEnhancementAlgorithm.StretchToMinimumMaximum,
            QgsRasterMinMaxOrigin.Limits.CumulativeCut,
        )
    layer.triggerRepaint()


def class_data(processing):
    """Paletted classes of a class map: each code with its name and colour (the legend)."""
    return [
        QgsPalettedRasterRenderer.Class(code, QColor(colour), name)
        for code, (name, colour) in CLASS_MAPS[processing].colour_table().items()
    ]


def elevation_renderer(layer):
    """The DEM in metres: a low-to-high colour ramp over the layer's range, labelled in metres."""
    stats = layer.dataProvider().bandStatistics(1, QgsRasterBandStats.Stats.Min | QgsRasterBandStats.Stats.Max)
    low, high = stats.minimumValue, max(stats.maximumValue, stats.minimumValue + 1)
    ramp = QgsGradientColorRamp(QColor(ELEVATION_COLOURS[0]), QColor(ELEVATION_COLOURS[-1]))
    ramp.setStops([
        QgsGradientStop(i / (len(ELEVATION_COLOURS) - 1), QColor(colour))
        for i, colour in enumerate(ELEVATION_COLOURS[1:-1], start=1)
    ])
    function = QgsColorRampShader(low, high)
    function.setColorRampType(QgsColorRampShader.Type.Interpolated)
    function.setSourceColorRamp(ramp)
    function.setColorRampItemList([
        QgsColorRampShader.ColorRampItem(low + (high - low) * i / 4, ramp.color(i / 4), f"{low + (high - low) * i / 4:.0f} m")
        for i in range(5)
    ])
    shader = QgsRasterShader(low, high)
    shader.setRasterShaderFunction(function)
    return QgsSingleBandPseudoColorRenderer(layer.dataProvider(), 1, shader)


def style_windows(layer):
    settings = QgsPalLayerSettings()
    settings.isExpression = True
    settings.fieldName = WINDOW_LABEL
    layer.setLabeling(QgsVectorLayerSimpleLabeling(settings))
    layer.setLabelsEnabled(True)
    layer.triggerRepaint()


def write_physical_metadata(layer, key, run_name, run_parameters):
    """Title, abstract, keywords and history saying the layer is synthetic, and what made it."""
    what = "location and date per window" if key == WINDOWS_KEY else BY_KEY[key].label
    metadata = layer.metadata()
    metadata.setTitle(f"{what}, synthetic ({run_name})")
    metadata.setAbstract(
        f"Synthetic {what} generated by a COP-GEN model (COP-GEN-Beta for QGIS {__version__}). "
        "Generated data, not a measurement."
        + ("" if key == WINDOWS_KEY else f" Unit: {BY_KEY[key].unit}.")
    )
    metadata.addKeywords("COP-GEN", ["synthetic", key, run_name])
    metadata.setHistory([f"run: {run_name}"] + [f"{name}: {value}" for name, value in run_parameters.items()])
    layer.setMetadata(metadata)
    layer.setCustomProperty(PROPERTY_MODALITY, key)
    layer.setCustomProperty(PROPERTY_RUN, run_name)


def write_input_metadata(layer, key, run_name, run_parameters=None):
    """Title, abstract and keywords saying the layer is a model input: the user's data resampled."""
    label = BY_KEY[key].label
    metadata = layer.metadata()
    metadata.setTitle(f"{label}, model input ({run_name})")
    metadata.setAbstract(f"{label} as a COP-GEN model is fed it, in {BY_KEY[key].unit}, read from the condition layer "
                         f"(COP-GEN-Beta for QGIS {__version__}). The user's data resampled, not synthetic.")
    metadata.addKeywords("COP-GEN", ["model input", key, run_name])
    layer.setMetadata(metadata)
    layer.setCustomProperty(PROPERTY_MODALITY, key)
    layer.setCustomProperty(PROPERTY_RUN, run_name)
