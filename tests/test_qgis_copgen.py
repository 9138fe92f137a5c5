"""COP-GEN in QGIS: Generate physical layers (COP-GEN) run through Processing on the real Major
TOM Sentinel-2 L2A tile with the tiny COP-GEN model (random weights: grids, files, styles and
words are checked, not what the layers show)."""

import json
import shutil
import sys
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import rasterio
from osgeo import gdal

from plugin.engine.families.copgen.registry import IMAGE_MODALITIES
from qgis_support import REPO, install_plugin, plugin_provider

pytest.importorskip("qgis.core")

TILE = REPO.parent / "shared" / "data" / "majortom_s2l2a" / "282D_485L_3_3.tif"
STEPS = 2
# "Modalities to generate": COP-GEN's modalities in network order
OPTION = {key: index for index, key in enumerate((
    "3d_cartesian_lat_lon", "DEM_DEM", "LULC_LULC", "S1RTC_vh_vv", "S2L1C_B01_B09_B10", "S2L1C_B02_B03_B04_B08",
    "S2L1C_B05_B06_B07_B11_B12_B8A", "S2L1C_cloud_mask", "S2L2A_B01_B09", "S2L2A_B02_B03_B04_B08",
    "S2L2A_B05_B06_B07_B11_B12_B8A", "mean_timestamps"))}
# Each image modality's destination as the dialog gives it ("Open output file after running")
DIALOG_DESTINATIONS = {f"OUTPUT_{key}": "TEMPORARY_OUTPUT" for key in IMAGE_MODALITIES}


@pytest.fixture(scope="module")
def provider(tmp_path_factory, copgen_model_dir):
    """The installed plugin's provider, the tiny COP-GEN model as the model folder."""
    with plugin_provider(tmp_path_factory.mktemp("home"), copgen_model_dir) as provider:
        yield provider


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
    assert gdal.Open(result["OUTPUT_DEM_DEM"]).GetMetadataItem("date") == "2021-07-15"  # the Date parameter's
    points = json.loads(Path(result["OUTPUT_WINDOWS"]).read_text())["features"]
    assert points and {"predicted_lat", "predicted_date", "distance_km"} <= set(points[0]["properties"])
    assert len(result["OUTPUT_FILES"]) == 5
    # the model, the S2 offset used, then the estimate, before any work; the band note of the
    # unnamed 12-band file is in the log
    assert [line.split(" ")[0] for line in log.lines[:3]] == ["Model", "Sentinel-2", "Estimate:"], log.lines[:3]
    assert "DN offset 0 (no processing baseline" in log.lines[1]
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
        "OUTPUT_FOLDER": str(tmp_path / "out"), **DIALOG_DESTINATIONS,
    }, feedback=feedback())
    layers = {layer.customProperty("copgen_beta/modality"): layer for layer in clean_project.mapLayers().values()}
    assert set(layers) == set(generate[:-1]) | {"windows"}
    assert layers["LULC_LULC"].name() == "Land cover (10 classes) (synthetic)"
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


def write_three_bands(path):
    """A 3-band UInt16 GeoTIFF over the tile's footprint (B04, B03, B02 only, no names)."""
    source = gdal.Open(str(TILE))
    gdal.Translate(str(path), source, bandList=[4, 3, 2])
    return path


def refused(algorithm_id, parameters):
    """(message, whether the run wrote anything): processing.run's refusal of ``parameters``."""
    import processing
    from qgis.core import QgsProcessingException

    with pytest.raises(QgsProcessingException) as refusal:
        processing.run(algorithm_id, parameters, feedback=feedback())
    # processing.run puts "Unable to execute algorithm" on a line before the algorithm's own
    lines = str(refusal.value).strip().splitlines()
    # refused by the checks before the run, processing.run puts "Unable to execute algorithm"
    # on a line of its own before the algorithm's line
    assert lines[:-1] in ([], ["Unable to execute algorithm"]), lines
    return lines[-1]


def label_of(algorithm_id, name):
    from qgis.core import QgsApplication

    return QgsApplication.processingRegistry().algorithmById(algorithm_id).parameterDefinition(name).description()


@pytest.mark.timeout(300)
def test_a_three_band_file_given_as_s2_l2a_is_one_line_naming_the_layer_and_bands(provider, tmp_path):
    out = tmp_path / "out"
    message = refused("copgen:generatephysical", {
        "S2L2A": str(write_three_bands(tmp_path / "rgb.tif")), "GENERATE": [OPTION["DEM_DEM"]], "STEPS": STEPS,
        "OUTPUT_FOLDER": str(out),
    })
    assert message.startswith(label_of("copgen:generatephysical", "S2L2A_BANDS") + ":"), message
    assert "rgb.tif" in message and "12" in message and "B01" in message  # what is missing
    assert not out.exists() or not any(out.iterdir())


