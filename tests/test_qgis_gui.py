"""The desktop side: guessing a layer's modality, the layer context action, generated layers
(group, style, metadata), runs off the UI thread with cancel, and a real QGIS window under Xvfb."""

import json
import shutil
import subprocess
import sys
from pathlib import Path
from unittest import mock

import numpy as np
import pytest

from qgis_support import REPO, qgis_application

pytest.importorskip("qgis.core")

SHARED_DATA = REPO.parent / "shared" / "data"
TILE_NAME = "282D_485L_3_3.tif"


@pytest.fixture(scope="module")
def app():
    return qgis_application()


@pytest.fixture
def project(app):
    from qgis.core import QgsProject

    project = QgsProject.instance()
    project.clear()
    yield project
    project.clear()


@pytest.fixture
def data_copy(tmp_path):
    """Copies of the shared inputs: QGIS and GDAL may write statistics (.aux.xml) beside a file."""
    folder = tmp_path / "data"
    folder.mkdir()
    shutil.copy(SHARED_DATA / "majortom_s2l2a" / TILE_NAME, folder)
    for thumbnail in (SHARED_DATA / "copgen_beta_thumbnails").glob("*.webp"):
        shutil.copy(thumbnail, folder)
    return folder


def write_raster(path, descriptions, dtype="float32", metadata=None):
    """A small georeferenced GeoTIFF with one band per description ("" = no description)."""
    import rasterio
    from rasterio.transform import from_origin

    with rasterio.open(
        path, "w", driver="GTiff", width=16, height=16, count=len(descriptions), dtype=dtype,
        crs="EPSG:32633", transform=from_origin(500000, 5000000, 10, 10),
    ) as dataset:
        dataset.write(np.ones((len(descriptions), 16, 16), dtype=dtype))
        for band, description in enumerate(descriptions, start=1):
            if description:
                dataset.set_band_description(band, description)
        if metadata:
            dataset.update_tags(**metadata)
    return path


def raster_layer(path, name=None):
    from qgis.core import QgsRasterLayer

    layer = QgsRasterLayer(str(path), name or Path(path).stem)
    assert layer.isValid(), path
    return layer


# --- guessing the condition a layer holds ----------------------------------------------------------


@pytest.mark.parametrize(
    "file_name, expected",
    [
        (TILE_NAME, ("s2_l2a", (4, 3, 2), "physical")),  # 12 int16 bands, Major TOM order
        ("dem.webp", ("dem", (1, 2, 3), "thumbnail")),
        ("s1rtc.webp", ("s1_rtc", (1, 2, 3), "thumbnail")),
        ("s2l1c.webp", ("s2_l1c", (1, 2, 3), "thumbnail")),
        ("s2l2a.webp", ("s2_l2a", (1, 2, 3), "thumbnail")),
    ],
)
def test_guess_on_real_data(app, data_copy, file_name, expected):
    from plugin.qgisui.layer_actions import guess_modality

    guess = guess_modality(raster_layer(data_copy / file_name))
    assert (guess.modality, guess.bands, guess.source) == expected
    assert guess.reason


