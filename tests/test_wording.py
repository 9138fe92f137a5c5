"""Figures as every face words them: a real cover never shows as 0 % (nor a partial one as
100 %), and counts agree with their noun."""

from plugin.engine.wording import count, percent


def test_percent_never_rounds_a_real_cover_away():
    assert [percent(f) for f in (0.0, 0.002, 0.004, 0.5, 0.996, 1.0)] == ["0 %", "<1 %", "<1 %", "50 %", ">99 %", "100 %"]


def test_count_agrees_with_its_noun():
    assert [count(n, "cell") for n in (0, 1, 2)] == ["0 cells", "1 cell", "2 cells"]