@pytest.mark.timeout(300)
@pytest.mark.parametrize("date", ["1900-01-01", "2077-05-01"])
def test_a_date_outside_the_models_range_is_refused_naming_the_date(provider, tile, tmp_path, date):
    out = tmp_path / "out"
    message = refused("copgen:generatephysical", {
        "S2L2A": str(tile), "GENERATE": [OPTION["DEM_DEM"]], "DATE": date, "STEPS": STEPS, "OUTPUT_FOLDER": str(out),
    })
    assert message.startswith(label_of("copgen:generatephysical", "DATE") + ":"), message
    assert message.endswith(f"{date} is outside the model's years 1950..2050")  # no internal key
    assert not out.exists()


@pytest.mark.timeout(300)
def test_each_generate_algorithm_refuses_the_other_familys_model_saying_which_to_use(
        provider, tile, tmp_path, tiny_model_dir, copgen_model_dir):
    out = tmp_path / "out"
    with mock.patch.dict("os.environ", {"COPGEN_MODEL_DIR": str(tiny_model_dir)}):  # a COP-GEN-Beta model
        message = refused("copgen:generatephysical", {
            "S2L2A": str(tile), "GENERATE": [OPTION["S1RTC_vh_vv"]], "STEPS": STEPS, "OUTPUT_FOLDER": str(out),
        })
    assert message.startswith(label_of("copgen:generatephysical", "MODEL") + ":"), message
    assert "COP-GEN-Beta model" in message and '"Generate modalities"' in message
    with mock.patch.dict("os.environ", {"COPGEN_MODEL_DIR": str(copgen_model_dir)}):
        message = refused("copgen:generate", {
            "S2_L2A": str(tile), "GENERATE": [0], "STEPS": STEPS, "OUTPUT_FOLDER": str(out),
        })
    assert message.startswith('"Model" setting') and '"Generate physical layers (COP-GEN)"' in message, message
    assert not out.exists()


@pytest.mark.timeout(300)
def test_beta_generate_tells_in_its_log_the_band_order_it_assumed(provider, tile, tmp_path, tiny_model_dir):
    """Issue 20: a 12-band file without band names is read by the registry's rule, and the QGIS
    log says so, as the CLI does (the dialog used to take the layer guess's bands silently)."""
    import processing

    log = feedback()
    with mock.patch.dict("os.environ", {"COPGEN_MODEL_DIR": str(tiny_model_dir)}):
        processing.run("copgen:generate", {"S2_L2A": str(tile), "GENERATE": [0], "STEPS": STEPS,
                                           "OUTPUT_FOLDER": str(tmp_path / "out")}, feedback=log)
    (note,) = [line for line in log.warnings if "no band names" in line]
    assert TILE.name in note and "B04, B03, B02 = bands 4, 3, 2" in note, note


# -- the desktop: the menu and the layer action, as a user drives them --------------------------------

desktop = pytest.mark.skipif(not (shutil.which("xvfb-run") and shutil.which("qgis.bin")), reason="needs xvfb-run and QGIS")


@pytest.fixture(scope="module")
def tour(tmp_path_factory, copgen_model_dir):
    """tests/desktop_copgen.py in a real QGIS under Xvfb, the Model setting on the COP-GEN model."""
    import subprocess

    work = tmp_path_factory.mktemp("copgen_desktop")
    report_file = work / "report.json"
    result = subprocess.run(
        [sys.executable, str(REPO / "tests" / "desktop_copgen.py"), "--work", str(work / "run"),
         "--model-dir", str(copgen_model_dir), "--report", str(report_file), "--timeout", "300"],
        capture_output=True, text=True, timeout=400,
    )
    assert report_file.is_file(), result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads(report_file.read_text())
    assert report["errors"] == [], report["errors"]
    assert report["python_errors"] == []
    return report["checks"]


