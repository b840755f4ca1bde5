"""Precision options (fp32 / TF32 / bf16 autocast) and CUDA-graph ensembles (issue 10).

On the CPU: bf16 really changes the arithmetic (the runs move away from float32's by far more than
float32 rounding, 1e-6 here, yet stay within bf16's reach), TF32 is refused off CUDA, bad values
name the argument, and an ensemble in bf16 trains its members as bf16 one-by-one runs would.
On CUDA (skipped without one): graph replay reproduces the eager ensemble, which reproduces the
one-by-one runs, for every family (ReMINE's step changes Python state, so it stays eager).
"""

from __future__ import annotations

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from discmi import ESTIMATORS, JointCritic, SeparableCritic
from micore import train
from micore.ensemble import train_ensemble
from micore.ensemble.chunk import _plain_state, changed_state
from micore.tasks import CorrelatedGaussian
from micore.training.precision import check_precision, forward_precision, precision_scope

pytestmark = pytest.mark.usefixtures("one_thread")

DIM, BATCH, STEPS, LR = 4, 16, 50, 5e-4
SEEDS = [11, 12, 13]
TASKS = [CorrelatedGaussian(DIM, 0.5), CorrelatedGaussian(DIM, 1.5), CorrelatedGaussian(DIM, 3.0, cubic=True)]
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def build(name: str, critic: str, k: int = 3, device: str = "cpu") -> list:
    base, _, arg = name.partition(":")
    out = []
    for i in range(k):
        torch.manual_seed(100 + i)
        c = JointCritic(DIM, DIM, hidden=(32, 32)) if critic == "joint" else SeparableCritic(DIM, DIM, (32, 32), 8)
        torch.manual_seed(200 + i)
        out.append(ESTIMATORS[base].build(arg or None, (DIM,), (DIM,), critic=c).to(device))
    return out


def run(est, task, seed, **kwargs):
    return train(est, task, seed=seed, steps=STEPS, batch_size=BATCH, lr=LR, progress=False, **kwargs)


def gap(a, b) -> float:
    return (torch.tensor(a.estimate) - torch.tensor(b.estimate)).abs().max().item()


def test_bf16_changes_the_arithmetic_within_its_precision():
    """bf16 keeps 8 bits of mantissa (relative rounding 2^-9 = 2e-3 per product): over 50 steps the
    batch estimates move from float32's by more than float32 rounding could (1e-5) and by less than
    0.1 nats (estimates here are 0.1-1 nats; measured largest gap over 4 seeds: 0.035-0.041)."""
    (a,), (b,) = build("smile:5", "joint", 1), build("smile:5", "joint", 1)
    h32 = run(a, TASKS[1], 3, device="cpu")
    h16 = run(b, TASKS[1], 3, precision="bf16", device="cpu")
    assert h32.precision == "fp32" and h16.precision == "bf16"
    assert 1e-5 < gap(h16, h32) < 0.1
    assert all(p.dtype == torch.float32 for p in b.parameters())  # master weights stay float32


def test_forward_precision_casts_matmuls_and_scope_restores_tf32_switches():
    with forward_precision("bf16", torch.device("cpu")):
        assert (torch.ones(2, 3) @ torch.ones(3, 2)).dtype == torch.bfloat16
    with forward_precision("fp32", torch.device("cpu")):
        assert (torch.ones(2, 3) @ torch.ones(3, 2)).dtype == torch.float32
    before = torch.backends.cuda.matmul.allow_tf32
    with precision_scope("fp32", torch.device("cpu")):
        pass
    assert torch.backends.cuda.matmul.allow_tf32 == before


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"precision": "fp16"}, "precision must be one of"),
        ({"precision": "tf32"}, "precision='tf32' needs a CUDA device"),
        ({"precision": None}, "precision must be one of"),
    ],
)
def test_bad_precision_names_the_argument(kwargs, fragment):
    (est,) = build("nwj", "joint", 1)
    with pytest.raises(ValueError, match=fragment):
        run(est, TASKS[0], 0, device="cpu", **kwargs)
    with pytest.raises(ValueError, match=fragment):
        train_ensemble(build("nwj", "joint", 2), TASKS[0], seeds=[0, 1], steps=5, device="cpu", **kwargs)


