"""The fast preference's per-host path selection (plugin.engine.fast_path), tiny int8 model.

Timings are injected through the selection's timer seam: the sessions are real (each candidate
is opened and called), only the seconds are given, so these tests decide, never measure speed.
"""

import json
import os
import re

import numpy as np
import onnx
import onnxruntime
import pytest

from fast_choice import choose_with, timings
from plugin.engine import fast_path, load
from plugin.engine.convert import convert
from plugin.engine.errors import CopGenError
from plugin.engine.model_folder import read_info
from plugin.engine.precision import resolve

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def int8_dir(fixtures_dir, tmp_path_factory):
    """A fresh tiny int8 folder per test: each starts without a cached choice."""
    template = tmp_path_factory.getbasetemp() / "fast_path_template" / "model"
    if not template.exists():
        convert(fixtures_dir / "denoiser_tiny.pth", fixtures_dir / "vae_tiny.pth", template, heads=2, precision="int8")
    folder = tmp_path_factory.mktemp("fast") / "model"
    folder.mkdir()
    for path in template.iterdir():
        os.link(path, folder / path.name)  # same files, own folder (and own cache file)
    return folder


@pytest.fixture(autouse=True)
def no_openvino(monkeypatch):
    """The candidates are fp32 and int8 on onnxruntime, whether or not openvino is installed here."""
    monkeypatch.setattr(fast_path, "openvino_version", lambda: None)


def test_the_faster_path_is_chosen_and_a_path_that_loses_never(int8_dir):
    slow_int8 = choose_with(int8_dir, {"fp32": 1.0, "int8": 3.0})
    assert slow_int8.denoiser_precision == "fp32"
    assert slow_int8.graphs["denoiser"] == int8_dir / "denoiser.onnx"
    assert slow_int8.runtimes["denoiser"] == "onnxruntime"
    note = slow_int8.notes[-1]
    assert "denoiser runs fp32 on onnxruntime" in note and "1.00 s per call" in note and "int8 on onnxruntime 3.00 s" in note

    (int8_dir / fast_path.CACHE_NAME).unlink()
    slow_fp32 = choose_with(int8_dir, {"fp32": 3.0, "int8": 1.0})
    assert slow_fp32.denoiser_precision == "int8"
    assert slow_fp32.graphs["denoiser"] == int8_dir / "denoiser.int8.onnx"
    assert slow_fp32.describe() == "fp32, int8 denoiser"


def test_a_path_over_the_error_bar_is_never_chosen_however_fast(int8_dir):
    class Noisy:  # the int8 session with 10 % noise on its prediction
        def __init__(self, session):
            self.session = session

        def run(self, feeds):
            out = self.session.run(feeds)[0]
            return [out + 0.1 * out.std() * np.random.default_rng(1).standard_normal(out.shape, np.float32)]

    def opener(candidate, threads):
        session = fast_path.open_candidate(candidate, threads)
        return Noisy(session) if candidate.precision == "int8" else session

    plan = choose_with(int8_dir, {"fp32": 5.0, "int8": 0.1}, opener=opener)
    assert plan.denoiser_precision == "fp32"
    assert re.search(r"int8 on onnxruntime not used: its error against fp32 \(10\.\d% RMS\) exceeds the 3% bar", plan.notes[-1])


def test_the_real_int8_graph_is_within_the_bar(int8_dir):
    figures = json.loads(json.dumps(fast_path.measure(
        fast_path.candidates(resolve(int8_dir, "cpu", "fast"), read_info(int8_dir / "model.json")),
        timer=timings({"fp32": 1.0, "int8": 1.0}),
    )))
    assert figures["errors"]["fp32 on onnxruntime"] == 0.0
    assert 0 < figures["errors"]["int8 on onnxruntime"] < fast_path.ERROR_BAR
    assert figures["rejected"] == {}


def test_a_cached_choice_is_reused_and_redone_when_the_runtime_or_a_graph_changes(int8_dir, monkeypatch):
    calls = []
    info = read_info(int8_dir / "model.json")
    plan = resolve(int8_dir, "cpu", "fast", info=info)

    def choose(info=info):
        return fast_path.apply(plan, info, timer=timings({"fp32": 2.0, "int8": 1.0}, calls))

    assert choose().notes[-1].endswith("measured now, kept for next time")
    assert calls == ["fp32 on onnxruntime", "int8 on onnxruntime"]
    assert choose().notes[-1].endswith("measured earlier on this machine")
    assert len(calls) == 2  # nothing timed again

    monkeypatch.setattr(onnxruntime, "__version__", "99.0.0")  # an upgraded runtime
    choose()
    assert len(calls) == 4
    choose()
    assert len(calls) == 4

    changed = json.loads(json.dumps(info))
    changed["files"]["denoiser.int8.onnx"]["sha256"] = "0" * 64  # the int8 graph was replaced
    choose(changed)
    assert len(calls) == 6


