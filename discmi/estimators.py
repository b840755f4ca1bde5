r"""The discriminative estimators of Belghazi et al., Poole et al. and Song & Ermon.

Each is a :class:`~discmi.base.CriticEstimator`: a critic, the objective it is trained with, and
the bound it is evaluated with (see :mod:`discmi.bounds` for the formulas). Each declares the range
of its per-batch value (``value_range``, derived in :mod:`discmi.bounds` from
:data:`~discmi.bounds.MAX_LOG_RATIO` :math:`= \Lambda`); training stops at a value outside it.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from micore import ESTIMATE, LOWER_BOUND
from micore.validation import check_positive_float

from . import bounds
from .base import Baseline, CriticEstimator

__all__ = ["NWJ", "TUBA", "DV", "MINE", "InfoNCE", "CPC", "JS", "Interpolated", "SMILE"]

LAMBDA = bounds.MAX_LOG_RATIO


def _nwj_range(batch_size: int) -> tuple[float, float]:
    """NWJ's value: :math:`1 + E_P[\\log r] - E_Q[r] \\ge 1 - \\Lambda - e^{\\Lambda}`; unbounded above."""
    return 1.0 - LAMBDA - math.exp(LAMBDA), math.inf


def _dv_range(batch_size: int) -> tuple[float, float]:
    """DV's value: :math:`E_P[T] - \\log E_Q[e^T] \\ge -2\\Lambda`; unbounded above."""
    return -2.0 * LAMBDA, math.inf


class NWJ(CriticEstimator):
    r"""NWJ (Nguyen et al. 2010; Poole et al. Eq. 7): trains and evaluates
    :math:`E_P[T] - e^{-1}E_Q[e^{T}]`. **Lower bound**. Optimal critic :math:`T = 1 + \log r`,
    so ``log_ratio`` is :math:`T - 1`. Batch values lie in :math:`[1 - \Lambda - e^{\Lambda}, \infty)`."""

    kind = LOWER_BOUND
    objective_is_negated_bound = True
    value_range = staticmethod(_nwj_range)

    def _shift(self, y):
        return 1.0

    def _objective(self, log_r):
        return -bounds.nwj_lower_bound(log_r)

    def _bound(self, log_r):
        return bounds.nwj_lower_bound(log_r)


class TUBA(CriticEstimator):
    r"""TUBA with a learned baseline :math:`a(y)` (Poole et al. Eq. 6). **Lower bound**.

    .. math:: E_P[T] - E_{p(y)}\Big[\frac{E_{p(x)}[e^{T}]}{a(y)} + \log a(y) - 1\Big]

    ``log_ratio`` is :math:`T - \log a(y)`. Args as :class:`CriticEstimator`, plus ``baseline``:
    a module ``y: [m, ...] -> log a(y): [m]`` (default an MLP with one hidden layer of 256).
    Batch values lie in NWJ's range, :math:`[1 - \Lambda - e^{\Lambda}, \infty)`.
    """

    kind = LOWER_BOUND
    objective_is_negated_bound = True
    value_range = staticmethod(_nwj_range)

    def __init__(self, x_dim, y_dim, critic="joint", baseline: nn.Module | None = None):
        super().__init__(x_dim, y_dim, critic)
        self.log_baseline = Baseline(self.y_shape) if baseline is None else baseline

    def _shift(self, y):
        return self.log_baseline(y)

    def _objective(self, log_r):
        return -bounds.nwj_lower_bound(log_r)

    def _bound(self, log_r):
        return bounds.nwj_lower_bound(log_r)


class DV(CriticEstimator):
    r"""Donsker-Varadhan (Song & Ermon Eq. 3): trains and evaluates
    :math:`E_P[T] - \log E_Q[e^{T}]` with plain minibatch gradients. An **estimate** (neither
    bound with finite batches). ``log_ratio`` is ``T``, defined up to an additive constant.
    Batch values lie in :math:`[-2\Lambda, \infty)`. At high MI the minibatch DV gradient
    over-separates: the critic's scale drifts and the value climbs to hundreds of nats (README), with
    batches far below :math:`-2\Lambda` on the way, so such a run stops as diverged (the seed's 20-d
    Gaussian staircase: at step 13479, MI 8, the median batch value then near 50 nats)."""

    kind = ESTIMATE
    objective_is_negated_bound = True
    value_range = staticmethod(_dv_range)

    def _objective(self, log_r):
        return -bounds.dv_estimate(log_r)

    def _bound(self, log_r):
        return bounds.dv_estimate(log_r)


