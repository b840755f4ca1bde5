"""Barber-Agakov bounds on the Gaussian task: the lower bound stays below the exact MI, the upper bound
above, and both approach it once q is trained.

Tolerances: "stays below/above" is a 3-standard-error test on held-out samples (the bounds hold in
expectation; the standard error is over evaluation batches). The distance to the MI after the short
training is |mean| + 4 sd over 6 seeds of the same configuration (benchmarks/genmi_test_tolerances.py;
the trainings are selfconsistency.testing's, which that script runs too).
"""

import math

import pytest
import torch

from genmi import BarberAgakov, BarberAgakovUpper
from selfconsistency.testing import TASK, train_lower, train_upper

# |held-out value - MI| after BA_STEPS steps: mean gap + 4 sd over 6 seeds, rounded up to 0.05
# (python benchmarks/genmi_test_tolerances.py --only ba: lower +0.056 +- 0.022, upper +0.022 +- 0.029)
BA_LOWER_GAP, BA_UPPER_GAP = 0.15, 0.15


pytestmark = pytest.mark.usefixtures("one_thread")


def test_barber_agakov_lower_bound_on_the_gaussian():
    e = train_lower(0)
    assert e.kind == "lower bound"
    assert e.value <= TASK.mi + 3 * e.stderr
    assert TASK.mi - e.value <= BA_LOWER_GAP


def test_variational_upper_bound_on_the_gaussian():
    e = train_upper(0)
    assert e.kind == "upper bound"
    assert e.value >= TASK.mi - 3 * e.stderr
    assert e.value - TASK.mi <= BA_UPPER_GAP


def test_untrained_marginal_gives_the_rate_against_the_standard_normal():
    # the flow starts as N(0, I), which is p(y) here, so the bound is tight:
    #   R = E_x KL(N(rho x, (1 - rho^2) I) || N(0, I)) = d/2 [rho^2 E[x^2] + (1 - rho^2) - 1 - log(1 - rho^2)]
    #     = -d/2 log(1 - rho^2) = I;  the Monte Carlo terms log p(y|x) - log q(y) average to it
    est = BarberAgakovUpper(5, 5, encoder=TASK.encoder).double()
    x, y = TASK.sample(20_000, seed=3)
    with torch.no_grad():
        terms = est.log_ratio(x.double(), y.double())
    assert abs(float(terms.mean()) - TASK.mi) < 3 * float(terms.std()) / math.sqrt(20_000)
    rho2 = TASK.rho**2
    assert 2.5 * (rho2 + (1 - rho2) - 1 - math.log(1 - rho2)) == pytest.approx(TASK.mi)


def test_lower_bound_log_ratio_is_log_q_plus_entropy():
    est = BarberAgakov(5, 5, entropy_x=3.0)
    x, y = TASK.sample(8, seed=4)
    assert torch.allclose(est.log_ratio(x, y), est.decoder.log_prob(x, y) + 3.0)
    assert est.loss(x, y).shape == ()


def test_barber_agakov_bad_input():
    with pytest.raises(ValueError, match="entropy_x"):
        BarberAgakov(5, 5, entropy_x=math.nan)
    with pytest.raises(TypeError):
        BarberAgakov(5, 5)  # h(X) is required: the bound does not exist without it
    with pytest.raises(ValueError, match="encoder must be a callable"):
        BarberAgakovUpper(5, 5, encoder=torch.zeros(5))
    est = BarberAgakovUpper(5, 5, encoder=lambda x: x + 1)  # not a distribution
    with pytest.raises(ValueError, match="upper bound on MI is impossible"):
        est.estimate(*TASK.sample(64, seed=5))
    with pytest.raises(ValueError, match="x must have shape"):
        BarberAgakov(5, 5, entropy_x=1.0).estimate(torch.randn(64, 4), torch.randn(64, 5))
