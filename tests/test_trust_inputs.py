"""AOI files that are broken or absurd are one line naming --aoi, never an internal error; a
command reading a huge AOI stops promptly on SIGTERM."""

import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from _faults import REPO, error_line, run_cli


def _polygon_file(path, rings):
    features = [{"type": "Feature", "properties": {"name": "x"}, "geometry": {"type": "Polygon", "coordinates": [ring]}}
                for ring in rings]
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return path


@pytest.mark.timeout(120)
@pytest.mark.parametrize("ring,message", [
    ([[10, 45], [10.01, 45], [10.01, 45.01], [10, 45.01]], "ring that is not closed"),
    ([[10, 45], [10.01, 45], [10, 45]], "ring of 3 points"),
    ([[1e12, 45], [1e12, 46], [2e12, 46], [1e12, 45]], "do not lie on the Earth"),
    ([[10, 95], [11, 95], [11, 96], [10, 95]], "do not lie on the Earth"),
])
def test_a_broken_or_absurd_aoi_is_one_line(tmp_path, ring, message):
    aoi = _polygon_file(tmp_path / "aoi.geojson", [ring])
    result = run_cli(["cells", "--aoi", aoi, "--out", tmp_path / "cells.gpkg"], timeout=60)
    assert result.returncode == 1
    line = error_line(result)
    assert line.startswith(f"error: --aoi: {aoi}") and message in line
    assert "IllegalArgumentException" not in result.stderr and not (tmp_path / "cells.gpkg").exists()


@pytest.mark.timeout(200)
def test_sigterm_stops_reading_a_huge_aoi_promptly(tmp_path):
    # 60 000 overlapping squares: reading takes seconds, their union (one GEOS call) tens of seconds
    rng = np.random.default_rng(3)
    corners = rng.uniform(0, 0.3, (60000, 2)) + (10, 45)
    rings = [[[x, y], [x + 5e-4, y], [x + 5e-4, y + 5e-4], [x, y + 5e-4], [x, y]] for x, y in corners.tolist()]
    aoi = _polygon_file(tmp_path / "huge.geojson", rings)
    child = subprocess.Popen([sys.executable, "-m", "plugin", "cells", "--aoi", str(aoi), "--out", str(tmp_path / "c.gpkg")],
                             cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(8)  # start-up and reading the features; the union is under way (or about to be)
        assert child.poll() is None, child.communicate()
        child.send_signal(signal.SIGTERM)
        start = time.monotonic()
        code = child.wait(timeout=60)
        stopped_in = time.monotonic() - start
    finally:
        child.kill()
    assert code == 130 and stopped_in < 8, (code, stopped_in)  # the union alone takes 20 s here
    assert not (tmp_path / "c.gpkg").exists()


@pytest.mark.timeout(120)
@pytest.mark.parametrize("command", ["generate", "dataset"])
def test_absurd_steps_are_refused_before_any_allocation(tmp_path, tiny_model_dir, command):
    from _geo_helpers import S2_TILE

    where = ["--out", tmp_path / "out"] + (["--cells", "282D_485L"] if command == "dataset" else [])
    result = run_cli([command, "--model", tiny_model_dir, "--generate", "dem", "--condition", f"s2_l2a={S2_TILE}",
                      *where, "--steps", "100000000000", "--device", "cpu"], timeout=60)
    assert result.returncode == 1
    line = error_line(result)
    assert line.startswith("error: --steps") and "at most 1000" in line
    # refused by the request's check, before the estimate counts windows call by call
    assert not (tmp_path / "out").exists()


@pytest.mark.timeout(180)
def test_names_near_the_file_name_limit_are_written_or_named_as_the_user_gave_them(tmp_path, tiny_model_dir):
    from _geo_helpers import S2_TILE

    long = "a" * 250
    # a final name that fits: written, though its temporary name would not have fitted
    result = run_cli(["prepare", "--modality", "s2_l2a", "--input", S2_TILE, "--out", tmp_path / f"{long}.tif"], timeout=60)
    assert result.returncode == 0, result.stderr
    assert [p.name for p in tmp_path.iterdir()] == [f"{long}.tif"]
    # names that cannot fit: one line naming the user's path or option, nothing written
    result = run_cli(["prepare", "--modality", "s2_l2a", "--input", S2_TILE, "--out", tmp_path / f"{long}bbbbbb.tif"],
                     timeout=60)
    assert result.returncode == 1
    line = error_line(result)
    assert f"{long}bbbbbb.tif" in line and "more than file systems allow" in line and ".partial" not in line
    out = tmp_path / "out"
    result = run_cli(["generate", "--model", tiny_model_dir, "--generate", "dem", "--condition", f"s2_l2a={S2_TILE}",
                      "--out", out, "--run-name", long, "--steps", "1", "--device", "cpu"], timeout=120)
    assert result.returncode == 1
    line = error_line(result)
    assert line.startswith("error: --run-name") and "more than file systems allow" in line
    assert not out.exists() and len(list(tmp_path.iterdir())) == 1
