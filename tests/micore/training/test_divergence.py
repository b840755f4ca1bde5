"""Divergence that stays finite (issue 13, class 5): training stops at a value the bound makes impossible.

The diverging runs: the 20-d correlated Gaussian at MI = 10 (the top of the seed's staircase) with a
64-64 joint critic and Adam at lr = 1 or 0.1. Adam moves every weight by about lr on its first steps,
while the critic's weights start at about 1/sqrt(fan_in) (0.1 to 0.2): at lr = 1 the next batch's
log-ratios are spread by hundreds of nats. Healthy trainings use lr 5e-4 (the seed) to 2e-3 (the short
trainings of tests/micore/training/test_training.py). Measured with this configuration (seeds 0 and 1, 200 steps):

* lr = 1: MINE, DV and InfoNCE are at -250 to -770 nats at step 1 and -1000 to -9000 within five
  steps; MINE then sinks on (-3e3 to -2e5 at step 200), DV and InfoNCE collapse to ~0 (dead ReLUs: a
  constant critic, a "finite" estimate of 0 at MI 10). JS's loss jumps from 1.4 to ~2e3 and its
  logits overflow e^T from step 2: its NWJ estimate is -inf.
* lr = 0.1: MINE drifts down, below -100 nats by step 40-50 and to -480..-1100 by step 200; DV,
  InfoNCE and JS still train (DV and InfoNCE within [-11, 7], JS with one -8e7 batch of its heavy tail).
* the short trainings (5-d, MI 2, lr 2e-3, 500 steps, seeds 0-2) keep every batch value in
  [-0.41, 2.57] and every loss within 2.5x max(|loss at step 0|, 1).

The thresholds (see discmi.bounds, micore.training): DV, MINE, InfoNCE and ReMINE are below -2 Lambda
= -100 nats only if the critic claims a log-ratio beyond Lambda = 50 nats on some pair (probability
<= e^-50 for the true ratio), NWJ, TUBA and JS below 1 - Lambda - e^Lambda ~ -5e21; InfoNCE never
exceeds log n; a loss beyond 1e4 times max(|loss at step 0|, 1 nat) has exploded.
"""

import math

import pytest
import torch
from torch import nn

import discmi
from discmi.critics import JointCritic
from micore import MIEstimator, TrainingDiverged
from micore.tasks import CorrelatedGaussian
from selfconsistency.registry import make_factory
from selfconsistency.testing import DIM, HIDDEN, LR, MI, NAMES

pytestmark = pytest.mark.usefixtures("one_thread")

HIGH_MI = CorrelatedGaussian(dim=20, mi=10.0)


def _small(name: str, **kw):
    torch.manual_seed(0)
    return getattr(discmi, name)(20, 20, critic=JointCritic(20, 20, hidden=(64, 64)), **kw)


@pytest.mark.parametrize("name", ["MINE", "DV", "InfoNCE"])
def test_too_large_lr_stops_naming_the_step_and_keeps_the_history(name):
    # lr = 1: the first Adam step throws the critic's outputs hundreds of nats apart (-250 to -770 at
    # step 1 without the check), far below -100, the floor of these bounds with sane log-ratios
    est = _small(name)
    with pytest.raises(TrainingDiverged, match=r"diverged at step \d+: the batch estimate -\d") as err:
        est.fit(HIGH_MI, steps=200, lr=1.0, progress=False, device="cpu")
    step, hist = err.value.step, err.value.history
    low, high = est.value_range(64)
    assert 1 <= step < 200 and f"{name} training diverged at step {step}" in str(err.value)
    assert "below [-100" in str(err.value) and low == -100.0
    assert len(hist.loss) == len(hist.estimate) == len(hist.true_mi) == step
    assert hist.diverged_at == step and "below" in hist.divergence and est.history is hist
    assert all(low <= v <= high for v in hist.estimate)  # what was kept is the run before it went wrong


def test_mine_sinking_slowly_is_stopped_where_it_leaves_the_range():
    # the MINE case: at lr = 0.1 the value drifts to -1e3 and on (-4e12 in longer runs) while
    # staying finite; it crosses -100 after a few dozen steps, and the partial history shows the drift
    est = _small("MINE")
    with pytest.raises(TrainingDiverged, match="below") as err:
        est.fit(HIGH_MI, steps=200, lr=0.1, progress=False, device="cpu")
    hist = err.value.history
    assert 10 < err.value.step < 200 and len(hist.estimate) == err.value.step
    assert min(hist.estimate) < -10  # already sinking, not yet impossible


def test_js_minus_inf_is_caught_in_training_not_at_estimate():
    # JS evaluates with NWJ's e^T: at lr = 1 a product pair's logit passes 88 and e^T overflows float32
    # at step 2; the loss (softplus) stays finite, so only the recorded estimate shows it
    est = _small("JS")
    with pytest.raises(TrainingDiverged, match=r"diverged at step \d+: the batch estimate became -inf") as err:
        est.fit(HIGH_MI, steps=100, lr=1.0, progress=False, device="cpu")
    assert len(err.value.history.estimate) == err.value.step
    assert all(math.isfinite(v) for v in err.value.history.estimate)


def test_divergence_ignore_trains_on_and_notes_the_step():
    # the opt-out, for studying divergence on purpose: the full run, with where it would have stopped
    est = _small("MINE")
    hist = est.fit(HIGH_MI, steps=200, lr=0.1, progress=False, device="cpu", divergence="ignore")
    assert hist.steps == 200 and len(hist.estimate) == 200
    assert hist.diverged_at is not None and hist.estimate[hist.diverged_at] < -100 and "below" in hist.divergence
    assert hist.estimate[-1] < -100  # it never came back: the run is garbage from there on
    with pytest.raises(ValueError, match="divergence must be one of"):
        est.fit(HIGH_MI, steps=2, progress=False, device="cpu", divergence="warn")


