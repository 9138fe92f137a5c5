"""Generation chain (COP-GEN): a sensor regenerated through other sensors, again and again, and
its drift measured band by band in physical units."""

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

from ...analysis.physical_chain import run_physical_chain
from ...engine.families.copgen.registry import BY_KEY
from .. import settings
from ..physical_layers import register_physical_layer
from ..physical_names import SENSOR_LABELS, SENSORS, sensor_parameter
from .chain import MAX_ITERATIONS
from .model_algorithm import ParameterModelAlgorithm
from .parameters import add_sampling, destination_path, read_sampling, refusal
from .physical_parameters import (
    add_date,
    add_model,
    add_sensor_conditions,
    read_date,
    read_model,
    read_sensor_conditions,
)
from .tables import add_physical_rows, physical_log_lines, physical_metrics_table

VIA = "VIA"

LEADING_FIELDS = (("iteration", QMetaType.Type.Int), ("modality", QMetaType.Type.QString))  # of the table


@dataclass
class PhysicalChainPlan:
    model: object  # ModelChoice
    spec: object  # PhysicalConditionSpec of the input
    via: list  # sensor names
    iterations: int
    date: object  # "YYYY-MM-DD" or None
    sampling: dict
    out_dir: Path = None


class PhysicalChainAlgorithm(ParameterModelAlgorithm):
    NAME = "chainphysical"
    DISPLAY_NAME = "Generation chain (COP-GEN)"
    GROUP = "analysis"
    HELP = (
        "With a COP-GEN model: takes one real raster (give exactly one of the sensor conditions, e.g. a "
        "12-band Sentinel-2 L2A product), generates the Via sensors from it, then all of the input "
        "sensor's band groups back from those, and repeats it Iterations times, each iteration starting "
        "from the previous regenerated input: 2 x Iterations generations, said with their estimate "
        "before any work. Every regenerated band is compared with the real one on the outputs' grid, in "
        "its own unit: mean absolute error, root mean square error and bias (Sentinel-2 in DN, "
        "Sentinel-1 in dB, the DEM in metres) and the correlation; land cover and the cloud mask as "
        "pixel accuracy and mean intersection over union of the classes present. The Chain metrics "
        "table has one row per band and iteration; every generated layer is written to the Output "
        "folder (a regenerated Sentinel-2 goes back in as a VRT of its band groups) and loaded with "
        "the table when outputs are loaded. Synthetic layers, not measurements."
    )

    def initAlgorithm(self, config=None):  # noqa: N802
        add_sensor_conditions(self)
        self.addParameter(
            QgsProcessingParameterEnum(
                VIA, self.tr("Via sensors (generated from the input, then the input back from them)"),
                options=[SENSOR_LABELS[sensor] for sensor in SENSORS], allowMultiple=True,
                defaultValue=[SENSORS.index("s1rtc")],
            )
        )
        self.addParameter(
            QgsProcessingParameterNumber(
                "ITERATIONS", self.tr("Iterations"), QgsProcessingParameterNumber.Type.Integer, 3, minValue=1,
                maxValue=MAX_ITERATIONS,
            )
        )
        add_date(self)
        add_sampling(self)
        add_model(self)
        self.addParameter(QgsProcessingParameterFolderDestination("OUTPUT_FOLDER", self.tr("Output folder")))
        self.addParameter(
            QgsProcessingParameterFeatureSink("OUTPUT_TABLE", self.tr("Chain metrics"), QgsProcessing.SourceType.TypeVector)
        )

    def check(self, parameters, context):
        plan = self._plan(parameters, context)
        if plan.spec.sensor in plan.via:
            raise refusal(self, VIA, f"must differ from the input ({SENSOR_LABELS[plan.spec.sensor]})")

    def read(self, parameters, context, run):
        plan = self._plan(parameters, context)
        plan.out_dir = destination_path(self, parameters, context, "OUTPUT_FOLDER")
        return plan

    def execute(self, plan, run):
        run_name = run.run_name(plan.out_dir, f"chain_{plan.spec.layer_name or plan.spec.sensor}_seed{plan.sampling['seed']}")
        progress, cancel = run.callbacks()
        steps = run_physical_chain(run.model, plan.spec, plan.via, plan.iterations, plan.out_dir, run_name=run_name,
                                   date=plan.date, max_area_km2=settings.max_area_km2(), progress=progress,
                                   cancel=cancel, **plan.sampling)
        return run_name, steps

    def publish(self, plan, outcome, run):
        run_name, steps = outcome
        group = run.group_name(run_name)
        run_parameters = {"model": plan.model.name, **plan.sampling, "input": plan.spec.label,
                          "via": ", ".join(plan.via), "iterations": plan.iterations, "date": plan.date or "not conditioned"}
        # made now, not in read(): a failed or cancelled run leaves no empty table behind
        sink, table = physical_metrics_table(self, run.parameters, run.context, "OUTPUT_TABLE", LEADING_FIELDS)
        load = run.wants_layers(table)  # the layers come with the table the user asked to see
        for step in steps:
            if load:
                register_physical_layer(run.context, str(step.path), step.modality, group, run_parameters,
                                        layer_name=f"{BY_KEY[step.modality].label} (synthetic) iteration {step.iteration}")
            add_physical_rows(sink, [step.iteration, step.modality], step.metrics, step.path)
        for line in physical_log_lines([(f"Iteration {step.iteration}", step.modality, step.metrics) for step in steps]):
            run.feedback.pushInfo(line)
        return {"OUTPUT_FOLDER": str(plan.out_dir), "OUTPUT_TABLE": table}

    def _plan(self, parameters, context):
        model = read_model(self, parameters, context)
        specs = read_sensor_conditions(self, parameters, context)
        if len(specs) != 1:  # named: the rasters given, else where a user starts
            given = [sensor_parameter(spec.sensor) for spec in specs] or sensor_parameter(SENSORS[0])
            raise refusal(self, given, f"give exactly one real raster to regenerate (got {len(specs)})")
        chosen = sorted(set(self.parameterAsEnums(parameters, VIA, context)))
        via = [SENSORS[index] for index in chosen]
        if not via:
            raise refusal(self, VIA, "choose at least one sensor")
        return PhysicalChainPlan(model, specs[0], via, self.parameterAsInt(parameters, "ITERATIONS", context),
                                 read_date(self, parameters, context), read_sampling(self, parameters, context))
