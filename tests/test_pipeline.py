"""generate_area and the `generate` command on the tiny converted model (random weights:
these tests check geometry, files and semantics, not image quality)."""

import json
import os
import signal
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
import rasterio
import rasterio.warp
from affine import Affine
from osgeo import ogr, osr
from pyproj import Transformer
from shapely.geometry import Polygon

from plugin import __version__
from plugin.cli import main
from plugin.engine import load
from plugin.engine.errors import Cancelled, InputError
from plugin.geo.condition_spec import ConditionSpec
from plugin.geo.grid import TargetGrid
from plugin.engine.request import GenerationRequest
from plugin.geo.pipeline import generate_area as run_request
from plugin.commands.progress import ProgressBar

STEPS = 3
AREA_PX = 768  # 3 x 3 model tiles


def generate_area(model, conditions, generate, out_dir, progress=None, cancel=None, notify=None, **fields):
    """One run of a GenerationRequest made of these fields."""
    request = GenerationRequest(generate=generate, conditions=conditions, **fields)
    return run_request(model, request, out_dir, progress=progress, cancel=cancel, notify=notify)


@pytest.fixture(scope="module")
def model(tiny_model_dir):
    return load(tiny_model_dir, device="cpu")


@pytest.fixture(scope="module")
def tile(shared_dir):
    return shared_dir / "data" / "majortom_s2l2a" / "282D_485L_3_3.tif"


@pytest.fixture(scope="module")
def area(tile):
    """A 768 x 768 px extent on the tile's own pixel lattice, centred on the 224 px tile."""
    with rasterio.open(tile) as ds:
        crs, bounds = ds.crs, ds.bounds
    margin = (AREA_PX - 224) // 2 * 10
    left, top = bounds.left - margin, bounds.top + margin
    return (left, top - AREA_PX * 10, left + AREA_PX * 10, top, crs)


@pytest.fixture(scope="module")
def area_10m(tile):
    """A 768 x 768 px extent on the 10 m lattice of the tile's UTM zone, near the tile (the
    lattice of runs without a 10 m condition)."""
    with rasterio.open(tile) as ds:
        crs, bounds = ds.crs, ds.bounds
    left = round((bounds.left + bounds.right) / 2 / 10) * 10 - AREA_PX * 5
    top = round((bounds.bottom + bounds.top) / 2 / 10) * 10 + AREA_PX * 5
    return (left, top - AREA_PX * 10, left + AREA_PX * 10, top, crs)


@pytest.fixture(scope="module")
def area_runs(model, tile, area, tmp_path_factory):
    """A conditioned run on the MultiDiffusion canvas with the default tiling (seams are tested
    with the Gaussian-field oracle in test_seams.py: random weights show none)."""
    runs = {}
    for name in ("canvas",):
        out = tmp_path_factory.mktemp(name)
        calls = []
        paths = generate_area(
            model, [ConditionSpec("s2_l2a", tile, layer_name="scene")], ["s1_rtc"], out,
            extent=area, seed=7, steps=STEPS,
            progress=lambda done, total, stage: calls.append((done, total, stage)),
        )
        runs[name] = {"out": out, "paths": paths, "progress": calls}
    return runs


def read(path):
    with rasterio.open(path) as ds:
        return {
            "data": ds.read(),
            "mask": ds.dataset_mask(),
            "crs": ds.crs,
            "transform": ds.transform,
            "shape": (ds.count, ds.height, ds.width),
            "dtypes": ds.dtypes,
            "tags": ds.tags(),
            "descriptions": ds.descriptions,
        }


