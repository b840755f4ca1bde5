"""The finite-sample protocol (micore.finite: heldout, seeds) and its flags (micore.finite.diagnostics).

Planted estimators make early stopping and each flag checkable exactly: a one-parameter model whose loss is
``-a`` climbs by Adam's step (``lr`` per step once the moments settle), and its held-out value is whatever
shape the test gives it (flat after a point, still climbing, too high on training rows).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from micore import HeldoutConfig, MIEstimator, estimate_heldout, fit_heldout
from micore.finite import t_interval
from micore.finite.diagnostics import (
    FLAGS,
    above_upper,
    capped,
    diagnose,
    impossible,
    infinite,
    nonfinite,
    overfitting,
    seeds_disagree,
    still_rising,
)
from micore.finite.heldout import SeedFit, Standardizer, split_indices
from micore.tasks import make_task
from micore.validation import check_pair_data
from selfconsistency.userdata import Comparison
from selfconsistency.userdata import estimate_mi as estimate_by_name


class Climber(MIEstimator):
    """``loss = -a``: Adam raises ``a`` by about ``lr`` a step. Held-out value ``min(a, plateau)``."""

    default_lr = 0.01

    def __init__(self, x_dim=1, y_dim=1, plateau=math.inf, train_bonus=0.0):
        super().__init__(x_dim, y_dim)
        self.a = nn.Parameter(torch.zeros(()))
        self.plateau, self.train_bonus = plateau, train_bonus

    def _loss(self, x, y):
        return -self.a

    def _batch_estimate(self, x, y):
        value = self.a.clamp(max=self.plateau)
        # rows with x > 10 are the "training rows" of the over-fitting test (shifted by the test below)
        return value + self.train_bonus * (x[:, 0] > 10).float().mean()


def _data(n=2000, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, generator=g), torch.randn(n, 1, generator=g)


# ---------------------------------------------------------------- early stopping
def test_early_stopping_stops_a_flat_curve_after_patience():
    x, y = _data()
    cfg = HeldoutConfig(max_steps=5000, eval_every=10, patience=5, standardize=False)
    fit = fit_heldout(Climber(plateau=0.5), x, y, seed=0, config=cfg, progress=False)
    # a reaches 0.5 after ~50 steps (lr 0.01 a step); the last improvement is at the first evaluation past it,
    # then 5 evaluations without improvement stop it
    assert fit.stopped == "patience"
    assert 40 <= fit.best_step <= 70, fit.best_step
    assert fit.steps == fit.best_step + 5 * 10
    assert fit.value == pytest.approx(0.5, abs=1e-6)


def test_early_stopping_does_not_stop_a_climbing_curve_and_flags_it():
    x, y = _data()
    cfg = HeldoutConfig(max_steps=300, eval_every=10, patience=5, standardize=False)
    fit = fit_heldout(Climber(), x, y, seed=0, config=cfg, progress=False)
    assert fit.stopped == "max_steps" and fit.steps == 300 and fit.best_step == 300
    assert fit.value == pytest.approx(3.0, abs=0.1)  # ~lr per step
    assert still_rising([fit], patience=5) is not None
    flat = fit_heldout(Climber(plateau=0.5), x, y, seed=0, config=cfg.__class__(**{**cfg.__dict__, "patience": 50}))
    assert flat.stopped == "max_steps" and still_rising([flat], patience=50) is None


def test_best_state_is_restored():
    """The reported value is the best evaluation's model, not the last step's."""

    class RiseThenFall(Climber):
        def _batch_estimate(self, x, y):
            return torch.where(self.a < 1.0, self.a, 2.0 - self.a)

    x, y = _data()
    cfg = HeldoutConfig(max_steps=3000, eval_every=10, patience=5, standardize=False)
    est = RiseThenFall()
    fit = fit_heldout(est, x, y, seed=0, config=cfg, progress=False)
    assert fit.value == pytest.approx(1.0, abs=0.02)
    assert float(est.a.detach()) == pytest.approx(1.0, abs=0.02)
    assert fit.steps > fit.best_step


def test_split_is_a_partition_and_reproducible():
    tr, va, te = split_indices(1000, 0.1, 0.2, seed=3)
    assert (len(tr), len(va), len(te)) == (700, 100, 200)
    assert sorted(torch.cat([tr, va, te]).tolist()) == list(range(1000))
    assert torch.equal(split_indices(1000, 0.1, 0.2, seed=3)[2], te)
    assert not torch.equal(split_indices(1000, 0.1, 0.2, seed=4)[2], te)


def test_standardizer_uses_training_rows_only():
    x = torch.tensor([[0.0], [2.0], [100.0]])
    s = Standardizer(x[:2], "x")
    assert s(x)[2, 0].item() == pytest.approx((100 - 1) / math.sqrt(2))
    # a column constant on the training rows carries nothing there: left out (0 in every part), with a note
    s = Standardizer(torch.tensor([[0.0, 1.0], [1.0, 1.0]]), "x")
    assert s.note == "x: column(s) [1] are constant on the training rows and were left out (set to 0)"
    assert torch.equal(s(torch.tensor([[0.5, 7.0]]))[:, 1], torch.zeros(1))


# ---------------------------------------------------------------- recovering a known MI
@pytest.mark.slow
def test_recovers_known_mi_with_interval():
    """SMILE (separable critic) on bmi's 2-d dense normal (MI 0.294), N = 5000, 3 seeds.

    Tolerance: over 3 seeds the per-seed values spread by sd ~0.02 (0.276, 0.289, 0.254 at seeds 0-2),
    so the mean lies within ~0.025 of its expectation; SMILE's clipping bias at this MI is ~-0.02. 0.07
    is 2x that sum, and an estimator off by a factor (e.g. standardisation fitted wrongly) misses it.
    """
    task = make_task("multinormal-dense-2-2-0.5")
    x, y = task.sample(5000, seed=0)
    from discmi import SMILE

    res = estimate_heldout(x, y, lambda xs, ys: SMILE(xs, ys, critic="separable"), progress=False)
    assert abs(res.value - task.mi) < 0.07, res
    assert res.low < res.value < res.high
    assert len(res.seeds) == 3 and len({s.value for s in res.seeds}) == 3  # seeds differ
    assert all(s.n_test == 1000 and s.n_valid == 500 and s.n_train == 3500 for s in res.seeds)
    assert res.kind == "estimate" and res.n == 5000


def test_scale_invariance_through_standardisation():
    """MI is invariant under per-column affine maps; standardisation makes the estimate invariant too."""
    x, y = _data(1500)
    y = x + 0.5 * y
    from discmi import InfoNCE

    cfg = HeldoutConfig(max_steps=300, eval_every=50, patience=10)
    fac = lambda xs, ys: InfoNCE(xs, ys, critic="separable")  # noqa: E731
    a = estimate_heldout(x, y, fac, seeds=1, config=cfg, progress=False)
    b = estimate_heldout(1000 * x + 7, y * 1e-3, fac, seeds=1, config=cfg, progress=False)
    assert a.value == pytest.approx(b.value, abs=1e-3)


# ---------------------------------------------------------------- interval
def test_t_interval_matches_student_t():
    low, high = t_interval([1.0, 2.0, 3.0], math.nan, 0.95)
    half = 4.302652729911275 * 1.0 / math.sqrt(3)  # t_{0.975, 2} * sd / sqrt(3)
    assert (low, high) == pytest.approx((2 - half, 2 + half))
    low, high = t_interval([1.0], 0.1, 0.95)
    assert (low, high) == pytest.approx((1 - 0.196, 1 + 0.196), abs=1e-3)


# ---------------------------------------------------------------- diagnostics
def _fit(seed=0, value=1.0, stderr=0.02, train_value=None, stopped="patience", curve=None, nonfinite=0):
    return SeedFit(
        seed=seed,
        value=value,
        stderr=stderr,
        train_value=value if train_value is None else train_value,
        train_stderr=stderr,
        valid_best=value,
        best_step=100,
        steps=200,
        stopped=stopped,
        curve=curve or [[100, value], [200, value]],
        n_train=700,
        n_valid=100,
        n_test=200,
        batch_size=64,
        lr=5e-4,
        monitor="estimate",
        seconds=1.0,
        nonfinite=nonfinite,
    )


def test_each_flag_fires_on_a_planted_case_and_stays_quiet_on_a_clean_one():
    cap = math.log(64)
    assert capped(0.95 * cap, cap, 64).name == "capped"
    assert capped(0.5 * cap, cap, 64) is None and capped(3.0, math.inf, 64) is None

    climbing = _fit(stopped="max_steps", curve=[[i * 100, 0.1 * i + 0.001 * (-1) ** i] for i in range(12)])
    noisy_flat = _fit(stopped="max_steps", curve=[[i * 100, 1.0 + 0.05 * (-1) ** i] for i in range(12)])
    assert still_rising([climbing], patience=10).name == "still_rising"
    assert still_rising([noisy_flat], patience=10) is None
    assert still_rising([_fit(stopped="patience", curve=climbing.curve)], patience=10) is None

    assert overfitting([_fit(value=1.0, train_value=1.5)]).name == "overfitting"
    assert overfitting([_fit(value=1.0, train_value=1.02)]) is None  # within noise

    assert seeds_disagree([_fit(0, 1.0), _fit(1, 2.0)]).name == "seeds_disagree"
    assert seeds_disagree([_fit(0, 1.0), _fit(1, 1.02)]) is None

    assert above_upper("lower bound", 2.0, 0.01, upper=1.5).name == "above_upper"
    assert above_upper("lower bound", 1.4, 0.01, upper=1.5) is None
    assert above_upper("estimate", 2.0, 0.01, upper=1.5) is None  # only a bound contradicts a bound

    assert nonfinite([_fit(stopped="diverged")]).name == "nonfinite"
    assert nonfinite([_fit(nonfinite=2)]).name == "nonfinite"
    assert nonfinite([_fit()]) is None

    assert impossible(-0.3, 0.05).name == "impossible"  # six standard errors below 0
    assert impossible(-0.01, 0.02) is None  # independent data: a value near 0 within its noise
    assert infinite([(1, 0)]).name == "infinite" and "x[1] = y[0]" in infinite([(1, 0)]).message
    assert infinite([]) is None

    clean = [_fit(0, 1.0), _fit(1, 1.01), _fit(2, 0.99)]
    assert diagnose(clean, kind="lower bound", value=1.0, stderr=0.01, cap=cap, patience=10, upper=2.0) == []
    assert set(FLAGS) == {
        "capped", "still_rising", "overfitting", "seeds_disagree", "above_upper", "nonfinite", "impossible", "infinite"
    }  # fmt: skip


def test_overfitting_flag_end_to_end():
    """Training rows get +1 nat (x shifted past 10 on the training part only): the flag fires."""

    class Memoriser(Climber):
        def __init__(self):
            super().__init__(plateau=0.5, train_bonus=1.0)

    x, y = _data(1000)
    cfg = HeldoutConfig(max_steps=200, eval_every=20, patience=3, standardize=False)
    est = Memoriser()
    fit = fit_heldout(est, x, y, seed=0, config=cfg, progress=False)
    assert fit.train_value == pytest.approx(fit.value)  # same distribution: no gap
    # now mark the training rows: the split of seed 0 is split_indices(...)[0]
    tr = split_indices(1000, cfg.valid_fraction, cfg.test_fraction, 0)[0]
    x2 = x.clone()
    x2[tr] += 100.0
    fit = fit_heldout(Memoriser(), x2, y, seed=0, config=cfg, progress=False)
    assert fit.train_value - fit.value == pytest.approx(1.0, abs=1e-6)
    assert overfitting([fit]) is not None


def test_capped_flag_end_to_end_on_infonce():
    """InfoNCE with batch 8 on data with MI ~4.6 nats saturates at log 8 = 2.08 (it gives 96% of it)."""
    from discmi import InfoNCE

    x, y = _data(2000)
    y = x + 0.01 * y
    res = estimate_heldout(
        x,
        y,
        lambda xs, ys: InfoNCE(xs, ys, critic="joint"),
        seeds=1,
        config=HeldoutConfig(batch_size=8, max_steps=1000, eval_every=100, patience=3, lr=1e-3),
        progress=False,
    )
    assert "capped" in [f.name for f in res.flags], res
    assert res.value <= math.log(8)


# ---------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "x, y, match",
    [
        (np.ones((10, 2)), np.ones((9, 2)), r"same number of rows, got x: 10 and y: 9"),
        (
            np.array([[1.0], [np.nan], [np.inf]]),
            np.ones(3),
            r"x holds 2 non-finite value\(s\) \(NaN, inf or missing\) in 2 row\(s\), the first at row 1 \(0-based\)",
        ),
        (np.ones(3), np.array([1.0, 2.0, np.nan]), r"y holds 1 non-finite .* row 2 \(0-based\)"),
        (np.array(["a", "b"]), np.ones(2), r"x must hold numbers, got an array of text"),
        (np.ones((0, 2)), np.ones((0, 2)), r"x is empty"),
        (np.ones(3) + 1j, np.ones(3), r"x must hold numbers, got an array of complex numbers"),
    ],
)
def test_bad_data_is_a_value_error_naming_the_argument(x, y, match):
    # estimate_heldout checks with the one paired-data check (micore.validation.check_pair_data) before training
    with pytest.raises(ValueError, match=match):
        estimate_heldout(x, y, Climber, progress=False)


def test_drop_nonfinite_drops_and_counts():
    x = np.random.default_rng(0).normal(size=(20, 2))
    x[3, 1] = np.nan
    y = np.ones(20)
    y[7] = np.inf
    xt, yt, dropped = check_pair_data(x, y, drop_nonfinite=True)
    assert dropped == (3, 7) and xt.shape == (18, 2) and yt.shape == (18, 1)
    assert torch.isfinite(xt).all()


def test_too_few_rows_and_constant_columns_and_bad_options():
    x, y = _data(200)
    # a batch asked for that does not fit is an error; the default one shrinks to fit (with a note), down to 8
    with pytest.raises(ValueError, match=r"x: 200 rows leave 140 for the train part, fewer than two batches of 128"):
        fit_heldout(Climber(), x, y, config=HeldoutConfig(batch_size=128), progress=False)
    fit = fit_heldout(Climber(), x, y, config=HeldoutConfig(max_steps=200), progress=False)
    assert fit.batch_size == 20 and fit.n_valid == 20  # 200 rows: 140 / 20 / 40, the valid part sets it
    assert fit.notes == ["batch 64 needs ~640 rows; with 200 the batch is 20 (a smaller batch estimates with more "
                         "variance, and caps InfoNCE at log 20)"]  # fmt: skip
    small_x, small_y = _data(60)
    with pytest.raises(ValueError, match=r"x: 60 rows are too few .* batches of at least 8 \(at least ~80 rows\)"):
        fit_heldout(Climber(), small_x, small_y, progress=False)
    x, y = _data(1000)
    # a column constant on every row is left out before anything is built, and the result says so
    const = torch.cat([x, torch.ones(1000, 1)], 1)
    res = estimate_by_name(const, y, "cpc", critic="separable", seeds=1, progress=False, max_steps=10)
    assert res.notes[0] == "x: column(s) 1 are constant on all 1000 rows and were left out"
    with pytest.raises(ValueError, match="x: every column is constant over the 1000 rows"):
        estimate_by_name(torch.ones(1000, 2), y, "cpc", seeds=1, progress=False, max_steps=10)
    with pytest.raises(ValueError, match="unknown estimator 'nope'"):
        estimate_by_name(x, y, ["cpc", "nope"], progress=False)
    with pytest.raises(ValueError, match="patience must be an int >= 1"):
        HeldoutConfig(patience=0)
    with pytest.raises(ValueError, match="must leave at least 10%"):
        HeldoutConfig(valid_fraction=0.5, test_fraction=0.45)
    with pytest.raises(ValueError, match="seeds must be"):
        estimate_heldout(x, y, Climber, seeds=0, progress=False)
    with pytest.raises(TypeError):
        estimate_by_name(x, y, "cpc", not_an_option=1)


def test_comparison_of_names_with_a_known_encoder():
    """Two names on a task with a known encoder: the table has both rows and the sandwich's bounds."""
    task = make_task("gaussian-2-1.0")
    x, y = task.sample(2000, seed=0)
    enc = getattr(task, "encoder", None)
    if enc is None:
        pytest.skip("task without a known encoder")
    res = estimate_by_name(
        x, y, ["cpc", "smile:5"], critic="separable", encoder=enc, seeds=2, max_steps=300, progress=False
    )
    assert isinstance(res, Comparison)
    assert [r.name for r in res.results] == ["cpc", "smile:5"]
    assert res.lower.kind == "lower bound" and res.upper.kind == "upper bound"
    assert res.lower.value < 1.0 + 0.1 and res.upper.value > 1.0 - 0.1
    table = res.table()
    assert "| cpc |" in table and "known encoder: upper bound" in table


