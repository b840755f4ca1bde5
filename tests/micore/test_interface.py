"""The shared density-ratio interface: every estimator answers log_ratio / scores / loss / fit / estimate."""

import math

import pytest
import torch
from torch import nn

import discmi
from discmi import CPC, DV, JS, MINE, NWJ, SMILE, TUBA, InfoNCE, Interpolated, ReMINE
from discmi.critics import ConvCritic, JointCritic, SeparableCritic
from micore import Estimate, MIEstimator
from micore.tasks import CorrelatedGaussian, Staircase

ALL = [NWJ, TUBA, DV, MINE, InfoNCE, JS, Interpolated, SMILE, ReMINE]


def test_the_issue_example_runs_as_written():
    task = CorrelatedGaussian(dim=20, mi=2.0)
    x, y = task.sample(10_000, seed=1)
    assert x.shape == y.shape == (10_000, 20) and x.dtype == torch.float32
    assert task.mi == pytest.approx(2.0)
    est = SMILE(x_dim=20, y_dim=20, tau=5.0, critic="joint")
    est.fit(task, steps=20, batch_size=64, seed=0, progress=False)
    e = est.estimate(x, y)
    assert isinstance(e, Estimate) and e.n == 9984 and e.batch_size == 64
    assert math.isfinite(e.value) and e.stderr > 0
    assert CPC is InfoNCE


@pytest.mark.parametrize("cls", ALL)
def test_every_estimator_answers_the_interface(cls):
    task = CorrelatedGaussian(dim=6, mi=1.0)
    x, y = task.sample(40, seed=0)
    est = cls(x_dim=6, y_dim=6)
    lr = est.log_ratio(x, y)
    s = est.scores(x, y)
    assert lr.shape == (40,) and s.shape == (40, 40)
    # scores' diagonal is log_ratio on the joint pairs
    assert torch.allclose(s.diagonal(), lr, atol=1e-5)
    loss = est.loss(x, y)
    assert loss.shape == () and loss.requires_grad
    est.fit(task, steps=5, progress=False, device="cpu")
    e = est.estimate(x, y, batch_size=20)
    assert e.kind == cls.kind and e.n == 40 and e.batch_size == 20
    assert est.history.steps == 5 and len(est.history.estimate) == 5


@pytest.mark.parametrize("cls", ALL)
def test_the_recorded_training_estimate_is_the_bound_of_the_batch(cls):
    # estimators flagged objective_is_negated_bound record -loss instead of recomputing the bound
    torch.manual_seed(0)
    est = cls(x_dim=4, y_dim=4)
    x, y = CorrelatedGaussian(dim=4, mi=1.0).sample(32, seed=1)
    log_r = est._pair_scores(x, y)
    _, value = est._training_step(x, y)
    assert float(value) == pytest.approx(float(est._bound(log_r.detach())), abs=1e-5)


def test_kinds_are_those_of_the_papers():
    kinds = {cls.__name__: cls.kind for cls in ALL}
    assert kinds == {
        "NWJ": "lower bound",
        "TUBA": "lower bound",
        "DV": "estimate",
        "MINE": "estimate",
        "InfoNCE": "lower bound",
        "JS": "lower bound",
        "Interpolated": "lower bound",
        "SMILE": "estimate",
        "ReMINE": "estimate",
    }


def test_log_ratio_is_the_critic_shifted_as_each_paper_says():
    x, y = CorrelatedGaussian(dim=4, mi=1.0).sample(16, seed=0)
    nwj = NWJ(4, 4)
    assert torch.allclose(nwj.log_ratio(x, y), nwj.critic(x, y) - 1.0)
    tuba = TUBA(4, 4)
    assert torch.allclose(tuba.log_ratio(x, y), tuba.critic(x, y) - tuba.log_baseline(y))
    js = JS(4, 4)
    assert torch.allclose(js.log_ratio(x, y), js.critic(x, y))
    rm = ReMINE(4, 4, target=2.0)
    assert torch.allclose(rm.log_ratio(x, y), rm.critic(x, y) - 2.0)


