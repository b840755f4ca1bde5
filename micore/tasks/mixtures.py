r"""Gaussian mixtures: MI known only as an integral, computed once by Monte Carlo over the exact log-ratio.

For :math:`p(x, y) = \sum_k w_k \mathcal N((x, y); \mu_k, \Sigma_k)` the marginals are the mixtures of the
components' marginals, so :math:`\log r(x, y) = \log p(x, y) - \log p(x) - \log p(y)` is exact (three
log-sum-exps), but :math:`I = \mathbb E_p[\log r]` has no closed form. ``mi`` is the Monte Carlo mean
over ``mi_samples`` draws (default 200 000, seed 0, float64), computed on first use, and ``mi_stderr`` its
standard error (sd / √n), typically 1–3·10⁻³ nats.

The tasks of Czyż et al. (2023), "The Mixtures and the Neural Critics: On the Pointwise Mutual
Information Profiles of Fine Distributions" (bmi's ``mixtures`` tasks), with bmi's names:

* ``1v1-X-{rho}``: two bivariate normals with correlations ±ρ, an X shape (uncorrelated, dependent);
* ``1v1-AI``: six components drawing the letters A and I;
* ``2v1-galaxy-{speed}-{distance}``: two balls in 3-d, x then spiralled (:class:`~.transforms.Spiral`);
* ``2v1-waves-{n}-{amplitude}-{frequency}``: ``n`` components, x then bent by a sine shear;
* ``{d}v1-concentric_gaussians-{n}``: x ~ N(0, i² I_d) with y ≈ i, i = 1..n;
* ``mult-sparse-w-inliers-{dim_x}-{dim_y}-{k}-{strength}-{fraction}``: ``multinormal-sparse`` with a
  fraction of its samples replaced by independent draws from its marginals.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ..validation import check_positive_int
from .base import Task, format_number, monte_carlo_mi, work_dtype
from .gaussian import CholeskyFactors, check_correlation, check_covariance, log_det, mahalanobis
from .normal import multinormal_sparse
from .transforms import Map, Spiral, Transformed

__all__ = [
    "GaussianMixture",
    "x_mixture",
    "ai_mixture",
    "galaxy",
    "waves",
    "concentric_gaussians",
    "sparse_with_inliers",
    "MI_SAMPLES",
]

MI_SAMPLES = 200_000
"""Monte Carlo draws behind a mixture's ``mi`` (seed 0)."""


