"""One run of a model algorithm: its model, callbacks, error bridge, names and layers.

The algorithms' processAlgorithm (see .model_algorithm) make one :class:`RunContext` and go
through it for everything that is not reading parameters: loading the model the settings name,
the progress and cancel callbacks handed to the engine (its estimate logged, its time left shown), turning engine
errors into Processing errors in the dialog's words, naming the run, settling the per-modality
destinations and loading the layers the user asked for. The call into the engine's generation
is :meth:`RunContext.generate`: the one place that builds a GenerationRequest and calls
generate_area.
"""

import re
import shutil
import time
from pathlib import Path

from qgis.core import (
    QgsLayerTree,
    QgsProcessing,
    QgsProcessingOutputLayerDefinition,
    QgsProcessingParameterRasterDestination,
    QgsProcessingUtils,
)

from ... import engine
from ...engine.estimate import SEPARATOR
from ...engine.families.beta.registry import MODALITIES
from ...engine.request import GenerationRequest
from ...geo.pipeline import generate_area
from .. import settings
from ..condition_names import parameter_name
from ..errors import engine_errors
from ..output_layers import default_layer_name, register_output_layer
from .base import ConsoleLines
from .parameters import is_set

ESTIMATE_PREFIX = "estimate: "  # the engine's first progress message (plugin.engine.estimate)
SIDECARS = (".aux.xml",)  # GDAL's PAM: a COP-GEN class map's names and colours
ETA_INTERVAL_S = 30  # how often the time left alone may change the progress text (and the log)


def generation_request(algorithm, conditions, generate, area=None, **options):
    """The GenerationRequest of an algorithm's values, validated by the engine (errors name the
    dialog's labels): ``conditions`` (ConditionSpec list), ``generate`` (modality keys),
    ``area`` (its extent= / aoi= keyword), ``options`` (samples, seed, steps, solver,
    reflectance, run_name). The area limit is the plugin's setting."""
    with engine_errors(algorithm):
        return GenerationRequest(
            generate=generate,
            conditions=tuple(conditions),
            max_area_km2=settings.max_area_km2(),
            **(area or {}),
            **options,
        )


