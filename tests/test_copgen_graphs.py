"""COP-GEN's graphs (denoiser, ten VAEs, int8 denoiser) against the official code's outputs
(shared/fixtures/copgen_reference, tiny random weights), and their checkpoint checks."""

import json
from pathlib import Path

import numpy as np
import onnx
import pytest

from plugin.engine.checkpoint import load_state_dict
from plugin.engine.errors import CheckpointError, InputError
from plugin.engine.families.copgen.denoiser_layout import (
    BASE,
    denoiser_family,
    expected_shapes,
    infer_copgen_config,
    looks_like_copgen,
)
from plugin.engine.families.copgen.denoiser_onnx import build_copgen_denoiser, output_name
from plugin.engine.families.copgen.registry import BY_KEY, IMAGE_MODALITIES, MODALITIES
from plugin.engine.families.copgen.vae_graphs import build_copgen_vae
from plugin.engine.quantize import quantize_denoiser
from plugin.engine.runtime import open_session

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "copgen_reference"
TINY_HEADS = 2


def max_relative(actual, reference):
    return float(np.abs(actual - reference).max() / np.abs(reference).max())


def rms_relative(actual, reference):
    return float(np.sqrt(np.mean((actual - reference) ** 2) / np.mean(reference**2)))


@pytest.fixture(scope="module")
def readme():
    return json.loads((REFERENCE / "README.json").read_text())


@pytest.fixture(scope="module")
def reference():
    return dict(np.load(REFERENCE / "expected.npz"))


@pytest.fixture(scope="module")
def state():
    return load_state_dict(REFERENCE / "denoiser_tiny.pth")


@pytest.fixture(scope="module")
def denoiser_path(state, tmp_path_factory):
    """The fp32 graph with its weights in an external file, as a converter writes it."""
    folder = tmp_path_factory.mktemp("copgen_denoiser")
    config = infer_copgen_config(state, "denoiser_tiny.pth", num_heads=TINY_HEADS)
    model = build_copgen_denoiser(state, config, external_data=folder / "denoiser.onnx.data")
    onnx.save(model, folder / "denoiser.onnx")
    return folder / "denoiser.onnx"


def split_feeds(readme, latents, timesteps):
    """The flat [B, D] latents of layout 'all' as the graph's per-modality inputs."""
    feeds = {"timesteps": timesteps}
    for entry in readme["layout_all"]:
        flat = latents[:, entry["offset"] : entry["offset"] + entry["size"]]
        feeds[entry["modality"]] = flat.reshape(-1, *entry["shape"])
    return feeds


def run_flat(path, feeds):
    """Runs a denoiser graph; returns its outputs flattened in layout 'all' as [B, D]."""
    session = open_session(path, device="cpu", threads=1)
    assert session.output_names == [output_name(key) for key in MODALITIES]
    outputs = session.run(feeds)
    for key, value in zip(MODALITIES, outputs):
        assert value.shape == (len(feeds["timesteps"]), *BY_KEY[key].latent_shape)
    return np.concatenate([value.reshape(value.shape[0], -1) for value in outputs], axis=1)


# --- denoiser -----------------------------------------------------------------------------


def test_config_is_read_from_weight_shapes(state, readme):
    official = readme["denoiser"]["config"]
    config = infer_copgen_config(state, "denoiser_tiny.pth", num_heads=TINY_HEADS)
    assert config.embed_dim == official["embed_dim"]
    assert config.depth == official["depth"]
    assert config.mlp_hidden == official["mlp_ratio"] * official["embed_dim"]
    assert config.num_tokens == readme["denoiser"]["num_tokens"]


def test_base_layout_has_the_published_parameter_count():
    assert sum(int(np.prod(shape)) for shape in expected_shapes(BASE).values()) == 286_986_562


