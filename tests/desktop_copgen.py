"""COP-GEN's entry points in a real QGIS desktop, driven as a user drives them.

    python tests/desktop_copgen.py --work DIR --model-dir DIR --report FILE [--screenshot PNG]

As tests/desktop_entry_points.py (whose profile set-up, dialog finding and step driver this
reuses), with the plugin's "Model" setting on a COP-GEN model folder: Raster > COP-GEN-Beta >
Generate… (trigger, collect garbage, fill, click Run), then the layer tree's "Generate from this
layer…" on the real 12-band Sentinel-2 L2A tile. What each dialog was, what it held, its log,
the files written and the layers loaded go to the JSON report (tests/test_qgis_copgen.py checks
it). With ``--screenshot`` the main window, showing the menu run's land cover with its legend
and the other layers, is saved there (scripts/screenshot_copgen.py: the README's picture).
"""

import gc
import json
import os
import shutil
import sys
from pathlib import Path

JOB_ENV = "COPGEN_DESKTOP_COPGEN_JOB"
TILE = "282D_485L_3_3.tif"
# "Modalities to generate" of the menu run: S1, DEM, land cover, cloud mask, the 10 m L1C group
# and location (network order indexes, as the dialog's check boxes give them)
MENU_GENERATE = [0, 1, 2, 3, 5, 7]


# --- outside QGIS ----------------------------------------------------------------------------------


def main(argv=None):
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", required=True, help="an empty folder for everything the run writes")
    parser.add_argument("--model-dir", required=True, help="a converted (tiny) COP-GEN model folder")
    parser.add_argument("--report", required=True)
    parser.add_argument("--screenshot", help="save the main window after the menu's run here (PNG)")
    parser.add_argument("--timeout", type=int, default=400)
    args = parser.parse_args(argv)
    tests = Path(__file__).resolve().parent
    sys.path.insert(0, str(tests))
    import desktop_entry_points as tour

    repo = tests.parent
    work = Path(args.work).resolve()
    home = tour.install_profile(repo, work, args.model_dir)
    data = work / "data"
    data.mkdir()
    tile = shutil.copyfile(repo.parent / "shared" / "data" / "majortom_s2l2a" / TILE, data / TILE)
    job = {"report": str(Path(args.report).resolve()), "tile": str(tile), "out": str(work / "out"),
           "tests_dir": str(tests), "screenshot": str(Path(args.screenshot).resolve()) if args.screenshot else None}
    return tour.run_in_qgis(Path(__file__), JOB_ENV, job, work, home, args.timeout, args.report)


# --- inside QGIS -------------------------------------------------------------------------------------


