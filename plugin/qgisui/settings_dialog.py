"""The COP-GEN-Beta page of Settings > Options (also opened from the plugin menu)."""

from qgis.gui import QgsFileWidget, QgsOptionsPageWidget, QgsOptionsWidgetFactory
from qgis.PyQt.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QLabel,
    QMessageBox,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from .. import dependencies
from ..engine.errors import CopGenError
from ..engine.model_registry import default_model_root
from ..engine.precision import PROVIDERS, resolve
from ..engine.solvers import SOLVERS
from . import settings
from .resources import plugin_icon

PAGE_TITLE = "COP-GEN-Beta"
PAGE_NAME = "copgenBetaOptions"  # objectName: lets showOptionsDialog open this page


class SettingsWidget(QWidget):
    """The settings form: ``load()`` fills it from the settings, ``apply()`` stores it."""

    def __init__(self, parent=None, show_dependencies=None):
        super().__init__(parent)
        self.model_dir = QgsFileWidget()
        self.model_dir.setStorageMode(QgsFileWidget.StorageMode.GetDirectory)
        self.model_dir.setDialogTitle("Folder of the installed COP-GEN-Beta models")
        self.model = QComboBox()  # the registry's models; the algorithms load the chosen one
        self.model.addItems(_model_names())
        self.device = QComboBox()
        self.device.addItems(settings.DEVICES)
        self.steps = QSpinBox()
        self.steps.setRange(*settings.STEPS_RANGE)
        self.solver = QComboBox()
        self.solver.addItems(SOLVERS)
        self.precision = QComboBox()
        self.precision.addItems(settings.PRECISIONS)
        self.precision_note = QLabel(
            "faithful: the model's own graphs, exactly the reference (fp32 on the CPU, fp16 on CUDA). "
            "fast: the int8 denoiser, about 2.5x faster on the CPU with a small loss of accuracy "
            "(on CUDA the fp16 graphs run)."
        )
        self.precision_note.setWordWrap(True)
        self.fast_preset = QPushButton("Use the fast preset")
        self.fast_preset.setToolTip(
            "{precision}, {solver}, {steps} steps: the recommended quick setting for the CPU".format(
                **settings.FAST_PRESET
            )
        )
        self.fast_preset.clicked.connect(self.use_fast_preset)
        self.max_area = QDoubleSpinBox()
        self.max_area.setRange(0, 1e6)
        self.max_area.setDecimals(1)
        self.max_area.setSuffix(" km²")
        self.max_area.setSpecialValueText("no limit")
        self.model_note = QLabel()
        self.model_note.setWordWrap(True)
        self.usage_note = QLabel()  # which model and precision the algorithms will use
        self.usage_note.setWordWrap(True)
        providers = dependencies.execution_providers(usable=PROVIDERS.values())
        self.providers_note = QLabel(
            "ONNX Runtime can use: " + (", ".join(providers) if providers else "nothing (onnxruntime is missing)")
        )
        self.providers_note.setWordWrap(True)

        form = QFormLayout()
        # Rows without a label get an empty QLabel, not "": with "", QFormLayout gave each
        # word-wrapped note twice its height (a blank gap around it on the page).
        form.addRow(settings.LABELS["model"], self.model)
        form.addRow(settings.LABELS["model_dir"], self.model_dir)
        form.addRow(QLabel(), self.model_note)
        form.addRow("Device", self.device)
        form.addRow(QLabel(), self.providers_note)
        form.addRow("Default steps", self.steps)
        form.addRow("Default solver", self.solver)
        form.addRow("Precision", self.precision)
        form.addRow(QLabel(), self.precision_note)
        form.addRow(QLabel(), self.fast_preset)
        form.addRow(settings.LABELS["max_area_km2"], self.max_area)
        form.addRow("Will be used", self.usage_note)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        if show_dependencies is not None:
            packages = QPushButton("Python packages…")
            packages.clicked.connect(show_dependencies)
            layout.addWidget(packages)
        layout.addStretch(1)
        self.load()
        # The summary follows the form (the fast preset, a new device), not only what is stored.
        self.device.currentTextChanged.connect(self.refresh_usage)
        self.precision.currentTextChanged.connect(self.refresh_usage)

    def load(self):
        forced = settings.model_root_from_environment()
        self.model_dir.setFilePath(str(settings.model_root()) if forced else settings.configured_model_root())
        self.model_dir.setEnabled(forced is None)
        if forced is not None:
            self.model_note.setText(f"Set by the environment variable {settings.MODEL_DIR_ENV}.")
        else:
            self.model_note.setText(
                f"Empty: the per-user default, {default_model_root()}. "
                "Processing > COP-GEN-Beta > Install model installs models there."
            )
        self.model.setCurrentText(settings.model_name())
        self.device.setCurrentText(settings.device())
        self.steps.setValue(settings.default_steps())
        self.solver.setCurrentText(settings.default_solver())
        self.precision.setCurrentText(settings.precision())
        self.max_area.setValue(settings.max_area_km2() or 0.0)
        self.refresh_usage()

    def refresh_usage(self):
        self.usage_note.setText(usage_summary(self.device.currentText(), self.precision.currentText()))

    def apply(self):
        if settings.model_root_from_environment() is None:
            settings.set_model_root(self.model_dir.filePath())
        if self.model.currentText():
            settings.set_model_name(self.model.currentText())
        settings.set_device(self.device.currentText())
        settings.set_default_steps(self.steps.value())
        settings.set_default_solver(self.solver.currentText())
        settings.set_precision(self.precision.currentText())
        settings.set_max_area_km2(self.max_area.value())


    def use_fast_preset(self):
        """Fill the precision, solver and steps of the fast preset; apply() stores them."""
        preset = settings.FAST_PRESET
        self.precision.setCurrentText(preset["precision"])
        self.solver.setCurrentText(preset["solver"])
        self.steps.setValue(preset["steps"])


