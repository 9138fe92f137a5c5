"""COP-GEN in QGIS: Generate physical layers (COP-GEN) run through Processing on the real Major
TOM Sentinel-2 L2A tile with the tiny COP-GEN model (random weights: grids, files, styles and
words are checked, not what the layers show)."""

import importlib
import json
import shutil
import sys
from pathlib import Path
from unittest import mock

import pytest
from osgeo import gdal

from qgis_support import PLUGIN_NAME, REPO, install_plugin, qgis_application

pytest.importorskip("qgis.core")

TILE = REPO.parent / "shared" / "data" / "majortom_s2l2a" / "282D_485L_3_3.tif"
STEPS = 2
# "Modalities to generate": COP-GEN's modalities in network order
OPTION = {key: index for index, key in enumerate((
    "3d_cartesian_lat_lon", "DEM_DEM", "LULC_LULC", "S1RTC_vh_vv", "S2L1C_B01_B09_B10", "S2L1C_B02_B03_B04_B08",
    "S2L1C_B05_B06_B07_B11_B12_B8A", "S2L1C_cloud_mask", "S2L2A_B01_B09", "S2L2A_B02_B03_B04_B08",
    "S2L2A_B05_B06_B07_B11_B12_B8A", "mean_timestamps"))}


@pytest.fixture(scope="module")
def provider(tmp_path_factory, copgen_model_dir):
    """The installed plugin's provider, the tiny COP-GEN model as the model folder."""
    qgis_application()
    plugin_dir = install_plugin(tmp_path_factory.mktemp("home"))
    sys.path.insert(0, str(plugin_dir.parent))
    patch = mock.patch.dict("os.environ", {"COPGEN_MODEL_DIR": str(copgen_model_dir)})
    patch.start()
    plugin = importlib.import_module(PLUGIN_NAME).classFactory(mock.MagicMock())
    plugin.initProcessing()
    try:
        yield plugin.provider
    finally:
        plugin.unload()
        patch.stop()
        sys.path.remove(str(plugin_dir.parent))


@pytest.fixture
def tile(tmp_path):
    """A copy of the real 12-band tile (no band names): GDAL may write statistics beside it."""
    folder = tmp_path / "data"
    folder.mkdir()
    return shutil.copy(TILE, folder / TILE.name)


def feedback():
    from test_qgis_algorithms import RecordingFeedback

    return RecordingFeedback()


def band_info(path):
    ds = gdal.Open(str(path))
    return {
        "pixel": ds.GetGeoTransform()[1],
        "type": gdal.GetDataTypeName(ds.GetRasterBand(1).DataType),
        "names": [ds.GetRasterBand(b).GetDescription() for b in range(1, ds.RasterCount + 1)],
        "synthetic": ds.GetMetadataItem("synthetic"),
    }


@pytest.mark.timeout(600)
def test_generate_physical_layers_from_a_real_tile(provider, tile, tmp_path):
    import processing

    log = feedback()
    generate = ["S1RTC_vh_vv", "DEM_DEM", "LULC_LULC", "S2L1C_cloud_mask", "3d_cartesian_lat_lon", "mean_timestamps"]
    result = processing.run("copgen:generatephysical", {
        "S2L2A": str(tile), "GENERATE": [OPTION[key] for key in generate], "DATE": "2021-07-15",
        "STEPS": STEPS, "SEED": 5, "OUTPUT_FOLDER": str(tmp_path / "out"),
    }, feedback=log)
    info = {key: band_info(result[f"OUTPUT_{key}"]) for key in generate[:4]}
    assert {key: (each["pixel"], each["type"]) for key, each in info.items()} == {
        "S1RTC_vh_vv": (10, "Float32"), "DEM_DEM": (30, "Float32"), "LULC_LULC": (10, "Byte"),
        "S2L1C_cloud_mask": (10, "Byte")}
    assert info["S1RTC_vh_vv"]["names"] == ["VV", "VH"]
    # class names travel in the .aux.xml beside the COG (the tests run GDAL without PAM)
    assert "<Category>Water</Category>" in Path(result["OUTPUT_LULC_LULC"] + ".aux.xml").read_text()
    assert all(each["synthetic"] == "true" for each in info.values())
    points = json.loads(Path(result["OUTPUT_WINDOWS"]).read_text())["features"]
    assert points and {"predicted_lat", "predicted_date", "distance_km"} <= set(points[0]["properties"])
    assert len(result["OUTPUT_FILES"]) == 5
    # the estimate comes first, the band note of the unnamed 12-band file is in the log
    assert log.lines[1].startswith("Estimate: ") or log.lines[0].startswith("Estimate: "), log.lines[:3]
    assert any("no band names" in line and "B01" in line for line in log.warnings), log.warnings


