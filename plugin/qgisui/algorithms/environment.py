"""Check installation: what the plugin found (packages, execution providers, models)."""

import json
import platform
from pathlib import Path

from qgis.core import QgsApplication, QgsProcessingOutputString

from ... import __version__, dependencies
from ...engine.errors import CopGenError
from ...engine.manager import ModelManager
from ...engine.precision import PROVIDERS, has_int8, resolve
from ...engine.provenance import describe_weights
from .. import settings
from ..errors import SETTING_LABELS, describe_error
from .base import CopGenAlgorithm


class CheckInstallationAlgorithm(CopGenAlgorithm):
    NAME = "checkinstallation"
    DISPLAY_NAME = "Check installation"
    GROUP = "models"
    HELP = (
        "Reports the plugin version, the Python packages it needs (and which are missing), "
        "the ONNX Runtime execution providers available (CUDA or CPU), the model directory "
        "and the models installed there (name, precision, folder), and which of them the "
        "algorithms load. Missing packages come with the command that installs them (for qgis_process "
        "and other uses without the GUI). Run it first when something does not work."
    )

    def countVisibleParameters(self):  # noqa: N802
        # The toolbox runs an algorithm without parameters outside any dialog, through a progress
        # bar that QGIS 3.22 feeds a float: a TypeError on Python 3.10+. One "parameter" makes it
        # open this dialog (Run, then the report in its log), as the menu entry does.
        return max(1, super().countVisibleParameters())

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addOutput(QgsProcessingOutputString("MISSING", self.tr("Missing packages")))
        self.addOutput(QgsProcessingOutputString("PROVIDERS", self.tr("Execution providers")))
        self.addOutput(QgsProcessingOutputString("MODEL_DIR", self.tr("Model directory")))
        self.addOutput(QgsProcessingOutputString("MODELS", self.tr("Installed models (name, precision, folder)")))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        statuses = dependencies.check()
        missing = [status.requirement.distribution for status in statuses if not status.ok]
        providers = dependencies.execution_providers(usable=PROVIDERS.values())
        model_root = settings.model_root()
        lines = [
            f"COP-GEN-Beta plugin {__version__}",
            f"Python {platform.python_version()}",  # sys.executable is not what QGIS embeds
        ]
        lines.append("Python packages:")
        for status in statuses:
            state = status.version if status.ok else (f"too old ({status.version})" if status.version else "MISSING")
            lines.append(f"  - {status.requirement.distribution} {state}: {status.requirement.why}")
        requirements = dependencies.installable(statuses)
        if requirements:
            folder = dependencies.deps_folder(Path(QgsApplication.qgisSettingsDirPath()))
            lines.append("To install the missing packages without the GUI, run in a terminal, then restart QGIS:")
            lines.append(f"  {dependencies.manual_command(folder, requirements)}")
        lines.append(f"Execution providers: {', '.join(providers) or 'none (onnxruntime missing)'}")
        lines.append(f"Precision setting: {settings.precision()}")
        lines.append(f"Model directory: {model_root}")
        try:
            models = installed_models(model_root)
        except CopGenError as exc:  # e.g. a hand-edited registry
            models = []
            lines.append(f"  cannot list the models: {exc}")
        for name, precision, folder in models:
            int8 = "yes" if has_int8(folder) else "no"
            lines.append(f"  - {name}, {precision}: {folder}  (int8 denoiser: {int8}; {describe_weights(folder)})")
        if not models:
            lines.append('  no model installed: run "Install model"')
        elif not missing:  # which one is used depends on onnxruntime's providers
            loaded = settings.model_dir()
            lines.append(f"The algorithms load: {loaded}")
            try:  # the engine's one policy says what a run would use
                plan = resolve(loaded, settings.device(), settings.precision())
            except CopGenError as exc:
                lines.append(f"  it cannot be used: {describe_error(exc, SETTING_LABELS)}")
            else:
                lines.append(f"  precision {plan.preference} runs {plan.describe()} on {plan.device}")
                lines.extend(f"  {note}" for note in plan.notes)
        # Said once, in the log: an output holding it too would be printed again as a Python dict.
        feedback.pushInfo("\n".join(lines))
        return {
            "MISSING": ",".join(missing),
            "PROVIDERS": ",".join(providers),
            "MODEL_DIR": str(model_root),
            "MODELS": "\n".join(f"{name}\t{precision}\t{folder}" for name, precision, folder in models),
        }


def installed_models(model_root):
    """(name, precision, folder) of each converted model under ``model_root``, or of the root
    itself where it is one converted model folder (it holds model.json)."""
    info_file = model_root / "model.json"
    if info_file.is_file():
        try:
            info = json.loads(info_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            info = {}
        return [(info.get("name", model_root.name), info.get("precision", "?"), model_root)]
    return [
        (entry["name"], precision, state["path"])
        for entry in ModelManager(model_root).list()
        for precision, state in entry["precisions"].items()
        if state["installed"]
    ]
