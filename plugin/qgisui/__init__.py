"""The QGIS shell over the engine: the only package that imports ``qgis``."""
