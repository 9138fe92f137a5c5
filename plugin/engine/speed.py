"""This machine's measured speed for a model, kept between runs.

:mod:`.estimate` prices a run with the seconds of one denoiser window and of one VAE tile each
way. Measuring them takes seconds (first calls allocate), so it happens once per model, device
and ONNX Runtime, and the figures are kept in a small JSON file in the per-user cache folder.
The key holds what the speed depends on: each network's graph (its sha256 from model.json, else
its size and time), device and precision, the ONNX Runtime version, the batch size and the
machine; changed graphs or another ONNX Runtime make another key, measured again.
"""

import hashlib
import json
import os
import platform
import sys
from pathlib import Path

from .atomic import write_json_atomic

CACHE_DIR_ENV = "COPGEN_CACHE_DIR"
CACHE_NAME = "speed.json"
MAX_ENTRIES = 64  # old models and runtimes drop out first


def cache_file():
    """$COPGEN_CACHE_DIR/speed.json, else in this platform's per-user cache folder."""
    configured = os.environ.get(CACHE_DIR_ENV, "").strip()
    if configured:
        return Path(configured).expanduser() / CACHE_NAME
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches"
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "copgen-beta" / CACHE_NAME


def speed_key(model):
    """The key of ``model``'s speed on this machine, or None for a model built by hand (no plan
    naming its graphs: nothing to key it by)."""
    plan = getattr(model, "plan", None)
    if plan is None:
        return None
    import onnxruntime

    files = (model.info or {}).get("files", {})
    parts = [onnxruntime.__version__, platform.node(), platform.machine(), os.cpu_count(), model.max_batch]
    for name in sorted(plan.graphs):
        graph = Path(plan.graphs[name])
        recorded = files.get(graph.name, {}).get("sha256")
        if recorded is None:
            stat = graph.stat()
            recorded = f"{stat.st_size}:{stat.st_mtime_ns}"
        parts += [name, graph.name, recorded, plan.devices[name], plan.precisions[name]]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()


def _read():
    try:
        data = json.loads(cache_file().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def recall(key):
    """The figures kept under ``key`` (a list of numbers or None), or None."""
    if key is None:
        return None
    figures = _read().get(key)
    if isinstance(figures, list) and figures and all(f is None or isinstance(f, (int, float)) for f in figures):
        return figures
    return None


def remember(key, figures):
    """Keep ``figures`` under ``key``; a cache that cannot be written only costs a measurement."""
    if key is None:
        return
    data = {k: v for k, v in _read().items() if k != key}
    data[key] = list(figures)
    data = dict(list(data.items())[-MAX_ENTRIES:])
    try:
        cache_file().parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(cache_file(), data)
    except OSError:
        pass
