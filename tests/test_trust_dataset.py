"""A dataset never lies and never touches what it did not make: the real `dataset` command over
one small cell, with its outputs broken, its options or condition changed, a second run into
the same --out, user folders that look like work folders, a symlinked cell folder."""

import json
import os
import re
import subprocess
import sys
import time

import numpy as np
import pytest
import rasterio
from test_dataset import CELLS, place_tile
from test_dataset_cli import REPO, dataset, dead_worker_folder
from test_trust_reading import ConnectionCounter

CELL, OTHER = "282D_485L", "38D_378R"
BASE = ["--generate", "dem", "--steps", "2", "--cell-size-px", "256"]


@pytest.fixture()
def tile(shared_dir, tmp_path):
    return place_tile(shared_dir / "data" / "majortom_s2l2a" / CELLS[CELL], CELL, tmp_path / "tile.tif")


def _run(model, out, condition, *extra, cells=CELL, timeout=180):
    return dataset("--cells", cells, "--model", str(model), "--out", str(out),
                   "--condition", f"s2_l2a={condition}:4,3,2", *BASE, *extra, timeout=timeout)


def _counts(result):
    assert "Traceback" not in result.stderr, result.stderr
    line = [line for line in result.stdout.splitlines() if " generated, " in line][-1]
    found = re.fullmatch(r"(\d+) cells? generated, (\d+) already complete, .*", line)
    return int(found.group(1)), int(found.group(2))


