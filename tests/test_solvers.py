"""The discrete VP schedule and the ODE solvers, on models whose exact solution is known."""

import numpy as np
import pytest

from plugin.engine.errors import Cancelled, InputError
from plugin.engine.schedule import DiscreteVPSchedule, stable_diffusion_betas
from plugin.engine.solvers import (
    _SINGLESTEP_UPDATES,
    SOLVERS,
    T_END,
    T_START,
    _DataPredictor,
    solve,
)

SCHEDULE = DiscreteVPSchedule()
DATA_STD = 0.5


def gaussian_noise_model(x, t):
    """Exact noise prediction when the data are N(0, DATA_STD^2): E[eps | x_t]."""
    alpha, sigma = SCHEDULE.marginal_alpha(t), SCHEDULE.marginal_std(t)
    return sigma * x / (alpha**2 * DATA_STD**2 + sigma**2)


def gaussian_exact_between(x_s, s, t):
    """The probability-flow ODE keeps x_t / std(x_t) constant for Gaussian data."""
    def std(t):
        alpha, sigma = SCHEDULE.marginal_alpha(t), SCHEDULE.marginal_std(t)
        return np.sqrt(alpha**2 * DATA_STD**2 + sigma**2)

    return x_s * std(t) / std(s)


def gaussian_exact(x_T):
    return gaussian_exact_between(x_T, T_START, T_END)


def relative_error(a, b):
    return float(np.abs(a - b).max() / np.abs(b).std())


def test_schedule_knots_are_the_stable_diffusion_alphas():
    alphas_cumprod = np.cumprod(1.0 - stable_diffusion_betas())
    knots = np.arange(1, 1001) / 1000
    np.testing.assert_allclose(SCHEDULE.marginal_alpha(knots) ** 2, alphas_cumprod, rtol=1e-12)
    np.testing.assert_allclose(
        SCHEDULE.marginal_alpha(knots) ** 2 + SCHEDULE.marginal_std(knots) ** 2, 1.0, rtol=1e-12
    )


def test_schedule_interpolates_log_alpha_linearly_and_extrapolates_the_end_segments():
    log_alpha = 0.5 * np.log(np.cumprod(1.0 - stable_diffusion_betas()))
    between = SCHEDULE.marginal_log_mean_coeff(0.0105)  # halfway between knots 10 and 11
    assert between == pytest.approx((log_alpha[9] + log_alpha[10]) / 2, rel=1e-12)
    before = SCHEDULE.marginal_log_mean_coeff(0.0)  # one knot spacing before the first knot
    assert before == pytest.approx(2 * log_alpha[0] - log_alpha[1], rel=1e-12)


def test_inverse_lambda_inverts_marginal_lambda():
    t = np.linspace(T_END, T_START, 997)
    np.testing.assert_allclose(SCHEDULE.inverse_lambda(SCHEDULE.marginal_lambda(t)), t, atol=1e-12)
    assert np.all(np.diff(SCHEDULE.marginal_lambda(t)) < 0)


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("steps", [1, 2, 3, 4, 5, 50])
def test_every_solver_is_exact_when_the_data_prediction_is_constant(solver, steps):
    # With x0(x, t) = c the exponential integrators of all orders are exact.
    c = np.linspace(-1.0, 1.0, 12).reshape(3, 4)

    def model_fn(x, t):
        return (x - SCHEDULE.marginal_alpha(t) * c) / SCHEDULE.marginal_std(t)

    x_T = np.random.default_rng(1).standard_normal(c.shape)
    ratio = SCHEDULE.marginal_std(T_END) / SCHEDULE.marginal_std(T_START)
    alpha_0 = SCHEDULE.marginal_alpha(T_END)
    exact = ratio * x_T + (alpha_0 - ratio * SCHEDULE.marginal_alpha(T_START)) * c
    np.testing.assert_allclose(solve(model_fn, x_T, steps, solver), exact, atol=1e-10)


@pytest.mark.parametrize("solver", SOLVERS)
def test_solvers_converge_to_the_exact_gaussian_solution(solver):
    x_T = np.random.default_rng(2).standard_normal((2, 4, 4))
    exact = gaussian_exact(x_T)
    coarse = relative_error(solve(gaussian_noise_model, x_T, 50, solver), exact)
    fine = relative_error(solve(gaussian_noise_model, x_T, 1000, solver), exact)
    # 20x the steps: even first-order DDIM gets more than 15x closer.
    assert fine < 2e-2
    assert fine < coarse / 15


