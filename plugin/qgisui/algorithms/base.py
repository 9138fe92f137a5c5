"""What every COP-GEN-Beta algorithm shares: naming, help, icon, engine progress and cancel."""

from qgis.core import QgsProcessingAlgorithm
from qgis.PyQt.QtCore import QCoreApplication

from ..errors import parameter_labels
from ..resources import plugin_icon

GROUPS = {
    "generation": "Generation",
    "analysis": "Analysis",
    "inputs": "Inputs",
    "models": "Models",
}


class CopGenAlgorithm(QgsProcessingAlgorithm):
    """Subclasses set NAME, DISPLAY_NAME, GROUP (a GROUPS key) and HELP."""

    NAME = ""
    DISPLAY_NAME = ""
    GROUP = "models"
    HELP = ""

    def name(self):
        return self.NAME

    def displayName(self):  # noqa: N802
        return self.tr(self.DISPLAY_NAME)

    def group(self):
        return self.tr(GROUPS[self.GROUP])

    def groupId(self):  # noqa: N802
        return self.GROUP

    def shortHelpString(self):  # noqa: N802
        return self.tr(self.HELP)

    def icon(self):
        return plugin_icon()

    def createCustomParametersWidget(self, parent=None):  # noqa: N802 (QGIS's name)
        """The standard dialog (the toolbox, the locator, the menus and processing's dialog
        functions all open it through here), its parameters fitted to its width."""
        from processing.gui.AlgorithmDialog import AlgorithmDialog

        from ..dialog_fit import fit_parameters

        dialog = AlgorithmDialog(self, parent=parent)
        fit_parameters(dialog)
        return dialog

    def createInstance(self):  # noqa: N802
        return type(self)()

    def tr(self, text):
        return QCoreApplication.translate("CopGen", text)

    def labels(self):
        """{engine field: the label that names it in this dialog} (see ..errors)."""
        return parameter_labels(self)


def engine_callbacks(feedback):
    """Bridge engine progress(done, total) and cancel() to a Processing feedback object."""

    def progress(done, total):
        if total:
            feedback.setProgress(100.0 * done / total)

    def cancel():
        return feedback.isCanceled()

    return progress, cancel
