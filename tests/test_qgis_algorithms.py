"""The copgen Processing algorithms in a real QgsApplication, run through processing.run on real
rasters with the tiny converted model (random weights: geometry, files and plumbing are checked,
not image quality)."""

import importlib
import json
import math
import re
import sys

import numpy as np
import pytest
from osgeo import gdal

from qgis_support import PLUGIN_NAME, plugin_provider

pytest.importorskip("qgis.core")

TILES = ("282D_485L_3_3.tif", "38D_378R_2_3.tif")
THUMBNAILS = {"dem": "dem", "s1_rtc": "s1rtc", "s2_l1c": "s2l1c", "s2_l2a": "s2l2a"}
STEPS = 2
# B04, B03, B02 of the 12-band Major TOM tiles (no band descriptions), as Generate and Prepare take them.
S2_L2A_BANDS = {"S2_L2A_RED": 4, "S2_L2A_GREEN": 3, "S2_L2A_BLUE": 2}
INPUT_BANDS = {"RED": 4, "GREEN": 3, "BLUE": 2}
ENUM = {"dem": 0, "s1_rtc": 1, "s2_l1c": 2, "s2_l2a": 3}
# The made-up georeferencing of the thumbnails: 256 px at 10 m in UTM 33N.
THUMBNAIL_CRS = "EPSG:32633"
THUMBNAIL_BOUNDS = (500000.0, 5000000.0, 502560.0, 5002560.0)


@pytest.fixture(scope="module")
def provider(tmp_path_factory, tiny_model_dir):
    """The installed plugin's provider, with the tiny model as the model folder."""
    with plugin_provider(tmp_path_factory.mktemp("home"), tiny_model_dir) as provider:
        yield provider


@pytest.fixture(scope="module")
def tiles(shared_dir):
    return [shared_dir / "data" / "majortom_s2l2a" / name for name in TILES]


@pytest.fixture(scope="module")
def thumbnails(shared_dir, tmp_path_factory):
    """The real thumbnail quadruple as GeoTIFFs on a made-up UTM grid."""
    folder = tmp_path_factory.mktemp("thumbnails")
    xmin, ymin, xmax, ymax = THUMBNAIL_BOUNDS
    paths = {}
    for modality, name in THUMBNAILS.items():
        paths[modality] = folder / f"{name}.tif"
        source = gdal.Open(str(shared_dir / "data" / "copgen_beta_thumbnails" / f"{name}.webp"))
        gdal.Translate(str(paths[modality]), source, outputSRS=THUMBNAIL_CRS, outputBounds=[xmin, ymax, xmax, ymin])
    return paths


def run(algorithm, parameters, feedback=None):
    import processing

    return processing.run(f"copgen:{algorithm}", parameters, feedback=feedback)


def installation_report():
    """What Check installation says in its log (its report, said once there)."""
    feedback = RecordingFeedback()
    result = run("checkinstallation", {}, feedback)
    assert "REPORT" not in result  # not repeated as an output (the dialog prints outputs as a dict)
    (report,) = [text for text in feedback.lines if text.startswith("COP-GEN-Beta plugin")]
    return report


def check(provider, algorithm, parameters):
    """checkParameterValues of the registered algorithm: (ok, message)."""
    from qgis.core import QgsApplication, QgsProcessingContext

    registered = QgsApplication.processingRegistry().algorithmById(f"copgen:{algorithm}")
    instance = registered.create()
    return instance.checkParameterValues(parameters, QgsProcessingContext())


def labels(algorithm, names):
    """"<label>, <label>" of the parameters ``names`` ("A, B") as the dialog shows them."""
    from qgis.core import QgsApplication

    registered = QgsApplication.processingRegistry().algorithmById(f"copgen:{algorithm}")
    return ", ".join(registered.parameterDefinition(name.strip()).description() for name in names.split(","))


CLI_WORDS = re.compile(r"(^|[\s(`'\"])--[a-z]|python -m plugin|copgen:[a-z]")


def assert_dialog_words(algorithm, message, named):
    """The message starts with the labels of ``named`` (parameter IDs) and quotes no CLI flag."""
    assert message.startswith(labels(algorithm, named) + ":"), message
    assert not CLI_WORDS.search(message), message


class Grid:
    """CRS, bounds, size and mask of a raster file, read with GDAL."""

    def __init__(self, path):
        ds = gdal.Open(str(path))
        self.srs = ds.GetSpatialRef()
        x0, dx, _, y0, _, dy = ds.GetGeoTransform()
        self.pixel = (dx, dy)
        self.width, self.height = ds.RasterXSize, ds.RasterYSize
        self.bounds = (x0, y0 + dy * ds.RasterYSize, x0 + dx * ds.RasterXSize, y0)
        self.epsg = int(self.srs.GetAuthorityCode(None))
        self.bands = ds.RasterCount
        self.dtype = gdal.GetDataTypeName(ds.GetRasterBand(1).DataType)
        self.mask = ds.GetRasterBand(1).GetMaskBand().ReadAsArray() > 0
        self.metadata = ds.GetMetadata()


# -- Generate -------------------------------------------------------------------------------------


def test_generate_from_a_real_tile_keeps_its_grid(provider, tiles, tmp_path):
    tile = Grid(tiles[0])
    result = run(
        "generate",
        {
            "S2_L2A": str(tiles[0]),
            **S2_L2A_BANDS,
            "GENERATE": [ENUM["dem"], ENUM["s1_rtc"]],
            "STEPS": STEPS,
            "SEED": 3,
            "OUTPUT_FOLDER": str(tmp_path),
        },
    )
    assert set(result) >= {"OUTPUT_DEM", "OUTPUT_S1_RTC", "OUTPUT_FILES", "OUTPUT_FOLDER"}
    assert "OUTPUT_S2_L2A" not in result
    assert sorted(result["OUTPUT_FILES"]) == sorted([result["OUTPUT_DEM"], result["OUTPUT_S1_RTC"]])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.split("/")[-1] for p in result["OUTPUT_FILES"])
    pad = (256 - tile.width) // 2 * 10.0  # 224 px tiles are padded, centred, to one 256 px model tile
    left, bottom, right, top = tile.bounds
    for key, modality in (("OUTPUT_DEM", "dem"), ("OUTPUT_S1_RTC", "s1_rtc")):
        out = Grid(result[key])
        assert out.epsg == tile.epsg == 32722
        assert out.pixel == (10.0, -10.0)
        assert (out.width, out.height) == (256, 256)
        assert out.bounds == pytest.approx((left - pad, bottom - pad, right + pad, top + pad), abs=1e-6)
        assert out.bands == 3 and out.dtype == "Byte"
        assert out.metadata["modality"] == modality
        assert out.metadata["seed"] == "3" and out.metadata["steps"] == str(STEPS)
        assert json.loads(out.metadata["conditions"])[0]["modality"] == "s2_l2a"


