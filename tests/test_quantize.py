"""The int8 denoiser (plugin.engine.quantize) and the fp16 graphs against fp32, tiny model."""

import hashlib
import json
import shutil

import numpy as np
import onnx
import pytest
from fast_choice import keep_int8_chosen

from plugin.engine import load
from plugin.engine.convert import convert
from plugin.engine.errors import ModelError
from plugin.engine.families.beta.registry import MODALITIES
from plugin.engine.quantize import INT8_DATA_FILE, INT8_FILE, quantize_model, reduced_range_for

TINY_HEADS = 2


def rms_relative(actual, reference):
    return float(np.sqrt(np.mean((actual - reference) ** 2) / np.mean(reference**2)))


def max_relative(actual, reference):
    return float(np.abs(actual - reference).max() / reference.std())


def read_info(model_dir):
    return json.loads((model_dir / "model.json").read_text())


@pytest.fixture(scope="module")
def int8_dir(fixtures_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny_int8") / "model"
    return convert(
        fixtures_dir / "denoiser_tiny.pth",
        fixtures_dir / "vae_tiny.pth",
        out,
        heads=TINY_HEADS,
        precision="int8",
    )


@pytest.fixture(scope="module")
def models(int8_dir, tiny_model_dir_fp16):
    return {
        "fp32": load(int8_dir, device="cpu"),
        "int8": load(keep_int8_chosen(int8_dir), device="cpu", preference="fast"),
        "fp16": load(tiny_model_dir_fp16, device="cpu"),
    }


@pytest.fixture(scope="module")
def samples(models, expected):
    """50-step joint samples of every precision from the fixture's x_T: [4, B, 4, 32, 32]."""
    out = {}
    for name, model in models.items():
        result = model.sample(list(MODALITIES), x_T=expected["joint_x_T"], steps=50)
        out[name] = np.stack([result[key] for key in MODALITIES])
    return out


def test_int8_folder_records_its_files(int8_dir):
    info = read_info(int8_dir)
    assert info["precision"] == "fp32"
    assert info["int8"]["file"] == INT8_FILE
    for name in (INT8_FILE, INT8_DATA_FILE, "denoiser.onnx"):
        data = (int8_dir / name).read_bytes()
        assert info["files"][name] == {
            "sha256": hashlib.sha256(data).hexdigest(),
            "bytes": len(data),
        }


def test_every_weight_matmul_is_quantized(int8_dir):
    fp32 = onnx.load(str(int8_dir / "denoiser.onnx"), load_external_data=False).graph
    int8 = onnx.load(str(int8_dir / INT8_FILE), load_external_data=False).graph
    matrices = {t.name for t in fp32.initializer if len(t.dims) == 2}
    weight_matmuls = [n for n in fp32.node if n.op_type == "MatMul" and n.input[1] in matrices]
    assert read_info(int8_dir)["int8"]["quantized_matmuls"] == len(weight_matmuls)

    int8_weights = {t.name for t in int8.initializer if t.data_type == onnx.TensorProto.INT8}
    quantized = [n for n in int8.node if n.op_type == "MatMulInteger"]
    assert len(quantized) == len(weight_matmuls)
    assert all(n.input[1] in int8_weights for n in quantized)
    assert not [n for n in int8.node if n.op_type == "MatMul" and n.input[1] in matrices]


def test_int8_noise_prediction_error_is_bounded(models, expected):
    latents, timesteps = expected["denoiser_latents"], expected["denoiser_timesteps"]
    fp32 = models["fp32"].denoise(latents, timesteps)
    int8 = models["int8"].denoise(latents, timesteps)
    # measured on onnxruntime 1.31: 0.0069 RMS and 0.035 max (of the std)
    assert 0 < rms_relative(int8, fp32) <= 0.02
    assert max_relative(int8, fp32) <= 0.1


def test_fp16_noise_prediction_error_is_bounded(models, expected):
    latents, timesteps = expected["denoiser_latents"], expected["denoiser_timesteps"]
    fp32 = models["fp32"].denoise(latents, timesteps)
    fp16 = models["fp16"].denoise(latents, timesteps)
    # measured: 0.00067 RMS and 0.0032 max
    assert 0 < rms_relative(fp16, fp32) <= 0.003
    assert max_relative(fp16, fp32) <= 0.015


def test_fp32_folder_of_int8_conversion_stays_faithful(samples, expected):
    assert max_relative(samples["fp32"], expected["joint_out"]) <= 1e-3


def test_int8_and_fp16_samples_stay_close_to_fp32(samples):
    # 50 steps from the same x_T; measured RMS: int8 0.0006, fp16 0.00008 of the std
    assert 0 < rms_relative(samples["int8"], samples["fp32"]) <= 0.003
    assert 0 < rms_relative(samples["fp16"], samples["fp32"]) <= 0.0005


def test_default_precision_is_the_fp32_graph(int8_dir, expected):
    model = load(int8_dir, device="cpu")
    noise = model.denoise(expected["denoiser_latents"], expected["denoiser_timesteps"])
    assert max_relative(noise, expected["denoiser_out"]) <= 1e-4


def test_quantize_model_adds_int8_to_an_fp32_folder(
    tiny_model_dir, int8_dir, tmp_path, fixtures_dir, caplog
):
    folder = tmp_path / "model"
    shutil.copytree(tiny_model_dir, folder)
    quantize_model(folder, per_channel=False)
    assert "pre-processing" not in caplog.text  # onnxruntime's advice, which users cannot act on
    path = quantize_model(folder)  # replaces the per-tensor graph
    assert path == folder / INT8_FILE
    info = read_info(folder)
    assert info["int8"] == read_info(int8_dir)["int8"]
    assert {p.name for p in folder.iterdir()} == set(info["files"]) | {"model.json"}
    # the same bytes as converting with --precision int8, and convert sees it as up to date
    assert (folder / INT8_DATA_FILE).read_bytes() == (int8_dir / INT8_DATA_FILE).read_bytes()
    before = (folder / "model.json").stat().st_mtime_ns
    convert(
        fixtures_dir / "denoiser_tiny.pth",
        fixtures_dir / "vae_tiny.pth",
        folder,
        heads=TINY_HEADS,
        precision="int8",
    )
    assert (folder / "model.json").stat().st_mtime_ns == before


def test_failed_quantization_leaves_the_folder_as_it_was(tiny_model_dir, tmp_path, monkeypatch):
    folder = tmp_path / "model"
    shutil.copytree(tiny_model_dir, folder)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}

    def fail(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr("onnxruntime.quantization.quantize_dynamic", fail)
    with pytest.raises(RuntimeError, match="disk full"):
        quantize_model(folder)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


def test_a_truncated_int8_graph_never_enters_the_folder(tiny_model_dir, tmp_path, monkeypatch):
    """A quantiser that leaves a cut-off graph (a full disk, a killed process) is caught by the
    check before the rename: one ModelError naming the file, the folder as it was."""
    import onnxruntime.quantization as quantization

    folder = tmp_path / "model"
    shutil.copytree(tiny_model_dir, folder)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    real = quantization.quantize_dynamic

    def truncating(model_input, model_output, **kwargs):
        real(model_input, model_output, **kwargs)
        data = open(model_output, "rb").read()
        open(model_output, "wb").write(data[: len(data) // 2])

    monkeypatch.setattr(quantization, "quantize_dynamic", truncating)
    with pytest.raises(ModelError, match=INT8_FILE.replace(".", r"\.")):
        quantize_model(folder)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


def test_quantize_model_refuses_fp16_folders(tiny_model_dir_fp16, tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(tiny_model_dir_fp16, folder)
    with pytest.raises(ModelError, match="model.json.*'fp16'"):
        quantize_model(folder)


def test_reduced_range_only_for_x86_without_vnni():
    assert reduced_range_for("x86_64", "flags : fpu avx2 fma") is True
    assert reduced_range_for("x86_64", "flags : fpu avx2 avx512f avx512_vnni") is False
    assert reduced_range_for("AMD64", None) is True  # flags unknown: the safe choice
    assert reduced_range_for("aarch64", None) is False


def test_cli_convert_accepts_int8(fixtures_dir, tmp_path, capsys):
    from plugin.cli import main

    out = tmp_path / "model"
    argv = [
        "convert",
        "--denoiser", str(fixtures_dir / "denoiser_tiny.pth"),
        "--vae", str(fixtures_dir / "vae_tiny.pth"),
        "--out", str(out),
        "--heads", str(TINY_HEADS),
        "--precision", "int8",
    ]
    assert main(argv) == 0
    assert (out / INT8_FILE).is_file() and "int8" in read_info(out)

