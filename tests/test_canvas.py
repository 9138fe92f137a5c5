"""The canvas sampler and the VAE over a canvas (plugin.engine.canvas) on the tiny converted model:
exactness against CopGenModel.sample, blending, determinism, cancel, and counted costs."""

import numpy as np
import pytest

from plugin.engine import load
from plugin.engine.canvas import CanvasDenoiser, canvas_streams, sample_canvas, to_uint8
from plugin.engine.vae_canvas import decode_canvas, encode_canvas
from plugin.engine.errors import Cancelled
from plugin.engine.families.beta.registry import MODALITIES
from plugin.engine.solvers import SOLVERS, solve
from plugin.engine.tiling import DEFAULT_TILING, FixedOverlap, parse_tiling, vae_layout

S1 = MODALITIES.index("s1_rtc")
GENERATED_WITH_S1_GIVEN = [i for i in range(4) if i != S1]
CELL = 134
STRATEGIES = ["overlap:16", "overlap:0", "schedule:4@0.7,8", "shifted", "shifted:4", "spread:4"]


@pytest.fixture(scope="module")
def model(tiny_model_dir):
    return load(tiny_model_dir, device="cpu")


class Counter:
    """Wraps a network function and counts its calls and items."""

    def __init__(self, function):
        self.function = function
        self.calls = 0
        self.items = 0
        self.shapes = []

    def __call__(self, batch, *args):
        self.calls += 1
        self.items += len(batch)
        self.shapes.append(batch.shape[-2:])
        return self.function(batch, *args)


def free_denoiser(latents, timesteps):
    """A network that costs nothing, for counting."""
    return np.zeros_like(latents)


# -- exactness ------------------------------------------------------------------------------------

@pytest.mark.parametrize("tiling", STRATEGIES)
@pytest.mark.parametrize("solver", SOLVERS)
def test_one_window_canvas_is_copgen_model_sample(model, tiling, solver):
    """On a 32-latent canvas every strategy is one window: the canvas sampler with a seed gives
    CopGenModel.sample's result with that seed, bit for bit (one sampler, one stream scheme)."""
    rng = np.random.default_rng(2)
    condition = rng.standard_normal((2, 4, 32, 32), dtype=np.float32)  # s1_rtc, 2 samples
    expected = model.sample(["dem", "s2_l1c"], {"s1_rtc": condition}, steps=4, solver=solver, seed=21)
    got = sample_canvas(model.denoise, [0, 2], [S1], condition[None], (2, 32, 32), 4, solver, tiling,
                        streams=canvas_streams(21), max_windows=model.max_batch)
    np.testing.assert_array_equal(got[0], expected["dem"])
    np.testing.assert_array_equal(got[1], expected["s2_l1c"])


def test_one_window_canvas_reproduces_the_reference_sampler(model, expected):
    """A canvas of exactly one window is the official sampler: s1_rtc given, 50 steps."""
    cond = expected["cond_s1_rtc"][None]
    result = sample_canvas(model.denoise, GENERATED_WITH_S1_GIVEN, [S1], cond, (1, 32, 32), 50,
                           "dpm-solver-fast", x_T=expected["cond_x_T"], streams=canvas_streams(0))
    error = np.abs(result - expected["cond_out"]).max() / expected["cond_out"].std()
    assert error < 1e-3


@pytest.mark.parametrize("tiling", STRATEGIES)
def test_the_same_seed_gives_the_same_canvas(model, tiling):
    def run(seed):
        return sample_canvas(model.denoise, [0], [], np.zeros((0, 1, 4, 40, 72), np.float32), (1, 40, 72),
                             3, "dpm-solver-fast", tiling, streams=canvas_streams(seed), max_windows=3)

    first, again, other = run(5), run(5), run(6)
    assert np.array_equal(first, again)
    assert not np.allclose(first, other)


