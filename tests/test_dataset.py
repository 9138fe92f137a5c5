"""`dataset` on a real Dask LocalCluster (two worker processes) with the tiny model over four
Major TOM cells whose S2 L2A conditions are the bundled Core tiles placed inside each cell.

Random tiny weights: the checks are about plumbing (seeds, grids, tags, resuming, failures,
the STAC catalog), never image quality. Cells are restricted to their centred 256 px
(--cell-size-px) to keep every run a few seconds.
"""

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine

from plugin.dataset.jobs import ConditionSource, RunOptions, cell_seed, completed, condition_problem, make_jobs
from plugin.dataset.run import run_jobs, start_client
from plugin.dataset.stac import write_catalog
from plugin.dataset.worker import loaded_models, model_folder_status
from plugin.geo.condition_spec import ConditionSpec
from plugin.geo.majortom import cell_named

REPO = Path(__file__).resolve().parents[1]
SIZE = 256
STEPS = 2
GENERATE = ("dem", "s1_rtc")
# cell -> bundled tile whose pixels become its condition (two cells per tile, both in the south)
CELLS = {"282D_485L": "282D_485L_3_3.tif", "282D_484L": "282D_485L_3_3.tif",
         "38D_378R": "38D_378R_2_3.tif", "38D_379R": "38D_378R_2_3.tif"}
TILE_OFFSET_PX = (1068 - 224) // 2  # the 224 px tile centred in the cell's product grid


def place_tile(source, cell_name, path, bands=None):
    """The tile's pixels on ``cell_name``'s product lattice, centred in the cell."""
    crs, transform, _, _ = cell_named(cell_name).product_grid()
    with rasterio.open(source) as ds:
        profile, data = ds.profile, ds.read()
    if bands is not None:
        data = data[:bands]
    profile.update(crs=crs, transform=transform * Affine.translation(TILE_OFFSET_PX, TILE_OFFSET_PX), count=len(data))
    with rasterio.open(path, "w", **profile) as out:
        out.write(data)
    return path


