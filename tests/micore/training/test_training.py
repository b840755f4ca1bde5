"""Short trainings: every discriminative estimator lands near the exact MI on held-out samples.

Configuration in selfconsistency/groundtruth/short_training.py (5-d Gaussian at MI = 2, 64-64 joint critic,
500 steps), over the registry's discriminative examples.
Tolerances are |mean - I| + 4 sd over 6 seeds of exactly this configuration, rounded up to 0.05
(``python benchmarks/training_tolerances.py --seeds 6``, measured 2026-11-22):

    estimator      mean   sd     tolerance        estimator      mean   sd     tolerance
    nwj            1.922  0.022  0.20             js             1.878  0.031  0.25
    tuba           1.919  0.025  0.20             interpolated   1.920  0.025  0.20
    dv             1.920  0.023  0.20             smile:5        1.892  0.029  0.25
    mine           1.932  0.023  0.20             smile:inf      1.893  0.029  0.25
    cpc (infonce)  1.800  0.021  0.30             remine         1.928  0.026  0.20
                                                  remine-j       1.922  0.108  0.55

ReMINE-J is the noisiest: its estimate E_P[T] - C relies on the regulariser having pinned
log E_Q[e^T] to C, which after 500 steps holds only to about +-0.1.
"""

import math

import pytest
import torch

import discmi
from selfconsistency.registry import examples
from selfconsistency.testing import MI, NAMES, evaluate, evaluate_onehot

TOLERANCE = {
    "nwj": 0.20,
    "tuba": 0.20,
    "dv": 0.20,
    "mine": 0.20,
    "cpc": 0.30,
    "js": 0.25,
    "interpolated": 0.20,
    "smile:5": 0.25,
    "smile:inf": 0.25,
    "remine": 0.20,
    "remine-j": 0.55,
}


pytestmark = pytest.mark.usefixtures("one_thread")


def test_every_estimator_has_a_tolerance():
    # a newly registered discriminative estimator fails here until its tolerance is measured and added
    assert set(TOLERANCE) == set(examples(family="discriminative")) == set(NAMES)


@pytest.mark.parametrize("name", sorted(NAMES))
def test_short_training_lands_near_the_true_mi(name):
    value = evaluate(name, seed=0)
    assert abs(value - MI) <= TOLERANCE[name], f"{name}: held-out estimate {value:.3f}, true MI {MI}"


def test_remine_reaches_log_16_on_the_one_hot_set():
    # 8 seeds (benchmarks/training_tolerances.py --only remine-onehot --seeds 8): mean 2.729, sd 0.011,
    # i.e. log 16 - 0.043; tolerance |bias| + 4 sd = 0.089, rounded up to 0.10
    value = evaluate_onehot(seed=0)
    assert abs(value - math.log(16)) <= 0.10, value


class _BilinearCritic(torch.nn.Module):
    """T(x, y) = sum_k w_k x_k y_k, so dT/dw = x * y and the MINE gradient can be written by hand."""

    def __init__(self, d):
        super().__init__()
        self.w = torch.nn.Parameter(torch.linspace(-0.5, 0.5, d, dtype=torch.float64))

    def forward(self, x, y):
        return (x * y) @ self.w


def test_mine_gradient_is_the_bias_corrected_formula():
    # Belghazi et al. Sec. 3.2: G = E_B[dT] - E_B~[e^T dT] / EMA, with the EMA of E_B~[e^T] updated
    # before the gradient is taken; the loss is its negative
    d, n, rate = 3, 6, 0.25
    est = discmi.MINE(d, d, critic=_BilinearCritic(d), ema_rate=rate).double()
    g = torch.Generator().manual_seed(0)
    batches = [
        (torch.randn(n, d, generator=g, dtype=torch.float64), torch.randn(n, d, generator=g, dtype=torch.float64))
        for _ in range(3)
    ]
    ema = None
    for x, y in batches:
        est.zero_grad()
        loss = est.loss(x, y)
        loss.backward()
        w = est.critic.w.detach()
        pair_grad = x[:, None, :] * y[None, :, :]  # dT(x_i, y_j)/dw: [n, n, d]
        t = pair_grad @ w  # T(x_i, y_j): [n, n]
        off = ~torch.eye(n, dtype=torch.bool)
        partition = t[off].exp().mean()
        ema = partition if ema is None else (1 - rate) * ema + rate * partition
        expected = (t[off].exp()[:, None] * pair_grad[off]).mean(0) / ema - pair_grad.diagonal().T.mean(0)
        assert torch.allclose(est.critic.w.grad, expected, atol=1e-12)
        assert float(est.log_partition_ema) == pytest.approx(math.log(float(ema)), abs=1e-12)
        # the loss's value is minus the minibatch DV (what is reported), not the surrogate's
        assert float(loss.detach()) == pytest.approx(-float(t.diagonal().mean() - partition.log()), abs=1e-12)
