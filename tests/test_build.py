"""build.py: the ZIP holds what a user needs and nothing else; install and bad input."""

import configparser
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run_build(*args):
    return subprocess.run([sys.executable, str(REPO / "build.py"), *args], capture_output=True, text=True)


def test_package_holds_plugin_without_tests_or_caches(tmp_path):
    result = run_build("package", "--dist", str(tmp_path))
    assert result.returncode == 0, result.stderr
    version = configparser.ConfigParser(interpolation=None)
    version.read(REPO / "metadata.txt")
    archive = tmp_path / f"copgen_beta-{version['general']['version']}.zip"
    assert Path(result.stdout.strip()) == archive
    names = zipfile.ZipFile(archive).namelist()
    assert "copgen_beta/metadata.txt" in names
    assert "copgen_beta/__init__.py" in names
    assert "copgen_beta/plugin/qgisui/provider.py" in names
    assert "copgen_beta/resources/icon.png" in names
    assert all(name.startswith("copgen_beta/") for name in names)
    for name in names:
        parts = name.split("/")
        assert "tests" not in parts and "bench" not in parts and ".ci" not in parts, name
        assert "__pycache__" not in parts and not name.endswith(".pyc"), name
        assert ".venv" not in parts and "dist" not in parts and ".git" not in parts, name
    assert not [n for n in names if n.endswith(".part")]


def test_package_is_written_with_the_ordinary_file_mode(tmp_path):
    # as any file the user writes (0644 under the usual umask 022), not mkstemp's 0600
    argv = [str(REPO / "build.py"), "package", "--dist", str(tmp_path)]
    script = f"import os, runpy, sys; os.umask(0o022); sys.argv = {argv!r}; runpy.run_path(sys.argv[0], run_name='__main__')"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    archive = Path(result.stdout.strip())
    assert stat.S_IMODE(archive.stat().st_mode) == 0o644


def test_metadata_is_complete_and_matches_package_version():
    metadata = configparser.ConfigParser(interpolation=None)
    metadata.read(REPO / "metadata.txt")
    general = metadata["general"]
    for key in (
        "name", "description", "about", "version", "qgisMinimumVersion", "qgisMaximumVersion", "author",
        "email", "homepage", "tracker", "repository", "tags", "category", "icon", "license", "changelog",
    ):
        assert general.get(key, "").strip(), key
    assert general["qgisMinimumVersion"] == "3.22"
    assert general["hasProcessingProvider"] == "yes"
    assert (REPO / general["icon"]).is_file()
    sys.path.insert(0, str(REPO))
    import plugin

    assert plugin.__version__ == general["version"]


def test_install_copies_plugin_and_enables_it(tmp_path):
    profile = tmp_path / "profile"
    result = run_build("install", "--profile", str(profile))
    assert result.returncode == 0, result.stderr
    target = profile / "python" / "plugins" / "copgen_beta"
    assert (target / "metadata.txt").is_file() and (target / "plugin" / "engine").is_dir()
    assert not (target / "tests").exists()
    ini = configparser.RawConfigParser()
    ini.optionxform = str
    ini.read(profile / "QGIS" / "QGIS3.ini")
    assert ini.get("PythonPlugins", "copgen_beta") == "true"
    # a second install replaces the first without leftovers
    assert run_build("install", "--profile", str(profile)).returncode == 0
    assert sorted(p.name for p in target.parent.iterdir()) == ["copgen_beta"]


def test_unknown_command_fails():
    result = run_build("deploy")
    assert result.returncode != 0
    assert "invalid choice" in result.stderr


def test_unwritable_profile_fails_with_message(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the profile folder should be")
    result = run_build("install", "--profile", str(blocker / "profile"))
    assert result.returncode != 0
    assert "cannot write to the QGIS profile" in result.stderr
    assert str(blocker / "profile") in result.stderr
