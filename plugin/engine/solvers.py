"""Diffusion ODE solvers over the discrete VP schedule, in data-prediction (x0) form.

``model_fn(x, t_continuous)`` predicts the noise in ``x`` at continuous time t in (0, 1];
each solver turns it into a data prediction x0 = (x - sigma_t * noise) / alpha_t and
integrates from t = 1 down to t = 1/1000 on a grid uniform in t. Every solver makes
exactly ``steps`` network calls.

- ``dpm-solver-fast``: the official sampler, DPM-Solver's singlestep 'fast' method with
  order 3 and ``predict_x0=True`` (a time grid of ``steps`` intervals walked by groups of
  3, with one final group of 1 or 2 so the orders add up to ``steps``).
- ``dpm-solver++2m``: DPM-Solver++(2M), second-order multistep (first order on step 1).
- ``ddim``: deterministic DDIM, i.e. first-order DPM-Solver++.
"""

import math

import numpy as np

from .cancel import check_cancel
from .errors import InputError
from .schedule import DiscreteVPSchedule

SOLVERS = ("dpm-solver-fast", "dpm-solver++2m", "ddim")
T_START = 1.0
T_END = 1.0 / 1000  # the reference's eps


def check_solver_args(steps, solver):
    """Raise InputError for an unknown solver name or a step count below 1."""
    if solver not in SOLVERS:
        raise InputError(f"unknown solver {solver!r}; expected one of {', '.join(SOLVERS)}", "solver")
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise InputError(f"must be a whole number >= 1, got {steps!r}", "steps")


def solve(model_fn, x_T, steps=50, solver="dpm-solver-fast", progress=None, cancel=None):
    """Integrate the probability-flow ODE from x_T (noise at t = 1) to the clean sample.

    progress(done, total) is called after each network call; cancel() is polled before
    each one and raises Cancelled when it returns True. The result has x_T's shape and dtype.
    """
    check_solver_args(steps, solver)
    schedule = DiscreteVPSchedule()
    predict = _DataPredictor(model_fn, schedule, steps, progress, cancel)
    grid = np.linspace(T_START, T_END, steps + 1)
    return _SOLVER_FUNCTIONS[solver](predict, np.asarray(x_T), grid, schedule)


class _DataPredictor:
    """Wraps the noise model: counts calls, reports progress, honours cancel, returns x0."""

    def __init__(self, model_fn, schedule, total, progress, cancel):
        self.model_fn = model_fn
        self.schedule = schedule
        self.total = total
        self.progress = progress
        self.cancel = cancel
        self.done = 0

    def __call__(self, x, t):
        check_cancel(self.cancel, f"sampling (after {self.done} of {self.total} network calls)")
        noise = self.model_fn(x, float(t))
        self.done += 1
        if self.progress is not None:
            self.progress(self.done, self.total)
        alpha = float(self.schedule.marginal_alpha(t))
        sigma = float(self.schedule.marginal_std(t))
        return (x - sigma * noise) / alpha


def _fast_orders(steps):
    """Orders of DPM-Solver-fast (order 3): groups of 3, then a remainder so the sum is steps."""
    threes = steps // 3
    if steps % 3 == 0:
        return [3] * (threes - 1) + [2, 1]
    return [3] * threes + [steps % 3]


def _dpm_solver_fast(predict, x, grid, schedule):
    lambdas = schedule.marginal_lambda(grid).tolist()
    i = 0
    for order in _fast_orders(len(grid) - 1):
        # The intermediate points of a group are the grid points inside it.
        h = lambdas[i + order] - lambdas[i]
        ratios = [(lambdas[i + k] - lambdas[i]) / h for k in range(1, order)]
        x = _SINGLESTEP_UPDATES[order](predict, x, grid[i], grid[i + order], schedule, *ratios)
        i += order
    return x


def _coefficients(schedule, t):
    """(alpha_t, sigma_t, lambda_t) as Python floats: NumPy 2 would let float64 scalars
    promote float32 arrays, Python floats never do."""
    return (
        float(schedule.marginal_alpha(t)),
        float(schedule.marginal_std(t)),
        float(schedule.marginal_lambda(t)),
    )


