"""The analyses in QGIS: Generation chain (COP-GEN) and Conditioning combinations (COP-GEN) run
through Processing on the real Major TOM S2 L2A tile with the tiny COP-GEN model, and the
comparison sheet of both families written into the output folder when its destination is left
temporary (random weights: counts, files, tables and words are checked, not what layers show)."""

import itertools

import pytest
from osgeo import gdal

from qgis_support import REPO
from test_qgis_copgen import feedback, provider, tile  # noqa: F401 (fixtures)

pytest.importorskip("qgis.core")

SENSORS = ("s2l2a", "s2l1c", "s1rtc", "dem", "lulc", "cloud")  # the Via options, in the dialog's order
TEN_M = "S2L2A_B02_B03_B04_B08"
GROUPS = ("S2L2A_B01_B09", TEN_M, "S2L2A_B05_B06_B07_B11_B12_B8A", "dem", "s1rtc", "lulc")


def rows_of(path):
    from qgis.core import QgsVectorLayer

    layer = QgsVectorLayer(str(path), "table", "ogr")
    assert layer.isValid()
    names = [f.name() for f in layer.fields()]
    return [dict(zip(names, feature.attributes())) for feature in layer.getFeatures()]


def estimates(log):
    return [line for line in log.lines if line.startswith("Estimate: ")]


@pytest.mark.timeout(600)
def test_chain_with_cop_gen_writes_its_layers_and_a_table_per_band(provider, tile, tmp_path):
    import processing

    from qgis.core import QgsProject, QgsRasterLayer

    project = QgsProject.instance()
    project.clear()
    log = feedback()
    result = processing.runAndLoadResults("copgen:chainphysical", {  # as the dialog runs it
        "S2L2A": str(tile), "VIA": [SENSORS.index("s1rtc")], "ITERATIONS": 2, "STEPS": 1, "DATE": "2021-07-15",
        "OUTPUT_FOLDER": str(tmp_path / "chain"), "OUTPUT_TABLE": str(tmp_path / "chain.gpkg"),
    }, feedback=log)
    assert "4 generations" in estimates(log)[0]  # the whole chain, said first
    tifs = sorted(p.name for p in (tmp_path / "chain").glob("*.tif"))
    assert len(tifs) == 8 and all(name.startswith("chain_282D_485L_3_3_seed0_iter0") for name in tifs)
    rows = rows_of(result["OUTPUT_TABLE"])
    # 12 bands of the three S2 L2A groups per iteration, in DN; S1 (no real one) has no row
    assert len(rows) == 24 and {row["iteration"] for row in rows} == {1, 2}
    assert {row["unit"] for row in rows} == {"DN"} and {row["modality"] for row in rows} == {
        "S2L2A_B01_B09", TEN_M, "S2L2A_B05_B06_B07_B11_B12_B8A"}
    b04 = [row for row in rows if row["band"] == "B04"]
    assert len(b04) == 2 and all(row["pixels"] == 224 * 224 and row["mae"] > 0 for row in b04)
    assert all(row["accuracy"] is None or str(row["accuracy"]) == "NULL" for row in rows)
    assert sum(" B04 " in line and "MAE" in line for line in log.lines) == 2
    # the log names each modality by its label, as the dialog does, in aligned columns; no official key
    ten_m = [line for line in log.lines if line.startswith("Iteration 2 | Sentinel-2 L2A B04, B03, B02, B08 (10 m) ")]
    assert [line.split(" | ")[2] for line in ten_m] == ["B04 ", "B03 ", "B02 ", "B08 "], log.lines
    assert len({line.index(" | MAE") for line in log.lines if " | MAE" in line}) == 1  # one column
    assert not any(key in line for line in log.lines for key in GROUPS[:3]), log.lines
    # the table and the 8 generated layers are loaded, the layers in the run's group, marked synthetic
    loaded = [layer for layer in project.mapLayers().values() if isinstance(layer, QgsRasterLayer)]
    assert sorted(layer.source() for layer in loaded) == sorted(str(tmp_path / "chain" / name) for name in tifs)
    assert any(layer.name() == "Sentinel-1 RTC VV, VH (synthetic) iteration 2" for layer in loaded)
    project.clear()


@pytest.mark.timeout(600)
def test_combinations_with_cop_gen_say_their_total_and_put_the_sheet_in_the_output_folder(provider, tile, tmp_path):
    import processing

    from qgis.core import QgsLayerTree, QgsProject

    project = QgsProject.instance()
    project.clear()
    log = feedback()
    out = tmp_path / "runs"
    result = processing.runAndLoadResults("copgen:combinationsphysical", {  # as the dialog runs it
        "S2L2A": str(tile), "SUBSETS": "none; S2L2A_B02_B03_B04_B08", "STEPS": 1,
        "OUTPUT_FOLDER": str(out), "OUTPUT_SHEET": "TEMPORARY_OUTPUT", "OUTPUT_TABLE": str(tmp_path / "c.gpkg"),
    }, feedback=log)
    assert "2 combinations, one generation each" in log.lines
    assert "2 generations" in estimates(log)[0]
    sheet = out / "combinations_seed0_sheet.html"
    assert result["OUTPUT_SHEET"] == str(sheet) and 'src="combinations_seed0_sheet.png"' in sheet.read_text()
    png = gdal.Open(str(out / "combinations_seed0_sheet.png"))
    assert png.GetDriver().ShortName == "PNG" and png.RasterYSize > 2 * 128
    assert len(list(out.glob("*.tif"))) == 10 + 9
    rows = rows_of(result["OUTPUT_TABLE"])
    by = {(row["combination"], row["modality"]) for row in rows}
    assert ("UNCONDITIONAL", TEN_M) in by and ("GIVEN S2L2A 10M", "S2L2A_B01_B09") in by
    assert ("GIVEN S2L2A 10M", TEN_M) not in by  # given, not generated
    # 19 layers (one per modality and combination) load as Beta's do: unticked, in a collapsed group
    (group,) = [node for node in project.layerTreeRoot().children() if QgsLayerTree.isGroup(node)]
    assert len(group.findLayers()) == 19 and not group.isExpanded()
    assert not any(node.isVisible() for node in group.findLayers())
    project.clear()