@pytest.fixture(scope="module")
def tiles(shared_dir, tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiles")
    for cell, tile in CELLS.items():
        place_tile(shared_dir / "data" / "majortom_s2l2a" / tile, cell, folder / f"{cell}.tif")
    return folder


@pytest.fixture(scope="module")
def client():
    client, cluster = start_client(workers=2)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


def jobs_for(model_dir, tiles, out, cells=tuple(CELLS), seed=7):
    options = RunOptions(model_dir=str(model_dir), generate=GENERATE, seed=seed, steps=STEPS, threads=1, cell_size_px=SIZE)
    source = ConditionSource(ConditionSpec("s2_l2a", str(tiles / "{cell}.tif"), bands=(4, 3, 2)))
    return make_jobs([cell_named(name) for name in cells], [source], options, out)


def model_on(jobs):
    """The model folder as a worker of these jobs sees it."""
    problem, model = model_folder_status(jobs[0].options)
    assert problem is None
    return model


def mtimes(out):
    return {path: path.stat().st_mtime_ns for path in sorted(Path(out).glob("*/*.tif"))}


@pytest.mark.timeout(300)
def test_cluster_run_survives_a_killed_worker_then_resumes_by_tags(client, tiny_model_dir, tiles, tmp_path):
    out = tmp_path / "out"
    jobs = jobs_for(tiny_model_dir, tiles, out)
    info = model_on(jobs)
    killed = []

    def kill_a_busy_worker(report, eta):
        """Right after submitting: SIGKILL a worker as soon as one holds a cell."""
        deadline = time.monotonic() + 10
        while not killed and time.monotonic() < deadline:
            busy = [worker for worker, keys in client.processing().items() if keys]
            if busy:
                pid = client.run(os.getpid, workers=busy[:1])[busy[0]]
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            time.sleep(0.05)

    report = run_jobs(client, jobs, info, progress=kill_a_busy_worker, precheck=condition_problem)
    assert killed, "a worker was busy when the first cell finished"
    assert sorted(job.cell for job in report.done) == sorted(CELLS) and not report.failed
    assert all(completed(job, info) for job in jobs)
    # each surviving worker process loaded the model once and kept it
    assert all(count <= 1 for count in client.run(loaded_models).values())

    # a rerun recomputes nothing
    before = mtimes(out)
    rerun = run_jobs(client, jobs, info, precheck=condition_problem)
    assert len(rerun.skipped) == 4 and not rerun.done and not rerun.failed and mtimes(out) == before

    # completeness is checked by tags: an output from another seed is redone, nothing else
    tampered = out / "38D_379R" / "dem.tif"
    with rasterio.open(tampered, "r+") as ds:
        ds.update_tags(seed="12345")
    rerun = run_jobs(client, jobs, info, precheck=condition_problem)
    assert [job.cell for job in rerun.done] == ["38D_379R"] and len(rerun.skipped) == 3
    with rasterio.open(tampered) as ds:
        assert ds.tags()["seed"] == str(cell_seed(7, "38D_379R"))
        assert ds.tags()["tiling"] == jobs[0].options.tiling_spec  # the engine's default, spelled out

    # ... and by the tiling: the same cells with another tiling are not done yet
    retiled = [replace(job, options=replace(job.options, tiling="overlap:8")) for job in jobs]
    assert all(completed(job, info) for job in jobs) and not any(completed(job, info) for job in retiled)


@pytest.mark.timeout(300)
def test_cells_equal_single_generate_runs_with_the_derived_seed(client, tiny_model_dir, tiles, tmp_path):
    out = tmp_path / "out"
    names = ("282D_484L", "38D_378R")
    jobs = jobs_for(tiny_model_dir, tiles, out, cells=names)
    report = run_jobs(client, jobs, model_on(jobs))
    assert len(report.done) == 2
    for name in names:
        cell = cell_named(name)
        seed = cell_seed(7, name)
        single = tmp_path / f"single_{name}"
        extent = ",".join(repr(v) for v in cell.product_bounds(SIZE)) + f",{cell.epsg}"
        result = subprocess.run(
            [sys.executable, "-m", "plugin", "generate", "--model", str(tiny_model_dir), "--generate", ",".join(GENERATE),
             "--condition", f"s2_l2a={tiles / f'{name}.tif'}:4,3,2", f"--extent={extent}", "--seed", str(seed),
             "--steps", str(STEPS), "--out", str(single)],
            cwd=REPO, capture_output=True, text=True, timeout=120,
        )
        assert result.returncode == 0, result.stderr
        for modality in GENERATE:
            with rasterio.open(out / name / f"{modality}.tif") as a, rasterio.open(single / f"copgen_seed{seed}_{modality}.tif") as b:
                assert (a.crs, a.transform, a.shape) == (b.crs, b.transform, b.shape) == (cell.crs, a.transform, (SIZE, SIZE))
                assert a.read().tobytes() == b.read().tobytes()
                ignored = {"run_date_utc"}
                assert {k: v for k, v in a.tags().items() if k not in ignored} == {
                    k: v for k, v in b.tags().items() if k not in ignored}
                assert a.transform.almost_equals(Affine(*cell.product_grid(SIZE)[1][:6]), precision=1e-6)


@pytest.mark.timeout(300)
def test_a_cell_with_broken_input_fails_alone_and_named(client, tiny_model_dir, tiles, shared_dir, tmp_path):
    out = tmp_path / "out"
    # 0U_0R's condition has 2 bands where 4,3,2 are asked for: it fails on the worker
    place_tile(shared_dir / "data" / "majortom_s2l2a" / CELLS["38D_378R"], "0U_0R", tiles / "0U_0R.tif", bands=2)
    # 1D_0R's condition is not a raster at all: found before submitting
    (tiles / "1D_0R.tif").write_bytes(b"not a tiff")
    jobs = jobs_for(tiny_model_dir, tiles, out, cells=("282D_485L", "0U_0R", "1D_0R", "38D_379R"))
    report = run_jobs(client, jobs, model_on(jobs), precheck=condition_problem)
    assert sorted(job.cell for job in report.done) == ["282D_485L", "38D_379R"]
    failures = {result.cell: result.message for result in report.failed}
    assert sorted(failures) == ["0U_0R", "1D_0R"]
    assert "0U_0R.tif" in failures["0U_0R"] and "band" in failures["0U_0R"]
    assert "1D_0R.tif" in failures["1D_0R"] and "cannot read raster" in failures["1D_0R"]
    assert not (out / "1D_0R").exists() and not list((out / "0U_0R").glob("*.tif"))


# A schema of our own for the projection extension's Item fields (from its documented field
# table): pystac packages the core STAC schemas but fetches extension schemas over HTTP.
PROJECTION_SCHEMA = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "required": ["properties"],
    "properties": {"properties": {
        "type": "object",
        "required": ["proj:code", "proj:shape", "proj:transform"],
        "properties": {
            "proj:code": {"type": ["string", "null"], "pattern": "^EPSG:[0-9]+$"},
            "proj:shape": {"type": "array", "minItems": 2, "maxItems": 2, "items": {"type": "integer", "minimum": 1}},
            "proj:transform": {"type": "array", "oneOf": [{"minItems": 6, "maxItems": 6}, {"minItems": 9, "maxItems": 9}],
                               "items": {"type": "number"}},
            "proj:bbox": {"type": "array", "minItems": 4, "maxItems": 4, "items": {"type": "number"}},
        },
    }},
}


