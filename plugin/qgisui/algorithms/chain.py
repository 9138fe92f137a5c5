"""Generation chain: regenerate a modality through another one, again and again, and measure the drift."""

from qgis.core import (
    QgsProcessing,
    QgsProcessingException,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFeatureSink,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterNumber,
)
from qgis.PyQt.QtCore import QMetaType

from ...analysis.chain import run_chain
from ...engine.modalities import LABELS, MODALITIES
from .. import settings
from ..output_layers import default_layer_name, register_output_layer
from .base import CopGenAlgorithm
from .parameters import (
    add_condition,
    add_metrics_row,
    add_sampling,
    describe_metrics,
    destination_path,
    engine_errors,
    file_safe,
    load_model,
    metrics_table,
    modality_options,
    model_problem,
    pipeline_callbacks,
    read_condition,
    read_sampling,
    unique_run_name,
)

MAX_ITERATIONS = 50


class ChainAlgorithm(CopGenAlgorithm):
    NAME = "chain"
    DISPLAY_NAME = "Generation chain"
    GROUP = "analysis"
    HELP = (
        "Generates VIA_MODALITY from the INPUT raster, then INPUT_MODALITY back from that, and repeats "
        "ITERATIONS times, each iteration starting from the previous regenerated input. Every regenerated "
        "input is compared with the real INPUT rendering (PSNR, SSIM, mean absolute error and the "
        "colour-histogram distance, in grey levels): the table shows how far repeated generation drifts. "
        "Every generated layer is written to OUTPUT_FOLDER; the metrics are also in the log."
    )

    def initAlgorithm(self, config=None):  # noqa: N802
        add_condition(self, "INPUT", "Input raster", optional=False, prefix="")
        self.addParameter(
            QgsProcessingParameterEnum(
                "INPUT_MODALITY", self.tr("Input modality"), options=modality_options(), defaultValue=3
            )
        )
        self.addParameter(
            QgsProcessingParameterEnum(
                "VIA_MODALITY", self.tr("Via modality"), options=modality_options(), defaultValue=1
            )
        )
        self.addParameter(
            QgsProcessingParameterNumber(
                "ITERATIONS",
                self.tr("Iterations"),
                QgsProcessingParameterNumber.Type.Integer,
                3,
                minValue=1,
                maxValue=MAX_ITERATIONS,
            )
        )
        add_sampling(self)
        self.addParameter(QgsProcessingParameterFolderDestination("OUTPUT_FOLDER", self.tr("Output folder")))
        self.addParameter(
            QgsProcessingParameterFeatureSink(
                "OUTPUT_TABLE", self.tr("Chain metrics"), QgsProcessing.SourceType.TypeVector
            )
        )

    def checkParameterValues(self, parameters, context):  # noqa: N802
        try:
            modality = self._modality(parameters, context, "INPUT_MODALITY")
            read_condition(self, parameters, context, "INPUT", modality, prefix="")
            if modality == self._modality(parameters, context, "VIA_MODALITY"):
                raise QgsProcessingException("VIA_MODALITY: must differ from INPUT_MODALITY")
            problem = model_problem()
            if problem:
                raise QgsProcessingException(problem)
        except QgsProcessingException as exc:
            return False, str(exc)
        return super().checkParameterValues(parameters, context)

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        modality = self._modality(parameters, context, "INPUT_MODALITY")
        via = self._modality(parameters, context, "VIA_MODALITY")
        spec = read_condition(self, parameters, context, "INPUT", modality, prefix="")
        sampling = read_sampling(self, parameters, context)
        iterations = self.parameterAsInt(parameters, "ITERATIONS", context)
        out_dir = destination_path(self, parameters, context, "OUTPUT_FOLDER")
        run_name = unique_run_name(out_dir, f"chain_{file_safe(spec.layer_name)}_seed{sampling['seed']}")
        leading_fields = (("iteration", QMetaType.Type.Int), ("modality", QMetaType.Type.QString))
        sink, table = metrics_table(self, parameters, context, "OUTPUT_TABLE", leading_fields)
        model = load_model(feedback)
        progress, cancel = pipeline_callbacks(feedback)
        with engine_errors():
            steps = run_chain(
                model,
                spec,
                via,
                iterations,
                out_dir,
                run_name=run_name,
                max_area_km2=settings.max_area_km2(),
                progress=progress,
                cancel=cancel,
                **sampling,
            )
        run_parameters = {
            **sampling,
            "input": spec.label,
            "input_modality": modality,
            "via": via,
            "iterations": iterations,
        }
        for step in steps:
            name = f"{default_layer_name(step.modality)} iteration {step.iteration}"
            register_output_layer(context, str(step.path), step.modality, run_name, run_parameters, layer_name=name)
            if step.metrics is not None:
                add_metrics_row(sink, [step.iteration, step.modality], step.metrics, step.path)
                feedback.pushInfo(
                    f"Iteration {step.iteration}, {LABELS[step.modality]}: {describe_metrics(step.metrics)}"
                )
        return {"OUTPUT_FOLDER": str(out_dir), "OUTPUT_TABLE": table}

    def _modality(self, parameters, context, name):
        return MODALITIES[self.parameterAsEnum(parameters, name, context)]
