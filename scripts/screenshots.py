#!/usr/bin/env python3
"""Screenshots of the plugin in a real QGIS window, and checks of its desktop integration.

    python scripts/screenshots.py [--out docs/screenshots] [--model-dir DIR] [--report FILE]

Installs the plugin with build.py into a throwaway profile, then runs QGIS under Xvfb with this
same file as its startup script (``qgis --code``). Inside QGIS it loads the real Sentinel-2 L2A
tile and a vector layer, checks the "COP-GEN-Beta > Generate from this layer…" context action
(present for the raster, absent for the vector, still single after plugin reloads), opens the
Generate dialog through it, presses Run (a background task; a UI timer counts event-loop turns
meanwhile), checks the loaded layers, opens the options page, unloads the plugin, and writes:

    generate_dialog.png  the Generate dialog as the context action opens it
    map_generated.png    the real input tile on the map; the generated layers in their run's group
    settings.png         the plugin's page of Settings > Options (which model and precision run)
    first_run.png        Raster > COP-GEN-Beta > Generate… with no model installed: the dialog
                         says so before any work and offers Install model

The generation uses the tiny random-weight test model (``--model-dir``, default: the test
fixtures converted on the fly), so its layers are a layout demo, not model output: they stay
unticked, and their group says so. The observations go to ``--report`` (JSON), which
tests/test_qgis_gui.py checks; the exit code is 0 when every step ran without an error.
"""

import argparse
import configparser
import json
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time
import traceback
from pathlib import Path

PLUGIN_NAME = "copgen_beta"
JOB_ENV = "COPGEN_SCREENSHOTS_JOB"  # set for the QGIS child: the job file it works from
SCREEN = "1600x1000x24"


def repository():
    # Only outside QGIS: `qgis --code` runs this file without __file__ (the job file says the rest).
    return Path(__file__).resolve().parents[1]


# --- outside QGIS: set up a profile and run QGIS under Xvfb ----------------------------------------


def deps_folder(profile):
    from plugin.dependencies import deps_folder

    return deps_folder(profile)


def convert_tiny_model(folder):
    from plugin.engine.convert import convert

    fixtures = repository().parent / "shared" / "fixtures" / "copgen_beta_reference"
    return convert(fixtures / "denoiser_tiny.pth", fixtures / "vae_tiny.pth", Path(folder) / "model", heads=2)


def qgis_environment(home, job_file):
    runtime_dir = home / "xdg-runtime"
    runtime_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    env = {key: value for key, value in os.environ.items() if key not in ("QT_QPA_PLATFORM", "DISPLAY")}
    env.update(
        HOME=str(home),
        XDG_RUNTIME_DIR=str(runtime_dir),
        XDG_DATA_HOME=str(home / ".local" / "share"),
        XDG_CONFIG_HOME=str(home / ".config"),
        # QGIS embeds the system Python: let it see this interpreter's packages (onnxruntime...).
        PYTHONPATH=os.pathsep.join(filter(None, [sysconfig.get_paths()["purelib"], os.environ.get("PYTHONPATH")])),
    )
    env[JOB_ENV] = str(job_file)
    return env


def use_model_folder(profile, model_dir):
    """Set the plugin's model folder setting in the profile, as the options page would."""
    ini_path = profile / "QGIS" / "QGIS3.ini"
    ini = configparser.RawConfigParser(strict=False)
    ini.optionxform = str  # QGIS keys are case-sensitive
    ini.read(ini_path, encoding="utf-8")
    if not ini.has_section("copgen_beta"):
        ini.add_section("copgen_beta")
    ini.set("copgen_beta", "model_dir", str(model_dir))
    with open(ini_path, "w", encoding="utf-8") as handle:
        ini.write(handle, space_around_delimiters=False)


def run_with_deadline(command, env, timeout, report_file):
    """Run command in its own process group; on timeout kill the whole group (xvfb-run leaves
    Xvfb and QGIS behind otherwise, e.g. when a modal dialog blocks QGIS) and show how far the
    report got. Returns the output."""
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    try:
        return process.communicate(timeout=timeout)[0]
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output = process.communicate()[0]
        progress = Path(report_file).read_text(encoding="utf-8") if Path(report_file).is_file() else "no report"
        raise SystemExit(f"QGIS did not finish within {timeout} s; report so far:\n{progress}\noutput:\n{output[-4000:]}") from None


