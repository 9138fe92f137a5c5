"""What a QGIS user sees of a run, in a real QgsApplication with the tiny model (random weights):
transparency outside the area, the coverage warning, loading only what was asked for, the S2
offset read from the product, errors in the dialog's words, outputs that chain in a model."""

import json
from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal

from test_qgis_algorithms import (  # noqa: F401 (fixtures)
    CLI_WORDS,
    ENUM,
    INPUT_BANDS,
    S2_L2A_BANDS,
    STEPS,
    RecordingFeedback,
    assert_dialog_words,
    check,
    provider,
    reset_insertion_point,
    run,
    select_a_group_of_the_users,
    tiles,
)

pytest.importorskip("qgis.core")


def tile_box(path):
    ds = gdal.Open(str(path))
    x0, dx, _, y0, _, dy = ds.GetGeoTransform()
    return x0, y0 + dy * ds.RasterYSize, x0 + dx * ds.RasterXSize, y0, ds.GetSpatialRef().GetAuthorityCode(None)


def aoi_file(path, box, epsg):
    """A GeoJSON with one square in the middle third of ``box`` (xmin, ymin, xmax, ymax)."""
    xmin, ymin, xmax, ymax = box
    w, h = (xmax - xmin) / 3, (ymax - ymin) / 3
    ring = [[xmin + w, ymin + h], [xmin + 2 * w, ymin + h], [xmin + 2 * w, ymin + 2 * h], [xmin + w, ymin + 2 * h]]
    path.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "crs": {"type": "name", "properties": {"name": f"urn:ogc:def:crs:EPSG::{epsg}"}},
                "features": [
                    {"type": "Feature", "properties": {}, "geometry": {"type": "Polygon", "coordinates": [ring + ring[:1]]}}
                ],
            }
        )
    )
    return path


# The Generate dialog's defaults for the per-modality destinations: a temporary output each,
# which means the file in the output folder.
DIALOG_DEFAULTS = {f"OUTPUT_{key.upper()}": "TEMPORARY_OUTPUT" for key in ENUM}


@pytest.fixture
def clean_project():
    from qgis.core import QgsProject

    QgsProject.instance().clear()
    yield QgsProject.instance()
    reset_insertion_point(QgsProject.instance())  # a test may have pointed it into a group
    QgsProject.instance().clear()


def render(layer, width=120):
    """The layer drawn alone over a transparent background, as a QImage of its extent."""
    from qgis.core import QgsMapRendererSequentialJob, QgsMapSettings
    from qgis.PyQt.QtCore import QSize
    from qgis.PyQt.QtGui import QColor

    settings = QgsMapSettings()
    settings.setLayers([layer])
    settings.setDestinationCrs(layer.crs())
    settings.setExtent(layer.extent())
    settings.setOutputSize(QSize(width, width))
    settings.setBackgroundColor(QColor(0, 0, 0, 0))
    job = QgsMapRendererSequentialJob(settings)
    job.start()
    job.waitForFinished()
    return job.renderedImage()


def generated_layers(project):
    return [layer for layer in project.mapLayers().values() if layer.customProperty("copgen_beta/modality")]


