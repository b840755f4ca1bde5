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

from ..validation import check_positive_int
from .base import Task, format_number, work_dtype
from .gaussian import CholeskyFactors, check_correlation, check_covariance, correlation_for_mi, log_det, mahalanobis

__all__ = ["MultivariateNormal", "bivariate_normal", "multinormal_dense", "multinormal_sparse", "check_covariance"]


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
        self._factors = CholeskyFactors(cov, dim_x)
        f = self._factors
        self.mi = 0.5 * (log_det(f.chol_x) + log_det(f.chol_y) - log_det(f.chol))
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
        q = mahalanobis(chol, torch.cat([x, y], dim=1)) - mahalanobis(chol_x, x) - mahalanobis(chol_y, y)
        return -0.5 * q + self.mi


def bivariate_normal(rho: float = 0.75) -> MultivariateNormal:
    r"""bmi's ``1v1-normal-{rho}``: standard bivariate normal with correlation ρ, :math:`I = -\tfrac12\log(1-\rho^2)`.

    >>> round(bivariate_normal(0.75).mi, 4)    # -0.5 log(1 - 0.5625)
    0.4133
    """
    rho = check_correlation(rho, "rho")
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
    off_diag = check_correlation(off_diag, "off_diag", low=-1.0 / (d - 1))
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
        rho, one_minus = correlation_for_mi(mi, k)
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
