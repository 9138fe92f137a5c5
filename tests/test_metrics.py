"""Image metrics on uint8 renderings: known values and an independent (direct-sum) SSIM."""

import math

import numpy as np
import pytest
from osgeo import gdal

from plugin.analysis.metrics import compare, histogram_distance, mean_absolute_error, psnr, ssim
from plugin.engine.errors import InputError


@pytest.fixture(scope="module")
def thumbnail(shared_dir):
    """The real S2 L2A thumbnail, uint8 [3, 256, 256]."""
    return gdal.Open(str(shared_dir / "data" / "copgen_beta_thumbnails" / "s2l2a.webp")).ReadAsArray()


def signed_noise(shape, magnitude, seed=0):
    """+-magnitude at every pixel: the mean squared error is exactly magnitude**2."""
    signs = np.random.default_rng(seed).choice([-1, 1], size=shape)
    return (signs * magnitude).astype(np.int16)


def naive_ssim(a, b, valid, sigma=1.5, radius=5, data_range=255.0):
    """SSIM by explicit window sums at every valid pixel (windows clipped to valid pixels)."""
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    height, width = valid.shape
    scores = []
    for x, y in zip(a.astype(float), b.astype(float)):
        values = []
        for row in range(height):
            for col in range(width):
                if not valid[row, col]:
                    continue
                rows = slice(max(row - radius, 0), min(row + radius + 1, height))
                cols = slice(max(col - radius, 0), min(col + radius + 1, width))
                dr = np.arange(rows.start, rows.stop)[:, None] - row
                dc = np.arange(cols.start, cols.stop)[None, :] - col
                w = np.exp(-(dr**2 + dc**2) / (2 * sigma**2)) * valid[rows, cols]
                w = w / w.sum()
                wx, wy = x[rows, cols], y[rows, cols]
                mx, my = (w * wx).sum(), (w * wy).sum()
                vx, vy = (w * (wx - mx) ** 2).sum(), (w * (wy - my) ** 2).sum()
                cov = (w * (wx - mx) * (wy - my)).sum()
                values.append(((2 * mx * my + c1) * (2 * cov + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2)))
        scores.append(np.mean(values))
    return float(np.mean(scores))


def test_identical_images(thumbnail):
    result = compare(thumbnail, thumbnail.copy())
    assert result.psnr == math.inf
    assert result.ssim == pytest.approx(1.0, abs=1e-12)
    assert result.mae == 0.0
    assert result.histogram_distance == 0.0


def test_known_noise_gives_known_psnr_and_mae(thumbnail):
    base = np.clip(thumbnail, 10, 245).astype(np.int16)  # room for +-7 without clipping
    noisy = (base + signed_noise(base.shape, 7)).astype(np.uint8)
    base = base.astype(np.uint8)
    assert psnr(base, noisy) == pytest.approx(10 * math.log10(255**2 / 49), abs=1e-9)
    assert mean_absolute_error(base, noisy) == pytest.approx(7.0)
    assert 0.0 < ssim(base, noisy) < 1.0


def test_ssim_matches_direct_window_sums_with_a_mask():
    rng = np.random.default_rng(3)
    a = rng.integers(0, 256, size=(3, 19, 23), dtype=np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-40, 41, size=a.shape), 0, 255).astype(np.uint8)
    valid = np.ones((19, 23), bool)
    valid[4:9, 6:15] = False
    valid[:, -2:] = False
    assert ssim(a, b, valid) == pytest.approx(naive_ssim(a, b, valid), rel=1e-10)


def test_ssim_of_flat_images_is_the_luminance_term():
    a = np.full((3, 32, 32), 100, np.uint8)
    b = np.full((3, 32, 32), 140, np.uint8)
    c1 = (0.01 * 255) ** 2
    assert ssim(a, b) == pytest.approx((2 * 100 * 140 + c1) / (100**2 + 140**2 + c1), rel=1e-12)


def test_inverted_structure_scores_below_zero(thumbnail):
    assert ssim(thumbnail, 255 - thumbnail) < 0.0


def test_histogram_distance_measures_colour_shift_not_position(thumbnail):
    base = np.clip(thumbnail, 0, 200)
    assert histogram_distance(base, base + np.uint8(10)) == pytest.approx(10.0)
    flat = base.reshape(3, -1)
    shuffled = flat[:, np.random.default_rng(1).permutation(flat.shape[1])].reshape(base.shape)
    assert histogram_distance(base, shuffled) == pytest.approx(0.0, abs=1e-12)
    assert mean_absolute_error(base, shuffled) > 10


