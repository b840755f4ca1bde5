"""Gaussian algebra the task families share: covariance checks, Cholesky factors, log-determinants, correlations.

The normal, Student-t and mixture tasks compute their densities and exact MI from the same pieces: a
checked covariance, the Cholesky factors of it and of its two diagonal blocks, log-determinants from
those factors, and Mahalanobis distances. The correlation helpers check a correlation parameter and
solve the correlation of ``k`` independent pairs that carry a chosen MI.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .base import format_number

__all__ = [
    "check_covariance",
    "log_det",
    "CholeskyFactors",
    "mahalanobis",
    "check_correlation",
    "correlation_for_mi",
]


def check_covariance(matrix, name: str = "covariance") -> Tensor:
    """A float64 CPU copy of a symmetric positive-definite matrix; a ValueError naming ``name`` otherwise."""
    try:
        m = torch.as_tensor(matrix, dtype=torch.float64).detach().cpu().clone()
    except (TypeError, ValueError, RuntimeError) as err:
        raise ValueError(f"{name} must be a square matrix of numbers, got {type(matrix).__name__}") from err
    if m.dim() != 2 or m.shape[0] != m.shape[1] or m.shape[0] < 2:
        raise ValueError(f"{name} must be a square matrix of size >= 2, got shape {list(m.shape)}")
    if not bool(torch.isfinite(m).all()):
        raise ValueError(f"{name} contains NaN or infinite entries")
    if not torch.allclose(m, m.T, rtol=1e-10, atol=1e-12):
        raise ValueError(f"{name} must be symmetric")
    _, info = torch.linalg.cholesky_ex(m)
    if int(info) != 0:
        raise ValueError(f"{name} must be positive definite (its Cholesky factorisation fails at row {int(info)})")
    return (m + m.T) / 2


def log_det(chol: Tensor) -> float:
    """:math:`\\log\\det(L L^T) = 2 \\sum_i \\log L_{ii}` of a Cholesky factor ``L``."""
    return 2.0 * float(chol.diagonal().log().sum())


class CholeskyFactors:
    """Cholesky factors of a covariance and its two diagonal blocks, cached per device and dtype."""

    def __init__(self, cov: Tensor, dim_x: int):
        self.dim_x = dim_x
        self.chol = torch.linalg.cholesky(cov)
        self.chol_x = torch.linalg.cholesky(cov[:dim_x, :dim_x])
        self.chol_y = torch.linalg.cholesky(cov[dim_x:, dim_x:])
        self._cache: dict = {}

    def on(self, device, dtype) -> tuple[Tensor, Tensor, Tensor]:
        key = (str(device), dtype)
        if key not in self._cache:
            self._cache[key] = tuple(c.to(device=device, dtype=dtype) for c in (self.chol, self.chol_x, self.chol_y))
        return self._cache[key]


def mahalanobis(chol: Tensor, v: Tensor) -> Tensor:
    """``v^T (L L^T)^{-1} v`` per row of ``v: [n, d]``: ``[n]``."""
    w = torch.linalg.solve_triangular(chol, v.T, upper=False)
    return (w * w).sum(0)


def check_correlation(rho, name: str, low: float = -1.0) -> float:
    """``rho`` as a float in ``(low, 1)``; a ValueError naming ``name`` otherwise."""
    if isinstance(rho, bool) or not isinstance(rho, (int, float)) or not low < rho < 1:
        raise ValueError(f"{name} must be a number in ({format_number(low)}, 1), got {rho!r}")
    return float(rho)


def correlation_for_mi(mi, k: int) -> tuple[float, float]:
    """``(rho, 1 - rho)`` of ``k`` pairs carrying ``mi`` nats together; a ValueError naming ``mi`` otherwise."""
    if isinstance(mi, bool) or not isinstance(mi, (int, float)) or not 0 < mi < math.inf:
        raise ValueError(f"mi must be a positive finite number of nats, got {mi!r}")
    s2 = math.exp(-2.0 * mi / k)  # 1 - rho^2
    rho = math.sqrt(-math.expm1(-2.0 * mi / k))
    if rho >= 1.0:
        raise ValueError(f"mi={mi!r} over n_interacting={k} pairs needs 1 - rho^2 = {s2:.3g}: rho rounds to 1")
    return rho, s2 / (1.0 + rho)
