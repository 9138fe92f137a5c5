"""Steps of the desktop tour (tests/desktop_entry_points.py) for the modeler and dialog layouts.

Each is a method of the tour (``tour``: its job, checks, layers and output folder):

- ``modeler_run``: the graphical model of tests/chain_model.py saved as a .model3 file, opened in
  the Model Designer, run through its Run action (the modal dialog the modeler opens, filled and
  run as a user does); the files and the layers it loaded are recorded.
- ``dialog_layouts``: every algorithm of the copgen provider opened at the size its dialog takes,
  its collapsed groups opened, grabbed as a PNG and checked with tests/dialog_layout.py.
- ``settings_layout``: the same for the plugin's page of Settings > Options.
"""

import time
from pathlib import Path

WAIT_S = 150
# What every Processing dialog keeps of the last one closed: its geometry, Advanced opened or not.
SAVED_STATE = ("Windows/QgsProcessingDialogBase/geometry", "QgsCollapsibleGroupBox/QgsProcessingDialogBase")


def modal_dialog_steps(tour, name, act, deadline_s=WAIT_S):
    """Run ``act(dialog)`` on the modal window that opens next (from a timer inside its event
    loop); ``act`` returns a condition that closes the window once met (or at the deadline)."""
    from qgis.PyQt.QtCore import QTimer
    from qgis.PyQt.QtWidgets import QApplication

    deadline = time.monotonic() + deadline_s

    def start():
        window = QApplication.activeModalWidget()
        if window is None:
            tour.check(name, {"error": "no modal window opened"})
            return
        done = act(window)
        poll(window, done)

    def poll(window, done):
        if done is None or done() or time.monotonic() > deadline:
            window.close()
        else:
            QTimer.singleShot(300, lambda: poll(window, done))

    QTimer.singleShot(1500, start)


def modeler_run(tour):
    from chain_model import OUTPUTS, write_chain_model
    from processing.modeler.ModelerDialog import ModelerDialog
    from qgis.core import QgsProject
    from qgis.gui import QgsProcessingAlgorithmDialogBase

    model_file = write_chain_model(tour.out / "chain.model3")
    folder = tour.out / "modeler"
    designer = ModelerDialog.create()
    designer.loadModel(str(model_file))
    designer.show()
    valid, errors = designer.model().validate()
    tour.check("modeler_model_valid", {"valid": valid, "errors": errors})
    project = QgsProject.instance()
    before = set(project.mapLayers())
    paths = {"dem:dem": str(folder / "dem.tif"), "warp:dem_wgs84": str(folder / "dem_wgs84.tif")}
    assert set(paths) == set(OUTPUTS)

    def run(dialog):
        if not isinstance(dialog, QgsProcessingAlgorithmDialogBase):  # "model is invalid" or an error box
            tour.check("modeler_run", {"done": False, "log": type(dialog).__name__})
            return None
        dialog.setParameters({"tile": tour.layers[0].id(), **paths})
        dialog.runButton().click()

        def finished():
            state = tour.finished_state(dialog)
            if state == "finished":
                from desktop_entry_points import log_text

                tour.check("modeler_run", {"done": "Execution completed" in log_text(dialog), "log": log_text(dialog)})
            return state == "finished"

        return finished

    modal_dialog_steps(tour, "modeler_run", run)
    designer.actionRun().trigger()  # modal: returns once the run's dialog is closed
    added = [project.mapLayer(layer_id) for layer_id in set(project.mapLayers()) - before]
    tour.check("modeler_folder", str(folder))
    tour.check("modeler_files", sorted(path.name for path in folder.glob("*.tif")))
    tour.check("modeler_layers", sorted(
        [layer.name(), Path(layer.source()).name, layer.customProperty("copgen_beta/modality")] for layer in added
    ))
    designer.setDirty(False)
    designer.close()


def grab(widget, path):
    from qgis.PyQt.QtWidgets import QApplication

    for _ in range(5):
        QApplication.processEvents()
    if not widget.grab().save(str(path), "PNG"):
        raise RuntimeError(f"could not write {path}")
    return str(path)


def dialog_layouts(tour):
    """Each copgen algorithm's dialog at the size it opens with (nothing resized)."""
    import processing
    from dialog_layout import processing_dialog_problems
    from qgis.core import QgsApplication, QgsSettings

    screens = Path(tour.job["screens"])
    screens.mkdir(parents=True, exist_ok=True)
    layouts = {}
    for algorithm in QgsApplication.processingRegistry().providerById("copgen").algorithms():
        for key in SAVED_STATE:  # as in a fresh profile, not as the last dialog closed
            QgsSettings().remove(key)
        dialog = processing.createAlgorithmDialog(algorithm.id(), {})
        dialog.show()
        name = algorithm.id().replace(":", "_")
        png = grab(dialog, screens / f"{name}.png")  # once shown and laid out
        layouts[algorithm.id()] = {"size": [dialog.width(), dialog.height()], "png": png}
        layouts[algorithm.id()]["problems"] = processing_dialog_problems(dialog)  # Advanced parameters opened
        layouts[algorithm.id()]["opened_size"] = [dialog.width(), dialog.height()]
        layouts[algorithm.id()]["opened_png"] = grab(dialog, screens / f"{name}_advanced.png")
        dialog.close()
    tour.check("dialog_layouts", layouts)


def settings_layout(tour):
    """The plugin's page of Settings > Options, as its menu entry opens it."""
    from dialog_layout import page_problems
    from qgis.PyQt.QtWidgets import QWidget

    def inspect(dialog):
        page = dialog.findChild(QWidget, "copgenBetaOptions")
        if page is None:
            tour.check("settings_layout", {"error": f"no COP-GEN-Beta page in {type(dialog).__name__}"})
            return None
        tour.check("settings_layout", {
            "size": [dialog.width(), dialog.height()],
            "problems": page_problems(dialog, page),
            "png": grab(dialog, Path(tour.job["screens"]) / "settings.png"),
        })
        return None

    modal_dialog_steps(tour, "settings_layout", inspect)
    tour.plugin_action("Settings").trigger()  # the Options dialog, modal until inspect closes it
