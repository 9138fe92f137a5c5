"""COP-GEN-Beta over a latent canvas of any size: its sampler (the VAE over a canvas, shared by
both families, is :mod:`.vae_canvas`; COP-GEN's canvas sampler is ``families/copgen/canvas.py``).

A canvas is [4, H, W] latents (8 px each); a 32 x 32 canvas is one model tile, and
:meth:`plugin.engine.model.CopGenModel.sample` is exactly that case of :func:`sample_canvas`.
At every network call :class:`CanvasDenoiser` asks the tiling strategy (:mod:`.tiling`) for
the call's window layout, cuts every window of every sample, runs the denoiser on them with the
reference's per-modality semantics and blends the predicted noise back into one canvas
prediction. Every solver update is affine in the noise prediction with the same coefficients all
over the canvas, so blending predictions is blending the per-window updates (MultiDiffusion),
and every solver in :mod:`.solvers` runs unchanged.

Random streams (numpy Generators; one seed makes a run bit-for-bit reproducible):
``SeedSequence(seed).spawn(3)`` gives (init, ignored, posterior) (:func:`canvas_streams`).
``init`` draws x_T [n_generated, samples, 4, H, W] float32 once; ``ignored`` draws, at every
network call, the fresh noise of the modalities neither generated nor given ([jobs, 4, 32, 32]
per such modality, in modality order, jobs = samples x windows sample-major), then that of each
condition in the windows it does not cover (in condition order); ``posterior`` draws the
conditions' posterior noise ([samples, 4, H, W] per condition, in modality order, once).
"""


import numpy as np

from .cancel import check_cancel
from .families.beta.registry import LATENT_CHANNELS, MODALITIES, VAE_SCALE
from .solvers import solve
from . import vae_canvas
from .tiling import parse_tiling

NETWORK_TIME_SCALE = 1000.0  # the reference feeds t_continuous * N to the network


def canvas_streams(seed):
    """(init, ignored, posterior) Generators of ``seed`` (see the module docstring)."""
    return tuple(np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3))


def assemble_network_input(x_generated, generated_idx, cond_latents, cond_idx, t_continuous, rng):
    """The denoiser input for one network call, with the reference's per-modality semantics.

    x_generated: [n_generated, N, 4, h, w] solver state of the generated modalities;
    cond_latents: [n_cond, N, 4, h, w] (or a sequence of [N, 4, h, w]) fixed conditioning
    latents; generated_idx / cond_idx: their modality indices. Every other modality gets fresh
    N(0, 1) noise from ``rng``, drawn in modality order. Returns (latents [N, 4, 4, h, w],
    timesteps [N, 4]), float32: generated at t_continuous x 1000, all others at 0.
    """
    x_generated = np.asarray(x_generated)
    count, shape = x_generated.shape[1], x_generated.shape[2:]
    latents = np.empty((count, len(MODALITIES)) + shape, dtype=np.float32)
    timesteps = np.zeros((count, len(MODALITIES)), dtype=np.float32)
    for state, index in zip(x_generated, generated_idx):
        latents[:, index] = state
        timesteps[:, index] = t_continuous * NETWORK_TIME_SCALE
    for latent, index in zip(cond_latents, cond_idx):
        latents[:, index] = latent
    for index in range(len(MODALITIES)):
        if index not in generated_idx and index not in cond_idx:
            latents[:, index] = rng.standard_normal((count,) + shape, dtype=np.float32)
    return latents, timesteps


def split_generated(noise, generated_idx):
    """The generated modalities of a network output [N, 4, ...] as [n_generated, N, ...]."""
    return np.stack([noise[:, index] for index in generated_idx])