def test_generate_from_a_georeferenced_thumbnail_with_samples_and_reflectance(provider, thumbnails, tmp_path):
    result = run(
        "generate",
        {
            "S1_RTC": str(thumbnails["s1_rtc"]),
            "S1_RTC_SOURCE": 1,
            "GENERATE": [ENUM["s2_l2a"]],
            "SAMPLES": 2,
            "REFLECTANCE": True,
            "STEPS": STEPS,
            "OUTPUT_FOLDER": str(tmp_path),
        },
    )
    assert len(result["OUTPUT_FILES"]) == 2
    assert result["OUTPUT_S2_L2A"].endswith("_s2_l2a_sample1.tif")
    for path in result["OUTPUT_FILES"]:
        out = Grid(path)
        assert out.epsg == 32633
        assert out.bounds == pytest.approx(THUMBNAIL_BOUNDS, abs=1e-6)
        assert out.dtype == "UInt16"
    first, second = (gdal.Open(p).ReadAsArray() for p in sorted(result["OUTPUT_FILES"]))
    assert not np.array_equal(first, second)  # two samples, two different draws


def test_generate_over_an_extent_in_another_crs(provider, tiles, tmp_path):
    # A 1 km box inside the tile, in lon/lat: the output is on the UTM zone's 10 m grid around it.
    from pyproj import Transformer

    left, bottom, right, top = Grid(tiles[0]).bounds
    to_lonlat = Transformer.from_crs("EPSG:32722", "EPSG:4326", always_xy=True)
    lon0, lat0 = to_lonlat.transform(left + 500, bottom + 500)
    lon1, lat1 = to_lonlat.transform(left + 1500, bottom + 1500)
    result = run(
        "generate",
        {
            "S2_L2A": str(tiles[0]),
            **S2_L2A_BANDS,
            "GENERATE": [ENUM["dem"]],
            "EXTENT": f"{lon0},{lon1},{lat0},{lat1} [EPSG:4326]",
            "STEPS": STEPS,
            "OUTPUT_FOLDER": str(tmp_path),
        },
    )
    out = Grid(result["OUTPUT_DEM"])
    assert out.epsg == 32722
    assert (out.width, out.height) == (256, 256)
    o_left, o_bottom, o_right, o_top = out.bounds
    assert o_left <= left + 500 and o_right >= left + 1500 and o_bottom <= bottom + 500 and o_top >= bottom + 1500
    # On the condition tile's own 10 m pixel lattice, so the tile is copied, not resampled.
    columns, rows = (o_left - left) / 10, (o_top - top) / 10
    assert (columns, rows) == pytest.approx((round(columns), round(rows)))
    assert out.mask.mean() < 0.5  # outside the 1 km extent: nodata


def test_generate_inside_an_aoi_polygon_masks_the_rest(provider, tiles, tmp_path):
    left, bottom, right, top = Grid(tiles[0]).bounds
    aoi = tmp_path / "aoi.geojson"
    mid = (left + right) / 2
    aoi.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::32722"}},
                "features": [
                    {
                        "type": "Feature",
                        "properties": {},
                        "geometry": {
                            "type": "Polygon",
                            "coordinates": [[[left, bottom], [mid, bottom], [mid, top], [left, top], [left, bottom]]],
                        },
                    }
                ],
            }
        )
    )
    result = run(
        "generate",
        {
            "S2_L2A": str(tiles[0]),
            **S2_L2A_BANDS,
            "GENERATE": [ENUM["s1_rtc"]],
            "AOI": str(aoi),
            "STEPS": STEPS,
            "OUTPUT_FOLDER": str(tmp_path / "out"),
        },
    )
    out = Grid(result["OUTPUT_S1_RTC"])
    o_left, _, _, o_top = out.bounds
    columns = (np.arange(out.width) + 0.5) * 10 + o_left
    rows = o_top - (np.arange(out.height) + 0.5) * 10
    inside = (columns[None, :] > left) & (columns[None, :] < mid) & (rows[:, None] > bottom) & (rows[:, None] < top)
    np.testing.assert_array_equal(out.mask, inside)


def test_generate_batch_over_two_tiles_into_one_folder(provider, tiles, tmp_path):
    # QgsProcessingBatch is GUI-only: a batch is the algorithm run once per row.
    results = [
        run(
            "generate",
            {
                "S2_L2A": str(tile),
                **S2_L2A_BANDS,
                "GENERATE": [ENUM["dem"]],
                "STEPS": STEPS,
                "OUTPUT_FOLDER": str(tmp_path),
            },
        )
        for tile in (*tiles, tiles[0])
    ]
    paths = [result["OUTPUT_DEM"] for result in results]
    assert len(set(paths)) == 3  # the same tile again does not overwrite the first run
    assert [Grid(p).epsg for p in paths] == [Grid(t).epsg for t in (*tiles, tiles[0])] == [32722, 32736, 32722]
    assert len(list(tmp_path.iterdir())) == 3