def test_area_output_has_the_exact_grid_and_tags(area_runs, area, model, tile):
    run = area_runs["canvas"]
    assert [p.name for p in run["paths"]] == ["copgen_seed7_s1_rtc.tif"]
    assert sorted(p.name for p in run["out"].iterdir()) == ["copgen_seed7_s1_rtc.tif"]
    out = read(run["paths"][0])
    left, bottom, right, top, crs = area
    assert out["crs"] == crs
    assert out["transform"] == Affine(10.0, 0.0, left, 0.0, -10.0, top)
    assert out["shape"] == (3, AREA_PX, AREA_PX) and out["dtypes"] == ("uint8",) * 3
    assert np.all(out["mask"] == 255)  # the extent is the whole grid: no nodata
    tags = out["tags"]
    assert tags["model"] == model.info["name"]
    assert tags["denoiser_sha256"] == model.info["sources"]["denoiser"]["sha256"]
    assert tags["vae_sha256"] == model.info["sources"]["vae"]["sha256"]
    assert (tags["seed"], tags["steps"], tags["solver"]) == ("7", str(STEPS), "dpm-solver-fast")
    assert tags["modality"] == "s1_rtc"
    assert json.loads(tags["conditions"]) == [{
        "modality": "s2_l2a", "layer": "scene", "file": str(tile), "bands": [4, 3, 2], "source": "physical",
        "s1_in_db": False, "s2_offset": 0,
        # the default offset is "auto": this tile's metadata and name say nothing, so 0, with why
        "s2_offset_note": "no processing baseline or offset found in the metadata or name: 0 assumed",
    }]
    # the tile covers 224 x 224 px of the 768 x 768 px area
    assert json.loads(tags["condition_coverage"]) == {"s2_l2a": pytest.approx(224 * 224 / AREA_PX ** 2, abs=1e-4)}
    assert tags["software"] == f"COP-GEN-Beta for QGIS {__version__}"
    run_date = datetime.strptime(tags["run_date_utc"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    assert abs(datetime.now(timezone.utc) - run_date) < timedelta(hours=1)


def test_progress_counts_every_window_of_every_stage(area_runs):
    calls = area_runs["canvas"]["progress"]
    # 96 latents a side: the default tiling has 4 x 4 windows at overlap 4 and at overlap 8; the
    # VAE 2 x 2 tiles of 52 latents
    total = 4 + 16 * STEPS + 4  # encode the condition, denoise, decode
    assert {t for _, t, _ in calls} == {total}
    first, calls = calls[0], calls[1:]
    assert first[0] == 0 and first[2].startswith("estimate: about ") and f"{16 * STEPS} denoiser windows" in first[2]
    assert calls[-1][0] == total
    stages = [stage.split(" · ")[0] for _, _, stage in calls]
    # Each stage is named as it starts (done unchanged), then its work counts up.
    assert all(b[0] > a[0] or b_stage != a_stage for a, b, a_stage, b_stage in zip(calls, calls[1:], stages, stages[1:]))
    starts = [(done, stage) for (done, _, _), stage, before in zip(calls, stages, [None] + stages) if stage != before]
    assert starts == [(0, "encoding s2_l2a"), (4, "denoising"), (4 + 16 * STEPS, "decoding s1_rtc")]
    assert stages == sorted(stages, key=["encoding s2_l2a", "denoising", "decoding s1_rtc"].index)
    assert stages.count("denoising") > STEPS  # within a step, every window batch reports


@pytest.mark.parametrize("stage", ["denoising", "decoding"])
def test_cancel_mid_run_leaves_no_files(model, area_10m, tmp_path, stage):
    left, bottom, _, _, crs = area_10m
    seen = []

    def progress(done, total, name):
        seen.append(name.split(" · ")[0])

    def cancel():
        # the second decoded modality: the first output is complete by then
        return seen.count("denoising") >= 2 if stage == "denoising" else "decoding s2_l2a" in seen

    extent = (left, bottom, left + 2560, bottom + 5120, crs)
    with pytest.raises(Cancelled):
        generate_area(model, [], ["dem", "s2_l2a"], tmp_path / "out", extent=extent, steps=3,
                      progress=progress, cancel=cancel)
    assert stage in seen[-1]
    assert list((tmp_path / "out").iterdir()) == []


def test_area_limit_names_time_and_memory(model, area_10m, tmp_path):
    with pytest.raises(InputError, match=r"max_area_km2.*59\.0 km².*limit of 10 km².*GiB") as error:
        generate_area(model, [], ["dem"], tmp_path / "out", extent=area_10m, steps=50, max_area_km2=10)
    assert "800 denoiser windows" in str(error.value)  # 16 windows x 50 steps (default tiling)
    assert not (tmp_path / "out").exists()


def test_each_family_is_run_and_priced_by_its_own_area_pipeline(model, copgen_model_dir, area_10m, tile):
    """The geo side's family table: every family has an area pipeline; a request is priced by its
    family's (COP-GEN-Beta: latent windows of the 10 m canvas; COP-GEN: windows of 480 m units)."""
    from plugin.engine.families import COPGEN, FAMILIES
    from plugin.engine.families.copgen.canvas import DEFAULT_TILING
    from plugin.engine.tiling import parse_tiling
    from plugin.geo.lattice import ModelLattice
    from plugin.geo.physical_pipeline import PhysicalConditionSpec
    from plugin.geo.pipeline import area_pipeline, estimate_area

    assert all(callable(area_pipeline(name).run_area) and callable(area_pipeline(name).price_area) for name in FAMILIES)
    beta = estimate_area(model, GenerationRequest(generate=["dem"], extent=area_10m, steps=50))
    assert "800 denoiser windows" in beta.describe()  # 16 windows x 50 steps, as the run says it
    copgen = load(copgen_model_dir, device="cpu")
    request = GenerationRequest(generate="s1rtc", conditions=[PhysicalConditionSpec("s2l2a", tile)], steps=3,
                                family=COPGEN)
    units = ModelLattice.from_raster(tile).units  # the tile: 5 x 5 units
    windows = sum(len(parse_tiling(DEFAULT_TILING).layout(*units, call, 3, size=4)) for call in range(3))
    cost = estimate_area(copgen, request)
    assert (cost.windows, cost.calls) == (windows, 3) and cost.peak_bytes > 0
    with pytest.raises(InputError) as error:  # a request of the other family: refused, naming the model
        estimate_area(model, request)
    assert error.value.field == "model"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"generate": ["sar"]}, "unknown modality 'sar'"),
        ({"generate": []}, "nothing to generate"),
        ({"generate": ["s2_l2a"], "conditions": "tile"}, "s2_l2a: both generated and given"),
        ({"tiling": "overlap:32"}, "tiling: 'overlap:32'"),
        ({"tiling": "tiles:4"}, "tiling: unknown strategy 'tiles'"),
        ({"samples": 0}, "samples: must be"),
        ({"steps": 0}, "steps: must be"),
        ({"solver": "euler"}, "unknown solver 'euler'"),
        ({"reflectance": True}, "reflectance"),
        ({"extent": None}, "needs an extent"),
        ({"generate": ""}, "nothing to generate"),
        ({"extent": (0, 0, 2560, 2560)}, "give its CRS"),
        ({"aoi": (Polygon([(0, 0), (1, 0), (1, 1)]), "EPSG:4326")}, "aoi: give only one of extent, aoi, grid"),
        ({"run_name": "../escape"}, "run_name"),
        ({"extent": None, "grid": "300 px"}, "grid: width 300 px must be a multiple of 8"),
        ({"max_area_km2": -1}, "max_area_km2: must be a positive"),
    ],
)
def test_bad_arguments_fail_before_any_work(model, area_10m, tile, tmp_path, kwargs, message):
    area = area_10m
    args = {"conditions": [], "generate": ["dem"], "extent": area, "steps": 2}
    args.update(kwargs)
    if args["conditions"] == "tile":
        args["conditions"] = [ConditionSpec("s2_l2a", tile)]
    if args.get("grid") == "300 px":
        args["grid"] = TargetGrid(area[4], Affine(10.0, 0.0, area[0], 0.0, -10.0, area[3]), 300, 256)
    with pytest.raises(InputError, match=message):
        generate_area(model, args.pop("conditions"), args.pop("generate"), tmp_path / "out", **args)
    assert not (tmp_path / "out").exists()


