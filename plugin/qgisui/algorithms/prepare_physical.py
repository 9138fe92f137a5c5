"""Prepare model inputs (COP-GEN): the Processing face of ``prepare`` for a COP-GEN model.

The condition layers (one per sensor, as Generate physical layers takes them), the date and the
area are read with the same parameters and checks as that algorithm; each official key they
fill is written as the model will be fed it (:func:`plugin.geo.physical_prepare.prepare_physical`)
and loaded styled as generated layers are, but named and documented as model inputs (they are
the user's own data, resampled, not synthetic).
"""

from dataclasses import dataclass
from pathlib import Path

from qgis.core import (
    QgsProcessingException,
    QgsProcessingOutputFolder,
    QgsProcessingOutputMultipleLayers,
    QgsProcessingParameterFolderDestination,
)

from ...engine.families.copgen.registry import IMAGE_MODALITIES
from .. import settings
from ..errors import engine_errors
from ..physical_layers import register_input_layer
from .model_algorithm import ModelAlgorithm
from .parameters import add_area, area_arguments, check_overlap, destination_path, read_area
from .physical_parameters import (
    add_date,
    add_key_destinations,
    add_sensor_conditions,
    check_key_destinations,
    destination_name,
    place_outputs,
    read_date,
    read_key_destinations,
    read_sensor_conditions,
    sensor_layers,
    tell_s2_offsets,
)

@dataclass
class PreparePlan:
    conditions: list  # PhysicalConditionSpec
    area: tuple  # from read_area, or None
    date: str  # or None
    out_dir: Path
    destinations: dict = None  # {key: the destination's file, or None}


class PreparePhysicalAlgorithm(ModelAlgorithm):
    NEEDS_MODEL = False  # what is fed is read from the rasters; no network runs
    NAME = "preparephysical"
    DISPLAY_NAME = "Prepare model inputs (COP-GEN)"
    GROUP = "inputs"
    HELP = (
        "Shows what a COP-GEN model will be fed: each condition layer (one per sensor, as in Generate "
        "physical layers) is read exactly as a generation reads it, on the footprint a generation "
        "with the same conditions and Area covers (480 m lattice units), and each of its band groups "
        "is written in physical units at its native resolution: Sentinel-2 DN (reflectance x 10000, "
        "a product's DN offset of processing baseline 04.00+ taken off) at 10, 20 and 60 m, "
        "Sentinel-1 as linear backscatter (made linear when given in dB), the DEM in metres "
        "resampled to 30 m, land cover and cloud mask codes by nearest neighbour.\n\n"
        "The log says how each file was read (a band order taken without band names, the DN offset "
        "of a Sentinel-2 condition: Advanced parameters, auto or a number) and how much of the area each group covers. The layers are the inputs, "
        "resampled: not synthetic."
    )

    def initAlgorithm(self, config=None):  # noqa: N802
        add_sensor_conditions(self)
        add_date(self)
        add_area(self)
        self.addParameter(QgsProcessingParameterFolderDestination("OUTPUT_FOLDER", self.tr("Output folder")))
        add_key_destinations(self, "model input, when given")  # each group: chains in graphical models
        self.addOutput(QgsProcessingOutputMultipleLayers("OUTPUT_FILES", self.tr("All prepared files")))
        self.addOutput(QgsProcessingOutputFolder("OUTPUT_DIR", self.tr("Output folder")))

    def check(self, parameters, context):
        plan = self._plan(parameters, context, out=False)
        self._request(plan)
        if plan.area is not None:
            check_overlap(self, plan.area, sensor_layers(self, parameters, context), context)
        check_key_destinations(self, parameters, context, IMAGE_MODALITIES)

    def read(self, parameters, context, run):
        plan = self._plan(parameters, context)
        plan.destinations = read_key_destinations(run)
        return plan

    def execute(self, plan, run):
        from ...geo.physical_prepare import RUN_NAME, prepare_physical

        tell_s2_offsets(run.feedback, plan.conditions)
        run_name = run.run_name(plan.out_dir, RUN_NAME)
        progress, cancel = run.callbacks()
        paths = prepare_physical(self._request(plan, run_name), plan.out_dir,
                                 progress=lambda done, total: progress(done, total, "writing the inputs"),
                                 cancel=cancel, notify=run.feedback.pushInfo)
        return run_name, [Path(path) for path in paths]

    def publish(self, plan, outcome, run):
        run_name, paths = outcome
        group = run.group_name(run_name)
        results = {"OUTPUT_DIR": str(plan.out_dir), "OUTPUT_FOLDER": str(plan.out_dir), "OUTPUT_FILES": []}
        written = {next(key for key in IMAGE_MODALITIES if str(path).endswith(f"_{key}.tif")): [path] for path in paths}
        placed, load = place_outputs(run, plan.destinations, written)
        for key, (path,) in placed.items():
            results[destination_name(key)] = path
            results["OUTPUT_FILES"].append(path)
            if load[key]:  # loaded on completion as generated layers are (physical_layers' bookkeeping), as inputs
                register_input_layer(run.context, path, key, group)
            run.feedback.pushInfo(f"Wrote {path}")
        return results

    def _plan(self, parameters, context, out=True):
        conditions = read_sensor_conditions(self, parameters, context)
        if not conditions:
            raise QgsProcessingException(self.tr("Give at least one condition layer: this shows what the model is "
                                                 "fed of them"))
        return PreparePlan(
            conditions=conditions,
            area=read_area(self, parameters, context),
            date=read_date(self, parameters, context),
            out_dir=destination_path(self, parameters, context, "OUTPUT_FOLDER") if out else None,
        )

    def _request(self, plan, run_name=None):
        """The engine's request (generate's checks, the labels named); the area limit is the setting's."""
        from ...geo.physical_prepare import prepare_request

        with engine_errors(self):
            return prepare_request(plan.conditions, date=plan.date, run_name=run_name,
                                   max_area_km2=settings.max_area_km2(),
                                   **(area_arguments(plan.area) if plan.area else {}))
