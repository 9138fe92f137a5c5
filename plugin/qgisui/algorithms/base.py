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


class ConsoleLines:
    """Progress text and percentages for ``feedback``, each text on a line of its own where
    qgis_process prints them (no project): it prints progress as dots without a line end, so a
    text after them must start a new line, not be spliced into the dots."""

    def __init__(self, feedback, context):
        self.feedback = feedback
        self.console = context is not None and context.project() is None
        # A model's step reports to a multi-step feedback: its 100 % is only part of the
        # model's, so qgis_process leaves the dots' line open and the step ends it (its "Wrote
        # ..." lines and the next step's would be spliced into the dots).
        self.model_step = self.console and feedback.metaObject().className() == "QgsProcessingMultiStepFeedback"
        self.dots = False

    def text(self, message):
        self.feedback.setProgressText("\n" + message if self.dots else message)
        self.dots = False

    def progress(self, percent):
        self.feedback.setProgress(percent)
        if self.model_step and self.dots and percent >= 100:
            self.feedback.pushInfo("")
        self.dots = self.console and percent < 100  # at 100 % qgis_process ends the line
