import numpy as np
import pytest

from plugin.engine import load
from plugin.engine.errors import Cancelled, InputError
from plugin.engine.modalities import MODALITIES
from plugin.engine.solvers import solve
from plugin.geo import tiling
from plugin.geo.tiling import (
    CanvasDenoiser,
    WindowLayout,
    blend_ramp,
    cut_windows,
    decode_canvas,
    encode_condition,
    fill_nodata,
    seam_score,
    to_uint8,
    window_starts,
)


@pytest.mark.parametrize("length, overlap", [(32, 16), (96, 16), (100, 16), (250, 16), (97, 0), (64, 8), (70, 31)])
def test_windows_cover_the_canvas_exactly(length, overlap):
    starts = window_starts(length, 32, overlap)
    assert starts[0] == 0 and starts[-1] == length - 32
    assert starts == sorted(set(starts))
    # Every step is the stride except the snapped last one, which may only be shorter.
    steps = np.diff(starts)
    assert np.all(steps[:-1] == 32 - overlap)
    assert np.all((steps > 0) & (steps <= 32 - overlap))
    covered = np.zeros(length, int)
    for start in starts:
        covered[start:start + 32] += 1
    assert covered.min() >= 1


def test_window_start_errors_name_the_parameter():
    with pytest.raises(InputError, match="overlap"):
        window_starts(96, 32, 32)
    with pytest.raises(InputError, match="overlap"):
        window_starts(96, 32, -1)
    with pytest.raises(InputError, match="smaller than one window"):
        window_starts(31, 32, 16)


def test_blend_ramp_is_positive_and_half_overlap_ramps_sum_to_one():
    ramp = blend_ramp(32, 16)
    assert ramp.min() > 0 and ramp.max() <= 1
    np.testing.assert_allclose(ramp[:16] + ramp[16:], 1.0, atol=1e-12)
    np.testing.assert_allclose(ramp, ramp[::-1])
    assert np.all(blend_ramp(32, 0) == 1)
    short = blend_ramp(32, 4)
    assert np.all(short[4:28] == 1) and np.all(np.diff(short[:5]) > 0)


@pytest.mark.parametrize("shape, overlap", [((96, 96), 16), ((40, 72), 16), ((64, 97), 8), ((96, 96), 0)])
def test_cut_then_blend_reconstructs_the_canvas(shape, overlap):
    layout = WindowLayout(*shape, overlap=overlap)
    assert len(layout) == len(layout.windows) == len(layout.rows) * len(layout.cols)
    assert layout.weight_sum.min() > 0
    canvas = np.random.default_rng(0).standard_normal((2, 3) + shape).astype(np.float32)
    windows = layout.windows
    # Blending chunk by chunk gives the same sum as blending all at once.
    total = np.zeros_like(canvas)
    for part in tiling.chunks(windows, 5):
        layout.accumulate(total, cut_windows(canvas, part), part)
    np.testing.assert_allclose(total / layout.weight_sum, canvas, rtol=1e-5, atol=1e-5)


def test_pixel_weights_feather_over_the_overlap_in_pixels():
    layout = WindowLayout(96, 96, overlap=16)
    ramp = blend_ramp(256, 128)
    np.testing.assert_allclose(layout.pixel_weights, np.outer(ramp, ramp), rtol=1e-6)
    np.testing.assert_allclose(ramp[:128] + ramp[128:], 1.0, atol=1e-12)
    assert layout.pixel_weights.min() > 0


def test_seam_score_sees_tile_grid_steps():
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[0:768, 0:768]
    smooth = np.sin(xx / 40.0) + np.cos(yy / 55.0) + 0.05 * rng.standard_normal((768, 768))
    assert seam_score(smooth) == pytest.approx(1.0, abs=0.1)
    offsets = rng.uniform(-1, 1, (3, 3))
    tiled = smooth + np.kron(offsets, np.ones((256, 256)))
    assert seam_score(tiled) > 3
    # A step that is not on the 256 px grid is not a seam.
    shifted = smooth + (xx > 300)
    assert seam_score(shifted) < 1.5
    with pytest.raises(InputError, match="tile grid"):
        seam_score(smooth[:200, :200])


