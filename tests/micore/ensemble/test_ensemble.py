"""micore.train_ensemble: K runs as one batched model give the K one-by-one runs' results.

Tolerance. The ensemble computes each member's step with batched kernels (``bmm``/``baddbmm`` on
feature-major activations, vmap's batched reductions) and one fused Adam kernel, which round
differently from the one-run kernels ``train`` uses (``addmm``, single-tensor Adam): about 1e-7
relative per step in float32. Training amplifies such differences, MINE's bias-corrected gradient
most (its moving average breaks DV's invariance to a constant, and Adam turns rounding noise in
that direction into steps of +-lr): over these 50 steps at the paper's lr 5e-4 the largest
difference measured in a per-step loss or batch estimate is 1.8e-4 nats for MINE (joint critic,
Cubic member, growing about 2x every 5 steps) and at most 2e-6 for every other family. Per-step
records must agree within ``ATOL = RTOL = 1e-4`` (MINE: ``1e-3``); a wrong seed, batch, state or
optimiser moment changes them by 1e-2 or more. In float64 the same runs agree to 2e-14 (MINE) and
2e-15 (the rest), which :func:`test_float64_members_agree_to_rounding` checks at 1e-9: the float32
differences are rounding, not another computation. Parameters are compared after training only
through what they compute (held-out estimates): where a loss is invariant to a direction (InfoNCE,
DV to a constant added to the critic), its gradient is rounding noise that Adam turns into steps
of +-lr either way, so such a parameter can differ by up to lr x steps without changing any estimate.
"""

from __future__ import annotations

import copy
import math
import warnings

import pytest
import torch
from torch import nn

from discmi import ESTIMATORS, NWJ, SMILE, ConvCritic, InfoNCE, JointCritic, ReMINE, SeparableCritic
from micore import TrainingDiverged, train
from micore.ensemble import ensemble_signature, member_memory, members_for_memory, train_ensemble
from micore.tasks import CorrelatedGaussian, Sampler, Staircase

pytestmark = pytest.mark.usefixtures("one_thread")

ATOL = RTOL = 1e-4
LOOSER = {"mine": 1e-3}  # MINE's gradient amplifies rounding most (module docstring)
DIM, BATCH, STEPS, LR = 4, 16, 50, 5e-4
SEEDS = [11, 12, 13]
TASKS = [CorrelatedGaussian(DIM, 0.5), CorrelatedGaussian(DIM, 1.5), CorrelatedGaussian(DIM, 3.0, cubic=True)]


def small_critic(kind: str, init_seed: int) -> nn.Module:
    torch.manual_seed(init_seed)
    if kind == "joint":
        return JointCritic(DIM, DIM, hidden=(32, 32))
    return SeparableCritic(DIM, DIM, hidden=(32, 32), embed_dim=8)


def members(name: str, critic: str, k: int = 3) -> list:
    """K estimators of registry name ``name``, each with its own initial weights."""
    base, _, arg = name.partition(":")
    out = []
    for i in range(k):
        c = small_critic(critic, 100 + i)
        torch.manual_seed(200 + i)  # baselines (TUBA, I_alpha) are built inside the estimator
        out.append(ESTIMATORS[base].build(arg or None, (DIM,), (DIM,), critic=c))
    return out


def one_by_one(estimators, data, seeds, **kwargs):
    histories = []
    for est, d, s in zip(estimators, data, seeds, strict=True):
        histories.append(train(est, d, seed=s, steps=STEPS, batch_size=BATCH, lr=LR, progress=False, **kwargs))
    return histories


def assert_same_run(h, ref, what: str = "", tol: float = ATOL) -> None:
    assert h.steps == ref.steps and h.seed == ref.seed and h.true_mi == ref.true_mi, what
    assert h.diverged_at == ref.diverged_at, what
    torch.testing.assert_close(
        torch.tensor(h.loss), torch.tensor(ref.loss), atol=tol, rtol=tol, equal_nan=True, msg=what
    )
    if ref.estimate is None:
        assert h.estimate is None
    else:
        torch.testing.assert_close(
            torch.tensor(h.estimate), torch.tensor(ref.estimate), atol=tol, rtol=tol, equal_nan=True, msg=what
        )