@pytest.mark.parametrize("value, fragment", [(True, "cuda_graphs=True needs a CUDA"), ("yes", "cuda_graphs must")])
def test_bad_cuda_graphs_names_the_argument(value, fragment):
    with pytest.raises(ValueError, match=fragment):
        train_ensemble(build("nwj", "joint", 2), TASKS[0], seeds=[0, 1], steps=5, device="cpu", cuda_graphs=value)


def test_check_precision_accepts_tf32_on_cuda_devices_only():
    assert check_precision("tf32", torch.device("cuda")) == "tf32"  # no CUDA needed to check the name
    with pytest.raises(ValueError, match="needs a CUDA device"):
        check_precision("tf32", torch.device("cpu"))


def test_bf16_ensemble_matches_bf16_one_by_one_runs():
    """Batched and one-run kernels may round differently before the bf16 cast, so a product could land
    one bf16 step (0.4%) apart; measured on this CPU: identical (0 for cpc, smile:5, mine, nwj, both
    critics). Tolerance 0.005 nats: a third of what bf16 against fp32 moves these runs (0.015-0.019),
    so an ensemble that dropped the autocast fails."""
    ens, ref = build("cpc", "separable"), build("cpc", "separable")
    kwargs = dict(seeds=SEEDS, steps=STEPS, batch_size=BATCH, lr=LR, progress=False, device="cpu")
    hs = train_ensemble(ens, TASKS, precision="bf16", **kwargs)
    assert hs.graphed == [False]
    for h, est, task, seed in zip(hs, ref, TASKS, SEEDS, strict=True):
        r = run(est, task, seed, precision="bf16", device="cpu")
        assert h.precision == "bf16"
        assert gap(h, r) < 0.005


FAMILIES = ["nwj", "tuba", "dv", "mine", "cpc", "js", "interpolated", "smile:5", "smile:inf", "remine", "remine-j"]

# operations that read a value or a size back to the host: a CUDA graph cannot capture them
_HOST_SYNCS = {"nonzero", "_local_scalar_dense", "masked_select", "unique", "item", "is_nonzero"}


class _SyncSpy(TorchDispatchMode):
    """Records the operations of a step that need the host (boolean-mask indexing included)."""

    def __init__(self):
        super().__init__()
        self.found: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func.overloadpacket.__name__
        if name in _HOST_SYNCS:
            self.found.append(name)
        if name in ("index", "index_put", "index_put_"):
            flat = [a for arg in args for a in (arg if isinstance(arg, (list, tuple)) else [arg])]
            if any(isinstance(a, torch.Tensor) and a.dtype == torch.bool for a in flat):
                self.found.append(f"{name} with a boolean mask")
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("critic", ["joint", "separable"])
@pytest.mark.parametrize("name", FAMILIES)
def test_every_training_step_is_free_of_host_syncs(name, critic):
    """What CUDA graphs need of a step, checked on the CPU: no operation that reads a value or a size
    back to the host, forward or backward. (I_alpha's boolean-mask means failed capture on an H200
    until they became masked sums; this test fails on the old form.)"""
    (est,) = build(name, critic, 1)
    x, y = TASKS[1].sample(BATCH, seed=0)
    with _SyncSpy() as spy:
        loss, _ = est._training_step(x, y)
        loss.backward()
    assert spy.found == []


def test_python_state_changes_are_found():
    """ReMINE with a window > 1 moves its slot (Python state) every step: a graph replay would not, so
    the step must stay eager; with the default window 1 nothing changes and the step is captured."""
    for window, expected in ((4, ["estimator._slot"]), (1, [])):
        est = ESTIMATORS["remine"].build(None, (DIM,), (DIM,), critic="separable")
        if window > 1:
            est = type(est)(DIM, DIM, critic="separable", window=window)
        before = _plain_state(est)
        x, y = TASKS[1].sample(BATCH, seed=0)
        est._training_step(x, y)
        assert changed_state(est, before) == expected