# -- with the tiny converted model -------------------------------------------------------

S1 = MODALITIES.index("s1_rtc")
GENERATED_WITH_S1_GIVEN = [i for i in range(4) if i != S1]


@pytest.fixture(scope="module")
def model(tiny_model_dir):
    return load(tiny_model_dir, device="cpu")


def test_one_window_canvas_reproduces_the_reference_sampler(model, expected):
    """A canvas of exactly one window is the official sampler: s1_rtc given, 50 steps."""
    layout = WindowLayout(32, 32)
    cond = expected["cond_s1_rtc"][None]  # [n_cond, S, 4, 32, 32]
    denoiser = CanvasDenoiser(model, layout, GENERATED_WITH_S1_GIVEN, [S1], cond, np.random.default_rng(0))
    result = solve(denoiser, expected["cond_x_T"], steps=50)
    error = np.abs(result - expected["cond_out"]).max() / expected["cond_out"].std()
    assert error < 1e-3


def test_canvas_prediction_blends_the_windows_predictions(model):
    rng = np.random.default_rng(3)
    layout = WindowLayout(32, 48)  # windows at columns 0 and 16
    x = rng.standard_normal((3, 2, 4, 32, 48), dtype=np.float32)
    cond = rng.standard_normal((1, 2, 4, 32, 48), dtype=np.float32)
    denoiser = CanvasDenoiser(model, layout, GENERATED_WITH_S1_GIVEN, [S1], cond, rng, max_windows=3)
    noise = denoiser(x, 0.7)
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
        # Columns only one window covers carry that window's prediction ...
        np.testing.assert_allclose(got[..., :16], direct[0][..., :16], rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(got[..., 32:], direct[16][..., 16:], rtol=1e-4, atol=1e-5)
        # ... shared columns a weighted mean of the two predictions.
        low = np.minimum(direct[0][..., 16:], direct[16][..., :16]) - 1e-5
        high = np.maximum(direct[0][..., 16:], direct[16][..., :16]) + 1e-5
        assert np.all((got[..., 16:32] >= low) & (got[..., 16:32] <= high))


def test_canvas_denoiser_stops_between_batches_when_cancelled(model):
    layout = WindowLayout(64, 64)
    calls = []

    def cancel():
        calls.append(1)
        return len(calls) > 2

    x = np.zeros((1, 1, 4, 64, 64), dtype=np.float32)
    denoiser = CanvasDenoiser(model, layout, [0], [], np.zeros((0, 1, 4, 64, 64), np.float32),
                              np.random.default_rng(0), max_windows=2, cancel=cancel)
    with pytest.raises(Cancelled):
        denoiser(x, 0.5)
    assert len(calls) == 3


class ArrayCondition:
    """A rendered condition held in memory: the read_window of a PreparedCondition."""

    def __init__(self, rgb):
        self.rgb = rgb
        self.reads = []

    def read_window(self, row_off, col_off, height, width):
        self.reads.append((row_off, col_off, height, width))
        window = self.rgb[:, row_off:row_off + height, col_off:col_off + width]
        return window, np.ones(window.shape[1:], dtype=bool)


def test_encode_condition_places_each_tile_moments(model):
    rgb = np.random.default_rng(4).integers(0, 256, (3, 384, 512), dtype=np.uint8)
    layout = WindowLayout(48, 64)
    condition = ArrayCondition(rgb)
    encoded = encode_condition(model, condition.read_window, layout)
    moments = encoded.moments
    assert moments.shape == (8, 48, 64)
    assert encoded.covered.all() and encoded.coverage == 1.0
    assert len(condition.reads) == len(layout)
    assert all(read[2:] == (256, 256) for read in condition.reads)
    # The corners are covered by one window only: there the moments are that tile's moments.
    first = model.encode_moments(rgb[None, :, :256, :256].astype(np.float32) / 127.5 - 1)[0]
    last = model.encode_moments(rgb[None, :, 128:, 256:].astype(np.float32) / 127.5 - 1)[0]
    np.testing.assert_allclose(moments[:, :16, :16], first[:, :16, :16], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(moments[:, -16:, -16:], last[:, -16:, -16:], rtol=1e-4, atol=1e-5)


class PartialCondition(ArrayCondition):
    """Data only in columns ``first_col`` onwards (the rendering is black elsewhere)."""

    def __init__(self, rgb, first_col):
        super().__init__(rgb)
        self.first_col = first_col

    def read_window(self, row_off, col_off, height, width):
        window, _ = super().read_window(row_off, col_off, height, width)
        valid = np.zeros(window.shape[1:], dtype=bool)
        valid[:, max(0, self.first_col - col_off):] = True
        return np.where(valid, window, 0).astype(np.uint8), valid


def test_encode_condition_skips_windows_without_data_and_measures_coverage(model):
    rgb = np.random.default_rng(4).integers(0, 256, (3, 256, 640), dtype=np.uint8)
    layout = WindowLayout(32, 80)  # windows at columns 0, 16, 32, 48 (latents)
    condition = PartialCondition(rgb, first_col=300)  # data from px 300: windows at 128 px and on miss it
    counted = []
    encoded = encode_condition(model, condition.read_window, layout, on_windows=counted.append)
    assert layout.cols == [0, 16, 32, 48]
    assert encoded.covered.tolist() == [False, True, True, True]
    assert sum(counted) == len(layout)
    assert encoded.coverage == pytest.approx(340 / 640)
    # the canvas where only the empty window lies is left at zero ...
    assert np.all(encoded.moments[:, :, :16] == 0)
    # ... and the covered window sharing its columns alone gives their moments, not a blend
    # with a black tile
    tile = fill_nodata(*condition.read_window(0, 128, 256, 256))
    alone = model.encode_moments(tile[None].astype(np.float32) / 127.5 - 1)[0]
    np.testing.assert_allclose(encoded.moments[:, :, 16:32], alone[:, :, :16], rtol=1e-4, atol=1e-5)
    # the area mask limits what coverage counts
    left_half = encode_condition(
        model, condition.read_window, layout,
        area_mask=lambda row, col, h, w: (np.arange(col, col + w) < 320)[None, :].repeat(h, axis=0),
    )
    assert left_half.coverage == pytest.approx(20 / 320)


def test_uncovered_windows_get_fresh_noise_for_the_condition(model):
    rng = np.random.default_rng(3)
    layout = WindowLayout(32, 48)  # windows at columns 0 and 16
    x = rng.standard_normal((3, 1, 4, 32, 48), dtype=np.float32)
    cond = rng.standard_normal((1, 1, 4, 32, 48), dtype=np.float32)
    covered = np.array([[True, False]])
    denoiser = CanvasDenoiser(model, layout, GENERATED_WITH_S1_GIVEN, [S1], cond, np.random.default_rng(9),
                              cond_covered=covered)
    first, second = denoiser(x, 0.7), denoiser(x, 0.7)
    replay = np.random.default_rng(9)  # no modality is ignored: the stream only feeds the uncovered window
    timesteps = np.where(np.arange(4) == S1, 0.0, 700.0).astype(np.float32)[None]
    for noise in (first, second):
        latents = np.empty((1, 4, 4, 32, 32), dtype=np.float32)
        latents[0, GENERATED_WITH_S1_GIVEN] = x[:, 0, :, :, 16:]
        latents[0, S1] = replay.standard_normal((1, 4, 32, 32), dtype=np.float32)
        direct = model.denoise(latents, timesteps)[0, GENERATED_WITH_S1_GIVEN]
        # columns only the uncovered window sees carry its prediction with noise as the S1 input
        np.testing.assert_allclose(noise[:, 0, ..., 32:], direct[..., 16:], rtol=1e-4, atol=1e-5)
    covered_everywhere = CanvasDenoiser(model, layout, GENERATED_WITH_S1_GIVEN, [S1], cond, np.random.default_rng(9))
    np.testing.assert_allclose(first[..., :16], covered_everywhere(x, 0.7)[..., :16], rtol=1e-4, atol=1e-5)


def test_decode_canvas_writes_every_row_once_and_feathers_windows(model):
    latents = np.random.default_rng(5).standard_normal((4, 48, 64), dtype=np.float32)
    layout = WindowLayout(48, 64)
    image = np.zeros((3, 384, 512), dtype=np.uint8)
    written = np.zeros((384, 512), dtype=int)

    def write(row_off, col_off, rgb):
        image[:, row_off:row_off + rgb.shape[1], col_off:col_off + rgb.shape[2]] = rgb
        written[row_off:row_off + rgb.shape[1], col_off:col_off + rgb.shape[2]] += 1

    decode_canvas(model, latents, layout, write)
    assert np.all(written == 1)
    first = to_uint8(model.decode(latents[None, :, :32, :32])[0])
    last = to_uint8(model.decode(latents[None, :, 16:, 32:])[0])
    # Pixels only one window covers are that window's decoding (up to rounding).
    assert np.abs(image[:, :128, :128].astype(int) - first[:, :128, :128]).max() <= 1
    assert np.abs(image[:, -128:, -128:].astype(int) - last[:, -128:, -128:]).max() <= 1
    # Rows 128..255 of the first columns are shared with the window below: a blend of the two.
    below = to_uint8(model.decode(latents[None, :, 16:, :32])[0]).astype(int)
    shared, upper, lower = image[:, 128:256, :128].astype(int), first[:, 128:, :128], below[:, :128, :128]
    assert np.all(shared >= np.minimum(upper, lower) - 1) and np.all(shared <= np.maximum(upper, lower) + 1)
    assert not np.array_equal(shared, upper) and not np.array_equal(shared, lower)


@pytest.mark.parametrize("shape", [(40, 72), (33, 32)])
def test_decode_canvas_equals_whole_image_feathering(model, shape):
    """Strip-wise decoding gives the image that feathering all windows at once would."""
    latents = np.random.default_rng(6).standard_normal((4,) + shape, dtype=np.float32)
    layout = WindowLayout(*shape)
    total = np.zeros((3, shape[0] * 8, shape[1] * 8))
    weight = np.zeros(total.shape[1:])
    for row, col in layout.windows:
        decoded = model.decode(latents[None, :, row:row + 32, col:col + 32])[0]
        total[:, row * 8:row * 8 + 256, col * 8:col * 8 + 256] += decoded * layout.pixel_weights
        weight[row * 8:row * 8 + 256, col * 8:col * 8 + 256] += layout.pixel_weights
    expected = to_uint8(total / weight)
    image = np.zeros_like(expected)
    strips = []

    def write(row_off, col_off, rgb):
        strips.append((row_off, rgb.shape[1]))
        image[:, row_off:row_off + rgb.shape[1], col_off:col_off + rgb.shape[2]] = rgb

    decode_canvas(model, latents, layout, write)
    assert [top for top, _ in strips] == [row * 8 for row in layout.rows]
    assert sum(height for _, height in strips) == shape[0] * 8
    assert np.abs(image.astype(int) - expected).max() <= 1


def test_decode_canvas_stops_when_cancelled(model):
    layout = WindowLayout(64, 64)
    with pytest.raises(Cancelled):
        decode_canvas(model, np.zeros((4, 64, 64), np.float32), layout, lambda *a: None, cancel=lambda: True)


def test_fill_nodata_continues_the_valid_edge_and_keeps_valid_pixels():
    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 256, size=(3, 40, 40), dtype=np.uint8)
    valid = np.zeros((40, 40), dtype=bool)
    valid[8:32, 8:32] = True
    rgb[:, ~valid] = 0  # the rendering's black fill
    filled = fill_nodata(rgb, valid)
    assert filled.dtype == np.uint8
    np.testing.assert_array_equal(filled[:, valid], rgb[:, valid])
    # a padded row continues the first valid row it grew from (single-neighbour growth)
    np.testing.assert_array_equal(filled[:, 0, 8:32], rgb[:, 8, 8:32])
    np.testing.assert_array_equal(filled[:, 20, 0], rgb[:, 20, 8])
    assert (filled[:, ~valid] > 0).mean() > 0.9


def test_fill_nodata_leaves_full_and_empty_tiles_alone():
    rgb = np.full((3, 8, 8), 7, dtype=np.uint8)
    assert fill_nodata(rgb, np.ones((8, 8), bool)) is rgb
    assert fill_nodata(rgb, np.zeros((8, 8), bool)) is rgb