@pytest.mark.parametrize(
    "descriptions, dtype, file_name, metadata, expected",
    [
        (["VH", "VV"], "float32", "s1.tif", None, ("s1_rtc", (2, 1), "physical")),
        (["", ""], "float32", "backscatter.tif", None, ("s1_rtc", (1, 2), "physical")),
        ([""], "float32", "terrain.tif", None, ("dem", (1,), "physical")),
        (["slope", "aspect", "elevation"], "float32", "terrain.tif", None, ("dem", (3,), "physical")),
        (["B02", "B03", "B04", "B08"], "uint16", "stack.tif", None, ("s2_l2a", (3, 2, 1), "physical")),
        (["B2", "B3", "B4", "B10"], "uint16", "stack.tif", None, ("s2_l1c", (3, 2, 1), "physical")),
        ([""] * 13, "uint16", "stack.tif", None, ("s2_l1c", (4, 3, 2), "physical")),
        ([""] * 12, "uint16", "S2B_MSIL1C_20240101.tif", None, ("s2_l1c", (4, 3, 2), "physical")),
        (["B04", "B03", "B02"], "uint8", "quicklook.tif", None, ("s2_l2a", (1, 2, 3), "thumbnail")),
        (["", "", ""], "uint8", "S1_scene_rgb.tif", None, ("s1_rtc", (1, 2, 3), "thumbnail")),
        # A GeoTIFF this plugin generated says what it holds.
        (["R (VV)", "G (VV+VH)", "B (VH)"], "uint8", "run_s1_rtc.tif", {"modality": "s1_rtc"}, ("s1_rtc", (1, 2, 3), "thumbnail")),
        (["B04", "B03", "B02"], "uint16", "run_s2_l1c.tif", {"modality": "s2_l1c"}, ("s2_l1c", (1, 2, 3), "physical")),
        ([""] * 5, "float32", "unknown.tif", None, ("s2_l2a", (), "physical")),
        # One 8-bit band: a hillshade thumbnail, not 256 levels of elevation.
        ([""], "uint8", "dem_thumbnail.tif", None, ("dem", (1,), "thumbnail")),
        (["Gray"], "uint8", "x.tif", None, ("dem", (1,), "thumbnail")),
    ],
)
def test_guess_from_band_names_count_and_type(app, tmp_path, descriptions, dtype, file_name, metadata, expected):
    from plugin.qgisui.layer_actions import guess_modality

    layer = raster_layer(write_raster(tmp_path / file_name, descriptions, dtype, metadata))
    guess = guess_modality(layer)
    assert (guess.modality, guess.bands, guess.source) == expected


def test_source_options_follow_the_engine():
    from plugin.geo.condition_spec import SOURCES
    from plugin.qgisui.condition_names import SOURCE_OPTIONS

    assert SOURCE_OPTIONS == SOURCES


def test_generate_parameters_set_the_guess_and_generate_the_rest(app, data_copy):
    from plugin.qgisui.layer_actions import generate_parameters, guess_modality

    layer = raster_layer(data_copy / "s1rtc.webp")
    parameters = generate_parameters(layer, guess_modality(layer))
    # An S1 thumbnail's R, G, B fill no VV, VH channels: the engine reads them by itself.
    assert parameters == {"S1_RTC": layer.id(), "S1_RTC_SOURCE": 1, "GENERATE": [0, 2, 3]}
    tile = raster_layer(data_copy / TILE_NAME)
    parameters = generate_parameters(tile, guess_modality(tile))
    assert parameters == {
        "S2_L2A": tile.id(),
        "S2_L2A_SOURCE": 0,
        "S2_L2A_RED": 4,
        "S2_L2A_GREEN": 3,
        "S2_L2A_BLUE": 2,
        "GENERATE": [0, 1, 2],
    }


def test_band_widgets_give_the_bands_back_in_rendering_order(app, project, data_copy):
    """What the Generate dialog's band widgets hand over when the user picks B04, B03, B02 as
    red, green and blue reaches the engine in that order (a multiple band widget sorts them)."""
    from qgis.core import QgsProcessingContext
    from qgis.gui import (
        QgsGui,
        QgsProcessingContextGenerator,
        QgsProcessingGui,
        QgsProcessingParameterWidgetContext,
    )

    from plugin.qgisui.algorithms.generate import GenerateAlgorithm
    from plugin.qgisui.algorithms.parameters import read_condition

    algorithm = GenerateAlgorithm()
    algorithm.initAlgorithm()
    tile = raster_layer(data_copy / TILE_NAME)
    project.addMapLayer(tile)
    context = QgsProcessingContext()
    context.setProject(project)

    class ContextGenerator(QgsProcessingContextGenerator):
        def processingContext(self):  # noqa: N802
            return context

    generator = ContextGenerator()
    widget_context = QgsProcessingParameterWidgetContext()
    widget_context.setProject(project)
    wrappers, widgets = {}, []  # the widgets have no parent: Python keeps them alive

    def wrapper_for(name):
        wrapper = QgsGui.processingGuiRegistry().createParameterWidgetWrapper(
            algorithm.parameterDefinition(name), QgsProcessingGui.WidgetType.Standard
        )
        wrapper.setWidgetContext(widget_context)
        widgets.append(wrapper.createWrappedWidget(context))
        wrapper.registerProcessingContextGenerator(generator)
        wrappers[name] = wrapper
        return wrapper

    wrapper_for("S2_L2A").setParameterValue(tile.id(), context)
    for name, band in (("S2_L2A_RED", 4), ("S2_L2A_GREEN", 3), ("S2_L2A_BLUE", 2)):  # as the user picks them
        wrapper = wrapper_for(name)
        wrapper.setParentLayerWrapperValue(wrappers["S2_L2A"])
        combo = wrapper.wrappedWidget()
        assert combo.count() == 1 + 12  # "Not set" and the tile's bands
        combo.setCurrentIndex(combo.findData(band))
    parameters = {name: wrapper.parameterValue() for name, wrapper in wrappers.items()}
    spec = read_condition(algorithm, parameters, context, "S2_L2A", "s2_l2a")
    assert spec.bands == ("4", "3", "2")