def test_samples_from_the_condition_footprint_are_seeded(model, tile, tmp_path):
    """No area given: the grid is the tile's footprint (224 px padded to 256, outside masked)."""
    condition = [ConditionSpec("s2_l2a", tile)]
    first = generate_area(model, condition, ["s2_l1c"], tmp_path / "a", samples=2, steps=2, reflectance=True)
    again = generate_area(model, condition, ["s2_l1c"], tmp_path / "b", samples=2, steps=2, reflectance=True)
    assert [p.name for p in first] == ["copgen_seed0_s2_l1c_sample1.tif", "copgen_seed0_s2_l1c_sample2.tif"]
    outputs = [read(p) for p in first]
    with rasterio.open(tile) as ds:
        footprint = ds.bounds
    for out in outputs:
        assert out["shape"] == (3, 256, 256) and out["dtypes"] == ("uint16",) * 3
        assert out["descriptions"] == ("B04", "B03", "B02")
        # the tile's 224 px footprint, centred, is the AOI; the 16 px padding is nodata
        assert out["transform"] == Affine(10.0, 0.0, footprint.left - 160, 0.0, -10.0, footprint.top + 160)
        assert np.all(out["mask"][16:240, 16:240] == 255)
        assert out["mask"].sum() == 224 * 224 * 255
    assert outputs[0]["tags"]["sample"] == "1" and outputs[1]["tags"]["sample"] == "2"
    assert not np.array_equal(outputs[0]["data"], outputs[1]["data"])
    for a, b in zip(first, again):
        np.testing.assert_array_equal(read(a)["data"], read(b)["data"])


