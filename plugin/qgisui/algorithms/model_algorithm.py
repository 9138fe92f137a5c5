"""The template of the algorithms that run the engine: check, read, run, publish.

Subclasses fill in the steps; the order, the model, the legacy values and the error bridge are
here once::

    check(parameters, context)        refuse bad input (QgsProcessingException naming labels)
    read(parameters, context, run)    -> plan: the parameters as engine values
    execute(plan, run)                -> outcome: the engine's work (engine errors bridged)
    publish(plan, outcome, run)       -> results: layers, tables, log lines
"""

from qgis.core import QgsProcessingException

from .base import CopGenAlgorithm
from .parameters import upgrade_legacy_values
from ..settings import model_problem
from .run_context import RunContext


class ModelAlgorithm(CopGenAlgorithm):
    NEEDS_MODEL = True  # checked before any work, loaded before execute

    def check(self, parameters, context):
        """Raise a QgsProcessingException (see parameters.refusal) for bad input."""

    def read(self, parameters, context, run):
        raise NotImplementedError

    def execute(self, plan, run):
        raise NotImplementedError

    def publish(self, plan, outcome, run):
        raise NotImplementedError

    def model_problem(self, parameters, context):
        """Why the model cannot be loaded (one line), None when it can: the settings' model."""
        return model_problem()

    def load_model(self, plan, run):
        """Open the model (see RunContext.load_model): the settings' model."""
        run.load_model()

    def createCustomParametersWidget(self, parent=None):  # noqa: N802 (QGIS's name)
        """The fitted standard dialog (see CopGenAlgorithm), telling before any work that no model
        is installed and offering Install model."""
        dialog = super().createCustomParametersWidget(parent)
        if self.NEEDS_MODEL:
            from ..first_run import offer_model_install

            offer_model_install(dialog.messageBar(), dialog)
        return dialog

    def checkParameterValues(self, parameters, context):  # noqa: N802
        parameters = upgrade_legacy_values(parameters)
        try:
            self.check(parameters, context)
            problem = self.model_problem(parameters, context) if self.NEEDS_MODEL else None
            if problem:
                raise QgsProcessingException(problem)
        except QgsProcessingException as exc:
            return False, str(exc)
        return super().checkParameterValues(parameters, context)

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        parameters = upgrade_legacy_values(parameters)
        run = RunContext(self, parameters, context, feedback)
        try:
            plan = self.read(parameters, context, run)
            if self.NEEDS_MODEL:
                self.load_model(plan, run)
            with run.errors():
                outcome = self.execute(plan, run)
            return self.publish(plan, outcome, run)
        except BaseException:
            run.forget_destinations()
            raise


class ParameterModelAlgorithm(ModelAlgorithm):
    """An algorithm whose Model parameter picks the model (COP-GEN's, see
    physical_parameters.read_model, which refuses a missing model or one of the other family
    in check()): the plan's ``model`` is loaded, not the setting's."""

    def model_problem(self, parameters, context):
        return None  # the Model parameter's own check, in check()

    def load_model(self, plan, run):
        run.load_model(plan.model.folder)
