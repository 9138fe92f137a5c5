"""Figures in the words every face shows them in (CLI lines, QGIS logs and metadata)."""


def percent(fraction):
    """A share (0..1) as "N %", never rounding a real cover to 0 or a partial one to 100."""
    if 0 < fraction < 0.005:
        return "<1 %"
    if 0.995 <= fraction < 1:
        return ">99 %"
    return f"{100 * fraction:.0f} %"


def count(number, noun, plural=None):
    """ "1 cell", "2 cells"."""
    return f"{number} {noun if number == 1 else plural or noun + 's'}"
