"""A COP-GEN model's speed on this machine, kept in the speed cache (:mod:`plugin.engine.speed`):
the seconds per denoiser window at the batch a run calls it with, and of one latent cell through
the VAE encoders and decoders (with what opening one VAE costs), each timed once per model,
device and ONNX Runtime.

A batch of windows is timed as such: on a 2-core AVX-512 host a call of 4 full-size windows
took 1.7x the time per window of a call of one (bench/estimate_ratio.py, docs/performance.md).
The ten VAEs share one structure and differ only in their first and last convolutions, so one
VAE of each direction prices them all, per latent cell: it is timed on a square of
VAE_PROBE_LATENTS latents (a 10 m window, 192 px), on a VAE the run opens anyway. Each VAE a
run opens also costs its session and its first call's allocations, timed on the same VAE.
"""

import time

import numpy as np

from ... import speed
from .registry import BY_KEY, LATENT_CHANNELS, MODALITIES

VAE_PROBE_LATENTS = 24
_KNOWN = {}


def seconds_per_window(model, batch=1):
    """Seconds per window of a denoiser call of ``batch`` windows, measured on first use (after
    a call of one window, which allocates) and kept; None for a model built by hand (no plan to
    key it by)."""
    def inputs(count):
        latents = {k: np.zeros((count,) + BY_KEY[k].latent_shape, np.float32) for k in MODALITIES}
        return latents, {k: np.full(count, 500.0, np.float32) for k in MODALITIES}

    def run():
        model.denoise(*inputs(1))
        return [_timed(lambda: model.denoise(*inputs(batch))) / batch]

    kept = _kept(model, "cop-gen-window" + ("" if batch == 1 else f"-batch{batch}"), run, 1)
    return None if kept is None else kept[0]


def seconds_per_vae_latent(model, role, key):
    """(seconds per latent cell of a VAE ``role`` call ("encoder" or "decoder"), seconds of
    opening one VAE of that role and its first call's allocations), timed on image modality
    ``key``'s VAE and kept for all ten; None for a model built by hand."""
    side = VAE_PROBE_LATENTS

    def run():
        opened = _timed(lambda: model._vae(role, key))  # the session alone (the family's own model)
        if role == "decoder":
            latents = np.zeros((1, LATENT_CHANNELS, side, side), np.float32)
            call = lambda: model.decode(key, latents)  # noqa: E731
        else:
            image = np.zeros((1, BY_KEY[key].channels, 8 * side, 8 * side), np.float32)
            call = lambda: model.encode_moments(key, image)  # noqa: E731
        first, second = _timed(call), _timed(call)
        return [second / side ** 2, opened + max(0.0, first - second)]

    return _kept(model, f"cop-gen-{role}", run, 2)


def _kept(model, what, measure, length):
    """The figures (a list) of ``what`` for ``model``, from the cache or measured now."""
    key = speed.speed_key(model)
    if key is None:
        return None
    key = f"{key}:{what}"
    if key not in _KNOWN:
        kept = speed.recall(key)
        if not (isinstance(kept, list) and len(kept) == length and None not in kept):
            kept = measure()
            speed.remember(key, kept)
        _KNOWN[key] = tuple(float(value) for value in kept)
    return _KNOWN[key]


def _timed(call):
    start = time.perf_counter()
    call()
    return time.perf_counter() - start
