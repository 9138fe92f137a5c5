"""Generation chain: regenerate a modality through another one, again and again, and measure the drift."""

from dataclasses import dataclass
from pathlib import Path

from qgis.core import (
    QgsProcessing,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFeatureSink,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterNumber,
)
from qgis.PyQt.QtCore import QMetaType

from ...analysis.chain import run_chain
from ...engine.families.beta.registry import LABELS
from .. import settings
from ..output_layers import default_layer_name
from .model_algorithm import ModelAlgorithm
from .parameters import (
    add_condition,
    add_guessed_modality,
    add_sampling,
    destination_path,
    modality_options,
    read_condition,
    read_modality,
    read_sampling,
    refusal,
)
from .tables import add_metrics_row, describe_metrics, metrics_table

MAX_ITERATIONS = 50

LEADING_FIELDS = (("iteration", QMetaType.Type.Int), ("modality", QMetaType.Type.QString))  # of the table


@dataclass
class ChainPlan:
    spec: object  # ConditionSpec of the input
    via: str
    iterations: int
    sampling: dict
    out_dir: Path


class ChainAlgorithm(ModelAlgorithm):
    NAME = "chain"
    DISPLAY_NAME = "Generation chain"
    GROUP = "analysis"
    HELP = (
        "Generates the Via modality from the Input raster, then the Input modality back from that, and "
        "repeats it Iterations times, each iteration starting from the previous regenerated input. Every "
        "regenerated input is compared with the real input's rendering (PSNR, SSIM, mean absolute error "
        "and the colour-histogram distance, in grey levels): the table shows how far repeated generation "
        "drifts. The Input modality is guessed from the layer unless chosen. Every generated layer is "
        "written to the Output folder and loaded with the table when outputs are loaded; the metrics "
        "are also in the log."
    )

    def initAlgorithm(self, config=None):  # noqa: N802
        add_condition(self, "INPUT", "Input raster", optional=False, prefix="")
        add_guessed_modality(self, "INPUT_MODALITY", "Input modality")
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

    def check(self, parameters, context):
        modality = read_modality(self, parameters, context, "INPUT_MODALITY", "INPUT")
        read_condition(self, parameters, context, "INPUT", modality, prefix="")
        if modality == read_modality(self, parameters, context, "VIA_MODALITY", "INPUT"):
            raise refusal(self, "VIA_MODALITY", f"must differ from the input modality ({LABELS[modality]})")

    def read(self, parameters, context, run):
        modality = read_modality(self, parameters, context, "INPUT_MODALITY", "INPUT")
        return ChainPlan(
            spec=read_condition(self, parameters, context, "INPUT", modality, prefix=""),
            via=read_modality(self, parameters, context, "VIA_MODALITY", "INPUT"),
            iterations=self.parameterAsInt(parameters, "ITERATIONS", context),
            sampling=read_sampling(self, parameters, context),
            out_dir=destination_path(self, parameters, context, "OUTPUT_FOLDER"),
        )

    def execute(self, plan, run):
        run_name = run.run_name(plan.out_dir, f"chain_{plan.spec.layer_name}_seed{plan.sampling['seed']}")
        progress, cancel = run.callbacks()
        steps = run_chain(
            run.model,
            plan.spec,
            plan.via,
            plan.iterations,
            plan.out_dir,
            run_name=run_name,
            max_area_km2=settings.max_area_km2(),
            progress=progress,
            cancel=cancel,
            **plan.sampling,
        )
        return run_name, steps

    def publish(self, plan, outcome, run):
        run_name, steps = outcome
        group = run.group_name(run_name)
        run_parameters = {
            **plan.sampling,
            "input": plan.spec.label,
            "input_modality": plan.spec.modality,
            "via": plan.via,
            "iterations": plan.iterations,
        }
        # made now, not in read(): a failed or cancelled run leaves no empty table behind
        sink, table = metrics_table(self, run.parameters, run.context, "OUTPUT_TABLE", LEADING_FIELDS)
        load = run.wants_layers(table)  # the layers come with the table the user asked to see
        for step in steps:
            name = f"{default_layer_name(step.modality)} iteration {step.iteration}"
            run.show(step.path, step.modality, group, run_parameters, layer_name=name, load=load)
            if step.metrics is not None:
                add_metrics_row(sink, [step.iteration, step.modality], step.metrics, step.path)
                run.feedback.pushInfo(
                    f"Iteration {step.iteration:2d} | {LABELS[step.modality]:<16} | {describe_metrics(step.metrics)}"
                )
        return {"OUTPUT_FOLDER": str(plan.out_dir), "OUTPUT_TABLE": table}
