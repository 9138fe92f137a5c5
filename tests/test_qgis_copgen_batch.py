"""COP-GEN's algorithms in QGIS's batch dialog and in graphical models: the real
BatchAlgorithmDialog filled row by row and run, "Load layers on completion" on and off; a
QgsProcessingModelAlgorithm chaining Generate physical layers into Prepare model inputs
(COP-GEN) through the per-modality outputs, its outputs saved where the model's user asked."""

from pathlib import Path

import numpy as np
import pytest
import rasterio

from test_qgis_copgen import OPTION, clean_project, label_of, provider, refused, tile  # noqa: F401 (fixtures)

pytest.importorskip("qgis.core")

NOT_GENERATED = "not correctly generated"
GENERATE = ["LULC_LULC", "S1RTC_vh_vv", "3d_cartesian_lat_lon"]


def batch_dialog(algorithm_id, rows, load):
    """The batch dialog of ``algorithm_id`` with one row per {parameter: value} of ``rows``
    (destination cells given by their text, the others left empty as a user leaves them) and
    "Load layers on completion" set to ``load``."""
    from processing.gui.BatchAlgorithmDialog import BatchAlgorithmDialog
    from processing.tools import dataobjects
    from qgis.core import QgsApplication

    dialog = BatchAlgorithmDialog(QgsApplication.processingRegistry().createAlgorithmById(algorithm_id))
    panel = dialog.mainWidget()
    panel.addRow(len(rows) - 1)
    context = dataobjects.createContext()
    for row, values in enumerate(rows):
        for name, value in values.items():
            column = panel.parameter_to_column[name]
            if dialog.algorithm().parameterDefinition(name).isDestination():
                panel.tblParameters.cellWidget(row + 1, column).setValue(value)  # row 0: the fill row
            else:
                panel.wrappers[row][column].setParameterValue(value, context)
    panel.checkLoadLayersOnCompletion.setChecked(load)
    return dialog


def dialog_log(dialog):
    from qgis.PyQt.QtWidgets import QTextEdit

    return "\n".join(widget.toPlainText() for widget in dialog.findChildren(QTextEdit))


def copgen_layers(project):
    return sorted((layer.customProperty("copgen_beta/run") or "", layer.customProperty("copgen_beta/modality"))
                  for layer in project.mapLayers().values() if layer.customProperty("copgen_beta/modality"))


@pytest.mark.timeout(300)
@pytest.mark.parametrize("load", [False, True])
def test_the_batch_dialog_loads_generated_layers_only_when_asked(provider, tile, tmp_path, clean_project, load):  # noqa: F811
    folders = [tmp_path / "row1", tmp_path / "row2"]
    rows = [{"S2L2A": str(tile), "GENERATE": [OPTION[key] for key in GENERATE], "STEPS": 2, "SEED": seed,
             "OUTPUT_FOLDER": str(folder)} for seed, folder in zip((1, 2), folders)]
    dialog = batch_dialog("copgen:generatephysical", rows, load)
    dialog.runAlgorithm()
    log = dialog_log(dialog)
    for seed, folder in zip((1, 2), folders):
        assert sorted(path.name for path in folder.glob("*.tif")) == [
            f"282D_485L_3_3_seed{seed}_LULC_LULC.tif", f"282D_485L_3_3_seed{seed}_S1RTC_vh_vv.tif"], log
    assert "Execution failed" not in log and NOT_GENERATED not in log, log
    expected = [(f"282D_485L_3_3_seed{seed}", key) for seed in (1, 2) for key in ("LULC_LULC", "S1RTC_vh_vv", "windows")]
    assert copgen_layers(clean_project) == (expected if load else [])
    if load:  # styled as generated layers are, each run in its group
        groups = {child.name(): len(child.findLayers()) for child in clean_project.layerTreeRoot().children()}
        assert groups == {"282D_485L_3_3_seed1": 3, "282D_485L_3_3_seed2": 3}


@pytest.mark.timeout(300)
@pytest.mark.parametrize("load", [False, True])
def test_the_batch_dialog_of_prepare_honours_load_layers_and_a_chosen_file(provider, tile, tmp_path, clean_project, load):  # noqa: F811
    chosen = tmp_path / "chosen" / "ten_metres.tif"
    rows = [{"S2L2A": str(tile), "OUTPUT_FOLDER": str(tmp_path / "row1")},
            {"S2L2A": str(tile), "OUTPUT_FOLDER": str(tmp_path / "row2"), "OUTPUT_S2L2A_B02_B03_B04_B08": str(chosen)}]
    dialog = batch_dialog("copgen:preparephysical", rows, load)
    dialog.runAlgorithm()
    log = dialog_log(dialog)
    assert "Execution failed" not in log and NOT_GENERATED not in log, log
    assert len(list((tmp_path / "row1").glob("*.tif"))) == 3 and len(list((tmp_path / "row2").glob("*.tif"))) == 2
    with rasterio.open(chosen) as moved, rasterio.open(tmp_path / "row1" / "prepared_S2L2A_B02_B03_B04_B08.tif") as kept:
        assert moved.descriptions == ("B04", "B03", "B02", "B08") and np.array_equal(moved.read(), kept.read())
    sources = sorted(Path(layer.source()).name for layer in clean_project.mapLayers().values())
    # row 1's three files; row 2's two in its folder and its 10 m group where it was asked
    expected = ["prepared_S2L2A_B01_B09.tif", "prepared_S2L2A_B05_B06_B07_B11_B12_B8A.tif"] * 2 + [
        "prepared_S2L2A_B02_B03_B04_B08.tif", "ten_metres.tif"]
    assert sources == (sorted(expected) if load else [])


