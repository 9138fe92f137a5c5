"""Inference engine: no QGIS and no raster libraries needed."""


def load(model_dir, device="auto", **options):
    """Open a converted model folder; see :class:`plugin.engine.model.CopGenModel`."""
    from .model import CopGenModel

    return CopGenModel.open(model_dir, device=device, **options)
