"""A graphical model as a user draws it in the modeler: Generate Sentinel-1 from an S2 L2A tile,
Generate a DEM from that Sentinel-1 output, reproject the DEM with GDAL. Saved as a .model3 file
for the modeler, the toolbox and ``qgis_process run FILE.model3``.

Model parameters: ``tile`` (the S2 L2A raster). Model outputs (destinations): ``dem:dem``, the
generated DEM, and ``warp:dem_wgs84``, the DEM reprojected to EPSG:4326.
"""

S2_L2A_BANDS = {"S2_L2A_RED": 4, "S2_L2A_GREEN": 3, "S2_L2A_BLUE": 2}
DEM, S1_RTC = 0, 1  # the Generate enum's options
OUTPUTS = ("dem:dem", "warp:dem_wgs84")


def build_chain_model(steps=2, seed=1):
    """The model (QgsProcessingModelAlgorithm). The child algorithms must be registered (the
    copgen provider and GDAL's): each step gets a value for every parameter, its default where the
    chain sets none, as the modeler's step dialog saves it (the Model Designer refuses to run a
    model whose steps lack mandatory values)."""
    from qgis.core import (
        QgsApplication,
        QgsProcessingModelAlgorithm,
        QgsProcessingModelChildAlgorithm,
        QgsProcessingModelChildParameterSource,
        QgsProcessingModelOutput,
        QgsProcessingModelParameter,
        QgsProcessingParameterRasterLayer,
    )

    static = QgsProcessingModelChildParameterSource.fromStaticValue
    from_child = QgsProcessingModelChildParameterSource.fromChildOutput
    model = QgsProcessingModelAlgorithm("copgen chain", "copgen tests")
    model.addModelParameter(QgsProcessingParameterRasterLayer("tile", "S2 L2A tile"), QgsProcessingModelParameter("tile"))

    def child(child_id, algorithm_id, sources, outputs=()):
        step = QgsProcessingModelChildAlgorithm(algorithm_id)
        step.setChildId(child_id)
        algorithm = QgsApplication.processingRegistry().algorithmById(algorithm_id)
        if algorithm is None:
            raise RuntimeError(f"{algorithm_id} is not registered")
        for definition in algorithm.parameterDefinitions():
            if not definition.isDestination():
                step.addParameterSources(definition.name(), [sources.get(definition.name(), static(definition.defaultValue()))])
        declared = {}
        for output_name, child_output in outputs:
            declared[output_name] = QgsProcessingModelOutput(output_name, output_name)
            declared[output_name].setChildOutputName(child_output)
            declared[output_name].setChildId(child_id)
        step.setModelOutputs(declared)
        model.addChildAlgorithm(step)

    sampling = {"STEPS": static(steps), "SEED": static(seed)}
    # Its output folder and its S1 file left as the modeler leaves them: temporary outputs.
    child("s1", "copgen:generate", {
        "S2_L2A": QgsProcessingModelChildParameterSource.fromModelParameter("tile"),
        **{name: static(band) for name, band in S2_L2A_BANDS.items()},
        "GENERATE": static([S1_RTC]),
        **sampling,
    })
    child("dem", "copgen:generate", {
        "S1_RTC": from_child("s1", "OUTPUT_S1_RTC"),
        "GENERATE": static([DEM]),
        **sampling,
    }, outputs=[("dem", "OUTPUT_DEM")])
    child("warp", "gdal:warpreproject", {
        "INPUT": from_child("dem", "OUTPUT_DEM"),
        "TARGET_CRS": static("EPSG:4326"),
    }, outputs=[("dem_wgs84", "OUTPUT")])
    return model


def write_chain_model(path, **options):
    """Save the model as ``path`` (.model3), as the modeler's Save does; returns the path."""
    if not build_chain_model(**options).toFile(str(path)):
        raise RuntimeError(f"could not write {path}")
    return path