def model_chain():
    """A graphical model: a Sentinel-2 L2A raster in; Generate physical layers (COP-GEN) makes
    land cover and Sentinel-1 from it; Prepare model inputs (COP-GEN) takes that Sentinel-1 as its
    condition. The land cover and the prepared Sentinel-1 are the model's outputs."""
    from qgis.core import (
        QgsProcessingModelAlgorithm,
        QgsProcessingModelChildAlgorithm,
        QgsProcessingModelChildParameterSource as Source,
        QgsProcessingModelOutput,
        QgsProcessingModelParameter,
        QgsProcessingParameterRasterLayer,
    )

    model = QgsProcessingModelAlgorithm("COP-GEN chain", "tests")
    model.addModelParameter(QgsProcessingParameterRasterLayer("SCENE", "Sentinel-2 L2A scene"),
                            QgsProcessingModelParameter("SCENE"))

    def child(child_id, algorithm_id, sources, outputs):
        step = QgsProcessingModelChildAlgorithm(algorithm_id)
        step.setChildId(child_id)
        for name, source in sources.items():
            step.addParameterSources(name, [source])
        kept = {}
        for output_name, child_output in outputs.items():
            kept[output_name] = QgsProcessingModelOutput(output_name, output_name)
            kept[output_name].setChildId(child_id)
            kept[output_name].setChildOutputName(child_output)
        step.setModelOutputs(kept)
        model.addChildAlgorithm(step)

    child("generate", "copgen:generatephysical", {
        "S2L2A": Source.fromModelParameter("SCENE"),
        "GENERATE": Source.fromStaticValue([OPTION["LULC_LULC"], OPTION["S1RTC_vh_vv"]]),
        "STEPS": Source.fromStaticValue(2),
    }, {"land cover": "OUTPUT_LULC_LULC", "generated s1": "OUTPUT_S1RTC_vh_vv"})
    child("prepare", "copgen:preparephysical", {
        "S1RTC": Source.fromChildOutput("generate", "OUTPUT_S1RTC_vh_vv"),
    }, {"s1 as fed": "OUTPUT_S1RTC_vh_vv"})
    model.updateDestinationParameters()
    return model


@pytest.mark.timeout(300)
def test_a_graphical_model_chains_generate_into_prepare_and_saves_its_outputs(provider, tile, tmp_path):  # noqa: F811
    import processing

    from test_qgis_copgen import feedback

    model = model_chain()
    outputs = {"generate:land cover": tmp_path / "land_cover.tif", "generate:generated s1": tmp_path / "s1.tif",
               "prepare:s1 as fed": tmp_path / "s1_as_fed.tif"}
    log = feedback()
    results = processing.run(model, {"SCENE": str(tile), **{name: str(path) for name, path in outputs.items()}},
                             feedback=log)
    assert {name: results[name] for name in outputs} == {name: str(path) for name, path in outputs.items()}
    # the chosen file has the class names that live beside a class map (its .aux.xml moved with it)
    assert "<Category>Water</Category>" in Path(f"{outputs['generate:land cover']}.aux.xml").read_text()
    with rasterio.open(outputs["generate:generated s1"]) as generated, \
            rasterio.open(outputs["prepare:s1 as fed"]) as fed:
        assert fed.descriptions == generated.descriptions == ("VV", "VH")
        assert (fed.transform, fed.crs) == (generated.transform, generated.crs)
        assert np.allclose(fed.read(), generated.read(), equal_nan=True)  # what the model would be fed of it
        assert fed.tags()["synthetic"] == "false" and generated.tags()["synthetic"] == "true"


@pytest.mark.timeout(120)
def test_a_destination_that_is_not_a_geotiff_is_refused_naming_it(provider, tile, tmp_path):  # noqa: F811
    message = refused("copgen:generatephysical", {
        "S2L2A": str(tile), "GENERATE": [OPTION["LULC_LULC"]], "OUTPUT_FOLDER": str(tmp_path / "out"),
        "OUTPUT_LULC_LULC": str(tmp_path / "land_cover.png")})
    assert message == f"{label_of('copgen:generatephysical', 'OUTPUT_LULC_LULC')}: {tmp_path / 'land_cover.png'} must be " \
        "a GeoTIFF (.tif)"
    assert label_of("copgen:generatephysical", "OUTPUT_LULC_LULC") == "Land cover (10 classes) (when generated)"
    assert not (tmp_path / "out").exists()
