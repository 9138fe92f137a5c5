"""Prepare model inputs: a condition raster rendered on the 10 m grid exactly as the model sees it."""

from qgis.core import QgsProcessingParameterExtent, QgsProcessingParameterRasterDestination

from ...geo.conditions import prepare_condition
from ...geo.prepare_output import rendering_grid, write_rendering
from .model_algorithm import ModelAlgorithm
from .parameters import (
    add_condition,
    add_guessed_modality,
    check_geotiff_destination,
    check_overlap,
    engine_crs,
    raster_layer,
    read_area,
    read_condition,
    read_modality,
)

class PrepareAlgorithm(ModelAlgorithm):
    NEEDS_MODEL = False
    NAME = "prepare"
    DISPLAY_NAME = "Prepare model inputs"
    GROUP = "inputs"
    HELP = (
        "Renders a raster the way COP-GEN-Beta sees it as a condition: warped onto the 10 m UTM grid "
        "(the raster's footprint or the Area) and rendered like the Major TOM training thumbnails "
        "(Sentinel-2 true colour from B04, B03, B02; Sentinel-1 VV, VV+VH, VH in dB; DEM hillshade). "
        "Use it to check an input before generating, or to feed rendered thumbnails to other tools. "
        "The output is an 8-bit RGB Cloud Optimized GeoTIFF.\n\n"
        "The Modality is guessed from the layer (band names, count, this plugin's tags) unless chosen.\n\n"
        "Advanced parameters: the bands of the modality, one per channel (empty: from the layer), "
        "whether Sentinel-1 values are in dB, and the Sentinel-2 DN offset (auto: read from the product)."
    )

    def initAlgorithm(self, config=None):  # noqa: N802
        add_condition(self, "INPUT", "Input raster", optional=False, prefix="")
        add_guessed_modality(self, "MODALITY", "Modality")
        self.addParameter(
            QgsProcessingParameterExtent("EXTENT", self.tr("Area (default: the input's footprint)"), optional=True)
        )
        self.addParameter(QgsProcessingParameterRasterDestination("OUTPUT", self.tr("Model input rendering")))

    def check(self, parameters, context):
        layer = raster_layer(self, parameters, context, "INPUT")
        read_condition(self, parameters, context, "INPUT", self._modality(parameters, context), prefix="")
        area = read_area(self, parameters, context)
        if area is not None and layer is not None:
            check_overlap(self, area, {"INPUT": layer}, context)
        check_geotiff_destination(self, parameters, context, "OUTPUT")

    def read(self, parameters, context, run):
        spec = read_condition(self, parameters, context, "INPUT", self._modality(parameters, context), prefix="")
        if spec.s2_offset_note:
            run.feedback.pushInfo(f"DN offset {spec.s2_offset:g} ({spec.s2_offset_note})")
        return spec, read_area(self, parameters, context), self.parameterAsOutputLayer(parameters, "OUTPUT", context)

    def execute(self, plan, run):
        spec, area, output = plan
        if area is None:
            grid = rendering_grid(spec.path)
        else:
            box = area[0].boundingBox()
            extent = (box.xMinimum(), box.yMinimum(), box.xMaximum(), box.yMaximum())
            grid = rendering_grid(spec.path, extent, engine_crs(area[1]))
        prepared = prepare_condition(spec, grid, run.feedback.isCanceled)
        progress, cancel = run.callbacks()
        write_rendering(prepared, grid, output, progress=lambda done, total: progress(done, total), cancel=cancel)
        return grid

    def publish(self, plan, grid, run):
        output = plan[2]
        run.feedback.pushInfo(f"Wrote {output}: {grid.width} x {grid.height} px at {grid.pixel_size:g} m, {grid.crs}")
        return {"OUTPUT": output}

    def _modality(self, parameters, context):
        return read_modality(self, parameters, context, "MODALITY", "INPUT")
