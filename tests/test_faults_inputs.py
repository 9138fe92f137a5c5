"""Bad or unusual inputs in the CLI: never an input overwritten, never a traceback; one line
naming the file or option, or the case handled (antimeridian, poles)."""

import shutil

import numpy as np
import pytest
import rasterio
from _faults import error_line, run_cli, each_test_time_limit  # noqa: F401 (autouse fixture)
from _geo_helpers import S2_TILE, write_raster
from affine import Affine
from rasterio.crs import CRS

from plugin.cli import main
from plugin.geo.grid import TargetGrid

PIXELS = np.random.default_rng(0).integers(1, 3000, (3, 64, 64)).astype(np.uint16)
# a 2.56 km square in UTM 33N
SMALL_EXTENT = "400000,4997440,402560,5000000,32633"


def _prepare(tmp_path, source, out=None, *extra):
    out = out or tmp_path / "out" / "r.tif"
    return run_cli(["prepare", "--modality", "s2_l2a", "--input", source, "--out", out, *extra], timeout=180), out


def test_prepare_never_writes_over_its_input(tmp_path):
    source = shutil.copy(S2_TILE, tmp_path / "scene.tif")
    before = (tmp_path / "scene.tif").read_bytes()
    (tmp_path / "link.tif").symlink_to(tmp_path / "scene.tif")
    for out in (tmp_path / "scene.tif", tmp_path / "link.tif", tmp_path / "." / "scene.tif"):
        result, _ = _prepare(tmp_path, source, out)
        assert result.returncode == 1
        line = error_line(result)
        assert f"--out {out}" in line and "is the input" in line and "scene.tif" in line
    assert (tmp_path / "scene.tif").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.tif", "scene.tif"]


def test_generate_never_writes_over_a_condition(tmp_path, tiny_model_dir):
    out = tmp_path / "out"
    out.mkdir()
    condition = shutil.copy(S2_TILE, out / "copgen_seed0_dem.tif")  # the name the output would get
    before = condition.read_bytes() if hasattr(condition, "read_bytes") else open(condition, "rb").read()
    result = run_cli(
        ["generate", "--model", tiny_model_dir, "--generate", "dem", "--condition", f"s2_l2a={condition}",
         "--out", out, "--steps", "1", "--device", "cpu"],
        timeout=180,
    )
    assert result.returncode == 1
    assert "copgen_seed0_dem.tif is the input" in error_line(result)
    assert open(condition, "rb").read() == before and [p.name for p in out.iterdir()] == ["copgen_seed0_dem.tif"]


def test_local_engineering_crs_is_one_line(tmp_path):
    local = CRS.from_wkt('LOCAL_CS["site grid",UNIT["metre",1],AXIS["Easting",EAST],AXIS["Northing",NORTH]]')
    source = write_raster(tmp_path / "site.tif", PIXELS, crs=local, transform=Affine(10, 0, 1000, 0, -10, 5000))
    for extra in ((), ("--extent", SMALL_EXTENT)):
        result, out = _prepare(tmp_path, source, None, *extra)
        assert result.returncode == 1
        line = error_line(result)
        assert "site.tif" in line and "local (engineering) CRS" in line
        assert not out.parent.exists()


def _valid_fraction(path):
    with rasterio.open(path) as ds:
        return (ds.dataset_mask() > 0).mean(), ds.crs


def test_geographic_raster_crossing_the_antimeridian_is_rendered(tmp_path):
    # 179.99 E .. 180.022 E (= -179.978): a raster whose columns run past 180
    source = write_raster(
        tmp_path / "fiji.tif", PIXELS, crs=CRS.from_epsg(4326), transform=Affine(0.0005, 0, 179.99, 0, -0.0005, -16.0)
    )
    result, out = _prepare(tmp_path, source)
    assert result.returncode == 0, result.stderr
    fraction, crs = _valid_fraction(out)
    assert crs == CRS.from_epsg(32701) and fraction > 0.9
    # and an extent written across the seam, west edge 179.995 E, east edge 179.99 W
    result, out = _prepare(tmp_path, source, tmp_path / "seam.tif", "--extent=179.995,-16.03,-179.99,-16.0,4326")
    assert result.returncode == 0, result.stderr
    grid = TargetGrid.from_extent(179.995, -16.03, -179.99, -16.0, 4326)
    area = grid.aoi_mask(0, 0, grid.height, grid.width)
    with rasterio.open(out) as ds:
        assert ds.crs == CRS.from_epsg(32701) and (ds.width, ds.height) == (grid.width, grid.height)
        valid = ds.dataset_mask() > 0
    assert 0.3 < area.mean() < 0.9  # the extent, 1.6 x 3.3 km, inside its padded grid
    assert (valid == area).mean() > 0.99  # the whole extent has data: none of it was lost at the seam


def test_polar_raster_is_rendered(tmp_path):
    # the last 0.1 degree around the North Pole, all longitudes
    source = write_raster(
        tmp_path / "pole.tif", PIXELS, crs=CRS.from_epsg(4326), transform=Affine(360 / 64, 0, -180, 0, -0.1 / 64, 90)
    )
    result, out = _prepare(tmp_path, source)
    assert result.returncode == 0, result.stderr
    fraction, crs = _valid_fraction(out)
    assert crs.is_projected and fraction > 0.5