@cuda
@pytest.mark.parametrize("critic", ["joint", "separable"])
@pytest.mark.parametrize("name", FAMILIES)
def test_cuda_graph_ensemble_reproduces_eager_and_one_by_one(name, critic):
    """Replay runs the eager step's kernels: equal to the eager ensemble up to rounding (same
    tolerance as tests/micore/ensemble/test_ensemble.py: 1e-4, MINE 1e-3), and so to the one-by-one CUDA runs."""
    tol = 1e-3 if name == "mine" else 1e-4
    kwargs = dict(seeds=SEEDS, steps=STEPS, batch_size=BATCH, lr=LR, progress=False, device="cuda")
    graphed = train_ensemble(build(name, critic, device="cuda"), TASKS, **kwargs)
    eager = train_ensemble(build(name, critic, device="cuda"), TASKS, cuda_graphs=False, **kwargs)
    assert graphed.graphed == [True] and eager.graphed == [False]  # ReMINE's default window 1: no slot to move
    singles = build(name, critic, device="cuda")
    ref = [run(e, t, s, device="cuda") for e, t, s in zip(singles, TASKS, SEEDS, strict=True)]
    for g, e, r in zip(graphed, eager, ref, strict=True):
        assert gap(g, e) < tol and gap(g, r) < tol
        torch.testing.assert_close(torch.tensor(g.loss), torch.tensor(r.loss), atol=tol, rtol=tol)


class NaNFrom(CorrelatedGaussian):
    """The Gaussian task with NaN in ``x`` from training step ``start`` on (a corrupted stream)."""

    def __init__(self, start: int):
        super().__init__(DIM, 1.5)
        self.start = start

    def sample_at(self, step, n, *, generator=None, device=None):
        x, y = super().sample_at(step, n, generator=generator, device=device)
        return (x * float("nan") if step >= self.start else x), y


@cuda
def test_cuda_graph_member_divergence_continues_eagerly():
    """A member whose data turn NaN at step 23 (after the capture at step 3) is dropped there; the
    graph is discarded, the others train on eagerly and equal their one-by-one runs."""
    data = [TASKS[0], NaNFrom(23), TASKS[2]]
    kwargs = dict(seeds=SEEDS, steps=STEPS, batch_size=BATCH, lr=LR, progress=False, device="cuda")
    hs = train_ensemble(build("smile:5", "joint", device="cuda"), data, **kwargs)
    assert hs.graphed == [True]
    assert hs[1].diverged_at == 23 and hs[0].diverged_at is None and hs[2].diverged_at is None
    for i in (0, 2):
        (est,) = [build("smile:5", "joint", device="cuda")[i]]
        r = run(est, data[i], SEEDS[i], device="cuda")
        assert len(hs[i].loss) == STEPS and gap(hs[i], r) < 1e-4


@cuda
@pytest.mark.parametrize("precision", ["tf32", "bf16"])
def test_cuda_precisions_train_and_record(precision):
    kwargs = dict(seeds=SEEDS, steps=STEPS, batch_size=BATCH, lr=LR, progress=False, device="cuda")
    hs = train_ensemble(build("smile:5", "joint", device="cuda"), TASKS, precision=precision, **kwargs)
    ref = train_ensemble(build("smile:5", "joint", device="cuda"), TASKS, **kwargs)
    for h, r in zip(hs, ref, strict=True):
        assert h.precision == precision
        assert gap(h, r) < 0.1


def test_compile_falls_back_to_the_eager_step_with_a_warning(monkeypatch):
    """A compiler that fails on the first call (where torch.compile compiles): one warning, and the
    run is the eager one, number for number."""

    def broken(fn):
        def call(*args):
            raise RuntimeError("no C++ compiler found")

        return call

    (a,), (b,) = build("smile:5", "joint", 1), build("smile:5", "joint", 1)
    ref = run(a, TASKS[1], 3, device="cpu")
    monkeypatch.setattr(torch, "compile", broken)
    with pytest.warns(UserWarning, match="torch.compile failed for SMILE .*no C\\+\\+ compiler found"):
        h = run(b, TASKS[1], 3, device="cpu", compile=True)
    assert h.estimate == ref.estimate and h.loss == ref.loss
    with pytest.raises(ValueError, match="compile must be True or False"):
        run(b, TASKS[1], 3, device="cpu", compile="yes")


def test_compiled_step_trains_as_the_eager_one():
    """With a working compiler the fused kernels round differently (float32, ~1e-7 per operation);
    over 50 steps the batch estimates stay within 1e-3 nats of the eager run's (a wrong step or batch
    moves them by 0.1+). Skipped where torch.compile cannot build here."""
    (a,), (b,) = build("nwj", "joint", 1), build("nwj", "joint", 1)
    ref = run(a, TASKS[1], 3, device="cpu")
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        h = run(b, TASKS[1], 3, device="cpu", compile=True)
    if any("torch.compile failed" in str(w.message) for w in caught):
        pytest.skip("torch.compile cannot build on this machine")
    assert gap(h, ref) < 1e-3
