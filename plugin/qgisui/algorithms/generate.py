"""Generate modalities: the Processing face of plugin.geo.pipeline.generate_area."""

from pathlib import Path

from qgis.core import (
    QgsProcessingException,
    QgsProcessingOutputMultipleLayers,
    QgsProcessingOutputRasterLayer,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterNumber,
)

from ...engine.modalities import LABELS, MODALITIES
from ...engine.request import GenerationRequest
from ...geo.pipeline import generate_area
from .. import settings
from ..errors import parameter_labels
from ..output_layers import default_layer_name, register_output_layer
from .base import CopGenAlgorithm
from .parameters import (
    add_area,
    add_condition,
    add_sampling,
    area_arguments,
    check_overlap,
    destination_path,
    engine_errors,
    file_safe,
    load_model,
    modality_options,
    model_problem,
    parameter_name,
    pipeline_callbacks,
    raster_layer,
    read_area,
    read_condition,
    read_sampling,
    unique_run_name,
)

MAX_SAMPLES = 64
# The parameter that sets each GenerationRequest field: engine errors name its label.
REQUEST_PARAMETERS = {
    "generate": "GENERATE",
    **{f"conditions.{modality}": parameter_name(modality) for modality in MODALITIES},
    "extent": "EXTENT",
    "aoi": "AOI",
    "samples": "SAMPLES",
    "seed": "SEED",
    "steps": "STEPS",
    "solver": "SOLVER",
    "reflectance": "REFLECTANCE",
}


class GenerateAlgorithm(CopGenAlgorithm):
    NAME = "generate"
    DISPLAY_NAME = "Generate modalities"
    GROUP = "generation"
    HELP = (
        "Generates the chosen modalities (GENERATE) from any of the others given as condition layers: "
        "DEM elevation, Sentinel-1 RTC (VV, VH backscatter), Sentinel-2 L1C and L2A (bands B04, B03, "
        "B02). A condition is read in physical units (rendered here as the model's training thumbnails) "
        "or as a ready rendered thumbnail (8-bit RGB). Without conditions the generation is "
        "unconditional and needs an EXTENT or AOI.\n\n"
        "The area is the EXTENT, the AOI polygons (outside them: nodata), or else the first condition "
        "layer; any size is generated seamlessly on a 10 m grid. Outputs are Cloud Optimized GeoTIFFs "
        "in OUTPUT_FOLDER, one per generated modality and sample: synthetic imagery, not measurements. "
        "REFLECTANCE writes Sentinel-2 outputs as UInt16 reflectance x 10000 (B04, B03, B02).\n\n"
        "SEED makes a run reproducible; STEPS is the number of network calls (50 = the reference).\n\n"
        "Advanced parameters, per condition: its bands, one per channel (B04, B03, B02 / VV, VH / "
        "elevation; empty: from band names and count), whether Sentinel-1 values are in dB, and the "
        "Sentinel-2 DN offset (1000 for products of processing baseline 04.00 or later, since 2022)."
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
        for modality in MODALITIES:
            self.addOutput(
                QgsProcessingOutputRasterLayer(
                    f"OUTPUT_{parameter_name(modality)}", self.tr(default_layer_name(modality))
                )
            )
        self.addOutput(QgsProcessingOutputMultipleLayers("OUTPUT_FILES", self.tr("All generated files")))

    def checkParameterValues(self, parameters, context):  # noqa: N802
        try:
            self._check(parameters, context)
        except QgsProcessingException as exc:
            return False, str(exc)
        return super().checkParameterValues(parameters, context)

    def _check(self, parameters, context):
        """What only QGIS can check (layers, bands, the area against the layers, the model);
        the request validates the rest (see plugin.engine.request)."""
        self._request(parameters, context)
        area = read_area(self, parameters, context)
        if area is not None:
            names = map(parameter_name, MODALITIES)
            layers = {name: raster_layer(self, parameters, context, name) for name in names}
            check_overlap(area, {name: layer for name, layer in layers.items() if layer is not None}, context)
        problem = model_problem()
        if problem:
            raise QgsProcessingException(problem)

    def _request(self, parameters, context, run_name=None):
        """The GenerationRequest of the parameters; engine errors name the parameter's label."""
        conditions = [
            spec
            for spec in (read_condition(self, parameters, context, parameter_name(m), m) for m in MODALITIES)
            if spec is not None
        ]
        area = read_area(self, parameters, context)
        with engine_errors(self.labels()):
            return GenerationRequest(
                generate=self._generate(parameters, context),
                conditions=conditions,
                samples=self.parameterAsInt(parameters, "SAMPLES", context),
                reflectance=self.parameterAsBoolean(parameters, "REFLECTANCE", context),
                max_area_km2=settings.max_area_km2(),
                run_name=run_name,
                **read_sampling(self, parameters, context),
                **(area_arguments(area) if area else {}),
            )

    def labels(self):
        labels = parameter_labels(self, REQUEST_PARAMETERS)
        labels["max_area_km2"] = self.tr("Maximum area (plugin settings)")
        return labels

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        request = self._request(parameters, context)
        out_dir = destination_path(self, parameters, context, "OUTPUT_FOLDER")
        run_name = unique_run_name(out_dir, run_name_base(request.conditions, request.seed))
        request = self._request(parameters, context, run_name)
        model = load_model(feedback)
        progress, cancel = pipeline_callbacks(feedback)
        with engine_errors(self.labels()):
            paths = generate_area(model, request, out_dir, progress=progress, cancel=cancel)
        run_parameters = {
            "seed": request.seed,
            "steps": request.steps,
            "solver": request.solver,
            "samples": request.samples,
            "conditions": "; ".join(f"{spec.modality}: {spec.label}" for spec in request.conditions) or "none",
        }
        results = {"OUTPUT_FOLDER": str(out_dir), "OUTPUT_FILES": [str(path) for path in paths]}
        per_modality = iter(paths)  # generate_area returns them modality by modality, sample 1 first
        for modality in request.generate:
            files = [next(per_modality) for _ in range(request.samples)]
            for sample, path in enumerate(files, start=1):
                name = default_layer_name(modality) + (f" sample {sample}" if request.samples > 1 else "")
                register_output_layer(context, str(path), modality, run_name, run_parameters, layer_name=name)
                feedback.pushInfo(f"Wrote {path}")
            results[f"OUTPUT_{parameter_name(modality)}"] = str(files[0])
        return results

    def _generate(self, parameters, context):
        return [MODALITIES[index] for index in sorted(set(self.parameterAsEnums(parameters, "GENERATE", context)))]


def run_name_base(conditions, seed):
    """The run's name from its first condition layer (or "unconditional") and seed, file-safe."""
    source = (conditions[0].layer_name or Path(conditions[0].path).stem) if conditions else "unconditional"
    return f"{file_safe(source)}_seed{seed}"

