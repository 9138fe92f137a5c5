"""COP-GEN over an area: one latent canvas per modality, all on one lattice of 480 m units.

A 60 m latent is 480 m, so the lattice unit is one latent of the coarsest modalities and a
model window is 4 x 4 units (1.92 km): 24 latents at 10 m, 12 at 20 m, 8 for the DEM's 30 m, 4
at 60 m. Window origins land on the lattice, so every modality's window is a whole block of its
canvas. At every network call the tiling strategy (:mod:`plugin.engine.tiling`, in units) gives
the call's windows; each window of each sample is denoised with the reference's per-modality
semantics (:mod:`.sampling`) and the predictions are blended back per modality with the
layout's weights scaled to that modality's latents (MultiDiffusion, as for COP-GEN-Beta).

Scalars: a given location is the window's own (``location(row, col)`` -> the 3-vector of the
window's centre, from the grid); a given date is the same everywhere. A generated scalar is
what the model thinks of each window: the canvas then keeps one layout for every call (the
first call's) and one state per window.

Random streams (one seed, one result): ``SeedSequence(seed).spawn(2)`` gives (init, neither).
``init`` draws the generated canvases ([S, C, H, W] per image modality, then [S, windows, 1, 1,
3] per scalar, in network order) once; ``neither`` draws, at every call, the fresh latents of
the modalities neither given nor generated ([jobs, *shape] per modality in network order; jobs
= samples x windows, sample-major), then those of each image condition in the windows it does
not cover. On one window this is exactly :meth:`CopGenModel.sample`'s draws.
"""

import numpy as np

from ...cancel import check_cancel
from ...solvers import solve
from ...tiling import Layout, parse_tiling
from .registry import BY_KEY, MODALITIES
from .sampling import NETWORK_TIME_SCALE

WINDOW_UNITS = 4
UNIT_METRES = 480
DEFAULT_TILING = "spread:1"  # in units: windows overlap by a quarter at least


def latents_per_unit(key):
    """Latents of ``key`` per 480 m unit (10 m: 6, 20 m: 3, DEM 30 m: 2, 60 m: 1)."""
    return BY_KEY[key].latent_shape[1] // WINDOW_UNITS


def canvas_shape(key, units):
    """[C, H, W] of ``key``'s canvas over ``units`` = (rows, cols)."""
    factor = latents_per_unit(key)
    return (BY_KEY[key].latent_shape[0], units[0] * factor, units[1] * factor)


class _State:
    """The solver's flat state [D] <-> {key: canvas [S, C, H, W] or scalars [S, n, 1, 1, 3]}."""

    def __init__(self, shapes):
        self.shapes = shapes
        self.sizes = {key: int(np.prod(shape)) for key, shape in shapes.items()}

    def split(self, flat):
        parts, offset = {}, 0
        for key, shape in self.shapes.items():
            parts[key] = flat[offset:offset + self.sizes[key]].reshape(shape)
            offset += self.sizes[key]
        return parts

    def join(self, parts):
        return np.concatenate([parts[key].reshape(-1) for key in self.shapes])


