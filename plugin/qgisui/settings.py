"""The plugin's user settings, stored with QgsSettings under ``copgen_beta/``."""

from pathlib import Path

from qgis.core import QgsSettings

PREFIX = "copgen_beta/"


def _value(key, default, type_=str):
    return QgsSettings().value(PREFIX + key, default, type=type_)


def set_value(key, value):
    QgsSettings().setValue(PREFIX + key, value)


def model_root():
    """Where models are installed: the setting, else the engine's per-user default."""
    configured = _value("model_dir", "")
    if configured:
        return Path(configured)
    from ..engine.manager import default_model_root

    return default_model_root()