@pytest.mark.timeout(600)
def test_a_rerun_redoes_every_cell_it_cannot_trust(tiny_model_dir, tile, tmp_path):
    out = tmp_path / "out"
    assert _counts(_run(tiny_model_dir, out, tile)) == (1, 0)
    assert _counts(_run(tiny_model_dir, out, tile)) == (0, 1)  # nothing changed: trusted
    dem = out / CELL / "dem.tif"

    # the file's header and tags intact, its pixels cut off
    data = dem.read_bytes()
    dem.write_bytes(data[: len(data) * 2 // 3])
    assert _counts(_run(tiny_model_dir, out, tile)) == (1, 0)
    with rasterio.open(dem) as ds:
        assert ds.read().shape[1:] == (256, 256)

    # an option that is not in the files' tags: how the condition is read
    assert _counts(_run(tiny_model_dir, out, tile, "--s2-offset", "1000")) == (1, 0)
    assert _counts(_run(tiny_model_dir, out, tile, "--s2-offset", "1000")) == (0, 1)

    # the condition file rewritten in place (same name, same size, other pixels)
    with rasterio.open(tile, "r+") as ds:
        ds.write(np.flipud(ds.read(1)), 1)
    assert _counts(_run(tiny_model_dir, out, tile, "--s2-offset", "1000")) == (1, 0)


@pytest.mark.timeout(400)
def test_the_catalog_lists_earlier_runs_cells(tiny_model_dir, tile, shared_dir, tmp_path):
    out = tmp_path / "out"
    assert _counts(_run(tiny_model_dir, out, tile)) == (1, 0)
    other = place_tile(shared_dir / "data" / "majortom_s2l2a" / CELLS[OTHER], OTHER, tmp_path / "other.tif")
    assert _counts(_run(tiny_model_dir, out, other, cells=OTHER)) == (1, 0)
    collection = json.loads((out / "collection.json").read_text())
    items = sorted(link["href"] for link in collection["links"] if link["rel"] == "item")
    assert items == [f"./{CELL}/{CELL}.json", f"./{OTHER}/{OTHER}.json"]
    # a cell whose file broke since is no longer listed
    (out / CELL / "dem.tif").write_bytes(b"broken")
    assert _counts(_run(tiny_model_dir, out, other, cells=OTHER)) == (0, 1)
    collection = json.loads((out / "collection.json").read_text())
    assert [link["href"] for link in collection["links"] if link["rel"] == "item"] == [f"./{OTHER}/{OTHER}.json"]


@pytest.mark.timeout(400)
def test_only_dead_workers_folders_are_removed(tiny_model_dir, tile, tmp_path):
    out = tmp_path / "out"
    user = [out / ".work-notes", out / CELL / ".work-0123456789ab", out / "other" / ".work-x"]
    for folder in user:
        folder.mkdir(parents=True)
        (folder / "keep.txt").write_text("mine")
    stale = dead_worker_folder(out / CELL)
    assert _counts(_run(tiny_model_dir, out, tile)) == (1, 0)
    assert all((folder / "keep.txt").read_text() == "mine" for folder in user)
    assert not stale.exists()


@pytest.mark.timeout(400)
def test_a_second_run_into_the_same_out_is_refused_and_the_first_finishes(tiny_model_dir, tile, tmp_path):
    out = tmp_path / "out"
    first = subprocess.Popen(
        [sys.executable, "-m", "plugin", "dataset", "--cells", CELL, "--model", str(tiny_model_dir), "--out", str(out),
         "--condition", f"s2_l2a={tile}:4,3,2", "--generate", "dem", "--steps", "40", "--cell-size-px", "256"],
        cwd=REPO, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        for line in first.stderr:  # the cell is submitted
            if line.startswith("cells 0/1 done"):
                break
        second = _run(tiny_model_dir, out, tile, timeout=60)
        assert second.returncode == 1 and "Traceback" not in second.stderr
        line = second.stderr.strip().splitlines()[-1]
        assert line.startswith("error: --out") and "another dataset run" in line and f"process {first.pid} " in line
        stdout, stderr = first.communicate(timeout=300)
        assert first.returncode == 0, stderr
    finally:
        first.kill()
    assert (out / CELL / "dem.tif").is_file() and not (out / ".dataset.lock").exists()


@pytest.mark.timeout(300)
def test_a_symlinked_cell_folder_is_refused_and_a_failed_cell_leaves_no_folder(tiny_model_dir, tile, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "mine.txt").write_text("mine")
    out = tmp_path / "out"
    out.mkdir()
    (out / CELL).symlink_to(elsewhere)
    result = _run(tiny_model_dir, out, tile)
    assert result.returncode == 1 and f"failed: {CELL}" in result.stderr and "symbolic link" in result.stderr
    assert sorted(p.name for p in elsewhere.iterdir()) == ["mine.txt"]

    # a condition in reflectance (0..1) fails inside the worker, after the cell folder was made
    with rasterio.open(tile) as ds:
        profile, data = ds.profile, ds.read().astype("float32") / 10000
    profile.update(dtype="float32")
    reflectance = tmp_path / "reflectance.tif"
    with rasterio.open(reflectance, "w", **profile) as ds:
        ds.write(data)
    out2 = tmp_path / "out2"
    result = _run(tiny_model_dir, out2, reflectance)
    assert result.returncode == 1 and "reflectance" in result.stderr, result.stderr
    assert not (out2 / CELL).exists()


@pytest.mark.timeout(120)
def test_an_out_that_cannot_be_written_is_named_before_the_cluster(tiny_model_dir, tile, tmp_path):
    if os.geteuid() == 0:
        # root writes anywhere: a read-only mount stands for a read-only folder
        from _faults import small_tmpfs

        with small_tmpfs(tmp_path, 1024) as mount:
            if mount is None or subprocess.run(["mount", "-o", "remount,ro", str(mount)]).returncode:
                pytest.skip("cannot mount a read-only file system here")
            _check_read_only(tiny_model_dir, tile, mount / "out")
    else:
        folder = tmp_path / "ro"
        folder.mkdir(mode=0o555)
        _check_read_only(tiny_model_dir, tile, folder / "out")


def _check_read_only(model, tile, out):
    with ConnectionCounter() as scheduler:
        start = time.monotonic()
        result = _run(model, out, tile, "--scheduler", scheduler.url.replace("http", "tcp"), timeout=60)
        assert result.returncode == 1, result.stderr
        line = result.stderr.strip().splitlines()[-1]
        assert line.startswith("error: --out") and str(out.parent) in line and "Traceback" not in result.stderr
        assert scheduler.count == 0 and time.monotonic() - start < 50


class SilentServer:
    """Accepts TCP connections on 127.0.0.1 and never answers (keeps them open)."""

    def __init__(self):
        import socket
        import threading

        self.count = 0
        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        self._socket.listen(16)
        self._open = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def port(self):
        return self._socket.getsockname()[1]

    def _serve(self):
        while True:
            try:
                connection, _ = self._socket.accept()
            except OSError:
                return
            self.count += 1
            self._open.append(connection)

    def close(self):
        for connection in self._open:
            connection.close()
        self._socket.close()


@pytest.mark.timeout(120)
def test_a_scheduler_that_never_answers_is_reported_in_the_promised_time(tiny_model_dir, tmp_path):
    import re

    server = SilentServer()
    try:
        start = time.monotonic()
        result = dataset("--cells", CELL, "--model", str(tiny_model_dir), "--out", str(tmp_path / "out"), *BASE,
                         "--scheduler", f"tcp://127.0.0.1:{server.port}", timeout=90)
        elapsed = time.monotonic() - start
        assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
        line = result.stderr.strip().splitlines()[-1]
        promised = int(re.search(r"within (\d+) s", line).group(1))
        assert line.startswith("error: --scheduler") and "no Dask scheduler answered" in line
        assert server.count >= 1 and elapsed < promised + 20  # the promise plus the command's start-up
        assert not (tmp_path / "out").exists()
    finally:
        server.close()


@pytest.mark.timeout(60)
def test_a_tls_scheduler_without_tls_settings_is_one_line(tiny_model_dir, tmp_path):
    server = SilentServer()
    try:
        env_free = {k: v for k, v in os.environ.items() if not k.startswith("DASK_")}
        result = subprocess.run(
            [sys.executable, "-m", "plugin", "dataset", "--cells", CELL, "--model", str(tiny_model_dir),
             "--out", str(tmp_path / "out"), *BASE, "--scheduler", f"tls://127.0.0.1:{server.port}"],
            cwd=REPO, capture_output=True, text=True, timeout=50, env={**env_free, "HOME": str(tmp_path)},
        )
        assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
        line = result.stderr.strip().splitlines()[-1]
        assert line.startswith("error: --scheduler") and "TLS settings" in line
        assert server.count == 0
    finally:
        server.close()
