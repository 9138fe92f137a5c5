"""Major TOM cells of an area: the cells layer of ``python -m plugin cells``, as a Processing
algorithm, so Generate can iterate over its features."""

from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsFeature,
    QgsFeatureSink,
    QgsFields,
    QgsGeometry,
    QgsProcessing,
    QgsProcessingException,
    QgsProcessingParameterExtent,
    QgsProcessingParameterFeatureSink,
    QgsProcessingParameterFeatureSource,
    QgsWkbTypes,
)
from qgis.PyQt.QtCore import QMetaType
from shapely import wkb

from ...dataset.cells_layer import FIELDS, LAYER_CRS, cell_attributes
from ...engine.wording import count
from ...geo.majortom import cells_in_area
from ..compat import field
from ..output_layers import style_cells_on_load
from ..errors import engine_errors
from .base import CopGenAlgorithm
from .parameters import engine_crs, read_area

FIELD_TYPES = {"string": QMetaType.Type.QString, "integer": QMetaType.Type.Int}


class CellsAlgorithm(CopGenAlgorithm):
    NAME = "majortom_cells"
    DISPLAY_NAME = "Major TOM cells of an area"
    GROUP = "inputs"
    HELP = (
        "The Major TOM grid cells (10 km, named after their bottom-left corner, e.g. 282D_485L) that "
        "intersect the Area or the Area of interest polygons, as polygons in EPSG:4326 with the cell name and the EPSG "
        "code of its UTM zone. Run Generate over them with Processing's iterate button, or give the "
        "layer to `python -m plugin dataset --cells-layer`."
    )

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addParameter(QgsProcessingParameterExtent("EXTENT", self.tr("Area"), optional=True))
        self.addParameter(
            QgsProcessingParameterFeatureSource(
                "AOI", self.tr("Area of interest polygons"), [QgsProcessing.SourceType.TypeVectorPolygon], optional=True
            )
        )
        self.addParameter(
            QgsProcessingParameterFeatureSink("OUTPUT", self.tr("Major TOM cells"), QgsProcessing.SourceType.TypeVectorPolygon)
        )

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        area = read_area(self, parameters, context)
        if area is None:
            raise QgsProcessingException(self.tr("Area or Area of interest polygons: give the area whose cells you want"))
        geometry, crs, _ = area
        with engine_errors(self):
            cells = cells_in_area(wkb.loads(bytes(geometry.asWkb())), engine_crs(crs))
        fields = QgsFields()
        for name, kind in FIELDS:
            fields.append(field(name, FIELD_TYPES[kind]))
        sink, dest = self.parameterAsSink(
            parameters, "OUTPUT", context, fields, QgsWkbTypes.Type.Polygon, QgsCoordinateReferenceSystem(LAYER_CRS)
        )
        for done, cell in enumerate(cells, 1):
            if feedback.isCanceled():
                break
            feature = QgsFeature(fields)
            feature.setAttributes(cell_attributes(cell))
            feature.setGeometry(QgsGeometry.fromWkt(cell.footprint().wkt))
            sink.addFeature(feature, QgsFeatureSink.Flag.FastInsert)
            feedback.setProgress(100.0 * done / len(cells))
        feedback.pushInfo(f"{count(len(cells), 'Major TOM cell')}")
        style_cells_on_load(context, dest, FIELDS[0][0])
        return {"OUTPUT": dest}