@pytest.mark.timeout(300)
def test_outputs_are_transparent_outside_the_aoi_in_every_style(provider, tiles, tmp_path, clean_project):
    import processing

    *box, epsg = tile_box(tiles[0])
    parameters = {
        "S2_L2A": str(tiles[0]),
        **S2_L2A_BANDS,
        "AOI": str(aoi_file(tmp_path / "aoi.geojson", box, epsg)),
        # dem: hillshade style; s1_rtc: 8-bit RGB style; s2_l1c as reflectance: the UInt16 style
        "GENERATE": [ENUM["dem"], ENUM["s1_rtc"], ENUM["s2_l1c"]],
        "REFLECTANCE": True,
        "STEPS": STEPS,
        "OUTPUT_FOLDER": str(tmp_path / "out"),
        **DIALOG_DEFAULTS,
    }
    processing.runAndLoadResults("copgen:generate", parameters)
    layers = {layer.customProperty("copgen_beta/modality"): layer for layer in generated_layers(clean_project)}
    assert sorted(layers) == ["dem", "s1_rtc", "s2_l1c"]
    assert len(clean_project.mapLayers()) == 3  # the S2 L2A destination (not generated) is not loaded
    styles = set()
    for modality, layer in layers.items():
        assert str(tmp_path / "out") in layer.source()  # the file in the output folder was loaded
        styles.add(layer.renderer().type() + str(layer.dataProvider().dataType(1)))
        image = render(layer)
        corner, centre = image.pixelColor(3, 3), image.pixelColor(60, 60)
        assert corner.alpha() == 0, modality  # outside the AOI: the map below shows through
        assert centre.alpha() == 255, modality
    assert len(styles) == 3


@pytest.mark.timeout(300)
def test_a_condition_covering_part_of_the_area_is_told_before_sampling(provider, tiles, tmp_path, clean_project):
    import processing

    xmin, ymin, xmax, ymax, epsg = tile_box(tiles[0])
    width = xmax - xmin
    extent = f"{xmin},{xmax + width},{ymin},{ymax} [EPSG:{epsg}]"  # twice the tile: half covered
    feedback = RecordingFeedback()
    events = []
    feedback.progressChanged.connect(lambda value: events.append(("progress", value)))
    feedback.pushWarning = lambda text, record=feedback.pushWarning: (events.append(("warning", text)), record(text))
    parameters = {
        "S2_L2A": str(tiles[0]),
        **S2_L2A_BANDS,
        "EXTENT": extent,
        "GENERATE": [ENUM["dem"]],
        "STEPS": STEPS,
        "OUTPUT_FOLDER": str(tmp_path / "out"),
        **DIALOG_DEFAULTS,
    }
    processing.runAndLoadResults("copgen:generate", parameters, feedback=feedback)
    coverage = [w for w in feedback.warnings if "covers" in w]
    assert len(coverage) == 1 and "Sentinel-2 L2A true colour condition" in coverage[0] and "50 %" in coverage[0]
    first_warning = next(i for i, event in enumerate(events) if event[0] == "warning" and "covers" in event[1])
    assert not any(event[0] == "progress" and event[1] > 0 for event in events[:first_warning])
    (layer,) = generated_layers(clean_project)
    history = "\n".join(layer.metadata().history())
    assert "coverage of Sentinel-2 L2A true colour condition: 50 %" in history
    assert "condition covers" in history  # what the engine measured on the pixels, from the file's tag


def batch_parameters(tiles, tmp_path, project):
    """Two batch rows as the batch dialog builds them: destinations with ``project`` to load into
    (None with "Load layers on completion" off)."""
    from qgis.core import QgsProcessingOutputLayerDefinition

    rows = []
    for k, tile in enumerate(tiles):
        destination = QgsProcessingOutputLayerDefinition(str(tmp_path / f"dem_{k}.tif"), project)
        rows.append(
            {
                "S2_L2A": str(tile),
                **S2_L2A_BANDS,
                "GENERATE": [ENUM["dem"]],
                "STEPS": STEPS,
                "OUTPUT_FOLDER": str(tmp_path / "out"),
                "OUTPUT_DEM": destination,
            }
        )
    return rows


@pytest.mark.timeout(300)
@pytest.mark.parametrize("load", [False, True])
def test_batch_loads_layers_only_when_asked(provider, tiles, tmp_path, clean_project, load):
    from processing.gui.Postprocessing import handleAlgorithmResults
    from processing.tools import dataobjects
    from qgis.core import QgsApplication

    algorithm = QgsApplication.processingRegistry().createAlgorithmById("copgen:generate")
    before = len(clean_project.mapLayers())
    for parameters in batch_parameters(tiles, tmp_path, clean_project if load else None):
        feedback = RecordingFeedback()
        context = dataobjects.createContext(feedback)  # what the batch dialog does per row
        results, ok = algorithm.run(parameters, context, feedback)
        assert ok, feedback.lines
        assert results["OUTPUT_DEM"] == parameters["OUTPUT_DEM"].sink.staticValue()
        handleAlgorithmResults(algorithm, context, feedback, False, parameters)
    assert len(clean_project.mapLayers()) == before + (2 if load else 0)
    if load:  # two runs of the same name from two tiles, two groups
        groups = [child.name() for child in clean_project.layerTreeRoot().children()]
        assert len(groups) == len(set(groups)) == 2