def test_oversize_raster_is_one_line(tmp_path):
    source = write_raster(
        tmp_path / "world.tif", PIXELS, crs=CRS.from_epsg(4326), transform=Affine(360 / 64, 0, -180, 0, -180 / 64, 90)
    )
    result, out = _prepare(tmp_path, source)
    assert result.returncode == 1
    line = error_line(result)
    assert "world.tif" in line and "at most 1000 km a side" in line
    assert not out.parent.exists()


def test_the_default_area_limit_admits_one_major_tom_cell():
    from plugin.cli import build_parser
    from plugin.engine.request import DEFAULT_MAX_AREA_KM2
    from plugin.geo.majortom import cell_named, cell_target_grid
    from plugin.geo.pipeline import area_km2

    cell_km2 = area_km2(cell_target_grid(cell_named("282D_485L")))
    assert 110 < cell_km2 <= DEFAULT_MAX_AREA_KM2  # the unit `dataset` is built around
    args = build_parser().parse_args(["generate", "--model", "m", "--generate", "dem", "--extent", "0,0,1,1,32633", "--out", "x"])
    assert args.max_area_km2 == DEFAULT_MAX_AREA_KM2


def test_cli_refuses_a_large_area_by_default_with_an_estimate(tmp_path, tiny_model_dir):
    out = tmp_path / "out"
    args = ["generate", "--model", tiny_model_dir, "--generate", "dem", "--out", out, "--steps", "2",
            "--device", "cpu", "--extent", "400000,4950000,420000,5000000,32633"]  # 20 x 50 km
    result = run_cli(args, timeout=180)
    assert result.returncode == 1
    line = error_line(result)
    assert line.startswith("error: --max-area-km2:") and "1000.0 km²" in line and "limit of 120 km²" in line
    # how long and how much memory it would need, and (the flag in front) what raises the limit
    assert "denoiser windows" in line and "calls" in line and "about" in line and "GiB of memory" in line
    assert not out.exists()


def test_convert_refuses_checkpoints_inside_the_folder_it_replaces(tmp_path, fixtures_dir, tiny_model_dir):
    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    inside = shutil.copy(fixtures_dir / "vae_tiny.pth", model / "vae.pth")
    result = run_cli(["convert", "--denoiser", fixtures_dir / "denoiser_tiny.pth", "--vae", inside, "--out", model,
                      "--heads", "3"], timeout=120)
    assert result.returncode == 1
    assert "lies inside the output folder" in error_line(result)
    assert (model / "vae.pth").is_file() and (model / "model.json").is_file()


@pytest.mark.parametrize("content", [b"not a tiff", None])
def test_unreadable_input_is_one_line(tmp_path, content):
    source = tmp_path / "broken.tif"
    if content is None:  # a truncated GeoTIFF: its header reads, its pixels do not
        source.write_bytes(S2_TILE.read_bytes()[:3000])
    else:
        source.write_bytes(content)
    result, out = _prepare(tmp_path, source)
    assert result.returncode == 1
    assert "broken.tif" in error_line(result)
    assert not out.parent.exists()


