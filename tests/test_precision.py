"""The one precision and device policy: device x preference x folder contents -> what runs."""

import json
import shutil

import pytest
from fast_choice import keep_int8_chosen

from plugin.engine import load
from plugin.engine.errors import InputError, ModelError
from plugin.engine.precision import install_precision, legacy_preference, resolve


@pytest.fixture(scope="module")
def folders(tiny_model_dir, tmp_path_factory):
    """Model folders as the policy sees them: fp32, fp32 with an int8 denoiser, fp16 (the
    graphs are the tiny fp32 ones: the policy reads model.json and file names only)."""
    root = tmp_path_factory.mktemp("policy")
    made = {}
    for name, precision, int8 in (("fp32", "fp32", False), ("fp32+int8", "fp32", True), ("fp16", "fp16", False)):
        folder = root / name
        shutil.copytree(tiny_model_dir, folder)
        info = json.loads((folder / "model.json").read_text())
        info["precision"] = precision
        if int8:
            shutil.copy(folder / "denoiser.onnx", folder / "denoiser.int8.onnx")
            info["int8"] = {"file": "denoiser.int8.onnx"}
        (folder / "model.json").write_text(json.dumps(info))
        made[name] = folder
    return made


# device, CUDA in onnxruntime, preference, folder -> device run on, denoiser graph, its precision, notes
POLICY = [
    ("cpu", False, "faithful", "fp32", "cpu", "denoiser.onnx", "fp32", ()),
    ("cpu", False, "faithful", "fp32+int8", "cpu", "denoiser.onnx", "fp32", ()),
    ("cpu", False, "fast", "fp32+int8", "cpu", "denoiser.int8.onnx", "int8", ()),
    ("cpu", False, "fast", "fp32", "cpu", "denoiser.onnx", "fp32", ("no int8 denoiser",)),
    ("cpu", True, "fast", "fp32+int8", "cpu", "denoiser.int8.onnx", "int8", ()),
    ("auto", False, "fast", "fp32+int8", "cpu", "denoiser.int8.onnx", "int8", ()),
    ("auto", True, "faithful", "fp16", "cuda", "denoiser.onnx", "fp16", ()),
    ("auto", True, "fast", "fp16", "cuda", "denoiser.onnx", "fp16", ("int8 denoiser is for the CPU",)),
    ("cuda", True, "fast", "fp32+int8", "cuda", "denoiser.onnx", "fp32", ("int8 denoiser is for the CPU",)),
    ("cuda", True, "faithful", "fp32", "cuda", "denoiser.onnx", "fp32", ()),
    ("cuda", False, "faithful", "fp16", "cpu", "denoiser.onnx", "fp16", ("no CUDA provider",)),
    ("cuda", False, "fast", "fp32+int8", "cpu", "denoiser.int8.onnx", "int8", ("no CUDA provider",)),
]


@pytest.mark.parametrize("device, cuda, preference, folder, runs_on, denoiser, precision, notes", POLICY)
def test_policy_table(folders, device, cuda, preference, folder, runs_on, denoiser, precision, notes):
    plan = resolve(folders[folder], device, preference, cuda_available=cuda)
    assert plan.device == runs_on and set(plan.devices.values()) == {runs_on}
    assert plan.graphs["denoiser"].name == denoiser
    assert plan.precisions["denoiser"] == precision
    vae = "fp16" if folder == "fp16" else "fp32"
    assert plan.precisions["vae_encoder"] == plan.precisions["vae_decoder"] == vae
    assert set(plan.providers.values()) == {"CUDAExecutionProvider" if runs_on == "cuda" else "CPUExecutionProvider"}
    assert len(plan.notes) == len(notes)
    for note, expected in zip(plan.notes, notes):
        assert expected in note and "--" not in note


@pytest.mark.parametrize("device, cuda, expected", [
    ("cpu", True, "fp32"), ("auto", False, "fp32"), ("auto", True, "fp16"), ("cuda", True, "fp16"), ("cuda", False, "fp16"),
])
def test_install_precision_follows_the_device_setting(device, cuda, expected):
    assert install_precision(device, cuda_available=cuda) == expected


def test_bad_words_name_their_field(folders):
    with pytest.raises(InputError) as error:
        resolve(folders["fp32"], "tpu", "faithful", cuda_available=False)
    assert error.value.field == "device"
    with pytest.raises(InputError) as error:
        resolve(folders["fp32"], "cpu", "int8", cuda_available=False)
    assert error.value.field == "precision"


def test_missing_or_incomplete_folders_are_model_errors(folders, tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        resolve(tmp_path / "nothing", "cpu")
    broken = tmp_path / "broken"
    shutil.copytree(folders["fp32"], broken)
    (broken / "vae_decoder.onnx").unlink()
    with pytest.raises(ModelError, match="vae_decoder.onnx is missing"):
        resolve(broken, "cpu")


def test_the_model_opens_what_the_plan_says(folders, tiny_model_dir):
    keep_int8_chosen(folders["fp32+int8"])  # as a measurement left it (tests/test_fast_path.py)
    model = load(folders["fp32+int8"], device="cpu", preference="fast")
    planned = resolve(folders["fp32+int8"], "cpu", "fast")
    assert (model.plan.graphs, model.plan.precisions) == (planned.graphs, planned.precisions)
    assert model.plan.notes[:-1] == planned.notes and "denoiser runs int8 on onnxruntime" in model.plan.notes[-1]
    assert model.denoiser_precision == "int8" and model.provider == "CPUExecutionProvider"
    assert load(tiny_model_dir, device="cpu").denoiser_precision == "fp32"


def test_earlier_words_read_as_todays():
    assert legacy_preference("fast-int8") == legacy_preference("int8") == "fast"
    assert legacy_preference("faithful") == "faithful" and legacy_preference("turbo") is None
