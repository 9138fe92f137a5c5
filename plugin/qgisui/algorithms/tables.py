"""Metrics tables of the analysis algorithms: a feature sink without geometry, and its rows."""

from qgis.core import QgsCoordinateReferenceSystem, QgsFeature, QgsFeatureSink, QgsFields, QgsProcessingException, QgsWkbTypes
from qgis.PyQt.QtCore import QMetaType

from ..compat import field
from ..output_layers import place_on_top_on_load

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
    place_on_top_on_load(context, destination)
    return sink, destination


def add_metrics_row(sink, leading_values, metrics, path):
    feature = QgsFeature()
    feature.setAttributes([*leading_values, *(getattr(metrics, name) for name in METRIC_FIELDS), str(path)])
    sink.addFeature(feature, QgsFeatureSink.Flag.FastInsert)


def describe_metrics(metrics):
    """One log line per row: the figures with their units, so the log reads as a table."""
    return (
        f"PSNR {metrics.psnr:6.2f} dB | SSIM {metrics.ssim:.4f} | MAE {metrics.mae:6.2f} | "
        f"histogram distance {metrics.histogram_distance:6.2f}"
    )