@pytest.mark.parametrize("critic", [JointCritic(7, 5), SeparableCritic(7, 5)])
def test_all_pairs_equals_the_paired_call(critic):
    x, y = torch.randn(9, 7), torch.randn(11, 5)
    pairs = critic.all_pairs(x, y)
    direct = critic(x.repeat_interleave(11, 0), y.repeat(9, 1)).view(9, 11)
    assert torch.allclose(pairs, direct, atol=1e-5)


def test_conv_critic_all_pairs_and_shapes():
    critic = ConvCritic((1, 8, 8), (2, 8, 8))
    x, y = torch.rand(3, 1, 8, 8), torch.rand(4, 2, 8, 8)
    direct = critic(x.repeat_interleave(4, 0), y.repeat(3, 1, 1, 1)).view(3, 4)
    assert torch.allclose(critic.all_pairs(x, y), direct, atol=1e-5)
    odd = ConvCritic((3, 7, 9), (3, 7, 9))  # sizes not divisible by 4
    assert odd(torch.rand(2, 3, 7, 9), torch.rand(2, 3, 7, 9)).shape == (2,)


def test_scores_are_computed_in_chunks_with_the_same_result():
    est = NWJ(6, 6)
    x, y = CorrelatedGaussian(dim=6, mi=1.0).sample(50, seed=0)
    full = est.scores(x, y)
    chunked = est.scores(x, y, max_pairs=120)  # 2 rows per chunk
    assert torch.allclose(full, chunked, atol=1e-6)


class PairOnlyCritic(nn.Module):
    """A user critic with only the paired call (no all_pairs)."""

    def __init__(self, d):
        super().__init__()
        self.w = nn.Parameter(torch.eye(d) * 0.1)

    def forward(self, x, y):
        return ((x @ self.w) * y).sum(-1)


def test_any_module_with_the_paired_signature_is_a_critic():
    est = InfoNCE(6, 6, critic=PairOnlyCritic(6))
    task = CorrelatedGaussian(dim=6, mi=1.0)
    x, y = task.sample(30, seed=0)
    s = est.scores(x, y)
    assert torch.allclose(s, (x @ est.critic.w) @ y.T, atol=1e-5)
    est.fit(task, steps=200, lr=1e-2, progress=False, device="cpu")
    assert est.estimate(*task.sample(2000, seed=1)).value > 0.5


def test_a_critic_returning_the_wrong_shape_is_named():
    class Bad(nn.Module):
        def forward(self, x, y):
            return torch.zeros(x.shape[0], 1)

    with pytest.raises(ValueError, match="one score per pair"):
        NWJ(3, 3, critic=Bad()).log_ratio(torch.zeros(4, 3), torch.zeros(4, 3))


class ExactGaussian(MIEstimator):
    """A user's own estimator: the Gaussian's analytic ratio with a learned temperature."""

    kind = "estimate"

    def __init__(self, task):
        super().__init__(task.dim, task.dim)
        self.task = task
        self.scale = nn.Parameter(torch.tensor(0.5))

    def _log_ratio(self, x, y):
        return self.scale * self.task.log_ratio(x, y)

    def _loss(self, x, y):
        return -discmi.bounds.nwj_lower_bound(self.scale * self.task.scores(x, y))


def test_a_user_estimator_works_with_the_shared_machinery():
    task = CorrelatedGaussian(dim=4, mi=1.0)
    est = ExactGaussian(task)
    hist = est.fit(task, steps=300, lr=0.05, progress=False, device="cpu", record=False)
    assert hist.estimate is None and hist.true_mi == [1.0] * 300
    assert float(est.scale.detach()) == pytest.approx(1.0, abs=0.1)  # NWJ's optimum is the true ratio
    x, y = task.sample(4000, seed=3)
    e = est.estimate(x, y, batch_size=100)
    assert abs(e.value - task.mi) < 4 * e.stderr + 0.1  # 0.1: the scale's own error
    s = est.scores(x[:10], y[:10])  # the base class's chunked default via _log_ratio
    assert torch.allclose(s, est.scale.detach() * task.scores(x[:10], y[:10]), atol=1e-5)


