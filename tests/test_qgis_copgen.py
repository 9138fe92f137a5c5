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
