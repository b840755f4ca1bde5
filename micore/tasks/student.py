r"""The multivariate Student-t distribution: heavy tails, dependent even when uncorrelated.

:math:`(X, Y) = Z / \sqrt{W/\nu}` with :math:`Z \sim \mathcal N(0, S)` and :math:`W \sim \chi^2_\nu`
independent: a :math:`t_\nu(0, S)` of dimension :math:`m + n` (``S``: the dispersion matrix). Its marginals
are :math:`t_\nu(0, S_{XX})` and :math:`t_\nu(0, S_{YY})`, and (Arellano-Valle, Contreras-Reyes & Genton 2013,
"Shannon entropy and mutual information for multivariate skew-elliptical distributions", Scand. J. Stat.
40; used by Czyż et al. 2023, "Beyond Normal")

.. math::
    I(X;Y) = \underbrace{\tfrac12\log\frac{\det S_{XX}\det S_{YY}}{\det S}}_{\text{Gaussian part}}
      + c(\nu, m, n),

.. math::
    c = \log\frac{\Gamma(\tfrac\nu2)\,\Gamma(\tfrac{\nu+m+n}2)}{\Gamma(\tfrac{\nu+m}2)\,\Gamma(\tfrac{\nu+n}2)}
      + \tfrac{\nu+m}2\psi(\tfrac{\nu+m}2) + \tfrac{\nu+n}2\psi(\tfrac{\nu+n}2)
      - \tfrac{\nu}2\psi(\tfrac{\nu}2) - \tfrac{\nu+m+n}2\psi(\tfrac{\nu+m+n}2),

which follows from :math:`I = h(X) + h(Y) - h(X,Y)` and the entropy of :math:`t_\nu(0, S)` in
dimension :math:`d`: :math:`\tfrac12\log\det S + \tfrac d2\log(\nu\pi) + \log\frac{\Gamma(\nu/2)}{\Gamma((\nu+d)/2)}
+ \tfrac{\nu+d}2(\psi(\tfrac{\nu+d}2) - \psi(\tfrac\nu2))`. ``c > 0`` and falls to 0 as ν → ∞ (the normal).

Registry names: bmi's ``student-identity-{dim_x}-{dim_y}-{df}`` (S = I: all of the MI comes from the
shared :math:`W`; ``student-identity-1-1-1``: 0.2242 nats) and ``student-dense-{dim_x}-{dim_y}-{df}-{off_diag}``;
ours, for high MI: ``student-sparse-{dim_x}-{dim_y}-{df}-{n_interacting}-{strength}`` (the dispersion of
``multinormal-sparse``) and ``student_sparse(dim_x=..,dim_y=..,df=..,n_interacting=..,mi=..)``.
"""

from __future__ import annotations

import math

import torch

from ..validation import check_positive_int
from .base import Task, format_number, work_dtype
from .gaussian import CholeskyFactors, check_correlation, check_covariance, correlation_for_mi, log_det, mahalanobis

__all__ = ["MultivariateStudentT", "student_mi_correction", "student_identity", "student_dense", "student_sparse"]


def _digamma(v: float) -> float:
    return float(torch.special.digamma(torch.tensor(v, dtype=torch.float64)))


def _check_df(df) -> float | int:
    if isinstance(df, bool) or not isinstance(df, (int, float)) or not 0 < df < math.inf:
        raise ValueError(f"df (the degrees of freedom ν) must be a positive finite number, got {df!r}")
    return int(df) if float(df).is_integer() else float(df)


def student_mi_correction(df: float, dim_x: int, dim_y: int) -> float:
    r"""The term :math:`c(\nu, m, n)` that the Student-t adds to the Gaussian MI of its dispersion (nats)."""
    nu, m, n = float(_check_df(df)), dim_x, dim_y
    half = [nu / 2, (nu + m) / 2, (nu + n) / 2, (nu + m + n) / 2]
    lg = math.lgamma(half[0]) + math.lgamma(half[3]) - math.lgamma(half[1]) - math.lgamma(half[2])
    psi = half[1] * _digamma(half[1]) + half[2] * _digamma(half[2]) - half[0] * _digamma(half[0])
    return lg + psi - half[3] * _digamma(half[3])


