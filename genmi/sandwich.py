r"""Sandwiching MI with a known encoder (Poole et al. 2019, Sec. 2.5), and the estimators built on it.

:func:`sandwich` draws :math:`y_i \sim p(y|x_i)` and evaluates, on the same batches of ``K`` pairs, the
tractable InfoNCE lower bound (Eq. 12) and the leave-one-out upper bound (Eq. 13):
:math:`I_\text{NCE} \le I(X;Y) \le I_\text{LOO}` in expectation, with no training.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from micore import LOWER_BOUND, UPPER_BOUND, Estimate, MIEstimator
from micore.estimator import DEFAULT_MAX_PAIRS
from micore.validation import check_positive_int, check_samples

from .known_encoder import (
    check_encoder,
    coordinate_log_prob_matrices,
    encode,
    infonce_terms,
    leave_one_out_terms,
    log_prob_matrix,
)

# seeds the draws of y ~ p(y|x) apart from the data's own seed (see _batches)
_DRAW_SEED_OFFSET = 7_919_000_003

__all__ = ["sandwich", "total_correlation_bound", "LeaveOneOut", "TractableInfoNCE"]


def _batches(encoder, x, batch_size: int, seed: int | None, stats: Callable[[object, Tensor], list[Tensor]]):
    """Per batch of ``x``: draws ``y ~ encoder(x_b)`` and returns ``stats(dist, y)``.

    A partial last batch is dropped.
    """
    check_encoder(encoder)
    x = check_samples(x, "x", None)
    bs = min(check_positive_int(batch_size, "batch_size", minimum=2), x.shape[0])
    if bs < 2:
        raise ValueError(f"x needs at least 2 samples (a batch to form the mixture), got {x.shape[0]}")
    count = x.shape[0] // bs
    rows = []
    with torch.random.fork_rng(devices=[x.device] if x.device.type == "cuda" else [], enabled=seed is not None):
        if seed is not None:
            # offset: data drawn with torch.manual_seed(seed) or a task's sample_x(n, seed) use the same random
            # stream, and drawing y's noise from it too made y a copy of x (the lower bound at log K)
            torch.manual_seed(seed + _DRAW_SEED_OFFSET)
        with torch.no_grad():
            for b in range(count):
                dist = encode(encoder, x[b * bs : (b + 1) * bs])
                rows.append(torch.stack(stats(dist, dist.sample())))
    return torch.stack(rows).double().cpu(), bs  # [count, statistics]


def _estimate(values: Tensor, kind: str, bs: int) -> Estimate:
    k = values.shape[0]
    if not bool(torch.isfinite(values).all()):
        raise FloatingPointError(
            f"the {kind} is not finite on {int((~torch.isfinite(values)).sum())} of {k} batches: "
            "the encoder's log-densities overflow"
        )
    stderr = float(values.std() / math.sqrt(k)) if k > 1 else math.nan
    return Estimate(float(values.mean()), stderr, n=k * bs, kind=kind, batch_size=bs)


def sandwich(encoder, x, batch_size: int = 128, *, seed: int | None = None) -> tuple[Estimate, Estimate]:
    r"""Brackets :math:`I(X;Y)` of a known encoder :math:`p(y|x)` between two bounds, with no training.

    For every batch of ``K = batch_size`` rows of ``x`` it draws :math:`y_i \sim p(y|x_i)` and computes,
    from the same ``[K, K]`` matrix :math:`\log p(y_j|x_i)`,

    * ``lower`` — InfoNCE with the tractable conditional (Poole et al. Eq. 12), **lower bound**, at most
      :math:`\log K` per batch;
    * ``upper`` — the leave-one-out bound (Poole et al. Eq. 13), **upper bound**.

    Both are bounds in expectation; each :class:`~micore.Estimate` carries its standard error over
    batches. When :math:`I(X;Y) \gg \log K` the lower bound saturates at :math:`\log K` and the
    interval widens: raise ``batch_size`` to tighten it.

    Args:
        encoder: ``x -> torch.distributions.Distribution`` of ``y`` with batch shape ``[n]``. Without a
            conditional density an upper bound is impossible, and a ``ValueError`` says so.
        x: ``[n, *x_shape]`` samples of :math:`p(x)`; ``n // batch_size`` batches are used.
        batch_size: ``K``, pairs per batch (default 128).
        seed: makes the draws of ``y`` reproducible (the global RNG is left untouched).
    Returns:
        ``(lower, upper)``.
    """

    def stats(dist, y):
        log_p = log_prob_matrix(dist, y)
        return [infonce_terms(log_p).mean(), leave_one_out_terms(log_p).mean()]

    values, bs = _batches(encoder, x, batch_size, seed, stats)
    return _estimate(values[:, 0], LOWER_BOUND, bs), _estimate(values[:, 1], UPPER_BOUND, bs)


def total_correlation_bound(encoder, x, batch_size: int = 128, *, seed: int | None = None) -> Estimate:
    r"""The total-correlation **upper bound** of a mean-field encoder over batches of ``x``, with
    :math:`y \sim p(y|x)` drawn as in :func:`sandwich` (see :func:`~genmi.known_encoder.total_correlation_upper`:
    :math:`TC(Y) \le \sum_c I_\text{LOO}(X;Y_c) - I_\text{NCE}(X;Y)`)."""

    def stats(dist, y):
        per_coordinate = coordinate_log_prob_matrices(dist, y)
        return [leave_one_out_terms(per_coordinate).mean(0).sum() - infonce_terms(per_coordinate.sum(-1)).mean()]

    values, bs = _batches(encoder, x, batch_size, seed, stats)
    return _estimate(values[:, 0], UPPER_BOUND, bs)


class _KnownEncoderBound(MIEstimator):
    """A bound computed from a known encoder: nothing to train.

    ``fit`` raises a ``ValueError`` (the shared training loop finds no parameters): a silent no-op would
    let a pipeline believe something was learned. Call :meth:`estimate` directly. The encoder is kept as
    given, not registered as a submodule, so its parameters are never trained or moved by this object;
    ``loss`` is the bound as an objective (differentiable in the encoder's parameters) for training an
    encoder elsewhere.

    ``log_ratio(x, y)`` gives the per-sample terms of the bound on the batch given (whose mean is the
    bound); ``scores(x, y)`` gives :math:`\\log p(y_j|x_i) - \\log \\frac1n \\sum_k p(y_j|x_k)`, the
    log-ratio against the batch mixture as :math:`q(y)`.
    """

    default_batch_size = 128

    def __init__(self, x_dim, y_dim, *, encoder):
        super().__init__(x_dim, y_dim)
        check_encoder(encoder)
        object.__setattr__(self, "encoder", encoder)  # not a submodule: see the class docstring

    def _terms(self, log_p: Tensor) -> Tensor:
        raise NotImplementedError

    def _matrix(self, x: Tensor, y: Tensor) -> Tensor:
        return log_prob_matrix(encode(self.encoder, x, self.y_shape), y)

    def _log_ratio(self, x, y):
        if x.shape[0] < 2:
            raise ValueError(
                f"{type(self).__name__} needs a batch of at least 2 pairs (the mixture over the other "
                f"rows), got {x.shape[0]}"
            )
        return self._terms(self._matrix(x, y))

    def _pair_scores(self, x, y):
        return self._matrix(x, y)

    def _score_matrix(self, x, y, max_pairs=DEFAULT_MAX_PAIRS):
        log_p = super()._score_matrix(x, y, max_pairs)
        return log_p - (torch.logsumexp(log_p, dim=0, keepdim=True) - math.log(log_p.shape[0]))


class TractableInfoNCE(_KnownEncoderBound):
    r"""InfoNCE with the tractable conditional (Poole et al. 2019, Eq. 12) as an estimator.

    .. math:: \frac1K \sum_i \log \frac{p(y_i|x_i)}{\frac1K \sum_j p(y_i|x_j)} \quad\text{per batch of } K

    **Lower bound**, at most :math:`\log K` (``K`` is the evaluation batch size, default 128). Nothing
    to train (see :class:`_KnownEncoderBound`). Args: ``x_dim``, ``y_dim``, and ``encoder``, a callable
    ``x -> Distribution`` of ``y``.
    """

    kind = LOWER_BOUND

    def _terms(self, log_p):
        return infonce_terms(log_p)

    def _loss(self, x, y):
        return -self._log_ratio(x, y).mean()


class LeaveOneOut(_KnownEncoderBound):
    r"""The leave-one-out upper bound (Poole et al. 2019, Eq. 13) as an estimator.

    .. math:: \frac1K \sum_i \log \frac{p(y_i|x_i)}{\frac1{K-1} \sum_{j \ne i} p(y_i|x_j)} \quad\text{per batch of } K

    **Upper bound** (evaluation batch size ``K``, default 128). Nothing to train (see
    :class:`_KnownEncoderBound`); its ``loss`` is the bound itself (minimising an upper bound on MI).
    Args: ``x_dim``, ``y_dim``, and ``encoder``, a callable ``x -> Distribution`` of ``y``.
    """

    kind = UPPER_BOUND

    def _terms(self, log_p):
        return leave_one_out_terms(log_p)

    def _loss(self, x, y):
        return self._log_ratio(x, y).mean()
