"""A full disk and failed writes: non-zero exit, one line saying so and naming the path, nothing
left behind. A real full disk is a small tmpfs (root); elsewhere ENOSPC is injected."""

import errno
import json

import numpy as np
import pytest
from _faults import error_line, run_cli, small_tmpfs, time_limit, each_test_time_limit  # noqa: F401 (autouse fixture)
from _geo_helpers import S2_TILE
from osgeo import gdal

from plugin.engine import atomic
from plugin.engine.atomic import WriteError, atomic_path, write_json_atomic
from plugin.geo import output
from plugin.geo.grid import TargetGrid
from plugin.geo.output import OutputWriter

# 150 KB: room for the 256 x 256 temporary GeoTIFF, not for the COG made from it as well
FULL_KB = 150


def test_prepare_on_a_full_disk_says_so_and_leaves_nothing(tmp_path):
    with small_tmpfs(tmp_path, FULL_KB) as disk:
        if disk is None:
            pytest.skip("cannot mount a tmpfs here; test_injected_enospc_* cover the writer")
        out = disk / "renderings" / "s2.tif"
        result = run_cli(["prepare", "--modality", "s2_l2a", "--input", S2_TILE, "--out", out], timeout=120)
        assert result.returncode == 1
        line = error_line(result)
        assert "disk full" in line and str(out) in line
        assert list(disk.iterdir()) == []


def test_generate_on_a_full_disk_says_so_and_leaves_nothing(tmp_path, tiny_model_dir):
    with small_tmpfs(tmp_path, FULL_KB) as disk:
        if disk is None:
            pytest.skip("cannot mount a tmpfs here; test_injected_enospc_* cover the writer")
        out = disk / "out"
        result = run_cli(
            ["generate", "--model", tiny_model_dir, "--generate", "dem", "--out", out, "--steps", "1",
             "--device", "cpu", "--extent", "400000,4997440,402560,5000000,32633"],
            timeout=300,
        )
        assert result.returncode == 1, result.stderr
        line = error_line(result)
        assert "disk full" in line and "copgen_seed0_dem.tif" in line
        assert list(disk.iterdir()) == []


def test_prepare_with_room_writes_a_readable_cog(tmp_path):
    with small_tmpfs(tmp_path, 1024) as disk:
        if disk is None:
            pytest.skip("cannot mount a tmpfs here")
        out = disk / "s2.tif"
        result = run_cli(["prepare", "--modality", "s2_l2a", "--input", S2_TILE, "--out", out], timeout=120)
        assert result.returncode == 0, result.stderr
        assert [p.name for p in disk.iterdir()] == ["s2.tif"]
        assert gdal.Open(str(out)).GetRasterBand(1).Checksum() > 0


def test_injected_enospc_in_an_atomic_write_is_one_line_and_leaves_nothing(tmp_path):
    target = tmp_path / "out" / "record.json"
    with time_limit(30), pytest.raises(WriteError) as caught:
        with atomic_path(target) as temp:
            temp.write_bytes(b"partial")
            raise OSError(errno.ENOSPC, "No space left on device")
    assert str(caught.value).startswith(f"disk full: cannot write {target}")
    assert list(target.parent.iterdir()) == []


def test_injected_enospc_in_json_dump(tmp_path, monkeypatch):
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    target = tmp_path / "known_hashes.json"
    target.write_text('{"old": 1}')
    monkeypatch.setattr(atomic.json, "dump", full)
    with pytest.raises(WriteError, match="disk full"):
        write_json_atomic(target, {"new": 2})
    assert json.loads(target.read_text()) == {"old": 1}  # the previous file is untouched
    assert [p.name for p in tmp_path.iterdir()] == ["known_hashes.json"]


def _grid():
    return TargetGrid.from_raster(S2_TILE)


def test_gdal_error_at_cog_close_is_caught_and_nothing_is_left(tmp_path, monkeypatch):
    """GDAL reports a failed flush only through its error handler: the writer must see it."""
    real = gdal.Translate

    def failing(destination, source, **kwargs):
        result = real(destination, source, **kwargs)
        gdal.Error(gdal.CE_Failure, gdal.CPLE_FileIO, f"{destination}: No space left on device")
        return result

    monkeypatch.setattr(output.gdal, "Translate", failing)
    target = tmp_path / "x.tif"
    with pytest.raises(WriteError, match=f"disk full: cannot write {target}"):
        with OutputWriter(target, _grid(), "dem") as writer:
            writer.write_window(0, 0, np.full((3, 256, 256), 7, np.uint8))
    assert list(tmp_path.iterdir()) == []


def test_a_cog_that_cannot_be_read_back_is_never_renamed_into_place(tmp_path, monkeypatch):
    real = gdal.Translate

    def truncating(destination, source, **kwargs):
        result = real(destination, source, **kwargs)
        result = None  # closes it
        with open(destination, "r+b") as handle:
            handle.truncate(4000)
        return gdal.Open(destination)

    monkeypatch.setattr(output.gdal, "Translate", truncating)
    target = tmp_path / "x.tif"
    with pytest.raises(WriteError, match=f"cannot write {target}"):
        with OutputWriter(target, _grid(), "dem") as writer:
            writer.write_window(0, 0, np.random.default_rng(0).integers(0, 255, (3, 256, 256), dtype=np.uint8))
    assert list(tmp_path.iterdir()) == []
