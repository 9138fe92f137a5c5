"""One run of a model algorithm: its model, callbacks, error bridge, names and layers.

The algorithms' processAlgorithm (see .model_algorithm) make one :class:`RunContext` and go
through it for everything that is not reading parameters: loading the model the settings name,
the progress and cancel callbacks handed to the engine (with time remaining), turning engine
errors into Processing errors in the dialog's words, naming the run, settling the per-modality
destinations and loading the layers the user asked for. The call into the engine's generation
is :meth:`RunContext.generate`, the one place that knows generate_area's signature.
"""

import re
import shutil
import time
from contextlib import contextmanager
from pathlib import Path

from qgis.core import QgsLayerTree, QgsProcessingException, QgsProcessingParameterRasterDestination, QgsProcessingUtils

from ... import engine
from ...engine.errors import CopGenError
from ...engine.modalities import MODALITIES
from ...engine.quantize import INT8_KEY
from ...geo.pipeline import generate_area
from .. import settings
from ..output_layers import default_layer_name, register_output_layer
from .parameters import label

ETA_INTERVAL_S = 30  # how often the time left may change the progress text (and the log)

# The engine's field names (CopGenError.field, generate_area's keywords) -> the parameter whose
# label names them in QGIS; fields that are settings, not parameters -> the setting's label.
FIELD_PARAMETERS = {
    "generate": "GENERATE",
    "samples": "SAMPLES",
    "seed": "SEED",
    "steps": "STEPS",
    "solver": "SOLVER",
    "reflectance": "REFLECTANCE",
    "extent": "EXTENT",
    "aoi": "AOI",
    "run_name": "OUTPUT_FOLDER",
    "out_dir": "OUTPUT_FOLDER",
    "iterations": "ITERATIONS",
    **{f"conditions.{modality}": modality.upper() for modality in MODALITIES},
}
SETTING_LABELS = {
    "max_area_km2": f'"{settings.LABELS["max_area_km2"]}" setting (Settings > Options > COP-GEN-Beta)',
    "device": f'"{settings.LABELS["device"]}" setting (Settings > Options > COP-GEN-Beta)',
    "precision": f'"{settings.LABELS["precision"]}" setting (Settings > Options > COP-GEN-Beta)',
}


def field_label(algorithm, field):
    """How the dialog names an engine field: the setting's or the parameter's label, else None."""
    if field in SETTING_LABELS:
        return SETTING_LABELS[field]
    name = FIELD_PARAMETERS.get(field)
    if name is not None and algorithm.parameterDefinition(name) is not None:
        return label(algorithm, name)
    return None


def describe_error(algorithm, error):
    """An engine error's text in the dialog's words: "<label>: message" when it is about a field."""
    field = getattr(error, "field", None)
    message = getattr(error, "message", None) or str(error)
    where = field_label(algorithm, field) if field else None
    return f"{where}: {message}" if where else message


def option_labels(algorithm):
    """generate_area's ``option_names``: its keywords in the dialog's words (same table)."""
    return {field: text for field in [*FIELD_PARAMETERS, *SETTING_LABELS] if (text := field_label(algorithm, field))}


@contextmanager
def engine_errors(algorithm):
    """Engine errors (bad input, cancel) as Processing errors, naming labels."""
    try:
        yield
    except CopGenError as exc:
        raise QgsProcessingException(describe_error(algorithm, exc)) from exc


