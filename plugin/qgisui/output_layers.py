"""Generated layers in the project: one layer-tree group per run, a style per modality, metadata.

Algorithms call this from ``processAlgorithm`` (any thread) for every output layer::

    register_output_layer(context, layer, modality, run_name, run_parameters, layer_name=None, visible=True)

    context         the run's QgsProcessingContext
    layer           the output's file path (or layer id), as the algorithm returns it
    modality        a key of plugin.engine.families.beta.registry.MODALITIES ("dem", "s1_rtc", ...)
    run_name        the run's group name in the layer tree (e.g. "COP-GEN-Beta seed 0, 12:04")
    run_parameters  {name: value}: recorded in the layer's metadata (values shown with str())
    layer_name      the layer's name in the tree; default: e.g. "S1 RTC (synthetic)"
    visible         False: the layer comes unchecked and its group collapsed (many layers)

It marks the file to be loaded on completion (unless it already is) and attaches a
post-processor. Processing runs post-processors in the main thread after adding the layer to the
project (algorithm dialogs, ``processing.runAndLoadResults``); ours moves the layer into the
run's group, applies the modality's style from resources/styles/ and writes the layer metadata.
Plain ``processing.run`` and qgis_process load nothing, so nothing else happens there.
"""

import json

from qgis.core import (
    Qgis,
    QgsFillSymbol,
    QgsLayerTree,
    QgsMapLayerLegendUtils,
    QgsPalLayerSettings,
    QgsRaster,
    QgsProcessingContext,
    QgsProcessingLayerPostProcessorInterface,
    QgsProcessingUtils,
    QgsSingleSymbolRenderer,
    QgsVectorLayerSimpleLabeling,
)

from .. import __version__
from ..engine.families.beta.registry import BY_KEY, LABELS, MODALITIES
from ..engine.wording import percent
from .resources import resource_path

PROPERTY_MODALITY = "copgen_beta/modality"
PROPERTY_RUN = "copgen_beta/run"

# Processing holds post-processors by plain pointer: Python must keep them alive until they ran.
# Those of runs whose layers are never loaded (processing.run, failures) stay here: a few small
# objects, where dropping one too early would crash QGIS.
_PENDING = set()


def register_output_layer(context, layer, modality, run_name, run_parameters, layer_name=None, visible=True):
    """Have ``layer`` loaded into the run's group, styled and documented when the run completes."""
    if modality not in MODALITIES:
        raise ValueError(f"unknown modality {modality!r}")
    if context.project() is None:  # qgis_process: no project to load into
        return
    if not context.willLoadLayerOnCompletion(layer):
        details = QgsProcessingContext.LayerDetails(
            layer_name or default_layer_name(modality), context.project(), "", QgsProcessingUtils.LayerHint.Raster
        )
        context.addLayerToLoadOnCompletion(layer, details)
    details = context.layerToLoadOnCompletionDetails(layer)  # the context's own, changed in place
    if layer_name:
        details.name = layer_name
    processor = GeneratedLayerPostProcessor(modality, run_name, run_parameters, visible)
    _PENDING.add(processor)
    details.setPostProcessor(processor)


SHORT_NAMES = {key: record.short_label for key, record in BY_KEY.items()}
# the legend of a grey rendering: QGIS would say "Band 1: R (hillshade) (Red)", the first of
# the file's three equal RGB bands
LEGEND_LABELS = {"dem": "Hillshade (grey shading, not elevations)"}


def default_layer_name(modality):
    return f"{SHORT_NAMES[modality]} (synthetic)"


class GeneratedLayerPostProcessor(QgsProcessingLayerPostProcessorInterface):
    def __init__(self, modality, run_name, run_parameters, visible=True):
        super().__init__()
        self.modality = modality
        self.run_name = run_name
        self.run_parameters = dict(run_parameters)
        self.visible = visible

    def postProcessLayer(self, layer, context, feedback):  # noqa: N802 (QGIS's name)
        try:
            apply_style(layer, self.modality)
            write_metadata(layer, self.modality, self.run_name, self.run_parameters)
            node = move_to_run_group(context.project(), layer, self.run_name, self.visible)
            if self.modality in LEGEND_LABELS:
                QgsMapLayerLegendUtils.setLegendNodeUserLabel(node, 0, LEGEND_LABELS[self.modality])
        finally:
            _PENDING.discard(self)


def place_on_top_on_load(context, destination):
    """A table or layer of an analysis, when loaded: at the top of the layer tree, not inside
    whatever group the user has selected (where QGIS inserts new layers)."""
    if context.willLoadLayerOnCompletion(destination):
        processor = OnTop()
        _PENDING.add(processor)
        context.layerToLoadOnCompletionDetails(destination).setPostProcessor(processor)


class OnTop(QgsProcessingLayerPostProcessorInterface):
    def postProcessLayer(self, layer, context, feedback):  # noqa: N802 (QGIS's name)
        try:
            move_to_top(context.project(), layer)
        finally:
            _PENDING.discard(self)


def move_to_top(project, layer):
    root = project.layerTreeRoot()
    node = root.findLayer(layer.id())
    if node is None or (node.parent() is root and root.children().index(node) == 0):
        return
    root.insertChildNode(0, node.clone())
    node.parent().removeChildNode(node)


def style_cells_on_load(context, destination, name_field):
    """The Major TOM cells layer, when loaded: outlines with each cell's name, not an opaque
    fill hiding the map below, at the top of the layer tree."""
    if context.willLoadLayerOnCompletion(destination):
        processor = CellsLayerStyle(name_field)
        _PENDING.add(processor)
        context.layerToLoadOnCompletionDetails(destination).setPostProcessor(processor)