def test_graphical_model_prepare_then_generate(provider, tiles, tmp_path):
    from qgis.core import (
        QgsProcessingContext,
        QgsProcessingFeedback,
        QgsProcessingModelAlgorithm,
        QgsProcessingModelChildAlgorithm,
        QgsProcessingModelChildParameterSource,
        QgsProcessingModelParameter,
        QgsProcessingParameterRasterLayer,
    )

    model = QgsProcessingModelAlgorithm("prepare then generate", "tests")
    model.addModelParameter(
        QgsProcessingParameterRasterLayer("tile", "S2 L2A tile"), QgsProcessingModelParameter("tile")
    )
    static = QgsProcessingModelChildParameterSource.fromStaticValue

    prepare = QgsProcessingModelChildAlgorithm("copgen:prepare")
    prepare.setChildId("prepare")
    prepare.addParameterSources("INPUT", [QgsProcessingModelChildParameterSource.fromModelParameter("tile")])
    prepare.addParameterSources("MODALITY", [static(ENUM["s2_l2a"])])
    for name, band in INPUT_BANDS.items():
        prepare.addParameterSources(name, [static(band)])
    prepare.addParameterSources("OUTPUT", [static(str(tmp_path / "prepared.tif"))])
    model.addChildAlgorithm(prepare)

    generate = QgsProcessingModelChildAlgorithm("copgen:generate")
    generate.setChildId("generate")
    generate.addParameterSources(
        "S2_L2A", [QgsProcessingModelChildParameterSource.fromChildOutput("prepare", "OUTPUT")]
    )
    generate.addParameterSources("S2_L2A_SOURCE", [static(1)])  # the prepared rendering is a thumbnail
    generate.addParameterSources("GENERATE", [static([ENUM["dem"], ENUM["s2_l1c"]])])
    generate.addParameterSources("STEPS", [static(STEPS)])
    generate.addParameterSources("OUTPUT_FOLDER", [static(str(tmp_path / "generated"))])
    model.addChildAlgorithm(generate)

    context = QgsProcessingContext()
    results, ok = model.run({"tile": str(tiles[0])}, context, QgsProcessingFeedback())
    assert ok, results
    prepared = Grid(tmp_path / "prepared.tif")
    written = sorted((tmp_path / "generated").iterdir())
    assert [p.name.rsplit("_seed0_", 1)[1] for p in written] == ["dem.tif", "s2_l1c.tif"]
    for path in written:
        out = Grid(path)
        assert (out.epsg, out.bounds, out.width) == (prepared.epsg, prepared.bounds, prepared.width)


# -- Prepare --------------------------------------------------------------------------------------


def test_prepare_renders_the_tile_on_its_own_grid(provider, tiles, tmp_path):
    from plugin.geo.render import render_s2

    output = tmp_path / "rendering.tif"
    result = run(
        "prepare", {"INPUT": str(tiles[0]), "MODALITY": ENUM["s2_l2a"], **INPUT_BANDS, "OUTPUT": str(output)}
    )
    assert result["OUTPUT"] == str(output)
    tile, out = Grid(tiles[0]), Grid(output)
    pad = (256 - tile.width) // 2
    left, bottom, right, top = tile.bounds
    assert out.epsg == tile.epsg
    assert out.bounds == pytest.approx((left - 10 * pad, bottom - 10 * pad, right + 10 * pad, top + 10 * pad), abs=1e-6)
    bands = gdal.Open(str(tiles[0])).ReadAsArray()
    expected = render_s2(*bands[[3, 2, 1]].astype(np.float64))
    rendered = gdal.Open(str(output)).ReadAsArray()[:, pad : pad + tile.height, pad : pad + tile.width]
    assert np.abs(rendered.astype(int) - expected).max() <= 1
    assert out.mask[pad : pad + tile.height, pad : pad + tile.width].all()
    assert not out.mask[:pad].any()  # padding outside the tile: nodata


def test_prepare_over_an_extent(provider, tiles, tmp_path):
    left, bottom, _, _ = Grid(tiles[1]).bounds
    extent = f"{left + 300},{left + 800},{bottom + 300},{bottom + 800} [EPSG:{Grid(tiles[1]).epsg}]"
    result = run(
        "prepare",
        {
            "INPUT": str(tiles[1]),
            "MODALITY": ENUM["s2_l2a"],
            **INPUT_BANDS,
            "EXTENT": extent,
            "OUTPUT": str(tmp_path / "part.tif"),
        },
    )
    out = Grid(result["OUTPUT"])
    assert out.epsg == 32736 and (out.width, out.height) == (256, 256)
    o_left, o_bottom, o_right, o_top = out.bounds
    assert o_left <= left + 300 < left + 800 <= o_right and o_bottom <= bottom + 300 < bottom + 800 <= o_top


def tile_rendering(path, tile):
    """The rendering inside the tile's footprint (Prepare pads 224 px tiles, centred, to 256)."""
    pad = (256 - tile.width) // 2
    return gdal.Open(str(path)).ReadAsArray()[:, pad : pad + tile.height, pad : pad + tile.width].astype(int)


def test_prepare_renders_the_bands_in_the_order_given(provider, tiles, tmp_path):
    from plugin.geo.render import render_s2

    # A false-colour choice (B02 as red, B04 as blue) proves the order reaches the rendering.
    parameters = {"INPUT": str(tiles[0]), "MODALITY": ENUM["s2_l2a"], "OUTPUT": str(tmp_path / "o.tif")}
    result = run("prepare", {**parameters, "RED": 2, "GREEN": 3, "BLUE": 4})
    bands = gdal.Open(str(tiles[0])).ReadAsArray().astype(np.float64)
    rendered = tile_rendering(result["OUTPUT"], Grid(tiles[0]))
    assert np.abs(rendered - render_s2(bands[1], bands[2], bands[3])).max() <= 1
    assert np.abs(rendered - render_s2(bands[3], bands[2], bands[1])).max() > 1


def test_prepare_subtracts_the_s2_dn_offset(provider, tiles, tmp_path):
    from plugin.geo.render import render_s2

    result = run(
        "prepare",
        {"INPUT": str(tiles[0]), "MODALITY": ENUM["s2_l2a"], "DN_OFFSET": 1000, "OUTPUT": str(tmp_path / "o.tif")},
    )
    bands = gdal.Open(str(tiles[0])).ReadAsArray().astype(np.float64)
    rendered = tile_rendering(result["OUTPUT"], Grid(tiles[0]))
    assert np.abs(rendered - render_s2(bands[3], bands[2], bands[1], offset=1000)).max() <= 1
    assert np.abs(rendered - render_s2(bands[3], bands[2], bands[1])).max() > 1


def write_s1(path, values):
    """A 64 x 64 px two-band (VV, VH) float32 GeoTIFF at 10 m in UTM 33N."""
    driver = gdal.GetDriverByName("GTiff")
    dataset = driver.Create(str(path), 64, 64, 2, gdal.GDT_Float32)
    dataset.SetGeoTransform((500000, 10, 0, 5000640, 0, -10))
    dataset.SetProjection("EPSG:32633")
    for band, name in enumerate(("VV", "VH"), start=1):
        dataset.GetRasterBand(band).WriteArray(values[band - 1])
        dataset.GetRasterBand(band).SetDescription(name)
    dataset = None
    return path