FAMILIES = ["nwj", "tuba", "dv", "mine", "cpc", "js", "interpolated", "smile:5", "smile:inf", "remine", "remine-j"]


@pytest.mark.parametrize("critic", ["joint", "separable"])
@pytest.mark.parametrize("name", FAMILIES)
def test_ensemble_reproduces_one_by_one_runs(name, critic):
    """Members on three MI levels (Gaussian and Cubic), three seeds: per-step losses and estimates."""
    ens, ref = members(name, critic), members(name, critic)
    assert all(torch.equal(p, q) for e, r in zip(ens, ref, strict=True) for p, q in zip(e.parameters(), r.parameters()))  # noqa: B905
    histories = train_ensemble(ens, TASKS, seeds=SEEDS, steps=STEPS, batch_size=BATCH, lr=LR, progress=False)
    assert histories.engines == ["batched"]  # the library's critics run as stacked matmuls
    expected = one_by_one(ref, TASKS, SEEDS)
    x, y = TASKS[1].sample(256, seed=5)
    for i, (h, r) in enumerate(zip(histories, expected, strict=True)):
        assert_same_run(h, r, f"member {i}", LOOSER.get(name, ATOL))
        assert ens[i].history is h and ens[i].batch_size == BATCH
        # the trained module is usable afterwards and computes what the one-by-one one does
        got, want = ens[i].estimate(x, y), ref[i].estimate(x, y)
        assert got.kind == want.kind and got.n == want.n
        assert got.value == pytest.approx(want.value, abs=1e-3, rel=1e-3)
    for e, r in zip(ens, ref, strict=True):  # state: MINE's moving average, ReMINE's window
        for (name_b, b), (_, rb) in zip(e.named_buffers(), r.named_buffers(), strict=True):
            torch.testing.assert_close(b, rb, atol=LOOSER.get(name, ATOL), rtol=LOOSER.get(name, ATOL), msg=name_b)


def test_generic_vmap_engine_agrees_with_batched_layers():
    """engine="vmap" (functional_call + vmap of the estimator's own step) gives the same runs."""
    for name in ("mine", "tuba"):
        a, b = members(name, "joint", 2), members(name, "joint", 2)
        ha = train_ensemble(a, TASKS[:2], seeds=SEEDS[:2], steps=STEPS, batch_size=BATCH, lr=LR, progress=False)
        hb = train_ensemble(
            b, TASKS[:2], seeds=SEEDS[:2], steps=STEPS, batch_size=BATCH, lr=LR, progress=False, engine="vmap"
        )
        assert ha.engines == ["batched"] and hb.engines == ["vmap"]
        for x, y in zip(ha, hb, strict=True):
            assert_same_run(x, y, tol=LOOSER.get(name, ATOL))


@pytest.mark.parametrize("critic", ["joint", "separable"])
def test_member_by_member_critic_path(critic, monkeypatch):
    """Large activations run member after member on views of the stacked weights: the same runs."""
    import discmi.batched

    monkeypatch.setattr(discmi.batched, "MEMBER_BY_MEMBER_ABOVE", 0)
    ens, ref = members("smile:5", critic), members("smile:5", critic)
    hs = train_ensemble(ens, TASKS, seeds=SEEDS, steps=STEPS, batch_size=BATCH, lr=LR, progress=False)
    assert hs.engines == ["batched"]
    for h, r in zip(hs, one_by_one(ref, TASKS, SEEDS), strict=True):
        assert_same_run(h, r)


def test_remine_window_and_member_state():
    """ReMINE micro-averaged over a window of 3 batches: the window's buffers and its counter per member."""

    def make(i):
        torch.manual_seed(i)
        return ReMINE(DIM, DIM, critic=small_critic("separable", i), window=3)

    ens, ref = [make(i) for i in range(2)], [make(i) for i in range(2)]
    hs = train_ensemble(ens, TASKS[0], seeds=[1, 2], steps=STEPS, batch_size=BATCH, lr=LR, progress=False)
    for h, r, e, er in zip(hs, one_by_one(ref, [TASKS[0]] * 2, [1, 2]), ens, ref, strict=True):
        assert_same_run(h, r)
        assert e._slot == er._slot == STEPS
        torch.testing.assert_close(e._marg_lse, er._marg_lse, atol=ATOL, rtol=RTOL)


