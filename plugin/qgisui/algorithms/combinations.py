"""All conditioning combinations: generate from every subset of four real rasters and compare."""

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from qgis.core import (
    QgsProcessing,
    QgsProcessingParameterFeatureSink,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterFolderDestination,
)
from qgis.PyQt.QtCore import QMetaType

from ...analysis.combinations import condition_subsets, run_combinations
from ...engine.families.beta.registry import LABELS, MODALITIES
from .. import settings
from ..output_layers import default_layer_name
from .model_algorithm import ModelAlgorithm
from .parameters import (
    add_condition,
    add_sampling,
    destination_path,
    parameter_name,
    read_condition,
    read_sampling,
    refusal,
)
from .sheet_output import SHEET_FILTER, chosen_sheet, sheet_path, sheet_png, write_sheet_page
from .tables import add_metrics_row, describe_metrics, metrics_table

SHEET_WORDS = "Real renderings on the left (the given ones framed in green), generated ones on the right."

LEADING_FIELDS = (("combination", QMetaType.Type.QString), ("modality", QMetaType.Type.QString))  # of the table


@dataclass
class CombinationsPlan:
    conditions: dict  # {modality: ConditionSpec}
    sampling: dict
    out_dir: Path
    sheet: Optional[Path]  # chosen by the user; None: in the output folder, named after the run


class CombinationsAlgorithm(ModelAlgorithm):
    NAME = "combinations"
    DISPLAY_NAME = "All conditioning combinations"
    GROUP = "analysis"
    HELP = (
        f"Takes real rasters of all four modalities of one area and runs {len(condition_subsets())} "
        "generations: unconditional, and conditioned on every subset of one, two or three of them, each "
        "generating the others. Every generated layer is compared with the real one (PSNR, SSIM, mean "
        "absolute error, colour-histogram distance) in the Combination metrics table, and the Comparison "
        "sheet shows one row per combination: real renderings on the left (the given ones framed in "
        "green), generated ones on the right; as an HTML page (opened from the Results Viewer) or a PNG, "
        "in the Output folder unless saved elsewhere. "
        "All runs share one grid (the smallest raster's) and one seed. When outputs are loaded, the "
        "generated layers go into one collapsed group, hidden, for comparing one by one."
    )

    def initAlgorithm(self, config=None):  # noqa: N802
        for modality in MODALITIES:
            add_condition(self, parameter_name(modality), f"Real {LABELS[modality]}", modality, optional=False)
        add_sampling(self)
        self.addParameter(QgsProcessingParameterFolderDestination("OUTPUT_FOLDER", self.tr("Output folder")))
        self.addParameter(QgsProcessingParameterFileDestination("OUTPUT_SHEET", self.tr("Comparison sheet"), SHEET_FILTER))
        self.addParameter(
            QgsProcessingParameterFeatureSink(
                "OUTPUT_TABLE", self.tr("Combination metrics"), QgsProcessing.SourceType.TypeVector
            )
        )

    def check(self, parameters, context):
        for modality in MODALITIES:
            name = parameter_name(modality)
            if read_condition(self, parameters, context, name, modality) is None:
                raise refusal(self, name, f"a real {LABELS[modality]} raster is needed")

    def read(self, parameters, context, run):
        return CombinationsPlan(
            conditions={m: read_condition(self, parameters, context, parameter_name(m), m) for m in MODALITIES},
            sampling=read_sampling(self, parameters, context),
            out_dir=destination_path(self, parameters, context, "OUTPUT_FOLDER"),
            sheet=chosen_sheet(self, parameters, context, "OUTPUT_SHEET"),
        )

    def execute(self, plan, run):
        run_name = run.run_name(plan.out_dir, f"combinations_seed{plan.sampling['seed']}")
        sheet = sheet_path(plan.sheet, plan.out_dir, run_name)
        png = sheet_png(sheet)
        progress, cancel = run.callbacks()
        results = run_combinations(
            run.model,
            plan.conditions,
            plan.out_dir,
            png,
            run_name=run_name,
            max_area_km2=settings.max_area_km2(),
            progress=progress,
            cancel=cancel,
            **plan.sampling,
        )
        if png != sheet:
            write_sheet_page(sheet, png, f"COP-GEN-Beta: all conditioning combinations ({run_name})", SHEET_WORDS)
        return run_name, results, sheet

    def publish(self, plan, outcome, run):
        run_name, results, sheet = outcome
        group = run.group_name(run_name)
        run_parameters = {**plan.sampling, **{m: spec.label for m, spec in plan.conditions.items()}}
        # made now, not in read(): a failed or cancelled run leaves no empty table behind
        sink, table = metrics_table(self, run.parameters, run.context, "OUTPUT_TABLE", LEADING_FIELDS)
        load = run.wants_layers(table)
        width = max((len(result.label) for result in results), default=0)
        for result in results:
            name = f"{default_layer_name(result.modality)} {result.label.lower()}"
            run.show(result.path, result.modality, group, run_parameters, layer_name=name, visible=False, load=load)
            add_metrics_row(sink, [result.label, result.modality], result.metrics, result.path)
            run.feedback.pushInfo(
                f"{result.label:<{width}} | {LABELS[result.modality]:<16} | {describe_metrics(result.metrics)}"
            )
        return {"OUTPUT_FOLDER": str(plan.out_dir), "OUTPUT_SHEET": str(sheet), "OUTPUT_TABLE": table}
