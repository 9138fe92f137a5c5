"""The cells vector layer: one polygon per Major TOM cell (its footprint in EPSG:4326) with the
cell's name and the EPSG code of its UTM zone. Written by ``python -m plugin cells`` and, with the
same fields, by the QGIS algorithm *Major TOM cells of an area*; read back by ``dataset``."""

from pathlib import Path

from ..engine.atomic import WriteError, atomic_files
from ..engine.errors import InputError
from ..geo.majortom import cell_named

# (field name, "string" | "integer"): the attribute table both faces write
FIELDS = (("name", "string"), ("epsg", "integer"))
LAYER_CRS = "EPSG:4326"
DRIVERS = {".gpkg": "GPKG", ".geojson": "GeoJSON", ".json": "GeoJSON", ".shp": "ESRI Shapefile"}


def cell_attributes(cell):
    """The attribute values of ``cell``, in FIELDS order."""
    return [cell.name, cell.epsg]


def write_cells_layer(cells, path):
    """Write the cells to a vector file (GeoPackage, GeoJSON or Shapefile by suffix), atomically:
    every file of the layer (a Shapefile's sidecars too) is written aside, read back, then renamed."""
    from osgeo import ogr, osr

    path = Path(path)
    driver_name = DRIVERS.get(path.suffix.lower())
    if driver_name is None:
        raise InputError(f"{path}: write the cells as .gpkg, .geojson or .shp")
    if not path.parent.is_dir():
        raise InputError(f"{path}: folder {path.parent} does not exist")
    cells = list(cells)

    def verify(work):
        source = ogr.Open(str(work))
        count = source.GetLayer(0).GetFeatureCount() if source is not None and source.GetLayerCount() else -1
        if count != len(cells):
            raise WriteError(f"cannot write {path}: the layer read back has {count} of {len(cells)} cells")

    with atomic_files(path, verify=verify) as work:
        source = ogr.GetDriverByName(driver_name).CreateDataSource(str(work))
        if source is None:
            raise WriteError(f"cannot write {path}")
        reference = osr.SpatialReference()
        reference.ImportFromEPSG(4326)
        reference.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
        layer = source.CreateLayer("cells", reference, ogr.wkbPolygon)
        for field, kind in FIELDS:
            layer.CreateField(ogr.FieldDefn(field, ogr.OFTString if kind == "string" else ogr.OFTInteger))
        for cell in cells:
            feature = ogr.Feature(layer.GetLayerDefn())
            for (field, _), value in zip(FIELDS, cell_attributes(cell)):
                feature.SetField(field, value)
            feature.SetGeometry(ogr.CreateGeometryFromWkb(cell.footprint().wkb))
            layer.CreateFeature(feature)
        source = layer = None  # closes the file
    return path


def read_cells_layer(path):
    """The cells named by the ``name`` field of a vector file's first layer, in order, each once."""
    from osgeo import ogr

    from ..geo.local_files import check_vector

    try:
        source = ogr.Open(check_vector(path, f"cells layer {path}"))
    except RuntimeError:  # with GDAL exceptions on (QGIS)
        source = None
    if source is None or source.GetLayerCount() == 0:
        raise InputError(f"cells layer {path}: cannot read it as a vector file with layers")
    layer = source.GetLayer(0)
    if layer.GetLayerDefn().GetFieldIndex("name") < 0:
        raise InputError(f"cells layer {path}: no 'name' field (write it with the cells command)")
    names = [feature.GetField("name") for feature in layer]
    if not names:
        raise InputError(f"cells layer {path}: no cells in it")
    return list(dict.fromkeys(cell_named(name) for name in names))
