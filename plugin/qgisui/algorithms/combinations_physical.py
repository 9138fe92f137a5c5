"""Conditioning combinations (COP-GEN): generate from the subsets of real rasters the user names,
compare with the real layers in physical units, and draw the comparison sheet."""

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from qgis.core import (
    QgsProcessing,
    QgsProcessingParameterFeatureSink,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterString,
)
from qgis.PyQt.QtCore import QMetaType

from ...analysis.physical_combinations import plan_combinations, run_physical_combinations
from ...analysis.subsets import MAX_SUBSETS
from ...engine.families.copgen.registry import BY_KEY
from .. import settings
from ..errors import engine_errors
from ..physical_layers import register_physical_layer
from ..physical_names import SENSORS, sensor_parameter
from .model_algorithm import ParameterModelAlgorithm
from .parameters import add_sampling, destination_path, is_set, read_sampling, refusal
from .physical_parameters import (
    add_date,
    add_generate,
    add_model,
    add_sensor_conditions,
    read_date,
    read_generate,
    read_model,
    read_sensor_conditions,
)
from .sheet_output import SHEET_FILTER, chosen_sheet, sheet_path, sheet_png, write_sheet_page
from .tables import add_physical_rows, physical_log_lines, physical_metrics_table

SUBSETS, TARGETS = "SUBSETS", "GENERATE"  # GENERATE: the engine's "generate" field names it
SHEET_WORDS = ("One row per combination: quicklooks of the real layers on the left (the given ones framed in "
               "green), of the generated ones on the right, each drawn with its real layer's stretch.")
SUBSETS_HELP = (
    "Which combinations to run, one generation each: subsets separated by ';', the rasters inside one "
    "joined by '+'. A name is a sensor (s2l2a, s2l1c, s1rtc, dem, lulc, cloud) or an official key "
    "(S2L2A_B02_B03_B04_B08: one band group of a sensor's raster); 'none' is the unconditional run, 'all' "
    "every real raster at once. Example: none; s2l2a; S2L2A_B02_B03_B04_B08; s1rtc+dem. Empty: none, each "
    f"real raster alone, and all of them. At most {MAX_SUBSETS}: twelve modalities make 4095 subsets."
)

LEADING_FIELDS = (("combination", QMetaType.Type.QString), ("modality", QMetaType.Type.QString))  # table


@dataclass
class PhysicalCombinationsPlan:
    model: object  # ModelChoice
    conditions: list  # PhysicalConditionSpec
    subsets: Optional[str]
    targets: Optional[list]  # official keys; None: every image modality not given
    count: int  # generations
    date: Optional[str]
    sampling: dict
    out_dir: Path = None
    sheet: Optional[Path] = None  # chosen by the user; None: in the output folder


