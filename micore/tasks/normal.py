r"""Multivariate normal tasks: any covariance, bmi's dense and sparse ("2 interacting pairs") families.

:math:`(X, Y) \sim \mathcal N(0, \Sigma)` with :math:`X` the first ``dim_x`` coordinates. With
:math:`h(\mathcal N(\mu, K)) = \tfrac12 \log((2\pi e)^k \det K)` (Cover & Thomas 2006, Theorem 8.4.1),
:math:`I(X;Y) = h(X) + h(Y) - h(X, Y)` is

.. math:: I(X;Y) = \tfrac12 \left(\log\det\Sigma_{XX} + \log\det\Sigma_{YY} - \log\det\Sigma\right).

Registry names (the same tasks as bmi's, Czyż et al. 2023, "Beyond Normal", NeurIPS):

* ``1v1-normal-{rho}``: the bivariate normal with correlation ``rho``, :math:`I = -\tfrac12\log(1-\rho^2)`
  (``1v1-normal-0.75``: 0.4133 nats);
* ``multinormal-dense-{dim_x}-{dim_y}-{off_diag}``: :math:`\Sigma = (1-\rho) I + \rho\,\mathbf 1\mathbf 1^T`;
* ``multinormal-sparse-{dim_x}-{dim_y}-{n_interacting}-{strength}``: bmi's latent-variable model with
  ``n_interacting`` pairs :math:`(X_i, Y_i)` sharing a latent :math:`Z_i`, see :func:`multinormal_sparse`;
* ``multinormal_sparse(dim_x=5,dim_y=5,n_interacting=2,mi=10.0)``: the same model at a chosen MI (ours).
"""

from __future__ import annotations

import hashlib
import math

import torch
from torch import Tensor

from ..validation import check_positive_int
from .base import Task, format_number, work_dtype

__all__ = ["MultivariateNormal", "bivariate_normal", "multinormal_dense", "multinormal_sparse", "check_covariance"]

_LOG_2PI = math.log(2 * math.pi)


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


def _logdet(chol: Tensor) -> float:
    return 2.0 * float(chol.diagonal().log().sum())


class _Factors:
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


def _mahalanobis(chol: Tensor, v: Tensor) -> Tensor:
    """``v^T (L L^T)^{-1} v`` per row of ``v: [n, d]``: ``[n]``."""
    w = torch.linalg.solve_triangular(chol, v.T, upper=False)
    return (w * w).sum(0)


