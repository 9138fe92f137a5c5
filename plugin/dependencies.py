"""Which third-party Python packages the plugin needs, and which are missing or too old.

Kept free of QGIS so the command line and the QGIS shell report the same thing.
"""

import importlib
import importlib.metadata
from dataclasses import dataclass


@dataclass(frozen=True)
class Requirement:
    module: str  # import name
    distribution: str  # pip name
    minimum: str
    why: str


REQUIREMENTS = (
    Requirement("numpy", "numpy", "1.23", "arrays everywhere (QGIS ships it: never replaced)"),
    Requirement("onnxruntime", "onnxruntime", "1.17", "runs the converted model (onnxruntime-gpu for CUDA)"),
    Requirement("onnx", "onnx", "1.15", "builds the ONNX graphs when converting checkpoints"),
    Requirement("rasterio", "rasterio", "1.3", "reads, warps and writes GeoTIFFs"),
    Requirement("pyproj", "pyproj", "3.3", "CRS and UTM zone handling"),
    Requirement("shapely", "shapely", "1.8", "areas of interest (polygons)"),
)


@dataclass(frozen=True)
class PackageStatus:
    requirement: Requirement
    version: str  # "" when missing

    @property
    def ok(self):
        return bool(self.version) and _version_tuple(self.version) >= _version_tuple(self.requirement.minimum)


def _version_tuple(version):
    parts = []
    for piece in version.split(".")[:3]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


def _installed_version(requirement):
    try:
        module = importlib.import_module(requirement.module)
    except Exception:  # a broken install is as good as missing
        return ""
    version = getattr(module, "__version__", "")
    if not version:
        try:
            version = importlib.metadata.version(requirement.distribution)
        except importlib.metadata.PackageNotFoundError:
            version = "0"
    return version


def check():
    """Status of every requirement, in REQUIREMENTS order."""
    return [PackageStatus(req, _installed_version(req)) for req in REQUIREMENTS]


def missing(statuses=None):
    return [status.requirement for status in (statuses or check()) if not status.ok]


def execution_providers():
    """ONNX Runtime's execution providers, or [] when it is not importable."""
    try:
        import onnxruntime
    except Exception:
        return []
    return list(onnxruntime.get_available_providers())