class MultivariateStudentT(Task):
    r""":math:`(X, Y) \sim t_\nu(0, S)`: the multivariate Student-t with dispersion ``S`` and ν degrees of freedom.

    The exact log-ratio is :math:`\log t_{m+n}(x,y) - \log t_m(x) - \log t_n(y)` with
    :math:`\log t_d(v; S, \nu) = \log\Gamma(\tfrac{\nu+d}2) - \log\Gamma(\tfrac\nu2) - \tfrac d2\log(\nu\pi)
    - \tfrac12\log\det S - \tfrac{\nu+d}2\log(1 + v^T S^{-1} v/\nu)`; MI in the module docstring.

    Args:
        dispersion: ``[dim_x + dim_y]²``, symmetric positive definite.
        dim_x: how many leading coordinates are ``x``.
        df: ν > 0 (need not be an integer; the covariance exists only for ν > 2, the MI always).
        name: default ``student-custom-{dim_x}-{dim_y}-{df}-{hash}``.

    Shapes: ``x: [n, dim_x]``, ``y: [n, dim_y]``.

    >>> round(student_identity(1, 1, 1).mi, 4)
    0.2242
    """

    def __init__(self, dispersion, dim_x: int, df: float, *, name: str | None = None, params: dict | None = None):
        S = check_covariance(dispersion, "dispersion")
        dim_x = check_positive_int(dim_x, "dim_x")
        if dim_x >= S.shape[0]:
            raise ValueError(f"dim_x must leave at least one coordinate for y: dim_x={dim_x}, S is {S.shape[0]}-d")
        self.df = _check_df(df)
        self.dispersion = S
        self.dim_x, self.dim_y = dim_x, S.shape[0] - dim_x
        self.x_shape, self.y_shape = (self.dim_x,), (self.dim_y,)
        self._factors = f = CholeskyFactors(S, dim_x)
        self._logdets = (log_det(f.chol), log_det(f.chol_x), log_det(f.chol_y))
        self.gaussian_mi = 0.5 * (self._logdets[1] + self._logdets[2] - self._logdets[0])
        self.mi = self.gaussian_mi + student_mi_correction(self.df, self.dim_x, self.dim_y)
        if name is None:
            import hashlib

            digest = hashlib.sha1(S.numpy().tobytes()).hexdigest()[:10]
            name = f"student-custom-{self.dim_x}-{self.dim_y}-{format_number(self.df)}-{digest}"
        self.name = name
        self._params = dict(params) if params is not None else {"dim_x": dim_x, "df": self.df, "dispersion": S.tolist()}

    def _sample(self, n, generator, device):
        wd = work_dtype(device)
        chol, _, _ = self._factors.on(device, wd)
        z = torch.randn(n, chol.shape[0], generator=generator, device=device, dtype=wd) @ chol.T
        shape = torch.full((n, 1), self.df / 2.0, device=device, dtype=wd)
        w = 2.0 * torch._standard_gamma(shape, generator=generator)  # chi^2_nu = 2 Gamma(nu / 2)
        t = z * torch.rsqrt(w / self.df)
        return t[:, : self.dim_x], t[:, self.dim_x :]

    def _log_t(self, chol, v, logdet: float):
        nu, d = float(self.df), v.shape[1]
        const = math.lgamma((nu + d) / 2) - math.lgamma(nu / 2) - 0.5 * d * math.log(nu * math.pi) - 0.5 * logdet
        return const - 0.5 * (nu + d) * torch.log1p(mahalanobis(chol, v) / nu)

    def _log_ratio(self, x, y):
        chol, chol_x, chol_y = self._factors.on(x.device, x.dtype)
        ld, ld_x, ld_y = self._logdets
        joint = self._log_t(chol, torch.cat([x, y], dim=1), ld)
        return joint - self._log_t(chol_x, x, ld_x) - self._log_t(chol_y, y, ld_y)