def test_invalid_pixels_never_count(thumbnail):
    valid = np.zeros(thumbnail.shape[1:], bool)
    valid[:, :128] = True
    damaged = thumbnail.copy()
    damaged[:, :, 128:] = 255 - damaged[:, :, 128:]
    result = compare(thumbnail, damaged, valid)
    assert result.psnr == math.inf
    assert result.mae == 0.0
    assert result.histogram_distance == 0.0
    assert result.ssim == pytest.approx(1.0, abs=1e-12)
    assert compare(thumbnail, damaged).mae > 0


def test_grey_images_are_accepted():
    a = np.arange(64 * 64, dtype=np.uint32).reshape(64, 64).astype(np.uint8)
    assert psnr(a, a) == math.inf
    assert mean_absolute_error(a, 255 - a) == pytest.approx(np.abs(2 * a.astype(float) - 255).mean())


@pytest.mark.parametrize(
    "reference, candidate, valid, message",
    [
        (np.zeros((3, 8, 8), np.uint8), np.zeros((3, 8, 9), np.uint8), None, "shapes"),
        (np.zeros((3, 8, 8), np.uint8), np.zeros((3, 8, 8), np.float32), None, "candidate image must be uint8"),
        (np.zeros((3, 8, 8), np.uint8), np.zeros((3, 8, 8), np.uint8), np.zeros((8, 8), bool), "no valid pixel"),
        (np.zeros((3, 8, 8), np.uint8), np.zeros((3, 8, 8), np.uint8), np.ones((4, 4), bool), "valid mask"),
    ],
)
def test_bad_input_is_refused(reference, candidate, valid, message):
    with pytest.raises(InputError, match=message):
        compare(reference, candidate, valid)


def flat(colour, height=256, width=256):
    return np.broadcast_to(np.array(colour, np.uint8)[:, None, None], (3, height, width)).copy()


def count_colour(image, colour):
    return int(np.all(image == np.array(colour, np.uint8)[:, None, None], axis=0).sum())


def test_comparison_sheet_shows_real_left_generated_right_and_marks_conditions(tmp_path):
    from plugin.analysis.sheet import CONDITION_COLOUR, FRAME, SheetRow, render_sheet, write_sheet

    real = {
        "dem": flat((10, 20, 30)),
        "s1_rtc": flat((11, 21, 31)),
        "s2_l1c": flat((12, 22, 32)),
        "s2_l2a": flat((13, 23, 33), height=128),
    }  # a non-square rendering is letterboxed
    generated = {key: flat(np.array(colour[:, 0, 0]) + 100) for key, colour in real.items()}
    rows = [
        SheetRow("GIVEN S1 RTC", real, generated, ("s1_rtc",)),
        SheetRow("UNCONDITIONAL", real, generated, ()),
    ]
    cell = 64
    path = write_sheet(rows, tmp_path / "sheet.png", cell=cell)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sheet.png"]
    written = gdal.Open(str(path)).ReadAsArray()
    np.testing.assert_array_equal(written, render_sheet(rows, cell=cell))

    inner = (cell - 2 * FRAME) ** 2  # a framed cell keeps its centre
    assert count_colour(written, (10, 20, 30)) == 2 * cell * cell
    assert count_colour(written, (11, 21, 31)) == inner + cell * cell
    assert count_colour(written, (13, 23, 33)) == 2 * cell * cell // 2
    assert count_colour(written, (111, 121, 131)) == cell * cell  # the given modality is not "generated"
    assert count_colour(written, (110, 120, 130)) == 2 * cell * cell
    assert count_colour(written, CONDITION_COLOUR) >= cell * cell - inner


def test_comparison_sheet_refuses_images_that_are_not_renderings(tmp_path):
    from plugin.analysis.sheet import SheetRow, write_sheet

    with pytest.raises(InputError, match="uint8 RGB"):
        write_sheet([SheetRow("BAD", {"dem": np.zeros((3, 8, 8), np.float32)}, {})], tmp_path / "sheet.png")
    assert list(tmp_path.iterdir()) == []
