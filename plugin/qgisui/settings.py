"""The plugin's user settings, stored with QgsSettings under ``copgen_beta/``.

Readers never fail: a missing or hand-edited invalid value reads as its default. Writers check
and raise InputError naming the setting, so the options page can say what is wrong.
"""

import os
from pathlib import Path

from qgis.core import QgsSettings

from ..engine.errors import InputError
from ..engine.precision import DEFAULT_PREFERENCE, DEVICES, PREFERENCES, legacy_preference
from ..engine.request import DEFAULT_MAX_AREA_KM2  # a guard against runs of hours; 0 removes it
from ..engine.solvers import SOLVERS

PREFIX = "copgen_beta/"
MODEL_DIR_ENV = "COPGEN_MODEL_DIR"  # overrides the setting (tests, shared installations)
DEFAULT_MODEL = "cop-gen-beta"

DEFAULT_DEVICE = "auto"
DEFAULT_STEPS = 50
STEPS_RANGE = (1, 1000)
DEFAULT_SOLVER = "dpm-solver-fast"
# The engine's precision preferences (plugin.engine.precision): "faithful", the model folder's
# own graphs, exactly the reference; "fast", its int8 denoiser on the CPU (about 2.5x faster per
# step, ~2.6 % RMS noise-prediction error). Version 0.x stored "fast-int8": read as "fast".
PRECISIONS = PREFERENCES
DEFAULT_PRECISION = DEFAULT_PREFERENCE
# The recommended fast CPU preset (docs/performance.md): int8 with dpm-solver-fast at 20 steps.
FAST_PRESET = {"precision": "fast", "solver": "dpm-solver-fast", "steps": 20}
# The labels of the settings page: messages about a setting name it by these.
LABELS = {
    "model": "Model",
    "model_dir": "Model folder",
    "device": "Device",
    "steps": "Default steps",
    "solver": "Default solver",
    "precision": "Precision",
    "max_area_km2": "Largest area per run",
}


def _value(key, default, type_=str):
    try:
        return QgsSettings().value(PREFIX + key, default, type=type_)
    except (TypeError, ValueError):  # a hand-edited value of the wrong type
        return default


def set_value(key, value):
    QgsSettings().setValue(PREFIX + key, value)


def _choice(key, choices, default):
    value = _value(key, default)
    return value if value in choices else default


def _set_choice(key, label, value, choices):
    if value not in choices:
        raise InputError(f"{label} setting: {value!r} is not one of {', '.join(choices)}")
    set_value(key, value)


def model_root_from_environment():
    """The model root forced by $COPGEN_MODEL_DIR, or None."""
    configured = os.environ.get(MODEL_DIR_ENV, "").strip()
    return Path(configured).expanduser() if configured else None


def model_root():
    """Where models are installed: $COPGEN_MODEL_DIR, else the setting, else the engine's
    per-user default."""
    forced = model_root_from_environment()
    if forced is not None:
        return forced
    configured = configured_model_root()
    if configured:
        return Path(configured)
    from ..engine.model_registry import default_model_root

    return default_model_root()


def configured_model_root():
    """The model folder setting as stored ("" = the per-user default)."""
    return _value("model_dir", "")


def model_name():
    """The registry model the algorithms use (COP-GEN-Beta or COP-GEN, installed side by side)."""
    return _value("model", DEFAULT_MODEL) or DEFAULT_MODEL


def set_model_name(name):
    from ..engine.manager import ModelManager

    _set_choice("model", LABELS["model"], name, ModelManager(model_root()).names())


def model_dir(name=None, precision=None):
    """The converted model folder to load. The root may itself be one converted model folder
    (it holds model.json), as when tests or users point the setting straight at it; otherwise
    the model manager's layout applies (<root>/<name>[-fp16]). Without ``precision``: the
    precision the device setting prefers (fp16 on CUDA, as "Install model" installs it) when
    installed, else whichever precision is installed, else the preferred one's folder."""
    root = model_root()
    if (root / "model.json").is_file():
        return root
    name = name or model_name()
    from ..engine.manager import PRECISIONS, ModelManager

    manager = ModelManager(root)
    if precision is not None:
        return manager.model_dir(name, precision)
    from ..engine.precision import install_precision

    preferred = install_precision(device())
    folders = [manager.model_dir(name, each) for each in (preferred, *(p for p in PRECISIONS if p != preferred))]
    return next((folder for folder in folders if (folder / "model.json").is_file()), folders[0])


INSTALL_HINT = 'run "Install model" (Raster > COP-GEN-Beta > Install model…, or Processing > COP-GEN-Beta > Models)'


def model_problem():
    """Why no model can be loaded (a message saying how to install one), or None."""
    folder = model_dir()
    if (folder / "model.json").is_file():
        return None
    return f"no {model_name()} model is installed in {folder}: {INSTALL_HINT}"


def set_model_root(path):
    """Set the model folder; "" restores the per-user default."""
    path = str(path or "").strip()
    if path and Path(path).exists() and not Path(path).is_dir():
        raise InputError(f"model folder setting: {path} is a file, not a folder")
    set_value("model_dir", path)


def _choice_setting(key, label, choices, default):
    """(reader, writer) of a setting that is one of ``choices``."""
    return (lambda: _choice(key, choices, default)), (lambda value: _set_choice(key, label, value, choices))


device, set_device = _choice_setting("device", "device", DEVICES, DEFAULT_DEVICE)


def default_steps():
    value = _value("steps", DEFAULT_STEPS, int)
    return value if STEPS_RANGE[0] <= value <= STEPS_RANGE[1] else DEFAULT_STEPS


def set_default_steps(value):
    if not isinstance(value, int) or not STEPS_RANGE[0] <= value <= STEPS_RANGE[1]:
        raise InputError(f"default steps setting: {value!r} is not a whole number from {STEPS_RANGE[0]} to {STEPS_RANGE[1]}")
    set_value("steps", value)


default_solver, set_default_solver = _choice_setting("solver", "default solver", SOLVERS, DEFAULT_SOLVER)


def precision():
    # settings stored by earlier versions ("fast-int8") read in today's words
    return legacy_preference(_value("precision", DEFAULT_PRECISION)) or DEFAULT_PRECISION


def set_precision(value):
    _set_choice("precision", "precision", value, PRECISIONS)


def max_area_km2():
    """The largest area one generation may cover, in km2; None means no limit (setting 0)."""
    value = _value("max_area_km2", DEFAULT_MAX_AREA_KM2, float)
    if value < 0:
        return DEFAULT_MAX_AREA_KM2
    return value or None


def set_max_area_km2(value):
    """Set the area limit in km2; 0 or None removes the limit."""
    value = 0.0 if value is None else value
    if not isinstance(value, (int, float)) or value < 0:
        raise InputError(f"maximum area setting: {value!r} is not a positive number of km² (0 = no limit)")
    set_value("max_area_km2", float(value))