def tour_class(base, helpers):
    """The tour, on desktop_entry_points' EntryPointTour (``base``) and its ``helpers`` module."""

    class CopGenTour(base):
        def __init__(self, job):
            super().__init__(job)
            self.folders = {}
            self.steps = [self.load_tile, self.menu_generate, self.look_at_layers, self.layer_action]
            if job.get("screenshot"):
                self.steps.append(self.screenshot)

        def load_tile(self):
            from qgis.core import QgsApplication, QgsProject, QgsRasterLayer

            QgsApplication.messageLog().messageReceived.connect(self.record_python_errors)
            self.tile = QgsRasterLayer(self.job["tile"], Path(self.job["tile"]).stem)
            QgsProject.instance().addMapLayer(self.tile)

        def dialog_facts(self, dialog):
            """The dialog's algorithm and what its panel holds (nothing where a required value
            is still empty, as in a dialog opened without a layer)."""
            from processing.gui.AlgorithmDialogBase import AlgorithmDialogBase

            try:
                values = dialog.createProcessingParameters()
            except AlgorithmDialogBase.InvalidParameterValue:
                values = {}
            wanted = ("S2L2A", "S2L1C", "GENERATE", "MODEL", "S2_L2A")
            return {"algorithm": dialog.algorithm().id(),
                    "parameters": {key: value for key, value in values.items() if key in wanted}}

        def menu_generate(self):
            before = helpers.windows()
            self.plugin_action("Generate").trigger()
            (dialog,) = helpers.new_dialogs(before)  # after a garbage collection
            self.check("menu_dialog", self.dialog_facts(dialog))
            folder = self.folders["menu"] = Path(self.job["out"]) / "menu"
            parameters = {"S2L2A": self.tile.id(), "GENERATE": MENU_GENERATE, "STEPS": 2, "SEED": 5,
                          "DATE": "2021-07-15", "OUTPUT_FOLDER": str(folder)}
            self.run(dialog, parameters, "menu_run", lambda: helpers.tif_names(folder))

        def look_at_layers(self):
            from qgis.core import QgsProject

            layers = [layer for layer in QgsProject.instance().mapLayers().values() if layer.customProperty("copgen_beta/modality")]
            self.check("layers", sorted((layer.customProperty("copgen_beta/modality"), type(layer.renderer()).__name__
                                         if hasattr(layer, "renderer") and layer.renderer() else "") for layer in layers))

        def layer_action(self):
            from qgis.utils import iface, plugins

            gc.collect()
            before = helpers.windows()
            iface.layerTreeView().setCurrentLayer(self.tile)  # as a right-click does
            plugins[helpers.PLUGIN_NAME].layer_actions.action.trigger()
            (dialog,) = helpers.new_dialogs(before)
            facts = self.dialog_facts(dialog)
            facts["bar"] = [item.text() for item in dialog.messageBar().items()]
            self.check("layer_dialog", facts)
            folder = self.folders["layer"] = Path(self.job["out"]) / "layer"
            self.run(dialog, {"STEPS": 2, "OUTPUT_FOLDER": str(folder)}, "layer_run", lambda: helpers.tif_names(folder))

        def screenshot(self):
            """The menu run's layers: land cover on the map over the real tile, its legend open;
            the group says the weights are random test weights."""
            from qgis.core import QgsProject
            from qgis.utils import iface

            root = QgsProject.instance().layerTreeRoot()
            menu_run = f"{Path(self.job['tile']).stem}_seed5"
            for group in [node for node in root.children() if node.name().startswith(Path(self.job["tile"]).stem)]:
                if group.name() != menu_run:  # the layer action's run: out of the picture
                    group.setItemVisibilityChecked(False)
                    group.setExpanded(False)
                    continue
                group.setName(f"Random test weights, not a result: {group.name()}")
                for node in group.findLayers():
                    key = node.layer().customProperty("copgen_beta/modality")
                    node.setItemVisibilityChecked(key in ("LULC_LULC", "windows"))
                    node.setExpanded(key == "LULC_LULC")
            root.findLayer(self.tile.id()).setExpanded(False)
            from qgis.PyQt.QtWidgets import QDockWidget

            from qgis.PyQt.QtCore import Qt

            for dock in iface.mainWindow().findChildren(QDockWidget):  # the Layers panel alone on the left
                if dock.objectName() != "Layers" and dock.isVisible():
                    dock.hide()
                elif dock.objectName() == "Layers":
                    iface.mainWindow().resizeDocks([dock], [430], Qt.Orientation.Horizontal)
            from qgis.PyQt.QtWidgets import QApplication

            QApplication.processEvents()
            canvas = iface.mapCanvas()
            canvas.setExtent(self.tile.extent())
            canvas.refresh()
            canvas.waitWhileRendering()
            path = Path(self.job["screenshot"])
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_suffix(".part.png")
            if not iface.mainWindow().grab().save(str(partial), "PNG"):
                raise RuntimeError(f"could not save {partial}")
            os.replace(partial, path)
            self.check("screenshot", str(path))

        def finish(self):
            self.check("written", {name: sorted(p.name for p in folder.glob("*")) if folder.is_dir() else []
                                   for name, folder in self.folders.items()})
            super().finish()

    return CopGenTour


if __name__ == "__main__":
    if os.environ.get(JOB_ENV) and "qgis.utils" in sys.modules:
        _job = json.loads(Path(os.environ[JOB_ENV]).read_text(encoding="utf-8"))
        sys.path.insert(0, _job["tests_dir"])
        import desktop_entry_points as _helpers

        _tour = tour_class(_helpers.EntryPointTour, _helpers)(_job)
        _tour.start()  # kept referenced for the Qt timers
    else:
        sys.exit(main())