class GaussianMixture(Task):
    r""":math:`(X, Y) \sim \sum_k w_k \mathcal N(\mu_k, \Sigma_k)`, ``X`` the first ``dim_x`` coordinates.

    Args:
        weights: ``[K]`` positive (normalised here).
        means: ``[K, d]``.
        covariances: ``[K, d, d]``, each symmetric positive definite.
        dim_x: leading coordinates that are ``x``.
        name: the task's name.
        mi_samples, mi_seed: the Monte Carlo behind ``mi``.

    Shapes: ``x: [n, dim_x]``, ``y: [n, d - dim_x]``.

    >>> task = x_mixture(0.9)
    >>> x, y = task.sample(5, seed=0)
    >>> round(task.mi, 2), task.mi_stderr < 0.005       # MI by Monte Carlo, with its standard error
    (0.41, True)
    """

    def __init__(
        self,
        weights,
        means,
        covariances,
        dim_x: int,
        *,
        name: str,
        params: dict | None = None,
        mi_samples: int = MI_SAMPLES,
        mi_seed: int = 0,
    ):
        w = torch.as_tensor(weights, dtype=torch.float64)
        mu = torch.as_tensor(means, dtype=torch.float64)
        if w.dim() != 1 or len(w) < 1 or not bool((w > 0).all()) or not bool(torch.isfinite(w).all()):
            raise ValueError(f"weights must be a non-empty vector of positive numbers, got {weights!r}")
        if mu.dim() != 2 or mu.shape[0] != len(w):
            raise ValueError(f"means must be [K, d] with K = {len(w)} components, got shape {list(mu.shape)}")
        covs = [check_covariance(c, f"covariances[{k}]") for k, c in enumerate(covariances)]
        if len(covs) != len(w) or any(c.shape[0] != mu.shape[1] for c in covs):
            raise ValueError(f"covariances must be {len(w)} matrices of size {mu.shape[1]}")
        dim_x = check_positive_int(dim_x, "dim_x")
        if dim_x >= mu.shape[1]:
            raise ValueError(f"dim_x must leave at least one coordinate for y: dim_x={dim_x}, d={mu.shape[1]}")
        self.weights, self.means, self.covariances = w / w.sum(), mu, torch.stack(covs)
        self.dim_x, self.dim_y = dim_x, mu.shape[1] - dim_x
        self.x_shape, self.y_shape = (self.dim_x,), (self.dim_y,)
        self._factors = [CholeskyFactors(c, dim_x) for c in covs]
        self._logdets = [(log_det(f.chol), log_det(f.chol_x), log_det(f.chol_y)) for f in self._factors]
        self.name = name
        self._params = dict(params) if params is not None else {}
        self.mi_samples = check_positive_int(mi_samples, "mi_samples", minimum=2)
        self.mi_seed = mi_seed
        self._mi: tuple[float, float] | None = None

    def _monte_carlo(self) -> tuple[float, float]:
        if self._mi is None:
            self._mi = monte_carlo_mi(self, self.mi_samples, self.mi_seed, device="cpu")
        return self._mi

    @property
    def mi(self) -> float:
        return self._monte_carlo()[0]

    @property
    def mi_stderr(self) -> float:
        return self._monte_carlo()[1]

    def _sample(self, n, generator, device):
        wd = work_dtype(device)
        comp = torch.multinomial(self.weights.to(device), n, replacement=True, generator=generator)
        eps = torch.randn(n, self.means.shape[1], generator=generator, device=device, dtype=wd)
        z = torch.empty_like(eps)
        for k, f in enumerate(self._factors):
            chol = f.on(device, wd)[0]
            rows = comp == k
            z[rows] = eps[rows] @ chol.T + self.means[k].to(device=device, dtype=wd)
        return z[:, : self.dim_x], z[:, self.dim_x :]

    def _log_mixture(self, v: Tensor, part: int, sl: slice) -> Tensor:
        """log density of the mixture (``part`` 0: joint, 1: x marginal, 2: y marginal) at ``v: [n, d']``."""
        d = v.shape[1]
        terms = []
        for k, f in enumerate(self._factors):
            chol = f.on(v.device, v.dtype)[part]
            mu = self.means[k, sl].to(device=v.device, dtype=v.dtype)
            logdet = self._logdets[k][part]
            q = mahalanobis(chol, v - mu)
            terms.append(math.log(float(self.weights[k])) - 0.5 * (q + logdet + d * math.log(2 * math.pi)))
        return torch.logsumexp(torch.stack(terms, dim=0), dim=0)

    def _log_ratio(self, x, y):
        joint = self._log_mixture(torch.cat([x, y], dim=1), 0, slice(None))
        return joint - self._log_mixture(x, 1, slice(0, self.dim_x)) - self._log_mixture(y, 2, slice(self.dim_x, None))


def _canonical(rho: float) -> list[list[float]]:
    return [[1.0, rho], [rho, 1.0]]


def x_mixture(rho: float = 0.9) -> GaussianMixture:
    """bmi's ``1v1-X-{rho}``: equal mixture of the bivariate normals with correlations ρ and -ρ."""
    rho = check_correlation(rho, "rho")
    return GaussianMixture(
        [0.5, 0.5],
        [[0.0, 0.0], [0.0, 0.0]],
        [_canonical(-rho), _canonical(rho)],
        1,
        name=f"1v1-X-{format_number(rho)}",
        params={"rho": rho},
    )


def ai_mixture() -> GaussianMixture:
    """bmi's ``1v1-AI``: six equally weighted components tracing the letters "A" (x < 0) and "I" (x ≈ 1)."""
    var_x, var_y, corr = 0.04, 0.2, 0.95
    c = math.sqrt(var_x * var_y) * corr
    means = [[1.0, 0.0], [1.0, 1.0], [1.0, -1.0], [-0.8, -0.2], [-1.2, 0.0], [-0.4, 0.0]]
    covs = [
        [[0.01, 0.0], [0.0, 0.2]],
        [[0.05, 0.0], [0.0, 0.001]],
        [[0.05, 0.0], [0.0, 0.001]],
        [[0.03, 0.0], [0.0, 0.001]],
        [[var_x, c], [c, var_y]],
        [[var_x, -c], [-c, var_y]],
    ]
    return GaussianMixture([1.0] * 6, means, covs, 1, name="1v1-AI", params={})


def galaxy(speed: float = 0.5, distance: float = 3.0) -> Transformed:
    r"""bmi's ``2v1-galaxy-{speed}-{distance}``: two unit balls in 3-d at :math:`\pm\tfrac{distance}2(1,1,1)`,
    x (the first 2 coordinates) then spiralled with angle ``speed``·‖x‖²."""
    for value, what in ((speed, "speed"), (distance, "distance")):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(f"{what} must be a finite number, got {value!r}")
    h = float(distance) / 2
    eye = torch.eye(3, dtype=torch.float64)
    params = {"speed": float(speed), "distance": float(distance)}
    name = f"2v1-galaxy-{format_number(float(speed))}-{format_number(float(distance))}"
    balls = GaussianMixture([0.5, 0.5], [[-h] * 3, [h] * 3], [eye, eye], 2, name=f"{name}-balls", params=params)
    return Transformed(balls, Spiral(float(speed), (0, 1)), None, name=name, params=params)