def write_polygon_file(path, polygon_lonlat):
    driver = ogr.GetDriverByName("GeoJSON")
    source = driver.CreateDataSource(str(path))
    reference = osr.SpatialReference()
    reference.ImportFromEPSG(4326)
    layer = source.CreateLayer("aoi", reference, ogr.wkbPolygon)
    feature = ogr.Feature(layer.GetLayerDefn())
    feature.SetGeometry(ogr.CreateGeometryFromWkt(polygon_lonlat.wkt))
    layer.CreateFeature(feature)
    source = None  # closes and writes the file


def test_cli_polygon_aoi_masks_the_outside(tiny_model_dir, area_10m, tmp_path, capsys):
    left, bottom, _, _, crs = area_10m
    # a triangle of about 2 x 2 km in lon/lat; the grid is its UTM zone's (the tile's)
    corners_utm = [(left + 300, bottom + 300), (left + 2300, bottom + 300), (left + 1300, bottom + 2300)]
    to_lonlat = Transformer.from_crs(crs.to_wkt(), "EPSG:4326", always_xy=True)
    triangle = Polygon([to_lonlat.transform(x, y) for x, y in corners_utm])
    write_polygon_file(tmp_path / "aoi.geojson", triangle)
    code = main([
        "generate", "--model", str(tiny_model_dir), "--generate", "dem", "--out", str(tmp_path / "out"),
        "--aoi", str(tmp_path / "aoi.geojson"), "--steps", "2", "--seed", "3", "--device", "cpu",
    ])
    captured = capsys.readouterr()
    assert code == 0
    assert "100%" in captured.err
    path = tmp_path / "out" / "copgen_seed3_dem.tif"
    assert captured.out.split() == [str(path)]
    out = read(path)
    assert out["crs"] == crs
    assert out["shape"] == (3, 256, 256)
    valid = out["mask"] == 255
    inside_area_px = Polygon(corners_utm).area / 100
    assert abs(valid.sum() - inside_area_px) < 0.02 * inside_area_px
    # the triangle's centroid is data, the grid corners (outside it) are nodata
    col, row = ~out["transform"] * Polygon(corners_utm).centroid.coords[0]
    assert valid[int(row), int(col)]
    assert not valid[0, 0] and not valid[0, -1]
    assert np.all(out["data"][:, ~valid] == 0)


