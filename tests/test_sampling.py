"""CopGenModel on the tiny converted fixtures: reference parity, sampling semantics, validation."""

import itertools
import shutil

import numpy as np
import pytest

from plugin.engine import load
from plugin.engine.errors import Cancelled, InputError, ModelError
from plugin.engine.canvas import assemble_network_input, split_generated
from plugin.engine.model import CopGenModel
from plugin.engine.families.beta.registry import MODALITIES, VAE_SCALE
from plugin.engine.runtime import open_session

FAST_STEPS = 3  # where exactness is not the point
# 50-step results agree with the official ones to about 4e-6 of their std; the facts sheet
# allows 1e-3, but 1e-4 already catches a 1% error in one coefficient of the order-3 step.
SAMPLE_TOLERANCE = 1e-4


def relative_error(actual, expected):
    return float(np.abs(actual - expected).max() / expected.std())


def stacked(result, keys):
    return np.stack([result[key] for key in keys])


class RecordingSession:
    """Delegates to a real session and keeps a copy of every feed."""

    def __init__(self, session):
        self.session = session
        self.provider = session.provider
        self.feeds = []

    def run(self, feeds):
        self.feeds.append({name: np.array(value) for name, value in feeds.items()})
        return self.session.run(feeds)


@pytest.fixture(scope="module")
def model(tiny_model_dir):
    return load(tiny_model_dir, device="cpu")


@pytest.fixture
def recorded(tiny_model_dir, model):
    """A model whose denoiser calls are recorded (max_batch 2 to exercise chunking)."""
    def session(name):
        return open_session(tiny_model_dir / name, device="cpu")

    denoiser = RecordingSession(session("denoiser.onnx"))
    sessions = (denoiser, session("vae_encoder.onnx"), session("vae_decoder.onnx"))
    return CopGenModel(model.info, *sessions, max_batch=2), denoiser


def latents(rng, batch=1):
    return rng.standard_normal((batch, 4, 32, 32), dtype=np.float32)


# -- parity with the official code -------------------------------------------------------


def test_denoise_matches_the_reference_in_chunks(tiny_model_dir, expected):
    model = load(tiny_model_dir, device="cpu", max_batch=2)  # 3 items: chunks of 2 and 1
    noise = model.denoise(expected["denoiser_latents"], expected["denoiser_timesteps"])
    assert relative_error(noise, expected["denoiser_out"]) < 1e-4


def test_joint_generation_reproduces_the_reference(model, expected):
    result = model.sample(MODALITIES, x_T=expected["joint_x_T"])
    assert list(result) == list(MODALITIES)
    assert relative_error(stacked(result, MODALITIES), expected["joint_out"]) < SAMPLE_TOLERANCE


def test_conditional_generation_reproduces_the_reference(model, expected):
    generate = ["s2_l2a", "dem", "s2_l1c"]  # any order; outputs follow modality order
    condition = expected["cond_s1_rtc"].copy()
    result = model.sample(generate, {"s1_rtc": condition}, x_T=expected["cond_x_T"])
    assert list(result) == ["dem", "s2_l1c", "s2_l2a"]
    assert relative_error(stacked(result, result), expected["cond_out"]) < SAMPLE_TOLERANCE
    np.testing.assert_array_equal(condition, expected["cond_s1_rtc"])


def test_vae_matches_the_reference(model, expected):
    moments = model.encode_moments(expected["vae_image"])
    assert relative_error(moments, expected["vae_moments"]) < 1e-4
    decoded = model.decode(expected["vae_latents"])
    np.testing.assert_allclose(decoded, np.clip((expected["vae_decoded"] + 1) / 2, 0, 1), atol=1e-4)


def test_encode_samples_the_posterior_and_round_trips(model, expected):
    images = expected["vae_image"]
    mean, logvar = np.split(model.encode_moments(images), 2, axis=1)
    z = model.encode(images, seed=5)
    assert z.shape == (2, 4, 32, 32) and z.dtype == np.float32
    np.testing.assert_array_equal(z, model.encode(images, seed=5))
    assert not np.array_equal(z, model.encode(images, seed=6))
    # (z / scale - mean) / std must look like the N(0, 1) draw it was made from.
    noise = (z / VAE_SCALE - mean) / np.exp(0.5 * np.clip(logvar, -30, 20))
    assert abs(noise.mean()) < 0.05 and abs(noise.std() - 1) < 0.05
    decoded = model.decode(z)
    assert decoded.shape == images.shape
    assert decoded.min() >= 0 and decoded.max() <= 1


# -- sampling semantics ------------------------------------------------------------------

