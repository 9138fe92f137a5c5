"""Dependency checks and the installer: per-ABI folder, numpy pinned and never shadowed, real pip runs
against local wheels (no network), and a plugin that loads whole while a package is missing."""

import base64
import hashlib
import importlib
import subprocess
import sys
import sysconfig
import zipfile

import numpy
import pytest

from plugin import dependencies
from plugin.engine.errors import CopGenError

PROBE = dependencies.Requirement("copgen_probe", "copgen-probe", "1.0", "test package")


def make_wheel(folder, name, version, files, requires=()):
    """A minimal pure-Python wheel, as pip accepts them (RECORD with sha256 digests)."""
    distribution = name.replace("-", "_")
    info = f"{distribution}-{version}.dist-info"
    members = dict(files)
    members[f"{info}/METADATA"] = (
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
        + "".join(f"Requires-Dist: {requirement}\n" for requirement in requires)
    )
    members[f"{info}/WHEEL"] = "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    record = []
    for path, text in members.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(text.encode())}")
    members[f"{info}/RECORD"] = "\n".join(record + [f"{info}/RECORD,,"]) + "\n"
    path = folder / f"{distribution}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        for member, text in members.items():
            archive.writestr(member, text)
    return path


def make_probe_wheel(folder, version):
    return make_wheel(folder, "copgen-probe", version, {"copgen_probe/__init__.py": f"VERSION = {version!r}\n"}, ["numpy>=1.0"])


@pytest.fixture
def wheels(tmp_path):
    """A local index: the probe package (needs numpy) and fake numpys: the version this Python
    has and a newer one pip would prefer if numpy were not pinned."""
    folder = tmp_path / "wheels"
    folder.mkdir()
    make_probe_wheel(folder, "1.0")
    for version in (numpy.__version__, "99.0"):
        make_wheel(folder, "numpy", version, {"numpy/__init__.py": f"__version__ = {version!r}\n", "numpy/core/x.py": ""})
    return folder


def local_install(folder, wheels, requirement=PROBE):
    return dependencies.PipInstall(folder, [requirement], pip_options=["--no-index", "--find-links", str(wheels)])


def in_fresh_python(folder, code):
    """Run code in a new interpreter with the deps folder activated as the plugin does."""
    script = f"import sys; sys.path.insert(0, {str(folder)!r}); {code}"
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout.strip()


def test_deps_folder_is_per_profile_and_python_abi(tmp_path):
    tag = dependencies.abi_tag()
    major, minor = sys.version_info[:2]
    assert tag == f"cp{major}{minor}-" + sysconfig.get_platform().replace("-", "_").replace(".", "_")
    assert dependencies.deps_folder(tmp_path) == tmp_path / "python" / "copgen_deps" / tag


def test_activate_prepends_existing_folder_once(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "path", list(sys.path))
    assert not dependencies.activate(tmp_path / "absent")
    assert str(tmp_path / "absent") not in sys.path
    (tmp_path / "deps").mkdir()
    assert dependencies.activate(tmp_path / "deps")
    assert dependencies.activate(tmp_path / "deps")
    assert sys.path[0] == str(tmp_path / "deps")
    assert sys.path.count(str(tmp_path / "deps")) == 1