@pytest.mark.parametrize("name", sorted(NAMES))
def test_healthy_short_training_stays_far_inside_the_ranges(name):
    # the configuration of tests/micore/training/test_training.py (every discriminative example of the registry), its
    # first 200 steps (all 500 run there, with the default divergence="raise"); measured over seeds 0-2
    # and 500 steps: batch values in [-0.41, 2.57] (the lowest floor, ReMINE-J's, is -50), losses within
    # 2.5x their initial scale
    task = CorrelatedGaussian(dim=DIM, mi=MI)
    torch.manual_seed(0)
    est = make_factory(name, critic=JointCritic(DIM, DIM, hidden=HIDDEN))((DIM,), (DIM,))
    hist = est.fit(task, steps=200, lr=LR, seed=0, progress=False, device="cpu", divergence="ignore")
    assert hist.diverged_at is None and hist.divergence is None
    low, high = est.value_range(64)
    assert min(hist.estimate) > low + 45 and max(hist.estimate) < min(high, 10.0)
    scale = max(abs(hist.loss[0]), 1.0)
    assert max(abs(v) for v in hist.loss) < 10 * scale  # the explosion threshold is 1e4 x


def _extreme_scores(n: int, lam: float, seed: int) -> list[torch.Tensor]:
    """Score matrices at the edge of the premise: joint pairs >= -lam, product pairs <= lam."""
    g = torch.Generator().manual_seed(seed)
    worst = torch.full((n, n), lam, dtype=torch.float64)
    worst.fill_diagonal_(-lam)
    best = torch.full((n, n), -lam, dtype=torch.float64)
    best.fill_diagonal_(lam)
    out = [worst, best]
    for _ in range(20):
        s = (torch.rand(n, n, generator=g, dtype=torch.float64) * 2 - 1) * lam
        s.diagonal().clamp_(min=-lam)
        out.append(s)
    return out


@pytest.mark.parametrize(
    "make",
    [
        lambda: discmi.NWJ(2, 2),
        lambda: discmi.DV(2, 2),
        lambda: discmi.MINE(2, 2),
        lambda: discmi.InfoNCE(2, 2),
        lambda: discmi.JS(2, 2),
        lambda: discmi.Interpolated(2, 2, alpha=0.01),
        lambda: discmi.Interpolated(2, 2, alpha=0.5),
        lambda: discmi.Interpolated(2, 2, alpha=1.0),
        lambda: discmi.SMILE(2, 2, tau=5.0),
        lambda: discmi.SMILE(2, 2, tau=math.inf),
        lambda: discmi.ReMINE(2, 2),
        lambda: discmi.ReMINE(2, 2, estimate="joint"),
    ],
)
@pytest.mark.parametrize("n", [2, 8, 64])
def test_value_range_holds_for_every_sane_score_matrix(make, n):
    # the ranges are derived, not fitted: any log-ratio matrix within +-Lambda (joint pairs >= -Lambda,
    # product pairs <= Lambda) gives a value inside value_range(n), the worst case included
    est = make()
    low, high = est.value_range(n)
    lam = discmi.bounds.MAX_LOG_RATIO
    for s in _extreme_scores(n, lam, seed=n):
        v = float(est._bound(s))
        assert low - 1e-9 * abs(low) <= v <= high + 1e-9, (v, low, high)


class _Exploding(MIEstimator):
    """No per-step value (only the loss is checked); the loss jumps 1e6-fold after ``after`` steps."""

    def __init__(self, after: int):
        super().__init__(2, 2)
        self.w = nn.Parameter(torch.ones(()))
        self.after, self.calls = after, 0

    def _log_ratio(self, x, y):
        return (x * y).sum(-1) * self.w

    def _loss(self, x, y):
        self.calls += 1
        return (self.w**2 + 1) * (1e6 if self.calls > self.after else 1.0)

    def _training_step(self, x, y):  # records no value (the default would give _batch_estimate's)
        return self._loss(x, y), None


def test_an_exploding_loss_stops_training_without_a_range():
    # an estimator that declares no range and records no value: the loss alone is watched (its scale
    # at step 0 is 2, so the threshold is 2e4); the missing values (NaN) are not a divergence
    x = torch.randn(256, 2)
    with pytest.raises(TrainingDiverged, match="diverged at step 25: the loss .* grew past 10000 times") as err:
        _Exploding(after=25).fit(x, x, steps=60, batch_size=32, progress=False, device="cpu")
    assert len(err.value.history.loss) == 25
    hist = _Exploding(after=100).fit(x, x, steps=60, batch_size=32, progress=False, device="cpu")
    assert hist.diverged_at is None and all(math.isnan(v) for v in hist.estimate)


def test_the_benchmark_records_a_finite_divergence_and_the_partial_run():
    # selfconsistency bench catches TrainingDiverged: a too-large lr now gives diverged_at and the
    # per-step estimates up to it, instead of a run of finite garbage
    from selfconsistency.groundtruth.staircase import BenchConfig, run_one

    cfg = BenchConfig(levels=(10.0,), steps_per_level=30, lr=1.0)
    rec = run_one("mine", cfg, seed=0, device="cpu", progress=False)
    assert rec.diverged_at is not None and 1 <= rec.diverged_at < 30
    assert len(rec.estimates) == rec.diverged_at
