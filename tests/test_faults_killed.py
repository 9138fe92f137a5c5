"""Runs killed with kill -9 leave partial files; the next run writing into the same folder or
model root removes them, and never the partials of a run that is still alive."""

import os
import subprocess
import sys

import pytest
from _faults import run_cli, start_cli, kill9_when, each_test_time_limit  # noqa: F401 (autouse fixture)
from _geo_helpers import S2_TILE

from plugin.engine.atomic import leftover_owner, remove_leftovers, temp_sibling

EXTENT = "400000,4997440,402560,5000000,32633"


def _dead_pid():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _partials(folder):
    return sorted(p.name for p in folder.iterdir() if leftover_owner(p.name) is not None)


def test_leftovers_of_dead_processes_go_and_those_of_live_ones_stay(tmp_path):
    live = temp_sibling(tmp_path / "a.tif")  # this process: alive
    live.write_bytes(b"x")
    dead_pid = _dead_pid()
    dead_file = temp_sibling(tmp_path / "b.tif", ".work.tif")
    dead_file = dead_file.with_name(dead_file.name.replace(f".{os.getpid()}-", f".{dead_pid}-"))
    dead_file.write_bytes(b"x")
    dead_dir = temp_sibling(tmp_path / "model")
    dead_dir = dead_dir.with_name(dead_dir.name.replace(f".{os.getpid()}-", f".{dead_pid}-"))
    (dead_dir / "sub").mkdir(parents=True)
    user = tmp_path / ".notes.partial"  # not ours: not named with a process id
    user.write_text("keep")
    # another machine's (a shared network folder): its processes cannot be judged from here
    other_host = tmp_path / f".c.tif.{dead_pid}-zzzz000000.partial".replace("zzzz", _other_host_tag())
    other_host.write_bytes(b"x")
    removed = remove_leftovers(tmp_path)
    assert sorted(p.name for p in removed) == sorted([dead_file.name, dead_dir.name])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, user.name, other_host.name])


def _other_host_tag():
    from plugin.engine import atomic

    return "0000" if atomic._HOST != "0000" else "ffff"


@pytest.mark.parametrize("command", ["generate", "prepare"])
def test_killed_run_then_a_normal_run_leaves_only_outputs(tmp_path, tiny_model_dir, command):
    out = tmp_path / "out"
    if command == "generate":
        args = ["generate", "--model", tiny_model_dir, "--generate", "dem", "--out", out, "--steps", "400",
                "--device", "cpu", "--extent", EXTENT]
    else:
        args = ["prepare", "--modality", "s2_l2a", "--input", S2_TILE, "--out", out / "r.tif"]
    child = start_cli(args)
    kill9_when(child, lambda: out.is_dir() and _partials(out), "a partial output")
    left = _partials(out)
    assert left and all(leftover_owner(name) == child.pid for name in left)

    # a run of another kind into the same folder cleans up; so does the same command
    result = run_cli(["prepare", "--modality", "s2_l2a", "--input", S2_TILE, "--out", out / "p.tif"], timeout=180)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["p.tif"]


def test_killed_convert_then_a_normal_convert(tmp_path, fixtures_dir):
    out = tmp_path / "models" / "m"
    args = ["convert", "--denoiser", fixtures_dir / "denoiser_tiny.pth", "--vae", fixtures_dir / "vae_tiny.pth",
            "--out", out, "--heads", "2", "--precision", "int8"]
    child = start_cli(args)
    kill9_when(child, lambda: out.parent.is_dir() and _partials(out.parent), "a partial model folder")
    assert _partials(out.parent) and not out.exists()
    result = run_cli(args, timeout=300)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.parent.iterdir()) == ["m"]
    assert _partials(out) == []