def usage_summary(device=None, precision=None):
    """Which model folder and precision the algorithms will use with ``device`` and ``precision``
    (default: as stored), in the words of the engine's one policy (plugin.engine.precision.resolve)."""
    folder = settings.model_dir()
    if settings.model_problem():  # the one rule for "installed"; this page words it its own way
        return f'No model is installed in {folder}: run Raster > COP-GEN-Beta > Install model… first.'
    precision = precision or settings.precision()
    try:
        plan = resolve(folder, device or settings.device(), precision)
    except CopGenError as exc:
        return f"{folder} cannot be used: {exc.message}"
    except ImportError:  # onnxruntime is not installed yet (see Install dependencies)
        return f"{folder}, precision {precision}: install the dependencies to use it."
    notes = "".join(f" ({note})" for note in plan.notes)
    return f"{folder} ({plan.describe()} files), precision {precision}, on {plan.device}{notes}."


class OptionsPage(QgsOptionsPageWidget):
    def __init__(self, parent=None, show_dependencies=None):
        super().__init__(parent)
        self.setObjectName(PAGE_NAME)
        self.form = SettingsWidget(self, show_dependencies)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.form)

    def apply(self):
        try:
            self.form.apply()
        except CopGenError as exc:  # e.g. a typed model folder that is a file
            QMessageBox.warning(self, PAGE_TITLE, str(exc))


class OptionsFactory(QgsOptionsWidgetFactory):
    """Registered with iface.registerOptionsWidgetFactory for the plugin's lifetime."""

    def __init__(self, show_dependencies=None):
        super().__init__(PAGE_TITLE, plugin_icon())
        self.show_dependencies = show_dependencies

    def createWidget(self, parent):  # noqa: N802 (QGIS's name)
        return OptionsPage(parent, self.show_dependencies)


def show_settings(iface):
    """Open QGIS's Options dialog on this plugin's page."""
    iface.showOptionsDialog(iface.mainWindow(), currentPage=PAGE_NAME)


def _model_names():
    """The registry's model names ([] when the registry cannot be read: Check installation says why)."""
    from ..engine.errors import CopGenError
    from ..engine.manager import ModelManager

    try:
        return ModelManager(settings.model_root()).names()
    except CopGenError:
        return []