def test_an_estimator_without_a_training_step_records_its_batch_estimate_per_step():
    # ExactGaussian has _log_ratio and _loss only: each step records E_P[log r] of the batch before the update
    task = CorrelatedGaussian(dim=4, mi=1.0)
    est = ExactGaussian(task)
    hist = est.fit(task, steps=50, lr=0.05, progress=False, device="cpu", seed=3)
    assert len(hist.estimate) == 50 and all(math.isfinite(v) for v in hist.estimate)
    # step 0 is before any update: the batch mean of 0.5 * the true log ratio, drawn as fit draws it
    g = torch.Generator().manual_seed(3)
    x, y = task.sample_at(0, 64, generator=g)
    assert hist.estimate[0] == pytest.approx(0.5 * float(task.log_ratio(x, y).mean()), rel=1e-5)
    # an estimator with no batch estimate at all records none (NaN), as before
    loss_only = type("LossOnly", (MIEstimator,), {"_loss": lambda self, x, y: (self.w - 1) ** 2})
    module = loss_only(4, 4)
    module.w = nn.Parameter(torch.zeros(()))
    assert all(math.isnan(v) for v in module.fit(task, steps=5, progress=False, device="cpu").estimate)


def test_estimate_is_deterministic_evaluated_in_eval_mode_without_grad():
    est = NWJ(4, 4)
    x, y = CorrelatedGaussian(dim=4, mi=1.0).sample(100, seed=0)
    est.train()
    a, b = est.estimate(x, y, batch_size=25), est.estimate(x, y, batch_size=25)
    assert a == b and est.training
    single = est.estimate(x[:30], y[:30], batch_size=64)  # fewer samples than a batch: one batch
    assert single.n == 30 and math.isnan(single.stderr)


def test_dtype_and_device_follow_the_module():
    est = NWJ(4, 4).double()
    x, y = CorrelatedGaussian(dim=4, mi=1.0).sample(20, seed=0)
    assert est.log_ratio(x, y).dtype == torch.float64
    est.fit(x.double(), y.double(), steps=3, batch_size=10, progress=False, device="cpu")


def test_fit_is_reproducible_from_the_seed():
    task = CorrelatedGaussian(dim=4, mi=1.0)
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        est = SMILE(4, 4)
        runs.append(est.fit(task, steps=20, seed=3, progress=False, device="cpu").estimate)
    assert runs[0] == runs[1]
    x, y = task.sample(100, seed=0)
    torch.manual_seed(0)
    h = SMILE(4, 4).fit(x, y, epochs=2, batch_size=32, seed=1, progress=False, device="cpu")
    assert h.steps == 6  # 2 epochs of 100 // 32 batches


def test_staircase_schedule():
    st = Staircase(steps_per_level=10)
    assert st.total_steps == 50 and st.mi_at(0) == 2.0 and st.mi_at(49) == 10.0 and st.mi_at(99) == 10.0
    assert st.task_at(25).mi == pytest.approx(6.0)
    h = NWJ(20, 20).fit(st, progress=False, device="cpu")  # default steps: the full schedule
    assert h.steps == 50 and h.true_mi[10] == 4.0


def test_mine_keeps_its_moving_average_in_a_buffer():
    est = MINE(4, 4)
    assert math.isnan(float(est.log_partition_ema))
    est.fit(CorrelatedGaussian(dim=4, mi=1.0), steps=5, progress=False, device="cpu")
    assert math.isfinite(float(est.log_partition_ema)) and "log_partition_ema" in est.state_dict()