@pytest.mark.timeout(300)
def test_stac_catalog_validates_offline_and_points_at_the_files(client, tiny_model_dir, tiles, tmp_path, monkeypatch):
    import pystac
    from pystac.extensions.projection import ProjectionExtension
    from pystac.validation import JsonSchemaSTACValidator, set_validator

    out = tmp_path / "out"
    jobs = jobs_for(tiny_model_dir, tiles, out, cells=("282D_485L", "38D_378R"))
    info = model_on(jobs)
    assert len(run_jobs(client, jobs, info).done) == 2
    path = write_catalog(out, jobs, info, run_id="test")

    # the folder moves: every link is relative
    moved = tmp_path / "moved"
    out.rename(moved)
    validator = JsonSchemaSTACValidator()
    validator.schema_cache[ProjectionExtension.get_schema_uri()] = PROJECTION_SCHEMA

    local_read = pystac.stac_io.DefaultStacIO.read_text_from_href

    def local_only(self, href, *args, **kwargs):
        assert not str(href).startswith("http"), f"validation tried to fetch {href}"
        return local_read(self, href, *args, **kwargs)

    monkeypatch.setattr(pystac.stac_io.DefaultStacIO, "read_text_from_href", local_only)
    set_validator(validator)
    try:
        collection = pystac.Collection.from_file(str(moved / path.name))
        collection.validate_all()
    finally:
        set_validator(JsonSchemaSTACValidator())
    assert collection.extra_fields["copgen:synthetic"] is True
    items = {item.id: item for item in collection.get_items()}
    assert sorted(items) == ["282D_485L", "38D_378R"]
    for job in jobs:
        item = items[job.cell]
        projection = ProjectionExtension.ext(item)
        cell = cell_named(job.cell)
        assert projection.code == f"EPSG:{cell.epsg}" and projection.shape == [SIZE, SIZE]
        assert item.properties["copgen:synthetic"] is True and item.properties["copgen:seed"] == job.seed
        assert item.properties["copgen:steps"] == STEPS and item.properties["copgen:denoiser_sha256"]
        assert item.properties["copgen:tiling"] == job.options.tiling_spec
        assert (item.properties["copgen:precision"], item.properties["copgen:graph_precision"]) == ("faithful", "fp32")
        for modality in GENERATE:
            asset = item.assets[modality]
            assert not Path(asset.href).is_absolute() or asset.href.startswith(str(moved))
            target = Path(asset.get_absolute_href())
            assert target == moved / job.cell / f"{modality}.tif" and target.is_file()
            with rasterio.open(target) as ds:
                assert list(ds.transform)[:6] == pytest.approx(projection.transform)
    raw = json.loads((moved / "282D_485L" / "282D_485L.json").read_text())
    assert all(not link["href"].startswith("/") for link in raw["links"])
    assert all(asset["href"].startswith("./") for asset in raw["assets"].values())