@pytest.fixture
def clean_project():
    from qgis.core import QgsProject

    from test_qgis_algorithms import reset_insertion_point

    QgsProject.instance().clear()
    yield QgsProject.instance()
    reset_insertion_point(QgsProject.instance())
    QgsProject.instance().clear()


def legend_words(project, layer):
    """The texts of ``layer``'s legend entries in the layer tree, as the Layers panel shows them."""
    from qgis.core import QgsLayerTreeModel
    from qgis.PyQt.QtCore import Qt

    model = QgsLayerTreeModel(project.layerTreeRoot())
    node = project.layerTreeRoot().findLayer(layer.id())
    words = [each.data(Qt.ItemDataRole.DisplayRole) for each in model.layerLegendNodes(node)]
    return [word for word in words if isinstance(word, str)]


@pytest.mark.timeout(600)
def test_outputs_load_styled_as_what_they_hold_and_marked_synthetic(provider, tile, tmp_path, clean_project):
    import processing
    from qgis.core import (
        QgsMultiBandColorRenderer,
        QgsPalettedRasterRenderer,
        QgsSingleBandGrayRenderer,
        QgsSingleBandPseudoColorRenderer,
    )

    generate = ["S1RTC_vh_vv", "DEM_DEM", "LULC_LULC", "S2L1C_cloud_mask", "S2L1C_B02_B03_B04_B08",
                "S2L1C_B05_B06_B07_B11_B12_B8A", "3d_cartesian_lat_lon"]
    processing.runAndLoadResults("copgen:generatephysical", {
        "S2L2A": str(tile), "GENERATE": [OPTION[key] for key in generate], "STEPS": STEPS,
        "OUTPUT_FOLDER": str(tmp_path / "out"),
    }, feedback=feedback())
    layers = {layer.customProperty("copgen_beta/modality"): layer for layer in clean_project.mapLayers().values()}
    assert set(layers) == set(generate[:-1]) | {"windows"}
    renderers = {key: type(layer.renderer()) for key, layer in layers.items() if key != "windows"}
    assert renderers == {
        "S1RTC_vh_vv": QgsSingleBandGrayRenderer, "DEM_DEM": QgsSingleBandPseudoColorRenderer,
        "LULC_LULC": QgsPalettedRasterRenderer, "S2L1C_cloud_mask": QgsPalettedRasterRenderer,
        "S2L1C_B02_B03_B04_B08": QgsMultiBandColorRenderer, "S2L1C_B05_B06_B07_B11_B12_B8A": QgsMultiBandColorRenderer,
    }
    natural = layers["S2L1C_B02_B03_B04_B08"].renderer()
    assert (natural.redBand(), natural.greenBand(), natural.blueBand()) == (1, 2, 3)  # B04, B03, B02
    stretch = natural.redContrastEnhancement()
    assert stretch.minimumValue() < stretch.maximumValue()  # stretched on the values, not 0..65535
    assert stretch.maximumValue() < 65535
    assert {"Water", "Trees", "Crops", "Built-up Areas"} <= set(legend_words(clean_project, layers["LULC_LULC"]))
    assert {"Clear", "Thick", "Thin", "Shadow"} <= set(legend_words(clean_project, layers["S2L1C_cloud_mask"]))
    assert legend_words(clean_project, layers["DEM_DEM"])[0] == "Elevation (m)"
    assert legend_words(clean_project, layers["LULC_LULC"])[0] == "Land cover class"
    ramp = [label for label, _ in layers["DEM_DEM"].renderer().legendSymbologyItems()]
    assert len(ramp) == 5 and all(label.endswith(" m") for label in ramp)
    windows = layers["windows"]
    assert windows.geometryType() == 0 and windows.labelsEnabled() and windows.featureCount() > 0
    for layer in layers.values():
        assert "synthetic" in layer.metadata().keywords()["COP-GEN"]
        assert "not a measurement" in layer.metadata().abstract()
    # one group for the run, every layer in it
    (group,) = clean_project.layerTreeRoot().children()
    assert len(group.findLayers()) == len(layers)
