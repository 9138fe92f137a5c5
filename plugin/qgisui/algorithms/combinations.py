"""All conditioning combinations: generate from every subset of four real rasters and compare."""

from qgis.core import (
    QgsProcessing,
    QgsProcessingException,
    QgsProcessingParameterFeatureSink,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterFolderDestination,
)
from qgis.PyQt.QtCore import QMetaType

from ...analysis.combinations import condition_subsets, run_combinations
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
    load_model,
    metrics_table,
    model_problem,
    parameter_name,
    pipeline_callbacks,
    read_condition,
    read_sampling,
    unique_run_name,
)


class CombinationsAlgorithm(CopGenAlgorithm):
    NAME = "combinations"
    DISPLAY_NAME = "All conditioning combinations"
    GROUP = "analysis"
    HELP = (
        f"Takes real rasters of all four modalities of one area and runs {len(condition_subsets())} "
        "generations: unconditional, and conditioned on every subset of one, two or three of them, each "
        "generating the others. Every generated layer is compared with the real one (PSNR, SSIM, mean "
        "absolute error, colour-histogram distance) in OUTPUT_TABLE, and OUTPUT_SHEET is a PNG with one "
        "row per combination: real renderings on the left (the given ones framed in green), generated "
        "ones on the right. All runs share one grid (the smallest raster's) and one seed."
    )

    def initAlgorithm(self, config=None):  # noqa: N802
        for modality in MODALITIES:
            add_condition(self, parameter_name(modality), f"Real {LABELS[modality]}", modality, optional=False)
        add_sampling(self)
        self.addParameter(QgsProcessingParameterFolderDestination("OUTPUT_FOLDER", self.tr("Output folder")))
        self.addParameter(
            QgsProcessingParameterFileDestination("OUTPUT_SHEET", self.tr("Comparison sheet"), "PNG files (*.png)")
        )
        self.addParameter(
            QgsProcessingParameterFeatureSink(
                "OUTPUT_TABLE", self.tr("Combination metrics"), QgsProcessing.SourceType.TypeVector
            )
        )

    def checkParameterValues(self, parameters, context):  # noqa: N802
        try:
            for modality in MODALITIES:
                if read_condition(self, parameters, context, parameter_name(modality), modality) is None:
                    raise QgsProcessingException(
                        f"{parameter_name(modality)}: a real {LABELS[modality]} raster is needed"
                    )
            problem = model_problem()
            if problem:
                raise QgsProcessingException(problem)
        except QgsProcessingException as exc:
            return False, str(exc)
        return super().checkParameterValues(parameters, context)

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        conditions = {m: read_condition(self, parameters, context, parameter_name(m), m) for m in MODALITIES}
        sampling = read_sampling(self, parameters, context)
        out_dir = destination_path(self, parameters, context, "OUTPUT_FOLDER")
        sheet = destination_path(self, parameters, context, "OUTPUT_SHEET")
        run_name = unique_run_name(out_dir, f"combinations_seed{sampling['seed']}")
        leading_fields = (("combination", QMetaType.Type.QString), ("modality", QMetaType.Type.QString))
        sink, table = metrics_table(self, parameters, context, "OUTPUT_TABLE", leading_fields)
        model = load_model(feedback)
        progress, cancel = pipeline_callbacks(feedback)
        with engine_errors():
            results = run_combinations(
                model,
                conditions,
                out_dir,
                sheet,
                run_name=run_name,
                max_area_km2=settings.max_area_km2(),
                progress=progress,
                cancel=cancel,
                **sampling,
            )
        run_parameters = {**sampling, **{m: spec.label for m, spec in conditions.items()}}
        for result in results:
            name = f"{default_layer_name(result.modality)} {result.label.lower()}"
            register_output_layer(context, str(result.path), result.modality, run_name, run_parameters, layer_name=name)
            add_metrics_row(sink, [result.label, result.modality], result.metrics, result.path)
            feedback.pushInfo(f"{result.label}, {LABELS[result.modality]}: {describe_metrics(result.metrics)}")
        return {"OUTPUT_FOLDER": str(out_dir), "OUTPUT_SHEET": str(sheet), "OUTPUT_TABLE": table}
