"""The autoencoder graphs against the official encode_moments / decode (expected.npz)."""

import numpy as np
import onnx
import pytest

from plugin.engine.checkpoint import load_state_dict
from plugin.engine.runtime import open_session
from plugin.engine.vae_layout import infer_vae_config, to_ldm_layout
from plugin.engine.vae_onnx import build_vae_decoder, build_vae_encoder


def relative_error(actual, reference):
    return float(np.abs(actual - reference).max() / reference.std())


def encode(model_dir, images):
    return open_session(model_dir / "vae_encoder.onnx", device="cpu").run({"image": images})[0]


def decode(model_dir, latents):
    return open_session(model_dir / "vae_decoder.onnx", device="cpu").run({"latents": latents})[0]


def test_fp32_encoder_matches_official(tiny_model_dir, expected):
    moments = encode(tiny_model_dir, expected["vae_image"])
    assert moments.dtype == np.float32
    assert relative_error(moments, expected["vae_moments"]) <= 1e-4


def test_fp32_decoder_matches_official(tiny_model_dir, expected):
    images = decode(tiny_model_dir, expected["vae_latents"])
    assert images.dtype == np.float32
    assert relative_error(images, expected["vae_decoded"]) <= 1e-4


def test_fp16_encoder_matches_official(tiny_model_dir_fp16, expected):
    moments = encode(tiny_model_dir_fp16, expected["vae_image"])
    assert moments.dtype == np.float32
    assert relative_error(moments, expected["vae_moments"]) <= 1e-2


def test_fp16_decoder_matches_official(tiny_model_dir_fp16, expected):
    images = decode(tiny_model_dir_fp16, expected["vae_latents"])
    assert images.dtype == np.float32
    assert relative_error(images, expected["vae_decoded"]) <= 1e-2


def test_any_size_and_batch(tiny_model_dir, expected):
    image = expected["vae_image"][:1, :, :64, :96]
    moments = encode(tiny_model_dir, image)
    assert moments.shape == (1, 8, 8, 12)
    images = decode(tiny_model_dir, expected["vae_latents"][:, :, :6, :10])
    assert images.shape == (2, 3, 48, 80)
    assert np.isfinite(moments).all() and np.isfinite(images).all()


def test_batch_items_are_independent(tiny_model_dir, expected):
    batched = decode(tiny_model_dir, expected["vae_latents"])
    single = decode(tiny_model_dir, expected["vae_latents"][1:])
    np.testing.assert_allclose(single[0], batched[1], rtol=0, atol=1e-5)


@pytest.mark.parametrize("build", [build_vae_encoder, build_vae_decoder])
def test_graphs_are_valid_onnx_with_float32_interface(fixtures_dir, build):
    state = to_ldm_layout(load_state_dict(fixtures_dir / "vae_tiny.pth"))
    model = build(state, infer_vae_config(state), "fp16")
    onnx.checker.check_model(model, full_check=True)
    float32 = onnx.TensorProto.FLOAT
    assert model.graph.input[0].type.tensor_type.elem_type == float32
    assert model.graph.output[0].type.tensor_type.elem_type == float32