# --- the context action ---------------------------------------------------------------------------


@pytest.fixture
def iface():
    from qgis.gui import QgisInterface

    return mock.MagicMock(spec=QgisInterface)


def offered_layers(iface):
    return [call.args[1].name() for call in iface.addCustomActionForLayer.call_args_list]


def test_action_is_registered_for_raster_files_only_and_removed_on_unload(project, iface, tmp_path):
    from qgis.core import QgsMapLayerType, QgsVectorLayer

    from plugin.qgisui.layer_actions import ACTION_TEXT, MENU, LayerActions

    before = raster_layer(write_raster(tmp_path / "before.tif", ["VV", "VH"]), "raster before")
    project.addMapLayers([before, QgsVectorLayer("Polygon?crs=EPSG:4326", "polygons", "memory")])
    actions = LayerActions(iface)
    actions.install()
    action = actions.action
    assert action.text() == ACTION_TEXT
    iface.addCustomActionForLayerType.assert_called_once_with(action, MENU, QgsMapLayerType.RasterLayer, False)
    project.addMapLayers([
        raster_layer(write_raster(tmp_path / "after.tif", [""]), "raster after"),
        QgsVectorLayer("Point?crs=EPSG:4326", "points", "memory"),
    ])
    assert offered_layers(iface) == ["raster before", "raster after"]

    actions.unload()
    iface.removeCustomActionForLayerType.assert_called_once_with(action)
    project.addMapLayer(raster_layer(write_raster(tmp_path / "later.tif", [""]), "raster after unload"))
    assert offered_layers(iface) == ["raster before", "raster after"]


def test_every_install_is_undone_by_its_unload(project, iface, tmp_path):
    from plugin.qgisui.layer_actions import LayerActions

    project.addMapLayer(raster_layer(write_raster(tmp_path / "a.tif", [""]), "a"))
    for _ in range(3):
        actions = LayerActions(iface)
        actions.install()
        actions.unload()
    added = iface.addCustomActionForLayerType.call_count
    removed = iface.removeCustomActionForLayerType.call_count
    assert added == removed == 3


# --- generated layers: group, style, metadata ------------------------------------------------------


def write_output(path, modality, dtype="uint8"):
    return write_raster(path, ["R", "G", "B"], dtype, {"modality": modality})


def load_like_processing(context):
    """What the Processing dialog does after a run: load the layers, call their post-processors."""
    from processing.gui.Postprocessing import handleAlgorithmResults
    from qgis.core import QgsApplication, QgsProcessingFeedback

    algorithm = QgsApplication.processingRegistry().algorithmById("native:buffer")
    return handleAlgorithmResults(algorithm, context, QgsProcessingFeedback())


def tree_groups(project):
    from qgis.core import QgsLayerTree

    return [
        (group.name(), [node.name() for node in group.children()])
        for group in project.layerTreeRoot().children()
        if QgsLayerTree.isGroup(group)
    ]