@pytest.mark.parametrize("parameters, label, words", [
    ({"SUBSETS": "none; s1rtc"}, "SUBSETS", ["subset 2", "no real raster gives"]),
    ({"SUBSETS": "; ".join("+".join(c) for n in (1, 2, 3) for c in itertools.combinations(GROUPS, n)),  # 41
      "DEM": "TILE", "S1RTC": "TILE", "LULC": "TILE"}, "SUBSETS", ["41 subsets; at most 32", "4095"]),
    ({"SUBSETS": "dem"}, "SUBSETS", ["dem", "no real raster gives DEM_DEM"]),
])
def test_combinations_refuse_bad_subsets_naming_the_parameter(provider, tile, tmp_path, parameters, label, words):
    from qgis.core import QgsApplication, QgsProcessingContext

    algorithm = QgsApplication.processingRegistry().algorithmById("copgen:combinationsphysical").create()
    values = {"S2L2A": str(tile), "OUTPUT_FOLDER": str(tmp_path / "out"), **parameters}
    values = {name: str(tile) if value == "TILE" else value for name, value in values.items()}  # (not read)
    ok, message = algorithm.checkParameterValues(values, QgsProcessingContext())
    assert not ok and message.startswith(algorithm.parameterDefinition(label).description() + ":"), message
    assert all(word in message for word in words) and "\n" not in message
    assert not (tmp_path / "out").exists()


def test_chain_refuses_via_the_input_sensor(provider, tile):
    from qgis.core import QgsApplication, QgsProcessingContext

    algorithm = QgsApplication.processingRegistry().algorithmById("copgen:chainphysical").create()
    ok, message = algorithm.checkParameterValues({"S2L2A": str(tile), "VIA": [SENSORS.index("s2l2a")]},
                                                 QgsProcessingContext())
    assert not ok and message.startswith(algorithm.parameterDefinition("VIA").description() + ": must differ")



@pytest.mark.parametrize("algorithm_id", ["copgen:chainphysical", "copgen:combinationsphysical"])
def test_a_date_outside_the_models_years_is_refused_before_any_file(provider, tile, tmp_path, algorithm_id):
    import processing

    from qgis.core import QgsApplication, QgsProcessingException

    label = QgsApplication.processingRegistry().algorithmById(algorithm_id).parameterDefinition("DATE").description()
    with pytest.raises(QgsProcessingException) as error:
        processing.run(algorithm_id, {"S2L2A": str(tile), "DATE": "1900-01-01", "STEPS": 1, "ITERATIONS": 1,
                                      "OUTPUT_FOLDER": str(tmp_path / "out"), "OUTPUT_TABLE": str(tmp_path / "t.gpkg")},
                       feedback=feedback())
    assert f"{label}: 1900-01-01 is outside the model's years 1950..2050" in str(error.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]  # no table, no folder


@pytest.mark.timeout(300)
def test_a_cancelled_chain_leaves_no_layer_and_no_table(provider, tile, tmp_path):
    import processing

    from qgis.core import QgsProcessingException
    from test_qgis_algorithms import RecordingFeedback

    log = RecordingFeedback(cancel_at=30)  # 4 generations: the second is under way, the first wrote its files
    with pytest.raises(QgsProcessingException, match="[Cc]ancel"):
        processing.run("copgen:chainphysical", {
            "S2L2A": str(tile), "VIA": [SENSORS.index("s1rtc")], "ITERATIONS": 2, "STEPS": 1,
            "OUTPUT_FOLDER": str(tmp_path / "chain"), "OUTPUT_TABLE": str(tmp_path / "chain.gpkg")}, feedback=log)
    assert max(log.progress_values) >= 30
    assert list((tmp_path / "chain").iterdir()) == [] and not (tmp_path / "chain.gpkg").exists()

@pytest.mark.timeout(600)
def test_beta_combinations_sheet_left_temporary_lands_in_the_output_folder(provider, tiny_model_dir, tmp_path,
                                                                           monkeypatch):
    import processing

    from test_qgis_algorithms import THUMBNAIL_BOUNDS, THUMBNAIL_CRS, THUMBNAILS

    monkeypatch.setenv("COPGEN_MODEL_DIR", str(tiny_model_dir))  # the Beta model for this run
    xmin, ymin, xmax, ymax = THUMBNAIL_BOUNDS
    parameters = {}
    for modality, name in THUMBNAILS.items():
        path = tmp_path / f"{name}.tif"
        source = gdal.Open(str(REPO.parent / "shared" / "data" / "copgen_beta_thumbnails" / f"{name}.webp"))
        gdal.Translate(str(path), source, outputSRS=THUMBNAIL_CRS, outputBounds=[xmin, ymax, xmax, ymin])
        parameters[modality.upper()] = str(path)
        parameters[f"{modality.upper()}_SOURCE"] = 1
    out = tmp_path / "runs"
    result = processing.run("copgen:combinations", {
        **parameters, "STEPS": 1, "OUTPUT_FOLDER": str(out), "OUTPUT_SHEET": "TEMPORARY_OUTPUT",
        "OUTPUT_TABLE": "TEMPORARY_OUTPUT"}, feedback=feedback())
    assert result["OUTPUT_SHEET"] == str(out / "combinations_seed0_sheet.html")
    assert (out / "combinations_seed0_sheet.png").is_file()
