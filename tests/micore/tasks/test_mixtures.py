"""Gaussian-mixture tasks (micore.tasks.mixtures): MI by Monte Carlo, checked against integrals.

A mixture's ``mi`` is the Monte Carlo mean of its exact log-ratio (200 000 draws, seed 0) with standard
error ``mi_stderr``. Each check below is independent of that Monte Carlo: a numerical integral of
scipy's densities (on a grid, or a 1-d quadrature after reducing to a sufficient statistic), or a second
Monte Carlo with another seed. They pass within 4 standard errors (of the difference, for two Monte
Carlo means) plus the quadrature's own error (far below 1e-4 here).
"""

import math

import numpy as np
import pytest
import torch
from scipy import integrate, stats

from micore.tasks import monte_carlo_mi
from micore.tasks.mixtures import (
    GaussianMixture,
    ai_mixture,
    concentric_gaussians,
    galaxy,
    sparse_with_inliers,
    waves,
    x_mixture,
)
from micore.tasks.normal import multinormal_sparse

pytestmark = pytest.mark.usefixtures("one_thread")
trapezoid = getattr(np, "trapezoid", None) or np.trapz  # numpy 1.x names it trapz


def _grid_mi(task: GaussianMixture, gx, gy) -> float:
    """The integral of p log(p / (p_x p_y)) on a grid, with scipy's normal densities of the components."""
    xx, yy = np.meshgrid(gx, gy, indexing="ij")
    pts = np.stack([xx, yy], -1)
    w = task.weights.numpy()
    mu, cov = task.means.numpy(), task.covariances.numpy()
    joint = sum(w[k] * stats.multivariate_normal(mu[k], cov[k]).pdf(pts) for k in range(len(w)))
    px = sum(w[k] * stats.norm(mu[k, 0], math.sqrt(cov[k, 0, 0])).pdf(xx) for k in range(len(w)))
    py = sum(w[k] * stats.norm(mu[k, 1], math.sqrt(cov[k, 1, 1])).pdf(yy) for k in range(len(w)))
    with np.errstate(divide="ignore", invalid="ignore"):
        integrand = np.where(joint > 0, joint * np.log(joint / (px * py)), 0.0)
    assert trapezoid(trapezoid(joint, gy, axis=1), gx) == pytest.approx(1.0, abs=1e-6)  # the grid holds the mass
    return float(trapezoid(trapezoid(integrand, gy, axis=1), gx))


def test_x_shape_by_grid_integration():
    task = x_mixture(0.9)
    g = np.linspace(-9, 9, 1801)
    assert abs(_grid_mi(task, g, g) - task.mi) < 4 * task.mi_stderr + 1e-4


def test_ai_by_grid_integration():
    task = ai_mixture()  # components as narrow as sd 0.03: the grid step is 0.004
    ref = _grid_mi(task, np.linspace(-2.6, 2.4, 1251), np.linspace(-3.6, 3.6, 1801))
    assert abs(ref - task.mi) < 4 * task.mi_stderr + 1e-4


def test_galaxy_by_its_sufficient_statistic():
    """Galaxy: a spiral (MI-preserving) of two unit balls at ±h(1, 1, 1). The component is all x and y share,
    and x tells it only through s = (x1 + x2)/sqrt 2 ~ N(±h sqrt 2, 1): I(X; Y) = I(S; Y), a 2-d integral."""
    task = galaxy(0.5, 3.0)
    h = 1.5
    s_task = GaussianMixture([0.5, 0.5], [[-h * math.sqrt(2), -h], [h * math.sqrt(2), h]], [np.eye(2)] * 2, 1, name="s")
    g = np.linspace(-12, 12, 2401)
    assert abs(_grid_mi(s_task, g, g) - task.mi) < 4 * task.mi_stderr + 1e-4


