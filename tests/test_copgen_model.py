"""COP-GEN through the Python contract, against the official code's fixtures.

``plugin.engine.load`` on a folder converted from the official-layout tiny checkpoints; every
network, the sampler (20 and 50 steps; joint, conditioned on place and date, and with
modalities neither given nor generated, call by call) and the end-to-end run from physical
conditions to physical outputs.
"""

import json
from functools import partial

import numpy as np
import pytest

from plugin.engine import load
from plugin.engine.convert import convert
from plugin.engine.families.copgen.registry import BY_KEY, IMAGE_MODALITIES, MODALITIES

from fast_choice import choose_with


@pytest.fixture(scope="module")
def reference(shared_dir):
    root = shared_dir / "fixtures" / "copgen_reference"
    return root, np.load(root / "expected.npz"), json.loads((root / "README.json").read_text())


@pytest.fixture(scope="module")
def model(reference, tmp_path_factory):
    root, _, readme = reference
    out = tmp_path_factory.mktemp("copgen") / "model"
    convert(root / readme["denoiser"]["file"], None, out, heads=readme["denoiser"]["config"]["num_heads"],
            vae_dir=root / "vae")
    return load(out, device="cpu")


def unflatten(flat, layout):
    return {entry["modality"]: flat[:, entry["offset"]:entry["offset"] + entry["size"]].reshape(
        (len(flat),) + tuple(entry["shape"])) for entry in layout}


def flatten(arrays, layout):
    return np.concatenate([arrays[e["modality"]].reshape(len(arrays[e["modality"]]), -1) for e in layout], axis=1)


def relative(actual, expected):
    return float(np.abs(actual - expected).max() / np.abs(expected).max())


def test_contract_names_the_family_and_its_twelve_modalities(model, reference):
    assert model.family == "cop-gen"
    assert list(model.modalities) == reference[2]["modality_order"]


@pytest.mark.parametrize("key", IMAGE_MODALITIES)
def test_every_vae_agrees_with_the_reference(model, reference, key):
    _, expected, _ = reference
    image = expected[f"vae.{key}.image"]
    assert relative(model.encode_moments(key, image), expected[f"vae.{key}.moments"]) < 1e-5
    z = model.encode(key, image, noise=expected[f"vae.{key}.eps"])
    assert relative(z, expected[f"vae.{key}.z"]) < 1e-5
    assert relative(model.decode(key, expected[f"vae.{key}.z"]), expected[f"vae.{key}.decoded"]) < 1e-5


def test_vaes_are_opened_only_for_the_modalities_used(model, reference):
    fresh = load(model.plan.model_dir, device="cpu")
    assert fresh.loaded_vaes() == []
    fresh.decode("DEM_DEM", reference[1]["vae.DEM_DEM.z"])
    assert fresh.loaded_vaes() == [("decoder", "DEM_DEM")]


def test_denoiser_forward_agrees_with_the_reference(model, reference):
    _, expected, readme = reference
    latents = unflatten(expected["denoiser.latents"], readme["layout_all"])
    timesteps = {key: expected["denoiser.timesteps"][:, i] for i, key in enumerate(MODALITIES)}
    noise = model.denoise(latents, timesteps)
    assert relative(flatten(noise, readme["layout_all"]), expected["denoiser.out"]) < 1e-5


@pytest.mark.parametrize("case", ["joint", "geo", "obs"])
@pytest.mark.parametrize("steps", [20, 50])
def test_sampling_agrees_with_the_reference_after_all_steps(model, reference, case, steps):
    _, expected, readme = reference
    spec = readme["cases"][case]
    x_T = unflatten(expected[f"sample.{case}.x_T"], spec["layout_generated"])
    given = unflatten(expected[f"sample.{case}.given"], spec["layout_given"]) if spec["given"] else {}
    noise = _recorded_neither(expected, spec) if spec["neither"] else None
    result = model.sample(spec["generated"], conditions=given, steps=steps, x_T=x_T, neither_noise=noise)
    out = expected[f"sample.{case}.out_{steps}"]
    assert relative(flatten(result, spec["layout_generated"]), out) < 1e-3


def _recorded_neither(expected, spec):
    rows = expected["sample.obs.noise"]

    def noise(call, keys, batch):
        assert list(keys) == spec["neither"]
        return unflatten(rows[call], spec["layout_neither"])

    return noise


def test_every_network_call_agrees_with_the_reference(model, reference):
    """Random weights make final states depend mostly on early steps: compare per call."""
    _, expected, readme = reference
    spec = readme["cases"]["obs"]
    recorded_t, recorded_eps = expected["sample.obs.calls_20.t"], expected["sample.obs.calls_20.eps"]
    calls = []

    def recording(latents, timesteps):
        noise = model.denoise(latents, timesteps)
        calls.append((np.stack([timesteps[key] for key in MODALITIES], axis=1), flatten(noise, spec["layout_generated"])))
        return noise

    from plugin.engine.families.copgen.sampling import sample_joint

    sample_joint(recording, tuple(spec["generated"]),
                 unflatten(expected["sample.obs.given"], spec["layout_given"]),
                 unflatten(expected["sample.obs.x_T"], spec["layout_generated"]), 20, "dpm-solver-fast",
                 neither_noise=_recorded_neither(expected, spec))
    assert len(calls) == 20
    for call, (t, eps) in enumerate(calls):
        np.testing.assert_allclose(t, recorded_t[call], rtol=1e-6, atol=1e-3, err_msg=f"call {call}")
        assert relative(eps, recorded_eps[call]) < 1e-4, f"call {call}"


