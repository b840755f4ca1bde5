"""Multivariate normal tasks (micore.tasks.normal): MI against hand values, numerical integration and
Monte Carlo; the log-ratio against scipy's densities; bad parameters.

Monte Carlo tolerances: the mean of the exact log-ratio over n samples has standard error se = sd/sqrt(n)
(``monte_carlo_mi`` returns it); a check passes within 4 se (two-sided 6e-5 under the normal
approximation; the seeds are fixed, so the tests are deterministic either way).
"""

import math

import numpy as np
import pytest
import torch
from scipy import stats

from micore.tasks import monte_carlo_mi
from micore.tasks.normal import MultivariateNormal, bivariate_normal, multinormal_dense, multinormal_sparse

# small matrices: a second intra-op thread only adds contention on a shared 2-core machine
pytestmark = pytest.mark.usefixtures("one_thread")
MC_N = 100_000
trapezoid = getattr(np, "trapezoid", None) or np.trapz  # numpy 1.x names it trapz


def _dense_mi(dim_x, dim_y, rho):
    """Hand closed form: det of the k-block of (1-rho) I + rho 11^T is (1-rho)^(k-1) (1 + (k-1) rho)."""

    def logdet(k):
        return (k - 1) * math.log(1 - rho) + math.log(1 + (k - 1) * rho)

    return 0.5 * (logdet(dim_x) + logdet(dim_y) - logdet(dim_x + dim_y))


def test_hand_computed_values():
    # rho = 0.75, 1-d: -1/2 log(1 - 0.5625) = 0.41334
    assert bivariate_normal(0.75).mi == pytest.approx(-0.5 * math.log(0.4375), abs=1e-12)
    assert bivariate_normal(0.75).mi == pytest.approx(0.4133, abs=5e-5)
    # dense 2-2, rho = 0.5: 1/2 log(0.75^2 / 0.3125) = 1/2 log 1.8 = 0.29389
    assert multinormal_dense(2, 2, 0.5).mi == pytest.approx(0.5 * math.log(1.8), abs=1e-12)
    # sparse, 2 pairs with strength 2: rho = 4/5, MI = -log(1 - 0.64) = 1.02165
    assert multinormal_sparse(3, 3, 2, 2.0).mi == pytest.approx(-math.log(0.36), abs=1e-12)
    assert multinormal_sparse(5, 5, 2, mi=10.0).mi == pytest.approx(10.0, abs=1e-9)


@pytest.mark.parametrize("dims", [(2, 2), (3, 3), (5, 5), (25, 25), (50, 50), (2, 5)])
def test_dense_matches_the_block_determinant_formula(dims):
    assert multinormal_dense(*dims, 0.5).mi == pytest.approx(_dense_mi(*dims, 0.5), rel=1e-10)


@pytest.mark.parametrize("dims", [(2, 2, 2), (3, 3, 2), (5, 5, 2), (25, 25, 2), (4, 6, 3)])
def test_sparse_covariance_and_mi_agree_with_numpy(dims):
    task = multinormal_sparse(*dims, strength=2.0)
    cov = task.covariance.numpy()
    dx = dims[0]
    assert np.allclose(np.diag(cov), 1.0)
    off = cov[:dx, dx:]
    assert np.allclose(np.diag(off)[: dims[2]], 0.8) and np.count_nonzero(off) == dims[2]
    gauss = 0.5 * (
        np.linalg.slogdet(cov[:dx, :dx])[1] + np.linalg.slogdet(cov[dx:, dx:])[1] - np.linalg.slogdet(cov)[1]
    )
    assert task.mi == pytest.approx(gauss, rel=1e-10)


def test_bivariate_mi_by_numerical_integration():
    """MI = integral of p log(p / (p_x p_y)) on a fine grid, with scipy's densities (not the task's)."""
    rho = 0.75
    g = np.linspace(-9, 9, 1801)
    xx, yy = np.meshgrid(g, g, indexing="ij")
    joint = stats.multivariate_normal(cov=[[1, rho], [rho, 1]]).logpdf(np.stack([xx, yy], -1))
    integrand = np.exp(joint) * (joint - stats.norm.logpdf(xx) - stats.norm.logpdf(yy))
    mi = trapezoid(trapezoid(integrand, g, axis=1), g)
    assert mi == pytest.approx(bivariate_normal(rho).mi, abs=1e-6)


