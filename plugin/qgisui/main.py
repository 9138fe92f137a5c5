"""The plugin object QGIS creates through ``classFactory``.

Loading never stops half-way: the provider registers even when Python packages are missing
(listing only "Check installation", which names them), and the desktop offers to install them.
"""

from qgis.core import Qgis, QgsApplication
from qgis.PyQt import sip
from qgis.PyQt.QtWidgets import QAction, QPushButton

from .. import dependencies
from .dependencies_dialog import DependenciesDialog, deps_folder, missing_summary
from .dialogs import close_open_dialogs, open_algorithm_dialog
from .first_run import INSTALL_MODEL_ALGORITHM
from .layer_actions import CHECK_INSTALLATION_ALGORITHM, LayerActions, open_generate_dialog
from .provider import CopGenProvider
from .resources import plugin_icon
from .settings_dialog import OptionsFactory, show_settings

MENU = "&COP-GEN-Beta"


class CopGenPlugin:
    def __init__(self, iface):
        self.iface = iface
        self.provider = None
        self.layer_actions = None
        self.options_factory = None
        self.menu_actions = []
        self.dependencies_dialog = None
        self.missing_message = None  # the message-bar warning with its Install button
        # Before anything imports them: packages the plugin installed win over older copies.
        dependencies.activate(deps_folder())

    def initProcessing(self):  # noqa: N802 (QGIS's name)
        # qgis_process calls this alone (no GUI); the desktop calls it through initGui.
        if self.provider is None:
            self.provider = CopGenProvider()
            QgsApplication.processingRegistry().addProvider(self.provider)

    def initGui(self):  # noqa: N802
        self.initProcessing()
        self.layer_actions = LayerActions(self.iface)
        self.layer_actions.install()
        self.options_factory = OptionsFactory(self.show_dependencies)
        self.iface.registerOptionsWidgetFactory(self.options_factory)
        self._add_menu_action("Generate…", self.open_generate)
        self._add_menu_action("Install model…", lambda: self.open_algorithm(INSTALL_MODEL_ALGORITHM))
        self._add_menu_action("Check installation…", lambda: self.open_algorithm(CHECK_INSTALLATION_ALGORITHM))
        self._add_menu_action("Settings…", lambda: show_settings(self.iface))
        self._add_menu_action("Python packages…", self.show_dependencies)
        self.report_missing_packages()

    def unload(self):
        self.withdraw_missing_message()
        close_open_dialogs()
        for action in self.menu_actions:
            self.iface.removePluginRasterMenu(MENU, action)
            action.deleteLater()
        self.menu_actions = []
        if self.options_factory is not None:
            self.iface.unregisterOptionsWidgetFactory(self.options_factory)
            self.options_factory = None
        if self.layer_actions is not None:
            self.layer_actions.unload()
            self.layer_actions = None
        if self.dependencies_dialog is not None:
            self.dependencies_dialog.reject()
            self.dependencies_dialog.deleteLater()
            self.dependencies_dialog = None
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None

    def _add_menu_action(self, text, slot):
        action = QAction(plugin_icon(), text)
        action.triggered.connect(slot)
        self.iface.addPluginToRasterMenu(MENU, action)
        self.menu_actions.append(action)

    def open_generate(self):
        if open_generate_dialog() is None:
            self.say_packages_missing()

    def open_algorithm(self, algorithm_id):
        if open_algorithm_dialog(algorithm_id) is None:
            self.say_packages_missing()

    def say_packages_missing(self):
        # The provider holds only "Check installation" while packages are missing.
        self.iface.messageBar().pushWarning(
            "COP-GEN-Beta", "this needs the missing Python packages: Raster > COP-GEN-Beta > Python packages…"
        )

    def report_missing_packages(self):
        """A message-bar warning with an Install button when packages are missing."""
        statuses = dependencies.check()
        if all(status.ok for status in statuses):
            return
        bar = self.iface.messageBar()
        message = bar.createMessage("COP-GEN-Beta", missing_summary(statuses) + ".")
        button = QPushButton("Install…")
        button.clicked.connect(self.show_dependencies)
        message.layout().addWidget(button)
        bar.pushWidget(message, Qgis.MessageLevel.Warning)
        self.missing_message = (message, button)

    def withdraw_missing_message(self):
        """Remove the warning, and its button's link to this plugin, from the message bar."""
        if self.missing_message is None:
            return
        message, button = self.missing_message
        self.missing_message = None
        if sip.isdeleted(message):  # the user closed it
            return
        button.clicked.disconnect(self.show_dependencies)
        self.iface.messageBar().popWidget(message)

    def show_dependencies(self):
        if self.dependencies_dialog is None:
            self.dependencies_dialog = DependenciesDialog(parent=self.iface.mainWindow())
            self.dependencies_dialog.installed.connect(self.packages_installed)
        self.dependencies_dialog.refresh()
        self.dependencies_dialog.show()
        self.dependencies_dialog.raise_()

    def packages_installed(self):
        # While packages are missing the provider lists only "Check installation"; reloading its
        # algorithms now lists them all.
        if self.provider is not None:
            self.provider.refreshAlgorithms()
        self.withdraw_missing_message()
        self.iface.messageBar().pushSuccess("COP-GEN-Beta", "Python packages installed.")