NOT_GENERATED = "not correctly generated"


def error_recorder():
    """A RecordingFeedback that also keeps reportError's texts (where Processing tells of layers
    it could not load)."""
    feedback = RecordingFeedback()
    feedback.errors = []
    feedback.reportError = lambda text, fatal=False, record=feedback.reportError: (feedback.errors.append(text), record(text, fatal))
    return feedback


def batch_row(tile, out_dir, project):
    """One row as the batch dialog's parametersForRow builds it: every raster destination an
    output definition of the cell's text ("" where left empty) and the project to load into
    (None with "Load layers on completion" off)."""
    from qgis.core import QgsProcessingOutputLayerDefinition

    return {
        "S2_L2A": str(tile),
        **S2_L2A_BANDS,
        "GENERATE": [ENUM["dem"]],
        "STEPS": STEPS,
        "OUTPUT_FOLDER": str(out_dir),
        **{name: QgsProcessingOutputLayerDefinition("", project) for name in DIALOG_DEFAULTS},
    }


@pytest.mark.timeout(300)
@pytest.mark.parametrize("load", [False, True])
def test_batch_rows_with_empty_destination_cells_load_their_layers(provider, tiles, tmp_path, clean_project, load):
    from processing.gui.Postprocessing import handleAlgorithmResults
    from processing.tools import dataobjects
    from qgis.core import QgsApplication

    algorithm = QgsApplication.processingRegistry().createAlgorithmById("copgen:generate")
    for k, tile in enumerate(tiles):
        parameters = batch_row(tile, tmp_path / f"row{k}", clean_project if load else None)
        feedback = error_recorder()
        context = dataobjects.createContext(feedback)  # what the batch dialog does per row
        results, ok = algorithm.run(parameters, context, feedback)
        assert ok, feedback.lines
        assert handleAlgorithmResults(algorithm, context, feedback, False, parameters), feedback.errors
        assert not [e for e in feedback.errors if NOT_GENERATED in e]
        assert Path(results["OUTPUT_DEM"]).parent == tmp_path / f"row{k}"
    loaded = sorted(Path(layer.source()).name for layer in generated_layers(clean_project))
    assert loaded == (sorted(f"{Path(t).stem}_seed0_dem.tif" for t in tiles) if load else [])


@pytest.mark.timeout(300)
def test_run_and_load_results_with_empty_destinations_loads_the_generated_layer(provider, tiles, tmp_path, clean_project):
    import processing

    feedback = error_recorder()
    parameters = {**batch_row(tiles[0], tmp_path / "out", None), **{name: "" for name in DIALOG_DEFAULTS}}
    processing.runAndLoadResults("copgen:generate", parameters, feedback=feedback)
    assert not [e for e in feedback.errors if NOT_GENERATED in e]
    assert [layer.customProperty("copgen_beta/modality") for layer in generated_layers(clean_project)] == ["dem"]


