"""Prepare model inputs (COP-GEN) run through Processing in a real QGIS on the real Major TOM
Sentinel-2 L2A tile: the same files as `python -m plugin prepare --model COP-GEN`, loaded styled
as model inputs (not synthetic), bad input refused in one line naming the parameter."""

import subprocess
import sys

import numpy as np
import pytest
import rasterio

from test_qgis_copgen import DIALOG_DESTINATIONS, OPTION, clean_project, feedback, label_of, provider, refused, tile, write_three_bands  # noqa: F401
from qgis_support import REPO

pytest.importorskip("qgis.core")

S2L2A_KEYS = ("S2L2A_B01_B09", "S2L2A_B02_B03_B04_B08", "S2L2A_B05_B06_B07_B11_B12_B8A")


@pytest.mark.timeout(600)
def test_prepare_writes_what_the_cli_writes_and_says_the_notes(provider, tile, copgen_model_dir, tmp_path):
    import processing

    log = feedback()
    result = processing.run("copgen:preparephysical", {
        "S2L2A": str(tile), "DATE": "2021-07-15", "OUTPUT_FOLDER": str(tmp_path / "out"),
    }, feedback=log)
    assert sorted(result["OUTPUT_FILES"]) == sorted(result[f"OUTPUT_{key}"] for key in S2L2A_KEYS)
    cli = subprocess.run([sys.executable, "-m", "plugin", "prepare", "--model", str(copgen_model_dir),
                          "--condition", f"s2l2a={tile}", "--date", "2021-07-15", "--out", str(tmp_path / "cli")],
                         cwd=REPO, capture_output=True, text=True, timeout=280)
    assert cli.returncode == 0, cli.stderr
    for key in S2L2A_KEYS:
        with rasterio.open(result[f"OUTPUT_{key}"]) as here, rasterio.open(tmp_path / "cli" / f"prepared_{key}.tif") as there:
            assert (here.crs, here.transform, here.descriptions, here.dtypes) == \
                (there.crs, there.transform, there.descriptions, there.dtypes)
            assert np.array_equal(here.read(), there.read()), key
            assert here.tags()["synthetic"] == "false" and here.tags()["modality"] == key
    lines = log.lines + log.warnings
    assert any("no band names" in line and "B01" in line for line in lines), lines
    assert any("S2L2A_B02_B03_B04_B08 from" in line and "covers 100 % of the area" in line for line in lines)
    assert any("date 2021-07-15" in line for line in lines)


@pytest.mark.timeout(600)
def test_inputs_load_styled_as_model_inputs_not_synthetic(provider, tile, tmp_path, clean_project):  # noqa: F811
    import processing
    from qgis.core import QgsMultiBandColorRenderer, QgsSingleBandGrayRenderer

    processing.runAndLoadResults("copgen:preparephysical", {"S2L2A": str(tile), "OUTPUT_FOLDER": str(tmp_path / "o"),
                                                            **DIALOG_DESTINATIONS}, feedback=feedback())
    layers = {layer.customProperty("copgen_beta/modality"): layer for layer in clean_project.mapLayers().values()}
    assert set(layers) == set(S2L2A_KEYS)
    assert type(layers["S2L2A_B02_B03_B04_B08"].renderer()) is QgsMultiBandColorRenderer
    assert type(layers["S2L2A_B01_B09"].renderer()) is QgsSingleBandGrayRenderer
    for layer in layers.values():
        assert layer.name().endswith("(model input)")
        keywords = layer.metadata().keywords()["COP-GEN"]
        assert "model input" in keywords and "synthetic" not in keywords
    (group,) = clean_project.layerTreeRoot().children()
    assert len(group.findLayers()) == 3


@pytest.mark.timeout(300)
def test_bad_input_is_one_line_naming_the_parameter(provider, tmp_path):  # noqa: F811
    message = refused("copgen:preparephysical", {
        "S2L2A": str(write_three_bands(tmp_path / "rgb.tif")), "OUTPUT_FOLDER": str(tmp_path / "out")})
    assert message.startswith(label_of("copgen:preparephysical", "S2L2A_BANDS") + ":"), message
    assert "rgb.tif" in message and "B01" in message
    message = refused("copgen:preparephysical", {"OUTPUT_FOLDER": str(tmp_path / "out")})
    assert "at least one condition layer" in message
    message = refused("copgen:preparephysical", {"S2L2A": str(write_three_bands(tmp_path / "x.tif")),
                                                 "DATE": "1900-01-01", "OUTPUT_FOLDER": str(tmp_path / "out")})
    assert message.startswith(label_of("copgen:preparephysical", "DATE") + ":") and "1950" in message, message
    assert not (tmp_path / "out").exists()
