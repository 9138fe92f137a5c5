"""Comparing generated renderings with real ones: metrics and comparison sheets (no QGIS)."""
