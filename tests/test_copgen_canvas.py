"""COP-GEN over an area: canvases per modality on one 480 m lattice. One window is exactly
CopGenModel.sample; more windows are counted, blended and deterministic."""

import numpy as np
import pytest

from plugin.engine import load
from plugin.engine.families.copgen.canvas import WINDOW_UNITS, canvas_shape, sample_area
from plugin.engine.families.copgen.registry import BY_KEY
from plugin.engine.families.copgen.sampling import sampling_streams


@pytest.fixture(scope="module")
def model(copgen_model_dir):
    return load(copgen_model_dir, device="cpu")


def _condition(key, units, samples=1, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((samples,) + canvas_shape(key, units), dtype=np.float32)


@pytest.mark.parametrize("generated", [
    ("S1RTC_vh_vv",),
    ("3d_cartesian_lat_lon", "DEM_DEM", "S2L2A_B01_B09", "mean_timestamps"),
])
def test_one_window_is_exactly_the_model_sample(model, generated):
    units = (WINDOW_UNITS, WINDOW_UNITS)
    s2 = _condition("S2L2A_B02_B03_B04_B08", units, samples=2)
    date = model.preprocess("mean_timestamps", np.array([[2021, 7, 15]] * 2))
    conditions = {"S2L2A_B02_B03_B04_B08": s2}
    if "mean_timestamps" not in generated:
        conditions["mean_timestamps"] = date
    area = sample_area(model.denoise, generated, conditions, units, 2, 4, "dpm-solver-fast",
                       streams=sampling_streams(11))
    window = model.sample(generated, conditions=conditions, steps=4, seed=11)
    for key in generated:
        expected = window[key] if BY_KEY[key].has_vae else window[key][:, None]
        assert np.array_equal(area[key], expected), key


def test_windows_are_counted_and_every_modality_is_whole(model):
    units = (7, 9)  # 3.36 x 4.32 km
    seen = []
    result = sample_area(model.denoise, ("S1RTC_vh_vv", "S2L2A_B01_B09", "DEM_DEM"),
                         {"S2L2A_B02_B03_B04_B08": _condition("S2L2A_B02_B03_B04_B08", units)},
                         units, 1, 3, "ddim", streams=sampling_streams(3), on_denoiser=seen.append)
    assert seen[0].windows_run == [2 * 3] * 3  # spread:1 over 7 and 9 units: 2 x 3 windows
    assert result["S1RTC_vh_vv"].shape == (1, 8, 42, 54)
    assert result["S2L2A_B01_B09"].shape == (1, 8, 7, 9)
    assert result["DEM_DEM"].shape == (1, 8, 14, 18)
    assert all(np.isfinite(value).all() for value in result.values())


def test_area_sampling_is_deterministic_and_location_follows_the_window(model):
    units = (5, 5)
    centres = []

    def location(row, col):
        centres.append((row, col))
        lat, lon = 50.0 - 0.004 * row, 10.0 + 0.006 * col
        return model.preprocess("3d_cartesian_lat_lon", np.array([[lat, lon]]))[0]

    args = (model.denoise, ("S1RTC_vh_vv",), {}, units, 1, 2, "dpm-solver-fast")
    a = sample_area(*args, streams=sampling_streams(5), location=location)
    b = sample_area(*args, streams=sampling_streams(5), location=location)
    assert np.array_equal(a["S1RTC_vh_vv"], b["S1RTC_vh_vv"])
    assert set(centres) == {(0, 0), (0, 1), (1, 0), (1, 1)}  # spread:1 over 5 units: starts 0 and 1


def test_generated_location_is_one_guess_per_window(model):
    units = (4, 8)
    result = sample_area(model.denoise, ("3d_cartesian_lat_lon", "S1RTC_vh_vv"), {}, units, 1, 2, "ddim",
                         streams=sampling_streams(1))
    assert result["3d_cartesian_lat_lon"].shape == (1, 3, 1, 1, 3)  # spread:1 over 8 units: 3 windows