@pytest.mark.timeout(300)
def test_a_failed_run_reports_no_layer_that_was_not_generated(provider, tiles, tmp_path, clean_project):
    """Cancelled in the dialog's way (a task in the task manager), then loaded as the dialog does
    even after a failure: its error alone, no "not correctly generated" line after it."""
    from processing.gui.Postprocessing import handleAlgorithmResults
    from qgis.core import QgsProcessingOutputLayerDefinition

    from test_qgis_gui import run_as_task

    parameters = {**batch_row(tiles[0], tmp_path / "out", clean_project), **DIALOG_DEFAULTS}
    parameters["OUTPUT_DEM"] = QgsProcessingOutputLayerDefinition("TEMPORARY_OUTPUT", clean_project)

    def cancel_once_started(feedback):  # the destinations are read: the layer is registered to load
        if 0 < feedback.progress() < 100:
            feedback.cancel()

    outcome, _, algorithm, context = run_as_task("copgen:generate", parameters, cancel_once_started, check_first=True)
    assert outcome["ok"] is False
    feedback = error_recorder()
    handleAlgorithmResults(algorithm, context, feedback, False, parameters)
    assert not [e for e in feedback.errors if NOT_GENERATED in e], feedback.errors
    assert generated_layers(clean_project) == []


@pytest.mark.timeout(120)
def test_the_cells_layer_loads_as_labelled_outlines(provider, tiles, clean_project):
    import processing
    from qgis.core import QgsVectorLayer

    xmin, ymin, xmax, ymax, epsg = tile_box(tiles[0])
    selected = select_a_group_of_the_users(clean_project)
    processing.runAndLoadResults(
        "copgen:majortom_cells", {"EXTENT": f"{xmin},{xmax},{ymin},{ymax} [EPSG:{epsg}]", "OUTPUT": "TEMPORARY_OUTPUT"}
    )
    (layer,) = [layer for layer in clean_project.mapLayers().values() if isinstance(layer, QgsVectorLayer)]
    symbol = layer.renderer().symbol()
    assert symbol.color().alpha() == 0  # the map below shows through
    assert layer.labelsEnabled() and layer.labeling().settings().fieldName == "name"
    # at the top of the tree, not inside the group the user had selected
    assert selected.children() == [] and clean_project.layerTreeRoot().children()[0].layer() is layer


def write_s2_product(path, tags, values=1500):
    """A 12-band S2 L2A stack (Major TOM band order) carrying ``tags`` as GDAL reports them."""
    ds = gdal.GetDriverByName("GTiff").Create(str(path), 64, 64, 12, gdal.GDT_UInt16)
    ds.SetGeoTransform((500000, 10, 0, 5000000, 0, -10))
    ds.SetProjection("EPSG:32633")
    rng = np.random.default_rng(0)
    for band in range(1, 13):
        ds.GetRasterBand(band).WriteArray(rng.integers(values, values + 1000, (64, 64), dtype=np.uint16))
    ds.SetMetadata(tags)
    ds = None
    return path


# What GDAL's SENTINEL2 driver reports for a processing baseline 04.00 L2A product.
BASELINE_04_TAGS = {
    "PROCESSING_BASELINE": "04.00",
    "PRODUCT_URI": "S2B_MSIL2A_20220315T101649_N0400_R065_T32TQM_20220315T131914.SAFE",
    "BOA_ADD_OFFSET_B4": "-1000",
}


@pytest.mark.timeout(120)
def test_prepare_reads_the_s2_offset_from_the_product(provider, tmp_path):
    product = write_s2_product(tmp_path / "product.tif", BASELINE_04_TAGS)
    plain = write_s2_product(tmp_path / "plain.tif", {})
    feedback = RecordingFeedback()
    base = {"MODALITY": ENUM["s2_l2a"], **INPUT_BANDS}
    run("prepare", {**base, "INPUT": str(product), "OUTPUT": str(tmp_path / "auto.tif")}, feedback)
    run("prepare", {**base, "INPUT": str(plain), "DN_OFFSET": "1000", "OUTPUT": str(tmp_path / "manual.tif")})
    run("prepare", {**base, "INPUT": str(product), "DN_OFFSET": "0", "OUTPUT": str(tmp_path / "zero.tif")})
    auto, manual, zero = (gdal.Open(str(tmp_path / f"{n}.tif")).ReadAsArray() for n in ("auto", "manual", "zero"))
    np.testing.assert_array_equal(auto, manual)  # auto == 1000 for baseline 04.00
    assert not np.array_equal(auto, zero)  # a manual value overrides
    assert any("DN offset 1000" in line and "ADD_OFFSET" in line for line in feedback.lines)