def test_graph_interface_is_one_input_and_output_per_modality(denoiser_path):
    graph = onnx.load(denoiser_path, load_external_data=False).graph
    inputs = {i.name: [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim]
              for i in graph.input}
    assert list(inputs) == [*MODALITIES, "timesteps"]
    assert inputs["timesteps"] == ["batch", 12]
    assert inputs["DEM_DEM"] == ["batch", 8, 8, 8]
    assert inputs["3d_cartesian_lat_lon"] == ["batch", 1, 1, 3]
    assert [o.name for o in graph.output] == [f"noise.{key}" for key in MODALITIES]
    assert all(t.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
               for t in [*graph.input, *graph.output])


def test_fp32_matches_official_forward(denoiser_path, readme, reference):
    feeds = split_feeds(readme, reference["denoiser.latents"], reference["denoiser.timesteps"])
    noise = run_flat(denoiser_path, feeds)
    expected = reference["denoiser.out"]
    for entry in readme["layout_all"]:  # every modality on its own scale, scalars included
        part = slice(entry["offset"], entry["offset"] + entry["size"])
        assert max_relative(noise[:, part], expected[:, part]) <= 1e-5, entry["modality"]


def test_batch_rows_are_independent(denoiser_path, readme, reference):
    latents, timesteps = reference["denoiser.latents"], reference["denoiser.timesteps"]
    whole = run_flat(denoiser_path, split_feeds(readme, latents, timesteps))
    single = run_flat(denoiser_path, split_feeds(readme, latents[1:2], timesteps[1:2]))
    np.testing.assert_allclose(single[0], whole[1], rtol=0, atol=1e-5 * np.abs(whole).max())


def test_weights_go_to_the_external_file(denoiser_path, state):
    weights = sum(value.nbytes for value in state.values())
    assert denoiser_path.with_name("denoiser.onnx.data").stat().st_size >= 0.95 * weights
    assert denoiser_path.stat().st_size < 0.1 * weights


def test_fp16_graph_stays_close(state, readme, reference, tmp_path):
    config = infer_copgen_config(state, "denoiser_tiny.pth", num_heads=TINY_HEADS)
    onnx.save(build_copgen_denoiser(state, config, precision="fp16"), tmp_path / "fp16.onnx")
    feeds = split_feeds(readme, reference["denoiser.latents"], reference["denoiser.timesteps"])
    assert max_relative(run_flat(tmp_path / "fp16.onnx", feeds), reference["denoiser.out"]) <= 1e-2


def test_int8_graph_quantises_the_blocks_and_stays_close(
    denoiser_path, readme, reference, tmp_path
):
    entry = quantize_denoiser(denoiser_path, tmp_path / "denoiser.int8.onnx", reduce_range=True)
    # 2 in + 1 mid + 2 out blocks x (qkv, proj, fc1, fc2) + 2 skip_linear; heads stay float32
    assert entry["quantized_matmuls"] == 5 * 4 + 2
    feeds = split_feeds(readme, reference["denoiser.latents"], reference["denoiser.timesteps"])
    fp32 = run_flat(denoiser_path, feeds)
    int8 = run_flat(tmp_path / "denoiser.int8.onnx", feeds)
    assert 0 < rms_relative(int8, fp32) <= 0.04


# --- recognising and checking checkpoints -------------------------------------------------


def test_family_is_recognised_from_the_shapes(state, fixtures_dir):
    beta = load_state_dict(fixtures_dir / "denoiser_tiny.pth")  # COP-GEN-Beta's
    assert looks_like_copgen(state) and not looks_like_copgen(beta)
    assert denoiser_family(state, "a.pth") == "cop-gen"
    assert denoiser_family(beta, "b.pth") == "cop-gen-beta"


def test_neither_family_is_one_line_naming_the_file():
    vae = load_state_dict(REFERENCE / "vae" / BY_KEY["DEM_DEM"].vae_folder / "model-50-ema.pth")
    with pytest.raises(CheckpointError, match=r"^vae\.pth: not a COP-GEN or COP-GEN-Beta") as error:
        denoiser_family(vae, "vae.pth")
    assert "\n" not in str(error.value)