def _first_order_step(x, x0, s, t, schedule):
    """x at t from x at s given the data prediction x0 at s (DDIM / DPM-Solver++ 1)."""
    _, sigma_s, lambda_s = _coefficients(schedule, s)
    alpha_t, sigma_t, lambda_t = _coefficients(schedule, t)
    h = lambda_t - lambda_s
    return (sigma_t / sigma_s) * x - (alpha_t * math.expm1(-h)) * x0


def _singlestep_first(predict, x, s, t, schedule):
    return _first_order_step(x, predict(x, s), s, t, schedule)


def _singlestep_second(predict, x, s, t, schedule, r1):
    _, sigma_s, lambda_s = _coefficients(schedule, s)
    alpha_t, sigma_t, lambda_t = _coefficients(schedule, t)
    h = lambda_t - lambda_s
    s1 = float(schedule.inverse_lambda(lambda_s + r1 * h))
    alpha_s1, sigma_s1, _ = _coefficients(schedule, s1)
    phi_1 = math.expm1(-h)

    x0_s = predict(x, s)
    x_s1 = (sigma_s1 / sigma_s) * x - (alpha_s1 * math.expm1(-r1 * h)) * x0_s
    x0_s1 = predict(x_s1, s1)
    return (
        (sigma_t / sigma_s) * x
        - (alpha_t * phi_1) * x0_s
        - (0.5 / r1 * alpha_t * phi_1) * (x0_s1 - x0_s)
    )


def _singlestep_third(predict, x, s, t, schedule, r1, r2):
    _, sigma_s, lambda_s = _coefficients(schedule, s)
    alpha_t, sigma_t, lambda_t = _coefficients(schedule, t)
    h = lambda_t - lambda_s
    s1 = float(schedule.inverse_lambda(lambda_s + r1 * h))
    s2 = float(schedule.inverse_lambda(lambda_s + r2 * h))
    alpha_s1, sigma_s1, _ = _coefficients(schedule, s1)
    alpha_s2, sigma_s2, _ = _coefficients(schedule, s2)
    phi_1 = math.expm1(-h)
    phi_2 = phi_1 / h + 1.0
    phi_12 = math.expm1(-r2 * h)
    phi_22 = phi_12 / (r2 * h) + 1.0

    x0_s = predict(x, s)
    x_s1 = (sigma_s1 / sigma_s) * x - (alpha_s1 * math.expm1(-r1 * h)) * x0_s
    x0_s1 = predict(x_s1, s1)
    x_s2 = (
        (sigma_s2 / sigma_s) * x
        - (alpha_s2 * phi_12) * x0_s
        + (r2 / r1 * alpha_s2 * phi_22) * (x0_s1 - x0_s)
    )
    x0_s2 = predict(x_s2, s2)
    return (
        (sigma_t / sigma_s) * x
        - (alpha_t * phi_1) * x0_s
        + (alpha_t * phi_2 / r2) * (x0_s2 - x0_s)
    )


_SINGLESTEP_UPDATES = {1: _singlestep_first, 2: _singlestep_second, 3: _singlestep_third}


def _dpm_solver_pp_2m(predict, x, grid, schedule):
    lambdas = schedule.marginal_lambda(grid).tolist()
    x0_prev = predict(x, grid[0])
    x = _first_order_step(x, x0_prev, grid[0], grid[1], schedule)
    for k in range(2, len(grid)):
        x0 = predict(x, grid[k - 1])
        alpha_t, sigma_t, _ = _coefficients(schedule, grid[k])
        sigma_s = float(schedule.marginal_std(grid[k - 1]))
        h = lambdas[k] - lambdas[k - 1]
        r = (lambdas[k - 1] - lambdas[k - 2]) / h
        phi_1 = math.expm1(-h)
        x = (
            (sigma_t / sigma_s) * x
            - (alpha_t * phi_1) * x0
            - (0.5 / r * alpha_t * phi_1) * (x0 - x0_prev)
        )
        x0_prev = x0
    return x


def _ddim(predict, x, grid, schedule):
    for s, t in zip(grid[:-1], grid[1:]):
        x = _first_order_step(x, predict(x, s), s, t, schedule)
    return x


_SOLVER_FUNCTIONS = {
    "dpm-solver-fast": _dpm_solver_fast,
    "dpm-solver++2m": _dpm_solver_pp_2m,
    "ddim": _ddim,
}
