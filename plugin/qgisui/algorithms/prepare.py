"""Prepare model inputs: a condition raster rendered on the 10 m grid exactly as the model sees it."""

from qgis.core import (
    QgsProcessingException,
    QgsProcessingParameterEnum,
    QgsProcessingParameterExtent,
    QgsProcessingParameterRasterDestination,
)

from ...engine.modalities import MODALITIES
from ...geo.conditions import prepare_condition
from ...geo.rendering import rendering_grid, write_rendering
from .base import CopGenAlgorithm
from .parameters import (
    add_condition,
    check_overlap,
    engine_crs,
    engine_errors,
    modality_options,
    raster_layer,
    read_area,
    read_condition,
)

GEOTIFF_SUFFIXES = (".tif", ".tiff")


class PrepareAlgorithm(CopGenAlgorithm):
    NAME = "prepare"
    DISPLAY_NAME = "Prepare model inputs"
    GROUP = "inputs"
    HELP = (
        "Renders a raster the way COP-GEN-Beta sees it as a condition: warped onto the 10 m UTM grid "
        "(the raster's footprint or EXTENT) and rendered like the Major TOM training thumbnails "
        "(Sentinel-2 true colour from B04, B03, B02; Sentinel-1 VV, VV+VH, VH in dB; DEM hillshade). "
        "Use it to check an input before generating, or to feed rendered thumbnails to other tools. "
        "The output is an 8-bit RGB Cloud Optimized GeoTIFF.\n\n"
        "Advanced parameters: the bands of the chosen MODALITY, one per channel (empty: from band "
        "names and count), whether Sentinel-1 values are in dB, and the Sentinel-2 DN offset."
    )

    def initAlgorithm(self, config=None):  # noqa: N802
        add_condition(self, "INPUT", "Input raster", optional=False, prefix="")
        self.addParameter(QgsProcessingParameterEnum("MODALITY", self.tr("Modality"), options=modality_options()))
        self.addParameter(
            QgsProcessingParameterExtent("EXTENT", self.tr("Area (default: the input's footprint)"), optional=True)
        )
        self.addParameter(QgsProcessingParameterRasterDestination("OUTPUT", self.tr("Model input rendering")))

    def checkParameterValues(self, parameters, context):  # noqa: N802
        try:
            layer = raster_layer(self, parameters, context, "INPUT")
            read_condition(self, parameters, context, "INPUT", self._modality(parameters, context), prefix="")
            area = read_area(self, parameters, context)
            if area is not None and layer is not None:
                check_overlap(area, {"INPUT": layer}, context)
            output = self.parameterAsOutputLayer(parameters, "OUTPUT", context)
            if output and not output.lower().endswith(GEOTIFF_SUFFIXES):
                raise QgsProcessingException(f"OUTPUT: {output} must be a GeoTIFF (.tif)")
        except QgsProcessingException as exc:
            return False, str(exc)
        return super().checkParameterValues(parameters, context)

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        modality = self._modality(parameters, context)
        spec = read_condition(self, parameters, context, "INPUT", modality, prefix="")
        area = read_area(self, parameters, context)
        output = self.parameterAsOutputLayer(parameters, "OUTPUT", context)
        with engine_errors():
            if area is None:
                grid = rendering_grid(spec.path)
            else:
                box = area[0].boundingBox()
                extent = (box.xMinimum(), box.yMinimum(), box.xMaximum(), box.yMaximum())
                grid = rendering_grid(spec.path, extent, engine_crs(area[1]))
            prepared = prepare_condition(spec, grid, feedback.isCanceled)
            write_rendering(
                prepared, grid, output,
                progress=lambda done, total: feedback.setProgress(100.0 * done / total),
                cancel=feedback.isCanceled,
            )
        feedback.pushInfo(f"Wrote {output}: {grid.width} x {grid.height} px at {grid.pixel_size:g} m, {grid.crs}")
        return {"OUTPUT": output}

    def _modality(self, parameters, context):
        return MODALITIES[self.parameterAsEnum(parameters, "MODALITY", context)]