@pytest.fixture(scope="module")
def s1_pair(tmp_path_factory):
    """The same backscatter as linear power and in dB."""
    folder = tmp_path_factory.mktemp("s1")
    linear = np.random.default_rng(5).uniform(1e-3, 0.5, (2, 64, 64)).astype(np.float32)
    return write_s1(folder / "linear.tif", linear), write_s1(folder / "db.tif", 10 * np.log10(linear))


def test_prepare_reads_s1_in_db_when_told(provider, s1_pair, tmp_path):
    linear, decibels = s1_pair
    prepared = [
        run("prepare", {"INPUT": str(path), "MODALITY": ENUM["s1_rtc"], **options, "OUTPUT": str(tmp_path / name)})
        for path, options, name in ((linear, {}, "linear.tif"), (decibels, {"IN_DB": True}, "db.tif"))
    ]
    first, second = (gdal.Open(result["OUTPUT"]).ReadAsArray().astype(int) for result in prepared)
    assert first.max() > 200  # a real rendering, not an empty one
    assert np.abs(first - second).max() <= 1


def test_generate_reads_s1_in_db_when_told(provider, s1_pair, tmp_path):
    # The same backscatter, linear or in dB with S1_RTC_IN_DB, is the same condition.
    linear, decibels = s1_pair
    common = {"GENERATE": [ENUM["dem"]], "STEPS": STEPS}
    outputs = [
        run("generate", {"S1_RTC": str(path), **options, **common, "OUTPUT_FOLDER": str(tmp_path / name)})["OUTPUT_DEM"]
        for path, options, name in ((linear, {}, "linear"), (decibels, {"S1_RTC_IN_DB": True}, "db"))
    ]
    first, second = (gdal.Open(path).ReadAsArray() for path in outputs)
    np.testing.assert_array_equal(first, second)


@pytest.mark.parametrize(
    "algorithm, parameters, named",
    [
        ("generate", {"S2_L2A_RED": 4}, "S2_L2A_GREEN, S2_L2A_BLUE"),  # some channels only
        (
            "generate",
            {"S1_RTC": "thumbnail", "S1_RTC_SOURCE": 1, "S1_RTC_VV": 1, "S1_RTC_VH": 2},
            "S1_RTC_VV, S1_RTC_VH",
        ),
        ("prepare", {"VV": 1, "VH": 2}, "VV, VH"),  # bands of another modality than MODALITY's
        ("prepare", {"IN_DB": True}, "IN_DB"),
        ("prepare", {"DN_OFFSET": "lots"}, "DN_OFFSET"),
        ("chain", {"ELEVATION": 1}, "ELEVATION"),
    ],
)
def test_band_and_option_parameters_are_checked(provider, tiles, thumbnails, algorithm, parameters, named):
    base = {
        "generate": {"S2_L2A": str(tiles[0]), "GENERATE": [ENUM["dem"]], "OUTPUT_FOLDER": "/tmp/unused"},
        "prepare": {"INPUT": str(tiles[0]), "MODALITY": ENUM["s2_l2a"], "OUTPUT": "/tmp/unused.tif"},
        "chain": {"INPUT": str(tiles[0]), "INPUT_MODALITY": ENUM["s2_l2a"], "VIA_MODALITY": ENUM["s1_rtc"]},
    }[algorithm]
    parameters = dict(parameters)
    if parameters.get("S1_RTC") == "thumbnail":
        parameters["S1_RTC"] = str(thumbnails["s1_rtc"])
    ok, message = check(provider, algorithm, {**base, **parameters})
    assert not ok
    assert_dialog_words(algorithm, message, named)


# -- Install model --------------------------------------------------------------------------------


class RecordingFeedback:
    """A QgsProcessingFeedback that records progress and log lines; cancels at a given progress."""

    def __new__(cls, cancel_at=None):
        from qgis.core import QgsProcessingFeedback

        class Recording(QgsProcessingFeedback):
            def __init__(self):
                super().__init__()
                self.progress_values = []
                self.lines = []
                self.warnings = []

            def setProgress(self, value):  # noqa: N802
                self.progress_values.append(value)
                super().setProgress(value)
                if cancel_at is not None and value >= cancel_at:
                    self.cancel()

            def pushInfo(self, info):  # noqa: N802
                self.lines.append(info)
                super().pushInfo(info)

            def pushWarning(self, warning):  # noqa: N802
                self.warnings.append(warning)
                super().pushWarning(warning)

        return Recording()


