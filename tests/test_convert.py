"""convert(): the model folder, its model.json, the no-op re-run, atomic failure, the CLI."""

import hashlib
import json
import logging
import os

import numpy as np
import onnx
import pytest

from plugin import __version__
from plugin.cli import main
from plugin.engine.checkpoint import load_state_dict
from checkpoint_write import save_pth
from plugin.engine.families.beta import convert as beta_convert_module
from plugin.engine.convert import convert
from plugin.engine.errors import CheckpointError, InputError
from plugin.engine.families.beta.registry import MODALITIES, VAE_SCALE

ONNX_FILES = {"denoiser.onnx", "denoiser.onnx.data", "vae_encoder.onnx", "vae_decoder.onnx"}


def sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_info(model_dir):
    return json.loads((model_dir / "model.json").read_text())


def tiny_convert(fixtures_dir, out, denoiser=None, vae=None, **options):
    return convert(
        denoiser or fixtures_dir / "denoiser_tiny.pth",
        vae or fixtures_dir / "vae_tiny.pth",
        out,
        heads=options.pop("heads", 2),
        **options,
    )


@pytest.fixture
def broken_denoiser(fixtures_dir, tmp_path):
    """Writes a copy of the tiny denoiser with one weight removed or reshaped."""

    def write(drop=None, reshape=None):
        state = dict(load_state_dict(fixtures_dir / "denoiser_tiny.pth"))
        if drop:
            del state[drop]
        if reshape:
            state[reshape] = np.zeros((7,), np.float32)
        path = tmp_path / "broken_denoiser.pth"
        save_pth(state, path)
        return path

    return write


def test_folder_holds_model_json_and_onnx_files(tiny_model_dir):
    assert {p.name for p in tiny_model_dir.iterdir()} == ONNX_FILES | {"model.json"}
    assert not [p for p in tiny_model_dir.parent.iterdir() if p != tiny_model_dir]


def test_model_json_describes_model_and_hashes(tiny_model_dir, fixtures_dir):
    info = read_info(tiny_model_dir)
    assert info["modalities"] == list(MODALITIES)
    assert info["latent_shape"] == [4, 32, 32]
    assert info["scale_factor"] == VAE_SCALE
    assert info["num_heads"] == 2
    assert info["precision"] == "fp32"
    assert info["schedule"]["beta_schedule"] == "scaled_linear"
    assert info["software"]["version"] == __version__
    assert info["sources"]["denoiser"]["sha256"] == sha256(fixtures_dir / "denoiser_tiny.pth")
    assert info["sources"]["vae"]["sha256"] == sha256(fixtures_dir / "vae_tiny.pth")
    assert set(info["files"]) == ONNX_FILES
    for name, entry in info["files"].items():
        assert entry["sha256"] == sha256(tiny_model_dir / name), name
        assert entry["bytes"] == (tiny_model_dir / name).stat().st_size


def test_onnx_metadata_carries_essentials(tiny_model_dir_fp16):
    info = read_info(tiny_model_dir_fp16)
    for name in ("denoiser.onnx", "vae_encoder.onnx", "vae_decoder.onnx"):
        model = onnx.load(str(tiny_model_dir_fp16 / name), load_external_data=False)
        props = {p.key: json.loads(p.value) for p in model.metadata_props}
        for key in ("name", "modalities", "latent_shape", "scale_factor", "num_heads", "precision"):
            assert props[key] == info[key], (name, key)
        assert props["precision"] == "fp16"
        assert props["software_version"] == __version__


def test_rerun_with_same_inputs_is_a_no_op(fixtures_dir, tmp_path, caplog):
    out = tiny_convert(fixtures_dir, tmp_path / "model")
    stamps = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    messages = []
    with caplog.at_level(logging.INFO, logger="plugin.engine.convert"):
        again = tiny_convert(fixtures_dir, out, progress=lambda d, t, m: messages.append(m))
    assert again == out
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == stamps
    assert "already converted" in messages[-1]
    assert "already converted" in caplog.text


def test_changed_options_reconvert_in_place(fixtures_dir, tmp_path):
    out = tiny_convert(fixtures_dir, tmp_path / "model")
    tiny_convert(fixtures_dir, out, precision="fp16")
    assert read_info(out)["precision"] == "fp16"
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