def test_python_executable_is_this_python_version():
    version = subprocess.run(
        [dependencies.python_executable(), "-c", "import sys; print(sys.version_info[:2])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()
    assert version == str(sys.version_info[:2])


def test_numpy_is_pinned_to_this_python_and_never_installed():
    assert dependencies.pinned_constraints() == [f"numpy=={numpy.__version__}"]
    statuses = [
        dependencies.PackageStatus(requirement, "")  # everything missing
        for requirement in dependencies.REQUIREMENTS
    ]
    names = [requirement.distribution for requirement in dependencies.installable(statuses)]
    assert "numpy" not in names and "onnxruntime" in names
    command = dependencies.manual_command("/deps", dependencies.installable(statuses), gpu=True)
    assert "onnxruntime-gpu>=" in command and f"numpy=={numpy.__version__}" in command
    assert "--target /deps" in command


def test_pip_installs_into_folder_without_shadowing_numpy(tmp_path, wheels):
    folder = tmp_path / "profile" / "python" / "copgen_deps" / dependencies.abi_tag()
    job = local_install(folder, wheels)
    result = job.run(timeout=120)
    # pip resolved numpy to the pinned version (not 99.0), then that copy was dropped.
    assert f"numpy-{numpy.__version__}" in result.stdout and "numpy-99.0" not in result.stdout
    assert "--constraint" in job.command and "--target" in job.command
    assert (folder / "copgen_probe" / "__init__.py").is_file()
    assert not list(folder.glob("numpy*"))
    assert sorted(p.name for p in folder.parent.iterdir()) == [folder.name]  # no staging left
    probe, numpy_file = in_fresh_python(
        folder, "import copgen_probe, numpy; print(copgen_probe.__file__); print(numpy.__file__)"
    ).splitlines()
    assert probe.startswith(str(folder))
    assert numpy_file == numpy.__file__


def test_reinstall_replaces_the_old_version(tmp_path, wheels):
    folder = tmp_path / "deps"
    local_install(folder, wheels).run(timeout=120)
    assert in_fresh_python(folder, "import copgen_probe; print(copgen_probe.VERSION)") == "1.0"
    make_probe_wheel(wheels, "2.0")
    local_install(folder, wheels, dependencies.Requirement("copgen_probe", "copgen-probe", "2.0", "")).run(timeout=120)
    assert in_fresh_python(folder, "import copgen_probe; print(copgen_probe.VERSION)") == "2.0"
    assert [p.name for p in folder.glob("*.dist-info")] == ["copgen_probe-2.0.dist-info"]


def test_failed_install_names_the_package_and_changes_nothing(tmp_path, wheels):
    folder = tmp_path / "deps"
    folder.mkdir()
    (folder / "kept.txt").write_text("from an earlier install")
    unknown = dependencies.Requirement("nowhere_pkg", "nowhere-pkg", "1.0", "")
    with pytest.raises(CopGenError, match="nowhere-pkg>=1.0") as error:
        local_install(folder, wheels, unknown).run(timeout=120)
    assert str(folder) in str(error.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["deps", "wheels"]
    assert [p.name for p in folder.iterdir()] == ["kept.txt"]


@pytest.fixture
def onnxruntime_missing(monkeypatch):
    """Imports of onnxruntime fail, as in a QGIS without it (modules already loaded stay loaded).
    Yields the real module, for tests that bring it back."""
    module = importlib.import_module("onnxruntime")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    importlib.invalidate_caches()
    yield module


def test_check_reports_a_missing_package(onnxruntime_missing):
    statuses = {status.requirement.distribution: status for status in dependencies.check()}
    assert not statuses["onnxruntime"].ok and statuses["onnxruntime"].version == ""
    assert statuses["numpy"].ok
    assert [requirement.distribution for requirement in dependencies.installable()] == ["onnxruntime"]


def test_plugin_loads_whole_and_offers_install_when_a_package_is_missing(onnxruntime_missing):
    from unittest import mock

    pytest.importorskip("qgis.core")
    from qgis_support import qgis_application

    qgis_application()
    import processing
    from qgis.core import QgsApplication
    from qgis.gui import QgisInterface

    from plugin.qgisui.main import CopGenPlugin

    from qgis.gui import QgsMessageBar

    message_bar = QgsMessageBar()  # a real bar: the plugin's warning is a real widget in it
    iface = mock.MagicMock(spec=QgisInterface)
    iface.messageBar.return_value = message_bar
    plugin = CopGenPlugin(iface)
    plugin.initGui()
    try:
        registry = QgsApplication.processingRegistry()
        assert registry.providerById("copgen") is not None
        assert registry.algorithmById("copgen:checkinstallation") is not None
        warning = message_bar.currentItem()
        assert warning is not None and "onnxruntime" in warning.text()
        assert processing.run("copgen:checkinstallation", {})["MISSING"] == "onnxruntime"
        assert registry.algorithmById("copgen:generate") is None
        # The dialog installed what was missing: the algorithms appear without a restart.
        sys.modules["onnxruntime"] = onnxruntime_missing
        plugin.packages_installed()
        assert registry.algorithmById("copgen:generate") is not None
    finally:
        plugin.unload()
    assert QgsApplication.processingRegistry().providerById("copgen") is None


@pytest.fixture
def probe_required(monkeypatch, wheels, app_for_dialogs):
    """The probe package becomes a requirement, and pip (run by the dialog) finds it in the
    local wheels folder through pip's own environment variables."""
    monkeypatch.setattr(dependencies, "REQUIREMENTS", dependencies.REQUIREMENTS + (PROBE,))
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(wheels))
    monkeypatch.setattr(sys, "path", list(sys.path))
    yield
    sys.modules.pop("copgen_probe", None)


@pytest.fixture
def app_for_dialogs():
    pytest.importorskip("qgis.core")
    from qgis_support import qgis_application

    return qgis_application()


def wait_until(condition, seconds=120):
    from qgis.PyQt.QtCore import QCoreApplication, QElapsedTimer

    clock = QElapsedTimer()
    clock.start()
    while not condition() and clock.elapsed() < seconds * 1000:
        QCoreApplication.processEvents()
    return condition()


def test_dialog_shows_the_command_and_installs_with_pip(probe_required, tmp_path):
    from plugin.qgisui.dependencies_dialog import DependenciesDialog

    folder = tmp_path / "copgen_deps" / dependencies.abi_tag()
    dialog = DependenciesDialog(folder)
    assert "copgen-probe" in dialog.status.text()
    command = dialog.command.toPlainText()
    assert "copgen-probe>=1.0" in command and str(folder) in command and f"numpy=={numpy.__version__}" in command
    assert dialog.install_button.isEnabled()
    installed = []
    dialog.installed.connect(lambda: installed.append(True))
    dialog.install()
    assert not dialog.install_button.isEnabled()
    assert wait_until(lambda: dialog.process is None)
    assert installed == [True], dialog.log.toPlainText()
    assert (folder / "copgen_probe").is_dir() and not list(folder.glob("numpy*"))
    assert sys.path[0] == str(folder)  # usable in this QGIS session without a restart
    assert importlib.import_module("copgen_probe").VERSION == "1.0"
    assert not dialog.install_button.isEnabled() and dialog.command.toPlainText() == ""


def test_closing_the_dialog_stops_pip_and_installs_nothing(probe_required, tmp_path):
    from plugin.qgisui.dependencies_dialog import DependenciesDialog

    folder = tmp_path / "copgen_deps" / dependencies.abi_tag()
    dialog = DependenciesDialog(folder)
    dialog.install()
    dialog.reject()
    assert dialog.process is None
    assert sorted(p.name for p in folder.parent.iterdir()) == []  # staging and constraints removed
    assert "stopped; nothing was changed" in dialog.log.toPlainText()