def test_install_model_from_local_files(provider, fixtures_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("COPGEN_MODEL_DIR", str(tmp_path / "models"))
    feedback = RecordingFeedback()
    result = run(
        "installmodel",
        {
            "MODEL": 0,
            "PRECISION": 1,
            "DENOISER_FILE": str(fixtures_dir / "denoiser_tiny.pth"),
            "VAE_FILE": str(fixtures_dir / "vae_tiny.pth"),
            "ALLOW_UNOFFICIAL": True,  # the tiny test checkpoints are not the official ones
        },
        feedback,
    )
    folder = tmp_path / "models" / "cop-gen-beta"
    assert result["MODEL_DIR"] == str(folder)
    info = json.loads((folder / "model.json").read_text())
    assert info["precision"] == "fp32"
    assert all((folder / name).is_file() for name in ("denoiser.onnx", "vae_encoder.onnx", "vae_decoder.onnx"))
    assert feedback.progress_values and max(feedback.progress_values) == pytest.approx(100)


def test_install_model_installs_cop_gen_from_its_vae_folder_beside_beta(provider, shared_dir, tmp_path, monkeypatch):
    """Install model with the registry's COP-GEN entry, the denoiser file and the folder of the
    ten VAEs (the official layout): a COP-GEN folder beside COP-GEN-Beta's, and the setting that
    names the model makes the algorithms load it."""
    from plugin.engine import load
    from plugin.engine.manager import ModelManager
    from plugin.qgisui import settings

    root = shared_dir / "fixtures" / "copgen_reference"
    monkeypatch.setenv("COPGEN_MODEL_DIR", str(tmp_path / "models"))
    names = ModelManager(tmp_path / "models").names()
    result = run(
        "installmodel",
        {
            "MODEL": names.index("cop-gen"),
            "PRECISION": 1,
            "DENOISER_FILE": str(root / "denoiser_tiny.pth"),
            "VAE_DIR": str(root / "vae"),
            "ALLOW_UNOFFICIAL": True,  # tiny random test checkpoints, not the official ones
            "HEADS": 2,
        },
        RecordingFeedback(),
    )
    folder = tmp_path / "models" / "cop-gen"
    assert result["MODEL_DIR"] == str(folder)
    assert load(folder, device="cpu").family == "cop-gen"
    saved = settings.model_name()
    try:
        settings.set_model_name("cop-gen")
        assert settings.model_dir() == folder and settings.model_problem() is None
    finally:
        settings.set_model_name(saved)


def test_install_model_cancel_leaves_no_model(provider, fixtures_dir, tmp_path, monkeypatch):
    from qgis.core import QgsProcessingException

    monkeypatch.setenv("COPGEN_MODEL_DIR", str(tmp_path / "models"))
    with pytest.raises(QgsProcessingException, match="[Cc]ancel"):
        run(
            "installmodel",
            {
                "MODEL": 0,
                "PRECISION": 1,
                "DENOISER_FILE": str(fixtures_dir / "denoiser_tiny.pth"),
                "VAE_FILE": str(fixtures_dir / "vae_tiny.pth"),
            "ALLOW_UNOFFICIAL": True,  # the tiny test checkpoints are not the official ones
            },
            RecordingFeedback(cancel_at=0),
        )
    assert not (tmp_path / "models" / "cop-gen-beta").exists()


@pytest.mark.timeout(120)
def test_install_model_offline_names_the_parameters_that_take_local_files(provider, tmp_path, monkeypatch):
    """No server (a port nothing listens on): the error says, in the dialog's words, which
    parameter takes which file and where each comes from; no empty folder is left behind."""
    import functools

    from qgis.core import QgsProcessingException

    registry = tmp_path / "registry.json"
    registry.write_text(json.dumps({"models": {"cop-gen-beta": {
        "title": "tiny", "num_heads": 2, "sources": {
            "denoiser": {"file_name": "d.pth", "url": "http://127.0.0.1:9/d.pth", "sha256": None},
            "vae": {"file_name": "v.pth", "url": "http://127.0.0.1:9/v.pth", "sha256": None}}}}}))
    module = sys.modules[f"{PLUGIN_NAME}.plugin.qgisui.algorithms.install_model"]
    monkeypatch.setattr(module, "ModelManager", functools.partial(module.ModelManager, registry=registry))
    monkeypatch.setenv("COPGEN_MODEL_DIR", str(tmp_path / "models"))
    with pytest.raises(QgsProcessingException) as refused:
        run("installmodel", {"MODEL": 0, "PRECISION": 1})
    message = str(refused.value)
    assert message.startswith("http://127.0.0.1:9/d.pth: cannot reach the server"), message
    for name, file in (("DENOISER_FILE", "d.pth"), ("VAE_FILE", "v.pth")):
        assert f"{labels('installmodel', name)}: {file} from http://127.0.0.1:9/{file}" in message
    assert labels("installmodel", "ALLOW_UNOFFICIAL") in message
    assert not CLI_WORDS.search(message) and "--" not in message
    assert not (tmp_path / "models").exists()  # no empty downloads/ folder


@pytest.fixture
def cuda_device_setting():
    """The plugin's device setting at "cuda" for one test (restored after)."""
    from qgis.core import QgsSettings

    key = "copgen_beta/device"
    saved = QgsSettings().value(key)
    QgsSettings().setValue(key, "cuda")
    yield
    if saved is None:
        QgsSettings().remove(key)
    else:
        QgsSettings().setValue(key, saved)


def test_install_model_auto_precision_is_the_model_generate_loads(
    provider, fixtures_dir, tiles, tmp_path, monkeypatch, cuda_device_setting
):
    # On CUDA, "auto" installs fp16: Generate must then find that model, not ask for another.
    monkeypatch.setenv("COPGEN_MODEL_DIR", str(tmp_path / "models"))
    result = run(
        "installmodel",
        {
            "MODEL": 0,
            "PRECISION": 0,
            "DENOISER_FILE": str(fixtures_dir / "denoiser_tiny.pth"),
            "VAE_FILE": str(fixtures_dir / "vae_tiny.pth"),
            "ALLOW_UNOFFICIAL": True,  # the tiny test checkpoints are not the official ones
        },
    )
    assert result["MODEL_DIR"] == str(tmp_path / "models" / "cop-gen-beta-fp16")
    assert json.loads((tmp_path / "models" / "cop-gen-beta-fp16" / "model.json").read_text())["precision"] == "fp16"
    parameters = {"S2_L2A": str(tiles[0]), "GENERATE": [ENUM["dem"]], "OUTPUT_FOLDER": str(tmp_path / "out")}
    ok, message = check(provider, "generate", parameters)
    assert ok, message
    installed = run("checkinstallation", {})
    assert installed["MODELS"].splitlines() == [f"cop-gen-beta\tfp16\t{tmp_path / 'models' / 'cop-gen-beta-fp16'}"]
    assert f"The algorithms load: {tmp_path / 'models' / 'cop-gen-beta-fp16'}" in installation_report()


def test_check_installation_lists_the_installed_models(provider, tiny_model_dir, tmp_path, monkeypatch):
    # The test setup points the model folder straight at one converted model.
    result, report = run("checkinstallation", {}), installation_report()
    assert result["MODELS"] == f"COP-GEN-Beta\tfp32\t{tiny_model_dir}"  # the name in its model.json
    assert [line.split() for line in report.splitlines() if str(tiny_model_dir) in line] == [
        ["Model", "directory:", str(tiny_model_dir)],
        # converted by the test setup, not installed: not checked against the official checkpoints
        ["-", "COP-GEN-Beta,", "fp32:", str(tiny_model_dir), "(int8", "denoiser:", "no;", "converted", "by", "hand",
         "checkpoints,", "2", "heads)"],
        ["The", "algorithms", "load:", str(tiny_model_dir)],
    ]
    assert "Precision setting: faithful" in report.splitlines()
    monkeypatch.setenv("COPGEN_MODEL_DIR", str(tmp_path / "empty"))
    result, report = run("checkinstallation", {}), installation_report()
    assert result["MODELS"] == "" and "no model installed" in report


# -- Precision fast --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_int8_model_dir(fixtures_dir, tmp_path_factory):
    """The tiny model converted with its int8 denoiser (2 heads, like the fixtures)."""
    from plugin.engine.convert import convert

    from fast_choice import keep_int8_chosen

    out = tmp_path_factory.mktemp("tiny_model_int8") / "model"
    convert(fixtures_dir / "denoiser_tiny.pth", fixtures_dir / "vae_tiny.pth", out, heads=2, precision="int8")
    return keep_int8_chosen(out)  # the fast path as a measurement left it (tests/test_fast_path.py)


@pytest.fixture
def precision_setting():
    """Sets the plugin's precision setting, with the device at "cpu", for one test (both restored after)."""
    from qgis.core import QgsSettings

    keys = ("copgen_beta/precision", "copgen_beta/device")
    saved = {key: QgsSettings().value(key) for key in keys}
    QgsSettings().setValue("copgen_beta/device", "cpu")
    yield lambda value: QgsSettings().setValue("copgen_beta/precision", value)
    for key, value in saved.items():
        if value is None:
            QgsSettings().remove(key)
        else:
            QgsSettings().setValue(key, value)


def generate_dem(tile, out_dir, feedback):
    """Generate's DEM for ``tile`` (seed 1) as an array."""
    parameters = {"S2_L2A": str(tile), **S2_L2A_BANDS, "GENERATE": [ENUM["dem"]], "STEPS": STEPS, "SEED": 1}
    result = run("generate", {**parameters, "OUTPUT_FOLDER": str(out_dir)}, feedback)
    return gdal.Open(result["OUTPUT_DEM"]).ReadAsArray()


def test_generate_with_fast_int8_uses_the_int8_denoiser(
    provider, tiny_int8_model_dir, tiles, tmp_path, monkeypatch, precision_setting
):
    monkeypatch.setenv("COPGEN_MODEL_DIR", str(tiny_int8_model_dir))
    precision_setting("faithful")
    faithful = RecordingFeedback()
    reference = generate_dem(tiles[0], tmp_path / "faithful", faithful)
    assert f"Model {tiny_int8_model_dir} (fp32) on CPUExecutionProvider" in faithful.lines

    precision_setting("fast")
    fast = RecordingFeedback()
    quantised = generate_dem(tiles[0], tmp_path / "fast", fast)
    assert f"Model {tiny_int8_model_dir} (fp32, int8 denoiser) on CPUExecutionProvider" in fast.lines
    assert len(fast.warnings) == 1 and "denoiser runs int8 on onnxruntime, the fastest path measured" in fast.warnings[0]
    assert quantised.shape == reference.shape and not np.array_equal(quantised, reference)  # another network ran

    report = installation_report().splitlines()
    assert "Precision setting: fast" in report
    assert any(f"{tiny_int8_model_dir}  (int8 denoiser: yes;" in line for line in report)
    assert not any("no int8 denoiser" in line for line in report)


def test_generate_with_fast_int8_falls_back_without_the_int8_denoiser(
    provider, tiny_model_dir, tiles, tmp_path, precision_setting
):
    # The module's model folder was converted without the int8 denoiser.
    precision_setting("faithful")
    reference = generate_dem(tiles[0], tmp_path / "faithful", RecordingFeedback())
    precision_setting("fast")
    feedback = RecordingFeedback()
    fallback = generate_dem(tiles[0], tmp_path / "fast", feedback)
    np.testing.assert_array_equal(fallback, reference)
    assert f"Model {tiny_model_dir} (fp32) on CPUExecutionProvider" in feedback.lines
    # the engine's estimate (windows, calls, time here) is logged before anything is written
    estimate = next(i for i, line in enumerate(feedback.lines) if line.startswith("Estimate: about "))
    assert "denoiser windows" in feedback.lines[estimate]
    assert estimate < next(i for i, line in enumerate(feedback.lines) if line.startswith("Wrote "))
    assert len(feedback.warnings) == 1
    warning = feedback.warnings[0]
    assert str(tiny_model_dir) in warning and "no int8 denoiser" in warning and not CLI_WORDS.search(warning)
    report = installation_report()
    assert "no int8 denoiser" in report and "precision fast runs fp32 on cpu" in report


# -- Analysis -------------------------------------------------------------------------------------


def read_table(path):
    from qgis.core import QgsVectorLayer

    layer = QgsVectorLayer(str(path), "table", "ogr")
    assert layer.isValid()
    return [feature.attributes() for feature in layer.getFeatures()], [f.name() for f in layer.fields()]


def test_chain_writes_every_iteration_and_its_metrics(provider, tiles, tmp_path):
    from plugin.analysis.metrics import compare

    feedback = RecordingFeedback()
    table = tmp_path / "chain.gpkg"
    result = run(
        "chain",
        {
            "INPUT": str(tiles[0]),
            **INPUT_BANDS,
            "INPUT_MODALITY": ENUM["s2_l2a"],
            "VIA_MODALITY": ENUM["s1_rtc"],
            "ITERATIONS": 2,
            "STEPS": STEPS,
            "OUTPUT_FOLDER": str(tmp_path / "chain"),
            "OUTPUT_TABLE": str(table),
        },
        feedback,
    )
    layers = sorted(p.name for p in (tmp_path / "chain").iterdir())
    assert len(layers) == 4 and all(name.startswith("chain_282D_485L_3_3_seed0_iter0") for name in layers)
    estimates = [line for line in feedback.lines if line.startswith("Estimate: ")]
    assert estimates and "for 4 generations" in estimates[0]  # the whole chain's time, told first
    tile_bounds = Grid(tiles[0]).bounds
    for name in layers:  # all on the tile's grid, padded (centred) to 256 px
        out = Grid(tmp_path / "chain" / name)
        assert (out.epsg, out.width, out.height) == (32722, 256, 256)
        assert out.bounds == pytest.approx(np.add(tile_bounds, [-160, -160, 160, 160]), abs=1e-6)
    rows, fields = read_table(result["OUTPUT_TABLE"])
    assert fields[-7:] == ["iteration", "modality", "psnr", "ssim", "mae", "histogram_distance", "file"]
    assert [row[-7:-5] for row in rows] == [[1, "s2_l2a"], [2, "s2_l2a"]]
    # The table compares each regenerated S2 L2A with the real tile's rendering (from Prepare).
    reference = tmp_path / "reference.tif"
    run("prepare", {"INPUT": str(tiles[0]), "MODALITY": ENUM["s2_l2a"], **INPUT_BANDS, "OUTPUT": str(reference)})
    real, real_valid = gdal.Open(str(reference)).ReadAsArray(), Grid(reference).mask
    for row in rows:
        generated = gdal.Open(row[-1]).ReadAsArray()
        expected = compare(real, generated, real_valid & Grid(row[-1]).mask)
        assert row[-5:-1] == pytest.approx([expected.psnr, expected.ssim, expected.mae, expected.histogram_distance])
    assert sum("PSNR" in line for line in feedback.lines) == 2


def test_cancelled_chain_leaves_no_file(provider, tiles, tmp_path):
    from qgis.core import QgsProcessingException

    # Two iterations are four generations: cancelling past 30 % stops the second, after the first wrote its file.
    feedback = RecordingFeedback(cancel_at=30)
    with pytest.raises(QgsProcessingException, match="[Cc]ancel"):
        run(
            "chain",
            {
                "INPUT": str(tiles[0]),
                **INPUT_BANDS,
                "INPUT_MODALITY": ENUM["s2_l2a"],
                "VIA_MODALITY": ENUM["dem"],
                "ITERATIONS": 2,
                "STEPS": STEPS,
                "OUTPUT_FOLDER": str(tmp_path / "chain"),
                "OUTPUT_TABLE": str(tmp_path / "chain.gpkg"),
            },
            feedback,
        )
    assert max(feedback.progress_values) >= 30
    assert list((tmp_path / "chain").iterdir()) == []
    assert not (tmp_path / "chain.gpkg").exists()  # no empty table either


def test_cancelled_generate_leaves_no_file(provider, tiles, tmp_path):
    from qgis.core import QgsProcessingException

    with pytest.raises(QgsProcessingException, match="[Cc]ancel"):
        run(
            "generate",
            {
                "S2_L2A": str(tiles[0]),
                **S2_L2A_BANDS,
                "GENERATE": [ENUM["dem"]],
                "STEPS": STEPS,
                "OUTPUT_FOLDER": str(tmp_path),
            },
            RecordingFeedback(cancel_at=50),
        )
    assert list(tmp_path.iterdir()) == []


def test_combinations_sheet_and_table(provider, thumbnails, tmp_path):
    import processing
    from qgis.core import QgsApplication, QgsLayerTree, QgsProcessingOutputHtml, QgsProject

    parameters = {key.upper(): str(path) for key, path in thumbnails.items()}
    parameters.update({f"{key.upper()}_SOURCE": 1 for key in thumbnails})
    sheet, table = tmp_path / "sheet.html", tmp_path / "combinations.gpkg"
    parameters.update(
        {
            "STEPS": STEPS,
            "OUTPUT_FOLDER": str(tmp_path / "runs"),
            "OUTPUT_SHEET": str(sheet),
            "OUTPUT_TABLE": str(table),
        }
    )
    project = QgsProject.instance()
    project.clear()
    selected = select_a_group_of_the_users(project)
    feedback = RecordingFeedback()
    result = processing.runAndLoadResults("copgen:combinations", parameters, feedback=feedback)  # as the dialog runs it
    # The whole job's time is told first, before any of its 15 generations starts.
    estimates = [line for line in feedback.lines if line.startswith("Estimate: ")]
    assert estimates and estimates[0].startswith("Estimate: about ") and "for 15 generations" in estimates[0]
    rows, _ = read_table(result["OUTPUT_TABLE"])
    # 15 combinations (none to three given), each generating the rest: 4 + 4*3 + 6*2 + 4*1 layers.
    assert len(rows) == 32 == len(list((tmp_path / "runs").iterdir()))
    for path in (tmp_path / "runs").iterdir():
        out = Grid(path)
        assert (out.epsg, out.width, out.height) == (32633, 256, 256)
        assert out.bounds == pytest.approx(THUMBNAIL_BOUNDS, abs=1e-6)
    by_combination = {}
    for row in rows:
        by_combination.setdefault(row[-7], []).append(row[-6])
    assert by_combination["UNCONDITIONAL"] == ["dem", "s1_rtc", "s2_l1c", "s2_l2a"]
    assert by_combination["GIVEN S1 RTC + S2 L2A"] == ["dem", "s2_l1c"]
    assert all(math.isfinite(row[-5]) and -1 <= row[-4] <= 1 for row in rows)
    # The sheet is an HTML output (the Results Viewer opens those) showing the PNG beside it.
    algorithm = QgsApplication.processingRegistry().algorithmById("copgen:combinations")
    assert isinstance(algorithm.outputDefinition("OUTPUT_SHEET"), QgsProcessingOutputHtml)
    assert result["OUTPUT_SHEET"] == str(sheet) and 'src="sheet.png"' in sheet.read_text()
    png = gdal.Open(str(tmp_path / "sheet.png"))
    assert png.GetDriver().ShortName == "PNG" and png.RasterCount == 3
    assert png.RasterYSize > 15 * 128  # one row per combination
    # The 32 generated layers: one collapsed group, all unchecked (the table is the other layer),
    # both at the top of the tree, not inside the group the user had selected.
    assert selected.children() == []
    top = project.layerTreeRoot().children()
    assert [node.layer().source().split("|")[0] for node in top if QgsLayerTree.isLayer(node)] == [str(table)]
    groups = [node for node in top if QgsLayerTree.isGroup(node) and node is not selected]
    assert len(groups) == 1 and not groups[0].isExpanded()
    assert len(groups[0].findLayers()) == 32
    assert not any(node.isVisible() for node in groups[0].findLayers())
    reset_insertion_point(project)
    project.clear()


@pytest.fixture(autouse=True)
def _insertion_point_back_at_the_top():
    """Whatever a test does (and however it fails), the next one loads layers at the top."""
    yield
    from qgis.core import QgsProject

    reset_insertion_point(QgsProject.instance())


def reset_insertion_point(project):
    """New layers go to the top of the tree again: an insertion point left in a group that
    ``project.clear()`` deletes would make QGIS write into freed memory at the next load."""
    from qgis.core import QgsLayerTreeRegistryBridge

    project.layerTreeRegistryBridge().setLayerInsertionPoint(
        QgsLayerTreeRegistryBridge.InsertionPoint(project.layerTreeRoot(), 0))


def select_a_group_of_the_users(project):
    """A group where QGIS inserts new layers, as the desktop does for the group selected in the
    Layers panel."""
    from qgis.core import QgsLayerTreeRegistryBridge

    group = project.layerTreeRoot().addGroup("my group")
    project.layerTreeRegistryBridge().setLayerInsertionPoint(QgsLayerTreeRegistryBridge.InsertionPoint(group, 0))
    return group


# -- Bad input, refused before any work -----------------------------------------------------------


@pytest.fixture(scope="module")
def vector_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("vector") / "far.geojson"
    path.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [
                    {
                        "type": "Feature",
                        "properties": {},
                        "geometry": {
                            "type": "Polygon",
                            "coordinates": [[[10, 50], [10.1, 50], [10.1, 50.1], [10, 50]]],
                        },
                    }
                ],
            }
        )
    )
    return path