class CellsLayerStyle(QgsProcessingLayerPostProcessorInterface):
    def __init__(self, name_field):
        super().__init__()
        self.name_field = name_field

    def postProcessLayer(self, layer, context, feedback):  # noqa: N802 (QGIS's name)
        try:
            symbol = QgsFillSymbol.createSimple({"color": "0,0,0,0", "outline_color": "230,120,0", "outline_width": "0.4"})
            layer.setRenderer(QgsSingleSymbolRenderer(symbol))
            labels = QgsPalLayerSettings()
            labels.fieldName = self.name_field
            layer.setLabeling(QgsVectorLayerSimpleLabeling(labels))
            layer.setLabelsEnabled(True)
            layer.triggerRepaint()
            move_to_top(context.project(), layer)
        finally:
            _PENDING.discard(self)


def style_path(layer, modality):
    """The QML for a generated layer, from the modality registry: its style for 8-bit renderings
    (DEM hillshade grey, RGB 1:1), its reflectance style for UInt16 reflectance outputs."""
    record = BY_KEY[modality]
    if record.reflectance_style and layer.dataProvider().dataType(1) != Qgis.DataType.Byte:
        return resource_path(record.reflectance_style)
    return resource_path(record.style)


def apply_style(layer, modality):
    path = style_path(layer, modality)
    message, ok = layer.loadNamedStyle(str(path))
    if not ok:
        raise RuntimeError(f"style {path} could not be applied to {layer.source()}: {message}")
    use_alpha_band(layer)
    layer.triggerRepaint()


def use_alpha_band(layer):
    """Draw the file's mask (which QGIS exposes as an alpha band) as transparency, whatever
    band the style names: outside the area and where the input had no data the map shows through,
    on the canvas, in exports and in layouts."""
    provider, renderer = layer.dataProvider(), layer.renderer()
    alpha = next(
        (band for band in range(1, layer.bandCount() + 1) if provider.colorInterpretation(band) == QgsRaster.ColorInterpretation.AlphaBand),
        -1,
    )
    if renderer is not None and hasattr(renderer, "setAlphaBand"):
        renderer.setAlphaBand(alpha)


def write_metadata(layer, modality, run_name, run_parameters):
    metadata = layer.metadata()
    metadata.setTitle(f"{LABELS[modality]}, synthetic ({run_name})")
    metadata.setAbstract(
        f"Synthetic {LABELS[modality]} generated by the COP-GEN-Beta model (COP-GEN-Beta for QGIS "
        f"{__version__}). Generated imagery, not a measurement"
        + (f": {BY_KEY[modality].note}." if BY_KEY[modality].note else ".")
    )
    metadata.addKeywords("COP-GEN-Beta", ["synthetic", modality, run_name])
    coverage = recorded_coverage(layer)
    weights = recorded_tags(layer, ("checkpoints", "num_heads"))
    if weights.get("checkpoints", "").startswith("unofficial"):
        metadata.setAbstract(metadata.abstract() + " Made with unofficial checkpoints (not the official weights).")
    metadata.setHistory(
        [f"run: {run_name}"]
        + [f"{key}: {value}" for key, value in run_parameters.items()]
        + [f"{LABELS.get(key, key)} condition covers {percent(value)} of the area" for key, value in coverage.items()]
        + [f"model {WEIGHT_WORDS[key]}: {value}" for key, value in weights.items()]
    )
    layer.setMetadata(metadata)
    layer.setCustomProperty(PROPERTY_MODALITY, modality)
    layer.setCustomProperty(PROPERTY_RUN, run_name)


WEIGHT_WORDS = {"checkpoints": "checkpoints", "num_heads": "attention heads"}


def recorded_tags(layer, names):
    """{name: text} of the tags ``names`` the engine wrote into the file (those present)."""
    from osgeo import gdal

    try:
        dataset = gdal.Open(layer.source())
    except RuntimeError:
        return {}
    values = {name: dataset.GetMetadataItem(name) for name in names} if dataset is not None else {}
    return {name: value for name, value in values.items() if value}


def recorded_coverage(layer):
    """{modality: fraction of the area} the engine recorded in the file (condition_coverage)."""
    try:
        value = json.loads(recorded_tags(layer, ("condition_coverage",)).get("condition_coverage", "{}"))
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}



def move_to_run_group(project, layer, run_name, visible=True):
    """Move the layer's tree node into the top-level group ``run_name`` (created at the top),
    keeping the group's layers in modality order; unchecked, in a collapsed group, unless
    ``visible``. Returns the layer's new tree node."""
    root = project.layerTreeRoot()
    node = root.findLayer(layer.id())
    group = next((child for child in root.children() if QgsLayerTree.isGroup(child) and child.name() == run_name), None)
    if group is None:
        group = root.insertGroup(0, run_name)
    rank = _rank(layer)
    position = sum(
        1
        for child in group.children()
        if QgsLayerTree.isLayer(child) and child.layer() is not None and _rank(child.layer()) <= rank
    )
    moved = node.clone()
    moved.setItemVisibilityChecked(visible)
    group.insertChildNode(position, moved)
    node.parent().removeChildNode(node)
    if not visible:
        group.setExpanded(False)
    return moved


def _rank(layer):
    modality = layer.customProperty(PROPERTY_MODALITY)
    return MODALITIES.index(modality) if modality in MODALITIES else len(MODALITIES)
