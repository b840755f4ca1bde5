r"""Bounds that use a known conditional :math:`p(y|x)` (Poole et al. 2019, Sec. 2.5): no training.

An *encoder* is a callable ``x: [n, *x_shape] -> torch.distributions.Distribution`` with batch shape
``[n]`` and event shape ``y_shape`` (e.g. ``CorrelatedGaussian(...).encoder``, or an ``nn.Module``
returning ``Independent(Normal(mu, sigma), 1)``). A distribution with batch shape ``[n, *y_shape]``
and no event dimensions (a bare ``Normal(mu, sigma)``) is read as independent coordinates.

On a batch of ``K`` pairs :math:`(x_i, y_i) \sim p(x)p(y|x)` everything below is a function of the
matrix ``log_p[i, j]`` :math:`= \log p(y_j | x_i)` (rows ``x``, columns ``y``, the joint pairs on the
diagonal, the layout of ``discmi``'s score matrices).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.distributions import Distribution, Independent

from micore.validation import check_samples

__all__ = [
    "check_encoder",
    "encode",
    "conditional_log_prob_matrix",
    "log_prob_matrix",
    "infonce_tractable_lower",
    "leave_one_out_upper",
    "total_correlation_upper",
]


def check_encoder(encoder) -> None:
    """Raises a ``ValueError`` unless ``encoder`` is a callable (that should return a ``Distribution``)."""
    if not callable(encoder) or isinstance(encoder, Distribution):
        raise ValueError(
            "encoder must be a callable x -> torch.distributions.Distribution giving p(y|x) (e.g. "
            f"CorrelatedGaussian(...).encoder), got {type(encoder).__name__}; an upper bound on MI needs the density "
            "p(y|x) at every pair (x_j, y_i), which samples or a deterministic map do not give"
        )


def encode(encoder, x: Tensor, y_shape: tuple[int, ...] | None = None) -> Distribution:
    """``encoder(x)`` checked: a ``Distribution`` with batch shape ``[n]`` (and event shape ``y_shape``)."""
    check_encoder(encoder)
    dist = encoder(x)
    if not isinstance(dist, Distribution):
        raise ValueError(
            f"encoder(x) must return a torch.distributions.Distribution (the density p(y|x)), got "
            f"{type(dist).__name__}; an upper bound on MI is impossible without p(y|x): a deterministic or "
            "sample-only encoder has no tractable conditional (use a lower bound such as discmi.InfoNCE instead)"
        )
    n = x.shape[0]
    if dist.batch_shape[:1] == (n,) and len(dist.batch_shape) > 1 and dist.event_shape == ():
        dist = Independent(dist, len(dist.batch_shape) - 1)  # independent coordinates
    if tuple(dist.batch_shape) != (n,):
        raise ValueError(
            f"encoder(x) must have batch shape [n] = [{n}] (one p(y|x_i) per row of x), got batch shape "
            f"{list(dist.batch_shape)} and event shape {list(dist.event_shape)}"
        )
    if y_shape is not None and tuple(dist.event_shape) != tuple(y_shape):
        raise ValueError(
            f"encoder(x) has event shape {list(dist.event_shape)}, but y has samples of shape {list(y_shape)}"
        )
    return dist


def log_prob_matrix(dist: Distribution, y: Tensor) -> Tensor:
    """``[i, j] = log p(y_j | x_i)`` from the encoder's distribution for ``x`` (batch ``[m]``) and ``y: [k, ...]``."""
    return _broadcast_log_prob(dist, y).T  # y_j against every x_i: [k, m] -> [m, k]


def _broadcast_log_prob(dist: Distribution, y: Tensor) -> Tensor:
    try:
        return dist.log_prob(y.unsqueeze(1))
    except (RuntimeError, ValueError) as err:
        raise ValueError(
            f"could not evaluate every y_j under every p(y|x_i): encoder(x).log_prob must broadcast a "
            f"[k, 1, *y_shape] input against its batch shape [n] ({type(dist).__name__}: {err})"
        ) from err


def conditional_log_prob_matrix(encoder, x, y) -> Tensor:
    """``log_p[i, j]`` :math:`= \\log p(y_j | x_i)`: ``x: [n, *x_shape]``, ``y: [n, *y_shape]`` -> ``[n, n]``."""
    x, y = _checked(x, y)
    return log_prob_matrix(encode(encoder, x, tuple(y.shape[1:])), y)


def _checked(x, y, min_n: int = 2) -> tuple[Tensor, Tensor]:
    x, y = check_samples(x, "x", None), check_samples(y, "y", None)
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"x and y must hold the same number of samples, got {x.shape[0]} and {y.shape[0]}")
    if x.shape[0] < min_n:
        raise ValueError(f"x and y need at least {min_n} samples (a batch to form the mixture), got {x.shape[0]}")
    return x, y


def _diagonal(log_p: Tensor) -> Tensor:
    return log_p.diagonal(dim1=0, dim2=1).movedim(-1, 0)  # [K, ...]