class CanvasDenoiser:
    """``model_fn(x, t)`` for :func:`plugin.engine.solvers.solve` over a latent canvas.

    ``x`` is the generated modalities' state [n_generated, S, 4, H, W] for S samples. Call k of
    ``calls`` uses ``tiling.layout(H, W, k, calls)``; cancel() is polled between its window
    batches (the solver polls before each call). In a window a condition does not cover,
    that modality is absent, as the reference treats modalities neither generated nor given:
    fresh N(0, 1) noise at time 0 on every call.
    """

    def __init__(self, denoise, tiling, calls, generated_idx, cond_idx, cond_latents, rng,
                 max_windows=4, cond_cells=None, cancel=None, on_windows=None):
        """denoise(latents [N, 4, 4, 32, 32], timesteps [N, 4]) -> noise [N, 4, 4, 32, 32];
        tiling: a :class:`.tiling.Tiling` or spec; calls: the solver's network calls (its
        steps); cond_latents: [n_cond, S, 4, H, W] fixed latents of the conditioning
        modalities; rng: the ``ignored`` stream; max_windows: windows per denoise call (cancel
        and on_windows(n) follow each); cond_cells: bool [n_cond, H, W], the latent cells each
        condition has data in (default: everywhere); a window is covered where any of its
        cells is."""
        self.denoise = denoise
        self.tiling = parse_tiling(tiling)
        self.calls = calls
        self.generated_idx = list(generated_idx)
        self.cond_idx = list(cond_idx)
        self.cond_latents = cond_latents
        self.cond_cells = None if cond_cells is None else np.asarray(cond_cells, dtype=bool)
        self.rng = rng
        self.max_windows = max_windows
        self.cancel = cancel
        self.on_windows = on_windows
        self.call = 0
        self.windows_run = []  # windows per call, for the counting tests and the bench

    def __call__(self, x, t_continuous):
        samples, height, width = x.shape[1], x.shape[-2], x.shape[-1]
        layout = self.tiling.layout(height, width, min(self.call, self.calls - 1), self.calls)
        self.call += 1
        windows = range(len(layout))
        jobs = [(sample, index) for sample in range(samples) for index in windows]
        latents, timesteps = assemble_network_input(
            _cut_jobs(x, layout, jobs), self.generated_idx,
            _cut_jobs(self.cond_latents, layout, jobs) if self.cond_idx else [], self.cond_idx,
            t_continuous, self.rng,
        )
        for k, index in enumerate(self.cond_idx):
            absent = ~np.array([self._covered(layout, k, i) for _, i in jobs])
            if absent.any():
                latents[absent, index] = self.rng.standard_normal(
                    (int(absent.sum()),) + latents.shape[2:], dtype=np.float32)
        noise = np.zeros(x.shape, dtype=np.float32)
        for start in range(0, len(jobs), self.max_windows):
            if start:  # the solver polls before each call
                check_cancel(self.cancel, "denoising")
            part = slice(start, start + self.max_windows)
            predicted = split_generated(self.denoise(latents[part], timesteps[part]), self.generated_idx)
            for k, (sample, index) in enumerate(jobs[part]):
                layout.accumulate(noise[:, sample], predicted[None, :, k], [index])
            if self.on_windows is not None:
                self.on_windows(len(jobs[part]))
        self.windows_run.append(len(layout))
        return layout.blend(noise)

    def _covered(self, layout, condition, index):
        return self.cond_cells is None or bool(self.cond_cells[condition][layout.slices(index)].any())


def _cut_jobs(canvas, layout, jobs):
    """Windows of canvas [M, S, 4, H, W] for (sample, window index) jobs, as [M, K, 4, h, w]."""
    return np.stack([canvas[(slice(None), sample, Ellipsis) + layout.slices(index)]
                     for sample, index in jobs], axis=1)


def sample_canvas(denoise, generated_idx, cond_idx, cond_latents, shape, steps, solver, tiling=None,
                  streams=None, x_T=None, cond_cells=None, max_windows=4, progress=None, cancel=None,
                  on_windows=None):
    """Generated latents [n_generated, S, 4, H, W] float32 on a canvas ``shape`` = (S, H, W).

    streams: (init, ignored, ...) Generators (:func:`canvas_streams`); x_T: the initial noise
    (drawn from ``init`` when None). progress(done, steps) follows the network calls;
    cancel() is polled before each call and each window batch. Arguments are the caller's to
    check; see :class:`CanvasDenoiser` for the rest.
    """
    init, ignored = streams[0], streams[1]
    if x_T is None:
        x_T = init.standard_normal((len(generated_idx),) + (shape[0], LATENT_CHANNELS) + tuple(shape[1:]),
                                   dtype=np.float32)
    denoiser = CanvasDenoiser(denoise, tiling, steps, generated_idx, cond_idx, cond_latents, ignored,
                              max_windows=max_windows, cond_cells=cond_cells, cancel=cancel,
                              on_windows=on_windows)
    return solve(denoiser, x_T, steps, solver, progress=progress, cancel=cancel)


def sample_posterior(moments, noise):
    """COP-GEN-Beta's scaled latents (x 0.18215) from moments [..., 8, H, W] and noise [..., 4, H, W]."""
    return vae_canvas.sample_posterior(moments, noise, VAE_SCALE)


def to_uint8(image):
    """[0, 1] floats to uint8 rounded half up, as the reference saves its images."""
    return np.clip(np.floor(image * 255.0 + 0.5), 0, 255).astype(np.uint8)
