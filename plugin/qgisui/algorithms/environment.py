"""Check installation: what the plugin found (packages, execution providers, models)."""

import platform
import sys

from qgis.core import QgsProcessingOutputString

from ... import __version__, dependencies
from .. import settings
from .base import CopGenAlgorithm


class CheckInstallationAlgorithm(CopGenAlgorithm):
    NAME = "checkinstallation"
    DISPLAY_NAME = "Check installation"
    GROUP = "models"
    HELP = (
        "Reports the plugin version, the Python packages it needs (and which are missing), "
        "the ONNX Runtime execution providers available (CUDA or CPU), the model directory "
        "and the models installed there. Run it first when something does not work."
    )

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addOutput(QgsProcessingOutputString("REPORT", self.tr("Report")))
        self.addOutput(QgsProcessingOutputString("MISSING", self.tr("Missing packages")))
        self.addOutput(QgsProcessingOutputString("PROVIDERS", self.tr("Execution providers")))
        self.addOutput(QgsProcessingOutputString("MODEL_DIR", self.tr("Model directory")))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        statuses = dependencies.check()
        missing = [status.requirement.distribution for status in statuses if not status.ok]
        providers = dependencies.execution_providers()
        model_dir = str(settings.model_root())
        lines = [
            f"COP-GEN-Beta plugin {__version__}",
            f"Python {platform.python_version()} ({sys.executable})",
        ]
        for status in statuses:
            state = status.version if status.ok else (f"too old ({status.version})" if status.version else "MISSING")
            lines.append(f"  {status.requirement.distribution:<12} {state:<12} {status.requirement.why}")
        lines.append(f"Execution providers: {', '.join(providers) or 'none (onnxruntime missing)'}")
        lines.append(f"Model directory: {model_dir}")
        report = "\n".join(lines)
        feedback.pushInfo(report)
        return {
            "REPORT": report,
            "MISSING": ",".join(missing),
            "PROVIDERS": ",".join(providers),
            "MODEL_DIR": model_dir,
        }
