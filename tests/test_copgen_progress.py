"""A COP-GEN run reports its progress as COP-GEN-Beta's does (one RunProgress): the estimate
first, then each stage named as it starts (encoding each condition, denoising, decoding each
output), done counting the estimate's windows and VAE tiles up to its total, and the time left
once the run is TELL_AFTER_S old. A fake clock stands in for time: nothing here is timed."""

import functools
import itertools

import pytest

from plugin.engine import load, speed
from plugin.engine.estimate import SEPARATOR, TELL_AFTER_S, RunProgress
from plugin.engine.request import GenerationRequest
from plugin.geo import physical_pipeline
from plugin.geo.physical_pipeline import CanvasCost, PhysicalConditionSpec, canvas_cost
from _geo_helpers import S2_TILE

pytestmark = pytest.mark.timeout(300)
GENERATE = ["S1RTC_vh_vv", "DEM_DEM"]


def test_a_copgen_run_names_each_stage_as_it_starts_and_counts_the_estimates_work(tmp_path, monkeypatch,
                                                                                   copgen_model_dir):
    monkeypatch.setenv(speed.CACHE_DIR_ENV, str(tmp_path / "cache"))
    model = load(copgen_model_dir, "cpu")
    request = GenerationRequest(generate=GENERATE, conditions=(PhysicalConditionSpec("s2l2a", str(S2_TILE)),),
                                steps=2, family="cop-gen")
    priced = []
    monkeypatch.setattr(physical_pipeline, "canvas_cost", lambda *a: priced.append(canvas_cost(*a)) or priced[-1])
    ticks = itertools.count()  # one second passes each time the clock is read
    monkeypatch.setattr(physical_pipeline, "RunProgress",
                        functools.partial(RunProgress, clock=lambda: float(next(ticks))))
    reports = []
    physical_pipeline.generate_physical_area(model, request, tmp_path / "out",
                                             progress=lambda *args: reports.append(args))

    [cost] = priced
    assert cost.seconds is not None  # priced: the time left can be told
    assert reports[0] == (0, cost.evaluations, f"estimate: {cost.describe()}")
    assert {total for _, total, _ in reports} == {cost.evaluations}
    done = [d for d, _, _ in reports]
    assert done == sorted(done) and done[-1] == cost.evaluations
    stages = [message.partition(SEPARATOR)[0] for _, _, message in reports[1:]]
    order = list(dict.fromkeys(stages))
    assert order == ["encoding S2L2A_B01_B09", "encoding S2L2A_B02_B03_B04_B08",
                     "encoding S2L2A_B05_B06_B07_B11_B12_B8A", "denoising", "decoding DEM_DEM", "decoding S1RTC_vh_vv"]  # network order
    # each stage is named before its first unit is done, and counts the estimate's units
    counted = {}
    for (before, _, _), (after, _, message) in zip(reports, reports[1:]):
        stage = message.partition(SEPARATOR)[0]
        if stage not in counted:
            assert after == before, stage  # its first report: nothing of it done yet
            counted[stage] = 0
        counted[stage] += after - before
    assert all(counted.values())
    assert sum(n for stage, n in counted.items() if stage.startswith("encoding")) == cost.encoder_tiles
    assert counted["denoising"] == cost.windows
    assert sum(n for stage, n in counted.items() if stage.startswith("decoding")) == cost.decoder_tiles
    # the time left appears once the run is TELL_AFTER_S (fake) seconds old, and stays
    told = [SEPARATOR in message and message.endswith(" left") for _, _, message in reports[1:]]
    assert not told[0] and told[-1] and told == sorted(told)
    assert told.index(True) >= TELL_AFTER_S / 2  # each report reads the clock at most twice


def test_generated_scalars_keep_one_layout_and_the_estimate_counts_it(tmp_path, monkeypatch, copgen_model_dir):
    """Asked for the location, the canvas keeps the first call's windows at every call (one state
    per window): the estimate counts those, so done still ends at the estimate's total."""
    from bench.estimate_ratio import cell_condition

    monkeypatch.setenv(speed.CACHE_DIR_ENV, str(tmp_path / "cache"))
    model = load(copgen_model_dir, "cpu")
    condition = cell_condition(720, tmp_path)  # 15 x 15 units: the two strategies' layouts differ
    request = GenerationRequest(generate=["location", "DEM_DEM"],
                                conditions=(PhysicalConditionSpec("s2l2a", str(condition)),), steps=2, tiling="schedule:spread:3@0.5,spread:1", family="cop-gen")
    priced = []
    monkeypatch.setattr(physical_pipeline, "canvas_cost", lambda *a: priced.append(canvas_cost(*a)) or priced[-1])
    reports = []
    physical_pipeline.generate_physical_area(model, request, tmp_path / "out",
                                             progress=lambda *args: reports.append(args))

    [cost] = priced
    denoised = sum(after - before for (before, _, _), (after, _, message) in zip(reports, reports[1:])
                   if message.startswith("denoising"))
    assert denoised == cost.windows and cost.windows % 2 == 0  # the same windows at both calls
    assert reports[-1][:2] == (cost.evaluations, cost.evaluations)


def test_a_cost_counts_windows_and_tiles_and_tells_the_time_left_only_when_priced():
    """CanvasCost's units for RunProgress: windows and VAE tiles, each stage's seconds spread over
    its units; the clock starts with the first stage (reading the inputs is not priced)."""
    now = [0.0]
    speed_figures = {"window": 1.0, "encoder": 0.5, "open encoder": 2.0, "decoder": 1.0, "open decoder": 0.0}
    cost = CanvasCost(0, windows=10, calls=2, encoder_tiles=2, decoder_tiles=4, encoder_latents=8,
                      decoder_latents=16, vaes_opened=(1, 1), speed=speed_figures)
    assert cost.evaluations == 16
    assert cost.unit_seconds == {"encoding": 3.0, "denoising": 1.0, "decoding": 4.0}  # (4 + 2) / 2, 16 / 4
    reports = []
    progress = RunProgress(lambda *args: reports.append(args), cost, clock=lambda: now[0])
    now[0] = 100.0  # the inputs took long: not counted against the stages
    encoding = progress.stage("encoding S2L2A_B02_B03_B04_B08")
    now[0] = 112.0  # twice as slow as estimated: 2 tiles took 12 s instead of 6 s
    encoding(2)
    assert reports[-1] == (2, 16, "encoding S2L2A_B02_B03_B04_B08 · about 52 s left")  # (32 - 6) s x 2
    unpriced = CanvasCost(0, windows=10, calls=2, encoder_tiles=2, decoder_tiles=4)
    assert unpriced.unit_seconds is None and unpriced.seconds is None
    reports.clear()
    progress = RunProgress(lambda *args: reports.append(args), unpriced, clock=lambda: now[0])
    denoising = progress.stage("denoising")
    now[0] += 60.0
    denoising(10)
    assert reports[-1] == (10, 16, "denoising")  # counted, no time told