@desktop
@pytest.mark.timeout(600)
def test_menu_generate_opens_the_copgen_algorithm_for_a_copgen_model_and_runs(tour):
    assert tour["menu_dialog"]["algorithm"] == "copgen:generatephysical"
    assert tour["menu_run"]["done"]
    assert {"282D_485L_3_3_seed5_LULC_LULC.tif", "282D_485L_3_3_seed5_S1RTC_vh_vv.tif",
            "282D_485L_3_3_seed5_windows.geojson"} <= set(tour["written"]["menu"])
    log = tour["menu_run"]["log"].splitlines()
    estimate = next(i for i, line in enumerate(log) if line.startswith("Estimate: "))
    work = next(i for i, line in enumerate(log) if line.startswith("encoding "))  # the first stage
    assert estimate < work  # said before the work
    assert any("no band names" in line and "B01, B02" in line for line in log[:work])
    assert dict(tour["layers"]) == {
        "DEM_DEM": "QgsSingleBandPseudoColorRenderer", "LULC_LULC": "QgsPalettedRasterRenderer",
        "S1RTC_vh_vv": "QgsSingleBandGrayRenderer", "S2L1C_B02_B03_B04_B08": "QgsMultiBandColorRenderer",
        "S2L1C_cloud_mask": "QgsPalettedRasterRenderer", "windows": "QgsSingleSymbolRenderer"}


@desktop
@pytest.mark.timeout(600)
def test_the_layer_action_guesses_a_12_band_layer_as_s2_l2a_for_copgen_and_runs(tour):
    dialog = tour["layer_dialog"]
    assert dialog["algorithm"] == "copgen:generatephysical"
    assert dialog["parameters"]["S2L2A"].startswith("282D_485L_3_3")  # the layer's id
    l2a_groups = {OPTION[key] for key in OPTION if key.startswith("S2L2A")}
    assert set(dialog["parameters"]["GENERATE"]) == set(OPTION.values()) - l2a_groups
    assert "Sentinel-2 L2A" in dialog["bar"][-1] and "12 bands" in dialog["bar"][-1]
    assert tour["layer_run"]["done"]
    assert "282D_485L_3_3_seed0_S2L1C_B02_B03_B04_B08.tif" in tour["written"]["layer"]


@pytest.mark.skipif(shutil.which("qgis_process.bin") is None, reason="Debian's qgis_process is not installed")
@pytest.mark.timeout(300)
def test_qgis_process_runs_it_with_the_parameters_as_written(tmp_path, tile, copgen_model_dir, monkeypatch):
    from qgis_support import qgis_process

    home = tmp_path / "home"
    install_plugin(home)
    monkeypatch.setenv("COPGEN_MODEL_DIR", str(copgen_model_dir))  # qgis_process inherits it
    completed = qgis_process(home, "--json", "run", "copgen:generatephysical", f"--S2L2A={tile}",
                             f"--GENERATE={OPTION['DEM_DEM']}", f"--GENERATE={OPTION['LULC_LULC']}", "--DATE=2021-07-15",
                             "--STEPS=2", f"--OUTPUT_FOLDER={tmp_path / 'out'}")
    assert completed.returncode == 0, completed.stderr + completed.stdout
    results = json.loads(completed.stdout[completed.stdout.index("{"):])["results"]
    dem = gdal.Open(results["OUTPUT_DEM_DEM"])
    assert dem.GetGeoTransform()[1] == 30 and dem.GetMetadataItem("date") == "2021-07-15"
    assert sorted(Path(p).name for p in results["OUTPUT_FILES"]) == [
        "282D_485L_3_3_seed0_DEM_DEM.tif", "282D_485L_3_3_seed0_LULC_LULC.tif"]


# -- the Sentinel-2 DN offset of a condition (advanced: auto or a number) --------------------------


def offset_copy(path, tags):
    """The tile as a processing baseline 04.00 product would hold it: every valid DN + 1000."""
    copy = Path(path).with_name("offset.tif")
    with rasterio.open(path) as source:
        data, profile = source.read().astype(np.int32), {**source.profile, "nodata": 0}
    with rasterio.open(copy, "w", **profile) as target:
        target.write(np.where(data > 0, data + 1000, 0).astype(profile["dtype"]))
        target.update_tags(**tags)
    return copy


