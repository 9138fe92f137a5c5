import json

import numpy as np
import pytest

from plugin.engine.checkpoint import load_state_dict
from checkpoint_write import save_safetensors
from plugin.engine.errors import CheckpointError
from plugin.engine.vae_layout import VaeConfig, expected_shapes, infer_vae_config, to_ldm_layout, validate_vae

from _h1_diffusers import ldm_to_diffusers


@pytest.fixture(scope="module")
def ldm_state(fixtures_dir):
    return load_state_dict(fixtures_dir / "vae_tiny.pth")


def test_config_inferred_from_shapes_matches_the_fixture_config(fixtures_dir, ldm_state):
    ddconfig = json.loads((fixtures_dir / "README.json").read_text())["vae_ddconfig"]
    config = infer_vae_config(ldm_state)
    assert config == VaeConfig(
        ch=ddconfig["ch"],
        ch_mult=tuple(ddconfig["ch_mult"]),
        num_res_blocks=ddconfig["num_res_blocks"],
        z_channels=ddconfig["z_channels"],
        embed_dim=ddconfig["z_channels"],
        in_channels=ddconfig["in_channels"],
        out_ch=ddconfig["out_ch"],
        has_mid_attn=True,
        attn_levels=(),
    )
    assert config.downsample_factor == 8
    assert set(expected_shapes(config)) == set(ldm_state)
    validate_vae(ldm_state, config, "vae_tiny.pth")


def test_ldm_layout_passes_through_without_training_weights(ldm_state):
    with_loss = dict(ldm_state, **{"loss.logvar": np.zeros(()), "loss.discriminator.main.0.weight": np.ones(3)})
    converted = to_ldm_layout(with_loss, "vae.pth")
    assert list(converted) == list(ldm_state)
    assert all(converted[key] is ldm_state[key] for key in ldm_state)


@pytest.mark.parametrize("attention_style", ["new", "old"])
def test_diffusers_layout_file_converts_back_exactly(tmp_path, ldm_state, attention_style):
    diffusers = ldm_to_diffusers(ldm_state, attention_style)
    # Facts of the diffusers layout: decoder levels count from the bottom, attention is linear.
    deepest = ldm_state["decoder.up.3.block.0.conv1.weight"]
    assert diffusers["decoder.up_blocks.0.resnets.0.conv1.weight"] is deepest
    assert diffusers["encoder.mid_block.attentions.0.group_norm.weight"].ndim == 1
    assert max(value.ndim for key, value in diffusers.items() if ".attentions." in key) == 2
    path = tmp_path / "diffusion_pytorch_model.safetensors"
    save_safetensors(diffusers, path)

    converted = to_ldm_layout(load_state_dict(path), str(path))

    assert set(converted) == set(ldm_state)
    for key, value in ldm_state.items():
        assert converted[key].shape == value.shape, key
        np.testing.assert_array_equal(converted[key], value, err_msg=key)
    validate_vae(converted, infer_vae_config(converted), str(path))


def test_unknown_layout_names_file_and_first_unknown_key(ldm_state):
    denoiserish = {"pos_embed": np.zeros((1, 4, 8)), "in_blocks.0.attn.qkv.weight": np.zeros((24, 8))}
    with pytest.raises(CheckpointError, match=r"nnet.pth: .*unknown key pos_embed"):
        to_ldm_layout(denoiserish, "nnet.pth")
    diffusers = ldm_to_diffusers(ldm_state)
    diffusers["decoder.up_blocks.1.attentions.0.to_q.weight"] = np.zeros((4, 4))
    with pytest.raises(CheckpointError, match=r"vae.safetensors: .*unknown key decoder\.up_blocks\.1\.attentions"):
        to_ldm_layout(diffusers, "vae.safetensors")


def test_validate_names_missing_misshapen_and_unexpected_keys(ldm_state):
    config = infer_vae_config(ldm_state)
    missing = {key: value for key, value in ldm_state.items() if key != "decoder.up.2.upsample.conv.bias"}
    with pytest.raises(CheckpointError, match=r"vae.pth: missing autoencoder weight decoder\.up\.2\.upsample\.conv\.bias"):
        validate_vae(missing, config, "vae.pth")
    misshapen = dict(ldm_state, **{"encoder.mid.attn_1.q.weight": np.zeros((64, 64))})
    with pytest.raises(CheckpointError, match=r"encoder\.mid\.attn_1\.q\.weight has shape \(64, 64\), expected \(64, 64, 1, 1\)"):
        validate_vae(misshapen, config, "vae.pth")
    extra = dict(ldm_state, **{"encoder.down.0.attn.0.q.weight": np.zeros((32, 32, 1, 1))})
    with pytest.raises(CheckpointError, match=r"unexpected autoencoder weight encoder\.down\.0\.attn\.0\.q\.weight"):
        validate_vae(extra, config, "vae.pth")


def test_infer_names_a_missing_anchor_weight(ldm_state):
    partial = {key: value for key, value in ldm_state.items() if not key.startswith("decoder.conv_in")}
    with pytest.raises(CheckpointError, match=r"vae.pth: missing autoencoder weight decoder\.conv_in\.weight"):
        infer_vae_config(partial, "vae.pth")