class AreaDenoiser:
    """``model_fn(x, t)`` for :func:`plugin.engine.solvers.solve` over the canvases."""

    def __init__(self, denoise, tiling, calls, units, samples, generated, conditions, rng,
                 location=None, cond_cells=None, max_windows=4, cancel=None, fixed_layout=None, on_windows=None):
        self.denoise = denoise
        self.tiling = tiling
        self.calls = calls
        self.units = units
        self.samples = samples
        self.generated = tuple(generated)
        self.conditions = conditions  # {key: canvas [S, C, H, W]} / {date: [S, 1, 1, 3]}
        self.location = location
        self.cond_cells = cond_cells or {}
        self.neither = tuple(k for k in MODALITIES if k not in self.generated and k not in conditions
                             and not (k == "3d_cartesian_lat_lon" and location is not None))
        self.rng = rng
        self.max_windows = max_windows
        self.cancel = cancel
        self.fixed_layout = fixed_layout
        self.on_windows = on_windows  # on_windows(n) after each batch of n windows (progress)
        self.call = 0
        self.windows_run = []
        self.state = None  # set by sample_area

    def layout(self, call):
        if self.fixed_layout is not None:
            return self.fixed_layout
        return self.tiling.layout(*self.units, min(call, self.calls - 1), self.calls, size=WINDOW_UNITS)

    def __call__(self, x, t_continuous):
        layout = self.layout(self.call)
        self.call += 1
        state = self.state.split(np.asarray(x, dtype=np.float32))
        jobs = [(sample, index) for sample in range(self.samples) for index in range(len(layout))]
        latents = self._network_input(state, layout, jobs)
        network_time = np.float32(t_continuous * NETWORK_TIME_SCALE)
        timesteps = {key: np.full(len(jobs), network_time if key in self.generated else 0.0, np.float32)
                     for key in MODALITIES}
        noise = {key: np.zeros_like(value) for key, value in state.items()}
        for start in range(0, len(jobs), self.max_windows):
            if start:  # the solver polls before each call
                check_cancel(self.cancel, "denoising")
            part = slice(start, start + self.max_windows)
            predicted = self.denoise({k: v[part] for k, v in latents.items()}, {k: v[part] for k, v in timesteps.items()})
            for n, (sample, index) in enumerate(jobs[part]):
                for key in self.generated:
                    if BY_KEY[key].has_vae:
                        _scaled(layout, key).accumulate(noise[key][sample], predicted[key][None, n], [index])
                    else:
                        noise[key][sample, index] = predicted[key][n]
            if self.on_windows is not None:
                self.on_windows(len(jobs[part]))
        self.windows_run.append(len(layout))
        blended = {key: _scaled(layout, key).blend(value) if BY_KEY[key].has_vae else value
                   for key, value in noise.items()}
        return self.state.join(blended)

    def _network_input(self, state, layout, jobs):
        """{key: [jobs, *shape]} for every modality (see the module docstring)."""
        latents = {}
        for key in self.generated:
            if BY_KEY[key].has_vae:
                latents[key] = _cut(state[key], layout, key, jobs)
            else:  # one state per window of the fixed layout
                latents[key] = np.stack([state[key][sample, index] for sample, index in jobs])
        for key, value in self.conditions.items():
            latents[key] = _cut(value, layout, key, jobs) if BY_KEY[key].has_vae else value[[s for s, _ in jobs]]
        if self.location is not None and "3d_cartesian_lat_lon" not in self.generated:
            latents["3d_cartesian_lat_lon"] = np.stack(
                [self.location(*layout.windows[index]) for _, index in jobs]).astype(np.float32)
        for key in self.neither:
            latents[key] = self.rng.standard_normal((len(jobs),) + BY_KEY[key].latent_shape, dtype=np.float32)
        for key, cells in self.cond_cells.items():
            covered = np.array([bool(cells[layout.slices(index)].any()) for _, index in jobs])
            if not covered.all():
                latents[key][~covered] = self.rng.standard_normal(
                    (int((~covered).sum()),) + BY_KEY[key].latent_shape, dtype=np.float32)
        return latents


def _scaled(layout, key):
    """The unit layout in ``key``'s latents."""
    factor = latents_per_unit(key)
    return layout if factor == 1 else Layout(layout.rows.scaled(factor), layout.cols.scaled(factor))


def _cut(canvas, layout, key, jobs):
    scaled = _scaled(layout, key)
    return np.stack([canvas[(sample, Ellipsis) + scaled.slices(index)] for sample, index in jobs])


def sample_area(denoise, generated, conditions, units, samples, steps, solver, tiling=None, streams=None,
                location=None, cond_cells=None, max_windows=4, progress=None, cancel=None, on_denoiser=None,
                on_windows=None):
    """{key: canvas [S, C, H, W]} of the generated image modalities and {key: [S, windows,
    1, 1, 3]} of generated scalars (one per window of the layout they were sampled on).

    generated: keys in network order; conditions: {key: canvas [S, C, H, W] (scaled latents)}
    for images, {key: [S, 1, 1, 3]} for the date (and a location the same everywhere);
    location(row, col) -> [1, 1, 3]: the encoded centre of the window at unit (row, col);
    units: (rows, cols) of the lattice, each >= 4. cond_cells: {key: bool canvas [H, W] of the
    latents the condition has data in}. on_denoiser(denoiser) lets callers count windows;
    on_windows(n) follows each batch of n windows (as COP-GEN-Beta's sample_canvas).
    """
    tiling = parse_tiling(tiling or DEFAULT_TILING)
    init, neither = streams
    scalars = [key for key in generated if not BY_KEY[key].has_vae]
    fixed = tiling.layout(*units, 0, steps, size=WINDOW_UNITS) if scalars else None
    shapes = {}
    for key in generated:
        shapes[key] = ((samples,) + canvas_shape(key, units) if BY_KEY[key].has_vae
                       else (samples, len(fixed), 1, 1, 3))
    state = _State(shapes)
    x_T = state.join({key: init.standard_normal(shape, dtype=np.float32) for key, shape in shapes.items()})
    denoiser = AreaDenoiser(denoise, tiling, steps, units, samples, generated, conditions, neither,
                            location=location, cond_cells=cond_cells, max_windows=max_windows,
                            cancel=cancel, fixed_layout=fixed, on_windows=on_windows)
    denoiser.state = state
    if on_denoiser is not None:
        on_denoiser(denoiser)
    result = solve(denoiser, x_T, steps, solver, progress=progress, cancel=cancel)
    return {key: np.ascontiguousarray(value) for key, value in state.split(result).items()}
