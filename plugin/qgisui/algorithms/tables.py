"""Metrics tables of the analysis algorithms: a feature sink without geometry, and its rows."""

from qgis.core import QgsCoordinateReferenceSystem, QgsFeature, QgsFeatureSink, QgsFields, QgsProcessingException, QgsWkbTypes
from qgis.PyQt.QtCore import QMetaType

from ..compat import field
from ..output_layers import place_on_top_on_load

METRIC_FIELDS = ("psnr", "ssim", "mae", "histogram_distance")


def metrics_table(algorithm, parameters, context, name, leading_fields, metric_fields=METRIC_FIELDS):
    """(sink, destination id) of a table without geometry: ``leading_fields`` ((name,
    QMetaType.Type) pairs), then the metrics (``metric_fields``, numbers), then the file compared."""
    fields = QgsFields()
    for field_name, field_type in leading_fields:
        fields.append(field(field_name, field_type))
    for field_name in metric_fields:
        fields.append(field(field_name, QMetaType.Type.Double))
    fields.append(field("file", QMetaType.Type.QString))
    sink, destination = algorithm.parameterAsSink(
        parameters, name, context, fields, QgsWkbTypes.Type.NoGeometry, QgsCoordinateReferenceSystem()
    )
    if sink is None:
        raise QgsProcessingException(algorithm.invalidSinkError(parameters, name))
    place_on_top_on_load(context, destination)
    return sink, destination


def add_metrics_row(sink, leading_values, metrics, path, metric_fields=METRIC_FIELDS):
    """One row: ``metrics``' figures named ``metric_fields`` (None: an empty cell)."""
    feature = QgsFeature()
    feature.setAttributes([*leading_values, *(getattr(metrics, name) for name in metric_fields), str(path)])
    sink.addFeature(feature, QgsFeatureSink.Flag.FastInsert)


def describe_metrics(metrics):
    """One log line per row: the figures with their units, so the log reads as a table."""
    return (
        f"PSNR {metrics.psnr:6.2f} dB | SSIM {metrics.ssim:.4f} | MAE {metrics.mae:6.2f} | "
        f"histogram distance {metrics.histogram_distance:6.2f}"
    )


# COP-GEN's tables: one row per band of each generated layer compared, in physical units
# (plugin.analysis.physical_metrics); figures that do not apply (IoU of a DEM) are empty.
PHYSICAL_LEADING = (("band", QMetaType.Type.QString), ("unit", QMetaType.Type.QString))


def physical_metrics_table(algorithm, parameters, context, name, leading_fields):
    """As :func:`metrics_table`: ``leading_fields``, band and unit, the physical figures, the file."""
    from ...analysis.physical_metrics import METRIC_FIELDS as PHYSICAL_FIELDS

    return metrics_table(algorithm, parameters, context, name, (*leading_fields, *PHYSICAL_LEADING), PHYSICAL_FIELDS)


def add_physical_rows(sink, leading_values, comparisons, path):
    """One row per BandComparison of ``comparisons``."""
    from ...analysis.physical_metrics import METRIC_FIELDS as PHYSICAL_FIELDS

    for comparison in comparisons:
        add_metrics_row(sink, [*leading_values, comparison.band, comparison.unit], comparison, path, PHYSICAL_FIELDS)


def physical_log_lines(rows):
    """The log's table of COP-GEN comparisons: one line per band of ``rows`` ((lead text,
    official key, [BandComparison])), the modality by its label (the dialog's words), aligned."""
    from ...engine.families.copgen.registry import BY_KEY

    lines = [(lead, BY_KEY[key].label, band) for lead, key, comparisons in rows for band in comparisons]
    widths = [max((len(str(line[column])) for line in lines), default=0) for column in (0, 1)]
    return [f"{lead:<{widths[0]}} | {label:<{widths[1]}} | {band.band:<4} | {band.describe()}"
            for lead, label, band in lines]