def test_beta_denoiser_is_refused_as_copgen(fixtures_dir):
    beta = load_state_dict(fixtures_dir / "denoiser_tiny.pth")
    with pytest.raises(CheckpointError, match=r"^beta\.pth: a COP-GEN-Beta \(Triffuser\) denoiser"):
        infer_copgen_config(beta, "beta.pth", num_heads=TINY_HEADS)


@pytest.mark.parametrize(
    "change, message",
    [
        ("drop out_blocks.1.mlp.fc2.bias", r"missing key 'out_blocks\.1\.mlp\.fc2\.bias'"),
        ("drop decoder_preds.11.bias", r"missing key 'decoder_preds\.11\.bias'"),
        ("shape decoder_preds.4.weight", r"key 'decoder_preds\.4\.weight' has shape \(31, 32\)"),
        ("add in_blocks.0.extra", r"unexpected key 'in_blocks\.0\.extra'"),
    ],
)
def test_bad_keys_are_one_line_naming_file_and_key(state, change, message):
    verb, key = change.split()
    broken = dict(state)
    if verb == "drop":
        del broken[key]
    elif verb == "shape":
        broken[key] = broken[key][:-1]
    else:
        broken[key] = np.zeros(3, np.float32)
    with pytest.raises(CheckpointError, match=rf"^bad\.pth: {message}") as error:
        infer_copgen_config(broken, "bad.pth", num_heads=TINY_HEADS)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("heads", [0, 3, 64])
def test_heads_that_do_not_divide_the_width_are_refused(state, heads):
    with pytest.raises(InputError, match=rf"{heads} heads: .* width 32 of bad\.pth") as error:
        infer_copgen_config(state, "bad.pth", num_heads=heads)
    assert error.value.field == "heads"


# --- VAEs ---------------------------------------------------------------------------------


def vae_state(key):
    return load_state_dict(REFERENCE / "vae" / BY_KEY[key].vae_folder / "model-50-ema.pth")


@pytest.mark.parametrize("key", IMAGE_MODALITIES)
def test_vae_matches_official_encode_and_decode(key, readme, reference, tmp_path):
    graphs = build_copgen_vae(vae_state(key), BY_KEY[key], f"{key}.pth")
    official = readme["modalities"][key]["vae_ddconfig"]
    assert graphs.config.ch_mult == tuple(official["ch_mult"])
    assert graphs.config.num_res_blocks == official["num_res_blocks"]
    onnx.save(graphs.encoder, tmp_path / "encoder.onnx")
    onnx.save(graphs.decoder, tmp_path / "decoder.onnx")
    encoder = open_session(tmp_path / "encoder.onnx", device="cpu", threads=1)
    decoder = open_session(tmp_path / "decoder.onnx", device="cpu", threads=1)
    moments = encoder.run({"image": reference[f"vae.{key}.image"]})[0]
    decoded = decoder.run({"latents": reference[f"vae.{key}.z"]})[0]  # scaled latents
    assert max_relative(moments, reference[f"vae.{key}.moments"]) <= 1e-5
    assert max_relative(decoded, reference[f"vae.{key}.decoded"]) <= 1e-5


def test_vae_of_another_modality_is_refused_in_one_line():
    refused = r"^lulc\.pth: a VAE of 10 input .* DEM_DEM has 1"
    with pytest.raises(CheckpointError, match=refused) as error:
        build_copgen_vae(vae_state("LULC_LULC"), BY_KEY["DEM_DEM"], "lulc.pth")
    assert "\n" not in str(error.value)


def test_vae_with_a_missing_weight_names_it():
    broken = dict(vae_state("S1RTC_vh_vv"))
    del broken["decoder.up.2.block.0.conv1.bias"]
    missing = r"^s1\.pth: missing autoencoder weight decoder\.up\.2\.block\.0\.conv1\.bias$"
    with pytest.raises(CheckpointError, match=missing):
        build_copgen_vae(broken, BY_KEY["S1RTC_vh_vv"], "s1.pth")
