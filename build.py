#!/usr/bin/env python3
"""Package or install the plugin.

    python build.py package [--dist DIR]       -> DIR/copgen_beta-<version>.zip ("Install from ZIP")
    python build.py install [--profile PATH]   -> PATH/python/plugins/copgen_beta, enabled

Only the standard library is used, so this runs with any Python 3.8+.
"""

import argparse
import configparser
import os
import shutil
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent
PLUGIN_NAME = "copgen_beta"  # the folder name QGIS knows the plugin by

# What a user needs, relative to ROOT; everything else (tests, bench, docs, CI) stays out.
SHIPPED = ("metadata.txt", "__init__.py", "LICENSE", "README.md", "plugin", "models", "resources")
EXCLUDED_DIRS = {"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache"}
EXCLUDED_SUFFIXES = {".pyc", ".pyo", ".orig", ".rej", ".swp"}


class BuildError(Exception):
    pass


def plugin_version():
    metadata = configparser.ConfigParser(interpolation=None)
    metadata.read(ROOT / "metadata.txt", encoding="utf-8")
    return metadata["general"]["version"]


def shipped_files():
    """(source path, path inside the plugin folder) for every file a user needs."""
    for entry in SHIPPED:
        source = ROOT / entry
        if source.is_file():
            yield source, Path(entry)
            continue
        for dirpath, dirnames, filenames in os.walk(source):
            dirnames[:] = sorted(d for d in dirnames if d not in EXCLUDED_DIRS)
            for filename in sorted(filenames):
                path = Path(dirpath) / filename
                if path.suffix not in EXCLUDED_SUFFIXES:
                    yield path, path.relative_to(ROOT)


def package(dist_dir):
    dist_dir = Path(dist_dir)
    dist_dir.mkdir(parents=True, exist_ok=True)
    target = dist_dir / f"{PLUGIN_NAME}-{plugin_version()}.zip"
    # Write beside the target and rename, so a failed build never leaves a broken ZIP.
    fd, temp_name = tempfile.mkstemp(prefix=target.name, suffix=".part", dir=dist_dir)
    os.close(fd)
    try:
        with zipfile.ZipFile(temp_name, "w", zipfile.ZIP_DEFLATED) as archive:
            for source, relative in shipped_files():
                archive.write(source, f"{PLUGIN_NAME}/{relative.as_posix()}")
        os.chmod(temp_name, 0o666 & ~current_umask())  # mkstemp's 0600 would hide it from others
        os.replace(temp_name, target)
    except BaseException:
        os.unlink(temp_name)
        raise
    return target


def current_umask():
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def default_profile():
    """The default QGIS 3 user profile of this user on this platform."""
    if sys.platform.startswith("win"):
        base = Path(os.environ.get("APPDATA", Path.home() / "AppData" / "Roaming"))
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share"))
    return base / "QGIS" / "QGIS3" / "profiles" / "default"


def install(profile):
    profile = Path(profile)
    plugins_dir = profile / "python" / "plugins"
    try:
        plugins_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{PLUGIN_NAME}-", dir=plugins_dir))
    except OSError as exc:
        raise BuildError(f"cannot write to the QGIS profile {profile}: {exc.strerror}") from exc
    target = plugins_dir / PLUGIN_NAME
    try:
        for source, relative in shipped_files():
            destination = staging / relative
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination)
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    enable_in_profile(profile)
    return target


def enable_in_profile(profile):
    """Mark the plugin enabled, as the Plugin Manager (and `qgis_process plugins enable`) would."""
    ini_path = Path(profile) / "QGIS" / "QGIS3.ini"
    ini = configparser.RawConfigParser(strict=False)
    ini.optionxform = str  # QGIS keys are case-sensitive
    if ini_path.exists():
        ini.read(ini_path, encoding="utf-8")
    if not ini.has_section("PythonPlugins"):
        ini.add_section("PythonPlugins")
    ini.set("PythonPlugins", PLUGIN_NAME, "true")
    ini_path.parent.mkdir(parents=True, exist_ok=True)
    with open(ini_path, "w", encoding="utf-8") as handle:
        ini.write(handle, space_around_delimiters=False)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="build.py", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", metavar="<command>", required=True)
    package_parser = commands.add_parser("package", help="write dist/copgen_beta-<version>.zip")
    package_parser.add_argument("--dist", default=str(ROOT / "dist"), help="output folder (default: dist/)")
    install_parser = commands.add_parser("install", help="install into a QGIS profile and enable it")
    install_parser.add_argument(
        "--profile", default=None, help=f"QGIS profile folder (default: {default_profile()})"
    )
    args = parser.parse_args(argv)
    try:
        if args.command == "package":
            print(package(args.dist))
        else:
            print(install(args.profile or default_profile()))
    except BuildError as exc:
        print(f"build.py: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
