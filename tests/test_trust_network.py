"""GDAL's network access stays off unless the user opts in: a condition or AOI named by URL is
refused with one line naming --allow-network and no request reaches the (local) server; with
--allow-network the same URL is read through /vsicurl/ and gives what the local file gives."""

import numpy as np
import pytest
import rasterio
from _faults import error_line, run_cli
from _geo_helpers import S2_TILE
from _h1_http import FileServer


def _prepare(source, out, *extra):
    return run_cli(["prepare", "--modality", "s2_l2a", "--input", source, "--out", out, *extra], timeout=120)


@pytest.mark.timeout(300)
def test_a_url_is_read_only_with_allow_network(tmp_path):
    with FileServer({"/scene.tif": S2_TILE.read_bytes()}) as server:
        url = f"{server.url}/scene.tif"
        for source in (url, f"/vsicurl/{url}"):
            out = tmp_path / "refused" / "r.tif"
            result = _prepare(source, out)
            assert result.returncode == 1
            line = error_line(result)
            assert source in line and "--allow-network" in line
            assert not out.parent.exists()
        assert server.requests == []
        out = tmp_path / "remote" / "r.tif"
        result = _prepare(url, out, "--allow-network")
        assert result.returncode == 0, result.stderr
        assert any(path == "/scene.tif" for path, _ in server.requests)
    local = tmp_path / "local" / "r.tif"
    assert _prepare(S2_TILE, local).returncode == 0
    with rasterio.open(out) as remote, rasterio.open(local) as here:
        assert remote.transform == here.transform
        assert np.array_equal(remote.read(), here.read())


@pytest.mark.timeout(200)
def test_an_aoi_url_is_read_only_with_allow_network(tmp_path):
    aoi = (b'{"type": "FeatureCollection", "crs": {"type": "name", "properties": {"name": "EPSG:32722"}}, '
           b'"features": [{"type": "Feature", "properties": {}, "geometry": {"type": "Polygon", "coordinates": '
           b'[[[790300, 7195900], [792400, 7195900], [792400, 7198000], [790300, 7198000], [790300, 7195900]]]}}]}')
    with FileServer({"/aoi.geojson": aoi}) as server:
        url = f"{server.url}/aoi.geojson"
        result = run_cli(["cells", "--aoi", url, "--out", tmp_path / "c.gpkg"], timeout=60)
        assert result.returncode == 1
        line = error_line(result)
        assert line.startswith("error: --aoi") and url in line and "--allow-network" in line
        assert server.requests == [] and not (tmp_path / "c.gpkg").exists()
        result = run_cli(["cells", "--aoi", url, "--out", tmp_path / "c.gpkg", "--allow-network"], timeout=60)
        assert result.returncode == 0, result.stderr
        assert server.requests and (tmp_path / "c.gpkg").is_file()
        assert result.stdout.startswith("1 cell ->")


@pytest.mark.timeout(300)
def test_generate_reads_a_condition_url_only_with_allow_network(tmp_path, tiny_model_dir):
    def generate(source, out, *extra):
        return run_cli(["generate", "--model", tiny_model_dir, "--generate", "dem", "--condition", f"s2_l2a={source}",
                        "--out", out, "--steps", 2, "--device", "cpu", *extra], timeout=200)

    with FileServer({"/scene.tif": S2_TILE.read_bytes()}) as server:
        url = f"{server.url}/scene.tif"
        result = generate(url, tmp_path / "refused")
        assert result.returncode == 1
        line = error_line(result)
        assert url in line and "--allow-network" in line
        assert server.requests == [] and not (tmp_path / "refused").exists()
        result = generate(url, tmp_path / "remote", "--allow-network")
        assert result.returncode == 0, result.stderr
        assert server.requests
    assert generate(S2_TILE, tmp_path / "local").returncode == 0
    with rasterio.open(tmp_path / "remote" / "copgen_seed0_dem.tif") as remote, \
            rasterio.open(tmp_path / "local" / "copgen_seed0_dem.tif") as here:
        assert np.array_equal(remote.read(), here.read())



@pytest.mark.timeout(120)
def test_dataset_refuses_a_condition_url_before_any_request(tmp_path, tiny_model_dir):
    with FileServer({"/scene.tif": S2_TILE.read_bytes()}) as server:
        url = f"{server.url}/scene.tif"
        result = run_cli(["dataset", "--model", tiny_model_dir, "--generate", "dem", "--condition", f"s2_l2a={url}",
                          "--cells", "282D_485L", "--out", tmp_path / "out", "--device", "cpu"], timeout=100)
        assert result.returncode == 1
        line = error_line(result)
        assert url in line and "network source" in line and "local files only" in line
        assert server.requests == [] and not (tmp_path / "out").exists()