@pytest.mark.timeout(120)
def test_errors_from_qgis_paths_name_labels_never_cli_flags(provider, tiles, tmp_path, monkeypatch):
    from qgis.core import QgsProcessingException, QgsSettings

    # The area limit: an engine error about a setting, named by the setting's label.
    QgsSettings().setValue("copgen_beta/max_area_km2", 0.5)
    try:
        parameters = {"S2_L2A": str(tiles[0]), **S2_L2A_BANDS, "GENERATE": [ENUM["dem"]], "STEPS": STEPS}
        with pytest.raises(QgsProcessingException) as raised:
            run("generate", {**parameters, "OUTPUT_FOLDER": str(tmp_path / "out")})
    finally:
        QgsSettings().remove("copgen_beta/max_area_km2")
    message = str(raised.value)
    assert '"Largest area per run" setting' in message and "max_area_km2" not in message, message
    assert not CLI_WORDS.search(message), message
    # A bad S2 offset and a stray option, named by their labels.
    ok, message = check(provider, "generate", {**parameters, "S2_L2A_DN_OFFSET": "-3", "OUTPUT_FOLDER": "/tmp/x"})
    assert not ok
    assert_dialog_words("generate", message, "S2_L2A_DN_OFFSET")
    # No model: the words say where Install model is.
    monkeypatch.setenv("COPGEN_MODEL_DIR", str(tmp_path / "empty"))
    ok, message = check(provider, "chain", {"INPUT": str(tiles[0]), "VIA_MODALITY": ENUM["dem"]})
    assert not ok and "Install model" in message and not CLI_WORDS.search(message), message


@pytest.mark.timeout(300)
def test_a_generated_modality_chains_in_a_graphical_model(provider, tiles, tmp_path):
    from qgis.core import (
        QgsProcessingContext,
        QgsProcessingFeedback,
        QgsProcessingModelAlgorithm,
        QgsProcessingModelChildAlgorithm,
        QgsProcessingModelChildParameterSource,
        QgsProcessingModelOutput,
    )

    static = QgsProcessingModelChildParameterSource.fromStaticValue
    model = QgsProcessingModelAlgorithm("generate then prepare", "tests")

    generate = QgsProcessingModelChildAlgorithm("copgen:generate")
    generate.setChildId("generate")
    for name, value in {"S2_L2A": str(tiles[0]), **S2_L2A_BANDS, "GENERATE": [ENUM["s1_rtc"]], "STEPS": STEPS}.items():
        generate.addParameterSources(name, [static(value)])
    generate.addParameterSources("OUTPUT_FOLDER", [static(str(tmp_path / "generated"))])
    model.addChildAlgorithm(generate)

    # The generated S1 layer, fed to Prepare with its modality and values guessed from the layer.
    prepare = QgsProcessingModelChildAlgorithm("copgen:prepare")
    prepare.setChildId("prepare")
    prepare.addParameterSources("INPUT", [QgsProcessingModelChildParameterSource.fromChildOutput("generate", "OUTPUT_S1_RTC")])
    output = QgsProcessingModelOutput("prepared", "Prepared")
    output.setChildOutputName("OUTPUT")
    prepare.setModelOutputs({"prepared": output})
    model.addChildAlgorithm(prepare)

    results, ok = model.run({"prepare:prepared": str(tmp_path / "prepared.tif")}, QgsProcessingContext(), QgsProcessingFeedback())
    assert ok, results
    (generated,) = (tmp_path / "generated").iterdir()
    assert generated.name.endswith("_s1_rtc.tif")
    np.testing.assert_array_equal(  # a rendering prepared as the S1 thumbnail it is: unchanged
        gdal.Open(str(tmp_path / "prepared.tif")).ReadAsArray(), gdal.Open(str(generated)).ReadAsArray()
    )