class MultivariateNormal(Task):
    r""":math:`(X, Y) \sim \mathcal N(0, \Sigma)`, ``X`` the first ``dim_x`` coordinates, for any positive-definite Σ.

    .. math:: I(X;Y) = \tfrac12(\log\det\Sigma_{XX} + \log\det\Sigma_{YY} - \log\det\Sigma),
    .. math:: \log r(x, y) = I(X;Y) - \tfrac12\big(q_\Sigma(x,y) - q_{\Sigma_{XX}}(x) - q_{\Sigma_{YY}}(y)\big),

    with :math:`q_K(v) = v^T K^{-1} v` (Cover & Thomas 2006, Theorem 8.4.1 for the entropies).

    Args:
        covariance: ``[dim_x + dim_y, dim_x + dim_y]``, symmetric positive definite (a tensor, array or
            nested lists).
        dim_x: how many leading coordinates are ``x``; the rest, at least one, are ``y``.
        name: the task's name (default ``multinormal-custom-{dim_x}-{dim_y}-{hash of Σ}``).

    Shapes: ``x: [n, dim_x]``, ``y: [n, dim_y]``.

    >>> task = MultivariateNormal([[1.0, 0.75], [0.75, 1.0]], dim_x=1)
    >>> round(task.mi, 4)
    0.4133
    """

    def __init__(self, covariance, dim_x: int, *, name: str | None = None, params: dict | None = None):
        cov = check_covariance(covariance)
        dim_x = check_positive_int(dim_x, "dim_x")
        if dim_x >= cov.shape[0]:
            raise ValueError(f"dim_x must leave at least one coordinate for y: dim_x={dim_x}, Σ is {cov.shape[0]}-d")
        self.covariance = cov
        self.dim_x, self.dim_y = dim_x, cov.shape[0] - dim_x
        self.x_shape, self.y_shape = (self.dim_x,), (self.dim_y,)
        self._factors = _Factors(cov, dim_x)
        f = self._factors
        self.mi = 0.5 * (_logdet(f.chol_x) + _logdet(f.chol_y) - _logdet(f.chol))
        if name is None:
            digest = hashlib.sha1(cov.numpy().tobytes()).hexdigest()[:10]
            name = f"multinormal-custom-{self.dim_x}-{self.dim_y}-{digest}"
        self.name = name
        self._params = dict(params) if params is not None else {"dim_x": dim_x, "covariance": cov.tolist()}

    def _sample(self, n, generator, device):
        wd = work_dtype(device)
        chol, _, _ = self._factors.on(device, wd)
        z = torch.randn(n, chol.shape[0], generator=generator, device=device, dtype=wd) @ chol.T
        return z[:, : self.dim_x], z[:, self.dim_x :]

    def _log_ratio(self, x, y):
        chol, chol_x, chol_y = self._factors.on(x.device, x.dtype)
        q = _mahalanobis(chol, torch.cat([x, y], dim=1)) - _mahalanobis(chol_x, x) - _mahalanobis(chol_y, y)
        return -0.5 * q + self.mi


def _check_rho(rho, name: str, low: float = -1.0) -> float:
    if isinstance(rho, bool) or not isinstance(rho, (int, float)) or not low < rho < 1:
        raise ValueError(f"{name} must be a number in ({format_number(low)}, 1), got {rho!r}")
    return float(rho)


def bivariate_normal(rho: float = 0.75) -> MultivariateNormal:
    r"""bmi's ``1v1-normal-{rho}``: standard bivariate normal with correlation ρ, :math:`I = -\tfrac12\log(1-\rho^2)`.

    >>> round(bivariate_normal(0.75).mi, 4)    # -0.5 log(1 - 0.5625)
    0.4133
    """
    rho = _check_rho(rho, "rho")
    return MultivariateNormal([[1.0, rho], [rho, 1.0]], 1, name=f"1v1-normal-{format_number(rho)}", params={"rho": rho})


def multinormal_dense(dim_x: int, dim_y: int, off_diag: float = 0.5) -> MultivariateNormal:
    r"""bmi's ``multinormal-dense-{dim_x}-{dim_y}-{off_diag}``: every pair of coordinates has correlation ρ.

    :math:`\Sigma = (1-\rho)I_d + \rho\,\mathbf 1\mathbf 1^T`, :math:`d = d_x + d_y`, positive definite for
    :math:`-1/(d-1) < \rho < 1`; with :math:`D_k = (1-\rho)^{k-1}(1 + (k-1)\rho)` (the determinant of the
    k-dimensional block), :math:`I = \tfrac12\log(D_{d_x} D_{d_y} / D_d)`. ``multinormal-dense-2-2-0.5``:
    :math:`\tfrac12\log(0.75^2/0.3125) = \tfrac12\log 1.8 = 0.2939` nats.
    """
    dim_x, dim_y = check_positive_int(dim_x, "dim_x"), check_positive_int(dim_y, "dim_y")
    d = dim_x + dim_y
    off_diag = _check_rho(off_diag, "off_diag", low=-1.0 / (d - 1))
    cov = torch.full((d, d), off_diag, dtype=torch.float64)
    cov.diagonal().fill_(1.0)
    name = f"multinormal-dense-{dim_x}-{dim_y}-{format_number(off_diag)}"
    return MultivariateNormal(cov, dim_x, name=name, params={"dim_x": dim_x, "dim_y": dim_y, "off_diag": off_diag})


