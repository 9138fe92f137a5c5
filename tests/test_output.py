import json
import os
import signal

import numpy as np
import pytest
import rasterio
from _geo_helpers import S2_TILE, UTM33, read_bands
from osgeo import gdal
from shapely.geometry import Polygon

from plugin.cli import main
from plugin.engine.errors import InputError
from plugin.geo import render
from plugin.geo.grid import TargetGrid
from plugin.geo.output import OutputWriter


def assert_valid_cog(path):
    info = gdal.Info(str(path), format="json")
    assert info["metadata"]["IMAGE_STRUCTURE"]["LAYOUT"] == "COG"
    assert info["metadata"]["IMAGE_STRUCTURE"]["COMPRESSION"] == "DEFLATE"
    try:
        from osgeo_utils.samples.validate_cloud_optimized_geotiff import validate
    except ImportError:
        return
    warnings, errors, _ = validate(str(path), full_check=True)
    assert errors == []


def listing(directory):
    return sorted(p.name for p in directory.iterdir())


def test_prepare_writes_the_rendering_as_cog_on_the_tile_grid(tmp_path, capsys):
    out = tmp_path / "out" / "s2.tif"
    assert main(["prepare", "--modality", "s2_l2a", "--input", str(S2_TILE), "--out", str(out)]) == 0
    assert "256 x 256" in capsys.readouterr().out
    assert listing(out.parent) == ["s2.tif"]
    assert_valid_cog(out)
    grid = TargetGrid.from_raster(S2_TILE)
    with rasterio.open(out) as ds:
        assert ds.crs == grid.crs and ds.transform == grid.transform
        assert (ds.width, ds.height, ds.count, ds.dtypes[0]) == (256, 256, 3, "uint8")
        assert ds.descriptions == ("R (B04)", "G (B03)", "B (B02)")
        tags = ds.tags()
        assert tags["modality"] == "s2_l2a" and tags["software"].startswith("COP-GEN-Beta for QGIS")
        assert json.loads(tags["condition"])["bands"] == [4, 3, 2]
        rgb, mask = ds.read(), ds.dataset_mask()
    assert np.array_equal(rgb[:, 16:240, 16:240], render.render_s2(*read_bands(S2_TILE, [4, 3, 2])))
    assert mask[16:240, 16:240].all() and mask.sum() == 224 * 224 * 255


def test_prepare_with_extent_in_degrees_lands_on_the_input_lattice(tmp_path):
    out = tmp_path / "s2_geo.tif"
    # a box inside the tile (48.1W..48.09W, 25.32S..25.31S), given in EPSG:4326
    args = ["prepare", "--modality", "s2_l2a", "--input", str(S2_TILE), "--extent=-48.110,-25.320,-48.100,-25.310,4326"]
    assert main(args + ["--out", str(out)]) == 0
    assert_valid_cog(out)
    reference = render.render_s2(*read_bands(S2_TILE, [4, 3, 2]))
    with rasterio.open(out) as ds, rasterio.open(S2_TILE) as tile:
        assert ds.crs == tile.crs  # the UTM zone of the extent's centre, the tile's CRS
        # the grid lies on the tile's own (off-10 m) pixel lattice: whole-pixel offsets
        col, row = ~tile.transform * (ds.transform.c, ds.transform.f)
        assert col == pytest.approx(round(col), abs=1e-6) and row == pytest.approx(round(row), abs=1e-6)
        rgb, inside = ds.read(), ds.dataset_mask() > 0
    r0, c0 = round(row), round(col)
    rows = slice(max(0, -r0), min(rgb.shape[1], 224 - r0))
    cols = slice(max(0, -c0), min(rgb.shape[2], 224 - c0))
    tile_part = reference[:, rows.start + r0:rows.stop + r0, cols.start + c0:cols.stop + c0]
    inside = inside[rows, cols]
    assert inside.sum() > 100 * 100  # the ~1 x 1.1 km box
    # copied, not resampled
    assert np.array_equal(rgb[:, rows, cols][:, inside], tile_part[:, inside])


def test_writer_builds_overviews_masks_outside_aoi_and_writes_tags(tmp_path):
    triangle = Polygon([(400000, 4990000), (410240, 4990000), (400000, 5000240)])
    grid = TargetGrid.from_polygon(triangle, UTM33)
    assert grid.width >= 1024
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (3, grid.height, grid.width), dtype=np.uint8)
    tags = {"model": "cop-gen-beta", "seed": 7, "steps": 50, "conditions": ["s2_l2a=x.tif"]}
    out = tmp_path / "gen.tif"
    with OutputWriter(out, grid, "s1_rtc", tags) as writer:
        for row, col, height, width in grid.blocks(384):
            writer.write_window(row, col, image[:, row:row + height, col:col + width])
    assert listing(tmp_path) == ["gen.tif"]
    assert_valid_cog(out)
    with rasterio.open(out) as ds:
        assert ds.overviews(1) and ds.block_shapes[0] == (256, 256)
        assert ds.descriptions == ("R (VV)", "G (VV+VH)", "B (VH)")
        assert ds.tags()["seed"] == "7" and json.loads(ds.tags()["conditions"]) == ["s2_l2a=x.tif"]
        mask = ds.dataset_mask() > 0
        assert np.array_equal(mask, grid.aoi_mask(0, 0, grid.height, grid.width))
        assert np.array_equal(ds.read()[:, mask], image[:, mask])