def test_float64_members_agree_to_rounding():
    """In float64 the ensemble and the one-by-one runs agree to 1e-9 (2e-14 measured): the float32
    differences are rounding, even for MINE, which amplifies them most."""
    ens = [m.double() for m in members("mine", "joint", 2)]
    ref = [m.double() for m in members("mine", "joint", 2)]
    hs = train_ensemble(ens, TASKS[:2], seeds=SEEDS[:2], steps=STEPS, batch_size=BATCH, lr=LR, progress=False)
    for h, r in zip(hs, one_by_one(ref, TASKS[:2], SEEDS[:2]), strict=True):
        torch.testing.assert_close(torch.tensor(h.loss), torch.tensor(r.loss), atol=1e-9, rtol=1e-9)
        torch.testing.assert_close(torch.tensor(h.estimate), torch.tensor(r.estimate), atol=1e-9, rtol=1e-9)


def test_staircase_and_tensor_data():
    """A staircase (true_mi per step, default steps) and tensor data (shuffled epochs) as train draws them."""
    stairs = Staircase(dim=DIM, levels=(1.0, 2.0), steps_per_level=15)
    ens, ref = members("smile:5", "separable", 2), members("smile:5", "separable", 2)
    hs = train_ensemble(ens, stairs, seeds=[3, 4], batch_size=BATCH, lr=LR, progress=False)
    for h, e, s in zip(hs, ref, [3, 4], strict=True):
        r = train(e, stairs, seed=s, batch_size=BATCH, lr=LR, progress=False)
        assert h.steps == 30 and h.true_mi == r.true_mi
        assert_same_run(h, r)
    x, y = TASKS[2].sample(100, seed=9)  # 6 batches an epoch: the order reshuffles within 50 steps
    ens, ref = members("nwj", "joint", 2), members("nwj", "joint", 2)
    hs = train_ensemble(ens, (x, y), seeds=[5, 6], steps=STEPS, batch_size=BATCH, lr=LR, progress=False)
    for h, e, s in zip(hs, ref, [5, 6], strict=True):
        r = train(e, x, y, seed=s, steps=STEPS, batch_size=BATCH, lr=LR, progress=False)
        assert h.true_mi is None
        assert_same_run(h, r)


def test_conv_critic_on_tiny_images():
    """The conv critic (not a batched-layer critic: vmap of its own step) on 1x8x8 images."""
    g = torch.Generator().manual_seed(0)
    x = torch.rand(96, 1, 8, 8, generator=g)
    y = (x + 0.3 * torch.rand(96, 1, 8, 8, generator=g)).clamp(0, 1)

    def make(i):
        torch.manual_seed(i)
        return SMILE((1, 8, 8), (1, 8, 8), critic=ConvCritic((1, 8, 8), (1, 8, 8), channels=(4, 8), hidden=16))

    ens, ref = [make(i) for i in range(2)], [make(i) for i in range(2)]
    hs = train_ensemble(ens, (x, y), seeds=[1, 2], steps=20, batch_size=BATCH, lr=LR, progress=False)
    assert hs.engines == ["vmap"]
    for h, e, s in zip(hs, ref, [1, 2], strict=True):
        assert_same_run(h, train(e, x, y, seed=s, steps=20, batch_size=BATCH, lr=LR, progress=False))


class NaNFrom(Sampler):
    """``task``'s batches, with NaN in ``x`` from step ``start`` on (a corrupted data stream)."""

    def __init__(self, task, start: int):
        self.task, self.start = task, start
        self.x_shape, self.y_shape, self.mi = task.x_shape, task.y_shape, task.mi

    def sample(self, n, seed=None, *, generator=None, device=None):
        return self.task.sample(n, seed, generator=generator, device=device)

    def sample_at(self, step, n, *, generator=None, device=None):
        x, y = self.task.sample_at(step, n, generator=generator, device=device)
        return (x * math.nan if step >= self.start else x), y