def test_cli_reports_input_errors_without_traceback(tiny_model_dir, tmp_path, capsys):
    code = main([
        "generate", "--model", str(tiny_model_dir), "--generate", "dem,radar", "--out", str(tmp_path / "out"),
        "--extent", "10,45,10.03,45.03,4326", "--device", "cpu",
    ])
    assert code == 1
    assert "unknown modality 'radar'" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


# --- which condition defines the area --------------------------------------------------------


@pytest.fixture(scope="module")
def dem_lonlat(tile, tmp_path_factory):
    """A DEM in EPSG:4326 reaching about 1 km beyond the tile on every side."""
    with rasterio.open(tile) as ds:
        west, south, east, north = rasterio.warp.transform_bounds(ds.crs, "EPSG:4326", *ds.bounds)
    step = 0.0003
    width, height = int((east - west + 0.02) / step), int((north - south + 0.02) / step)
    rows, cols = np.mgrid[0:height, 0:width]
    dem = (300 + 20 * np.sin(rows / 9.0) + 0.5 * cols).astype(np.float32)
    path = tmp_path_factory.mktemp("dem") / "dem4326.tif"
    with rasterio.open(
        path, "w", driver="GTiff", width=width, height=height, count=1, dtype="float32", crs="EPSG:4326",
        transform=Affine(step, 0, west - 0.01, 0, -step, north + 0.01),
    ) as ds:
        ds.write(dem, 1)
    return path


def test_the_first_projected_condition_defines_the_area(model, tile, dem_lonlat, tmp_path):
    """The DEM comes first in modality order and in the user's, but is in degrees: the S2
    tile (projected) defines the area and its lattice."""
    conditions = [ConditionSpec("dem", dem_lonlat), ConditionSpec("s2_l2a", tile)]
    (path,) = generate_area(model, conditions, ["s1_rtc"], tmp_path / "a", steps=1)
    out = read(path)
    assert out["transform"] == TargetGrid.from_raster(tile).transform and out["shape"] == (3, 256, 256)
    coverage = json.loads(out["tags"]["condition_coverage"])
    assert coverage == {"dem": 1.0, "s2_l2a": 1.0}  # the AOI is the tile's footprint
    # a bare extent takes the tile's CRS (metres), not the DEM's (degrees)
    with rasterio.open(tile) as ds:
        left, bottom, right, top = ds.bounds
    extent = f"{left + 500},{bottom + 500},{right - 500},{top - 500}"
    (path,) = generate_area(model, conditions, ["s1_rtc"], tmp_path / "b", extent=extent, steps=1)
    assert read(path)["crs"] == TargetGrid.from_raster(tile).crs


def test_conditions_in_degrees_only_define_the_area_in_utm(model, tile, dem_lonlat, tmp_path):
    (path,) = generate_area(model, [ConditionSpec("dem", dem_lonlat)], ["s2_l2a"], tmp_path / "out", steps=1)
    out = read(path)
    assert out["crs"] == TargetGrid.from_raster(tile).crs  # the UTM zone of the DEM's centre
    # about 2 km wider and taller than the 2.24 km tile: the DEM's footprint
    assert out["shape"][1] >= 400 and out["shape"][2] >= 400
    # all but the footprint's edge pixels, whose 30 m hillshade lacks neighbours
    assert json.loads(out["tags"]["condition_coverage"]) == {"dem": pytest.approx(1.0, abs=0.01)}


# --- the command line ------------------------------------------------------------------------


def generate_cli(tiny_model_dir, tmp_path, *args):
    return main(["generate", "--model", str(tiny_model_dir), "--out", str(tmp_path / "out"),
                 "--device", "cpu", "--steps", "1", *args])