# The 14 non-empty proper subsets of the modalities as conditions, the rest generated.
CONDITION_SETS = [
    subset for size in (1, 2, 3) for subset in itertools.combinations(MODALITIES, size)
]
CASES = (
    [(tuple(MODALITIES), ())]
    + [((key,), ()) for key in MODALITIES]
    + [(tuple(k for k in MODALITIES if k not in cond), cond) for cond in CONDITION_SETS]
)


@pytest.mark.parametrize(
    "generate, condition_keys", CASES, ids=[f"{'+'.join(g)}|{'+'.join(c)}" for g, c in CASES]
)
def test_every_generation_task_runs_and_is_seeded(model, generate, condition_keys):
    rng = np.random.default_rng(len(generate) * 10 + len(condition_keys))
    conditions = {key: latents(rng, batch=2) for key in condition_keys}
    originals = {key: value.copy() for key, value in conditions.items()}

    first = model.sample(generate, conditions, steps=FAST_STEPS, seed=11, batch=2)
    assert list(first) == list(generate)
    for value in first.values():
        assert value.shape == (2, 4, 32, 32) and value.dtype == np.float32
        assert np.all(np.isfinite(value))
    for key, value in conditions.items():
        np.testing.assert_array_equal(value, originals[key])

    again = model.sample(generate, conditions, steps=FAST_STEPS, seed=11, batch=2)
    other = model.sample(generate, conditions, steps=FAST_STEPS, seed=12, batch=2)
    for key in generate:
        np.testing.assert_array_equal(first[key], again[key])
        assert not np.allclose(first[key], other[key])


def test_ignored_modalities_get_fresh_noise_at_every_call(recorded):
    model, denoiser = recorded
    rng = np.random.default_rng(0)
    condition = latents(rng, batch=3)
    model.sample(["s1_rtc"], {"s2_l1c": condition}, steps=4, seed=1)
    calls = denoiser.feeds
    # 4 network calls of a batch of 3, each split into chunks of 2 and 1.
    assert [len(feeds["latents"]) for feeds in calls] == [2, 1] * 4
    pairs = list(zip(calls[::2], calls[1::2]))
    latents_per_call = [np.concatenate([a["latents"], b["latents"]]) for a, b in pairs]
    times_per_call = [np.concatenate([a["timesteps"], b["timesteps"]]) for a, b in pairs]
    grid = np.linspace(1.0, 1e-3, 5)[:-1] * 1000
    for call, (x, times) in enumerate(zip(latents_per_call, times_per_call)):
        np.testing.assert_array_equal(x[:, 2], condition)  # condition: fixed latents ...
        np.testing.assert_array_equal(times[:, [0, 2, 3]], 0.0)  # ... time 0, as the ignored
        np.testing.assert_allclose(times[:, 1], grid[call], rtol=1e-5)
    for ignored in (0, 3):
        draws = [x[:, ignored] for x in latents_per_call]
        for a, b in itertools.combinations(draws, 2):
            assert not np.allclose(a, b)
        assert abs(np.concatenate(draws).std() - 1) < 0.05


def test_seed_only_feeds_ignored_modalities_when_x_T_is_given(model, expected):
    x_T = expected["joint_x_T"]
    joint = [model.sample(MODALITIES, x_T=x_T, steps=FAST_STEPS, seed=s) for s in (1, 2)]
    for key in MODALITIES:  # nothing ignored: the seed has nothing left to draw
        np.testing.assert_array_equal(joint[0][key], joint[1][key])
    marginal = [model.sample(["dem"], x_T=x_T[:1], steps=FAST_STEPS, seed=s) for s in (1, 2)]
    assert not np.allclose(marginal[0]["dem"], marginal[1]["dem"])


def test_assemble_network_input_and_split_generated():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 5, 4, 32, 32), dtype=np.float32)  # dem and s2_l2a, 5 windows
    cond = rng.standard_normal((1, 5, 4, 32, 32), dtype=np.float32)  # s1_rtc
    net_latents, timesteps = assemble_network_input(x, [0, 3], cond, [1], 0.25, rng)
    assert net_latents.shape == (5, 4, 4, 32, 32) and net_latents.dtype == np.float32
    np.testing.assert_array_equal(net_latents[:, 1], cond[0])
    np.testing.assert_array_equal(timesteps, np.tile(np.float32([250, 0, 0, 250]), (5, 1)))
    np.testing.assert_array_equal(split_generated(net_latents, [0, 3]), x)