@pytest.mark.parametrize(
    "task",
    [
        bivariate_normal(-0.3),
        multinormal_dense(3, 2, 0.4),
        multinormal_sparse(4, 3, 2, 1.5),
        MultivariateNormal([[2.0, 0.3, -0.4], [0.3, 1.0, 0.2], [-0.4, 0.2, 0.7]], dim_x=2),
    ],
    ids=lambda t: t.name,
)
def test_log_ratio_matches_scipy_densities(task):
    x, y = task.sample(200, seed=3, dtype=torch.float64)
    cov = task.covariance.numpy()
    dx = task.dim_x
    ref = (
        stats.multivariate_normal(cov=cov).logpdf(torch.cat([x, y], 1).numpy())
        - stats.multivariate_normal(cov=cov[:dx, :dx]).logpdf(x.numpy())
        - stats.multivariate_normal(cov=cov[dx:, dx:]).logpdf(y.numpy())
    )
    assert np.allclose(task.log_ratio(x, y).numpy(), ref, atol=1e-9)


@pytest.mark.parametrize(
    "task",
    [
        bivariate_normal(0.75),
        multinormal_dense(5, 5, 0.5),
        multinormal_dense(25, 25, 0.5),
        multinormal_sparse(5, 5, 2, 2.0),
        multinormal_sparse(5, 5, 2, mi=10.0),
        MultivariateNormal(torch.tensor([[1.0, 0.6, 0.1], [0.6, 1.5, -0.3], [0.1, -0.3, 0.8]]), dim_x=1),
    ],
    ids=lambda t: t.name,
)
def test_mi_against_monte_carlo_of_the_log_ratio(task):
    mean, se = monte_carlo_mi(task, MC_N, seed=11)
    assert abs(mean - task.mi) < 4 * se, (mean, se, task.mi)


def test_samples_have_the_declared_covariance():
    task = multinormal_sparse(3, 3, 2, 2.0)
    x, y = task.sample(200_000, seed=0, dtype=torch.float64)
    emp = torch.cov(torch.cat([x, y], 1).T)
    # entries of a sample covariance of unit-variance normals have sd <= sqrt(2 / n) = 0.0032
    assert torch.allclose(emp, task.covariance, atol=0.016)


@pytest.mark.parametrize(
    "build, word",
    [
        (lambda: bivariate_normal(1.0), "rho"),
        (lambda: bivariate_normal(-1.2), "rho"),
        (lambda: bivariate_normal(float("nan")), "rho"),
        (lambda: multinormal_dense(2, 2, -0.5), "off_diag"),  # below -1/(d-1) = -1/3
        (lambda: multinormal_dense(0, 2, 0.5), "dim_x"),
        (lambda: multinormal_sparse(2, 2, 3, 2.0), "n_interacting"),
        (lambda: multinormal_sparse(2, 2, 2, 0.0), "strength"),
        (lambda: multinormal_sparse(2, 2, 2, mi=-1.0), "mi"),
        (lambda: multinormal_sparse(2, 2, 2, mi=1e6), "mi"),
        (lambda: MultivariateNormal([[1.0, 2.0], [2.0, 1.0]], 1), "positive definite"),
        (lambda: MultivariateNormal([[1.0, 0.1], [0.2, 1.0]], 1), "symmetric"),
        (lambda: MultivariateNormal([[1.0, 0.0], [0.0, 1.0]], 2), "dim_x"),
        (lambda: MultivariateNormal([1.0, 2.0], 1), "covariance"),
        (lambda: bivariate_normal(0.5).sample(0, seed=0), "n"),
    ],
)
def test_bad_parameters_name_the_argument(build, word):
    with pytest.raises(ValueError, match=word):
        build()