@pytest.mark.parametrize(
    "case, named",
    [
        ("nothing to generate", "GENERATE"),
        ("condition generated", "S2_L2A"),
        ("vector as condition", "S1_RTC"),
        ("extent outside", "EXTENT"),
        ("aoi outside", "AOI"),
        ("unconditional without area", "EXTENT"),
        ("reflectance without S2", "REFLECTANCE"),
    ],
)
def test_generate_refuses_bad_input_naming_the_parameter(provider, tiles, vector_file, tmp_path, case, named):
    parameters = {
        "S2_L2A": str(tiles[0]),
        **S2_L2A_BANDS,
        "GENERATE": [ENUM["dem"]],
        "STEPS": STEPS,
        "OUTPUT_FOLDER": str(tmp_path / "out"),
    }
    if case == "nothing to generate":
        parameters["GENERATE"] = []
    elif case == "condition generated":
        parameters["GENERATE"] = [ENUM["dem"], ENUM["s2_l2a"]]
    elif case == "vector as condition":
        parameters["S1_RTC"] = str(vector_file)
    elif case == "extent outside":
        parameters["EXTENT"] = "10,10.1,50,50.1 [EPSG:4326]"
    elif case == "aoi outside":
        parameters["AOI"] = str(vector_file)
    elif case == "unconditional without area":
        del parameters["S2_L2A"]
    elif case == "reflectance without S2":
        parameters["REFLECTANCE"] = True
    ok, message = check(provider, "generate", parameters)
    assert not ok
    assert_dialog_words("generate", message, named)