class RunContext:
    def __init__(self, algorithm, parameters, context, feedback):
        self.algorithm = algorithm
        self.parameters = parameters
        self.context = context
        self.feedback = feedback
        self.model = None
        self.destinations = []  # the files destination() registered to be loaded

    # -- errors and model ------------------------------------------------------------------

    def errors(self):
        return engine_errors(self.algorithm)

    def load_model(self, folder=None):
        """The model in ``folder`` (default: the one the settings name) with the settings' device
        and precision, opened through the engine's one policy (plugin.engine.precision.resolve):
        what it substituted is a warning, never a failure."""
        folder, precision = folder or settings.model_dir(), settings.precision()
        with self.errors():
            self.model = engine.load(folder, device=settings.device(), preference=precision)
        for note in self.model.plan.notes:
            self.feedback.pushWarning(f"Precision {precision}: {note}")
        self.feedback.pushInfo(f"Model {folder} ({self.model.plan.describe()}) on {self.model.provider}")
        return self.model

    # -- callbacks -------------------------------------------------------------------------

    def callbacks(self):
        """(progress(done, total, message), cancel()) for the engine and the analysis runners.

        The engine's first report is its estimate (done = 0, "estimate: ..."): logged before any
        work. Later messages are the stage, with the time left once the engine can tell it
        ("denoising · about 4 min left"). Dialogs copy every progress text into the log, so the
        text changes with the stage and when the time left is first told, else at most every
        ETA_INTERVAL_S seconds."""
        feedback = self.feedback
        lines = ConsoleLines(feedback, self.context)
        shown = {"message": None, "stage": None, "left": "", "at": 0.0}

        def progress(done, total, message=""):
            if not done and message.startswith(ESTIMATE_PREFIX):
                feedback.pushInfo("Estimate: " + message[len(ESTIMATE_PREFIX):])
                return
            now, (stage, _, left) = time.monotonic(), message.partition(SEPARATOR)
            news = stage != shown["stage"] or (left and not shown["left"])  # a stage, or the first time left
            if message != shown["message"] and (news or now - shown["at"] >= ETA_INTERVAL_S):
                shown.update(message=message, stage=stage, left=left, at=now)
                if message:
                    lines.text(message)
            if total:
                lines.progress(100.0 * done / total)

        return progress, feedback.isCanceled

    # -- the engine ------------------------------------------------------------------------

    def generate(self, conditions, generate, out_dir, area=None, notify=None, **options):
        """generate_area for the conditions (ConditionSpec list), modalities and output folder
        (arguments as :func:`generation_request`). Returns the written paths, in the request's
        order (modality by modality, sample 1 first). What the engine tells about the inputs
        before sampling (a file's bands read in Major TOM's order, ...) goes to the log through
        ``notify`` (default :meth:`note`)."""
        request = generation_request(self.algorithm, conditions, generate, area, **options)
        progress, cancel = self.callbacks()
        with self.errors():
            return generate_area(self.model, request, out_dir, progress=progress, cancel=cancel,
                                 notify=notify or self.note)

    def note(self, message):
        """An engine note about the inputs, in the log (the CLI prints it as "warning: ...")."""
        self.feedback.pushWarning(message)

    # -- names -----------------------------------------------------------------------------

    def run_name(self, out_dir, base):
        """``base``, else ``base_2``, ``base_3``...: the first name that no file of ``out_dir``
        starts with (``name_``), so runs into one folder never overwrite each other."""
        base = file_safe_name(base)
        candidate, number = base, 1
        while any(Path(out_dir).glob(f"{candidate}_*")):
            number += 1
            candidate = f"{base}_{number}"
        return candidate

    def group_name(self, run_name):
        """The layer-tree group of this run: the run's name, numbered when the project already
        has a group of that name (runs into different folders may share a run name)."""
        project = self.context.project()
        if project is None:
            return run_name
        taken = {child.name() for child in project.layerTreeRoot().children() if QgsLayerTree.isGroup(child)}
        candidate, number = run_name, 1
        while candidate in taken:
            number += 1
            candidate = f"{run_name} ({number})"
        return candidate

    # -- layers ----------------------------------------------------------------------------

    def destination(self, name):
        """The file the raster destination ``name`` asks for, None when skipped; read before the
        run, so Processing registers the layer to load when the user asked for it."""
        value = self.parameters.get(name)
        if not is_set(self.parameters, name):
            project = getattr(value, "destinationProject", None)
            if project is None:
                return None
            # A cell left empty with "Load layers on completion" (batch rows, runAndLoadResults):
            # as a temporary output, the file in the output folder, loaded. Processing would
            # otherwise register "" to load and report it as a layer "not correctly generated".
            value = QgsProcessingOutputLayerDefinition(QgsProcessing.TEMPORARY_OUTPUT, project)
        path = self.algorithm.parameterAsOutputLayer({name: value}, name, self.context)
        if path and self.context.willLoadLayerOnCompletion(path):
            self.destinations.append(path)
        return path or None

    def settle(self, destination, written):
        """Put the file ``written`` where its destination asked: a temporary output stays as the
        file in the output folder (the load Processing registered follows it); a chosen file
        receives it, with its sidecars (SIDECARS). Returns the output's path."""
        if destination is None:
            return str(written)
        if Path(destination).resolve().is_relative_to(Path(QgsProcessingUtils.tempFolder()).resolve()):
            if self.context.willLoadLayerOnCompletion(destination):
                details = self.context.layerToLoadOnCompletionDetails(destination)
                loads = dict(self.context.layersToLoadOnCompletion())
                loads.pop(destination, None)
                loads[str(written)] = details
                self.context.setLayersToLoadOnCompletion(loads)
            return str(written)
        Path(destination).parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(written), destination)
        for sidecar in SIDECARS:  # what GDAL reads beside the file goes with it; a stale one goes
            if Path(f"{written}{sidecar}").is_file():
                shutil.move(f"{written}{sidecar}", f"{destination}{sidecar}")
            else:
                Path(f"{destination}{sidecar}").unlink(missing_ok=True)
        return destination

    def forget_destinations(self):
        """After a failure: nothing was written, so nothing is to be loaded (Processing would list
        each destination as "not correctly generated" after the run's own error)."""
        for destination in self.destinations:
            self.forget(destination)

    def forget(self, destination):
        """Withdraw a destination that received nothing (a modality not generated) from the
        layers to load, so the dialog does not report it as a failed output."""
        if destination and self.context.willLoadLayerOnCompletion(destination):
            loads = dict(self.context.layersToLoadOnCompletion())
            loads.pop(destination, None)
            self.context.setLayersToLoadOnCompletion(loads)

    def wants_layers(self, *names):
        """Whether the user asked for outputs to be loaded: one of the destinations ``names``
        (their values as the run returns them) is to be loaded on completion."""
        return any(name and self.context.willLoadLayerOnCompletion(name) for name in names)

    def show(self, path, modality, group, run_parameters, layer_name=None, visible=True, load=True):
        """Style, document and group ``path`` when it is loaded: added to the loads when ``load``
        (the user asked for the run's layers), else only where Processing loads it anyway."""
        path = str(path)
        if not (load or self.context.willLoadLayerOnCompletion(path)):
            return
        register_output_layer(
            self.context, path, modality, group, run_parameters, layer_name=layer_name, visible=visible
        )


def file_safe_name(text, fallback="copgen"):
    """``text`` reduced to letters, digits, '.', '_' and '-' (what run names may hold)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._-") or fallback


def declare_modality_destinations(algorithm, destinations=None):
    """One optional raster destination per modality, OUTPUT_<MODALITY>: empty or temporary means
    the file in the output folder; outputs chain in models and honour "Open output file" (and a
    batch's "Load layers on completion"). ``destinations``: {parameter: label}, by default
    COP-GEN-Beta's modalities."""
    if destinations is None:
        destinations = {
            f"OUTPUT_{parameter_name(modality)}": f"{default_layer_name(modality)} (when generated)"
            for modality in MODALITIES
        }
    for name, words in destinations.items():
        algorithm.addParameter(
            QgsProcessingParameterRasterDestination(name, algorithm.tr(words), optional=True, createByDefault=True)
        )

