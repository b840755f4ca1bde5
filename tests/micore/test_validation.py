"""Bad input gets a ValueError naming the argument: never a deep traceback or a silent NaN."""

import math

import pytest
import torch
from torch import nn

from discmi import MINE, NWJ, SMILE, InfoNCE, Interpolated, ReMINE
from micore import TrainingDiverged
from micore.tasks import CorrelatedGaussian, OneHot


@pytest.fixture
def est():
    return NWJ(x_dim=5, y_dim=5)


def data(n=32, d=5):
    return CorrelatedGaussian(dim=d, mi=1.0).sample(n, seed=0)


@pytest.mark.parametrize("method", ["estimate", "scores", "loss", "log_ratio"])
def test_lengths_must_match(est, method):
    x, y = data()
    with pytest.raises(ValueError, match="same number of samples"):
        getattr(est, method)(x, y[:-1])


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("which", ["x", "y"])
def test_non_finite_values_are_rejected(est, bad, which):
    x, y = data()
    t = x if which == "x" else y
    t[3, 1] = bad
    with pytest.raises(ValueError, match=f"^{which} contains NaN or infinite values"):
        est.estimate(x, y)
    with pytest.raises(ValueError, match=f"^{which} contains NaN"):
        est.fit(x, y, steps=2, progress=False, device="cpu")


def test_too_few_samples(est):
    x, y = data(1)
    with pytest.raises(ValueError, match="at least 2 samples"):
        est.estimate(x, y)
    with pytest.raises(ValueError, match="at least 2 samples"):
        est.loss(x, y)


@pytest.mark.parametrize(
    "shape,msg",
    [
        ((32, 4), r"x must have shape \[n, 5\]"),
        ((32,), r"x must have shape"),
        ((32, 5, 1), r"x must have shape \[n, 5\]"),
    ],
)
def test_wrong_width_or_dimensionality(est, shape, msg):
    _, y = data()
    with pytest.raises(ValueError, match=msg):
        est.estimate(torch.randn(shape), y)


def test_scalar_and_non_tensor_inputs(est):
    with pytest.raises(ValueError, match="leading batch dimension"):
        est.log_ratio(torch.tensor(1.0), torch.tensor(1.0))
    with pytest.raises(ValueError, match="x must be a tensor"):
        est.estimate(object(), torch.zeros(4, 5))
    with pytest.raises(ValueError, match="real-valued"):
        est.estimate(torch.zeros(4, 5, dtype=torch.complex64), torch.zeros(4, 5))


def test_integer_and_boolean_inputs_are_converted():
    est = NWJ(x_dim=16, y_dim=16)
    x, y = OneHot(16).sample(64, seed=0)
    ref = est.estimate(x, y)
    assert est.estimate(x.long(), y.long()).value == pytest.approx(ref.value)
    assert est.estimate(x.bool(), y.to(torch.int32)).value == pytest.approx(ref.value)
    est.fit(x.bool(), y.bool(), steps=3, progress=False, device="cpu")


def test_constructor_arguments_are_checked():
    with pytest.raises(ValueError, match="x_dim"):
        NWJ(x_dim=0, y_dim=5)
    with pytest.raises(ValueError, match="y_dim"):
        NWJ(x_dim=5, y_dim="20")
    with pytest.raises(ValueError, match="critic must be"):
        NWJ(5, 5, critic="mlp")
    with pytest.raises(ValueError, match="conv critic needs image shapes"):
        NWJ(5, 5, critic="conv")
    with pytest.raises(ValueError, match='critic="joint" needs flat vectors'):
        NWJ((1, 8, 8), (1, 8, 8), critic="joint")
    with pytest.raises(ValueError, match="tau"):
        SMILE(5, 5, tau=0.0)
    with pytest.raises(ValueError, match="alpha"):
        Interpolated(5, 5, alpha=1.5)
    with pytest.raises(ValueError, match="ema_rate"):
        MINE(5, 5, ema_rate=2.0)
    with pytest.raises(ValueError, match="estimate must be"):
        ReMINE(5, 5, estimate="both")
    with pytest.raises(TypeError):  # strict arguments: an unknown keyword is an error
        SMILE(5, 5, tau=5.0, clip=3.0)


def test_fit_arguments_are_checked(est):
    x, y = data()
    task = CorrelatedGaussian(dim=5, mi=1.0)
    with pytest.raises(ValueError, match="batch_size"):
        est.fit(x, y, batch_size=64, progress=False)
    with pytest.raises(ValueError, match="batch_size"):
        est.fit(task, batch_size=1, progress=False)
    with pytest.raises(ValueError, match="lr"):
        est.fit(task, lr=-1.0, progress=False)
    with pytest.raises(ValueError, match="steps or epochs"):
        est.fit(x, y, steps=3, epochs=1, progress=False)
    with pytest.raises(ValueError, match="epochs needs a finite dataset"):
        est.fit(task, epochs=1, progress=False)
    with pytest.raises(ValueError, match="y is missing"):
        est.fit(x, progress=False)
    with pytest.raises(ValueError, match="was built for"):
        est.fit(CorrelatedGaussian(dim=6, mi=1.0), steps=2, progress=False)
    with pytest.raises(ValueError, match="seed"):
        est.fit(task, steps=2, seed=1.5, progress=False)
    with pytest.raises(ValueError, match="batch_size"):
        est.estimate(x, y, batch_size=1)


class NaNAfter(nn.Module):
    """A critic that starts returning NaN at a known step."""

    def __init__(self, step):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(()))
        self.calls, self.step = 0, step

    def forward(self, x, y):
        return (x * y).sum(-1) * self.w

    def all_pairs(self, x, y):
        self.calls += 1
        out = (x @ y.T) * self.w
        return out * math.nan if self.calls > self.step else out


def test_divergence_stops_naming_the_step():
    est = InfoNCE(5, 5, critic=NaNAfter(step=13))
    with pytest.raises(TrainingDiverged, match="diverged at step 13") as err:
        est.fit(CorrelatedGaussian(dim=5, mi=1.0), steps=50, progress=False, device="cpu")
    assert err.value.step == 13 and len(err.value.history.loss) == 13


def test_task_arguments_are_checked():
    with pytest.raises(ValueError, match="exactly one of mi or rho"):
        CorrelatedGaussian(dim=5)
    with pytest.raises(ValueError, match="mi must be"):
        CorrelatedGaussian(dim=5, mi=-1.0)
    with pytest.raises(ValueError, match="rho"):
        CorrelatedGaussian(dim=5, rho=1.0)
    with pytest.raises(ValueError, match="n_classes"):
        OneHot(1)
    with pytest.raises(ValueError, match="Cubic task has no Normal encoder"):
        _ = CorrelatedGaussian(dim=5, mi=1.0, cubic=True).encoder