@pytest.mark.parametrize("order", [1, 2, 3])
def test_singlestep_updates_have_their_order(order):
    # A step of order k errs by O(h^(k+1)): halving the step divides the error by about 2^(k+1).
    ratios = [k / order for k in range(1, order)]  # the inner points DPM-Solver-fast uses
    predict = _DataPredictor(gaussian_noise_model, SCHEDULE, 100, None, None)
    x_s, s = np.ones(1), 0.5

    def error(t):
        exact = gaussian_exact_between(x_s, s, t)
        return abs(_SINGLESTEP_UPDATES[order](predict, x_s, s, t, SCHEDULE, *ratios) - exact)[0]

    gain = error(0.4) / error(0.45)
    assert 0.8 * 2 ** (order + 1) < gain < 1.25 * 2 ** (order + 1)


@pytest.mark.parametrize("solver, order", [("dpm-solver++2m", 2), ("ddim", 1)])
def test_ddim_and_dpm_solver_pp_2m_converge_at_their_order(solver, order):
    # x0 = c + d * lambda whatever x, so x_0 = sigma_0 / sigma_T * x_T + alpha_0 * integral,
    # with integral = x0_T * (1 - e^-h) + d * (h - 1 + e^-h) over the whole lambda range h.
    c, d = 0.3, 0.7

    def model_fn(x, t):
        x0 = c + d * SCHEDULE.marginal_lambda(t)
        return (x - SCHEDULE.marginal_alpha(t) * x0) / SCHEDULE.marginal_std(t)

    lambda_T, lambda_0 = SCHEDULE.marginal_lambda(T_START), SCHEDULE.marginal_lambda(T_END)
    h = lambda_0 - lambda_T
    x_T = np.array([1.0, -0.5])
    exact = SCHEDULE.marginal_std(T_END) / SCHEDULE.marginal_std(T_START) * x_T + (
        SCHEDULE.marginal_alpha(T_END)
        * ((c + d * lambda_T) * -np.expm1(-h) + d * (h - 1 + np.exp(-h)))
    )
    # The grid is uniform in t, so the last steps stay long in lambda until the steps are many.
    coarse, fine = (np.abs(solve(model_fn, x_T, n, solver) - exact).max() for n in (1000, 4000))
    assert coarse / fine > 0.8 * 4**order


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("steps", [1, 2, 3, 4, 5, 6, 7, 50])
def test_network_calls_progress_and_times_follow_the_uniform_grid(solver, steps):
    times, reports = [], []

    def model_fn(x, t):
        assert isinstance(t, float)
        times.append(t)
        return gaussian_noise_model(x, t)

    solve(model_fn, np.ones(3), steps, solver, progress=lambda *args: reports.append(args))
    assert reports == [(done, steps) for done in range(1, steps + 1)]
    # All solvers evaluate the network once at every grid point but the last (t = 1/1000);
    # DPM-Solver-fast reaches its inner points through lambda and back, hence the tolerance.
    grid = np.linspace(T_START, T_END, steps + 1)
    np.testing.assert_allclose(sorted(times, reverse=True), grid[:-1], atol=1e-9)


@pytest.mark.parametrize("solver", SOLVERS)
def test_cancel_is_polled_before_every_network_call(solver):
    calls = []

    def model_fn(x, t):
        calls.append(t)
        return gaussian_noise_model(x, t)

    with pytest.raises(Cancelled, match="after 7 of 20"):
        solve(model_fn, np.ones(3), 20, solver, cancel=lambda: len(calls) == 7)
    assert len(calls) == 7


@pytest.mark.parametrize("solver", SOLVERS)
def test_float32_state_stays_float32(solver):
    x_T = np.ones((2, 3), dtype=np.float32)
    out = solve(lambda x, t: gaussian_noise_model(x, t).astype(np.float32), x_T, 4, solver)
    assert out.dtype == np.float32


@pytest.mark.parametrize(
    "steps, solver, message",
    [
        (10, "euler", "unknown solver 'euler'"),
        (0, "ddim", "steps: must be"),
        (2.5, "ddim", "steps: must be"),
        (True, "ddim", "steps: must be"),
    ],
)
def test_bad_arguments_raise_input_error_before_any_call(steps, solver, message):
    def model_fn(x, t):
        raise AssertionError("the network must not be called")

    with pytest.raises(InputError, match=message):
        solve(model_fn, np.ones(3), steps, solver)