class PhysicalCombinationsAlgorithm(ParameterModelAlgorithm):
    NAME = "combinationsphysical"
    DISPLAY_NAME = "Conditioning combinations (COP-GEN)"
    GROUP = "analysis"
    HELP = (
        "With a COP-GEN model: takes real rasters of one area (one per sensor condition given) and, for each "
        "conditioning subset of them you name, generates the other modalities (or those chosen in "
        "Modalities to generate and compare) and compares each with its real layer, on the outputs' grid "
        "and in its own unit: mean absolute error, root mean square error and bias (Sentinel-2 in DN, "
        "Sentinel-1 in dB, the DEM in metres) and the correlation per band; land cover and the cloud mask "
        "as pixel accuracy and mean intersection over union of the classes present. The log says the "
        "number of generations and their estimate before any work. The Combination metrics table has one "
        "row per band; the Comparison sheet (an HTML page opened from the Results Viewer, or a PNG; left "
        "empty: in the Output folder) shows one row of quicklooks per combination. All runs share one area "
        "(the smallest raster's) and one seed. Synthetic layers, not measurements.\n\n" + SUBSETS_HELP
    )

    def initAlgorithm(self, config=None):  # noqa: N802
        add_sensor_conditions(self)
        subsets = QgsProcessingParameterString(
            SUBSETS, self.tr("Conditioning subsets ('; ' between subsets, '+' inside one; empty: none, each, all)"),
            optional=True,
        )
        subsets.setHelp(self.tr(SUBSETS_HELP))
        self.addParameter(subsets)
        add_generate(self, TARGETS, "Modalities to generate and compare (empty: all the others)", optional=True)
        add_date(self)
        add_sampling(self)
        add_model(self)
        self.addParameter(QgsProcessingParameterFolderDestination("OUTPUT_FOLDER", self.tr("Output folder")))
        self.addParameter(QgsProcessingParameterFileDestination(
            "OUTPUT_SHEET", self.tr("Comparison sheet"), SHEET_FILTER, optional=True, createByDefault=True))
        self.addParameter(QgsProcessingParameterFeatureSink(
            "OUTPUT_TABLE", self.tr("Combination metrics"), QgsProcessing.SourceType.TypeVector))

    def check(self, parameters, context):
        self._plan(parameters, context)

    def read(self, parameters, context, run):
        plan = self._plan(parameters, context)
        plan.out_dir = destination_path(self, parameters, context, "OUTPUT_FOLDER")
        plan.sheet = chosen_sheet(self, parameters, context, "OUTPUT_SHEET")
        return plan

    def execute(self, plan, run):
        run.feedback.pushInfo(f"{plan.count} combinations, one generation each")
        run_name = run.run_name(plan.out_dir, f"combinations_seed{plan.sampling['seed']}")
        sheet = sheet_path(plan.sheet, plan.out_dir, run_name)
        png = sheet_png(sheet)
        progress, cancel = run.callbacks()
        results = run_physical_combinations(
            run.model, plan.conditions, plan.out_dir, png, subsets=plan.subsets, generate=plan.targets,
            run_name=run_name, date=plan.date, max_area_km2=settings.max_area_km2(), progress=progress,
            cancel=cancel, **plan.sampling)
        if png != sheet:
            write_sheet_page(sheet, png, f"COP-GEN: conditioning combinations ({run_name})", SHEET_WORDS)
        return run_name, results, sheet

    def publish(self, plan, outcome, run):
        run_name, results, sheet = outcome
        group = run.group_name(run_name)
        run_parameters = {"model": plan.model.name, **plan.sampling, "date": plan.date or "not conditioned",
                          **{spec.sensor: spec.label for spec in plan.conditions}}
        # made now, not in read(): a failed or cancelled run leaves no empty table behind
        sink, table = physical_metrics_table(self, run.parameters, run.context, "OUTPUT_TABLE", LEADING_FIELDS)
        load = run.wants_layers(table)
        for result in results:
            if load:
                register_physical_layer(run.context, str(result.path), result.modality, group, run_parameters,
                                        layer_name=f"{BY_KEY[result.modality].label} {result.label.lower()}",
                                        visible=False)  # one layer per modality and combination: as Beta's, unticked
            add_physical_rows(sink, [result.label, result.modality], result.metrics, result.path)
        for line in physical_log_lines([(result.label, result.modality, result.metrics) for result in results]):
            run.feedback.pushInfo(line)
        return {"OUTPUT_FOLDER": str(plan.out_dir), "OUTPUT_SHEET": str(sheet), "OUTPUT_TABLE": table}

    def _plan(self, parameters, context):
        model = read_model(self, parameters, context)
        conditions = read_sensor_conditions(self, parameters, context)
        if not conditions:
            raise refusal(self, sensor_parameter(SENSORS[0]),
                          "give at least one real raster to compare with")
        subsets = self.parameterAsString(parameters, SUBSETS, context) if is_set(parameters, SUBSETS) else None
        targets = read_generate(self, parameters, context, TARGETS) if is_set(parameters, TARGETS) else None
        targets = targets or None  # an empty choice: every modality not given
        with engine_errors(self):  # the subsets' words, named by their labels
            planned = plan_combinations(conditions, subsets, targets)
        return PhysicalCombinationsPlan(model, conditions, subsets, targets, len(planned),
                                        read_date(self, parameters, context), read_sampling(self, parameters, context))