class MINE(CriticEstimator):
    r"""MINE (Belghazi et al. 2018, Alg. 1 and Sec. 3.2): DV with a bias-corrected gradient.

    The denominator of the DV gradient is replaced by an exponential moving average of the
    partition function across minibatches,

    .. math:: \hat G = E_B[\nabla T] - \frac{E_B[e^{T}\nabla T]}{\overline{E[e^T]}_\text{EMA}},

    which is the gradient of TUBA with :math:`a` = the EMA (Poole et al. Sec. 2.2). The loss's value
    is the minibatch DV; the estimate is DV. An **estimate**.

    Args as :class:`CriticEstimator`, plus ``ema_rate``: weight of the newest batch in the EMA.
    The paper gives no value; 0.01 is the rate of the MINE authors' reference code. The EMA is
    kept in log space (a buffer, ``log_partition_ema``), so it does not overflow. Batch values lie
    in DV's range, :math:`[-2\Lambda, \infty)`.
    """

    kind = ESTIMATE
    objective_is_negated_bound = True  # the surrogate term adds 0 to the value
    value_range = staticmethod(_dv_range)

    def __init__(self, x_dim, y_dim, critic="joint", ema_rate: float = 0.01):
        super().__init__(x_dim, y_dim, critic)
        self.ema_rate = check_positive_float(ema_rate, "ema_rate")
        if self.ema_rate > 1:
            raise ValueError(f"ema_rate must be in (0, 1], got {ema_rate!r}")
        self.register_buffer("log_partition_ema", torch.tensor(math.nan))

    def _objective(self, log_r):
        joint = log_r.diagonal().mean()
        log_z = bounds.log_mean_exp_offdiag(log_r)
        with torch.no_grad():
            prev, cur = self.log_partition_ema, log_z.detach().to(self.log_partition_ema.dtype)
            if self.ema_rate == 1.0:
                new = cur
            else:  # the first batch (EMA still NaN) starts the average; torch.where: no host sync, vmap-able
                avg = torch.logaddexp(prev + math.log1p(-self.ema_rate), cur + math.log(self.ema_rate))
                new = torch.where(torch.isnan(prev), cur, avg)
            self.log_partition_ema.copy_(new)
        corrected = torch.exp(log_z - new)  # gradient: E_B[e^T grad T] / EMA
        return -joint + log_z.detach() + (corrected - corrected.detach())

    def _bound(self, log_r):
        return bounds.dv_estimate(log_r)


class InfoNCE(CriticEstimator):
    r"""InfoNCE / CPC (van den Oord et al. 2018; Poole et al. Eq. 10). **Lower bound**, at most
    :math:`\log n` for evaluation batches of ``n``. ``log_ratio`` is ``T`` (up to a function of
    ``x``: the bound normalises over ``y`` for each ``x_i``). Batch values lie in
    :math:`[-2\Lambda, \log n]`."""

    kind = LOWER_BOUND
    objective_is_negated_bound = True

    def value_range(self, batch_size: int) -> tuple[float, float]:
        return -2.0 * LAMBDA, math.log(batch_size)

    def _objective(self, log_r):
        return -bounds.infonce_lower_bound(log_r)

    def _bound(self, log_r):
        return bounds.infonce_lower_bound(log_r)


CPC = InfoNCE


class JS(CriticEstimator):
    r"""I_JS (Poole et al. Sec. 2.6): the critic is trained as a logistic regression with the f-GAN
    Jensen-Shannon bound :math:`E_P[-\operatorname{sp}(-T)] - E_Q[\operatorname{sp}(T)]`, whose
    optimum is :math:`T = \log r`, and MI is evaluated with NWJ on the critic :math:`1 + T`:
    :math:`1 + E_P[T] - E_Q[e^{T}]`. **Lower bound**, in NWJ's range
    :math:`[1 - \Lambda - e^{\Lambda}, \infty)`: the NWJ estimate of a JS-trained critic has a heavy
    lower tail (:math:`-8\cdot10^8` on a batch of the seed's Cubic staircase at MI 8), not flagged;
    one product-pair logit past about 88 overflows :math:`e^T` in float32, giving :math:`-\infty`."""

    kind = LOWER_BOUND
    value_range = staticmethod(_nwj_range)

    def _objective(self, log_r):
        return -bounds.js_fgan_lower_bound(log_r)

    def _bound(self, log_r):
        return bounds.nwj_lower_bound(log_r)


