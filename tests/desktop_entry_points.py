"""Every entry point of the plugin's own dialogs, driven in a real QGIS desktop as a user drives it.

    python tests/desktop_entry_points.py --work DIR --model-dir DIR --report FILE

Outside QGIS it installs the plugin with build.py into a throwaway profile under ``--work``
(HOME, XDG folders: all there) and runs ``qgis.bin --code`` on this same file under Xvfb. Inside
QGIS each step triggers a real QAction (Raster > COP-GEN-Beta > ..., the layer tree's
"Generate from this layer…" for two layers, the "no model" bar's Install model… button, the
Model Designer's Run: see tests/desktop_more_steps.py, also for the dialog layouts), then
collects garbage (a dialog the plugin does not keep alive loses its Python side here), finds
the new dialog among the windows, fills it through its own panel and clicks its Run button.
What the run did (files written, its log) goes to the JSON report, which
tests/test_qgis_entry_points.py checks.
"""

import gc
import importlib.util
import json
import os
import shutil
import sys
import time
import traceback
import types
from pathlib import Path

JOB_ENV = "COPGEN_ENTRY_POINTS_JOB"
PLUGIN_NAME = "copgen_beta"
TILE = "282D_485L_3_3.tif"
WAIT_S = 150  # one step's run: the tiny model generates in seconds


