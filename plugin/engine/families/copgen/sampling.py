"""Sampling exactly as the official ``CopgenModel.generate`` does, on one window.

The solver state is the flat concatenation of the GENERATED modalities' latents in network
order ([B, D], the official layout), so every solver of :mod:`plugin.engine.solvers` runs on it
unchanged. At every network call the generated modalities carry the state at time
t x 1000, the given ones their fixed latents (images: scaled posterior samples; scalars: the
encoded 3-vectors) at time 0, and the modalities neither given nor generated a FRESH N(0, 1)
draw at time 0. No guidance.

Random streams: from ``SeedSequence(seed)``, the first child draws x_T (one [B, *shape] float32
draw per generated modality, in network order), the second the "neither" noise (one
[B, *shape] float32 draw per such modality, in network order, at every network call).
"""

import numpy as np

from ...cancel import check_cancel
from ...solvers import solve
from .registry import BY_KEY, MODALITIES

NETWORK_TIME_SCALE = 1000.0  # the reference feeds t_continuous * 1000 to the network


def sampling_streams(seed):
    """(init, neither) numpy Generators of ``seed`` (see the module docstring)."""
    return tuple(np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))


def flat_layout(keys):
    """[(key, offset, size)] of the flat concatenation of ``keys`` (network order)."""
    layout, offset = [], 0
    for key in keys:
        size = BY_KEY[key].latent_size
        layout.append((key, offset, size))
        offset += size
    return layout


def flatten(arrays, keys):
    """{key: [B, *shape]} -> [B, D] in the order of ``keys``."""
    return np.concatenate([arrays[key].reshape(len(arrays[key]), -1) for key in keys], axis=1)


def unflatten(flat, keys):
    """[B, D] -> {key: [B, *shape]} (views into ``flat``)."""
    return {
        key: flat[:, offset:offset + size].reshape((len(flat),) + BY_KEY[key].latent_shape)
        for key, offset, size in flat_layout(keys)
    }


class JointDenoiser:
    """``model_fn(x, t)`` for :func:`plugin.engine.solvers.solve` over the flat state.

    denoise({key: [B, *shape]} for all twelve, {key: [B]}) -> {key: noise}; neither_noise(call,
    keys, batch) -> {key: [B, *shape]}: the fresh latents of the modalities neither given nor
    generated at network call ``call`` (default: drawn from ``rng``).
    """

    def __init__(self, denoise, generated, conditions, batch, rng=None, neither_noise=None, cancel=None):
        self.denoise = denoise
        self.generated = tuple(generated)
        self.conditions = conditions
        self.batch = batch
        self.neither = tuple(k for k in MODALITIES if k not in self.generated and k not in conditions)
        self.neither_noise = neither_noise or self._draw
        self.rng = rng
        self.cancel = cancel
        self.calls = 0

    def _draw(self, call, keys, batch):
        return {
            key: self.rng.standard_normal((batch,) + BY_KEY[key].latent_shape, dtype=np.float32)
            for key in keys
        }

    def __call__(self, x, t_continuous):
        check_cancel(self.cancel, "sampling")
        latents = dict(self.conditions)
        latents.update(unflatten(np.asarray(x, dtype=np.float32), self.generated))
        latents.update(self.neither_noise(self.calls, self.neither, self.batch))
        self.calls += 1
        network_time = np.float32(t_continuous * NETWORK_TIME_SCALE)
        timesteps = {
            key: np.full(self.batch, network_time if key in self.generated else 0.0, np.float32)
            for key in MODALITIES
        }
        noise = self.denoise(latents, timesteps)
        return flatten(noise, self.generated)


def sample_joint(denoise, generated, conditions, x_T, steps, solver, rng=None, neither_noise=None,
                 progress=None, cancel=None):
    """The generated modalities' latents {key: [B, *shape]} after ``steps`` solver steps.

    generated: keys in network order; conditions: {key: [B, *shape]} float32; x_T: {key:
    [B, *shape]} for every generated key. See :class:`JointDenoiser` for the rest.
    """
    batch = len(next(iter(x_T.values())))
    model_fn = JointDenoiser(denoise, generated, conditions, batch, rng, neither_noise, cancel)
    result = solve(model_fn, flatten(x_T, generated), steps, solver, progress=progress, cancel=cancel)
    return {key: np.ascontiguousarray(value) for key, value in unflatten(result, generated).items()}
