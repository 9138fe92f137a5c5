"""Window layouts and tiling strategies (plugin.engine.tiling): geometry, blend weights, costs,
parsing; and the raster side (plugin.geo.condition_tiles: nodata fill, coverage)."""

import numpy as np
import pytest

from plugin.engine.errors import InputError
from plugin.engine.tiling import (
    DEFAULT_TILING,
    FixedOverlap,
    Layout,
    Schedule,
    Shifted,
    Spread,
    cost,
    fade_in,
    lattice,
    parse_tiling,
    spread,
    vae_layout,
    vae_placement,
)
from plugin.geo.condition_tiles import ConditionReader, fill_nodata

CELL = 134  # a Major TOM cell: 1068 px padded to 1072 px on the 10 m grid


def covered_once_or_blended(placement):
    """Every cell inside some window, starts ordered, on the canvas, first 0 and last at the end."""
    starts = placement.starts
    assert starts[0] == 0 and starts[-1] == placement.length - placement.size
    assert list(starts) == sorted(set(starts))
    covered = np.zeros(placement.length, int)
    for start in starts:
        covered[start:start + placement.size] += 1
    assert covered.min() >= 1


def weight_sum(placement):
    total = np.zeros(placement.length)
    for index, start in enumerate(placement.starts):
        weights = placement.weights(index)
        assert weights.min() >= 0 and weights.max() <= 1
        total[start:start + placement.size] += weights
    return total


@pytest.mark.parametrize("length", [32, 33, 50, 64, 96, 100, 133, 134, 250])
@pytest.mark.parametrize("overlap", [0, 4, 8, 16])
@pytest.mark.parametrize("offset", [0, 5, 17])
def test_lattice_placements_cover_and_weights_sum_to_one(length, overlap, offset):
    if offset >= 32 - overlap:
        pytest.skip("offsets are below the stride")
    placement = lattice(length, overlap, offset)
    covered_once_or_blended(placement)
    inner = [s for s in placement.starts if (s - offset) % (32 - overlap) == 0 and s >= offset]
    assert all(b - a == 32 - overlap for a, b in zip(inner, inner[1:]))
    # crossfades partition unity: the blend needs no normalisation
    np.testing.assert_allclose(weight_sum(placement), 1.0, atol=1e-12)
    for fade, width in placement.fades:
        assert width == overlap


def test_overlap_zero_is_a_hard_partition_even_with_edge_windows():
    placement = lattice(134, 0, 10)  # edge windows at 0 and 102 overlap the lattice
    assert placement.starts == (0, 10, 42, 74, 102)
    owners = np.zeros(134, int)
    for index, start in enumerate(placement.starts):
        owners[start:start + 32] += placement.weights(index) == 1
    assert np.all(owners == 1)


@pytest.mark.parametrize("length", [33, 64, 100, 134, 250])
@pytest.mark.parametrize("overlap", [4, 16, 24, 31])
def test_spread_placements_are_the_fewest_windows_with_the_overlap(length, overlap):
    placement = spread(length, overlap)
    covered_once_or_blended(placement)
    gaps = np.diff(placement.starts)
    assert np.all(32 - gaps >= overlap)  # every overlap at least the minimum
    count = len(placement)
    if count > 2:  # one window fewer, spread evenly, would overlap less than asked
        assert 32 - (length - 32) / (count - 2) < overlap
    assert weight_sum(placement).min() > 0


def test_today_overlap_16_on_a_cell_is_64_windows():
    """The issue's count: 64 windows per step for one cell at overlap 16, 3.65x its area."""
    assert lattice(CELL, 16).starts == (0, 16, 32, 48, 64, 80, 96, 102)
    assert cost(FixedOverlap(16), CELL, CELL, 50) == pytest.approx(64 / (CELL / 32) ** 2)


@pytest.mark.parametrize("shape, tiling", [((96, 96), "overlap:16"), ((40, 72), "shifted:4"), ((64, 97), "spread:8"),
                                           ((96, 96), "overlap:0"), ((134, 134), DEFAULT_TILING)])