def test_canvas_prediction_blends_the_windows_predictions(model):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 2, 4, 32, 48), dtype=np.float32)
    cond = rng.standard_normal((1, 2, 4, 32, 48), dtype=np.float32)
    denoiser = CanvasDenoiser(model.denoise, "overlap:16", 1, GENERATED_WITH_S1_GIVEN, [S1], cond, rng, max_windows=3)
    noise = denoiser(x, 0.7)  # windows at columns 0 and 16
    assert noise.shape == x.shape and noise.dtype == np.float32
    timesteps = np.where(np.arange(4) == S1, 0.0, 700.0).astype(np.float32)[None]
    for sample in range(2):
        direct = {}
        for col in (0, 16):
            latents = np.empty((1, 4, 4, 32, 32), dtype=np.float32)
            latents[0, GENERATED_WITH_S1_GIVEN] = x[:, sample, :, :, col:col + 32]
            latents[0, S1] = cond[0, sample, :, :, col:col + 32]
            direct[col] = model.denoise(latents, timesteps)[0, GENERATED_WITH_S1_GIVEN]
        got = noise[:, sample]
        np.testing.assert_allclose(got[..., :16], direct[0][..., :16], rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(got[..., 32:], direct[16][..., 16:], rtol=1e-4, atol=1e-5)
        low = np.minimum(direct[0][..., 16:], direct[16][..., :16]) - 1e-5
        high = np.maximum(direct[0][..., 16:], direct[16][..., :16]) + 1e-5
        assert np.all((got[..., 16:32] >= low) & (got[..., 16:32] <= high))


def test_uncovered_windows_get_fresh_noise_for_the_condition(model):
    """Coverage is per latent cell; a window is covered where any of its cells is, so it follows
    layouts that change per call."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 1, 4, 32, 48), dtype=np.float32)
    cond = rng.standard_normal((1, 1, 4, 32, 48), dtype=np.float32)
    cells = np.zeros((1, 32, 48), bool)
    cells[0, :, :10] = True  # data only in the first 10 columns: the window at column 16 has none
    denoiser = CanvasDenoiser(model.denoise, "overlap:16", 2, GENERATED_WITH_S1_GIVEN, [S1], cond,
                              np.random.default_rng(9), cond_cells=cells)
    first, second = denoiser(x, 0.7), denoiser(x, 0.7)
    replay = np.random.default_rng(9)  # nothing ignored: the stream only feeds the uncovered window
    timesteps = np.where(np.arange(4) == S1, 0.0, 700.0).astype(np.float32)[None]
    for noise in (first, second):
        latents = np.empty((1, 4, 4, 32, 32), dtype=np.float32)
        latents[0, GENERATED_WITH_S1_GIVEN] = x[:, 0, :, :, 16:]
        latents[0, S1] = replay.standard_normal((1, 4, 32, 32), dtype=np.float32)
        direct = model.denoise(latents, timesteps)[0, GENERATED_WITH_S1_GIVEN]
        np.testing.assert_allclose(noise[:, 0, ..., 32:], direct[..., 16:], rtol=1e-4, atol=1e-5)
    everywhere = CanvasDenoiser(model.denoise, "overlap:16", 1, GENERATED_WITH_S1_GIVEN, [S1], cond,
                                np.random.default_rng(9))
    np.testing.assert_allclose(first[..., :16], everywhere(x, 0.7)[..., :16], rtol=1e-4, atol=1e-5)


# -- cancel ---------------------------------------------------------------------------------------

def test_canvas_denoiser_stops_between_window_batches_when_cancelled(model):
    polls = []

    def cancel():
        polls.append(1)
        return len(polls) > 2

    counter = Counter(model.denoise)
    x = np.zeros((1, 1, 4, 64, 64), dtype=np.float32)
    denoiser = CanvasDenoiser(counter, "overlap:16", 1, [0], [], np.zeros((0, 1, 4, 64, 64), np.float32),
                              np.random.default_rng(0), max_windows=2, cancel=cancel)
    with pytest.raises(Cancelled):
        denoiser(x, 0.5)
    assert len(polls) == 3 and counter.calls == 3  # 9 windows: stopped after 3 batches of 2


def test_sampling_a_canvas_stops_between_calls_when_cancelled():
    calls = []

    def cancel():
        return len(calls) >= 2

    with pytest.raises(Cancelled, match="after 2 of 10"):
        sample_canvas(free_denoiser, [0], [], np.zeros((0, 1, 4, 64, 64), np.float32), (1, 64, 64), 10,
                      "ddim", DEFAULT_TILING, streams=canvas_streams(0), max_windows=64,
                      progress=lambda done, total: calls.append(done), cancel=cancel)


# -- counted costs --------------------------------------------------------------------------------

@pytest.mark.parametrize("steps", [20, 50])
@pytest.mark.parametrize("solver", SOLVERS)
def test_default_denoiser_windows_per_step_on_a_cell(steps, solver):
    """A Major TOM cell (134 x 134 latents): the default's network evaluations, counted through a
    real sampling run, stay within 1.65x the cell's area per step (today: 3.65x)."""
    counter = Counter(free_denoiser)
    sample_canvas(counter, [3], [], np.zeros((0, 1, 4, CELL, CELL), np.float32), (1, CELL, CELL), steps,
                  solver, DEFAULT_TILING, streams=canvas_streams(0), max_windows=64)
    area_tiles = (CELL / 32) ** 2
    assert counter.items / steps / area_tiles <= 1.65
    assert counter.items == sum(parse_tiling(DEFAULT_TILING).windows_per_call(CELL, CELL, steps))
    today = Counter(free_denoiser)
    sample_canvas(today, [3], [], np.zeros((0, 1, 4, CELL, CELL), np.float32), (1, CELL, CELL), steps, solver,
                  FixedOverlap(16), streams=canvas_streams(0), max_windows=64)
    assert today.items == 64 * steps


def test_decoder_and_encoder_tiles_on_a_cell_are_within_1_3_times_its_area():
    decoder = Counter(lambda z: np.zeros((len(z), 3, z.shape[2] * 8, z.shape[3] * 8), np.float32))
    rows = []
    decode_canvas(decoder, np.zeros((4, CELL, CELL), np.float32), lambda top, left, rgb: rows.append(rgb.shape[1]))
    assert sum(rows) == CELL * 8
    assert decoder.items == 4 and set(decoder.shapes) == {(76, 76)}
    assert decoder.items * 76 * 76 / CELL ** 2 <= 1.3  # decoder work over the cell's area

    encoder = Counter(lambda images: np.zeros((len(images), 8) + tuple(s // 8 for s in images.shape[2:]), np.float32))

    def read(row, col, height, width):
        return np.zeros((3, height, width), np.float32), np.ones((height, width), bool)

    encode_canvas(encoder, read, CELL, CELL, 8)
    assert encoder.items == 4 and set(encoder.shapes) == {(76 * 8, 76 * 8)}  # the decoder's tiles


# -- the VAE over a canvas -------------------------------------------------------------------------

class ArrayImage:
    """A rendered image held in memory, read tile by tile; data only from column ``first_col``."""

    def __init__(self, rgb, first_col=0):
        self.rgb = rgb
        self.first_col = first_col
        self.reads = []

    def __call__(self, row, col, height, width):
        self.reads.append((row, col, height, width))
        window = self.rgb[:, row:row + height, col:col + width]
        valid = np.zeros(window.shape[1:], dtype=bool)
        valid[:, max(0, self.first_col - col):] = True
        # the model domain of an 8-bit rendering, as geo's condition reader gives it
        return np.where(valid, window, 0).astype(np.float32) / 127.5 - 1.0, valid


def test_encode_canvas_blends_tile_moments(model):
    rgb = np.random.default_rng(4).integers(0, 256, (3, 384, 512), dtype=np.uint8)
    image = ArrayImage(rgb)
    layout = vae_layout(48, 64, max_tile=40)
    assert len(layout) == 4
    encoded = encode_canvas(model.encode_moments, image, 48, 64, 8, layout=layout)
    assert encoded.moments.shape == (8, 48, 64) and encoded.cells.all()
    assert len(image.reads) == len(layout)
    rows, cols = layout.window_shape
    first = model.encode_moments(rgb[None, :, :rows * 8, :cols * 8].astype(np.float32) / 127.5 - 1)[0]
    # cells only the first tile covers carry its moments
    np.testing.assert_allclose(encoded.moments[:, :8, :8], first[:, :8, :8], rtol=1e-4, atol=1e-5)


def test_encode_canvas_skips_tiles_without_data(model):
    rgb = np.random.default_rng(4).integers(0, 256, (3, 256, 640), dtype=np.uint8)
    image = ArrayImage(rgb, first_col=400)  # data from px 400 (latent 50)
    layout = vae_layout(32, 80, max_tile=40)
    encoded = encode_canvas(model.encode_moments, image, 32, 80, 8, layout=layout)
    assert not encoded.cells[:, :50].any() and encoded.cells[:, 50:].all()
    first_tile_only = layout.cols.starts[1]
    assert np.all(encoded.moments[:, :, :first_tile_only] == 0)


def test_decode_canvas_equals_whole_image_feathering(model):
    """Strip-wise decoding gives the image that feathering all tiles at once would, and writes
    every row once."""
    shape = (72, 130)
    latents = np.random.default_rng(6).standard_normal((4,) + shape, dtype=np.float32)
    layout = vae_layout(*shape, max_tile=48)  # smaller tiles than a run's, for several rows
    assert len(layout) > 4
    rows, cols = layout.rows.scaled(8), layout.cols.scaled(8)
    total = np.zeros((3, shape[0] * 8, shape[1] * 8))
    weight = np.zeros(total.shape[1:])
    for index in range(len(layout)):
        i, j = divmod(index, len(layout.cols))
        decoded = model.decode(layout.cut(latents, [index]))[0]
        weights = np.outer(rows.weights(i), cols.weights(j))
        top, left = rows.starts[i], cols.starts[j]
        total[:, top:top + rows.size, left:left + cols.size] += decoded * weights
        weight[top:top + rows.size, left:left + cols.size] += weights
    expected = to_uint8(total / weight)
    image = np.zeros_like(expected)
    written = np.zeros(expected.shape[1:], int)

    def write(row, col, strip):
        rgb = to_uint8(strip)
        image[:, row:row + rgb.shape[1], col:col + rgb.shape[2]] = rgb
        written[row:row + rgb.shape[1], col:col + rgb.shape[2]] += 1

    decode_canvas(model.decode, latents, write, layout=layout)
    assert np.all(written == 1)
    assert np.abs(image.astype(int) - expected).max() <= 1


def test_decode_canvas_stops_when_cancelled(model):
    with pytest.raises(Cancelled):
        decode_canvas(model.decode, np.zeros((4, 64, 64), np.float32), lambda *a: None, cancel=lambda: True)


def test_solve_with_the_canvas_denoiser_runs_every_solver(model):
    for solver in SOLVERS:
        denoiser = CanvasDenoiser(model.denoise, "schedule:4@0.5,8", 4, [0], [], np.zeros((0, 1, 4, 40, 40), np.float32),
                                  np.random.default_rng(0))
        x = solve(denoiser, np.random.default_rng(1).standard_normal((1, 1, 4, 40, 40), dtype=np.float32), 4, solver)
        assert x.shape == (1, 1, 4, 40, 40) and np.all(np.isfinite(x))
        assert denoiser.windows_run == [4, 4, 4, 4]  # 40 latents: 2 x 2 windows at both overlaps


# -- estimate and time left ------------------------------------------------------------------------

def test_estimate_counts_a_cell_before_any_work(model, monkeypatch):
    from plugin.engine.estimate import estimate_canvas

    estimate = estimate_canvas(model, CELL, CELL, n_generated=2, n_conditions=1, samples=1, steps=20)
    assert estimate.tiling == DEFAULT_TILING and estimate.calls == 20
    assert estimate.denoiser_windows == sum(parse_tiling(DEFAULT_TILING).windows_per_call(CELL, CELL, 20))
    assert (estimate.encoder_tiles, estimate.decoder_tiles) == (4, 8)
    assert estimate.seconds == pytest.approx(
        estimate.denoiser_windows * estimate.seconds_per_window
        + 4 * estimate.stage_seconds["encoding"] + 8 * estimate.stage_seconds["decoding"])
    text = estimate.describe()
    assert f"{estimate.denoiser_windows} denoiser windows over 20 calls" in text and "GiB" in text
    # measured once per model: a second estimate runs no network
    counter = Counter(model.denoise)
    monkeypatch.setattr(model, "denoise", counter)
    again = estimate_canvas(model, CELL, CELL, 2, 1, 1, 20, "overlap:16")
    assert counter.calls == 0 and again.denoiser_windows == 64 * 20


def test_progress_tells_the_estimate_first_and_then_the_time_left():
    from plugin.engine.estimate import RunEstimate, RunProgress

    now = [0.0]
    reports = []
    estimate = RunEstimate("overlap:16", 10, 100, 0, 10, 1.0, 200.0, 0,
                           {"encoding": 1.0, "denoising": 1.0, "decoding": 10.0})
    progress = RunProgress(lambda *args: reports.append(args), estimate, clock=lambda: now[0])
    assert reports[0][:2] == (0, 110) and reports[0][2].startswith("estimate: about 3 min")
    denoising = progress.stage("denoising")
    assert reports[-1] == (0, 110, "denoising")  # named as it starts, before its first window
    denoising(10)
    assert reports[-1] == (10, 110, "denoising")  # too early to tell
    now[0] = 40.0  # twice as slow as estimated: 20 windows took 40 s instead of 20 s
    denoising(10)
    assert reports[-1] == (20, 110, "denoising · about 6 min left")  # (200 - 20) s x 2
