"""Stable Diffusion's discrete noise schedule seen as a continuous-time VP process.

This mirrors DPM-Solver's ``NoiseScheduleVP('discrete')``: the 1000 discrete
log(alpha) values sit at times t = 1/1000, 2/1000, ..., 1 and are joined by straight
lines (extended linearly beyond both ends), so alpha_t, sigma_t and the half-log-SNR
lambda_t are defined for every t. All arithmetic is float64.
"""

import numpy as np

NUM_TRAIN_STEPS = 1000
BETA_START = 0.00085
BETA_END = 0.012


def stable_diffusion_betas(start=BETA_START, end=BETA_END, count=NUM_TRAIN_STEPS):
    """Stable Diffusion's "scaled linear" betas: linspace(sqrt(start), sqrt(end)) ** 2."""
    return np.linspace(start**0.5, end**0.5, count, dtype=np.float64) ** 2


def _interpolate(x, xp, yp):
    """Piecewise-linear interpolation through increasing knots xp, extrapolating the end segments.

    numpy.interp clamps outside the knots; DPM-Solver extends the outermost lines instead.
    """
    x = np.asarray(x, dtype=np.float64)
    segment = np.clip(np.searchsorted(xp, x, side="right") - 1, 0, len(xp) - 2)
    x0, x1 = xp[segment], xp[segment + 1]
    y0, y1 = yp[segment], yp[segment + 1]
    return y0 + (x - x0) * (y1 - y0) / (x1 - x0)


class DiscreteVPSchedule:
    """alpha_t, sigma_t, lambda_t = log(alpha_t / sigma_t) and its inverse for t in (0, 1].

    Functions accept a float or an array and return float64 of the same shape.
    """

    T = 1.0

    def __init__(self, betas=None):
        betas = stable_diffusion_betas() if betas is None else np.asarray(betas, np.float64)
        self.num_steps = len(betas)
        self.t_knots = np.linspace(1.0 / self.num_steps, 1.0, self.num_steps)
        self.log_alpha_knots = 0.5 * np.cumsum(np.log1p(-betas))

    def marginal_log_mean_coeff(self, t):
        """log(alpha_t)."""
        return _interpolate(t, self.t_knots, self.log_alpha_knots)

    def marginal_alpha(self, t):
        return np.exp(self.marginal_log_mean_coeff(t))

    def marginal_std(self, t):
        """sigma_t = sqrt(1 - alpha_t^2)."""
        return np.sqrt(-np.expm1(2.0 * self.marginal_log_mean_coeff(t)))

    def marginal_lambda(self, t):
        """Half-log-SNR lambda_t = log(alpha_t) - log(sigma_t)."""
        log_alpha = self.marginal_log_mean_coeff(t)
        return log_alpha - 0.5 * np.log(-np.expm1(2.0 * log_alpha))

    def inverse_lambda(self, lamb):
        """The time t whose half-log-SNR is lamb."""
        log_alpha = -0.5 * np.logaddexp(0.0, -2.0 * np.asarray(lamb, dtype=np.float64))
        # log(alpha) decreases with t: flip both so the knots increase.
        return _interpolate(log_alpha, self.log_alpha_knots[::-1], self.t_knots[::-1])
