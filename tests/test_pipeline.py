"""generate_area and the `generate` command on the tiny converted model (random weights:
these tests check geometry, files and semantics, not image quality)."""

import json

import numpy as np
import pytest
import rasterio
from affine import Affine
from osgeo import ogr, osr
from pyproj import Transformer
from shapely.geometry import Polygon

from plugin import __version__
from plugin.cli import main
from plugin.engine import load
from plugin.engine.errors import Cancelled, InputError
from plugin.geo.conditions import ConditionSpec
from plugin.geo.grid import TargetGrid
from plugin.geo.pipeline import generate_area
from plugin.geo.tiling import seam_score

STEPS = 3
AREA_PX = 768  # 3 x 3 model tiles


@pytest.fixture(scope="module")
def model(tiny_model_dir):
    return load(tiny_model_dir, device="cpu")


@pytest.fixture(scope="module")
def tile(shared_dir):
    return shared_dir / "data" / "majortom_s2l2a" / "282D_485L_3_3.tif"


@pytest.fixture(scope="module")
def area(tile):
    """A 768 x 768 px extent on the 10 m lattice of the tile's UTM zone, centred on the tile."""
    with rasterio.open(tile) as ds:
        crs, bounds = ds.crs, ds.bounds
    left = round((bounds.left + bounds.right) / 2 / 10) * 10 - AREA_PX * 5
    top = round((bounds.bottom + bounds.top) / 2 / 10) * 10 + AREA_PX * 5
    return (left, top - AREA_PX * 10, left + AREA_PX * 10, top, crs)


@pytest.fixture(scope="module")
def area_runs(model, tile, area, tmp_path_factory):
    """The same conditioned run as a MultiDiffusion canvas and as independent tiles."""
    runs = {}
    for name, overlap in (("canvas", 16), ("independent", 0)):
        out = tmp_path_factory.mktemp(name)
        calls = []
        paths = generate_area(
            model, [ConditionSpec("s2_l2a", tile, layer_name="scene")], ["s1_rtc"], out,
            extent=area, seed=7, steps=STEPS, overlap=overlap,
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
    assert json.loads(tags["conditions"]) == [{"modality": "s2_l2a", "layer": "scene", "file": str(tile)}]
    assert __version__ in tags["software"]


def test_canvas_is_seamless_where_independent_tiles_show_seams(area_runs):
    canvas = seam_score(read(area_runs["canvas"]["paths"][0])["data"])
    independent = seam_score(read(area_runs["independent"]["paths"][0])["data"])
    print(f"seam score: canvas {canvas:.3f}, independent tiles {independent:.3f}")
    assert independent > 1.1
    assert canvas < 1.0 and canvas < 0.85 * independent


def test_progress_counts_every_window_of_every_stage(area_runs):
    calls = area_runs["canvas"]["progress"]
    windows = 5 * 5  # 96 latents a side, stride 16
    total = windows * (1 + STEPS + 1)  # encode the condition, denoise, decode
    assert {t for _, t, _ in calls} == {total}
    assert calls[-1][0] == total
    assert all(b[0] > a[0] for a, b in zip(calls, calls[1:]))
    stages = [stage for _, _, stage in calls]
    assert stages == sorted(stages, key=["encoding s2_l2a", "denoising", "decoding s1_rtc"].index)
    assert stages.count("denoising") > STEPS  # within a step, every window batch reports


@pytest.mark.parametrize("stage", ["denoising", "decoding"])
def test_cancel_mid_run_leaves_no_files(model, area, tmp_path, stage):
    left, bottom, _, _, crs = area
    seen = []

    def progress(done, total, name):
        seen.append(name)

    def cancel():
        # the second decoded modality: the first output is complete by then
        return seen.count("denoising") >= 2 if stage == "denoising" else "decoding s2_l2a" in seen

    extent = (left, bottom, left + 2560, bottom + 5120, crs)
    with pytest.raises(Cancelled):
        generate_area(model, [], ["dem", "s2_l2a"], tmp_path / "out", extent=extent, steps=3,
                      progress=progress, cancel=cancel)
    assert stage in seen[-1]
    assert list((tmp_path / "out").iterdir()) == []


def test_area_limit_names_time_and_memory(model, area, tmp_path):
    with pytest.raises(InputError, match=r"max_area_km2.*59\.0 km2.*limit of 10 km2.*GiB") as error:
        generate_area(model, [], ["dem"], tmp_path / "out", extent=area, steps=50, max_area_km2=10)
    assert "1250 denoiser" in str(error.value)  # 25 windows x 50 steps
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"generate": ["sar"]}, "unknown modality 'sar'"),
        ({"generate": []}, "nothing to generate"),
        ({"generate": ["s2_l2a"], "conditions": "tile"}, "s2_l2a: both generated and given"),
        ({"overlap": 32}, "overlap must be 0..31"),
        ({"samples": 0}, "samples must be"),
        ({"steps": 0}, "steps must be"),
        ({"solver": "euler"}, "unknown solver 'euler'"),
        ({"reflectance": True}, "reflectance"),
        ({"extent": None}, "needs an extent or an AOI"),
        ({"extent": (0, 0, 2560, 2560)}, "give its CRS"),
        ({"aoi": (Polygon([(0, 0), (1, 0), (1, 1)]), "EPSG:4326")}, "only one of grid, extent and aoi"),
        ({"run_name": "../escape"}, "run_name"),
        ({"extent": None, "grid": "300 px"}, "grid width 300 px must be a multiple of 8"),
        ({"max_area_km2": -1}, "max_area_km2 must be a positive"),
    ],
)
def test_bad_arguments_fail_before_any_work(model, area, tile, tmp_path, kwargs, message):
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


def test_cli_polygon_aoi_masks_the_outside(tiny_model_dir, area, tmp_path, capsys):
    left, bottom, _, _, crs = area
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
