"""Test helper: a model folder's fast path decided by given timings instead of the clock."""

from plugin.engine import fast_path
from plugin.engine.model_folder import read_info
from plugin.engine.precision import resolve


def timings(seconds, calls=None):
    """A fast_path timer returning ``seconds[precision]`` for each candidate; it still runs the
    call once, so the session is really used. ``calls`` (a list) records the names timed."""

    def timer(name, call):
        call()
        if calls is not None:
            calls.append(name)
        return seconds[name.split(" on ")[0]]

    return timer


def choose_with(model_dir, seconds, **seams):
    """The fast CPU plan of ``model_dir`` after a measurement that took ``seconds`` (precision ->
    seconds per call); the choice is kept in the folder's cache like a real one."""
    info = read_info(model_dir / "model.json")
    plan = resolve(model_dir, "cpu", "fast", info=info)
    return fast_path.apply(plan, info, timer=timings(seconds), **seams)


def keep_int8_chosen(model_dir):
    """Makes later loads of ``model_dir`` with the fast preference run the int8 denoiser (the
    tiny model's timings are too close to call), as a measurement on this host would leave it."""
    plan = choose_with(model_dir, {"int8": 1.0, "fp32": 2.0, "bf16": 3.0})
    assert plan.denoiser_precision == "int8"
    return model_dir