def multinormal_sparse(
    dim_x: int, dim_y: int, n_interacting: int = 2, strength: float | None = None, *, mi: float | None = None
) -> MultivariateNormal:
    r"""bmi's ``multinormal-sparse-{dim_x}-{dim_y}-{n_interacting}-{strength}``: a few interacting pairs.

    The latent-variable model of bmi (Czyż et al. 2023): for :math:`i < k` (``n_interacting``) a latent
    :math:`Z_i` is shared, :math:`X_i = \lambda Z_i + E_i`, :math:`Y_i = \lambda Z_i + F_i`; the other
    coordinates are :math:`\lambda V_i + E_i` (independent); all latents are :math:`\mathcal N(0,1)` and
    λ is ``strength``. Standardised, the only correlations are
    :math:`\rho = \mathrm{corr}(X_i, Y_i) = \lambda^2/(1+\lambda^2)` for :math:`i < k`, so

    .. math:: I(X;Y) = -\tfrac k2 \log(1-\rho^2).

    ``multinormal-sparse-3-3-2-2.0``: :math:`\rho = 0.8`, :math:`I = -\log 0.36 = 1.0217` nats.

    Give ``mi`` instead of ``strength`` for a chosen MI (λ solved from it; any MI, e.g. 10 nats or more).
    """
    dim_x, dim_y = check_positive_int(dim_x, "dim_x"), check_positive_int(dim_y, "dim_y")
    k = check_positive_int(n_interacting, "n_interacting")
    if k > min(dim_x, dim_y):
        raise ValueError(f"n_interacting must be <= min(dim_x, dim_y) = {min(dim_x, dim_y)}, got {k}")
    if strength is not None and mi is not None:
        raise ValueError("give strength or mi, not both")
    if mi is not None:
        rho, one_minus = _rho_for_mi(mi, k)
        name = f"multinormal_sparse(dim_x={dim_x},dim_y={dim_y},n_interacting={k},mi={format_number(float(mi))})"
        params = {"dim_x": dim_x, "dim_y": dim_y, "n_interacting": k, "mi": float(mi)}
    else:
        strength = 2.0 if strength is None else strength
        if isinstance(strength, bool) or not isinstance(strength, (int, float)) or not 0 < strength < math.inf:
            raise ValueError(f"strength must be a positive finite number, got {strength!r}")
        lam2 = float(strength) ** 2
        rho, one_minus = lam2 / (1.0 + lam2), 1.0 / (1.0 + lam2)
        name = f"multinormal-sparse-{dim_x}-{dim_y}-{k}-{format_number(float(strength))}"
        params = {"dim_x": dim_x, "dim_y": dim_y, "n_interacting": k, "strength": float(strength)}
    cov = torch.eye(dim_x + dim_y, dtype=torch.float64)
    for i in range(k):
        cov[i, dim_x + i] = cov[dim_x + i, i] = rho
    task = MultivariateNormal(cov, dim_x, name=name, params=params)
    task.mi = -0.5 * k * math.log(one_minus * (1.0 + rho))  # 1 - rho^2 = (1 - rho)(1 + rho), kept exact
    return task


def _rho_for_mi(mi, k: int) -> tuple[float, float]:
    """``(rho, 1 - rho)`` of ``k`` pairs carrying ``mi`` nats together; a ValueError naming ``mi`` otherwise."""
    if isinstance(mi, bool) or not isinstance(mi, (int, float)) or not 0 < mi < math.inf:
        raise ValueError(f"mi must be a positive finite number of nats, got {mi!r}")
    s2 = math.exp(-2.0 * mi / k)  # 1 - rho^2
    rho = math.sqrt(-math.expm1(-2.0 * mi / k))
    if rho >= 1.0:
        raise ValueError(f"mi={mi!r} over n_interacting={k} pairs needs 1 - rho^2 = {s2:.3g}: rho rounds to 1")
    return rho, s2 / (1.0 + rho)
