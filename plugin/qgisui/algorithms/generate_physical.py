"""Generate physical layers (COP-GEN): the Processing face of generate_area for a COP-GEN model."""

from dataclasses import dataclass
from pathlib import Path

from qgis.core import (
    QgsProcessingOutputMultipleLayers,
    QgsProcessingOutputVectorLayer,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterNumber,
)

from ...engine.families import COPGEN
from ...engine.families.copgen.registry import BY_KEY
from ..physical_layers import WINDOWS_OUTPUT, register_physical_layer, register_windows_layer
from .generate import MAX_SAMPLES, run_name_base
from .model_algorithm import ParameterModelAlgorithm
from .parameters import (
    add_area,
    add_sampling,
    area_arguments,
    check_overlap,
    destination_path,
    read_area,
    read_sampling,
)
from .physical_parameters import (
    add_date,
    add_generate,
    add_key_destinations,
    add_model,
    add_sensor_conditions,
    check_key_destinations,
    destination_name,
    place_outputs,
    read_date,
    read_generate,
    read_key_destinations,
    read_model,
    read_sensor_conditions,
    sensor_layers,
    tell_s2_offsets,
)
from .run_context import generation_request


@dataclass
class PhysicalPlan:
    model: object  # ModelChoice
    generate: list
    conditions: list  # PhysicalConditionSpec
    area: tuple  # from read_area, or None
    date: str  # or None
    sampling: dict
    samples: int
    out_dir: Path
    destinations: dict = None  # {key: the destination's file, or None}


class GeneratePhysicalAlgorithm(ParameterModelAlgorithm):
    NAME = "generatephysical"
    DISPLAY_NAME = "Generate physical layers (COP-GEN)"
    GROUP = "generation"
    HELP = (
        "Generates, with a COP-GEN model, the chosen modalities (Modalities to generate) in physical "
        "units at their native resolutions: Sentinel-2 L1C and L2A band groups as UInt16 DN "
        "(reflectance x 10000) at 10, 20 and 60 m, Sentinel-1 RTC VV and VH as linear backscatter, "
        "the DEM in metres at 30 m, land cover and the L1C cloud mask as class codes (styled with "
        "their legends). Generating Location or Date writes one point per window: where and when "
        "the model thinks the window is.\n\n"
        "Conditions are rasters in physical units, one per sensor: a Sentinel-2 product fills all "
        "of its band groups at once. Which band is which comes from the band descriptions or "
        "metadata, or from the band names given in Advanced parameters; a file without names whose "
        "band count is the sensor's usual one (12 for L2A, 13 for L1C) is read in Major TOM's "
        "order, and the log says so. A Sentinel-2 condition's DN offset (Advanced parameters: auto "
        "reads it from the product's metadata or name, 1000 for processing baseline 04.00 or later) is "
        "taken off before the model reads it, and the log says which. Each window is conditioned on "
        "its own location; Date (1950..2050) conditions every window on that day, empty: not at all.\n\n"
        "The area is the Area, the Area of interest polygons (outside them: nodata), or else the "
        "first condition layer. Outputs are Cloud Optimized GeoTIFFs in the Output folder, one per "
        "modality and sample: synthetic layers, not measurements. Each modality also has its own "
        "output (default: its file in the Output folder), which chains in models and is loaded when "
        "asked. The log tells the estimate before any work."
    )

    def initAlgorithm(self, config=None):  # noqa: N802
        add_sensor_conditions(self)
        add_generate(self)
        add_date(self)
        add_area(self)
        self.addParameter(
            QgsProcessingParameterNumber(
                "SAMPLES", self.tr("Samples"), QgsProcessingParameterNumber.Type.Integer, 1, minValue=1,
                maxValue=MAX_SAMPLES,
            )
        )
        add_sampling(self)
        add_model(self)
        self.addParameter(QgsProcessingParameterFolderDestination("OUTPUT_FOLDER", self.tr("Output folder")))
        add_key_destinations(self, "when generated")  # the first sample of each
        self.addOutput(QgsProcessingOutputVectorLayer(WINDOWS_OUTPUT, self.tr("Location and date per window")))
        self.addOutput(QgsProcessingOutputMultipleLayers("OUTPUT_FILES", self.tr("All generated files")))

    def check(self, parameters, context):
        """What only QGIS can check (the model, layers, the area against them); the engine's
        request validates the rest, naming the labels."""
        plan = self._plan(parameters, context, out=False)
        generation_request(self, plan.conditions, plan.generate,
                           area_arguments(plan.area) if plan.area else None, **self._options(plan))
        if plan.area is not None:
            check_overlap(self, plan.area, sensor_layers(self, parameters, context), context)
        check_key_destinations(self, parameters, context, plan.generate)

    def read(self, parameters, context, run):
        plan = self._plan(parameters, context)
        plan.destinations = read_key_destinations(run)
        return plan

    def execute(self, plan, run):
        tell_s2_offsets(run.feedback, plan.conditions)
        run_name = run.run_name(plan.out_dir, run_name_base(plan.conditions, plan.sampling["seed"]))
        paths = run.generate(plan.conditions, plan.generate, plan.out_dir,
                             area=area_arguments(plan.area) if plan.area else None,
                             run_name=run_name, **self._options(plan))
        return run_name, [Path(path) for path in paths]

    def publish(self, plan, outcome, run):
        run_name, paths = outcome
        group = run.group_name(run_name)
        run_parameters = {
            "model": plan.model.name,
            **plan.sampling,
            "samples": plan.samples,
            "date": plan.date or "not conditioned",
            "conditions": "; ".join(f"{spec.sensor}: {spec.label}" for spec in plan.conditions) or "none",
        }
        results = {"OUTPUT_FOLDER": str(plan.out_dir), "OUTPUT_FILES": []}
        files = iter(paths)  # image modalities in network order, sample 1 first; then the points
        written = {key: [next(files) for _ in range(plan.samples)] for key in plan.generate if BY_KEY[key].has_vae}
        placed, load = place_outputs(run, plan.destinations, written)
        for key, key_paths in placed.items():
            results[destination_name(key)] = key_paths[0]
            for sample, path in enumerate(key_paths, start=1):
                name = f"{BY_KEY[key].label} (synthetic)" + (f" sample {sample}" if plan.samples > 1 else "")
                if load[key]:
                    register_physical_layer(run.context, path, key, group, run_parameters, layer_name=name)
                results["OUTPUT_FILES"].append(path)
                run.feedback.pushInfo(f"Wrote {path}")
        for path in map(str, files):  # <run>_windows.geojson, when location or date was generated
            results[WINDOWS_OUTPUT] = path
            if run.destinations:  # loaded where the user asked for layers (it has no destination)
                register_windows_layer(run.context, path, group, run_parameters)
            results["OUTPUT_FILES"].append(path)
            run.feedback.pushInfo(f"Wrote {path}")
        return results

    def _plan(self, parameters, context, out=True):
        return PhysicalPlan(
            model=read_model(self, parameters, context),
            generate=read_generate(self, parameters, context),
            conditions=read_sensor_conditions(self, parameters, context),
            area=read_area(self, parameters, context),
            date=read_date(self, parameters, context),
            sampling=read_sampling(self, parameters, context),
            samples=self.parameterAsInt(parameters, "SAMPLES", context),
            out_dir=destination_path(self, parameters, context, "OUTPUT_FOLDER") if out else None,
        )

    @staticmethod
    def _options(plan):
        return {"samples": plan.samples, "family": COPGEN, "date": plan.date, **plan.sampling}
