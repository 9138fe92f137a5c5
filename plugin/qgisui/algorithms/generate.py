"""Generate modalities: the Processing face of plugin.geo.pipeline.generate_area."""

from dataclasses import dataclass, field
from pathlib import Path

from qgis.core import (
    QgsProcessingOutputMultipleLayers,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterNumber,
)

from ...engine.families import BETA
from ...engine.families.beta.registry import LABELS, MODALITIES
from ...engine.wording import percent
from ...geo.condition_spec import describe_s2_offset
from ...geo.pipeline import FULL_COVERAGE
from .. import settings
from ..errors import SETTING_LABELS
from ..output_layers import default_layer_name
from ..physical_names import family_of_folder, other_family_hint
from .model_algorithm import ModelAlgorithm
from .parameters import (
    add_area,
    add_condition,
    add_sampling,
    area_arguments,
    check_geotiff_destination,
    check_overlap,
    coverage_fractions,
    destination_path,
    label,
    modality_options,
    parameter_name,
    raster_layer,
    read_area,
    read_condition,
    read_sampling,
)
from .run_context import declare_modality_destinations, generation_request

MAX_SAMPLES = 64


@dataclass
class GeneratePlan:
    generate: list
    conditions: list  # ConditionSpec
    layers: dict  # {parameter: QgsRasterLayer} of the conditions
    area: tuple  # from read_area, or None
    sampling: dict
    samples: int
    reflectance: bool
    out_dir: Path
    destinations: dict  # {modality: the destination's file, or None}
    coverage: dict = field(default_factory=dict)  # {parameter: fraction of the area}


