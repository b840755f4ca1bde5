"""Additive uniform noise and the multivariate Student-t (micore.tasks.additive, micore.tasks.student).

Each closed form is checked three ways: hand-computed values, a numerical integral built from the
densities alone (1-d / radial quadrature with scipy), and Monte Carlo of the exact log-ratio, which passes
within 4 standard errors (se = sd / sqrt(n) as returned by ``monte_carlo_mi``; fixed seeds).
"""

import math

import numpy as np
import pytest
import torch
from scipy import integrate, special, stats

from micore.tasks import monte_carlo_mi
from micore.tasks.additive import AdditiveUniform
from micore.tasks.student import MultivariateStudentT, student_dense, student_identity, student_sparse

# small matrices: a second intra-op thread only adds contention on a shared 2-core machine
pytestmark = pytest.mark.usefixtures("one_thread")
MC_N = 100_000


# ---- additive uniform noise ------------------------------------------------------------------


def test_additive_hand_values():
    assert AdditiveUniform(0.1).mi == pytest.approx(0.1 - math.log(0.2), abs=1e-12)  # 1.70944
    assert AdditiveUniform(0.1).mi == pytest.approx(1.7094, abs=5e-5)
    assert AdditiveUniform(0.75).mi == pytest.approx(1.0 / 3.0, abs=1e-12)
    assert AdditiveUniform(0.5).mi == pytest.approx(0.5, abs=1e-12)  # both branches meet at 1/2
    assert AdditiveUniform(2e-5).mi == pytest.approx(2e-5 - math.log(4e-5), abs=1e-12)  # 10.13 nats


@pytest.mark.parametrize("eps", [0.05, 0.1, 0.3, 0.5, 0.75, 2.0])
def test_additive_mi_by_quadrature_of_the_density_of_y(eps):
    """I = h(Y) - log(2 eps), with p_Y(y) = |[y - eps, y + eps] ∩ [0, 1]| / (2 eps) integrated numerically."""

    def p(y):
        return max(0.0, min(1.0, y + eps) - max(0.0, y - eps)) / (2 * eps)

    def minus_p_log_p(y):
        v = p(y)
        return -v * math.log(v) if v > 0 else 0.0

    kinks = sorted({-eps, eps, 1 - eps, 1 + eps})
    h_y = sum(integrate.quad(minus_p_log_p, a, b, epsabs=1e-13)[0] for a, b in zip(kinks, kinks[1:], strict=False))
    assert AdditiveUniform(eps).mi == pytest.approx(h_y - math.log(2 * eps), abs=1e-9)


@pytest.mark.parametrize("eps", [0.1, 0.75])
def test_additive_monte_carlo(eps):
    task = AdditiveUniform(eps)
    mean, se = monte_carlo_mi(task, MC_N, seed=5)
    assert abs(mean - task.mi) < 4 * se + 1e-12


def test_additive_samples_and_support():
    task = AdditiveUniform(0.1)
    x, y = task.sample(50_000, seed=0, dtype=torch.float64)
    assert x.min() >= 0 and x.max() <= 1 and (y - x).abs().max() <= 0.1
    # off the support the ratio is 0: log r = -inf
    assert task.log_ratio(torch.tensor([[0.5]]), torch.tensor([[0.9]])).item() == -math.inf


def test_additive_float32_samples_stay_on_the_support():
    """At eps = 2e-5 (10.13 nats) rounding x + noise to float32 can step just off |y - x| <= eps."""
    task = AdditiveUniform(2e-5)
    x, y = task.sample(100_000, seed=0, dtype=torch.float32)
    lr = task.log_ratio(x, y)
    assert torch.isfinite(lr).all() and abs(float(lr.double().mean()) - task.mi) < 1e-3


# ---- Student-t -------------------------------------------------------------------------------


def _student_mi_by_quadrature(df: float) -> float:
    """I = 2 h(t_1) - h(t_2) for S = I in 1 + 1 dimensions: h(t_1) by quad of scipy's pdf, h(t_2) of the
    radially symmetric bivariate t by quad over the radius (2 pi r dr)."""
    t1 = stats.t(df)
    h1 = integrate.quad(lambda v: -t1.pdf(v) * t1.logpdf(v), -np.inf, np.inf, epsabs=1e-12, limit=400)[0]
    t2 = stats.multivariate_t(loc=[0, 0], shape=np.eye(2), df=df)

    def radial(r):
        lp = t2.logpdf([r, 0.0])
        return -2 * math.pi * r * math.exp(lp) * lp

    h2 = integrate.quad(radial, 0, np.inf, epsabs=1e-12, limit=400)[0]
    return 2 * h1 - h2


