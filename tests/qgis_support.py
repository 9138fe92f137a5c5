"""Running the real QGIS from tests: a headless environment, the application, the installed plugin."""

import contextlib
import importlib
import os
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path
from unittest import mock

REPO = Path(__file__).resolve().parents[1]
PLUGIN_NAME = "copgen_beta"
QGIS_PROCESS = "qgis_process.bin"  # Debian's qgis_process wrapper adds a flag 3.22 rejects


def headless_env(home):
    """Environment for a QGIS child process with a throwaway HOME (fresh default profile)."""
    home = Path(home)
    runtime_dir = home / "xdg-runtime"
    runtime_dir.mkdir(parents=True, exist_ok=True)
    runtime_dir.chmod(0o700)
    env = dict(os.environ)
    env.update(
        HOME=str(home),
        XDG_RUNTIME_DIR=str(runtime_dir),
        XDG_DATA_HOME=str(home / ".local" / "share"),
        XDG_CONFIG_HOME=str(home / ".config"),
        QT_QPA_PLATFORM="offscreen",
        # qgis_process embeds the system Python: let it see the venv's packages (onnxruntime...).
        PYTHONPATH=os.pathsep.join(filter(None, [sysconfig.get_paths()["purelib"], env.get("PYTHONPATH")])),
    )
    return env


def default_profile(home):
    return Path(home) / ".local" / "share" / "QGIS" / "QGIS3" / "profiles" / "default"


def install_plugin(home):
    """`python build.py install` into HOME's default profile, exactly as a user would run it."""
    profile = default_profile(home)
    subprocess.run(
        [sys.executable, str(REPO / "build.py"), "install", "--profile", str(profile)],
        check=True,
        capture_output=True,
        text=True,
        env=headless_env(home),
    )
    return profile / "python" / "plugins" / PLUGIN_NAME


def qgis_process(home, *args, timeout=600):
    return subprocess.run(
        [QGIS_PROCESS, *args],
        capture_output=True,
        text=True,
        env=headless_env(home),
        timeout=timeout,
    )


_APP = None


def qgis_application():
    """The process's one QgsApplication (offscreen) with Processing initialised."""
    global _APP
    if _APP is None:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
        # HOME, XDG_* and TMPDIR are the run's own (conftest.py): the profile and Qt's runtime
        # folder land there.
        from qgis.core import QgsApplication

        QgsApplication.setPrefixPath("/usr", True)
        # A profile of its own: QgsSettings then live in a throwaway folder, so the user's (and
        # concurrent test runs') settings neither leak into the tests nor get changed by them.
        from qgis.PyQt.QtCore import QSettings

        _APP = QgsApplication([], False)
        _APP.initQgis()
        QSettings.setPath(
            QSettings.Format.IniFormat, QSettings.Scope.UserScope, tempfile.mkdtemp(prefix="qgis-settings-")
        )
        sys.path.append("/usr/share/qgis/python/plugins")
        from processing.core.Processing import Processing

        Processing.initialize()
    return _APP


@contextlib.contextmanager
def plugin_provider(home, model_dir):
    """The Processing provider of the plugin installed into ``home`` (as a user installs it),
    with ``model_dir`` as the model folder; unloaded afterwards."""
    qgis_application()
    plugins = str(install_plugin(home).parent)
    sys.path.insert(0, plugins)
    try:
        with mock.patch.dict("os.environ", {"COPGEN_MODEL_DIR": str(model_dir)}):
            plugin = importlib.import_module(PLUGIN_NAME).classFactory(mock.MagicMock())
            plugin.initProcessing()
            try:
                yield plugin.provider
            finally:
                plugin.unload()
    finally:
        sys.path.remove(plugins)