def test_unwritable_output_is_one_line(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result, _ = _prepare(tmp_path, S2_TILE, blocker / "sub" / "r.tif")
    assert result.returncode == 1
    assert str(blocker) in error_line(result)


def test_bugs_are_one_line_with_a_debug_hint_and_debug_shows_the_traceback(monkeypatch, capsys):
    from plugin.commands import prepare

    def broken(args):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(prepare, "run", broken)
    argv = ["prepare", "--modality", "dem", "--input", "x.tif", "--out", "y.tif"]
    assert main(argv) == 70
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "internal error (ZeroDivisionError: a bug)" in err and "--debug" in err
    with pytest.raises(ZeroDivisionError):
        main(["--debug", *argv])


# -- models verify -----------------------------------------------------------------------------


def _installed_copy(tmp_path, tiny_model_dir):
    root = tmp_path / "models"
    shutil.copytree(tiny_model_dir, root / "cop-gen-beta")
    return root


def _verify(root):
    return run_cli(["models", "verify", "--model-dir", root], timeout=120)


def test_models_verify_passes_a_complete_folder_on_to_the_source_check(tmp_path, tiny_model_dir):
    result = _verify(_installed_copy(tmp_path, tiny_model_dir))
    # the graph and hash checks pass; then the tiny checkpoints are found not to be the official
    # ones of the shipped registry (the check that follows them)
    assert result.returncode == 1
    assert "not the official" in error_line(result)


def test_models_verify_names_a_graph_missing_from_model_json(tmp_path, tiny_model_dir):
    import json

    root = _installed_copy(tmp_path, tiny_model_dir)
    info_path = root / "cop-gen-beta" / "model.json"
    info = json.loads(info_path.read_text())
    del info["files"]["vae_decoder.onnx"]
    info_path.write_text(json.dumps(info))
    result = _verify(root)
    assert result.returncode == 1
    line = error_line(result)
    assert "vae_decoder.onnx: needed by the model but not listed with a sha256" in line and "model.json" in line


def test_models_verify_names_swapped_graphs(tmp_path, tiny_model_dir):
    import json

    root = _installed_copy(tmp_path, tiny_model_dir)
    folder = root / "cop-gen-beta"
    (folder / "vae_encoder.onnx").rename(folder / "tmp")
    (folder / "vae_decoder.onnx").rename(folder / "vae_encoder.onnx")
    (folder / "tmp").rename(folder / "vae_decoder.onnx")
    info = json.loads((folder / "model.json").read_text())  # hashes swapped too: only roles tell
    files = info["files"]
    files["vae_encoder.onnx"], files["vae_decoder.onnx"] = files["vae_decoder.onnx"], files["vae_encoder.onnx"]
    (folder / "model.json").write_text(json.dumps(info))
    result = _verify(root)
    assert result.returncode == 1
    line = error_line(result)
    assert "vae_encoder.onnx: takes ['latents']" in line and "swapped" in line


def test_generate_with_swapped_vae_graphs_is_one_line_before_any_work(tmp_path, tiny_model_dir):
    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    (model / "vae_encoder.onnx").rename(model / "tmp")
    (model / "vae_decoder.onnx").rename(model / "vae_encoder.onnx")
    (model / "tmp").rename(model / "vae_decoder.onnx")
    out = tmp_path / "out"
    result = run_cli(["generate", "--model", model, "--generate", "dem", "--out", out, "--steps", "1",
                      "--device", "cpu", "--extent", SMALL_EXTENT], timeout=180)
    assert result.returncode == 1
    line = error_line(result)
    assert f"{model / 'vae_encoder.onnx'}: takes ['latents']" in line and "swapped" in line
    assert "denoising" not in result.stderr and not out.exists()


def test_argument_refusals_are_one_line_naming_the_option():
    # argparse's own refusals (a bad choice, a missing option) read like every other error
    for args, named in ((["prepare", "--modality", "s2_foo", "--input", "x.tif", "--out", "y.tif"], "--modality"),
                        (["generate", "--generate", "dem"], "--model"),
                        (["cells", "--extent", "--out", "c.gpkg"], "--extent")):  # the extent left out
        result = run_cli(args, timeout=60)
        assert result.returncode == 2
        assert result.stderr.count("\n") == 1 and "usage:" not in result.stderr, result.stderr
        assert result.stderr.startswith("error: ") and named in result.stderr and "--help" in result.stderr


def test_prepare_names_its_extent_option_when_the_extent_is_wrong(tmp_path):
    for extent in ("0,0,1", "0,0,1,1"):  # malformed; smaller than a pixel in the input's UTM CRS
        result, out = _prepare(tmp_path, S2_TILE, None, f"--extent={extent}")
        assert result.returncode == 1 and error_line(result).startswith("error: --extent: "), result.stderr
        assert not out.parent.exists()


def test_prepare_names_its_bands_option_when_the_bands_are_wrong(tmp_path):
    for bands in ("1,2", "1,2,99", "B99,B03,B02"):  # too few; out of range; no such description
        result, out = _prepare(tmp_path, S2_TILE, None, "--bands", bands)
        assert result.returncode == 1 and error_line(result).startswith("error: --bands: "), result.stderr
        assert not out.parent.exists()


def test_band_names_work_for_a_tile_without_band_names(tmp_path):
    # the README's --condition s2_l2a=FILE:B04,B03,B02 on a Major TOM tile (12 bands, no names)
    result, out = _prepare(tmp_path, S2_TILE, None, "--bands", "B04,B03,B02")
    assert result.returncode == 0, result.stderr
    with rasterio.open(out) as ds:
        named = ds.read()
    result, numbered = _prepare(tmp_path, S2_TILE, tmp_path / "numbered.tif", "--bands", "4,3,2")
    with rasterio.open(numbered) as ds:
        assert (ds.read() == named).all()


def test_generate_warns_when_a_condition_covers_part_of_the_area(tmp_path, tiny_model_dir):
    """An extent larger than the condition is not an error, but the user is told before sampling."""
    with rasterio.open(S2_TILE) as ds:
        b, epsg = ds.bounds, ds.crs.to_epsg()
    extent = f"{b.left - 1000},{b.bottom - 1000},{b.right + 1000},{b.top + 1000},{epsg}"
    result = run_cli(["generate", "--model", tiny_model_dir, "--generate", "dem", "--condition", f"s2_l2a={S2_TILE}",
                      f"--extent={extent}", "--out", tmp_path / "out", "--steps", "1", "--device", "cpu"], timeout=180)
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 2 and "covers 28 % of the area" in warnings[1] and str(S2_TILE) in warnings[1]
    # the tile has no band names: how its 12 bands were read is said too
    assert warnings[0] == (f"warning: {S2_TILE} has no band names; read in Major TOM's S2 L2A order of 12 bands "
                           "(B04, B03, B02 = bands 4, 3, 2)")
