"""What differs between the QGIS versions the plugin supports (3.22 on Qt5 up to QGIS on Qt6)."""

from qgis.core import QgsField


def field(name, meta_type):
    """A QgsField of ``meta_type`` (a QMetaType.Type such as QMetaType.Type.Int).

    QGIS 3.38 and later (and every Qt6 build) take the QMetaType.Type; older versions only a
    QVariant.Type, whose values are the same numbers.
    """
    try:
        return QgsField(name, meta_type)
    except TypeError:
        from qgis.PyQt.QtCore import QVariant

        return QgsField(name, QVariant.Type(int(meta_type)))
