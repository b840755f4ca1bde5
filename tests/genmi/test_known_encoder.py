"""Bounds with a known encoder (Poole et al. 2019, Sec. 2.5) against the exact MI of Gaussian encoders.

Tolerances: every value is a mean over B >= 64 independent batches; it is compared with its target at
3 standard errors measured from the same batches (a one-sided z-test failing by chance with
probability ~1e-3; the seeds are fixed, so the suite is deterministic). Deterministic caps (log K)
are checked exactly.
"""

import math

import pytest
import torch
from torch.distributions import Independent, MultivariateNormal, Normal

from genmi import (
    LeaveOneOut,
    TractableInfoNCE,
    conditional_log_prob_matrix,
    infonce_tractable_lower,
    leave_one_out_upper,
    sandwich,
    total_correlation_bound,
    total_correlation_upper,
)
from micore.tasks import CorrelatedGaussian

Z = 3.0


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("mi", [2.0, 4.0, 6.0, 8.0, 10.0])
def test_sandwich_brackets_the_exact_mi_at_every_level(mi):
    task = CorrelatedGaussian(dim=20, mi=mi)
    x = task.sample_x(12_800, seed=1)
    lo, hi = sandwich(task.encoder, x, batch_size=128, seed=0)
    assert (lo.kind, hi.kind) == ("lower bound", "upper bound")
    assert lo.n == hi.n == 12_800 and lo.batch_size == 128
    assert lo.value <= task.mi + Z * lo.stderr
    assert hi.value >= task.mi - Z * hi.stderr
    assert lo.value <= math.log(128) + 1e-9  # every batch is capped at log K, so the mean is too


def test_lower_bound_never_exceeds_log_batch_and_saturates_at_high_mi():
    task = CorrelatedGaussian(dim=20, mi=10.0)
    g = torch.Generator().manual_seed(3)
    k = 128
    values = []
    for _ in range(50):
        x, y = task.sample(k, generator=g)
        values.append(infonce_tractable_lower(task.encoder, x.double(), y.double()))
    values = torch.stack(values)
    assert bool((values <= math.log(k) + 1e-9).all())  # each term is log of p_ii / mean_j p_ij <= log K
    # I = 10 >> log 128: the bound sits just below its cap (the optimal critic makes the other terms tiny)
    assert float(values.mean()) > math.log(k) - 0.2


def test_leave_one_out_gap_shrinks_as_the_batch_grows():
    # upper - lower = mean_i log[(1/K) sum_j p_ij / ((1/K-1) sum_{j!=i} p_ij)]: the own term's weight in
    # the mixture falls like 1/K, so the interval narrows as K grows
    task = CorrelatedGaussian(dim=20, mi=4.0)
    x = task.sample_x(16_384, seed=2)
    gaps = {}
    for k in (16, 64, 256):
        lo, hi = sandwich(task.encoder, x, batch_size=k, seed=k)
        gaps[k] = (hi.value - lo.value, math.hypot(lo.stderr, hi.stderr))
    for small, large in ((16, 64), (64, 256)):
        assert gaps[small][0] - gaps[large][0] > Z * math.hypot(gaps[small][1], gaps[large][1])


def test_bounds_match_equations_12_and_13_term_by_term():
    # brute force with explicit densities: rows x_j, columns y_i, normalised over x_j for each y_i
    task = CorrelatedGaussian(dim=3, mi=1.5)
    x, y = task.sample(7, seed=4)
    x, y = x.double(), y.double()
    cov = (1 - task.rho**2) * torch.eye(3, dtype=torch.float64)
    p = torch.tensor(
        [[MultivariateNormal(task.rho * x[j], cov).log_prob(y[i]).exp().item() for j in range(7)] for i in range(7)],
        dtype=torch.float64,
    )  # p[i, j] = p(y_i | x_j)
    eq12 = sum(math.log(p[i, i] / (p[i].sum() / 7)) for i in range(7)) / 7
    eq13 = sum(math.log(p[i, i] / ((p[i].sum() - p[i, i]) / 6)) for i in range(7)) / 7
    assert float(infonce_tractable_lower(task.encoder, x, y)) == pytest.approx(eq12, abs=1e-10)
    assert float(leave_one_out_upper(task.encoder, x, y)) == pytest.approx(eq13, abs=1e-10)
    assert torch.allclose(conditional_log_prob_matrix(task.encoder, x, y), p.log().T, atol=1e-10)