def test_student_hand_value():
    # nu = 1, m = n = 1: log G(1/2) + log G(3/2) + 2 psi(1) - 3/2 psi(3/2) - 1/2 psi(1/2) = 0.22417
    hand = (
        math.lgamma(0.5)
        + math.lgamma(1.5)
        + 2 * special.digamma(1.0)
        - 1.5 * special.digamma(1.5)
        - 0.5 * special.digamma(0.5)
    )
    assert student_identity(1, 1, 1).mi == pytest.approx(hand, abs=1e-12)
    assert student_identity(1, 1, 1).mi == pytest.approx(0.2242, abs=5e-5)


@pytest.mark.parametrize("df", [1, 2.5, 5])
def test_student_mi_by_quadrature(df):
    assert student_identity(1, 1, df).mi == pytest.approx(_student_mi_by_quadrature(df), abs=2e-6)


@pytest.mark.parametrize(
    "task",
    [
        student_identity(2, 2, 1),
        student_identity(5, 5, 3),
        student_dense(2, 3, 3, 0.5),
        student_sparse(3, 3, 2, 2, 2.0),
        student_sparse(5, 5, 5, 2, mi=10.0),
    ],
    ids=lambda t: t.name,
)
def test_student_mi_against_monte_carlo(task):
    mean, se = monte_carlo_mi(task, MC_N, seed=7)
    assert abs(mean - task.mi) < 4 * se, (mean, se, task.mi)


def test_student_log_ratio_matches_scipy():
    S = np.array([[1.0, 0.3, 0.5], [0.3, 2.0, -0.2], [0.5, -0.2, 1.0]])
    task = MultivariateStudentT(S, dim_x=2, df=3.5)
    x, y = task.sample(100, seed=1, dtype=torch.float64)
    xy = torch.cat([x, y], 1).numpy()
    ref = (
        stats.multivariate_t(shape=S, df=3.5).logpdf(xy)
        - stats.multivariate_t(shape=S[:2, :2], df=3.5).logpdf(xy[:, :2])
        - stats.multivariate_t(shape=S[2:, 2:], df=3.5).logpdf(xy[:, 2:])
    )
    assert np.allclose(task.log_ratio(x, y).numpy(), ref, atol=1e-9)


def test_student_marginal_is_t_distributed():
    x, _ = student_identity(1, 1, 3).sample(20_000, seed=2, dtype=torch.float64)
    assert stats.kstest(x[:, 0].numpy(), stats.t(3).cdf).pvalue > 1e-3


def test_student_is_dependent_although_uncorrelated():
    task = student_identity(2, 2, 5)
    x, y = task.sample(200_000, seed=4, dtype=torch.float64)
    assert abs(float(torch.corrcoef(torch.stack([x[:, 0], y[:, 0]]))[0, 1])) < 0.01
    assert float(torch.corrcoef(torch.stack([x[:, 0] ** 2, y[:, 0] ** 2]))[0, 1]) > 0.05
    assert task.mi > 0.05


@pytest.mark.parametrize(
    "build, word",
    [
        (lambda: AdditiveUniform(0.0), "epsilon"),
        (lambda: AdditiveUniform(-0.1), "epsilon"),
        (lambda: AdditiveUniform(float("inf")), "epsilon"),
        (lambda: student_identity(1, 1, 0), "df"),
        (lambda: student_identity(1, 1, -2.0), "df"),
        (lambda: student_dense(2, 2, 3, 1.0), "off_diag"),
        (lambda: student_sparse(2, 2, 3, 2, mi=0.01), "mi"),  # below the Student term c(3, 2, 2)
        (lambda: MultivariateStudentT([[1.0, 1.5], [1.5, 1.0]], 1, 3), "dispersion"),
        (lambda: AdditiveUniform(0.1).sample(-1), "n"),
    ],
)
def test_bad_parameters_name_the_argument(build, word):
    with pytest.raises(ValueError, match=word):
        build()