def test_missing_key_fails_and_leaves_no_folder(fixtures_dir, tmp_path, broken_denoiser):
    path = broken_denoiser(drop="mid_block.attn.proj.bias")
    wanted = r"broken_denoiser\.pth.*'mid_block\.attn\.proj\.bias'"
    with pytest.raises(CheckpointError, match=wanted):
        tiny_convert(fixtures_dir, tmp_path / "out" / "model", denoiser=path)
    assert list((tmp_path / "out").iterdir()) == []


def test_wrong_shape_is_named(fixtures_dir, tmp_path, broken_denoiser):
    path = broken_denoiser(reshape="norm.bias")
    with pytest.raises(CheckpointError, match=r"broken_denoiser\.pth.*'norm\.bias'.*\(7,\)"):
        tiny_convert(fixtures_dir, tmp_path / "model", denoiser=path)
    assert not (tmp_path / "model").exists()


def test_bad_vae_keeps_previous_folder(fixtures_dir, tmp_path):
    out = tiny_convert(fixtures_dir, tmp_path / "out" / "model")
    before = {p.name: sha256(p) for p in out.iterdir()}
    truncated = tmp_path / "truncated_vae.pth"
    truncated.write_bytes((fixtures_dir / "vae_tiny.pth").read_bytes()[:100_000])
    with pytest.raises(CheckpointError, match="truncated_vae.pth"):
        tiny_convert(fixtures_dir, out, vae=truncated)
    assert {p.name: sha256(p) for p in out.iterdir()} == before
    assert [p.name for p in out.parent.iterdir()] == ["model"]


def test_interrupt_after_first_graphs_leaves_nothing(fixtures_dir, tmp_path, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(beta_convert_module, "build_denoiser", interrupted)
    with pytest.raises(KeyboardInterrupt):
        tiny_convert(fixtures_dir, tmp_path / "model")
    assert list(tmp_path.iterdir()) == []


def test_refuses_to_replace_other_files(fixtures_dir, tmp_path):
    keep = tmp_path / "notes.txt"
    keep.write_text("mine")
    with pytest.raises(InputError, match="not a converted model folder"):
        tiny_convert(fixtures_dir, tmp_path)
    assert keep.read_text() == "mine"


@pytest.mark.parametrize(
    "options, culprit", [({"precision": "int4"}, "precision"), ({"heads": 0}, "heads")]
)
def test_bad_options_are_named(fixtures_dir, tmp_path, options, culprit):
    with pytest.raises(InputError, match=culprit):
        tiny_convert(fixtures_dir, tmp_path / "model", **options)
    assert not (tmp_path / "model").exists()


def test_cli_converts_and_reports_errors(fixtures_dir, tmp_path, capsys):
    args = ["convert", "--denoiser", str(fixtures_dir / "denoiser_tiny.pth"),
            "--vae", str(fixtures_dir / "vae_tiny.pth"), "--heads", "2"]
    out = tmp_path / "model"
    assert main(args + ["--out", str(out), "--precision", "fp16"]) == 0
    assert capsys.readouterr().out.strip() == os.fspath(out)
    assert read_info(out)["precision"] == "fp16"

    args[2] = str(fixtures_dir / "vae_tiny.pth")  # a VAE where the denoiser belongs
    assert main(args + ["--out", str(tmp_path / "other")]) == 1
    assert "vae_tiny.pth" in capsys.readouterr().err
    assert not (tmp_path / "other").exists()

    args[2] = str(fixtures_dir / "denoiser_tiny.pth")
    assert main(args[:-1] + ["3", "--out", str(tmp_path / "other")]) == 1  # 3 does not divide the width 32
    assert capsys.readouterr().err.splitlines()[-1].startswith("error: --heads: 3 heads: must be a positive divisor")
    assert not (tmp_path / "other").exists()


def test_converted_folder_has_ordinary_permissions(tiny_model_dir):
    import os
    import stat

    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(tiny_model_dir.stat().st_mode) == 0o777 & ~umask
    for entry in tiny_model_dir.iterdir():
        assert stat.S_IMODE(entry.stat().st_mode) == 0o666 & ~umask, entry.name
