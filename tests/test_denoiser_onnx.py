"""The denoiser graph against the official forward pass (expected.npz) and its weight checks."""

import json

import numpy as np
import onnx
import pytest

from plugin.engine.checkpoint import load_state_dict
from plugin.engine.denoiser_layout import infer_denoiser_config
from plugin.engine.denoiser_onnx import build_denoiser
from plugin.engine.errors import CheckpointError, InputError
from plugin.engine.runtime import open_session


def relative_error(actual, reference):
    return float(np.abs(actual - reference).max() / reference.std())


@pytest.fixture(scope="module")
def state(fixtures_dir):
    return load_state_dict(fixtures_dir / "denoiser_tiny.pth")


@pytest.fixture(scope="module")
def reference_config(fixtures_dir):
    return json.loads((fixtures_dir / "README.json").read_text())["denoiser_config"]


def run_denoiser(model_dir, latents, timesteps):
    session = open_session(model_dir / "denoiser.onnx", device="cpu")
    return session.run({"latents": latents, "timesteps": timesteps})[0]


def test_config_is_read_from_weight_shapes(state, reference_config):
    config = infer_denoiser_config(state, "denoiser_tiny.pth", num_heads=2)
    assert config.embed_dim == reference_config["embed_dim"]
    assert 2 * config.num_in_blocks == reference_config["depth"]
    assert config.patch_size == reference_config["patch_size"]
    assert config.in_chans == reference_config["in_chans"]
    assert config.img_size == reference_config["img_size"]
    assert config.num_modalities == reference_config["num_modalities"]
    assert config.mlp_hidden == reference_config["mlp_ratio"] * reference_config["embed_dim"]


def test_fp32_matches_official_forward(tiny_model_dir, expected):
    latents, timesteps = expected["denoiser_latents"], expected["denoiser_timesteps"]
    noise = run_denoiser(tiny_model_dir, latents, timesteps)
    assert noise.dtype == np.float32
    assert relative_error(noise, expected["denoiser_out"]) <= 1e-4


def test_fp16_matches_official_forward(tiny_model_dir_fp16, expected):
    noise = run_denoiser(
        tiny_model_dir_fp16, expected["denoiser_latents"], expected["denoiser_timesteps"]
    )
    assert noise.dtype == np.float32
    assert relative_error(noise, expected["denoiser_out"]) <= 1e-2


def test_batch_items_are_independent(tiny_model_dir, expected):
    latents, timesteps = expected["denoiser_latents"], expected["denoiser_timesteps"]
    batched = run_denoiser(tiny_model_dir, latents, timesteps)
    single = run_denoiser(tiny_model_dir, latents[1:2], timesteps[1:2])
    np.testing.assert_allclose(single[0], batched[1], rtol=0, atol=1e-5)


def test_fp16_graph_keeps_float32_interface(state):
    config = infer_denoiser_config(state, "denoiser_tiny.pth", num_heads=2)
    model = build_denoiser(state, config, "fp16")
    onnx.checker.check_model(model)
    float32 = onnx.TensorProto.FLOAT
    assert [v.type.tensor_type.elem_type for v in model.graph.input] == [float32, float32]
    assert [v.type.tensor_type.elem_type for v in model.graph.output] == [float32]
    weight_types = {t.data_type for t in model.graph.initializer if len(t.dims) == 2}
    assert weight_types == {onnx.TensorProto.FLOAT16}


def test_missing_key_is_named(state):
    broken = dict(state)
    del broken["out_blocks.0.skip_linear.bias"]
    with pytest.raises(CheckpointError, match=r"den\.pth.*'out_blocks\.0\.skip_linear\.bias'"):
        infer_denoiser_config(broken, "den.pth", num_heads=2)


def test_wrong_shape_is_named(state):
    broken = dict(state)
    broken["mid_block.mlp.fc2.weight"] = np.zeros((32, 64), np.float32)
    wanted = r"den\.pth.*'mid_block\.mlp\.fc2\.weight'.*\(32, 64\)"
    with pytest.raises(CheckpointError, match=wanted):
        infer_denoiser_config(broken, "den.pth", num_heads=2)


def test_unexpected_key_is_named(state):
    broken = dict(state, **{"time_img_embeds.0.0.weight": np.zeros((128, 32), np.float32)})
    with pytest.raises(CheckpointError, match=r"den\.pth.*'time_img_embeds\.0\.0\.weight'"):
        infer_denoiser_config(broken, "den.pth", num_heads=2)


def test_other_checkpoint_is_recognised(fixtures_dir):
    vae_state = load_state_dict(fixtures_dir / "vae_tiny.pth")
    with pytest.raises(CheckpointError, match=r"vae_tiny\.pth.*'pos_embed'"):
        infer_denoiser_config(vae_state, fixtures_dir / "vae_tiny.pth")


def test_heads_must_divide_width(state):
    with pytest.raises(InputError, match="3 heads: must be a positive divisor") as caught:
        infer_denoiser_config(state, "den.pth", num_heads=3)
    assert caught.value.field == "heads"
