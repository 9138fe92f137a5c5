"""The first run: where no model is installed yet, the dialogs that need one say so before any
work, with a button that opens Install model."""

from qgis.core import Qgis
from qgis.PyQt.QtWidgets import QPushButton

from . import settings
from .dialogs import open_algorithm_dialog

INSTALL_MODEL_ALGORITHM = "copgen:installmodel"


def offer_model_install(bar, owner):
    """When no model is installed: a warning in ``bar`` with a button opening Install model
    (the button lives as long as ``owner``). Returns the button, or None when a model is there."""
    if settings.model_problem() is None:
        return None
    message = bar.createMessage("No model yet", f"generating needs a model; none is installed in {settings.model_dir()}.")
    button = QPushButton("Install model…", owner)
    button.clicked.connect(lambda: open_algorithm_dialog(INSTALL_MODEL_ALGORITHM))
    message.layout().addWidget(button)
    bar.pushWidget(message, Qgis.MessageLevel.Warning)
    return button