@pytest.mark.parametrize("args, message", [
    (["--generate", ""], "--generate: nothing to generate"),
    (["--generate", "dem", "--extent=-48.11,-25.32,-48.0,-25.2,4326", "--max-area-km2", "1"],
     "--max-area-km2: the area is"),
    (["--generate", "dem", "--extent=-48.11,-25.32,-48.1,-25.31,4326", "--samples", "0"], "--samples: must be"),
    (["--generate", "dem", "--extent=-48.11,-25.32,-48.1,-25.31,4326", "--run-name", "a/b"], "--run-name: 'a/b'"),
    (["--generate", "dem"], "--extent: unconditional generation needs an extent or an AOI polygon"),
])
def test_cli_messages_name_the_flags(tiny_model_dir, tmp_path, capsys, args, message):
    assert generate_cli(tiny_model_dir, tmp_path, *args) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err
    assert not (tmp_path / "out").exists()


def test_cli_model_root_suggests_the_model_folder(tiny_model_dir, tmp_path, capsys):
    root = tiny_model_dir.parent
    code = main(["generate", "--model", str(root), "--generate", "dem", "--out", str(tmp_path / "out"),
                 "--extent=-48.11,-25.32,-48.1,-25.31,4326"])
    assert code == 1
    err = capsys.readouterr().err
    assert f"--model: {root} is a folder of models" in err and f"use {tiny_model_dir}" in err


def test_cli_help_documents_the_extent_order(capsys):
    with pytest.raises(SystemExit):
        main(["generate", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "xmin,ymin,xmax,ymax (QGIS writes extents as xmin,xmax,ymin,ymax)" in text
    assert "--extent=..." not in text  # a value starting with a minus sign is taken as written (cli.py)


def test_cli_sigterm_removes_the_output_folder_it_created(tiny_model_dir, tmp_path, monkeypatch, capsys):
    real_progress = ProgressBar.__call__

    def progress_then_terminate(self, done, total, stage):
        real_progress(self, done, total, stage)
        if stage.startswith("denoising"):
            os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(ProgressBar, "__call__", progress_then_terminate)
    handler = signal.getsignal(signal.SIGTERM)
    extent = "--extent=-48.11,-25.32,-48.1,-25.31,4326"
    code = generate_cli(tiny_model_dir, tmp_path / "new", "--generate", "dem", extent)
    assert code == 130 and "cancelled" in capsys.readouterr().err
    assert not (tmp_path / "new").exists()
    assert signal.getsignal(signal.SIGTERM) == handler


def test_progress_bar_tells_the_estimate_as_a_sentence_then_draws_stages():
    import io

    stream = io.StringIO()
    bar = ProgressBar(stream)
    bar(0, 6, "estimate: about 1 s (3 denoiser windows)")
    bar(1, 6, "encoding s2_l2a")
    bar(6, 6, "decoding dem")
    lines = stream.getvalue().splitlines()
    assert lines[0] == "estimate: about 1 s (3 denoiser windows)"  # no empty bar glued to it
    assert lines[1].startswith("encoding s2_l2a [#####") and lines[1].endswith(" 16% 1/6")
    assert lines[2].endswith("100% 6/6")


def test_a_partly_covering_condition_is_told_before_sampling(model, tile, area, tmp_path):
    """The CLI's warning comes from here: the coverage measured on the condition's pixels, told
    through ``notify`` before the first denoiser call (the tile covers 224 x 224 of 768 x 768 px)."""
    told = []

    def progress(done, total, stage):
        told.append(("progress", stage))

    generate_area(model, [ConditionSpec("s2_l2a", tile, layer_name="scene")], ["s1_rtc"], tmp_path / "out",
                  extent=area, seed=7, steps=1, progress=progress,
                  notify=lambda message: told.append(("notify", message)))
    notes = [(k, message) for k, (kind, message) in enumerate(told) if kind == "notify"]
    assert len(notes) == 2
    # the tile has no band names: how its bands were read is told first
    assert notes[0][1] == (f"layer 'scene' ({tile}) has no band names; read in Major TOM's S2 L2A order of "
                           "12 bands (B04, B03, B02 = bands 4, 3, 2)")
    index, message = notes[1]
    assert message.startswith("s2_l2a condition layer 'scene'") and "covers 9 % of the area" in message
    assert all(not stage.startswith("denoising") for kind, stage in told[:index] if kind == "progress")