def test_reflectance_output_is_uint16_dn(tmp_path):
    grid = TargetGrid.from_extent(400000, 4997440, 402560, 5000000, UTM33)
    rgb = np.random.default_rng(1).integers(0, 255, (3, 256, 256), dtype=np.uint8)
    valid = np.ones((256, 256), bool)
    valid[:10] = False
    out = tmp_path / "refl.tif"
    with OutputWriter(out, grid, "s2_l2a", {"seed": 1}, reflectance=True) as writer:
        writer.write_window(0, 0, rgb, valid)
    with rasterio.open(out) as ds:
        assert ds.dtypes[0] == "uint16" and ds.descriptions == ("B04", "B03", "B02")
        dn = ds.read()
        assert np.array_equal(dn[:, 10:], render.s2_to_reflectance_dn(rgb)[:, 10:])
        assert (ds.dataset_mask()[:10] == 0).all()
    assert np.array_equal(render.render_s2(*dn[:, 10:]), rgb[:, 10:])
    with pytest.raises(InputError, match="reflectance"):
        OutputWriter(tmp_path / "dem.tif", grid, "dem", reflectance=True)


@pytest.mark.parametrize("failure", [RuntimeError("model failed"), KeyboardInterrupt()])
def test_failure_or_cancel_leaves_nothing_and_keeps_the_old_file(tmp_path, failure):
    grid = TargetGrid.from_extent(400000, 4997440, 402560, 5000000, UTM33)
    out = tmp_path / "result.tif"
    out.write_bytes(b"previous run")
    with pytest.raises(type(failure)):
        with OutputWriter(out, grid, "dem", {}) as writer:
            writer.write_window(0, 0, np.zeros((3, 128, 128), np.uint8))
            raise failure
    assert listing(tmp_path) == ["result.tif"]
    assert out.read_bytes() == b"previous run"


@pytest.mark.parametrize("args,message", [
    (["--extent", "500000,7000000,510000,7010000"], "does not overlap"),
    (["--bands", "4,B99,2"], "B99"),
    (["--bands", "4,3"], "needs 3"),
])
def test_prepare_errors_name_the_culprit_and_write_nothing(tmp_path, capsys, args, message):
    out = tmp_path / "bad.tif"
    argv = ["prepare", "--modality", "s2_l2a", "--input", str(S2_TILE), "--out", str(out)] + args
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err
    assert listing(tmp_path) == []


def test_prepare_geographic_input_covers_its_footprint_in_utm(tmp_path):
    geo = tmp_path / "geo.tif"
    gdal.Warp(str(geo), str(S2_TILE), dstSRS="EPSG:4326")
    out = tmp_path / "o.tif"
    assert main(["prepare", "--modality", "s2_l2a", "--input", str(geo), "--out", str(out)]) == 0
    with rasterio.open(out) as ds, rasterio.open(S2_TILE) as tile:
        assert ds.crs == tile.crs
        assert (ds.width, ds.height) == (256, 256)
        # the warped tile's footprint (a little larger than the tile) is the AOI, centred
        left, bottom, right, top = ds.bounds
        assert left < tile.bounds.left < tile.bounds.right < right
        assert bottom < tile.bounds.bottom < tile.bounds.top < top
        assert (ds.dataset_mask() > 0).sum() >= 224 * 224


@pytest.mark.parametrize("name", ["out.png", "out"])
def test_prepare_out_must_be_a_geotiff_name(tmp_path, capsys, name):
    argv = ["prepare", "--modality", "s2_l2a", "--input", str(S2_TILE), "--out", str(tmp_path / name)]
    assert main(argv) == 1
    assert "--out" in capsys.readouterr().err
    assert listing(tmp_path) == []


def test_sigterm_during_prepare_removes_everything_it_created(tmp_path, monkeypatch):
    """SIGTERM while writing unwinds like Ctrl-C: no partial file, no folder made for it."""
    (tmp_path / "existing").mkdir()
    out = tmp_path / "existing" / "new" / "deeper" / "s2.tif"
    real_write = OutputWriter.write_window

    def write_then_terminate(self, *args, **kwargs):
        real_write(self, *args, **kwargs)
        os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(OutputWriter, "write_window", write_then_terminate)
    handler = signal.getsignal(signal.SIGTERM)
    assert main(["prepare", "--modality", "s2_l2a", "--input", str(S2_TILE), "--out", str(out)]) == 130
    assert listing(tmp_path) == ["existing"] and listing(tmp_path / "existing") == []
    assert signal.getsignal(signal.SIGTERM) == handler  # the command's handler is gone again