class Interpolated(CriticEstimator):
    r"""The interpolated bound :math:`I_\alpha` (Poole et al. Eq. 11), trained and evaluated with it.

    The critic is :math:`f(x, y)` and a learned :math:`\log q(y)` (``baseline``, default an MLP with
    one hidden layer of 256); ``log_ratio`` is :math:`f - \log q(y)`. **Lower bound**; a batch of
    ``n`` never exceeds :math:`1 + \log((n-1)/\alpha)` (see :func:`~discmi.bounds.interpolated_lower_bound`).

    Batch values lie in :math:`[1 - 2\Lambda - \min(e^{\Lambda}/(1-\alpha), (n-1)/\alpha),\
    1 + \log((n-1)/\alpha)]` (:func:`~discmi.bounds.interpolated_lower_bound`).

    Args as :class:`CriticEstimator`, plus ``alpha`` in [0, 1] (0: NWJ, 1: InfoNCE). Default 0.01,
    the value Poole et al. (Fig. 2) found best on the Cubic task.
    """

    kind = LOWER_BOUND
    objective_is_negated_bound = True

    def __init__(self, x_dim, y_dim, critic="joint", alpha: float = 0.01, baseline: nn.Module | None = None):
        super().__init__(x_dim, y_dim, critic)
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 <= alpha <= 1:
            raise ValueError(f"alpha must be a number in [0, 1], got {alpha!r}")
        self.alpha = float(alpha)
        self.log_baseline = Baseline(self.y_shape) if baseline is None else baseline

    def _shift(self, y):
        return self.log_baseline(y)

    def value_range(self, batch_size: int) -> tuple[float, float]:
        if self.alpha == 0.0:
            return _nwj_range(batch_size)
        k = batch_size - 1
        # the marginal term: exactly 1 at alpha = 1 (InfoNCE), else at most e^Lambda / (1 - alpha) and k / alpha
        marginal = 1.0 if self.alpha == 1.0 else min(math.exp(LAMBDA) / (1 - self.alpha), k / self.alpha)
        return 1.0 - 2.0 * LAMBDA - marginal, 1.0 + math.log(k / self.alpha)

    def _objective(self, log_r):
        return -bounds.interpolated_lower_bound(log_r, self.alpha)

    def _bound(self, log_r):
        return bounds.interpolated_lower_bound(log_r, self.alpha)


class SMILE(CriticEstimator):
    r"""SMILE (Song & Ermon 2020, Eq. 17): the critic is trained with the JS objective (logistic
    regression, as in Deep InfoMax), and MI is estimated with the clipped partition function

    .. math:: E_P[T] - \log E_Q[\operatorname{clip}(e^{T}, e^{-\tau}, e^{\tau})].

    An **estimate**: it is a valid bound only as :math:`n, \tau \to \infty` (Table 1).
    ``tau=float("inf")`` is the DV estimate of a JS-trained critic. ``log_ratio`` is ``T``.

    Batch values lie in :math:`[-\Lambda - \min(\tau, \Lambda), \infty)`.

    Args as :class:`CriticEstimator`, plus ``tau > 0`` (default 5.0, the seed's main setting).
    """

    kind = ESTIMATE

    def __init__(self, x_dim, y_dim, tau: float = 5.0, critic="joint"):
        super().__init__(x_dim, y_dim, critic)
        self.tau = check_positive_float(tau, "tau", allow_inf=True)

    def _objective(self, log_r):
        return -bounds.js_fgan_lower_bound(log_r)

    def _bound(self, log_r):
        return bounds.smile_estimate(log_r, self.tau)

    def value_range(self, batch_size: int) -> tuple[float, float]:
        return -LAMBDA - min(self.tau, LAMBDA), math.inf

    def extra_repr(self) -> str:
        return f"tau={self.tau}"