@pytest.mark.timeout(300)
@pytest.mark.parametrize("given, solver", [("ddim", "ddim"), (1, "dpm-solver++2m"), ("2", "ddim")])
def test_solver_is_stored_by_name_and_old_indexes_still_read(provider, tiles, tmp_path, given, solver):
    from qgis.core import QgsApplication

    definition = QgsApplication.processingRegistry().algorithmById("copgen:generate").parameterDefinition("SOLVER")
    assert definition.usesStaticStrings()  # models and saved runs hold the name
    parameters = {"S2_L2A": str(tiles[0]), **S2_L2A_BANDS, "GENERATE": [ENUM["dem"]], "STEPS": STEPS}
    assert check(provider, "generate", {**parameters, "SOLVER": given, "OUTPUT_FOLDER": "/tmp/x"})[0]
    result = run("generate", {**parameters, "SOLVER": given, "OUTPUT_FOLDER": str(tmp_path)})
    assert gdal.Open(result["OUTPUT_FILES"][0]).GetMetadataItem("solver") == solver


@pytest.mark.timeout(300)
def test_inputs_follow_the_layer_without_options(provider, tiles, tmp_path):
    # A generated DEM (an 8-bit hillshade rendering, tagged by the plugin) as a condition, and the
    # real tile in Prepare, all options left at their defaults.
    dem = run("generate", {"S2_L2A": str(tiles[0]), "GENERATE": [ENUM["dem"]], "STEPS": STEPS,
                           "OUTPUT_FOLDER": str(tmp_path / "a")})["OUTPUT_DEM"]
    feedback = RecordingFeedback()
    result = run("generate", {"DEM": dem, "GENERATE": [ENUM["s1_rtc"]], "STEPS": STEPS,
                              "OUTPUT_FOLDER": str(tmp_path / "b")}, feedback)
    conditions = json.loads(gdal.Open(result["OUTPUT_S1_RTC"]).GetMetadataItem("conditions"))
    assert [(c["modality"], c["source"]) for c in conditions] == [("dem", "thumbnail")]
    run("prepare", {"INPUT": str(tiles[0]), "OUTPUT": str(tmp_path / "guessed.tif")})
    run("prepare", {"INPUT": str(tiles[0]), "MODALITY": ENUM["s2_l2a"], "SOURCE": 0, **INPUT_BANDS,
                    "OUTPUT": str(tmp_path / "chosen.tif")})
    np.testing.assert_array_equal(
        gdal.Open(str(tmp_path / "guessed.tif")).ReadAsArray(), gdal.Open(str(tmp_path / "chosen.tif")).ReadAsArray()
    )


def test_progress_logs_the_estimate_first_then_tells_the_time_left(provider, monkeypatch):
    from plugin.qgisui.algorithms import run_context

    clock = iter([0.0, 0.0, 2.0, 12.0, 20.0, 45.0])
    monkeypatch.setattr(run_context.time, "monotonic", lambda: next(clock))
    feedback = RecordingFeedback()
    texts = []
    feedback.setProgressText = texts.append
    progress, cancel = run_context.RunContext(None, {}, None, feedback).callbacks()
    progress(0, 100, "estimate: about 3 min (90 denoiser windows ...)")
    progress(10, 100, "encoding s2_l2a")
    progress(20, 100, "denoising")
    progress(22, 100, "denoising")  # the same stage 2 s later: the text stays (and so does the log)
    progress(40, 100, "denoising · about 1 min left")  # the engine's first time left: shown at once
    progress(50, 100, "denoising · about 50 s left")  # 8 s later: the text stays
    progress(80, 100, "denoising · about 20 s left")  # 33 s later: updated
    assert feedback.lines == ["Estimate: about 3 min (90 denoiser windows ...)"]  # logged before any work
    assert texts == ["encoding s2_l2a", "denoising", "denoising · about 1 min left", "denoising · about 20 s left"]
    assert not cancel()
