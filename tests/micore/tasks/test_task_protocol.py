"""The Task protocol over the whole suite: shapes, dtypes, reproducibility from a seed on the CPU, the
training loop, the exact log-ratio, and the old imports of micore.tasks."""

import math
import time

import pytest
import torch
from torch import nn

from micore import MIEstimator, train
from micore.tasks import (
    CorrelatedGaussian,
    OneHot,
    Sampler,
    Staircase,
    Task,
    make_task,
    monte_carlo_mi,
    task_names,
)

pytestmark = pytest.mark.usefixtures("one_thread")

ALL = task_names()


@pytest.fixture(scope="module")
def tasks():
    return {name: make_task(name) for name in ALL}


def test_the_old_imports_still_work():
    import micore.tasks as mt
    from micore.tasks.classic import CorrelatedGaussian as CG

    assert CG is CorrelatedGaussian and issubclass(CorrelatedGaussian, Sampler) and issubclass(Staircase, Sampler)
    assert isinstance(OneHot(), Task) and {"Sampler", "CorrelatedGaussian", "Staircase", "OneHot"} <= set(mt.__all__)


def test_correlated_gaussian_draws_what_it_drew_before():
    """The historical stream: x = randn, y = rho x + sqrt(1 - rho^2) randn, in the default dtype."""
    task = CorrelatedGaussian(dim=3, mi=2.0)
    g = torch.Generator().manual_seed(5)
    x_ref = torch.randn(100, 3, generator=g)
    y_ref = task.rho * x_ref + task.noise_std * torch.randn(100, 3, generator=g)
    x, y = task.sample(100, seed=5)
    assert torch.equal(x, x_ref) and torch.equal(y, y_ref) and x.dtype == torch.get_default_dtype()
    assert task.name == "gaussian-3-2.0" and make_task(task.name).mi == task.mi


def test_the_whole_suite_samples_within_seconds(tasks):
    start = time.perf_counter()
    for task in tasks.values():
        task.sample(1000, seed=0)
    assert time.perf_counter() - start < 10.0  # 76 tasks: about 0.2 s on one core


@pytest.mark.parametrize("name", ALL)
def test_protocol(name, tasks):
    task = tasks[name]
    assert isinstance(task, Task) and task.name == name and isinstance(task.params, dict)
    assert task.x_shape and task.y_shape and all(isinstance(d, int) and d > 0 for d in task.x_shape + task.y_shape)
    assert math.isfinite(task.mi) and task.mi >= 0 and task.mi_stderr >= 0
    x, y = task.sample(64, seed=1)
    assert x.shape == (64, *task.x_shape) and y.shape == (64, *task.y_shape)
    assert x.dtype == y.dtype == torch.get_default_dtype() and x.device.type == "cpu"
    x2, y2 = task.sample(64, seed=1)
    assert torch.equal(x, x2) and torch.equal(y, y2)  # reproducible from the seed
    x3, _ = task.sample(64, seed=2)
    assert not torch.equal(x, x3)
    x64, y64 = task.sample(64, seed=1, dtype=torch.float64)
    assert x64.dtype == torch.float64
    if not isinstance(task, (CorrelatedGaussian, OneHot)):  # those keep their historical draw in the dtype asked
        assert torch.equal(x64.to(x.dtype), x)  # one float64 draw, rounded to the dtype asked
    g1, g2 = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    assert torch.equal(task.sample_at(3, 16, generator=g1, device="cpu")[1], task.sample(16, generator=g2)[1])
    assert task.mi_at(10) == task.mi
    lr = task.log_ratio(x64, y64)
    assert lr.shape == (64,) and lr.dtype == torch.float64 and torch.isfinite(lr).all()
    assert task.log_ratio(x64.float(), y64.float()).dtype == torch.float32
    assert task.scores(x64[:5], y64[:7]).shape == (5, 7)
    assert torch.allclose(task.scores(x64[:5], y64[:5]).diagonal(), lr[:5])


NORMALISED = [
    "1v1-additive-0.1",
    "swissroll_x-normal_cdf-1v1-normal-0.75",
    "1v1-AI",
    "cubic-20-2.0",
    "student-identity-2-2-1",
]


@pytest.mark.parametrize("name", NORMALISED)
def test_log_ratio_is_the_optimal_critic(name, tasks):
    """E_q[r] = 1 under the product of marginals (pairs of independent draws): the ratio is normalised."""
    task = tasks[name]
    x, _ = task.sample(20_000, seed=3, dtype=torch.float64)
    _, y = task.sample(20_000, seed=4, dtype=torch.float64)
    r = task.log_ratio(x, y).exp()
    assert abs(float(r.mean()) - 1) < 5 * float(r.std()) / math.sqrt(len(r))


class _Bilinear(MIEstimator):
    """log r(x, y) = x^T W y + b, trained with NWJ: the smallest estimator the training loop accepts."""

    kind = "lower bound"

    def __init__(self, x_dim, y_dim):
        super().__init__(x_dim, y_dim)
        self.W = nn.Parameter(torch.zeros(x_dim, y_dim))
        self.b = nn.Parameter(torch.zeros(()))

    def _pair_scores(self, x, y):
        return x @ self.W @ y.T + self.b

    def _log_ratio(self, x, y):
        return ((x @ self.W) * y).sum(-1) + self.b

    def _loss(self, x, y):
        s = self._pair_scores(x, y)
        return -(s.diagonal().mean() - (s - 1).exp().mean())


@pytest.mark.parametrize(
    "name", ["1v1-normal-0.75", "swissroll_x-normal_cdf-1v1-normal-0.75", "mult-sparse-w-inliers-5-5-2-2.0-0.2"]
)
def test_fit_accepts_every_kind_of_task(name, tasks):
    task = tasks[name]
    est = _Bilinear(task.x_shape[0], task.y_shape[0])
    history = train(est, task, steps=20, batch_size=32, lr=1e-2, seed=0, device="cpu", progress=False)
    assert history.steps == 20 and history.true_mi == [task.mi] * 20


def test_monte_carlo_refuses_tasks_without_a_ratio():
    class NoRatio(Task):
        name, x_shape, y_shape, mi = "no-ratio", (1,), (1,), 0.0

        def _sample(self, n, generator, device):
            z = torch.randn(n, 1, generator=generator, device=device, dtype=torch.float64)
            return z, z

    task = NoRatio()
    assert not task.has_log_ratio and task.sample(3, seed=0)[0].shape == (3, 1)
    with pytest.raises(ValueError, match="log-ratio"):
        monte_carlo_mi(task, 10)
    with pytest.raises(NotImplementedError):
        task.log_ratio(torch.zeros(2, 1), torch.zeros(2, 1))


@pytest.mark.parametrize(
    "call, word",
    [
        (lambda t: t.sample(0, seed=0), "n"),
        (lambda t: t.sample(2.5, seed=0), "n"),
        (lambda t: t.sample(4, seed=1.5), "seed"),
        (lambda t: t.sample(4, seed=0, generator=torch.Generator()), "seed or generator"),
        (lambda t: t.sample(4, seed=0, dtype=torch.int64), "dtype"),
        (lambda t: t.log_ratio(torch.zeros(3, 2), torch.zeros(3, 1)), "x must have shape"),
        (lambda t: t.log_ratio(torch.zeros(3, 1), torch.zeros(4, 1)), "same number"),
    ],
)
def test_bad_calls_name_the_argument(call, word):
    with pytest.raises(ValueError, match=word):
        call(make_task("1v1-normal-0.75"))
