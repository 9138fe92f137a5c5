"""Which third-party Python packages the plugin needs, and which are missing or too old.

Kept free of QGIS so the command line and the QGIS shell report the same thing.
"""

import importlib
import importlib.metadata
import os
import re
import shlex
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .engine.errors import CopGenError


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


def execution_providers(usable=None):
    """ONNX Runtime's execution providers, or [] when it is not importable; only those named in
    ``usable`` when given (onnxruntime also lists e.g. Azure, which the plugin never runs on)."""
    try:
        import onnxruntime
    except Exception:
        return []
    available = list(onnxruntime.get_available_providers())
    return available if usable is None else [name for name in available if name in usable]


# --- Installing what is missing -------------------------------------------------------------
# Packages go into a per-profile, per-Python-ABI folder that is put first on sys.path at load:
# <profile>/python/copgen_deps/cp311-linux_x86_64. pip only ever writes there (--target), so
# QGIS's own packages are never modified, and a QGIS upgrade to another Python gets a fresh folder.

DEPS_DIRNAME = "copgen_deps"
# Provided by QGIS and binary-coupled to it (GDAL's and QGIS's bindings are built against this
# numpy): pip must resolve everything else against the installed version and never shadow it.
PINNED = ("numpy",)


def abi_tag():
    """Interpreter and platform tag, e.g. ``cp311-linux_x86_64``: wheels differ between them."""
    implementation = {"cpython": "cp"}.get(sys.implementation.name, sys.implementation.name)
    platform_tag = sysconfig.get_platform().replace("-", "_").replace(".", "_")
    return f"{implementation}{sys.version_info.major}{sys.version_info.minor}-{platform_tag}"


def deps_folder(profile_dir):
    """The folder this plugin installs packages into, inside the QGIS user profile ``profile_dir``."""
    return Path(profile_dir) / "python" / DEPS_DIRNAME / abi_tag()


def activate(folder):
    """Put ``folder`` first on sys.path when it exists; True if it is on sys.path afterwards."""
    folder = str(folder)
    if not os.path.isdir(folder):
        return False
    if folder not in sys.path:
        sys.path.insert(0, folder)
        importlib.invalidate_caches()
    return True


def installable(statuses=None):
    """Missing or too old requirements that pip may install (never the PINNED ones)."""
    return [requirement for requirement in missing(statuses) if requirement.distribution not in PINNED]


def requirement_specs(requirements, gpu=False):
    """pip requirement strings; ``gpu`` asks for onnxruntime's CUDA build."""
    specs = []
    for requirement in requirements:
        name = requirement.distribution
        if gpu and name == "onnxruntime":
            name = "onnxruntime-gpu"
        specs.append(f"{name}>={requirement.minimum}")
    return specs