@pytest.mark.parametrize("divergence", ["member", "ignore", "raise"])
def test_a_corrupted_member_stops_alone(divergence):
    """NaN data from step 23 in member 1: it is flagged there; members 0 and 2 equal their own runs."""
    data = [TASKS[0], NaNFrom(TASKS[1], 23), TASKS[2]]
    ens, ref = members("nwj", "separable"), members("nwj", "separable")
    kwargs = dict(seeds=SEEDS, steps=STEPS, batch_size=BATCH, lr=LR, progress=False, divergence=divergence)
    if divergence == "raise":
        with pytest.raises(TrainingDiverged, match="step 23") as info:
            train_ensemble(ens, data, **kwargs)
        assert info.value.member == 1 and info.value.step == 23
        hs = info.value.histories
    else:
        hs = train_ensemble(ens, data, **kwargs)
    one_mode = "ignore" if divergence == "ignore" else "raise"
    for i, (h, e, d, s) in enumerate(zip(hs, ref, data, SEEDS, strict=True)):
        if i != 1:
            assert h.diverged_at is None
            assert_same_run(h, train(e, d, seed=s, steps=STEPS, batch_size=BATCH, lr=LR, progress=False))
            continue
        assert h.diverged_at == 23 and "nan" in h.divergence
        if one_mode == "raise":
            with pytest.raises(TrainingDiverged) as info:
                train(e, d, seed=s, steps=STEPS, batch_size=BATCH, lr=LR, progress=False)
            r = info.value.history
            assert h.steps == 23  # the history ends before the bad step, as TrainingDiverged's does
        else:
            r = train(e, d, seed=s, steps=STEPS, batch_size=BATCH, lr=LR, progress=False, divergence="ignore")
            assert h.steps == STEPS
        assert_same_run(h, r)
        assert ens[1].history is h