def run_qgis(out_dir, model_dir, report_file, timeout):
    with tempfile.TemporaryDirectory(prefix="copgen-screenshots-") as scratch:
        home = Path(scratch) / "home"
        profile = home / ".local" / "share" / "QGIS" / "QGIS3" / "profiles" / "default"
        subprocess.run(
            [sys.executable, str(repository() / "build.py"), "install", "--profile", str(profile)],
            check=True, capture_output=True, text=True,
        )
        if model_dir is None:
            model_dir = convert_tiny_model(scratch)
        use_model_folder(profile, model_dir)
        # As after an install from the Python packages dialog: the plugin must put it on sys.path.
        deps_folder(profile).mkdir(parents=True)
        # A copy: QGIS may write statistics (.aux.xml) beside the files it opens.
        input_tile = Path(scratch) / "282D_485L_3_3.tif"
        shutil.copyfile(repository().parent / "shared" / "data" / "majortom_s2l2a" / input_tile.name, input_tile)
        job_file = Path(scratch) / "job.json"
        job = {
            "out_dir": str(out_dir),
            "report": str(report_file),
            "input_tile": str(input_tile),
            "generated_dir": str(Path(scratch) / "generated"),
        }
        job_file.write_text(json.dumps(job), encoding="utf-8")
        command = [
            "xvfb-run", "-a", "-s", f"-screen 0 {SCREEN}",
            "qgis.bin", "--nologo", "--noversioncheck", "--code", str(Path(__file__).resolve()),
        ]
        started = time.monotonic()
        output = run_with_deadline(command, qgis_environment(home, job_file), timeout, report_file)
        print(f"QGIS ran {time.monotonic() - started:.1f} s", file=sys.stderr)
        if not Path(report_file).is_file():
            raise SystemExit(f"QGIS wrote no report; its output:\n{output[-4000:]}")
    return json.loads(Path(report_file).read_text(encoding="utf-8"))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(repository() / "docs" / "screenshots"), help="folder for the PNGs")
    parser.add_argument("--model-dir", default=None, help="converted model folder (default: tiny test model)")
    parser.add_argument("--report", default=None, help="also keep the JSON report of the checks in this file")
    parser.add_argument("--timeout", type=int, default=300, help="seconds QGIS may run")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(repository()))  # the plugin package, for its helpers
    out_dir = Path(args.out).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="copgen-report-") as scratch:
        report_file = Path(args.report).resolve() if args.report else Path(scratch) / "report.json"
        report_file.unlink(missing_ok=True)
        report = run_qgis(out_dir, args.model_dir, report_file, args.timeout)
    print(json.dumps(report, indent=2))
    return 0 if report["ok"] else 1


# --- inside QGIS: the startup script ----------------------------------------------------------------