def student_identity(dim_x: int, dim_y: int, df: float) -> MultivariateStudentT:
    """bmi's ``student-identity-{dim_x}-{dim_y}-{df}``: S = I, uncorrelated yet dependent; MI = c(ν, m, n)."""
    dim_x, dim_y = check_positive_int(dim_x, "dim_x"), check_positive_int(dim_y, "dim_y")
    df = _check_df(df)
    name = f"student-identity-{dim_x}-{dim_y}-{format_number(df)}"
    params = {"dim_x": dim_x, "dim_y": dim_y, "df": df}
    return MultivariateStudentT(torch.eye(dim_x + dim_y, dtype=torch.float64), dim_x, df, name=name, params=params)


def student_dense(dim_x: int, dim_y: int, df: float, off_diag: float = 0.5) -> MultivariateStudentT:
    """bmi's ``student-dense-{dim_x}-{dim_y}-{df}-{off_diag}``: the dispersion of ``multinormal-dense``."""
    dim_x, dim_y = check_positive_int(dim_x, "dim_x"), check_positive_int(dim_y, "dim_y")
    df, d = _check_df(df), dim_x + dim_y
    off_diag = check_correlation(off_diag, "off_diag", low=-1.0 / (d - 1))
    S = torch.full((d, d), off_diag, dtype=torch.float64)
    S.diagonal().fill_(1.0)
    name = f"student-dense-{dim_x}-{dim_y}-{format_number(df)}-{format_number(off_diag)}"
    params = {"dim_x": dim_x, "dim_y": dim_y, "df": df, "off_diag": off_diag}
    return MultivariateStudentT(S, dim_x, df, name=name, params=params)


def student_sparse(
    dim_x: int,
    dim_y: int,
    df: float,
    n_interacting: int = 2,
    strength: float | None = None,
    *,
    mi: float | None = None,
) -> MultivariateStudentT:
    r"""``student-sparse-{dim_x}-{dim_y}-{df}-{n_interacting}-{strength}`` (ours): ``multinormal-sparse``'s dispersion.

    :math:`S` has correlation :math:`\rho = \lambda^2/(1+\lambda^2)` between :math:`X_i` and :math:`Y_i`,
    :math:`i <` ``n_interacting``; :math:`I = -\tfrac k2\log(1-\rho^2) + c(\nu, m, n)`. Give ``mi`` (greater
    than :math:`c`) instead of ``strength`` to choose the MI, e.g. 10 nats.
    """
    dim_x, dim_y = check_positive_int(dim_x, "dim_x"), check_positive_int(dim_y, "dim_y")
    df = _check_df(df)
    k = check_positive_int(n_interacting, "n_interacting")
    if k > min(dim_x, dim_y):
        raise ValueError(f"n_interacting must be <= min(dim_x, dim_y) = {min(dim_x, dim_y)}, got {k}")
    if strength is not None and mi is not None:
        raise ValueError("give strength or mi, not both")
    c = student_mi_correction(df, dim_x, dim_y)
    if mi is not None:
        if isinstance(mi, bool) or not isinstance(mi, (int, float)) or not c < mi < math.inf:
            raise ValueError(f"mi must be a finite number above c(df, dim_x, dim_y) = {c:.4g} nats, got {mi!r}")
        rho, _ = correlation_for_mi(mi - c, k)
        name = (
            f"student_sparse(dim_x={dim_x},dim_y={dim_y},df={format_number(df)},n_interacting={k},"
            f"mi={format_number(float(mi))})"
        )
        params = {"dim_x": dim_x, "dim_y": dim_y, "df": df, "n_interacting": k, "mi": float(mi)}
    else:
        strength = 2.0 if strength is None else strength
        if isinstance(strength, bool) or not isinstance(strength, (int, float)) or not 0 < strength < math.inf:
            raise ValueError(f"strength must be a positive finite number, got {strength!r}")
        rho = float(strength) ** 2 / (1.0 + float(strength) ** 2)
        name = f"student-sparse-{dim_x}-{dim_y}-{format_number(df)}-{k}-{format_number(float(strength))}"
        params = {"dim_x": dim_x, "dim_y": dim_y, "df": df, "n_interacting": k, "strength": float(strength)}
    S = torch.eye(dim_x + dim_y, dtype=torch.float64)
    for i in range(k):
        S[i, dim_x + i] = S[dim_x + i, i] = rho
    return MultivariateStudentT(S, dim_x, df, name=name, params=params)