class ItemCritic(nn.Module):
    """A user critic that is not vmap-able: it reads a value to the host (``.item()``) in its forward."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2 * DIM, 16), nn.ReLU(), nn.Linear(16, 1))

    def forward(self, x, y):
        scale = 1.0 if x.abs().max().item() < 1e6 else 0.0
        return scale * self.net(torch.cat([x, y], dim=-1)).squeeze(-1)


def test_non_vmappable_critic_falls_back_with_a_warning():
    def make(i):
        torch.manual_seed(i)
        return InfoNCE(DIM, DIM, critic=ItemCritic())

    ens, ref = [make(i) for i in range(2)], [make(i) for i in range(2)]
    with pytest.warns(UserWarning, match=r"cannot run batched \(RuntimeError.*item.*one by one"):
        hs = train_ensemble(ens, TASKS[:2], seeds=[1, 2], steps=20, batch_size=BATCH, lr=LR, progress=False)
    assert hs.engines == ["loop"]
    for h, e, d, s in zip(hs, ref, TASKS[:2], [1, 2], strict=True):
        r = train(e, d, seed=s, steps=20, batch_size=BATCH, lr=LR, progress=False)
        assert h.loss == r.loss and h.estimate == r.estimate  # it is train(): bit for bit
    for e, r in zip(ens, ref, strict=True):
        assert all(torch.equal(p, q) for p, q in zip(e.parameters(), r.parameters(), strict=True))


def test_user_vmappable_critic_runs_batched_without_warning():
    class Bilinear(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(0.1 * torch.randn(DIM, DIM))

        def forward(self, x, y):
            return ((x @ self.w) * y).sum(-1)

    def make(i):
        torch.manual_seed(i)
        return NWJ(DIM, DIM, critic=Bilinear())

    ens, ref = [make(i) for i in range(2)], [make(i) for i in range(2)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        hs = train_ensemble(ens, TASKS[:2], seeds=[1, 2], steps=STEPS, batch_size=BATCH, lr=LR, progress=False)
    assert hs.engines == ["vmap"]
    for h, r in zip(hs, one_by_one(ref, TASKS[:2], [1, 2]), strict=True):
        assert_same_run(h, r)


def test_chunks_and_memory():
    """max_members splits the members into chunks; results do not change; memory is reported."""
    ens, ref = members("mine", "separable"), members("mine", "separable")
    kwargs = dict(seeds=SEEDS, steps=20, batch_size=BATCH, lr=LR, progress=False, device="cpu")
    hs = train_ensemble(ens, TASKS, max_members=2, **kwargs)  # the CPU: memory is K x the estimate
    assert hs.chunks == [2, 1] and hs.engines == ["batched", "batched"]
    for h, e, d, s in zip(hs, ref, TASKS, SEEDS, strict=True):
        assert_same_run(h, train(e, d, seed=s, steps=20, batch_size=BATCH, lr=LR, progress=False, device="cpu"))
    per = member_memory(ens[0], BATCH, "cpu")
    params = sum(p.numel() * p.element_size() for p in ens[0].parameters())
    assert per["parameters"] >= 4 * params and per["activations"] > 0
    assert hs.peak_bytes == 2 * sum(per.values()) and not hs.peak_measured
    assert members_for_memory(ens[0], BATCH, budget_bytes=10 * sum(per.values())) == 10
    assert members_for_memory(ens[0], BATCH, budget_bytes=1) == 1


def test_signature_groups_compatible_members():
    a, b = members("smile:5", "joint", 2)
    assert ensemble_signature(a) == ensemble_signature(b)
    assert ensemble_signature(a) != ensemble_signature(members("smile:1", "joint", 1)[0])
    assert ensemble_signature(a) != ensemble_signature(members("smile:5", "separable", 1)[0])
    hash(ensemble_signature(a))


def _bad_cases():
    ok = members("nwj", "joint", 2)
    smile = members("smile:5", "joint", 1) + members("smile:1", "joint", 1)
    wide = [ok[0], NWJ(DIM, DIM, critic=JointCritic(DIM, DIM, hidden=(32, 64)))]
    custom = [NWJ(DIM, DIM, critic=ItemCritic()), NWJ(DIM, DIM, critic=ItemCritic())]
    base = dict(seeds=[1, 2], steps=5, progress=False)
    return [
        ([], TASKS[0], base, "estimators"),
        (ok[0], TASKS[0], base, "estimators"),
        ([ok[0], ok[0]], TASKS[0], base, r"estimators\[1\] is estimators\[0\]"),
        (wide, TASKS[0], base, r"estimators\[1\] differs"),
        (smile, TASKS[0], base, r"estimators\[1\] differs.*tau"),
        ([ok[0], "nwj"], TASKS[0], base, r"estimators\[1\]"),
        (ok, TASKS[0], {**base, "seeds": [1]}, "seeds"),
        (ok, TASKS[0], {**base, "seeds": [1, 2.0]}, r"seeds\[1\]"),
        (ok, TASKS[0], {**base, "seeds": 1}, "seeds"),
        (ok, TASKS, base, "data has 3 entries"),
        (ok, [TASKS[0], "gaussian"], base, r"data\[1\]"),
        (ok, "gaussian", base, "data"),
        (ok, [TASKS[0], CorrelatedGaussian(DIM + 1, 1.0)], base, r"estimators\[1\]"),
        (ok, TASKS[0], {**base, "divergence": "stop"}, "divergence"),
        (ok, TASKS[0], {**base, "engine": "jit"}, "engine"),
        (ok, TASKS[0], {**base, "max_members": 0}, "max_members"),
        (ok, TASKS[0], {**base, "batch_size": 1}, "batch_size"),
        (ok, TASKS[0], {**base, "steps": 0}, "steps"),
        (ok, TASKS[0], {**base, "lr": -1.0}, "lr"),
        (ok, TASKS[0], {**base, "device": "cuda:99"}, "device"),
        (custom, TASKS[0], {**base, "engine": "batched"}, "engine"),
        (ok, [TASKS[0], Staircase((1.0,), steps_per_level=3, dim=DIM)], {**base, "steps": None}, "steps"),
    ]


@pytest.mark.parametrize("case", range(len(_bad_cases())))
def test_bad_arguments_name_the_argument(case):
    estimators, data, kwargs, match = _bad_cases()[case]
    with pytest.raises(ValueError, match=match):
        train_ensemble(estimators, data, **kwargs)


def test_members_are_left_untouched_by_a_refused_call():
    ens = members("nwj", "joint", 2)
    before = [copy.deepcopy(e.state_dict()) for e in ens]
    with pytest.raises(ValueError):
        train_ensemble(ens, TASKS[0], seeds=[1], steps=5, progress=False)
    assert all(torch.equal(v, b[k]) for e, b in zip(ens, before, strict=True) for k, v in e.state_dict().items())
    assert ens[0].history is None