def test_generate_accepts_a_geographic_condition_as_the_area(provider, tmp_path):
    # The engine puts a lon/lat raster's footprint on its UTM zone's grid: no EXTENT needed.
    path = tmp_path / "dem_lonlat.tif"
    dataset = gdal.GetDriverByName("GTiff").Create(str(path), 30, 30, 1, gdal.GDT_Float32)
    dataset.SetGeoTransform((10.0, 0.0001, 0, 50.0, 0, -0.0001))
    dataset.SetProjection("EPSG:4326")
    dataset.GetRasterBand(1).WriteArray(np.random.default_rng(0).uniform(100, 200, (30, 30)))
    dataset = None
    parameters = {"DEM": str(path), "GENERATE": [ENUM["s1_rtc"]], "OUTPUT_FOLDER": str(tmp_path / "out")}
    ok, message = check(provider, "generate", parameters)
    assert ok, message


def test_generate_refused_without_a_model_says_how_to_install(provider, tiles, tmp_path, monkeypatch):
    from qgis.core import QgsProcessingException

    monkeypatch.setenv("COPGEN_MODEL_DIR", str(tmp_path / "empty"))
    parameters = {"S2_L2A": str(tiles[0]), "GENERATE": [ENUM["dem"]], "OUTPUT_FOLDER": str(tmp_path / "out")}
    ok, message = check(provider, "generate", parameters)
    assert not ok
    assert "Install model" in message and not CLI_WORDS.search(message), message
    with pytest.raises(QgsProcessingException, match="Install model"):
        run("generate", parameters)
    assert not (tmp_path / "out").exists()