def test_generated_layers_go_into_their_run_group_styled_with_metadata(project, tmp_path):
    from qgis.core import QgsProcessingContext

    from plugin.qgisui.output_layers import register_output_layer

    context = QgsProcessingContext()
    context.setProject(project)
    parameters = {"seed": 3, "steps": 20, "conditions": "s2_l2a: layer 'tile'"}
    # Registered out of modality order, as a run may finish them.
    register_output_layer(context, str(write_output(tmp_path / "s2.tif", "s2_l1c", "uint16")), "s2_l1c", "run A", parameters)
    register_output_layer(context, str(write_output(tmp_path / "dem.tif", "dem")), "dem", "run A", parameters)
    register_output_layer(context, str(write_output(tmp_path / "s1.tif", "s1_rtc")), "s1_rtc", "run A", parameters)
    assert load_like_processing(context)
    assert tree_groups(project) == [("run A", ["DEM hillshade (synthetic)", "S1 RTC (synthetic)", "S2 L1C (synthetic)"])]

    layers = {layer.customProperty("copgen_beta/modality"): layer for layer in project.mapLayers().values()}
    dem, s1, s2 = layers["dem"], layers["s1_rtc"], layers["s2_l1c"]
    assert dem.renderer().type() == "singlebandgray" and dem.renderer().grayBand() == 1
    assert dem.renderer().contrastEnhancement().maximumValue() == 255
    for layer, maximum in ((s1, 255), (s2, 3000)):  # 8-bit rendering 1:1; reflectance DN stretched
        renderer = layer.renderer()
        assert renderer.type() == "multibandcolor"
        assert (renderer.redBand(), renderer.greenBand(), renderer.blueBand()) == (1, 2, 3)
        assert renderer.redContrastEnhancement().maximumValue() == maximum
    metadata = s1.metadata()
    assert "run A" in metadata.title() and "synthetic" in metadata.abstract().lower()
    assert metadata.history() == ["run: run A", "seed: 3", "steps: 20", "conditions: s2_l2a: layer 'tile'"]
    assert "hillshade" in dem.metadata().abstract()

    # A second run gets its own group, on top.
    context = QgsProcessingContext()
    context.setProject(project)
    register_output_layer(context, str(write_output(tmp_path / "dem2.tif", "dem")), "dem", "run B", {"seed": 4})
    assert load_like_processing(context)
    assert [name for name, _ in tree_groups(project)] == ["run B", "run A"]


def test_the_dem_legend_says_hillshade_not_a_red_band(project, tmp_path):
    from qgis.core import QgsLayerTreeModel, QgsProcessingContext

    from plugin.geo.grid import TargetGrid
    from plugin.geo.output import OutputWriter
    from plugin.qgisui.output_layers import register_output_layer
    from rasterio.crs import CRS
    from rasterio.transform import from_origin

    path = tmp_path / "dem.tif"  # as a run writes it: three equal bands described R, G, B
    with OutputWriter(path, TargetGrid(CRS.from_epsg(32633), from_origin(500000, 5000000, 10, 10), 64, 64), "dem") as out:
        out.write_window(0, 0, np.full((3, 64, 64), 100, np.uint8))
    context = QgsProcessingContext()
    context.setProject(project)
    register_output_layer(context, str(path), "dem", "run L", {})
    assert load_like_processing(context)
    (node,) = project.layerTreeRoot().findLayers()
    model = QgsLayerTreeModel(project.layerTreeRoot())  # owns the legend nodes
    labels = [legend.data(0) for legend in model.layerLegendNodes(node)]
    assert labels[0] == "Hillshade (grey shading, not elevations)"  # was "Band 1: R (hillshade) (Red)"


def test_a_layer_already_set_to_load_is_renamed_and_post_processed(project, tmp_path):
    from qgis.core import QgsProcessingContext

    from plugin.qgisui.output_layers import register_output_layer

    context = QgsProcessingContext()
    context.setProject(project)
    path = str(write_output(tmp_path / "s1.tif", "s1_rtc"))
    context.addLayerToLoadOnCompletion(path, QgsProcessingContext.LayerDetails("OUTPUT_S1_RTC", project))
    register_output_layer(context, path, "s1_rtc", "run C", {}, layer_name="S1 RTC sample 1")
    assert list(context.layersToLoadOnCompletion()) == [path]
    assert load_like_processing(context)
    assert tree_groups(project) == [("run C", ["S1 RTC sample 1"])]


def test_layer_metadata_says_unofficial_weights_heads_and_a_small_cover(project, tmp_path):
    import json as json_module

    from qgis.core import QgsProcessingContext

    from plugin.qgisui.output_layers import register_output_layer

    context = QgsProcessingContext()
    context.setProject(project)
    tags = {"modality": "dem", "checkpoints": "unofficial", "num_heads": "2",
            "condition_coverage": json_module.dumps({"s2_l2a": 0.002})}
    path = write_raster(tmp_path / "dem.tif", ["R", "G", "B"], "uint8", tags)
    register_output_layer(context, str(path), "dem", "run U", {})
    assert load_like_processing(context)
    (layer,) = project.mapLayers().values()
    history = layer.metadata().history()
    assert "model checkpoints: unofficial" in history and "model attention heads: 2" in history
    assert "Sentinel-2 L2A true colour condition covers <1 % of the area" in history  # not "0 %"
    assert "unofficial checkpoints" in layer.metadata().abstract()


