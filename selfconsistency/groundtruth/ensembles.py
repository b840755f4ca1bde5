"""The staircase bench's runs trained as ensembles (issue 10): compatible runs as one batched model.

:func:`group_runs` gives the runs of :func:`~.staircase.bench_runs` a :class:`~selfconsistency.runner.Group`
when they can share one model: the same protocol apart from the task (levels, steps, batch size,
learning rate, dimension, critic), the same device, and equal
:func:`~micore.ensemble_stack.ensemble_signature` of their estimators (one architecture and one
setting of every option: in practice the seeds of one estimator, on the Gaussian and the Cubic task
when both are asked for). :func:`~selfconsistency.runner.execute` then hands the members still to do
to :func:`train_group` as one unit of work (for ``--jobs`` and ``--ray`` too), which trains them with
:func:`micore.train_ensemble` and returns one record per run, the record :func:`~.staircase.run_one`
would write, to the run's own file. Resuming, the table and the figure read them as before.

What a member's record holds, beside :func:`~.staircase.run_one`'s fields:

* ``estimates`` and ``diverged_at``: those of the one-by-one run with the same seed, up to float
  rounding (batched kernels and the fused Adam round differently, about 1e-7 relative per step;
  ``tests/test_bench_ensembles.py`` measures it); a member that diverges stops there, as alone, and
  the others train on;
* ``seconds``: the ensemble's wall time (its :func:`~micore.train_ensemble` call) divided by its
  members, the cost of this run when run in it; ``steps_per_second`` follows from it;
* ``ensemble_size`` (members trained in the one model; 1 where the step could not batch and the
  members were trained one by one), ``ensemble_seconds`` (its whole wall time) and
  ``ensemble_engine`` (``"batched"``, ``"vmap"``, or ``"loop"`` for one by one).

A group larger than ``max_members`` is split into units of work of at most that many members (which
``--jobs`` can run side by side); without a cap, :func:`train_group` trains as many at once as fit
half the free memory of the device where it runs (:func:`~micore.ensemble_stack.members_for_memory`),
in consecutive chunks. :func:`parallel_cap` gives the bench's default cap: none on a GPU, and on the
CPU with P workers at most ``ceil(runs / P)`` members, so that no worker idles.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, replace

import torch

from micore import members_for_memory, train_ensemble
from micore.ensemble_stack import ensemble_signature

from ..runner import Group, Run
from .staircase import BenchConfig, _factory

__all__ = ["ENSEMBLE_MODES", "group_runs", "train_group", "group_key", "parallel_cap"]

# "auto": runs that can share one model are trained as ensembles (a group of one runs alone, as with
# "off"); "off": every run alone, one by one.
ENSEMBLE_MODES = ("auto", "off")


def _estimator(name: str, cfg: BenchConfig):
    return _factory(name, cfg)((cfg.dim,), (cfg.dim,))


def group_key(name: str, cfg: BenchConfig, device: str) -> tuple:
    """What runs must share to be trained as one model (equal keys: one ensemble).

    The protocol apart from the task (each member has its own data stream), the device, and the
    estimator's :func:`~micore.ensemble_stack.ensemble_signature`. ``None`` for an estimator whose
    step cannot batch (``MIEstimator.ensemble_batches``, e.g. ``gm-flow``): its runs stay separate
    units of work, which ``--jobs``/``--ray`` run side by side, rather than one unit that loops.
    """
    with torch.random.fork_rng(devices=[]):  # building a module draws weights: leave the caller's RNG alone
        est = _estimator(name, cfg)
    if not type(est).ensemble_batches:
        return None
    return (asdict(replace(cfg, task="gaussian")), str(device), ensemble_signature(est))


def _hashable(key: tuple | None) -> tuple | None:
    if key is None:  # an estimator that cannot batch
        return None
    protocol, device, signature = key
    return (tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in protocol.items())), device, signature)


def group_runs(runs: Sequence[Run], *, ensemble: str = "auto", max_members: int | None = None) -> list[Run]:
    """``runs`` (made by :func:`~.staircase.bench_runs`) with the :class:`~selfconsistency.runner.Group`
    of the runs that can share one model; unchanged with ``ensemble="off"``.

    ``max_members``: the most members of one ensemble, so of one unit of work (``None``: as many as
    fit half the free memory where the group trains, in consecutive chunks).
    """
    if ensemble not in ENSEMBLE_MODES:
        raise ValueError(f"ensemble must be one of {ENSEMBLE_MODES}, got {ensemble!r}")
    if max_members is not None and (isinstance(max_members, bool) or not isinstance(max_members, int)):
        raise ValueError(f"max_members must be an int >= 1 or None, got {max_members!r}")
    if max_members is not None and max_members < 1:
        raise ValueError(f"max_members must be >= 1, got {max_members}")
    runs = list(runs)
    if ensemble == "off":
        return runs
    keys: dict[tuple, tuple] = {}  # (name, cfg, device) -> group key: one signature per estimator and protocol
    members: dict[tuple, list[int]] = {}
    for i, run in enumerate(runs):
        name, cfg, _seed, device = run.args
        if (name, cfg, device) not in keys:
            keys[(name, cfg, device)] = _hashable(group_key(name, cfg, device))
        if keys[(name, cfg, device)] is not None:
            members.setdefault(keys[(name, cfg, device)], []).append(i)
    out = list(runs)
    used: set[str] = set()
    for indices in members.values():
        if len(indices) < 2:
            continue
        group = Group(
            key=_readable([runs[i] for i in indices], used),
            fn=train_group,
            args=(max_members,),
            max_members=max_members,
        )
        for i in indices:
            out[i] = replace(runs[i], group=group)
    return out


def _readable(runs: list[Run], used: set[str]) -> str:
    """``"gaussian+cubic joint cpc"``: the tasks, critic and estimators of a group (unique among ``used``)."""
    tasks = "+".join(dict.fromkeys(r.args[1].task for r in runs))
    names = "+".join(dict.fromkeys(r.args[0] for r in runs))
    key = f"ensemble {tasks} {runs[0].args[1].critic} {names}"
    base, n = key, 1
    while key in used:
        n += 1
        key = f"{base} #{n}"
    used.add(key)
    return key


def _parallel_units(executor) -> int:
    """How many units of work ``executor`` runs at once, where it knows (1 where it does not: a cluster)."""
    jobs = getattr(executor, "jobs", None)
    if jobs is not None:
        return jobs
    if getattr(executor, "name", None) == "ray" and executor.address is None:  # a local Ray
        from micore.threads import available_cpus

        return max(1, (executor.num_cpus or available_cpus()) // executor.cpus_per_run)
    return 1


def parallel_cap(n_runs: int, executor, device: str) -> int | None:
    """The default ``max_members`` for an executor: ``None`` (by memory), but on the CPU with an executor
    that runs P units at once (``--jobs P``, a local ``--ray``), ``ceil(n_runs / P)``, so that every
    worker gets a unit of work.

    On the CPU an ensemble gains 1.05x (joint critic) to 1.6x (separable, K = 32) over one-by-one runs
    on the same threads (``benchmarks/training_speed.py``), while ``--jobs P`` gains up to P: one group
    on one worker while the others idle would lose. On a GPU the ensemble is the gain: no cap.
    """
    parallel = _parallel_units(executor)
    if str(device).startswith("cuda") or parallel <= 1 or n_runs < 1:
        return None
    return max(1, -(-n_runs // parallel))


def _chunks(n: int, cap: int) -> list[range]:
    count = -(-n // max(1, cap))
    size, extra = divmod(n, count)
    out, start = [], 0
    for i in range(count):
        stop = start + size + (i < extra)
        out.append(range(start, stop))
        start = stop
    return out


def train_group(member_args: Sequence[tuple], max_members: int | None = None, progress: bool = True) -> list[dict]:
    """Trains the runs ``member_args`` (each :func:`~.staircase.run_one`'s ``(name, cfg, seed, device)``,
    all of one :func:`group_key`) as ensembles; returns their records, in that order.

    Member k is built as :func:`~.staircase.run_one` builds it (the global seed set to its seed before
    its weights are drawn) and trained with its seed's data stream by :func:`micore.train_ensemble`,
    ``max_members`` at a time (``None``: as many as fit half the free memory of the device).
    """
    member_args = [tuple(a) for a in member_args]
    if not member_args:
        return []
    keys = {_hashable(group_key(*spec)) for spec in dict.fromkeys((n, c, d) for n, c, _, d in member_args)}
    if len(keys) != 1:
        raise ValueError("train_group: the runs differ in protocol, device or architecture; group them by group_key")
    estimators = []
    for name, cfg, seed, _device in member_args:
        torch.manual_seed(seed)  # weight initialisation, as run_one
        estimators.append(_estimator(name, cfg))
    _, cfg0, _, device = member_args[0]
    if max_members is None:
        with torch.random.fork_rng(devices=[]):
            max_members = members_for_memory(estimators[0], cfg0.batch_size, device=device)
    records = []
    for chunk in _chunks(len(member_args), max_members):
        records += _train_chunk([member_args[i] for i in chunk], [estimators[i] for i in chunk], progress)
    return records


def _train_chunk(member_args: list[tuple], estimators: list, progress: bool) -> list[dict]:
    name0, cfg0, _, device = member_args[0]
    tasks = "+".join(dict.fromkeys(a[1].task for a in member_args))
    names = "+".join(dict.fromkeys(a[0] for a in member_args))
    start = time.perf_counter()
    histories = train_ensemble(
        estimators,
        [cfg.staircase() for _, cfg, _, _ in member_args],
        seeds=[seed for _, _, seed, _ in member_args],
        batch_size=cfg0.batch_size,
        lr=cfg0.lr,
        device=device,
        progress=progress,
        divergence="member",
        max_members=None,
        desc=f"{tasks} {names} x{len(member_args)}",
        precision=cfg0.precision,
    )
    wall = time.perf_counter() - start
    (engine,) = histories.engines
    size = 1 if engine == "loop" else len(member_args)
    records = []
    for (name, cfg, seed, _), est, hist in zip(member_args, estimators, histories, strict=True):
        # one by one ("loop"), each member's own time; in one model, an equal share of the ensemble's
        seconds = hist.seconds if engine == "loop" else wall / size
        records.append(
            {
                "estimator": name,
                "seed": seed,
                "config": cfg.record(),
                "kind": est.kind,
                "diverged_at": hist.diverged_at,
                "estimates": hist.estimate,
                "seconds": seconds,
                "device": hist.device,
                "steps_per_second": len(hist.loss) / seconds if seconds > 0 else None,
                "threads": hist.threads,
                "ensemble_size": size,
                "ensemble_seconds": wall,
                "ensemble_engine": engine,
            }
        )
    return records