def test_cut_then_blend_reconstructs_the_canvas(shape, tiling):
    strategy = parse_tiling(tiling)
    for call in (0, 7, 19):
        layout = strategy.layout(*shape, call, 20)
        assert len(layout) == len(layout.rows) * len(layout.cols)
        assert layout.weight_sum.min() > 0
        canvas = np.random.default_rng(0).standard_normal((2, 3) + shape).astype(np.float32)
        total = np.zeros_like(canvas)
        indices = list(range(len(layout)))
        for start in range(0, len(indices), 5):  # in chunks, as the denoiser does
            part = indices[start:start + 5]
            layout.accumulate(total, layout.cut(canvas, part), part)
        np.testing.assert_allclose(layout.blend(total), canvas, rtol=1e-5, atol=1e-5)


def test_one_window_weighs_one_everywhere():
    layout = FixedOverlap(16).layout(32, 32)
    assert len(layout) == 1 and np.all(layout.weights(0) == 1)
    values = np.random.default_rng(1).standard_normal((1, 4, 32, 32)).astype(np.float32)
    total = np.zeros((4, 32, 32), np.float32)
    layout.accumulate(total, values, [0])
    assert np.array_equal(layout.blend(total), values[0])


def test_fade_in_ramps_sum_to_one():
    ramp = fade_in(16)
    assert ramp.min() > 0 and ramp.max() < 1
    np.testing.assert_allclose(ramp + ramp[::-1], 1.0, atol=1e-12)
    assert fade_in(0).size == 0


def test_schedule_follows_the_calls():
    schedule = parse_tiling("schedule:4@0.7,8")
    assert isinstance(schedule, Schedule)
    overlaps = [schedule.at(call, 20).overlap for call in range(20)]
    assert overlaps == [4] * 14 + [8] * 6
    counts = schedule.windows_per_call(CELL, CELL, 20)
    assert counts == [25] * 14 + [36] * 6
    assert [len(schedule.layout(CELL, CELL, call, 20)) for call in (0, 13, 14, 19)] == [25, 25, 36, 36]


def test_shifted_windows_move_every_call_and_never_wrap():
    shifted = Shifted(0)
    offsets = {(shifted.offset(call, 0), shifted.offset(call, 1)) for call in range(20)}
    assert len(offsets) >= 15
    for call in range(20):
        layout = shifted.layout(CELL, CELL, call, 20)
        for row, col in layout.windows:
            assert 0 <= row <= CELL - 32 and 0 <= col <= CELL - 32
        np.testing.assert_allclose(layout.weight_sum, 1.0, atol=1e-6)


@pytest.mark.parametrize("spec, expected", [
    (None, DEFAULT_TILING), ("", DEFAULT_TILING), ("overlap:16", "overlap:16"), (" Overlap : 4 ", "overlap:4"),
    ("shifted", "shifted"), ("shifted:0", "shifted"), ("shifted:4", "shifted:4"), ("spread:6", "spread:6"),
    ("schedule:4@0.7,8", "schedule:4@0.7,8"), ("schedule:0@0.3,4@0.7,16", "schedule:0@0.3,4@0.7,16"),
    ("schedule:spread:4@0.7,spread:8", "schedule:spread:4@0.7,spread:8"),
    ("schedule:overlap:4@0.5,shifted:4", "schedule:4@0.5,shifted:4"),
])
def test_parse_tiling_accepts_the_specs(spec, expected):
    tiling = parse_tiling(spec)
    assert tiling.spec == expected and str(tiling) == expected
    assert parse_tiling(tiling) is tiling
    assert parse_tiling(expected) == tiling