class GenerateAlgorithm(ModelAlgorithm):
    NAME = "generate"
    DISPLAY_NAME = "Generate modalities"
    GROUP = "generation"
    HELP = (
        "Generates the chosen modalities (Modalities to generate) from any of the others given as "
        "condition layers: DEM elevation, Sentinel-1 RTC (VV, VH backscatter), Sentinel-2 L1C and L2A "
        "(bands B04, B03, B02). A condition's values are physical units (rendered here as the model's "
        "training thumbnails), a ready rendered thumbnail (8-bit RGB), or, by default, as the layer says "
        "(this plugin's own outputs are recognised by their tags). Without conditions the generation is "
        "unconditional and needs an Area or Area of interest polygons.\n\n"
        "The area is the Area, the Area of interest polygons (outside them: nodata), or else the first "
        "condition layer; any size is generated seamlessly on a 10 m grid. A condition that covers only "
        "part of the area is told in the log before any work. Every output is a Cloud Optimized GeoTIFF "
        "in the Output folder, one per generated modality and sample: synthetic imagery, not "
        "measurements. Each modality also has its own output (default: its file in the Output folder), "
        "which chains in models and is loaded when asked. \"Sentinel-2 outputs as reflectance\" writes "
        "UInt16 reflectance x 10000 (B04, B03, B02).\n\n"
        "Random seed makes a run reproducible; Solver steps is the number of network calls (50 = the "
        "reference). The log tells the work ahead and the progress text the time left.\n\n"
        "Advanced parameters, per condition: its bands, one per channel (empty: from the layer), whether "
        "Sentinel-1 values are in dB, and the Sentinel-2 DN offset (auto: read from the product's "
        "metadata or name; 1000 for processing baseline 04.00 or later, since 2022)."
    )

    def initAlgorithm(self, config=None):  # noqa: N802
        for modality in MODALITIES:
            add_condition(self, parameter_name(modality), f"{LABELS[modality]} condition", modality)
        self.addParameter(
            QgsProcessingParameterEnum(
                "GENERATE", self.tr("Modalities to generate"), options=modality_options(), allowMultiple=True
            )
        )
        add_area(self)
        self.addParameter(
            QgsProcessingParameterNumber(
                "SAMPLES",
                self.tr("Samples"),
                QgsProcessingParameterNumber.Type.Integer,
                1,
                minValue=1,
                maxValue=MAX_SAMPLES,
            )
        )
        add_sampling(self)
        self.addParameter(
            QgsProcessingParameterBoolean(
                "REFLECTANCE", self.tr("Sentinel-2 outputs as reflectance (UInt16 DN, B04 B03 B02)"), False
            )
        )
        self.addParameter(QgsProcessingParameterFolderDestination("OUTPUT_FOLDER", self.tr("Output folder")))
        declare_modality_destinations(self)
        self.addOutput(QgsProcessingOutputMultipleLayers("OUTPUT_FILES", self.tr("All generated files")))

    def model_problem(self, parameters, context):
        """The settings' model, which must be a COP-GEN-Beta one (a COP-GEN model has its own
        algorithm: said in one line)."""
        folder = settings.model_dir()
        found = family_of_folder(folder)
        if found not in (None, BETA):
            return f"{SETTING_LABELS['model']}: {other_family_hint(folder, found, BETA)}"
        return super().model_problem(parameters, context)

    def check(self, parameters, context):
        """What only QGIS can check (layers, bands, the area against the layers, destinations);
        the engine's request validates the rest (plugin.engine.request), naming the labels."""
        specs = self._conditions(parameters, context)  # checks their bands and options
        area = read_area(self, parameters, context)
        generate = self._generate(parameters, context)
        generation_request(
            self,
            specs.values(),
            generate,
            area_arguments(area) if area else None,
            samples=self.parameterAsInt(parameters, "SAMPLES", context),
            reflectance=self.parameterAsBoolean(parameters, "REFLECTANCE", context),
            **read_sampling(self, parameters, context),
        )
        if area is not None:
            layers = {parameter_name(m): raster_layer(self, parameters, context, parameter_name(m)) for m in specs}
            check_overlap(self, area, layers, context)
        for modality in generate:
            check_geotiff_destination(self, parameters, context, f"OUTPUT_{parameter_name(modality)}")

    def read(self, parameters, context, run):
        specs = self._conditions(parameters, context)
        return GeneratePlan(
            generate=self._generate(parameters, context),
            conditions=list(specs.values()),
            layers={parameter_name(m): raster_layer(self, parameters, context, parameter_name(m)) for m in specs},
            area=read_area(self, parameters, context),
            sampling=read_sampling(self, parameters, context),
            samples=self.parameterAsInt(parameters, "SAMPLES", context),
            reflectance=self.parameterAsBoolean(parameters, "REFLECTANCE", context),
            out_dir=destination_path(self, parameters, context, "OUTPUT_FOLDER"),
            destinations={m: run.destination(f"OUTPUT_{parameter_name(m)}") for m in MODALITIES},
        )

    def execute(self, plan, run):
        self._tell_conditions(plan, run)
        run_name = run.run_name(plan.out_dir, run_name_base(plan.conditions, plan.sampling["seed"]))
        paths = run.generate(
            plan.conditions,
            plan.generate,
            plan.out_dir,
            area=area_arguments(plan.area) if plan.area else None,
            samples=plan.samples,
            reflectance=plan.reflectance,
            run_name=run_name,
            notify=lambda message: None if " covers " in message else run.note(message),
            **plan.sampling,
        )
        return run_name, [Path(path) for path in paths]

    # notify: the engine's notes (a file's bands read in Major TOM's order) go to the log; its
    # coverage of each condition was told from the footprints before any work (_tell_conditions).

    def _tell_conditions(self, plan, run):
        """Before any work: the S2 offset each condition uses and why; a warning per condition
        that covers only part of the area."""
        for spec in plan.conditions:
            if spec.s2_offset_note:
                words = f"{LABELS[spec.modality]} condition {spec.layer_name!r}"
                run.feedback.pushInfo(f"{words}: {describe_s2_offset(spec)}")
        plan.coverage = coverage_fractions(plan.area, plan.layers, run.context)
        for name, fraction in plan.coverage.items():
            if fraction < FULL_COVERAGE:
                run.feedback.pushWarning(
                    f"{label(self, name)}: the layer {plan.layers[name].name()!r} covers {percent(fraction)} of "
                    "the area; outside it the model generates without this condition"
                )

    def publish(self, plan, outcome, run):
        run_name, paths = outcome
        group = run.group_name(run_name)
        run_parameters = {
            **plan.sampling,
            "samples": plan.samples,
            "conditions": "; ".join(f"{spec.modality}: {spec.label}" for spec in plan.conditions) or "none",
            **{
                f"coverage of {label(self, name)}": percent(fraction)
                for name, fraction in plan.coverage.items()
            },
        }
        results = {"OUTPUT_FOLDER": str(plan.out_dir), "OUTPUT_FILES": []}
        for modality in set(MODALITIES) - set(plan.generate):
            run.forget(plan.destinations[modality])
        per_modality = iter(paths)  # in the request's order: modality by modality, sample 1 first
        for modality in plan.generate:
            files = [next(per_modality) for _ in range(plan.samples)]
            first = run.settle(plan.destinations[modality], files[0])
            results[f"OUTPUT_{parameter_name(modality)}"] = first
            wanted = run.wants_layers(first)
            for sample, path in enumerate([first, *files[1:]], start=1):
                name = default_layer_name(modality) + (f" sample {sample}" if plan.samples > 1 else "")
                run.show(path, modality, group, run_parameters, layer_name=name, load=wanted)
                results["OUTPUT_FILES"].append(str(path))
                run.feedback.pushInfo(f"Wrote {path}")
        return results

    def _conditions(self, parameters, context):
        """{modality: ConditionSpec} of the condition layers given."""
        specs = {m: read_condition(self, parameters, context, parameter_name(m), m) for m in MODALITIES}
        return {modality: spec for modality, spec in specs.items() if spec is not None}

    def _generate(self, parameters, context):
        return [MODALITIES[index] for index in sorted(set(self.parameterAsEnums(parameters, "GENERATE", context)))]


def run_name_base(conditions, seed):
    """The run's name from its first condition layer (or "unconditional") and seed."""
    source = (conditions[0].layer_name or Path(conditions[0].path).stem) if conditions else "unconditional"
    return f"{source}_seed{seed}"