def test_end_to_end_from_physical_conditions_to_physical_outputs(model, reference):
    _, expected, readme = reference
    spec = readme["cases"]["e2e"]
    conditions = {
        "3d_cartesian_lat_lon": model.preprocess("3d_cartesian_lat_lon", expected["e2e.lat_lon_deg"]),
        "mean_timestamps": model.preprocess("mean_timestamps", expected["e2e.date_ymd"]),
    }
    dem = model.preprocess("DEM_DEM", expected["e2e.DEM_DEM.physical"])
    assert relative(dem, expected["e2e.DEM_DEM.pre"]) < 1e-5
    conditions["DEM_DEM"] = model.encode("DEM_DEM", dem, noise=expected["e2e.DEM_DEM.eps"])
    given = flatten(conditions, spec["layout_given"])
    assert relative(given, expected["e2e.given"]) < 1e-5
    x_T = unflatten(expected["e2e.x_T"], spec["layout_generated"])
    latents = model.sample(spec["generated"], conditions=conditions, steps=spec["steps"], x_T=x_T)
    assert relative(flatten(latents, spec["layout_generated"]), expected["e2e.out_latents"]) < 1e-3
    for key in ("S2L1C_B01_B09_B10", "S2L2A_B01_B09"):
        physical = model.postprocess(key, model.decode(key, latents[key]))
        assert relative(physical, expected[f"e2e.post.{key}"]) < 1e-3
    for key in ("LULC_LULC", "S2L1C_cloud_mask"):
        codes = model.postprocess(key, model.decode(key, latents[key]))
        stable = ~expected[f"e2e.post.{key}.ambiguous"].astype(bool)
        assert codes.dtype == np.uint8
        assert np.array_equal(codes[stable], expected[f"e2e.post.{key}"][stable])


def test_sampling_is_seeded_and_checks_its_inputs(model):
    a = model.sample(["DEM_DEM", "mean_timestamps"], steps=3, seed=7, batch=2)
    b = model.sample(["dem", "date"], steps=3, seed=7, batch=2)
    assert set(a) == {"DEM_DEM", "mean_timestamps"} and a["DEM_DEM"].shape == (2,) + BY_KEY["DEM_DEM"].latent_shape
    assert all(np.array_equal(a[k], b[k]) for k in a)
    from plugin.engine.errors import InputError

    with pytest.raises(InputError, match="both generated and given"):
        model.sample(["DEM_DEM"], conditions={"DEM_DEM": a["DEM_DEM"]}, steps=3)
    with pytest.raises(InputError, match="unknown COP-GEN modality 'dem_dem'"):
        model.sample(["dem_dem"], steps=3)


def test_int8_denoiser_serves_the_fast_preference(reference, tmp_path):
    """The int8 COP-GEN denoiser: chosen by the fast preference on the CPU, and its noise
    prediction within the int8 bar (about 2.6 % RMS of the noise, as Beta's)."""
    root, expected, readme = reference
    out = tmp_path / "int8"
    convert(root / "denoiser_tiny.pth", None, out, heads=2, vae_dir=root / "vae", precision="int8")
    # the fast path is measured per host (plugin.engine.fast_path): on COP-GEN's twelve inputs
    # too; its timings are given here, since the tiny model's are too close to call
    plan = choose_with(out, {"int8": 1.0, "fp32": 2.0, "bf16": 3.0})
    assert plan.denoiser_precision == "int8" and "int8" in plan.notes[-1]
    fast, faithful = load(out, device="cpu", preference="fast"), load(out, device="cpu")
    assert fast.denoiser_precision == "int8" and faithful.denoiser_precision == "fp32"
    latents = unflatten(expected["denoiser.latents"], readme["layout_all"])
    timesteps = {key: expected["denoiser.timesteps"][:, i] for i, key in enumerate(MODALITIES)}
    a = flatten(fast.denoise(latents, timesteps), readme["layout_all"])
    b = flatten(faithful.denoise(latents, timesteps), readme["layout_all"])
    rms = float(np.sqrt(np.mean((a - b) ** 2) / np.mean(b ** 2)))
    assert 0 < rms < 0.035


@pytest.mark.timeout(120)
@pytest.mark.parametrize("role", ["encode", "decode"])
def test_a_vae_call_stops_within_a_second_of_cancel(model, role):
    # one call over a 768 x 768 px image takes seconds; cancel is polled while it runs
    import threading
    import time

    from plugin.engine.errors import Cancelled

    key = "S2L2A_B02_B03_B04_B08"
    small = {"encode": np.zeros((1, 4, 64, 64), np.float32), "decode": np.zeros((1, 8, 8, 8), np.float32)}
    run = partial(model.encode_moments if role == "encode" else model.decode, key)
    run(small[role])  # the session opened before the clock starts
    side = 96  # latents: no single node (the mid-block attention over h x w tokens) takes a second
    big = np.zeros((1, 4, 8 * side, 8 * side) if role == "encode" else (1, 8, side, side), np.float32)
    call = partial(run, big)
    asked = threading.Event()
    timer = threading.Timer(0.3, asked.set)
    start = time.monotonic()
    timer.start()
    with pytest.raises(Cancelled, match="cancelled while running"):
        call(cancel=asked.is_set)
    timer.cancel()
    assert time.monotonic() - start - 0.3 < 2.0  # generous: the shared machine is noisy


def test_an_uncancelled_vae_call_gives_the_plain_result(model, reference):
    _, expected, _ = reference
    never = lambda: False  # noqa: E731
    z = expected["vae.DEM_DEM.z"]
    np.testing.assert_array_equal(model.decode("DEM_DEM", z, cancel=never), model.decode("DEM_DEM", z))
    image = expected["vae.DEM_DEM.image"]
    np.testing.assert_array_equal(model.encode_moments("DEM_DEM", image, cancel=never),
                                  model.encode_moments("DEM_DEM", image))
