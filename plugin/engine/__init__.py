"""Inference engine: no QGIS and no raster libraries needed."""


def load(model_dir, device="auto", **options):
    """Open a converted model folder with the model class of its family (model.json says
    which: COP-GEN-Beta's :class:`plugin.engine.model.CopGenModel` or COP-GEN's
    :class:`plugin.engine.families.copgen.model.CopGenModel`)."""
    from pathlib import Path

    from .families import family_of
    from .model_folder import read_info
    from .precision import INSTALL_HINT

    model_dir = Path(model_dir).expanduser()
    info = read_info(model_dir / "model.json", INSTALL_HINT) if model_dir.is_dir() else None
    return family_of(info).open_model(model_dir, info=info, device=device, **options)
