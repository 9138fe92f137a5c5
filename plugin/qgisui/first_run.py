"""The first run: where no model is installed yet, the dialogs that need one say so before any
work, with a button that opens Install model."""

from qgis.core import Qgis
from qgis.PyQt.QtWidgets import QPushButton

from . import settings
from .dialogs import open_algorithm_dialog

INSTALL_MODEL_ALGORITHM = "copgen:installmodel"
OFFER_TITLE = "No model yet"


def offer_model_install(bar, owner):
    """When no model is installed: a warning in ``bar`` with a button opening Install model
    (the button lives as long as ``owner``). Returns the button, or None when a model is there."""
    if settings.model_problem() is None:
        return None
    # One short line: the bar shows it in one line's height, so a long folder path was cut (the
    # folder is in the tooltip, and Install model installs into it).
    message = bar.createMessage(OFFER_TITLE, "generating needs a model; none is installed yet.")
    message.setToolTip(f"Model folder: {settings.model_dir()}")
    button = QPushButton("Install model…", owner)
    button.clicked.connect(lambda: open_algorithm_dialog(INSTALL_MODEL_ALGORITHM))
    message.layout().addWidget(button)
    bar.pushWidget(message, Qgis.MessageLevel.Warning)
    return button


def push_below_offer(dialog, title, text, level):
    """Push a message into ``dialog``'s bar, keeping its "no model" offer on top: the bar shows
    the latest message only ("1 more" for the others), and the offer is what must be seen."""
    bar = dialog.messageBar()
    offer = next((item for item in bar.items() if item.title() == OFFER_TITLE), None)
    bar.pushMessage(title, text, level, 0)
    if offer is not None:
        bar.popWidget(offer)  # deletes it (and its button): a fresh one goes on top
        offer_model_install(bar, dialog)