@pytest.mark.parametrize("spec, message", [
    ("overlap:32", "0..31"), ("overlap:-1", "whole number"), ("overlap", "whole number"),
    ("overlap:4.5", "whole number"), ("tiles:4", "unknown strategy 'tiles'"), ("shifted:40", "0..31"),
    ("schedule:4", "e.g. 4@0.7,8"), ("schedule:4@0.7", "e.g. 4@0.7,8"), ("schedule:4@1.5,8", "within"),
    ("schedule:4@0.7,8@0.5,16", "increase"), ("schedule:4@x,8", "not a fraction"), ("spread:32", "0..31"),
    ("schedule:schedule:4@0.5,8@0.5,8", "schedule"), ("schedule:spread:40@0.5,8", "0..31"),
    ("schedule:tiles@0.5,8", "unknown strategy"),
    (16, "expected a string"),
])
def test_parse_tiling_refuses_bad_specs_naming_the_option(spec, message):
    with pytest.raises(InputError, match=message) as error:
        parse_tiling(spec)
    assert error.value.field == "tiling"
    assert str(error.value).startswith("tiling: ")


def test_canvas_smaller_than_a_window_is_refused():
    with pytest.raises(InputError, match="smaller than one window"):
        FixedOverlap(16).layout(31, 64)


def test_strategy_objects_check_their_arguments():
    for make in (FixedOverlap, Spread, Shifted):
        with pytest.raises(InputError, match="0..31"):
            make(32)
    with pytest.raises(InputError, match="within"):
        Schedule([(FixedOverlap(4), 0.0)], FixedOverlap(8))


# -- the VAE's tiles ---------------------------------------------------------------------------

@pytest.mark.parametrize("length", [32, 40, 41, 80, 81, 96, 133, 134, 200, 250, 1000])
def test_vae_tiles_are_of_one_size_and_overlap_by_at_least_12_latents(length):
    placement = vae_placement(length)
    covered_once_or_blended(placement)
    assert placement.size <= 80
    if len(placement) > 1:
        assert min(width for _, width in placement.fades) >= 12
        # the crossfades span the whole overlaps
        assert [w for _, w in placement.fades] == [a + placement.size - b for a, b in zip(placement.starts,
                                                                                        placement.starts[1:])]
    assert weight_sum(placement).min() > 0
    if length in (96, 133, 134, 200):  # up to 1.5 cells a side: within the budget (just above a
        # tile, as at 81, or on large areas the minimum overlap costs a little more: 1.35x, 1.37x)
        assert (len(placement) * placement.size / length) ** 2 <= 1.3


def test_vae_work_on_a_cell_is_within_1_3_times_its_area():
    layout = vae_layout(CELL, CELL)
    work = len(layout) * layout.window_shape[0] * layout.window_shape[1]
    assert len(layout) == 4 and layout.window_shape == (76, 76)
    assert layout.boundaries() == ((67,), (67,))  # crossfades over latents 58..75, 18 wide
    assert work / CELL ** 2 <= 1.3


# -- the raster side ---------------------------------------------------------------------------

def test_condition_reader_fills_and_counts_coverage():
    rgb = np.full((3, 64, 64), 200, np.uint8)
    valid = np.zeros((64, 64), bool)
    valid[:, :16] = True

    def read_window(row, col, height, width):
        return rgb[:, row:row + height, col:col + width], valid[row:row + height, col:col + width]

    reader = ConditionReader(read_window, 8, 8, area_mask=lambda r, c, h, w: np.ones((h, w), bool))
    filled, seen = reader(0, 0, 64, 64)
    assert np.array_equal(seen, valid) and np.all(filled == np.float32(200) / 127.5 - 1.0)  # filled, in the model domain
    assert reader.coverage == pytest.approx(0.25)
    reader(0, 0, 64, 64)  # read again (tiles overlap): set, not added
    assert reader.coverage == pytest.approx(0.25)


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


def test_layout_of_two_placements_has_their_product_of_windows():
    layout = Layout(lattice(64, 16), spread(100, 8))
    assert len(layout) == len(layout.rows) * len(layout.cols)
    assert layout.window_shape == (32, 32)
    assert layout.windows[0] == (0, 0) and layout.windows[-1] == (32, 68)
