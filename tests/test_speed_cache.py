"""The machine's speed is measured once per model, device and ONNX Runtime, then kept: a later
run (a fresh process's model object) prices its estimate without running a network; changed
graphs or another ONNX Runtime are measured again."""

import json
import shutil

import pytest

from plugin.engine import estimate, speed
from plugin.engine.model import CopGenModel


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv(speed.CACHE_DIR_ENV, str(tmp_path / "cache"))
    return tmp_path / "cache" / speed.CACHE_NAME


def counted(model):
    """``model`` whose network calls are counted in ``model.calls``."""
    model.calls = 0
    for name in ("denoise", "decode", "encode_moments"):
        call = getattr(model, name)

        def wrapper(*args, call=call, **kwargs):
            model.calls += 1
            return call(*args, **kwargs)

        setattr(model, name, wrapper)
    return model


def price(model_dir):
    model = counted(CopGenModel.open(model_dir, device="cpu"))
    figures = estimate.estimate_canvas(model, 64, 64, 1, 1, 1, 4)
    return model.calls, figures.stage_seconds


def test_measured_once_then_kept_for_new_model_objects(cache, tiny_model_dir):
    calls, first = price(tiny_model_dir)
    assert calls == 3 and cache.is_file()  # a denoiser window, a decoded and an encoded tile
    calls, again = price(tiny_model_dir)  # as a new process would open it
    assert calls == 0 and again == first


def test_another_onnxruntime_or_changed_graphs_are_measured_again(cache, tiny_model_dir, tmp_path, monkeypatch):
    import onnxruntime

    price(tiny_model_dir)
    monkeypatch.setattr(onnxruntime, "__version__", onnxruntime.__version__ + ".post1")
    assert price(tiny_model_dir)[0] == 3
    monkeypatch.undo()
    monkeypatch.setenv(speed.CACHE_DIR_ENV, str(cache.parent))
    changed = tmp_path / "changed"
    shutil.copytree(tiny_model_dir, changed)
    info = json.loads((changed / "model.json").read_text())
    info["files"]["denoiser.onnx"]["sha256"] = "0" * 64  # as after a re-conversion
    (changed / "model.json").write_text(json.dumps(info))
    assert price(changed)[0] == 3
    assert price(tiny_model_dir)[0] == 0  # the first model's entry is still there


def test_an_unreadable_cache_only_costs_a_measurement(cache, tiny_model_dir):
    cache.parent.mkdir(parents=True)
    cache.write_text("{not json")
    assert price(tiny_model_dir)[0] == 3
    assert price(tiny_model_dir)[0] == 0