class _WavesMap(Map):
    r""":math:`x \mapsto (0.1(x_1 + a\sin(f x_2)) - 0.8,\ 0.5 x_2)`: a sine shear, then an affine squeeze."""

    def __init__(self, amplitude: float, frequency: float):
        self.amplitude, self.frequency = amplitude, frequency

    def forward(self, t):
        x1 = t[:, 0] + self.amplitude * torch.sin(self.frequency * t[:, 1])
        return torch.stack([0.1 * x1 - 0.8, 0.5 * t[:, 1]], dim=-1)

    def inverse(self, u):
        x2 = u[:, 1] / 0.5
        x1 = (u[:, 0] + 0.8) / 0.1 - self.amplitude * torch.sin(self.frequency * x2)
        return torch.stack([x1, x2], dim=-1)


def waves(n_components: int = 12, amplitude: float = 5.0, frequency: float = 3.0) -> Transformed:
    r"""bmi's ``2v1-waves-{n}-{amplitude}-{frequency}``: components :math:`k < n` at :math:`1.5(k, 0, k \bmod 4)`
    with covariance diag(0.1, 1, 0.1), then x bent by :class:`_WavesMap` (invertible: a shear and a scaling)."""
    n = check_positive_int(n_components, "n_components")
    for value, what in ((amplitude, "amplitude"), (frequency, "frequency")):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(f"{what} must be a finite number, got {value!r}")
    params = {"n_components": n, "amplitude": float(amplitude), "frequency": float(frequency)}
    name = f"2v1-waves-{n}-{format_number(float(amplitude))}-{format_number(float(frequency))}"
    cov = torch.diag(torch.tensor([0.1, 1.0, 0.1], dtype=torch.float64))
    means = [[1.5 * k, 0.0, 1.5 * (k % 4)] for k in range(n)]
    base = GaussianMixture([1.0] * n, means, [cov] * n, 2, name=f"{name}-base", params=params)
    return Transformed(base, _WavesMap(float(amplitude), float(frequency)), None, name=name, params=params)


def concentric_gaussians(dim_x: int, n_components: int = 3) -> GaussianMixture:
    r"""bmi's ``{dim_x}v1-concentric_gaussians-{n}``: component :math:`i = 1..n` has
    :math:`X \sim \mathcal N(0, i^2 I)`, :math:`Y \sim \mathcal N(i, 10^{-4})`: y tells the scale of x."""
    dim_x, n = check_positive_int(dim_x, "dim_x"), check_positive_int(n_components, "n_components")
    comps = range(1, n + 1)
    covs = [torch.diag(torch.tensor([float(i * i)] * dim_x + [1e-4], dtype=torch.float64)) for i in comps]
    means = [[0.0] * dim_x + [float(i)] for i in comps]
    name = f"{dim_x}v1-concentric_gaussians-{n}"
    return GaussianMixture([1.0] * n, means, covs, dim_x, name=name, params={"dim_x": dim_x, "n_components": n})


def sparse_with_inliers(
    dim_x: int, dim_y: int, n_interacting: int = 2, strength: float = 2.0, fraction: float = 0.2
) -> GaussianMixture:
    """bmi's ``mult-sparse-w-inliers-{dim_x}-{dim_y}-{k}-{strength}-{fraction}``: ``multinormal-sparse`` with
    weight 1 - ``fraction``, the product of its marginals (independent x and y) with weight ``fraction``."""
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction < 1:
        raise ValueError(f"fraction must be in (0, 1), got {fraction!r}")
    signal = multinormal_sparse(dim_x, dim_y, n_interacting, strength)
    cov = signal.covariance
    product = torch.block_diag(cov[:dim_x, :dim_x], cov[dim_x:, dim_x:])
    k, s, f = n_interacting, format_number(float(strength)), format_number(float(fraction))
    params = {"dim_x": dim_x, "dim_y": dim_y, "n_interacting": k, "strength": float(strength), "fraction": fraction}
    zeros = [0.0] * (dim_x + dim_y)
    return GaussianMixture(
        [1.0 - fraction, fraction],
        [zeros, zeros],
        [cov, product],
        dim_x,
        name=f"mult-sparse-w-inliers-{dim_x}-{dim_y}-{k}-{s}-{f}",
        params=params,
    )