def test_nothing_is_loaded_without_a_project(tmp_path):
    from qgis.core import QgsProcessingContext

    from plugin.qgisui.output_layers import register_output_layer

    context = QgsProcessingContext()  # as in qgis_process
    register_output_layer(context, str(write_output(tmp_path / "dem.tif", "dem")), "dem", "run", {})
    assert not context.layersToLoadOnCompletion()


# --- long work off the UI thread ------------------------------------------------------------------


@pytest.fixture(scope="module")
def copgen_provider(app, tiny_model_dir):
    from qgis.core import QgsApplication

    from plugin.qgisui.main import CopGenPlugin

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("COPGEN_MODEL_DIR", str(tiny_model_dir))
        plugin = CopGenPlugin(mock.MagicMock())
        plugin.initProcessing()
        yield QgsApplication.processingRegistry().providerById("copgen")
        plugin.unload()


def test_algorithms_run_in_background_and_can_be_cancelled(copgen_provider):
    from qgis.core import QgsProcessingAlgorithm

    ids = {algorithm.id(): algorithm for algorithm in copgen_provider.algorithms()}
    assert {"copgen:generate", "copgen:prepare", "copgen:installmodel", "copgen:chain", "copgen:combinations"} <= set(ids)
    for algorithm in ids.values():
        assert not algorithm.flags() & QgsProcessingAlgorithm.Flag.FlagNoThreading, algorithm.id()
    for name in ("copgen:generate", "copgen:installmodel", "copgen:chain", "copgen:combinations"):
        assert ids[name].flags() & QgsProcessingAlgorithm.Flag.FlagCanCancel, name


def run_as_task(algorithm_id, parameters, on_tick=None, check_first=False):
    """Run an algorithm the way the Processing dialog does (QgsProcessingAlgRunnerTask in the
    task manager) while a 5 ms QTimer samples the progress from the UI thread. Returns the run's
    outcome, the progress seen at every tick, and the algorithm and context for post-processing.
    ``check_first``: checkParameterValues in the run's context first, as the dialog's Run does."""
    from qgis.core import (
        QgsApplication,
        QgsProcessingAlgRunnerTask,
        QgsProcessingContext,
        QgsProcessingFeedback,
        QgsProject,
    )
    from qgis.PyQt.QtCore import QEventLoop, QTimer

    algorithm = QgsApplication.processingRegistry().createAlgorithmById(algorithm_id)
    context = QgsProcessingContext()
    context.setProject(QgsProject.instance())
    if check_first:
        assert algorithm.checkParameterValues(parameters, context)[0]
    feedback = QgsProcessingFeedback()
    task = QgsProcessingAlgRunnerTask(algorithm, parameters, context, feedback)
    outcome = {}
    loop = QEventLoop()

    def executed(ok, results):
        outcome.update(ok=ok, results=results)
        loop.quit()

    ticks = []

    def tick():
        ticks.append(feedback.progress())
        if on_tick is not None:
            on_tick(feedback)

    task.executed.connect(executed)
    timer = QTimer()
    timer.timeout.connect(tick)
    timer.start(5)
    QTimer.singleShot(300_000, loop.quit)  # bound: a hung run fails below instead of hanging
    QgsApplication.taskManager().addTask(task)
    loop.exec()
    timer.stop()
    return outcome, ticks, algorithm, context


def generate_parameters(data_copy, out_dir):
    return {"S2_L2A": str(data_copy / TILE_NAME), "GENERATE": [0, 1], "STEPS": 20, "OUTPUT_FOLDER": str(out_dir)}


def test_ui_event_loop_keeps_running_during_a_generation(copgen_provider, data_copy, tmp_path):
    outcome, ticks, _, _ = run_as_task("copgen:generate", generate_parameters(data_copy, tmp_path / "out"))
    assert outcome["ok"], outcome
    assert sorted(Path(path).name for path in outcome["results"]["OUTPUT_FILES"]) == [
        "282D_485L_3_3_seed0_dem.tif", "282D_485L_3_3_seed0_s1_rtc.tif"
    ]
    # The UI thread handled timer events while the algorithm was part-way through.
    mid_run = [progress for progress in ticks if 0 < progress < 100]
    print(f"\nUI timer ticks during the run: {len(ticks)}, {len(mid_run)} of them at progress strictly "
          f"between 0 and 100 ({len(set(mid_run))} distinct values)")
    assert len(set(mid_run)) >= 2