class DesktopTour:
    """Runs its steps one event-loop turn apart (so windows paint), records checks, then quits.
    The report is rewritten after every step, so a run that hangs still shows how far it got."""

    def __init__(self, job):
        self.job = job
        self.out_dir = Path(job["out_dir"])
        self.report = {"checks": {}, "errors": [], "screenshots": [], "ok": False}
        self.waiting_for = None  # a step that starts background work names what it waits for
        self.steps = [
            self.load_layers,
            self.check_context_menus,
            self.reload_plugin_and_check_again,
            self.open_generate_dialog,
            self.capture_generate_dialog,
            self.run_from_dialog,
            self.check_generated_layers,
            self.capture_map,
            self.capture_settings_page,
            self.capture_first_run,
            self.unload_plugin,
        ]

    # helpers

    def check(self, name, value):
        self.report["checks"][name] = value

    def grab(self, widget, name):
        from qgis.PyQt.QtWidgets import QApplication

        for _ in range(5):
            QApplication.processEvents()
        path = self.out_dir / name
        # Write beside the target and rename: a failed grab never leaves a half-written PNG.
        partial = path.with_name(f".{name}.part.png")
        if not widget.grab().save(str(partial), "PNG"):
            raise RuntimeError(f"could not write {path}")
        os.replace(partial, path)
        self.report["screenshots"].append(str(path))

    def context_menu_entries(self, layer):
        """(text, action) under the COP-GEN-Beta submenu of ``layer``'s layer-tree menu."""
        from qgis.utils import iface

        view = iface.layerTreeView()
        view.setCurrentLayer(layer)
        menu = view.menuProvider().createContextMenu()
        entries = []
        for action in menu.actions():
            if action.menu() is not None and action.text().replace("&", "") == "COP-GEN-Beta":
                entries += [(sub.text(), sub) for sub in action.menu().actions()]
        self.menu = menu  # keeps the actions alive until the next call
        return entries

    def menu_texts(self, layer):
        return [text for text, _ in self.context_menu_entries(layer)]

    def write_report(self):
        partial = Path(self.job["report"]).with_suffix(".part")
        partial.write_text(json.dumps(self.report, indent=2, default=str), encoding="utf-8")
        os.replace(partial, self.job["report"])

    # steps

    def load_layers(self):
        from qgis.core import QgsProject, QgsRasterLayer, QgsVectorLayer
        from qgis.PyQt.QtCore import Qt
        from qgis.PyQt.QtWidgets import QDockWidget
        from qgis.utils import iface, plugins

        self.check("plugin_loaded", PLUGIN_NAME in plugins)
        deps = sys.modules[f"{PLUGIN_NAME}.plugin.qgisui.dependencies_dialog"].deps_folder()
        self.check("deps_folder_on_sys_path", deps.is_dir() and str(deps) in sys.path)
        self.raster = QgsRasterLayer(self.job["input_tile"], "S2 L2A input 282D_485L_3_3")
        self.vector = QgsVectorLayer("Polygon?crs=EPSG:32722", "area of interest", "memory")
        QgsProject.instance().addMapLayers([self.raster, self.vector])
        window = iface.mainWindow()
        window.resize(1500, 950)
        docks = {dock.objectName(): dock for dock in window.findChildren(QDockWidget)}
        docks["Browser"].hide()
        window.resizeDocks([docks["Layers"]], [470], Qt.Orientation.Horizontal)

    def check_context_menus(self):
        from qgis.core import QgsProject
        from qgis.utils import iface

        self.check("raster_menu_entries", self.menu_texts(self.raster))
        plugin_menus = [a.menu() for a in iface.rasterMenu().actions() if "COP-GEN" in a.text() and a.menu()]
        self.check("plugin_menu_entries", [a.text() for menu in plugin_menus for a in menu.actions()])
        self.check("vector_menu_entries", self.menu_texts(self.vector))
        QgsProject.instance().removeMapLayer(self.vector.id())

    def reload_plugin_and_check_again(self):
        from qgis.utils import reloadPlugin

        reloadPlugin(PLUGIN_NAME)
        reloadPlugin(PLUGIN_NAME)
        self.check("raster_menu_entries_after_reload", self.menu_texts(self.raster))

    def open_generate_dialog(self):
        generate = [action for text, action in self.context_menu_entries(self.raster) if text.startswith("Generate")]
        generate[0].trigger()
        self.dialog = sys.modules[f"{PLUGIN_NAME}.plugin.qgisui.dialogs"].open_dialogs()[-1]
        self.check("dialog_algorithm", self.dialog.algorithm().id() if self.dialog is not None else None)

    def capture_generate_dialog(self):
        from qgis.PyQt.QtWidgets import QScrollArea

        self.dialog.resize(1000, 900)
        panel = self.dialog.mainWidget()
        values = panel.createProcessingParameters()
        layer = values.get("S2_L2A")
        self.check(
            "dialog_parameters",
            {
                "S2_L2A": layer.id() if hasattr(layer, "id") else layer,
                **{name: values.get(name) for name in ("S2_L2A_RED", "S2_L2A_GREEN", "S2_L2A_BLUE")},
                "S2_L2A_SOURCE": values.get("S2_L2A_SOURCE"),
                "GENERATE": values.get("GENERATE"),
                "raster_id": self.raster.id(),
            },
        )
        # Scroll to the preset condition, so the picture shows what the action filled in.
        wrapper = panel.wrappers["S2_L2A"]
        self.dialog.findChild(QScrollArea).ensureWidgetVisible(wrapper.wrappedWidget(), 0, 40)
        self.grab(self.dialog, "generate_dialog.png")

    def run_from_dialog(self):
        """Press Run: the dialog runs the algorithm as a background task, then loads the outputs
        through Processing's post-processing (our layer post-processors included). A UI timer
        counts the event-loop turns meanwhile."""
        from qgis.core import QgsProject
        from qgis.PyQt.QtCore import QTimer

        self.layers_before = set(QgsProject.instance().mapLayers())
        self.ui_ticks = 0
        self.ticker = QTimer()
        self.ticker.timeout.connect(self.count_tick)
        self.ticker.start(10)
        self.dialog.algorithmFinished.connect(self.dialog_finished)
        self.dialog.setParameters({"STEPS": 3, "SEED": 7, "OUTPUT_FOLDER": self.job["generated_dir"]})
        self.waiting_for = "the Generate dialog's run"
        self.dialog.runAlgorithm()

    def count_tick(self):
        self.ui_ticks += 1

    def dialog_finished(self, successful, results):
        self.ticker.stop()
        self.check("dialog_run_successful", successful)
        self.check("ui_ticks_during_dialog_run", self.ui_ticks)
        self.check("generated_files", sorted(Path(p).name for p in results.get("OUTPUT_FILES", [])))
        self.waiting_for = None

    def check_generated_layers(self):
        from qgis.core import QgsLayerTree, QgsProject

        project = QgsProject.instance()
        added = [project.mapLayer(i) for i in set(project.mapLayers()) - self.layers_before]
        groups = [child for child in project.layerTreeRoot().children() if QgsLayerTree.isGroup(child)]
        self.check(
            "generated_layers",
            sorted(
                (layer.name(), layer.renderer().type(), layer.customProperty("copgen_beta/modality"), layer.metadata().history())
                for layer in added
            ),
        )
        self.check("groups", [(group.name(), [node.name() for node in group.children()]) for group in groups])
        for group in groups:
            group.setName(f"Random test weights, not a result: {group.name()}")
            for node in group.findLayers():
                node.setItemVisibilityChecked(False)
                node.setExpanded(False)
            group.setExpanded(True)

    def capture_map(self):
        from qgis.core import Qgis, QgsContrastEnhancement, QgsMultiBandColorRenderer, QgsProject
        from qgis.utils import iface

        # The real input tile in true colour (B04, B03, B02), as a user would style it.
        renderer = QgsMultiBandColorRenderer(self.raster.dataProvider(), 4, 3, 2)
        min_max = QgsContrastEnhancement.ContrastEnhancementAlgorithm.StretchToMinimumMaximum
        for setter in (renderer.setRedContrastEnhancement, renderer.setGreenContrastEnhancement, renderer.setBlueContrastEnhancement):
            stretch = QgsContrastEnhancement(Qgis.DataType.Int16)
            stretch.setMinimumValue(0)
            stretch.setMaximumValue(2500)
            stretch.setContrastEnhancementAlgorithm(min_max)
            setter(stretch)
        self.raster.setRenderer(renderer)
        QgsProject.instance().layerTreeRoot().findLayer(self.raster.id()).setExpanded(False)
        iface.layerTreeView().setCurrentLayer(self.raster)
        canvas = iface.mapCanvas()
        canvas.setExtent(self.raster.extent())
        canvas.refresh()
        canvas.waitWhileRendering()
        self.grab(iface.mainWindow(), "map_generated.png")

    def capture_settings_page(self):
        from qgis.PyQt.QtCore import QTimer
        from qgis.PyQt.QtWidgets import QApplication, QDialog, QWidget
        from qgis.utils import plugins

        def grab_and_close():
            dialogs = [w for w in QApplication.topLevelWidgets() if isinstance(w, QDialog) and w.isVisible()]
            options = [d for d in dialogs if d.findChild(QWidget, "copgenBetaOptions") is not None]
            self.check("options_page_found", bool(options))
            if options:
                options[0].resize(1000, 560)
                self.grab(options[0], "settings.png")
            for dialog in dialogs:
                dialog.reject()

        QTimer.singleShot(1500, grab_and_close)
        settings_action = [a for a in plugins[PLUGIN_NAME].menu_actions if a.text().startswith("Settings")]
        settings_action[0].trigger()  # runs the Options dialog modally until grab_and_close

    def capture_first_run(self):
        """With an empty model folder, Raster > COP-GEN-Beta > Generate…: the dialog's message bar
        says no model is installed, with a button that opens Install model."""
        from qgis.PyQt.QtWidgets import QApplication, QDialog, QPushButton
        from qgis.utils import plugins

        empty = Path(self.job["generated_dir"]).parent / "no-model-yet"
        empty.mkdir(exist_ok=True)
        saved = os.environ.get("COPGEN_MODEL_DIR")
        os.environ["COPGEN_MODEL_DIR"] = str(empty)
        try:
            before = set(QApplication.topLevelWidgets())
            generate = [a for a in plugins[PLUGIN_NAME].menu_actions if a.text().startswith("Generate")]
            generate[0].trigger()
            dialogs = [w for w in set(QApplication.topLevelWidgets()) - before if isinstance(w, QDialog)]
            buttons = [b.text() for d in dialogs for b in d.findChildren(QPushButton) if "Install model" in b.text()]
            self.check("first_run_offer", buttons)
            if dialogs:
                dialogs[0].resize(1000, 700)
                self.grab(dialogs[0], "first_run.png")
            for dialog in dialogs:
                dialog.close()
        finally:
            if saved is None:
                os.environ.pop("COPGEN_MODEL_DIR", None)
            else:
                os.environ["COPGEN_MODEL_DIR"] = saved

    def unload_plugin(self):
        from qgis.core import QgsApplication
        from qgis.utils import iface, plugins

        plugins[PLUGIN_NAME].unload()
        self.check("raster_menu_entries_after_unload", self.menu_texts(self.raster))
        self.check("provider_after_unload", QgsApplication.processingRegistry().providerById("copgen") is not None)
        self.check("raster_menu_after_unload", [a.text() for a in iface.rasterMenu().actions() if "COP-GEN" in a.text()])

    # driver

    def start(self):
        from qgis.PyQt.QtCore import QTimer

        QTimer.singleShot(1000, self.next_step)

    def next_step(self):
        from qgis.PyQt.QtCore import QTimer

        if self.waiting_for is not None:
            if time.monotonic() > self.wait_deadline:
                self.report["errors"].append(f"gave up waiting for {self.waiting_for}")
                self.steps = []
                self.waiting_for = None
            QTimer.singleShot(300, self.next_step)
        elif self.steps:
            step = self.steps.pop(0)
            try:
                step()
            except Exception:
                self.report["errors"].append(f"{step.__name__}: {traceback.format_exc()}")
                self.waiting_for = None
            self.wait_deadline = time.monotonic() + 120
            self.report["done"] = self.report.get("done", []) + [step.__name__]
            self.write_report()
            QTimer.singleShot(300, self.next_step)
        else:
            self.finish()

    def finish(self):
        from qgis.core import QgsApplication, QgsProject

        self.report["ok"] = not self.report["errors"] and bool(self.report["checks"].get("plugin_loaded"))
        self.write_report()
        QgsProject.instance().setDirty(False)
        QgsApplication.exit(0)


def run_inside_qgis():
    job = json.loads(Path(os.environ[JOB_ENV]).read_text(encoding="utf-8"))
    tour = DesktopTour(job)
    tour.start()
    return tour


if __name__ == "__main__":
    if os.environ.get(JOB_ENV) and "qgis.utils" in sys.modules:
        _tour = run_inside_qgis()  # kept referenced for the Qt timers
    else:
        sys.exit(main())