def gaussian_mean_field_encoder(a: torch.Tensor, noise_var: torch.Tensor):
    """y = A x + e, e ~ N(0, diag(noise_var)): p(y|x) = prod_c N(y_c; (A x)_c, noise_var_c)."""

    def encoder(x):
        return Independent(Normal(x @ a.T, noise_var.sqrt().expand(x.shape[0], -1)), 1)

    return encoder


def exact_total_correlation(a: torch.Tensor, noise_var: torch.Tensor) -> float:
    # x ~ N(0, I): Y ~ N(0, S), S = A A^T + D, and TC(Y) = sum_c h(Y_c) - h(Y) = 1/2 (sum_c log S_cc - log det S)
    s = a @ a.T + torch.diag(noise_var)
    return 0.5 * float(torch.log(torch.diagonal(s)).sum() - torch.logdet(s))


def test_total_correlation_bound_is_above_the_exact_tc_of_a_correlated_encoder():
    a = torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.6, -0.8], [0.0, 1.0]], dtype=torch.float64)
    noise = torch.full((4,), 1.5, dtype=torch.float64)
    tc = exact_total_correlation(a, noise)
    assert tc > 0.1  # the encoder's coordinates share x: a real dependence to bound
    x = torch.randn(256 * 64, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    bound = total_correlation_bound(gaussian_mean_field_encoder(a, noise), x, batch_size=256, seed=0)
    assert bound.kind == "upper bound"
    assert bound.value >= tc - Z * bound.stderr
    # and it is tight here (I(X;Y) = 0.85 nats << log 256, so every part is within ~0.01 of its target;
    # measured 0.178 vs 0.174): a bound with a misplaced term (e.g. coordinates' bounds summed over the wrong
    # axis) would be off by far more than 0.1
    assert bound.value < tc + 0.1


def test_total_correlation_bound_is_near_zero_for_an_independent_encoder():
    # A diagonal: Y_c depends on x_c only and TC(Y) = 0 exactly. The bound's excess is the sum of the
    # biases of 4 LOO upper bounds and one InfoNCE lower bound, each O((E_Q[r^2] - 1) / K); at
    # I(X;Y_c) = 0.11-0.25 nats and K = 256 that is ~0.002 per term (measured on 400 batches: 0.009 in
    # all), so 0.02 + 3 s.e.
    a = torch.diag(torch.tensor([0.8, 0.6, 0.7, 0.5], dtype=torch.float64))
    noise = torch.ones(4, dtype=torch.float64)
    assert exact_total_correlation(a, noise) == pytest.approx(0.0, abs=1e-12)
    x = torch.randn(256 * 64, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(6))
    bound = total_correlation_bound(gaussian_mean_field_encoder(a, noise), x, batch_size=256, seed=1)
    assert -Z * bound.stderr <= bound.value <= 0.02 + Z * bound.stderr


def test_total_correlation_upper_on_one_batch_equals_its_parts():
    a = torch.tensor([[1.0, 0.5], [0.3, 1.0], [0.2, 0.2]], dtype=torch.float64)
    enc = gaussian_mean_field_encoder(a, torch.ones(3, dtype=torch.float64))
    x = torch.randn(32, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(7))
    y = enc(x).sample()
    parts = sum(
        leave_one_out_upper(
            gaussian_mean_field_encoder(a[c : c + 1], torch.ones(1, dtype=torch.float64)), x, y[:, c : c + 1]
        )
        for c in range(3)
    )
    expected = parts - infonce_tractable_lower(enc, x, y)
    assert float(total_correlation_upper(enc, x, y)) == pytest.approx(float(expected), abs=1e-10)


def test_estimators_agree_with_the_functions_and_have_nothing_to_train():
    task = CorrelatedGaussian(dim=20, mi=4.0)
    x, y = task.sample(512, seed=8)
    loo, nce = LeaveOneOut(20, 20, encoder=task.encoder), TractableInfoNCE(20, 20, encoder=task.encoder)
    assert (loo.kind, nce.kind) == ("upper bound", "lower bound")
    e_up, e_lo = loo.estimate(x, y), nce.estimate(x, y)
    assert e_up.batch_size == e_lo.batch_size == 128
    batches = [(x[i : i + 128], y[i : i + 128]) for i in range(0, 512, 128)]
    assert e_up.value == pytest.approx(
        float(torch.stack([leave_one_out_upper(task.encoder, a, b) for a, b in batches]).mean()), abs=1e-5
    )
    assert e_lo.value == pytest.approx(
        float(torch.stack([infonce_tractable_lower(task.encoder, a, b) for a, b in batches]).mean()), abs=1e-5
    )
    # scores: log p(y_j|x_i) against the batch mixture, so each column log-mean-exps to 0
    s = loo.scores(x[:64], y[:64])
    assert torch.allclose(torch.logsumexp(s, 0) - math.log(64), torch.zeros(64), atol=1e-4)
    with pytest.raises(ValueError, match="nothing to fit"):
        loo.fit(task, steps=10)
    assert float(loo.loss(x[:64], y[:64])) > float(-nce.loss(x[:64], y[:64]))  # upper > lower on a batch


def test_dtype_follows_the_inputs():
    task = CorrelatedGaussian(dim=4, mi=1.0)
    x, y = task.sample(16, seed=9)
    assert infonce_tractable_lower(task.encoder, x.double(), y.double()).dtype == torch.float64
    lo, hi = sandwich(task.encoder, x.double(), batch_size=8, seed=0)
    assert lo.value <= hi.value


# -- bad input -------------------------------------------------------------------------------------
def test_an_encoder_that_is_not_a_distribution_is_refused_with_the_reason():
    x = torch.randn(64, 3)
    with pytest.raises(ValueError, match="upper bound on MI is impossible"):
        sandwich(lambda v: 2 * v, x)  # deterministic map: returns a tensor, not p(y|x)
    with pytest.raises(ValueError, match="encoder must be a callable"):
        sandwich(torch.randn(64, 3), x)
    with pytest.raises(ValueError, match="encoder must be a callable"):
        sandwich(Normal(0.0, 1.0), x)
    with pytest.raises(ValueError, match="encoder must be a callable"):
        LeaveOneOut(3, 3, encoder="gaussian")
    with pytest.raises(ValueError, match="batch shape"):  # one distribution for the whole batch
        sandwich(lambda v: MultivariateNormal(torch.zeros(3), torch.eye(3)), x)


def test_shape_and_value_errors():
    task = CorrelatedGaussian(dim=4, mi=1.0)
    x, y = task.sample(32, seed=10)
    with pytest.raises(ValueError, match="same number of samples"):
        leave_one_out_upper(task.encoder, x, y[:31])
    with pytest.raises(ValueError, match="event shape"):
        infonce_tractable_lower(task.encoder, x, y[:, :3])
    with pytest.raises(ValueError, match="NaN or infinite"):
        sandwich(task.encoder, torch.full((32, 4), math.nan))
    with pytest.raises(ValueError, match="at least 2 samples"):
        sandwich(task.encoder, x[:1])
    with pytest.raises(ValueError, match="y must have shape"):
        LeaveOneOut(4, 4, encoder=task.encoder).estimate(x, y[:, :2])
    with pytest.raises(ValueError, match="mean-field"):
        total_correlation_upper(lambda v: MultivariateNormal(v, torch.eye(4)), x, y)
    # a bare Normal with batch shape [n, d] is read as independent coordinates
    bare = lambda v: Normal(task.rho * v, task.noise_std)  # noqa: E731
    assert float(leave_one_out_upper(bare, x, y)) == pytest.approx(float(leave_one_out_upper(task.encoder, x, y)))