def test_progress_counts_network_calls_and_cancel_stops(model):
    reports = []
    model.sample(["dem"], steps=5, seed=0, progress=lambda *args: reports.append(args))
    assert reports == [(i, 5) for i in range(1, 6)]

    polls = []

    def cancel():
        polls.append(1)
        return len(polls) > 2

    with pytest.raises(Cancelled, match="after 2 of 5"):
        model.sample(["dem"], steps=5, seed=0, cancel=cancel)


def test_batch_parameter_sets_the_batch_when_nothing_else_does(model):
    assert model.sample(["dem"], steps=1, seed=0)["dem"].shape == (1, 4, 32, 32)
    assert model.sample(["dem"], steps=1, seed=0, batch=3)["dem"].shape == (3, 4, 32, 32)


# -- validation --------------------------------------------------------------------------

RNG = np.random.default_rng(9)
ONE = latents(RNG)
TWO = latents(RNG, batch=2)


def dem(**kwargs):
    return {"generate": ["dem"], **kwargs}


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"generate": ["dem", "s3"]}, "generate: unknown modality 's3'"),
        (dem(conditions={"sar": ONE}), "conditions: unknown modality 'sar'"),
        ({"generate": ["dem", "dem"]}, "named twice"),
        (dem(conditions={"dem": ONE}), "dem: both generated and given"),
        ({"generate": []}, "nothing to generate"),
        (dem(conditions={"s1_rtc": ONE[0]}), r"conditions\['s1_rtc'\] must have shape"),
        (dem(conditions={"s1_rtc": ONE[:, :, :16]}), "must have shape"),
        (dem(conditions={"s1_rtc": ONE.astype(np.int32)}), "floating-point"),
        (dem(conditions={"s1_rtc": ONE * np.nan}), "NaN"),
        (dem(conditions={"s1_rtc": ONE[:0]}), "is empty"),
        (dem(conditions={"s1_rtc": ONE, "s2_l1c": TWO}), "inconsistent batch sizes"),
        (dem(conditions={"s1_rtc": TWO}, x_T=ONE[None]), "inconsistent batch sizes"),
        (dem(batch=2, x_T=ONE[None]), "inconsistent batch sizes"),
        ({"generate": ["dem", "s1_rtc"], "x_T": ONE[None]}, r"x_T must have shape \[2, N, 4,"),
        (dem(batch=0), "batch must be"),
        (dem(conditions=[ONE]), "conditions must be a dict"),
        (dem(solver="heun"), "unknown solver 'heun'"),
        (dem(steps=0), "steps: must be"),
    ],
)
def test_sample_rejects_bad_input_before_any_network_call(recorded, kwargs, message):
    model, denoiser = recorded
    with pytest.raises(InputError, match=message):
        model.sample(**kwargs)
    assert denoiser.feeds == []


def test_vae_rejects_bad_images(model):
    with pytest.raises(InputError, match="images must have shape"):
        model.encode_moments(np.zeros((3, 256, 256), np.float32))
    with pytest.raises(InputError, match="multiples of 8"):
        model.encode_moments(np.zeros((1, 3, 250, 256), np.float32))
    with pytest.raises(InputError, match=r"\[-1, 1\]"):
        model.encode(np.full((1, 3, 64, 64), 255, np.float32))
    with pytest.raises(InputError, match="latents must have shape"):
        model.decode(np.zeros((1, 8, 32, 32), np.float32))


def test_open_names_what_is_missing_and_how_to_install(tiny_model_dir, tmp_path):
    with pytest.raises(ModelError, match="does not exist; install the model first") as error:
        CopGenModel.open(tmp_path / "nowhere")
    assert error.value.field == "model" and "--" not in error.value.message
    with pytest.raises(ModelError, match="model.json is missing"):
        CopGenModel.open(tmp_path)
    broken = tmp_path / "broken"
    shutil.copytree(tiny_model_dir, broken)
    (broken / "vae_decoder.onnx").unlink()
    with pytest.raises(ModelError, match="vae_decoder.onnx is missing.*install the model"):
        CopGenModel.open(broken)
    (broken / "model.json").write_text("{not json")
    with pytest.raises(ModelError, match="model.json is unreadable"):
        CopGenModel.open(broken)


def test_info_and_provider(model):
    assert model.info["modalities"] == list(MODALITIES)
    assert model.provider == "CPUExecutionProvider"


def test_load_expands_a_home_relative_folder(tiny_model_dir, monkeypatch):
    # the README's example opens "~/.local/share/copgen-beta/models/cop-gen-beta"
    monkeypatch.setenv("HOME", str(tiny_model_dir.parent))
    model = load(f"~/{tiny_model_dir.name}", device="cpu")
    assert model.plan.model_dir == tiny_model_dir