def test_a_report_applies_only_a_cached_choice(int8_dir):
    plan, info = resolve(int8_dir, "cpu", "fast"), read_info(int8_dir / "model.json")
    unmeasured = fast_path.apply(plan, info, measure_now=False, timer=None)  # a timer call would fail
    assert unmeasured.denoiser_precision == "int8" and unmeasured.notes[-1] == fast_path.FIRST_RUN_NOTE
    assert not (int8_dir / fast_path.CACHE_NAME).exists()
    choose_with(int8_dir, {"fp32": 1.0, "int8": 2.0})
    assert fast_path.apply(plan, info, measure_now=False).denoiser_precision == "fp32"


def test_load_runs_the_cached_choice(int8_dir):
    choose_with(int8_dir, {"fp32": 1.0, "int8": 2.0})
    model = load(int8_dir, device="cpu", preference="fast")
    assert model.denoiser_precision == "fp32" and model.plan.describe() == "fp32"
    assert model.plan.notes[-1].endswith("measured earlier on this machine")
    faithful = load(int8_dir, device="cpu")
    assert faithful.plan.notes == () and faithful.plan.runtimes == {}


def test_a_broken_cache_file_is_ignored_and_replaced(int8_dir):
    cache = int8_dir / fast_path.CACHE_NAME
    for broken in (b"{\"key\": ", b"\xff\xfe", b"[]", b'{"key": null, "seconds": 3}'):
        cache.write_bytes(broken)
        calls = []
        plan = fast_path.apply(
            resolve(int8_dir, "cpu", "fast"), read_info(int8_dir / "model.json"),
            timer=timings({"fp32": 2.0, "int8": 1.0}, calls),
        )
        assert plan.denoiser_precision == "int8" and len(calls) == 2
        assert json.loads(cache.read_text())["seconds"] == {"fp32 on onnxruntime": 2.0, "int8 on onnxruntime": 1.0}


def test_the_cache_is_written_atomically(int8_dir, monkeypatch):
    choose_with(int8_dir, {"fp32": 2.0, "int8": 1.0})
    cache = int8_dir / fast_path.CACHE_NAME
    kept = cache.read_bytes()

    def refuse(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", refuse)  # the rename into place fails
    plan = choose_with(int8_dir, {"fp32": 1.0, "int8": 2.0}, cache_path=cache.with_name("other.json"))
    assert plan.denoiser_precision == "fp32"  # the run goes on with its measurement
    assert sorted(p.name for p in int8_dir.iterdir() if "json" in p.name) == [fast_path.CACHE_NAME, "model.json"]
    assert cache.read_bytes() == kept


def test_timing_inputs_follow_the_declared_shapes_with_batch_1(int8_dir, tmp_path):
    feeds = fast_path.timing_inputs(int8_dir / "denoiser.onnx", np.random.default_rng(0))
    assert {name: value.shape for name, value in feeds.items()} == {"latents": (1, 4, 4, 32, 32), "timesteps": (1, 4)}
    assert 0 <= feeds["timesteps"].min() and feeds["timesteps"].max() < 1000

    model = onnx.load(int8_dir / "denoiser.onnx", load_external_data=False)
    model.graph.input[0].type.tensor_type.shape.dim[3].dim_param = "height"
    onnx.save(model, tmp_path / "open_height.onnx")
    with pytest.raises(CopGenError, match="'latents' has an undeclared dimension 3"):
        fast_path.timing_inputs(tmp_path / "open_height.onnx", np.random.default_rng(0))


def test_a_measurement_that_cannot_run_leaves_int8_with_a_note(int8_dir, monkeypatch):
    def undeclared(graph, rng):
        raise CopGenError(f"{graph}: input 'latents' has an undeclared dimension 3")

    monkeypatch.setattr(fast_path, "timing_inputs", undeclared)
    model = load(int8_dir, device="cpu", preference="fast")
    assert model.denoiser_precision == "int8"
    assert "could not be timed" in model.plan.notes[-1] and "undeclared dimension 3" in model.plan.notes[-1]
    assert not (int8_dir / fast_path.CACHE_NAME).exists()


def test_openvino_is_a_candidate_only_where_installed(int8_dir, monkeypatch):
    plan = resolve(int8_dir, "cpu", "fast")
    info = read_info(int8_dir / "model.json")
    assert [c.name for c in fast_path.candidates(plan, info)] == ["fp32 on onnxruntime", "int8 on onnxruntime"]
    monkeypatch.setattr(fast_path, "openvino_version", lambda: "2026.4.1")
    assert [c.name for c in fast_path.candidates(plan, info)][-1] == "bf16 on openvino"


def test_other_plans_are_left_alone(int8_dir, tiny_model_dir):
    for plan in (resolve(int8_dir, "cpu", "faithful"), resolve(tiny_model_dir, "cpu", "fast")):
        assert fast_path.apply(plan, read_info(plan.model_dir / "model.json")) is plan
    assert not (int8_dir / fast_path.CACHE_NAME).exists()