@pytest.mark.parametrize("dim, n", [(3, 5), (5, 10)])
def test_concentric_by_its_sufficient_statistic(dim, n):
    """Concentric: y ~ N(i, 1e-4) names the component i (the components are 100 sd apart), and x tells it
    through r = |x| ~ i chi_d. So I(X; Y) = I(R; C) = sum_i w_i KL(p(r|i) || p(r)), a 1-d quadrature."""
    task = concentric_gaussians(dim, n)
    comps = [stats.chi(dim, scale=i) for i in range(1, n + 1)]

    def p(r):
        return sum(c.pdf(r) for c in comps) / n

    def kl(c):
        return integrate.quad(lambda r: c.pdf(r) * (c.logpdf(r) - math.log(p(r))), 0, 12 * n, limit=400)[0]

    ref = sum(kl(c) for c in comps) / n
    assert abs(ref - task.mi) < 4 * task.mi_stderr + 1e-4


@pytest.mark.parametrize(
    "build",
    [
        lambda: x_mixture(0.9),
        ai_mixture,
        lambda: galaxy(0.5, 3.0),
        lambda: waves(12, 5.0, 3.0),
        lambda: concentric_gaussians(25, 5),
        lambda: sparse_with_inliers(5, 5, 2, 2.0, 0.2),
        lambda: sparse_with_inliers(25, 25, 2, 2.0, 0.5),
    ],
)
def test_second_monte_carlo_with_another_seed(build):
    task = build()
    assert 0 < task.mi_stderr < 5e-3
    mean, se = monte_carlo_mi(task, 50_000, seed=123)
    assert abs(mean - task.mi) < 4 * math.hypot(se, task.mi_stderr), (mean, se, task.mi, task.mi_stderr)


def test_inliers_carry_at_most_their_share_of_the_signal():
    """Inliers keep the marginals, so I = KL((1-f) p + f p_x p_y || p_x p_y) <= (1-f) KL(p || p_x p_y)
    (convexity of KL): at most (1 - f) times the sparse normal's MI."""
    for f in (0.2, 0.5):
        task = sparse_with_inliers(5, 5, 2, 2.0, f)
        assert 0.05 < task.mi <= (1 - f) * multinormal_sparse(5, 5, 2, 2.0).mi + 4 * task.mi_stderr


def test_mi_is_reproducible_and_stored():
    a, b = ai_mixture(), ai_mixture()
    assert a.mi == b.mi and a.mi_stderr == b.mi_stderr
    assert (a.mi_samples, a.mi_seed) == (200_000, 0)


def test_waves_map_inverts_and_shapes():
    task = waves()
    x, y = task.sample(5000, seed=0, dtype=torch.float64)
    assert x.shape == (5000, 2) and y.shape == (5000, 1)
    x0, _ = task.base.sample(5000, seed=0, dtype=torch.float64)
    assert torch.allclose(task.map_x.inverse(x), x0, atol=1e-10)


def test_sampled_component_frequencies_follow_the_weights():
    task = GaussianMixture([0.2, 0.8], [[-50.0, 0.0], [50.0, 0.0]], [np.eye(2)] * 2, 1, name="far")
    x, _ = task.sample(100_000, seed=0)
    share = float((x[:, 0] < 0).double().mean())
    assert abs(share - 0.2) < 4 * math.sqrt(0.2 * 0.8 / 100_000)


@pytest.mark.parametrize(
    "build, word",
    [
        (lambda: x_mixture(1.0), "rho"),
        (lambda: GaussianMixture([0.5, -0.5], [[0.0, 0.0]] * 2, [np.eye(2)] * 2, 1, name="m"), "weights"),
        (lambda: GaussianMixture([1.0], [[0.0, 0.0, 0.0]], [np.eye(2)], 1, name="m"), "covariances"),
        (lambda: GaussianMixture([1.0, 1.0], [[0.0, 0.0]] * 2, [np.eye(2), -np.eye(2)], 1, name="m"), "covariances"),
        (lambda: GaussianMixture([1.0], [[0.0, 0.0]], [np.eye(2)], 2, name="m"), "dim_x"),
        (lambda: sparse_with_inliers(5, 5, 2, 2.0, 1.0), "fraction"),
        (lambda: concentric_gaussians(3, 0), "n_components"),
        (lambda: waves(12, float("nan"), 3.0), "amplitude"),
        (lambda: galaxy(0.5, float("inf")), "distance"),
    ],
)
def test_bad_parameters_name_the_argument(build, word):
    with pytest.raises(ValueError, match=word):
        build()
