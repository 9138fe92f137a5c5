"""COP-GEN-Beta engine: checkpoint conversion, ONNX inference, sampling and geo pipeline.

Nothing in this package imports QGIS except :mod:`plugin.qgisui`, so the engine can be
used (and tested) from plain Python: ``python -m plugin --help``.
"""

__version__ = "0.1.0"