def test_chain_refuses_the_same_modality_twice(provider, tiles):
    ok, message = check(provider, "chain", {"INPUT": str(tiles[0]), "INPUT_MODALITY": 3, "VIA_MODALITY": 3})
    assert not ok
    assert_dialog_words("chain", message, "VIA_MODALITY")


def test_prepare_refuses_an_extent_outside_the_input(provider, tiles):
    ok, message = check(
        provider,
        "prepare",
        {"INPUT": str(tiles[0]), "MODALITY": 3, "EXTENT": "10,10.1,50,50.1 [EPSG:4326]", "OUTPUT": "/tmp/x.tif"},
    )
    assert not ok
    assert_dialog_words("prepare", message, "EXTENT")


def test_missing_packages_leave_only_check_installation(provider, monkeypatch):
    from plugin import dependencies
    from plugin.qgisui.algorithms import algorithm_classes

    assert {cls.NAME for cls in algorithm_classes()} == {
        "generate",
        "generatephysical",
        "prepare",
        "preparephysical",
        "chainphysical",
        "combinationsphysical",
        "installmodel",
        "chain",
        "combinations",
        "checkinstallation",
        "majortom_cells",
    }
    statuses = dependencies.check()
    missing_rasterio = [
        dependencies.PackageStatus(s.requirement, "" if s.requirement.module == "rasterio" else s.version)
        for s in statuses
    ]
    monkeypatch.setattr(dependencies, "check", lambda: missing_rasterio)
    assert [cls.NAME for cls in algorithm_classes()] == ["checkinstallation"]


def test_check_installation_prints_the_command_that_installs_what_is_missing(provider, monkeypatch):
    # The installed plugin's own module: that is what the registered algorithm reads.
    dependencies = importlib.import_module(f"{PLUGIN_NAME}.plugin.dependencies")
    statuses = dependencies.check()
    without_onnx = [
        dependencies.PackageStatus(s.requirement, "" if s.requirement.module == "onnx" else s.version) for s in statuses
    ]
    monkeypatch.setattr(dependencies, "check", lambda: without_onnx)
    lines = installation_report().splitlines()
    assert "  - onnx MISSING: builds the ONNX graphs when converting checkpoints" in lines
    command = lines[lines.index(next(line for line in lines if line.startswith("To install"))) + 1].split()
    assert command[1:5] == ["-m", "pip", "install", "--upgrade"] and "'onnx>=1.15'" in command
    assert command[6].strip("'").endswith(f"copgen_deps/{dependencies.abi_tag()}")