def screenshots_module(repo):
    """scripts/screenshots.py: its profile set-up and its bounded QGIS run are reused here."""
    spec = importlib.util.spec_from_file_location("copgen_screenshots", repo / "scripts" / "screenshots.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --- outside QGIS ----------------------------------------------------------------------------------


def main(argv=None):
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", required=True, help="an empty folder for everything the run writes")
    parser.add_argument("--model-dir", required=True, help="a converted (tiny) model folder")
    parser.add_argument("--report", required=True)
    parser.add_argument("--timeout", type=int, default=500)
    parser.add_argument("--screens", help="folder for the dialogs' PNGs (default: WORK/screens)")
    args = parser.parse_args(argv)
    repo = Path(__file__).resolve().parents[1]
    sys.path.insert(0, str(repo))
    work = Path(args.work).resolve()
    home = install_profile(repo, work, args.model_dir)
    data = work / "data"
    data.mkdir()
    tiles = []
    for name in ("A", "B"):  # two layers, two files: their outputs differ by name
        tiles.append(str(data / f"{name}_{TILE}"))
        shutil.copyfile(repo.parent / "shared" / "data" / "majortom_s2l2a" / TILE, tiles[-1])
    fixtures = repo.parent / "shared" / "fixtures" / "copgen_beta_reference"
    job = {
        "report": str(Path(args.report).resolve()),
        "tiles": tiles,
        "out": str(work / "out"),
        "empty_model_root": str(work / "no-model-yet"),
        "denoiser": str(fixtures / "denoiser_tiny.pth"),
        "vae": str(fixtures / "vae_tiny.pth"),
        "screens": str(Path(args.screens).resolve() if args.screens else work / "screens"),
        "tests_dir": str(Path(__file__).resolve().parent),
    }
    return run_in_qgis(Path(__file__), JOB_ENV, job, work, home, args.timeout, args.report)


def install_profile(repo, work, model_dir):
    """WORK/home with the plugin installed in its default QGIS profile, whose Model folder
    setting names ``model_dir``."""
    import subprocess

    home = work / "home"
    profile = home / ".local" / "share" / "QGIS" / "QGIS3" / "profiles" / "default"
    subprocess.run([sys.executable, str(repo / "build.py"), "install", "--profile", str(profile)],
                   check=True, capture_output=True, text=True)
    screenshots_module(repo).use_model_folder(profile, Path(model_dir).resolve())
    return home


def run_in_qgis(script, job_env, job, work, home, timeout, report):
    """Run ``script`` (a tour) in a QGIS desktop under Xvfb with ``job`` (written to
    WORK/job.json, named by $``job_env``), HOME and TMPDIR inside WORK; 0 once it wrote ``report``."""
    shots = screenshots_module(Path(__file__).resolve().parents[1])
    job_file = work / "job.json"
    job_file.write_text(json.dumps(job), encoding="utf-8")
    env = shots.qgis_environment(home, job_file)
    env.pop(shots.JOB_ENV, None)
    env.pop("COPGEN_MODEL_DIR", None)  # the profile's setting names the model
    env[job_env] = str(job_file)
    env["TMPDIR"] = str(work / "tmp")
    (work / "tmp").mkdir()
    command = ["xvfb-run", "-a", "-s", f"-screen 0 {shots.SCREEN}", "qgis.bin", "--nologo", "--noversioncheck",
               "--code", str(Path(script).resolve())]
    output = shots.run_with_deadline(command, env, timeout, report)
    if not Path(report).is_file():
        raise SystemExit(f"QGIS wrote no report; its output:\n{output[-4000:]}")
    print(output[-4000:])
    return 0


# --- inside QGIS -------------------------------------------------------------------------------------


def windows():
    from qgis.PyQt.QtWidgets import QApplication

    return set(QApplication.topLevelWidgets())


def new_dialogs(before):
    """The Processing dialogs opened since ``before``, after a garbage collection: what a dialog
    nobody keeps becomes when the user gets to click in it."""
    from qgis.gui import QgsProcessingAlgorithmDialogBase
    from qgis.PyQt.QtWidgets import QApplication

    gc.collect()
    QApplication.processEvents()
    gc.collect()
    return [w for w in windows() - before if isinstance(w, QgsProcessingAlgorithmDialogBase) and w.isVisible()]


def log_text(dialog):
    from qgis.PyQt.QtWidgets import QTextEdit

    return "\n".join(edit.toPlainText() for edit in dialog.findChildren(QTextEdit))


def tif_names(folder):
    return sorted(path.name for path in Path(folder).glob("*.tif")) if Path(folder).is_dir() else []


def select_algorithm(tree, algorithm_id):
    """Make ``algorithm_id`` the toolbox tree's current item, as a click on it does."""
    model = tree.model()
    pending = [model.index(row, 0) for row in range(model.rowCount())]
    while pending:
        index = pending.pop()
        algorithm = tree.algorithmForIndex(index)
        if algorithm is not None and algorithm.id() == algorithm_id:
            tree.setCurrentIndex(index)
            return
        pending += [model.index(row, 0, index) for row in range(model.rowCount(index))]


class EntryPointTour:
    """Steps one event-loop turn apart; a step may return a condition to wait for (polled, with
    a deadline), whose outcome it records. The report is rewritten after every step."""

    def __init__(self, job):
        self.job = job
        self.report = {"checks": {}, "errors": [], "python_errors": [], "ok": False}
        self.out = Path(job["out"])
        self.waiting = None
        sys.path.insert(0, job["tests_dir"])  # the modeler and layout steps, and their helpers
        import desktop_more_steps as more

        self.steps = [
            self.load_layers,
            self.menu_check_installation,
            self.toolbox_check_installation,
            self.menu_generate,
            self.layer_action_for_two_layers,
            self.run_second_layer_dialog,
            *(types.MethodType(step, self) for step in (more.modeler_run, more.dialog_layouts, more.settings_layout)),
            self.layer_action_without_model,
            self.no_model_bar_install_button,
            self.menu_install_model,
        ]

    def check(self, name, value):
        self.report["checks"][name] = value

    def plugin_action(self, text):
        from qgis.utils import plugins

        return next(action for action in plugins[PLUGIN_NAME].menu_actions if action.text().startswith(text))

    def record_python_errors(self, message, tag, level):
        from qgis.core import Qgis

        if level == Qgis.MessageLevel.Critical or "error" in tag.lower():
            self.report["python_errors"].append(f"{tag}: {message}")
        elif level == Qgis.MessageLevel.Warning or "warning" in tag.lower():
            self.report.setdefault("log_warnings", []).append(f"{tag}: {message}")

    def run(self, dialog, parameters, name, done):
        """Fill ``dialog`` through its panel, click its Run button, wait for ``done()``; record
        the log under ``name``."""
        dialog.setParameters(parameters)  # AttributeError on a dialog that lost its Python side
        dialog.runButton().click()
        self.wait(name, lambda: done() and "finished" in self.finished_state(dialog), dialog)

    def finished_state(self, dialog):
        from qgis.PyQt import sip

        if sip.isdeleted(dialog):
            return "deleted"
        text = log_text(dialog)
        return "finished" if ("Execution completed" in text or "Execution failed" in text) else "running"

    def wait(self, name, condition, dialog):
        self.waiting = (name, condition, dialog, time.monotonic() + WAIT_S)

    # steps

    def load_layers(self):
        from qgis.core import QgsApplication, QgsProject, QgsRasterLayer
        from qgis.utils import plugins

        QgsApplication.messageLog().messageReceived.connect(self.record_python_errors)
        self.check("plugin_loaded", PLUGIN_NAME in plugins)
        self.layers = [QgsRasterLayer(path, Path(path).stem) for path in self.job["tiles"]]
        QgsProject.instance().addMapLayers(self.layers)

    def menu_check_installation(self):
        before = windows()
        self.plugin_action("Check installation").trigger()
        dialog = new_dialogs(before)[0]
        dialog.runButton().click()
        self.wait("menu_check_installation", lambda: "COP-GEN-Beta plugin" in log_text(dialog), dialog)

    def toolbox_check_installation(self):
        """Double-click in the Processing toolbox. QGIS 3.22 runs an algorithm without parameters
        there without a dialog, through a progress bar it feeds a float (a TypeError on Python
        3.10+, then an error box); Check installation opens its dialog instead, which the
        toolbox runs modally: the clicks happen from a timer inside that modal loop."""
        from qgis.PyQt.QtCore import QTimer
        from qgis.utils import plugins

        tree = plugins["processing"].toolbox.algorithmTree
        tree.setFilterString("Check installation")
        select_algorithm(tree, "copgen:checkinstallation")
        self.check("toolbox_selected", tree.selectedAlgorithm().id() if tree.selectedAlgorithm() else None)
        before = windows()
        deadline = time.monotonic() + WAIT_S

        def click_run():
            dialogs = new_dialogs(before)
            if not dialogs:  # no dialog: whatever is modal now is an error box
                self.check("toolbox_check_installation", {"done": False, "log": ""})
                self.close_modal_window("toolbox_modal")
                return
            dialogs[0].runButton().click()
            wait_for_report(dialogs[0])

        def wait_for_report(dialog):
            if "COP-GEN-Beta plugin" in log_text(dialog) or time.monotonic() > deadline:
                self.check("toolbox_check_installation", {"done": "COP-GEN-Beta plugin" in log_text(dialog), "log": log_text(dialog)})
                dialog.close()  # ends the toolbox's exec_()
            else:
                QTimer.singleShot(300, lambda: wait_for_report(dialog))

        QTimer.singleShot(1500, click_run)
        plugins["processing"].toolbox.executeAlgorithm()

    def close_modal_window(self, name):
        """Record the text of the modal window (an error box) under ``name`` and close it."""
        from qgis.PyQt.QtWidgets import QApplication, QLabel, QTextEdit

        modal = QApplication.activeModalWidget()
        if modal is None:
            return
        texts = [w.text() for w in modal.findChildren(QLabel)] + [w.toPlainText() for w in modal.findChildren(QTextEdit)]
        self.check(name, "\n".join(t for t in texts if t) or type(modal).__name__)
        modal.close()

    def menu_generate(self):
        before = windows()
        self.plugin_action("Generate").trigger()
        dialog = new_dialogs(before)[0]
        folder = self.out / "menu_generate"
        parameters = {"S2_L2A": self.layers[0].id(), "GENERATE": [0], "STEPS": 2, "OUTPUT_FOLDER": str(folder)}
        self.run(dialog, parameters, "menu_generate", lambda: tif_names(folder))
        self.folders = {"menu_generate": folder}

    def layer_action_for_two_layers(self):
        """The layer tree's action for layer A, then for B: both dialogs must stay alive; A runs."""
        from qgis.utils import iface

        before = windows()
        for layer in self.layers:  # as a right-click does: the tree makes the layer current
            iface.layerTreeView().setCurrentLayer(layer)
            self.layer_action().trigger()
        dialogs = new_dialogs(before)
        self.check("layer_action_dialogs", len(dialogs))
        # Which is which: each holds its own layer as the S2 L2A condition.
        self.layer_dialogs = sorted(dialogs, key=lambda d: d.createProcessingParameters().get("S2_L2A") != self.layers[0].id())
        folder = self.out / "layer_A"
        self.folders["layer_A"] = folder
        self.run(self.layer_dialogs[0], {"STEPS": 2, "GENERATE": [0], "OUTPUT_FOLDER": str(folder)}, "layer_A", lambda: tif_names(folder))

    def layer_action(self):
        from qgis.utils import plugins

        return plugins[PLUGIN_NAME].layer_actions.action

    def run_second_layer_dialog(self):
        gc.collect()
        folder = self.out / "layer_B"
        self.folders["layer_B"] = folder
        self.run(self.layer_dialogs[1], {"STEPS": 2, "GENERATE": [0], "OUTPUT_FOLDER": str(folder)}, "layer_B", lambda: tif_names(folder))

    def layer_action_without_model(self):
        """No model installed: the layer action's dialog shows the "no model" offer on top of
        its own note on the layer (the bar shows its latest message only)."""
        from qgis.utils import iface

        from desktop_more_steps import SAVED_STATE
        from qgis.core import QgsSettings

        os.environ["COPGEN_MODEL_DIR"] = str(Path(self.job["empty_model_root"]) / "none")
        for key in SAVED_STATE:  # the dialog at its default size
            QgsSettings().remove(key)
        before = windows()
        iface.layerTreeView().setCurrentLayer(self.layers[0])
        self.layer_action().trigger()
        (dialog,) = new_dialogs(before)
        from dialog_layout import message_problem

        bar = dialog.messageBar()
        self.check("layer_action_without_model", {
            "shown": bar.currentItem().title() if bar.currentItem() else None,
            "all": sorted(item.title() for item in bar.items()),
            "cut": message_problem(bar.currentItem()) if bar.currentItem() else None,
            "width": dialog.width(),
        })
        dialog.close()

    def install_parameters(self):
        return {"DENOISER_FILE": self.job["denoiser"], "VAE_FILE": self.job["vae"], "ALLOW_UNOFFICIAL": True, "PRECISION": 1,
                "HEADS": 2}

    def no_model_bar_install_button(self):
        """No model installed: Generate… shows the bar; its Install model… button opens a dialog
        that installs the model."""
        from qgis.PyQt.QtWidgets import QPushButton

        root = Path(self.job["empty_model_root"]) / "from_bar"
        root.mkdir(parents=True)
        os.environ["COPGEN_MODEL_DIR"] = str(root)
        before = windows()
        self.plugin_action("Generate").trigger()
        generate = new_dialogs(before)[0]
        buttons = [b for b in generate.findChildren(QPushButton) if b.text() == "Install model…"]
        self.check("no_model_bar_buttons", len(buttons))
        before = windows()
        buttons[0].click()
        install = new_dialogs(before)[0]
        self.run(install, self.install_parameters(), "no_model_bar_install", lambda: list(root.glob("*/model.json")))
        self.model_roots = {"no_model_bar_install": root}

    def menu_install_model(self):
        root = Path(self.job["empty_model_root"]) / "from_menu"
        root.mkdir(parents=True)
        os.environ["COPGEN_MODEL_DIR"] = str(root)
        before = windows()
        self.plugin_action("Install model").trigger()
        install = new_dialogs(before)[0]
        self.run(install, self.install_parameters(), "menu_install_model", lambda: list(root.glob("*/model.json")))
        self.model_roots["menu_install_model"] = root

    # driver

    def start(self):
        from qgis.PyQt.QtCore import QTimer

        QTimer.singleShot(1000, self.next_step)

    def next_step(self):
        from qgis.PyQt.QtCore import QTimer

        if self.waiting is not None:
            name, condition, dialog, deadline = self.waiting
            try:
                met = condition()
            except Exception:
                met = False
                self.report["errors"].append(f"{name}: {traceback.format_exc()}")
                deadline = 0
            if met or time.monotonic() > deadline:
                self.waiting = None
                self.check(name, {"done": bool(met), "log": log_text(dialog) if not self.deleted(dialog) else ""})
                self.write_report()
            QTimer.singleShot(300, self.next_step)
        elif self.steps:
            step = self.steps.pop(0)
            try:
                step()
            except Exception:
                self.report["errors"].append(f"{step.__name__}: {traceback.format_exc()}")
                self.waiting = None
            self.report["done"] = self.report.get("done", []) + [step.__name__]
            self.write_report()
            QTimer.singleShot(300, self.next_step)
        else:
            self.finish()

    @staticmethod
    def deleted(dialog):
        from qgis.PyQt import sip

        return sip.isdeleted(dialog)

    def finish(self):
        from qgis.core import QgsApplication, QgsProject

        self.check("files", {name: tif_names(folder) for name, folder in getattr(self, "folders", {}).items()})
        self.check("models", {
            name: sorted(p.parent.name for p in root.glob("*/model.json"))
            for name, root in getattr(self, "model_roots", {}).items()
        })
        self.report["ok"] = not self.report["errors"]
        self.write_report()
        QgsProject.instance().setDirty(False)
        QgsApplication.exit(0)

    def write_report(self):
        partial = Path(self.job["report"]).with_suffix(".part")
        partial.write_text(json.dumps(self.report, indent=2, default=str), encoding="utf-8")
        os.replace(partial, self.job["report"])


if __name__ == "__main__":
    if os.environ.get(JOB_ENV) and "qgis.utils" in sys.modules:
        _tour = EntryPointTour(json.loads(Path(os.environ[JOB_ENV]).read_text(encoding="utf-8")))
        _tour.start()  # kept referenced for the Qt timers
    else:
        sys.exit(main())