@pytest.mark.timeout(300)
def test_the_s2_dn_offset_is_read_from_the_product_or_given_and_said_in_the_log(provider, tile, tmp_path):
    import processing

    def prepare(path, out, **offset):
        log = feedback()
        result = processing.run("copgen:preparephysical", {"S2L2A": str(path), "OUTPUT_FOLDER": str(tmp_path / out),
                                                           **offset}, feedback=log)
        with rasterio.open(result["OUTPUT_S2L2A_B02_B03_B04_B08"]) as ds:
            return ds.read(1).astype(int), [line for line in log.lines if "DN offset" in line]

    plain, said = prepare(tile, "plain")
    assert said == ["Sentinel-2 L2A (12 bands, DN) condition '282D_485L_3_3': DN offset 0 (no processing baseline "
                    "or offset found in the metadata or name: 0 assumed)"]
    product = offset_copy(tile, {"PROCESSING_BASELINE": "04.00"})
    taken_off, said = prepare(product, "auto")  # "auto", the default
    assert said == ["Sentinel-2 L2A (12 bands, DN) condition 'offset': DN offset 1000 (processing baseline 04.00 in "
                    "the product's metadata)"]
    # the same DN (the tile is resampled onto the lattice in float32: +-1 where rounding differs)
    assert np.array_equal(taken_off > 0, plain > 0) and np.abs(taken_off - plain).max() <= 1
    kept, said = prepare(product, "kept", S2L2A_DN_OFFSET="0")
    assert said == ["Sentinel-2 L2A (12 bands, DN) condition 'offset': DN offset 0 (given)"]
    assert np.abs(kept[plain > 0] - (plain[plain > 0] + 1000)).max() <= 1
    message = refused("copgen:generatephysical", {"S2L2A": str(product), "S2L2A_DN_OFFSET": "lots",
                                                  "GENERATE": [OPTION["DEM_DEM"]], "OUTPUT_FOLDER": str(tmp_path / "x")})
    assert message == f"{label_of('copgen:generatephysical', 'S2L2A_DN_OFFSET')}: 'lots' is neither auto nor a number"
    assert label_of("copgen:generatephysical", "S2L1C_DN_OFFSET").startswith("Sentinel-2 L1C")


@pytest.mark.timeout(300)
def test_sentinel_2_bands_may_be_named_by_their_numbers(provider, tile, tmp_path):
    """The band list names the file's bands in its order; "4" is band 4 (B04) as "B4" is."""
    import processing

    reversed_tile = tmp_path / "reversed.tif"
    with rasterio.open(tile) as source:
        with rasterio.open(reversed_tile, "w", **source.profile) as target:
            target.write(source.read()[::-1])
    runs = {}
    for name, path, bands in (("plain", tile, ""), ("numbers", reversed_tile, "12,11,9,8A,8,7,6,5,4,3,2,1")):
        result = processing.run("copgen:preparephysical", {"S2L2A": str(path), "S2L2A_BANDS": bands,
                                                           "OUTPUT_FOLDER": str(tmp_path / name)}, feedback=feedback())
        runs[name] = []
        for output in sorted(result["OUTPUT_FILES"]):
            with rasterio.open(output) as written:
                runs[name].append(written.read())
    assert all(np.array_equal(a, b) for a, b in zip(runs["plain"], runs["numbers"], strict=True))
    # positions are not band numbers: 1..12 names B10 (no L2A band) and leaves B8A out
    message = refused("copgen:preparephysical", {"S2L2A": str(tile), "S2L2A_BANDS": ",".join(map(str, range(1, 13))),
                                                 "OUTPUT_FOLDER": str(tmp_path / "x")})
    assert message.startswith(label_of("copgen:preparephysical", "S2L2A_BANDS") + ":") and "missing B8A" in message


@pytest.mark.parametrize("descriptions, dtype, tag, sensor, words", [
    (["VV", "VH"], "float32", "S1RTC_vh_vv", "s1rtc", "a generated layer"),
    (["LULC"], "uint8", "LULC_LULC", "lulc", "a generated layer"),
    # one band group of a generated Sentinel-2: a condition is the whole product, so it is not
    # preset as one (the run would be refused for the bands it lacks); the bar says why
    (["B04", "B03", "B02", "B08"], "uint16", "S2L2A_B02_B03_B04_B08", None, "all 12 bands"),
    (["B01", "B09", "B10"], "uint16", "S2L1C_B01_B09_B10", None, "all 13 bands"),
])
def test_the_layer_guess_presets_a_generated_layer_only_where_it_is_a_whole_condition(
        provider, tmp_path, descriptions, dtype, tag, sensor, words):
    from test_qgis_gui import raster_layer, write_raster

    from plugin.qgisui.layer_guess import guess_sensor

    guess = guess_sensor(raster_layer(write_raster(tmp_path / f"run_{tag}.tif", descriptions, dtype, {"modality": tag})))
    assert guess.sensor == sensor and words in guess.reason, guess


def test_nothing_to_generate_is_refused_in_the_dialogs_words(provider, tile, tmp_path):
    message = refused("copgen:generatephysical", {"S2L2A": str(tile), "GENERATE": [], "OUTPUT_FOLDER": str(tmp_path / "o")})
    assert message == f"{label_of('copgen:generatephysical', 'GENERATE')}: choose at least one"  # no official keys
    assert not (tmp_path / "o").exists()