def test_cancel_mid_run_leaves_no_files_and_no_layers(copgen_provider, data_copy, tmp_path, project):
    out_dir = tmp_path / "out"
    cancelled_at = []

    def cancel_once_started(feedback):
        if not cancelled_at and 0 < feedback.progress() < 100:
            cancelled_at.append(feedback.progress())
            feedback.cancel()

    outcome, _, algorithm, context = run_as_task("copgen:generate", generate_parameters(data_copy, out_dir), cancel_once_started)
    assert cancelled_at and outcome["ok"] is False
    load_like_processing(context)  # the dialog loads results even after a failed run
    assert project.mapLayers() == {}
    leftovers = [path for path in out_dir.rglob("*") if path.is_file()] if out_dir.exists() else []
    assert leftovers == []


# --- a real QGIS window -----------------------------------------------------------------------------


@pytest.mark.skipif(not (shutil.which("xvfb-run") and shutil.which("qgis.bin")), reason="needs xvfb-run and QGIS")
def test_real_qgis_window_context_action_dialog_and_screenshots(tmp_path, tiny_model_dir):
    report_file = tmp_path / "report.json"
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "screenshots.py"), "--out", str(tmp_path / "shots"),
         "--model-dir", str(tiny_model_dir), "--report", str(report_file), "--timeout", "240"],
        capture_output=True, text=True, timeout=300,
    )
    assert report_file.is_file(), result.stdout + result.stderr
    report = json.loads(report_file.read_text())
    assert report["errors"] == [] and report["ok"], report
    checks = report["checks"]
    assert checks["plugin_loaded"]
    assert checks["deps_folder_on_sys_path"]
    assert checks["raster_menu_entries"] == ["Generate from this layer…"]
    assert checks["vector_menu_entries"] == []
    assert checks["raster_menu_entries_after_reload"] == ["Generate from this layer…"]
    assert checks["dialog_algorithm"] == "copgen:generate"
    dialog = checks["dialog_parameters"]
    assert dialog["S2_L2A"] == dialog["raster_id"]
    bands = [dialog[f"S2_L2A_{channel}"] for channel in ("RED", "GREEN", "BLUE")]
    assert (bands, dialog["S2_L2A_SOURCE"], dialog["GENERATE"]) == ([4, 3, 2], 0, [0, 1, 2])
    # Run from that dialog: a background task, then Processing loads the outputs (our post-processor).
    assert checks["dialog_run_successful"] is True
    print(f"\nUI timer (10 ms) ticks while the dialog ran the algorithm: {checks['ui_ticks_during_dialog_run']}")
    assert checks["ui_ticks_during_dialog_run"] >= 2
    run = "S2_L2A_input_282D_485L_3_3_seed7"
    assert checks["generated_files"] == [f"{run}_{m}.tif" for m in ("dem", "s1_rtc", "s2_l1c")]
    names = ["DEM hillshade (synthetic)", "S1 RTC (synthetic)", "S2 L1C (synthetic)"]
    assert checks["groups"] == [[run, names]]
    assert [(name, renderer) for name, renderer, *_ in checks["generated_layers"]] == [
        (names[0], "singlebandgray"), (names[1], "multibandcolor"), (names[2], "multibandcolor")
    ]
    assert checks["options_page_found"]
    assert checks["plugin_menu_entries"] == [
        "Generate…", "Install model…", "Check installation…", "Settings…", "Python packages…"
    ]
    assert checks["first_run_offer"] == ["Install model…"]
    assert checks["raster_menu_entries_after_unload"] == [] and checks["raster_menu_after_unload"] == []
    assert checks["provider_after_unload"] is False
    for name in ("generate_dialog.png", "map_generated.png", "settings.png", "first_run.png"):
        assert_real_screenshot(tmp_path / "shots" / name)


def assert_real_screenshot(path):
    """A PNG of a painted window: big enough and far from a single flat colour."""
    from osgeo import gdal

    dataset = gdal.Open(str(path))
    assert dataset is not None, path
    assert dataset.RasterXSize >= 800 and dataset.RasterYSize >= 500, path
    pixels = dataset.ReadAsArray()[:3].reshape(3, -1).T
    assert len(np.unique(pixels[::7], axis=0)) > 100, path