def infonce_terms(log_p: Tensor) -> Tensor:
    """Per-sample terms of Eq. 12, :math:`\\log p(y_i|x_i) - \\log \\frac1K \\sum_j p(y_i|x_j)`:
    ``[K, K, ...] -> [K, ...]`` (trailing dimensions, e.g. coordinates, are kept)."""
    k = log_p.shape[0]
    return _diagonal(log_p) - (torch.logsumexp(log_p, dim=0) - math.log(k))


def leave_one_out_terms(log_p: Tensor) -> Tensor:
    """Per-sample terms of Eq. 13, :math:`\\log p(y_i|x_i) - \\log \\frac1{K-1} \\sum_{j \\ne i} p(y_i|x_j)`:
    ``[K, K, ...] -> [K, ...]``."""
    k = log_p.shape[0]
    eye = torch.eye(k, dtype=torch.bool, device=log_p.device).view(k, k, *(1,) * (log_p.dim() - 2))
    return _diagonal(log_p) - (torch.logsumexp(log_p.masked_fill(eye, -math.inf), dim=0) - math.log(k - 1))


def infonce_tractable_lower(encoder, x, y) -> Tensor:
    r"""InfoNCE with the tractable conditional (Poole et al. 2019, Eq. 12). **Lower bound** (in expectation).

    .. math:: I(X;Y) \ge E\Big[\frac1K \sum_{i=1}^K \log \frac{p(y_i|x_i)}{\frac1K \sum_{j=1}^K p(y_i|x_j)}\Big]

    over ``K`` pairs :math:`(x_i, y_i) \sim p(x, y)`. Every batch is at most :math:`\log K`.

    Args:
        encoder: ``x -> Distribution`` of ``y`` (see the module docstring).
        x: ``[K, *x_shape]``; y: ``[K, *y_shape]``, ``y_i`` drawn from ``p(y|x_i)``.
    Returns:
        the batch value, a 0-dim tensor (differentiable in the encoder's parameters).
    """
    return infonce_terms(conditional_log_prob_matrix(encoder, x, y)).mean()


def leave_one_out_upper(encoder, x, y) -> Tensor:
    r"""The leave-one-out upper bound (Poole et al. 2019, Eq. 13). **Upper bound** (in expectation).

    .. math:: I(X;Y) \le E\Big[\frac1K \sum_{i=1}^K \log \frac{p(y_i|x_i)}{\frac1{K-1}\sum_{j \ne i} p(y_i|x_j)}\Big]

    the variational upper bound (Eq. 1) with :math:`q_i(y)` the mixture of the other ``K - 1``
    conditionals. It differs from Eq. 12 only in leaving :math:`p(y_i|x_i)` out of the denominator.
    Args and returns as :func:`infonce_tractable_lower` (``K >= 2``).
    """
    return leave_one_out_terms(conditional_log_prob_matrix(encoder, x, y)).mean()


def coordinate_log_prob_matrices(dist: Distribution, y: Tensor) -> Tensor:
    """``[i, j, c]`` :math:`= \\log p(y_{j,c} | x_i)` for a mean-field ``dist`` (batch ``[n]``): ``[n, n, D]``."""
    base = dist.base_dist if isinstance(dist, Independent) else None
    if base is None or base.event_shape != () or dist.reinterpreted_batch_ndims != len(dist.event_shape):
        raise ValueError(
            "the total correlation bound needs a mean-field encoder p(y|x) = prod_c p(y_c|x): a "
            "torch.distributions.Independent over a factorised base (e.g. Independent(Normal(mu, sigma), 1)), "
            f"got {type(dist).__name__}" + (f" over {type(base).__name__}" if base is not None else "")
        )
    per_coordinate = _broadcast_log_prob(base, y)  # [k, m, *y_shape]
    return per_coordinate.flatten(2).transpose(0, 1)


def total_correlation_upper(encoder, x, y) -> Tensor:
    r"""Upper bound on the total correlation of a mean-field representation (Poole et al. 2019, Sec. 2.5).

    .. math:: TC(Y) = \sum_c I(X; Y_c) - I(X; Y)
              \le \sum_c I_\text{LOO}(X; Y_c) - I_\text{NCE}(X; Y)

    with the leave-one-out upper bound (Eq. 13) of each coordinate's information and the tractable
    InfoNCE lower bound (Eq. 12) of the whole. **Upper bound** (in expectation). Needs
    :math:`p(y|x) = \prod_c p(y_c|x)`; the lower bound is loose once :math:`I(X;Y)` nears
    :math:`\log K`, which loosens this bound by the same amount.
    Args and returns as :func:`infonce_tractable_lower`.
    """
    x, y = _checked(x, y)
    dist = encode(encoder, x, tuple(y.shape[1:]))
    per_coordinate = coordinate_log_prob_matrices(dist, y)  # [K, K, D]
    joint = per_coordinate.sum(-1)  # log p(y_j|x_i) of the whole vector
    return leave_one_out_terms(per_coordinate).mean(0).sum() - infonce_terms(joint).mean()