# ---------------------------------------------------------------- impossible values, infinite MI, the verdict
class Sinker(Climber):
    """``loss = a``: the held-out value sinks below 0 (no MI can)."""

    def _loss(self, x, y):
        return self.a


def test_a_negative_value_is_flagged_impossible_and_the_verdict_says_unreliable():
    x, y = _data(1000)
    res = estimate_heldout(x, y, Sinker, seeds=2, config=HeldoutConfig(max_steps=300, patience=3), progress=False)
    assert res.value < -0.5 and "impossible" in [f.name for f in res.flags]
    assert not res.reliable and res.verdict.startswith("unreliable: ") and "impossible" in res.verdict
    text = str(res)
    assert text.startswith("Sinker [UNRELIABLE: ") and "the lower end is below what is possible" in text


def test_a_column_shared_by_x_and_y_is_flagged_infinite():
    x, y = _data(1000)
    cfg = HeldoutConfig(max_steps=100, patience=2)
    same = estimate_heldout(x, x, Climber, seeds=1, config=cfg, progress=False)
    assert [f.name for f in same.flags if f.name == "infinite"] == ["infinite"] and "x[0] = y[0]" in str(same)
    both = torch.cat([x, y], 1)
    part = estimate_heldout(both, y, lambda xs, ys: Climber(xs, ys), seeds=1, config=cfg, progress=False)
    assert "x[1] = y[0]" in next(f.message for f in part.flags if f.name == "infinite")
    clean = estimate_heldout(x, y, Climber, seeds=1, config=cfg, progress=False)
    assert "infinite" not in [f.name for f in clean.flags]


def test_a_result_without_flags_is_reliable_and_says_so_first():
    x, y = _data(1000)
    res = estimate_heldout(x, y, lambda xs, ys: Climber(xs, ys, plateau=0.5), seeds=2, progress=False)
    assert res.flags == [] and res.reliable and res.verdict == "reliable"
    assert str(res).startswith("Climber [RELIABLE]: 0.500 nats")
