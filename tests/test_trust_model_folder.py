"""A model folder is a closed world: a model.json pointing at files outside its folder is refused
in one line, and nothing outside is run, hashed or printed. Every file of a folder shares a mode."""

import json
import shutil
import stat

import numpy as np
import pytest
from _faults import error_line, run_cli

from plugin.engine.model_folder import sha256_file

SECRET = b"TOP-SECRET-MODEL-" * 64


def _installed_copy(tmp_path, tiny_model_dir):
    root = tmp_path / "models"
    shutil.copytree(tiny_model_dir, root / "cop-gen-beta")
    return root, root / "cop-gen-beta"


def _edit_info(folder, change):
    path = folder / "model.json"
    info = json.loads(path.read_text())
    change(info)
    path.write_text(json.dumps(info))


@pytest.mark.timeout(180)
def test_files_entries_outside_the_folder_are_neither_hashed_nor_printed(tmp_path, tiny_model_dir):
    secret = tmp_path / "secret.bin"
    secret.write_bytes(SECRET)
    digest = sha256_file(secret)
    root, folder = _installed_copy(tmp_path, tiny_model_dir)
    for name in ("../../secret.bin", str(secret)):
        _edit_info(folder, lambda info: info["files"].update({name: {"sha256": "0" * 64, "bytes": len(SECRET)}}))
        result = run_cli(["models", "verify", "--model-dir", root], timeout=120)
        assert result.returncode == 1
        line = error_line(result)
        assert "model.json" in line and name in line and "outside the model folder" in line
        assert digest not in result.stdout + result.stderr and "TOP-SECRET" not in result.stdout + result.stderr
        _edit_info(folder, lambda info: info["files"].pop(name))


@pytest.mark.timeout(240)
def test_an_int8_graph_outside_the_folder_is_never_run(tmp_path, tiny_model_dir):
    _, folder = _installed_copy(tmp_path, tiny_model_dir)
    # a working graph outside the folder (the folder's own denoiser, copied out)
    outside = tmp_path / "elsewhere" / "denoiser.onnx"
    outside.parent.mkdir()
    shutil.copy(folder / "denoiser.onnx", outside)
    if (folder / "denoiser.onnx.data").exists():
        shutil.copy(folder / "denoiser.onnx.data", outside.parent)
    _edit_info(folder, lambda info: info.update({"int8": {**info.get("int8", {}), "file": "../elsewhere/denoiser.onnx"}}))
    condition = tmp_path / "dem.tif"
    from _geo_helpers import write_raster

    write_raster(condition, np.random.default_rng(0).uniform(0, 500, (64, 64)).astype(np.float32))
    out = tmp_path / "out"
    result = run_cli(["generate", "--model", folder, "--generate", "s1_rtc", "--condition", f"dem={condition}",
                      "--out", out, "--steps", "1", "--device", "cpu", "--precision", "fast"], timeout=180)
    assert result.returncode == 1
    line = error_line(result)
    assert "int8.file" in line and "../elsewhere/denoiser.onnx" in line and "outside the model folder" in line
    assert not out.exists() or not any(out.iterdir())


@pytest.mark.timeout(600)
def test_every_file_of_an_int8_folder_has_the_same_mode(tmp_path):
    from conftest import FIXTURES, TINY_HEADS

    out = tmp_path / "model"
    result = run_cli(["convert", "--denoiser", FIXTURES / "denoiser_tiny.pth", "--vae", FIXTURES / "vae_tiny.pth",
                      "--out", out, "--heads", TINY_HEADS, "--precision", "int8"], timeout=540)
    assert result.returncode == 0, result.stderr
    modes = {path.name: stat.S_IMODE(path.stat().st_mode) for path in out.iterdir()}
    assert "denoiser.int8.onnx" in modes and len(set(modes.values())) == 1, modes


@pytest.mark.timeout(600)
def test_convert_over_a_model_folder_leaves_the_users_other_files(tmp_path):
    from conftest import FIXTURES, TINY_HEADS

    out = tmp_path / "model"

    def convert(precision):
        return run_cli(["convert", "--denoiser", FIXTURES / "denoiser_tiny.pth", "--vae", FIXTURES / "vae_tiny.pth",
                        "--out", out, "--heads", TINY_HEADS, "--precision", precision], timeout=280)

    assert convert("fp32").returncode == 0
    (out / "notes.txt").write_text("mine")
    (out / "runs").mkdir()
    (out / "runs" / "log.txt").write_text("mine too")
    result = convert("fp16")  # a different conversion: the model files are replaced
    assert result.returncode == 0, result.stderr
    assert json.loads((out / "model.json").read_text())["precision"] == "fp16"
    assert (out / "notes.txt").read_text() == "mine" and (out / "runs" / "log.txt").read_text() == "mine too"
    # a folder that is no model folder is refused, untouched
    other = tmp_path / "photos"
    other.mkdir()
    (other / "a.jpg").write_bytes(b"jpeg")
    result = run_cli(["convert", "--denoiser", FIXTURES / "denoiser_tiny.pth", "--vae", FIXTURES / "vae_tiny.pth",
                      "--out", other, "--heads", TINY_HEADS], timeout=280)
    assert result.returncode == 1 and "not a converted model folder" in error_line(result)
    assert [p.name for p in other.iterdir()] == ["a.jpg"]