class RunContext:
    def __init__(self, algorithm, parameters, context, feedback):
        self.algorithm = algorithm
        self.parameters = parameters
        self.context = context
        self.feedback = feedback
        self.model = None

    # -- errors and model ------------------------------------------------------------------

    def errors(self):
        return engine_errors(self.algorithm)

    def load_model(self):
        folder = settings.model_dir()
        device = settings.device()
        precision = self._engine_precision(folder, device)
        with self.errors():
            self.model = engine.load(folder, device=device, precision=precision)
        graphs = self.model.info.get("precision", "fp32") + (", int8 denoiser" if precision == INT8_KEY else "")
        used = "fast" if precision == INT8_KEY else "faithful"
        self.feedback.pushInfo(f"Model {folder} ({graphs}, {used}) on {self.model.provider}")
        return self.model

    def _engine_precision(self, folder, device):
        """engine.load's ``precision`` for the precision setting: "int8" for fast on the CPU
        when ``folder`` holds the int8 denoiser, else None (the folder's own graphs). A missing
        int8 denoiser only costs speed, so it is a warning, never a failed run."""
        if settings.precision() != "fast":
            return None
        from ...engine.runtime import cuda_available  # onnxruntime: imported only for a run

        if device == "cuda" or (device == "auto" and cuda_available()):
            self.feedback.pushInfo("Precision fast is for the CPU: on CUDA the model's own graphs run")
            return None
        if not settings.has_int8_denoiser(folder):
            self.feedback.pushWarning(
                f"Precision fast: {folder} has no int8 denoiser, so its faithful graphs run (slower); "
                + settings.INT8_HINT
            )
            return None
        return INT8_KEY

    # -- callbacks -------------------------------------------------------------------------

    def callbacks(self):
        """(progress(done, total, message), cancel()) for the engine and the analysis runners.

        The engine's first report may carry its estimate (done = 0, "estimate: ..."): logged
        before any work. The progress text is the engine's message; where it does not tell the
        time left itself, the time left at the pace measured so far is added. Dialogs copy every
        progress text into the log, so it changes with the stage, else at most every
        ETA_INTERVAL_S seconds."""
        feedback = self.feedback
        state = {"stage": None, "shown_at": 0.0, "start": None, "first": 0, "estimated": False}

        def progress(done, total, message=""):
            now = time.monotonic()
            if not done and message.lower().startswith("estimate"):
                state["estimated"] = True
                feedback.pushInfo(message[0].upper() + message[1:])
                return
            if not state["estimated"] and total:
                state["estimated"] = True
                feedback.pushInfo(f"Work ahead: {total} window evaluations of the networks")
            if state["start"] is None and done:
                state["start"], state["first"] = now, done
            remaining = None if " left" in message else _remaining(state, done, total, now)
            if message != state["stage"] or (remaining and now - state["shown_at"] >= ETA_INTERVAL_S):
                state["stage"], state["shown_at"] = message, now
                text = " – ".join(part for part in (message, remaining and f"about {remaining} left") if part)
                if text:
                    feedback.setProgressText(text)
            if total:
                feedback.setProgress(100.0 * done / total)

        return progress, feedback.isCanceled

    # -- the engine ------------------------------------------------------------------------

    def generate(self, conditions, generate, out_dir, area=None, **options):
        """generate_area for the conditions (ConditionSpec list), modalities and output folder;
        ``area``: its extent= / aoi= keyword; ``options``: samples, seed, steps, solver,
        reflectance, run_name. Returns the written paths."""
        progress, cancel = self.callbacks()
        with self.errors():
            return generate_area(
                self.model,
                conditions,
                generate,
                out_dir,
                max_area_km2=settings.max_area_km2(),
                progress=progress,
                cancel=cancel,
                option_names=option_labels(self.algorithm),
                **(area or {}),
                **options,
            )

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
        if self.parameters.get(name) in (None, ""):
            return None
        path = self.algorithm.parameterAsOutputLayer(self.parameters, name, self.context)
        return path or None

    def settle(self, destination, written):
        """Put the file ``written`` where its destination asked: a temporary output stays as the
        file in the output folder (the load Processing registered follows it); a chosen file
        receives it. Returns the output's path."""
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
        return destination

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


def declare_modality_destinations(algorithm):
    """One optional raster destination per modality, OUTPUT_<MODALITY>: empty or temporary means
    the file in the output folder; outputs chain in models and honour "Open output file"."""
    for modality in MODALITIES:
        destination = QgsProcessingParameterRasterDestination(
            f"OUTPUT_{modality.upper()}",
            algorithm.tr(f"{default_layer_name(modality)} (when generated)"),
            optional=True,
            createByDefault=True,
        )
        algorithm.addParameter(destination)


def _remaining(state, done, total, now):
    """Time left at the pace since the first report, as "4 min"; None until measurable."""
    if state["start"] is None or not total or done <= state["first"] or now - state["start"] < 1:
        return None
    seconds = (now - state["start"]) / (done - state["first"]) * (total - done)
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