def test_cell_seeds_depend_only_on_the_run_seed_and_the_cell():
    # pinned: changing the derivation would silently change every published dataset
    assert cell_seed(7, "282D_485L") == 6221747084545610
    assert len({cell_seed(seed, name) for seed in (0, 1, 7) for name in CELLS}) == 3 * len(CELLS)
    assert all(0 <= cell_seed(seed, name) < 2 ** 53 for seed in (0, 2 ** 40) for name in CELLS)


def _visible_devices():
    return os.environ.get("CUDA_VISIBLE_DEVICES")


@pytest.mark.timeout(120)
def test_one_local_worker_per_gpu_each_pinned_to_its_gpu(monkeypatch):
    from plugin.dataset.run import visible_gpus

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,5")
    assert visible_gpus() == ["2", "5"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")
    assert visible_gpus() == []
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    gpu_client, gpu_cluster = start_client(gpus=["2", "5"])
    try:
        gpu_client.wait_for_workers(2, timeout=60)
        assert sorted(gpu_client.run(_visible_devices).values()) == ["2", "5"]
    finally:
        gpu_client.close()
        gpu_cluster.close()


def test_a_cell_failure_keeps_its_field_for_the_faces_words():
    from plugin.commands.flags import describe
    from plugin.dataset.worker import CellResult

    failure = CellResult("0U_0R", False, "names 4 bands, the raster has 2", field="conditions.s2_l2a.bands")
    assert describe(failure.error()) == "--condition s2_l2a=FILE:BANDS: names 4 bands, the raster has 2"
    assert describe(CellResult("0U_0R", False, "tiles/0U_0R.tif: cannot read raster").error()) == (
        "tiles/0U_0R.tif: cannot read raster")


@pytest.mark.timeout(120)
def test_a_cell_never_writes_over_its_condition(tiny_model_dir, tiles, tmp_path):
    """A condition pattern that lands on one of the cell's own outputs (OUT/<cell>/dem.tif read
    as S2) fails that cell, named, and leaves the condition as it was."""
    from plugin.dataset.worker import run_cell

    out = tmp_path / "out"
    (out / "282D_484L").mkdir(parents=True)
    condition = out / "282D_484L" / "dem.tif"
    condition.write_bytes((tiles / "282D_484L.tif").read_bytes())
    before = condition.read_bytes()
    options = RunOptions(model_dir=str(tiny_model_dir), generate=GENERATE, seed=7, steps=STEPS, threads=1,
                         cell_size_px=SIZE)
    source = ConditionSource(ConditionSpec("s2_l2a", str(out / "{cell}" / "dem.tif"), bands=(4, 3, 2)))
    [job] = make_jobs([cell_named("282D_484L")], [source], options, out)
    result = run_cell(job)
    assert not result.ok and "dem.tif is the input" in result.message
    assert condition.read_bytes() == before
    assert sorted(p.name for p in (out / "282D_484L").iterdir()) == ["dem.tif"]


def test_an_auto_s2_offset_is_read_from_each_cell_s_own_product(tmp_path):
    """s2_offset "auto" with a {cell} pattern: the pattern names no product, so each cell's file
    decides (a baseline 04.00 product gets 1000, an older one 0), not the pattern."""
    from test_s2_offset import product

    product(tmp_path / "282D_484L.tif", {"PROCESSING_BASELINE": "04.00"})
    product(tmp_path / "282D_485L.tif", {"PROCESSING_BASELINE": "03.01"})
    source = ConditionSource(ConditionSpec("s2_l2a", str(tmp_path / "{cell}.tif"), s2_offset="auto"))
    assert source.for_cell("282D_484L").s2_offset == 1000
    assert source.for_cell("282D_485L").s2_offset == 0
    fixed = ConditionSource(ConditionSpec("s2_l2a", str(tmp_path / "{cell}.tif"), s2_offset=0))
    assert fixed.for_cell("282D_484L").s2_offset == 0  # a number the user gave stays