def pinned_constraints():
    """``name==version`` lines pinning the PINNED packages to the versions this Python has."""
    lines = []
    for name in PINNED:
        try:
            lines.append(f"{name}=={importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            pass  # not provided here: pip may install it like any other dependency
    return lines


def python_executable():
    """A command-line interpreter of the running Python version (inside QGIS, sys.executable is
    often QGIS itself or whatever python3 comes first on PATH)."""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    names = (f"python{version}", "python3", "python", "python.exe", "python3.exe")
    for directory in (Path(sys.exec_prefix) / "bin", Path(sys.exec_prefix)):
        for name in names:
            candidate = directory / name
            if candidate.is_file():
                return str(candidate)
    if Path(sys.executable).name.lower().startswith("python"):
        return sys.executable
    return shutil.which(f"python{version}") or "python3"


def pip_command(target, specs, constraints_file, python=None, pip_options=()):
    """The pip command line installing ``specs`` into ``target`` under ``constraints_file``."""
    return [
        python or python_executable(), "-m", "pip", "install",
        "--disable-pip-version-check", "--no-input", "--upgrade",
        "--target", str(target), "--constraint", str(constraints_file),
        *pip_options, *specs,
    ]


def manual_command(folder, requirements, gpu=False):
    """What a user can paste into a terminal instead. The pins become plain requirements, so pip
    puts a copy of the very numpy QGIS has into the folder: redundant, but compatible."""
    command = [python_executable(), "-m", "pip", "install", "--upgrade", "--target", str(folder)]
    command += requirement_specs(requirements, gpu) + pinned_constraints()
    return " ".join(shlex.quote(part) for part in command)


class PipInstall:
    """One pip run installing requirements into a deps folder, in three steps so a GUI can run
    the middle one asynchronously: ``prepare()`` -> run ``command`` -> ``finish()`` / ``discard()``.

    pip writes into a fresh staging folder beside ``folder``; copies of PINNED packages that pip
    pulled in as dependencies are removed there; only then does the staging content replace the
    same entries in ``folder``. A failed or cancelled run leaves ``folder`` as it was.
    """

    def __init__(self, folder, requirements, gpu=False, python=None, pip_options=()):
        self.folder = Path(folder)
        self.requirements = list(requirements)
        self.specs = requirement_specs(self.requirements, gpu)
        self.python = python
        self.pip_options = tuple(pip_options)
        self.staging = None
        self.pins = []
        self.command = None

    def prepare(self):
        """Create the staging folder and constraints file; returns the pip command line."""
        self.folder.parent.mkdir(parents=True, exist_ok=True)
        self.staging = Path(tempfile.mkdtemp(prefix=f".{self.folder.name}-staging-", dir=self.folder.parent))
        self.pins = pinned_constraints()
        self._constraints_file().write_text("".join(line + "\n" for line in self.pins), encoding="utf-8")
        self.command = pip_command(self.staging, self.specs, self._constraints_file(), self.python, self.pip_options)
        return self.command

    def finish(self):
        """Drop pinned packages from the staging folder, then move its entries into ``folder``."""
        for pin in self.pins:
            _uninstall_from(self.staging, pin.split("==")[0])
        self.folder.mkdir(parents=True, exist_ok=True)
        trash = Path(tempfile.mkdtemp(prefix=f".{self.folder.name}-old-", dir=self.folder.parent))
        try:
            for entry in sorted(self.staging.iterdir()):
                for stale in _entries_replaced_by(entry, self.folder):
                    os.replace(stale, trash / stale.name)
                os.replace(entry, self.folder / entry.name)
        finally:
            shutil.rmtree(trash, ignore_errors=True)
            self.discard()

    def discard(self):
        """Remove the staging folder and constraints file (after failure, cancel or finish)."""
        if self.staging is not None:
            shutil.rmtree(self.staging, ignore_errors=True)
            self._constraints_file().unlink(missing_ok=True)
            self.staging = None

    def _constraints_file(self):
        return self.staging.parent / f"{self.staging.name}.constraints.txt"

    def run(self, timeout=None):
        """prepare, run pip, finish; raises CopGenError with pip's last output lines on failure."""
        command = self.prepare()
        try:
            result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        except (OSError, subprocess.TimeoutExpired) as exc:
            self.discard()
            raise CopGenError(f"could not run pip ({command[0]}) to install {', '.join(self.specs)}: {exc}") from exc
        if result.returncode != 0:
            self.discard()
            tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-8:])
            raise CopGenError(f"pip could not install {', '.join(self.specs)} into {self.folder}:\n{tail}")
        self.finish()
        return result


def _normalise(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def _distribution_name(dist_info):
    """Project name of a ``<name>-<version>.dist-info`` folder, normalised."""
    return _normalise(dist_info.name[: -len(".dist-info")].rsplit("-", 1)[0])


def _entries_replaced_by(entry, folder):
    """Entries of ``folder`` that ``entry`` from a new install supersedes."""
    target = folder / entry.name
    stale = [target] if target.exists() or target.is_symlink() else []
    if entry.name.endswith(".dist-info"):
        name = _distribution_name(entry)
        stale += [p for p in folder.glob("*.dist-info") if p != target and _distribution_name(p) == name]
    return stale


def _uninstall_from(root, name):
    """Delete distribution ``name`` from an install folder, file by file as its RECORD lists."""
    root = root.resolve()
    for dist_info in [p for p in root.glob("*.dist-info") if _distribution_name(p) == _normalise(name)]:
        record = dist_info / "RECORD"
        paths = [line.split(",")[0] for line in record.read_text(encoding="utf-8").splitlines() if line]
        directories = set()
        for relative in paths:
            path = (root / relative).resolve()
            if root in path.parents and path.is_file():
                path.unlink()
                directories.update(p for p in path.parents if root in p.parents)
        for directory in sorted(directories, key=lambda p: len(p.parts), reverse=True):
            if directory.is_dir() and not any(directory.iterdir()):
                directory.rmdir()
        shutil.rmtree(dist_info, ignore_errors=True)
