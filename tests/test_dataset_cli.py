"""`python -m plugin dataset` end to end: an external cluster started as the README says, the
exit status and failure list, and bad input refused in one line with nothing written."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import rasterio

from test_dataset import CELLS, place_tile

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
BASE = ["--generate", "dem", "--steps", "2", "--cell-size-px", "256"]


def dataset(*args, timeout=180):
    return subprocess.run([sys.executable, "-m", "plugin", "dataset", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout)


def error_line(result):
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[-1]


@pytest.fixture(scope="module")
def tiles(shared_dir, tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli_tiles")
    for cell in ("282D_485L", "38D_378R"):
        place_tile(shared_dir / "data" / "majortom_s2l2a" / CELLS[cell], cell, folder / f"{cell}.tif")
    return folder


def dead_worker_folder(cell_folder):
    """A work folder as a worker of this machine makes it, whose process has ended."""
    from plugin.dataset.worker import WORK_NAME
    from plugin.engine.atomic import temp_sibling

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    name = temp_sibling(cell_folder / WORK_NAME).name.replace(f".{os.getpid()}-", f".{child.pid}-")
    folder = cell_folder / name
    folder.mkdir(parents=True)
    (folder / "partial.tif").write_bytes(b"half")
    return folder


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.timeout(240)
def test_external_cluster_runs_the_cells_and_lists_the_failed_one(tiny_model_dir, tiles, tmp_path):
    """`dask scheduler` + `dask worker` as in the README; one condition raster for two cells
    covers only one of them: that cell fails, named, the other is written, exit status 1."""
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = {"PYTHONPATH": str(REPO), "PATH": f"{VENV_BIN}:/usr/bin:/bin", "GDAL_PAM_ENABLED": "NO", "HOME": str(tmp_path)}
    scheduler = subprocess.Popen([str(VENV_BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", str(port),
                                  "--no-dashboard"], cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    worker = subprocess.Popen([str(VENV_BIN / "dask"), "worker", address, "--nthreads", "1", "--no-dashboard"],
                              cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        out = tmp_path / "out"
        stale = dead_worker_folder(out / "282D_485L")  # left by a worker killed in an earlier run
        look_alike = out / "282D_485L" / ".work-0123456789ab"  # the user's: only looks like one
        look_alike.mkdir()
        result = dataset("--cells", "282D_485L,38D_378R", "--model", str(tiny_model_dir), "--out", str(out),
                         "--condition", f"s2_l2a={tiles / '282D_485L.tif'}:4,3,2", "--scheduler", address, *BASE)
        assert result.returncode == 1, result.stderr
        assert f"failed: 38D_378R: condition s2_l2a: {tiles / '282D_485L.tif'} covers none of cell 38D_378R" in result.stderr
        assert "cells 1/2 done (0 already complete), 1 failed" in result.stderr
        # said before any cell runs: the whole run's time, from one cell priced on the worker
        estimate = next(line for line in result.stderr.splitlines() if line.startswith("estimate: "))
        assert estimate.startswith("estimate: 2 cells, each about ") and "in all on 1 worker " in estimate
        assert result.stderr.index(estimate) < result.stderr.index("cells 0/2 done")
        # each cell's stages as its worker starts them
        stages = [line for line in result.stderr.splitlines() if line.startswith("cell 282D_485L: ")]
        assert stages[0] == "cell 282D_485L: encoding s2_l2a" and "cell 282D_485L: decoding dem" in stages
        assert (out / "282D_485L" / "dem.tif").is_file() and not (out / "38D_378R").exists()
        assert (out / "collection.json").is_file() and (out / "282D_485L" / "282D_485L.json").is_file()
        assert not stale.exists() and look_alike.is_dir()
        with rasterio.open(out / "282D_485L" / "dem.tif") as ds:
            assert ds.crs.to_epsg() == 32722 and ds.shape == (256, 256)
    finally:
        for process in (worker, scheduler):
            process.terminate()
        for process in (worker, scheduler):
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


@pytest.mark.timeout(60)
def test_unreachable_scheduler_is_reported_within_seconds(tiny_model_dir, tmp_path):
    start = time.monotonic()
    result = dataset("--cells", "282D_485L", "--model", str(tiny_model_dir), "--out", str(tmp_path / "out"),
                     "--scheduler", f"tcp://127.0.0.1:{free_port()}", *BASE, timeout=30)
    assert time.monotonic() - start < 20
    assert error_line(result).startswith(f"error: --scheduler: tcp://127.0.0.1:") and "cannot reach it within 5 s" in result.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.timeout(120)
@pytest.mark.parametrize("args, message", [
    (["--cells", "282D_485L,1003D_1R"], "error: cell '1003D_1R': no such row (rows are 1002D..1D and 0U..1001U)"),
    (["--cells", "282D_485L", "--condition", "s2_l2a=tiles/{name}.tif"],
     "error: condition s2_l2a=tiles/{name}.tif: a pattern must name the cell as {cell} and nothing else (found {name})"),
    (["--cells", "282D_485L", "--condition", "s2_l2a=tiles/cell.tif"],
     "error: condition s2_l2a: tiles/cell.tif does not exist (for one file per cell, name the cell as {cell} in the path)"),
    (["--cells", "282D_485L", "--cell-size-px", "255"], "error: --cell-size-px: 255 px: use an even count of 2..1068 px"),
    # the generation options are generate's, checked by the request, named by their flags
    (["--cells", "282D_485L", "--tiling", "overlap:40"],
     "error: --tiling: 'overlap:40': overlap:N takes an overlap of 0..31 latents, got 40"),
    (["--cells", "282D_485L", "--steps", "0"], "error: --steps: must be a whole number >= 1, got 0"),
    (["--cells", "282D_485L", "--generate", "dem,rgb"],
     "error: --generate: unknown modality 'rgb'; expected one of dem, s1_rtc, s2_l1c, s2_l2a"),
    (["--cells", "282D_485L", "--workers", "0"],
     "error: --workers: a whole number >= 1, for the local cluster only (not with --scheduler)"),
    # a mistyped extent (degrees for metres) must not queue a continent
    (["--extent=0,0,50,50,4326"], "error: --max-cells: 272527 cells, above the limit of 1000; choose a smaller area or raise the limit"),
    (["--cells", "282D_485L,282D_486L", "--max-cells", "1"], "error: --max-cells: 2 cells, above the limit of 1; choose a smaller area or raise the limit"),
])
def test_bad_input_is_one_line_and_writes_nothing(tiny_model_dir, tmp_path, args, message):
    result = dataset(*BASE, *args, "--model", str(tiny_model_dir), "--out", str(tmp_path / "out"), timeout=60)
    assert error_line(result) == message
    assert not (tmp_path / "out").exists()


@pytest.mark.timeout(60)
def test_an_output_that_is_a_file_is_named_before_any_cluster_starts(tiny_model_dir, tmp_path):
    out = tmp_path / "out.tif"
    out.write_bytes(b"keep")
    result = dataset(*BASE, "--cells", "282D_485L", "--model", str(tiny_model_dir), "--out", str(out), timeout=60)
    assert error_line(result) == f"error: --out {out}: exists and is not a folder"
    assert out.read_bytes() == b"keep" and "Dask dashboard" not in result.stderr


@pytest.mark.timeout(120)
def test_a_model_folder_workers_cannot_read_is_named(tiny_model_dir, tmp_path):
    broken = tmp_path / "model"
    broken.mkdir()
    (broken / "model.json").write_text("{not json")
    result = dataset("--cells", "282D_485L", "--model", str(broken), "--out", str(tmp_path / "out"), *BASE)
    line = error_line(result)
    assert line.startswith(f"error: --model: {broken} on worker tcp://") and "model.json is unreadable" in line
    assert not (tmp_path / "out").exists()


@pytest.mark.timeout(120)
def test_sigterm_stops_the_run_promptly_and_leaves_no_partial_output(tiny_model_dir, tmp_path):
    out = tmp_path / "out"
    process = subprocess.Popen(
        [sys.executable, "-m", "plugin", "dataset", "--cells", "282D_485L", "--model", str(tiny_model_dir),
         "--out", str(out), "--generate", "dem", "--steps", "200"],
        cwd=REPO, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
    )
    try:
        for line in process.stderr:  # wait until the cell is submitted
            if line.startswith("cells 0/1 done"):
                break
        time.sleep(2)
        process.terminate()
        start = time.monotonic()
        assert process.wait(timeout=60) == 130
        assert time.monotonic() - start < 30
    finally:
        process.kill()
    assert not list(out.rglob("*.tif")) and not list(out.rglob(".work.*"))
