"""A COP-GEN model's seconds per denoiser window on this machine: one window timed once per
model, device and ONNX Runtime, kept in the speed cache (:mod:`plugin.engine.speed`)."""

import time

import numpy as np

from ... import speed
from .registry import BY_KEY, MODALITIES

_KNOWN = {}


def seconds_per_window(model):
    """Seconds of one denoiser window (batch 1), measured on first use and kept; None for a model
    built by hand (no plan to key it by)."""
    key = speed.speed_key(model)
    if key is None:
        return None
    key = f"{key}:cop-gen-window"
    if key not in _KNOWN:
        kept = speed.recall(key)
        if not (isinstance(kept, list) and len(kept) == 1):
            latents = {k: np.zeros((1,) + BY_KEY[k].latent_shape, np.float32) for k in MODALITIES}
            timesteps = {k: np.full(1, 500.0, np.float32) for k in MODALITIES}
            model.denoise(latents, timesteps)  # the first call allocates: time the second
            start = time.perf_counter()
            model.denoise(latents, timesteps)
            kept = [time.perf_counter() - start]
            speed.remember(key, kept)
        _KNOWN[key] = float(kept[0])
    return _KNOWN[key]
