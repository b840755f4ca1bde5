r"""Variational MI bounds as pure functions of a log density-ratio score matrix.

Every function takes ``log_r: [n, n]`` with ``log_r[i, j]`` :math:`= \log r(x_i, y_j)`, an estimate
of :math:`\log p(x_i, y_j) / p(x_i)p(y_j)`. The diagonal holds the ``n`` joint samples
:math:`(x_i, y_i) \sim P`; off-diagonal entries are the :math:`n(n-1)` pairs from the product of
marginals :math:`Q = P(X)P(Y)`. Each bound is :math:`E_P[\log r]` minus a log-partition term, and
the bounds differ only in that term (the unified view of Song & Ermon 2020, Sec. 3).

A paper's critic :math:`f` relates to ``log_r`` through its optimum: for NWJ :math:`f = 1 + \log r`,
for DV, InfoNCE, JS and SMILE :math:`f = \log r` (up to a constant, or a function of one variable).
Each docstring gives the paper's formula and the substitution.

Results are 0-dim tensors on the input's device and dtype; gradients flow through.

**Ranges** (what training treats as divergence, through the estimators' ``value_range``). For the
true ratio, :math:`E_Q[r] = 1` and :math:`E_P[1/r] \le 1`, so by Markov's inequality a product pair
has :math:`\log r \ge t`, or a joint pair :math:`\log r \le -t`, with probability at most
:math:`e^{-t}`. :data:`MAX_LOG_RATIO` :math:`= \Lambda = 50` nats is evidence no sample can give
(:math:`e^{-50} \approx 2\cdot10^{-22}` per pair; a 20k-step run at batch 64 sees :math:`8\cdot10^7
\approx e^{18}` pairs): a critic claiming more on a batch has diverged, not learned. Each docstring
gives the values its bound can take on a batch where no product pair exceeds :math:`\Lambda` and no
joint pair falls below :math:`-\Lambda` (for DV and InfoNCE, for some choice of their free constant);
a hard cap such as InfoNCE's :math:`\log n` holds for every ``log_r``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "MAX_LOG_RATIO",
    "nwj_lower_bound",
    "tuba_lower_bound",
    "dv_estimate",
    "infonce_lower_bound",
    "js_fgan_lower_bound",
    "interpolated_lower_bound",
    "smile_estimate",
    "remine_objective",
    "log_mean_exp_offdiag",
    "log_mean_exp_leave_one_out",
]

# Lambda (nats): no product pair's log-ratio above it and no joint pair's below -Lambda, in any sane
# critic (see the module docstring). The estimators' value_range follows from it.
MAX_LOG_RATIO = 50.0


def _check_square(log_r: Tensor, name: str = "log_r") -> int:
    if not isinstance(log_r, Tensor) or log_r.dim() != 2 or log_r.shape[0] != log_r.shape[1]:
        shape = list(log_r.shape) if isinstance(log_r, Tensor) else type(log_r).__name__
        raise ValueError(f"{name} must be a square [n, n] score matrix, got {shape}")
    if log_r.shape[0] < 2:
        raise ValueError(f"{name} needs n >= 2 samples (off-diagonal pairs), got n = {log_r.shape[0]}")
    if not log_r.is_floating_point():
        raise ValueError(f"{name} must be floating point, got {log_r.dtype}")
    return log_r.shape[0]


def _offdiag_mask(n: int, device) -> Tensor:
    return ~torch.eye(n, dtype=torch.bool, device=device)


def log_mean_exp_offdiag(s: Tensor) -> Tensor:
    r""":math:`\log \frac{1}{n(n-1)}\sum_{i \ne j} e^{s_{ij}}`: the log of a sample mean over ``Q``."""
    n = _check_square(s, "s")
    masked = s.masked_fill(~_offdiag_mask(n, s.device), -math.inf)
    return torch.logsumexp(masked.flatten(), 0) - math.log(n * (n - 1))


def log_mean_exp_leave_one_out(s: Tensor) -> Tensor:
    r"""``out[k, j]`` :math:`= \log \frac{1}{n-1}\sum_{i \ne k} e^{s_{ij}}`: column means leaving out row ``k``.

    Stable for any spread of values: every sum is taken relative to the largest term it contains,
    so no difference of two large exponentials is formed.
    """
    n = _check_square(s, "s")
    top, arg = s.max(dim=0)  # [n]: largest entry of each column and its row
    rows = torch.arange(n, device=s.device)
    is_top = rows[:, None] == arg[None, :]  # [k, j]: row k holds column j's maximum
    # log-sum-exp of each column without its maximum (never cancels: the maximum is masked out)
    rest = torch.logsumexp(s.masked_fill(is_top, -math.inf), dim=0)  # [n]
    # for k != argmax: keep the max, drop row k:  top + log(1 + e^{rest-top} - e^{s_kj - top}) >= top
    others = (torch.exp(rest - top)[None, :] - torch.exp(s - top[None, :])).clamp_min(0.0)
    keep_top = top[None, :] + torch.log1p(others)
    out = torch.where(is_top, rest[None, :].expand(n, n), keep_top)
    return out - math.log(n - 1)


def nwj_lower_bound(log_r: Tensor) -> Tensor:
    r"""NWJ / f-GAN KL / MINE-f lower bound (Nguyen et al. 2010; Poole et al. 2019, Eq. 7).

    .. math:: I_\text{NWJ} = E_P[f] - e^{-1} E_Q[e^{f}], \qquad f = 1 + \log r,

    i.e. :math:`1 + E_P[\log r] - E_Q[r]`. **Lower bound** for any ``log_r``; unbiased estimates,
    tight at :math:`r = dP/dQ`. Song & Ermon Thm. 2 / Cor. 1: its variance is at least
    :math:`(e^{I} - 1)/n`.

    Range: no upper limit; at least :math:`1 - \Lambda - e^{\Lambda}` (a product pair at
    :math:`\Lambda` alone costs :math:`e^{\Lambda}/n(n-1)`). Batch values of :math:`-10^8` are this
    bound's heavy tail at high MI, seen in healthy runs (JS's critic on the Cubic task at MI 8);
    below :math:`-e^{50} \approx -5\cdot10^{21}` the critic has diverged.
    """
    _check_square(log_r)
    joint = log_r.diagonal().mean()
    marginal = torch.exp(log_mean_exp_offdiag(log_r))
    return 1.0 + joint - marginal


def tuba_lower_bound(f: Tensor, log_baseline: Tensor) -> Tensor:
    r"""TUBA lower bound with a baseline :math:`a(y) > 0` (Poole et al. 2019, Eq. 6).

    .. math:: I_\text{TUBA} = E_P[f] - E_{p(y)}\Big[\frac{E_{p(x)}[e^{f(x,y)}]}{a(y)} + \log a(y) - 1\Big]

    **Lower bound** for any critic ``f: [n, n]`` and ``log_baseline`` :math:`= \log a(y_j)`: ``[n]``;
    equal to :func:`nwj_lower_bound` of :math:`\log r = f - \log a(y)`. Tight at
    :math:`f = \log p(y|x) + c(y)`, :math:`a(y) = Z(y)`.
    """
    n = _check_square(f, "f")
    if log_baseline.shape != (n,):
        raise ValueError(f"log_baseline must have shape [{n}] (one value per y_j), got {list(log_baseline.shape)}")
    return nwj_lower_bound(f - log_baseline[None, :])


def dv_estimate(log_r: Tensor) -> Tensor:
    r"""Donsker-Varadhan / MINE (Belghazi et al. 2018, Eq. 10-11; Song & Ermon Eq. 3).

    .. math:: I_\text{DV} = E_{P_n}[T] - \log E_{Q_n}[e^{T}], \qquad T = \log r + C.

    An **estimate**, not a bound: the log of a sample mean is biased (Poole et al. Sec. 2.2), so
    with finite ``n`` it is neither an upper nor a lower bound. Invariant to the constant ``C``.

    Range: at least :math:`-2\Lambda` (joint pairs at :math:`-\Lambda`, product pairs at
    :math:`\Lambda`); no upper limit (an over-separating critic, as plain DV's at high MI, grows it).
    """
    _check_square(log_r)
    return log_r.diagonal().mean() - log_mean_exp_offdiag(log_r)


def infonce_lower_bound(log_r: Tensor) -> Tensor:
    r"""InfoNCE / CPC lower bound (van den Oord et al. 2018; Poole et al. 2019, Eq. 10).

    .. math:: I_\text{NCE} = E\Big[\frac1n\sum_{i=1}^n
              \log\frac{e^{f(x_i,y_i)}}{\frac1n\sum_{j=1}^n e^{f(x_i,y_j)}}\Big],
              \qquad f = \log r + c(x).

    **Lower bound**, never above :math:`\log n` (each term is at most :math:`\log n`); low variance,
    biased when :math:`I > \log n`.

    Range: :math:`[-2\Lambda, \log n]`; term ``i`` is
    :math:`-\log \frac1n \sum_j r_{ij}/r_{ii} \ge -\log e^{2\Lambda}`, whatever :math:`c(x)`.
    """
    n = _check_square(log_r)
    return (log_r.diagonal() - torch.logsumexp(log_r, dim=1)).mean() + math.log(n)


def js_fgan_lower_bound(log_r: Tensor) -> Tensor:
    r"""f-GAN lower bound on the Jensen-Shannon divergence (Nowozin et al. 2016; Poole et al. Sec. 2.6).

    .. math:: \widehat{JS} = E_P[-\operatorname{softplus}(-T)] - E_Q[\operatorname{softplus}(T)],
              \qquad T = \log r.

    A **lower bound on** :math:`2\,JS(P\|Q) - \log 4`, *not on MI*: it is the logistic-regression
    objective whose optimal logit is :math:`\log dP/dQ`. Used to train the critic of I_JS and SMILE.
    """
    n = _check_square(log_r)
    diag = log_r.diagonal()
    joint = -F.softplus(-diag).mean()
    marginal = (F.softplus(log_r).sum() - F.softplus(diag).sum()) / (n * (n - 1))
    return joint - marginal


def interpolated_lower_bound(log_r: Tensor, alpha: float) -> Tensor:
    r"""The interpolated bound :math:`I_\alpha` (Poole et al. 2019, Eq. 11).

    .. math:: I_\alpha = 1 + E\Big[\log\frac{e^{f(x_1,y)}}{\alpha\, m(y; x_{1:K}) + (1-\alpha)\, q(y)}\Big]
              - E\Big[\frac{e^{f(x_1,y)}}{\alpha\, m(y; x_{1:K}) + (1-\alpha)\, q(y)}\Big],
              \qquad m(y; x_{1:K}) = \frac1K \sum_{k=1}^K e^{f(x_k, y)},

    the first expectation over :math:`p(x_{1:K})p(y|x_1)`, the second over :math:`p(x_{1:K})p(y)`.
    Pass :math:`\log r = f - \log q(y)` (the bound depends on ``f`` and ``q`` only through it).
    As in Poole et al., :math:`K = n - 1` with a leave-one-out estimate: for column ``j``
    the mixture :math:`m` averages over all rows but one (row ``k != j`` for the joint term,
    row ``j`` for the independent ``y_j`` of the marginal term).

    **Lower bound**; :math:`\alpha = 0` is NWJ, :math:`\alpha = 1` is InfoNCE with ``K = n - 1``.
    Each joint term is at most :math:`\log(K/\alpha)` (Poole et al.'s cap); the marginal term is
    non-negative, so a batch value never exceeds :math:`1 + \log(K/\alpha)`, which it approaches
    when MI is large and the off-diagonal ratios vanish (for :math:`\alpha = 1` the marginal term
    is exactly 1 and the cap is :math:`\log K`).

    Range: :math:`[1 - 2\Lambda - \min(e^{\Lambda}/(1-\alpha), K/\alpha),\ 1 + \log(K/\alpha)]`:
    each joint term is at least :math:`-2\Lambda`, and each marginal ratio is at most
    :math:`e^{\Lambda}/(1-\alpha)` and at most :math:`K/\alpha` (its own pair is in the mixture).
    """
    n = _check_square(log_r)
    if not 0.0 <= float(alpha) <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha!r}")
    alpha = float(alpha)
    if alpha == 0.0:
        return nwj_lower_bound(log_r)
    loo = log_mean_exp_leave_one_out(log_r)  # [k, j]
    if alpha == 1.0:
        baseline = loo
    else:
        baseline = torch.logaddexp(loo + math.log(alpha), torch.full_like(loo, math.log1p(-alpha)))
    offdiag = _offdiag_mask(n, log_r.device)
    pairs = n * (n - 1)
    # masked sums, not x[offdiag]: boolean indexing sizes its output on the host (a sync that a CUDA
    # graph cannot capture); the same off-diagonal means
    joint = torch.where(offdiag, log_r.diagonal()[None, :] - baseline, 0.0).sum() / pairs
    marginal = torch.where(offdiag, torch.exp(log_r - baseline.diagonal()[None, :]), 0.0).sum() / pairs
    return 1.0 + joint - marginal


def smile_estimate(log_r: Tensor, tau: float = 5.0) -> Tensor:
    r"""SMILE: DV with a clipped partition function (Song & Ermon 2020, Eq. 17).

    .. math:: I_\text{SMILE} = E_P[T] - \log E_Q[\operatorname{clip}(e^{T}, e^{-\tau}, e^{\tau})],
              \qquad T = \log r.

    An **estimate** (Song & Ermon's "lower-bound" in quotes): clipping trades variance
    (:math:`\operatorname{Var} E_{Q_n}[r_\tau] \le (e^\tau - e^{-\tau})^2 / 4n`, Thm. 4) for a bias of
    the partition function (Thm. 3). :math:`\tau = \infty` is :func:`dv_estimate`.

    Range: at least :math:`-\Lambda - \min(\tau, \Lambda)` (the clipped partition is at most
    :math:`e^{\tau}`); no upper limit.
    """
    _check_square(log_r)
    tau = float(tau)
    if math.isnan(tau) or tau <= 0:
        raise ValueError(f"tau must be a positive number or inf, got {tau!r}")
    clipped = log_r if math.isinf(tau) else log_r.clamp(-tau, tau)
    return log_r.diagonal().mean() - log_mean_exp_offdiag(clipped)


def remine_objective(log_r: Tensor, lam: float = 0.1, target: float = 0.0) -> Tensor:
    r"""The ReMINE training objective (ReMINE, Theorem 5 with :math:`d(a, C) = \lambda (a - C)^2`).

    .. math:: E_P[T] - \log E_Q[e^{T}] - \lambda\,(\log E_Q[e^{T}] - C)^2

    Its supremum over ``T`` is still the KL divergence (the regulariser vanishes on the optimal
    family member :math:`T = \log dP/dQ + C`). An **estimate** with finite samples, as DV. Defaults
    :math:`\lambda = 0.1`, :math:`C = 0` (the paper's Fig. 4).
    """
    _check_square(log_r)
    log_z = log_mean_exp_offdiag(log_r)
    return log_r.diagonal().mean() - log_z - lam * (log_z - target) ** 2
