"""The model registry (models/registry.json): the official sources of every installable model,
read and checked so that later code can rely on its shape, and where models are installed."""

import json
import os
import re
import sys
from pathlib import Path

from .errors import InputError
from .families import BETA, FAMILIES, family

MODEL_DIR_ENV = "COPGEN_MODEL_DIR"
REGISTRY_FILE = Path(__file__).resolve().parents[2] / "models" / "registry.json"
SHA256 = re.compile(r"[0-9a-f]{64}")


def default_model_root():
    """$COPGEN_MODEL_DIR, else the per-user data folder of this platform (never the plugin's)."""
    configured = os.environ.get(MODEL_DIR_ENV, "").strip()
    if configured:
        return Path(configured).expanduser()
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "copgen-beta" / "models"


def load_registry(source=None):
    """The registry as a dict, from a file path (default: models/registry.json) or a dict,
    checked so that later code can rely on its shape. Raises InputError naming file and key."""
    if isinstance(source, dict):
        origin, registry = "registry", source
    else:
        origin = Path(source) if source else REGISTRY_FILE
        try:
            registry = json.loads(Path(origin).read_text(encoding="utf-8"))
        except OSError as exc:
            raise InputError(f"{origin}: cannot read the model registry ({exc.strerror or exc})") from None
        except ValueError as exc:
            raise InputError(f"{origin}: the model registry is not valid JSON ({exc})") from None
    models = registry.get("models") if isinstance(registry, dict) else None
    if not isinstance(models, dict) or not models:
        raise InputError(f"{origin}: the model registry lists no models (key 'models')")
    for name, entry in models.items():
        _check_entry(origin, name, entry)
    return registry


def _check_entry(origin, name, entry):
    where = f"{origin}: models.{name}"
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        raise InputError(f"{where}: a model name may only use letters, digits, '.', '_' and '-'")
    heads = entry.get("num_heads", 16) if isinstance(entry, dict) else None
    if isinstance(heads, bool) or not isinstance(heads, int) or heads < 1:
        raise InputError(f"{where}.num_heads must be a positive whole number")
    if entry.get("family", BETA) not in FAMILIES:
        raise InputError(f"{where}.family must be one of {', '.join(FAMILIES)}")
    sources = entry.get("sources")
    expected = family(entry.get("family", BETA)).checkpoint_roles()
    for role in expected:
        source = sources.get(role) if isinstance(sources, dict) else None
        if not isinstance(source, dict):
            raise InputError(f"{where}.sources.{role} is missing")
        file_name, url = source.get("file_name"), source.get("url")
        if not _plain_name(file_name):
            raise InputError(f"{where}.sources.{role}.file_name must be a plain file name")
        folder = source.get("folder")
        if folder is not None and not (isinstance(folder, str) and all(map(_plain_name, folder.split("/")))):
            raise InputError(f"{where}.sources.{role}.folder must be a relative folder of plain names")
        if not isinstance(url, str) or not url.startswith(("https://", "http://")):
            raise InputError(f"{where}.sources.{role}.url must be an http(s) URL")
        sha256 = source.get("sha256")
        if sha256 is not None and not (isinstance(sha256, str) and SHA256.fullmatch(sha256)):
            raise InputError(f"{where}.sources.{role}.sha256 must be 64 lower-case hex digits or null")
        size = source.get("size")
        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size <= 0):
            raise InputError(f"{where}.sources.{role}.size must be a positive number of bytes or null")
    unknown = sorted(set(sources) - set(expected))
    if unknown:
        raise InputError(f"{where}.sources.{unknown[0]} is not a checkpoint of a {entry.get('family', BETA)} model")


def _plain_name(name):
    return isinstance(name, str) and bool(name) and Path(name).name == name and name[0] != "."


def checkpoint_roles(entry):
    """The checkpoint roles of a registry entry: the denoiser's, then its VAEs'."""
    return tuple(entry["sources"])
