"""The staircase bench's runs trained as ensembles (issue 10): compatible runs as one batched model.

:func:`group_runs` gives the runs of :func:`~.staircase.bench_runs` a :class:`~selfconsistency.execution.Group`
when they can share one model: the same protocol apart from the task (levels, steps, batch size,
learning rate, dimension, critic), the same device, and equal
:func:`~micore.ensemble.ensemble_signature` of their estimators (one architecture and one
setting of every option: in practice the seeds of one estimator, on the Gaussian and the Cubic task
when both are asked for). :func:`~selfconsistency.execution.execute` then hands the members still to do
to :func:`train_group` as one unit of work (for ``--jobs`` and ``--ray`` too), which trains them with
:func:`micore.train_ensemble` and returns one record per run, the record :func:`~.staircase.run_one`
would write, to the run's own file. Resuming, the table and the figure read them as before.

What a member's record holds, beside :func:`~.staircase.run_one`'s fields:

* ``estimates`` and ``diverged_at``: those of the one-by-one run with the same seed, up to float
  rounding (batched kernels and the fused Adam round differently, about 1e-7 relative per step;
  ``tests/selfconsistency/groundtruth/test_bench_ensembles.py`` measures it); a member that diverges
  stops there, as alone, and the others train on;
* ``seconds``: the ensemble's wall time (its :func:`~micore.train_ensemble` call) divided by its
  members, the cost of this run when run in it; ``steps_per_second`` follows from it;
* ``ensemble_size`` (members trained in the one model; 1 where the step could not batch and the
  members were trained one by one), ``ensemble_seconds`` (its whole wall time) and
  ``ensemble_engine`` (``"batched"``, ``"vmap"``, or ``"loop"`` for one by one).

A group larger than ``max_members`` is split into units of work of at most that many members (which
``--jobs`` can run side by side); without a cap, :func:`train_group` trains as many at once as fit
half the free memory of the device where it runs (:func:`~micore.ensemble.members_for_memory`),
in consecutive chunks. :func:`~selfconsistency.execution.parallel_cap` gives the bench's default cap: none
on a GPU, and on the CPU with P workers at most ``ceil(runs / P)`` members, so that no worker idles.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, replace

import torch

from micore import train_ensemble
from micore.compat import deprecated_names
from micore.ensemble import ensemble_signature
from micore.validation import check_positive_int

from ..execution import Group, Run
from ..execution import group_runs as group_by_key
from .records import StaircaseRecord
from .staircase import StaircaseRun, estimator_for, record_of

__all__ = ["ENSEMBLE_MODES", "group_runs", "train_group", "group_key"]

# "auto": runs that can share one model are trained as ensembles (a group of one runs alone, as with
# "off"); "off": every run alone, one by one.
ENSEMBLE_MODES = ("auto", "off")


def group_key(spec: StaircaseRun) -> tuple | None:
    """What runs must share to be trained as one model (equal keys: one ensemble).

    The protocol apart from the task (each member has its own data stream), the device, and the
    estimator's :func:`~micore.ensemble.ensemble_signature`. ``None`` for an estimator whose
    step cannot batch (``MIEstimator.ensemble_batches``, e.g. ``gm-flow``): its runs stay separate
    units of work, which ``--jobs``/``--ray`` run side by side, rather than one unit that loops.
    """
    with torch.random.fork_rng(devices=[]):  # building a module draws weights: leave the caller's RNG alone
        est = estimator_for(spec)
    if not type(est).ensemble_batches:
        return None
    protocol = asdict(replace(spec.config, task="gaussian"))
    return (tuple(sorted(protocol.items())), spec.device, ensemble_signature(est))


def group_runs(runs: Sequence[Run], *, ensemble: str = "auto", max_members: int | None = None) -> list[Run]:
    """``runs`` (made by :func:`~.staircase.bench_runs`) with the :class:`~selfconsistency.execution.Group`
    of the runs that can share one model; unchanged with ``ensemble="off"``.

    ``max_members``: the most members of one ensemble, so of one unit of work (``None``: as many as
    fit half the free memory where the group trains, in consecutive chunks).
    """
    if ensemble not in ENSEMBLE_MODES:
        raise ValueError(f"ensemble must be one of {ENSEMBLE_MODES}, got {ensemble!r}")
    if max_members is not None:
        check_positive_int(max_members, "max_members")
    if ensemble == "off":
        return list(runs)
    keys: dict[tuple, tuple | None] = {}  # one signature per estimator, protocol and device

    def key(run: Run):
        (spec,) = run.args
        where = (spec.estimator, spec.config, spec.device)
        if where not in keys:
            keys[where] = group_key(spec)
        return keys[where]

    used: set[str] = set()

    def make_group(members: list[Run]) -> Group:
        return Group(key=_readable(members, used), fn=train_group, args=(max_members,), max_members=max_members)

    return group_by_key(runs, key, make_group)


def _readable(runs: list[Run], used: set[str]) -> str:
    """``"gaussian+cubic joint cpc"``: the tasks, critic and estimators of a group (unique among ``used``)."""
    specs = [r.args[0] for r in runs]
    tasks = "+".join(dict.fromkeys(s.config.task for s in specs))
    names = "+".join(dict.fromkeys(s.estimator for s in specs))
    key = f"ensemble {tasks} {specs[0].config.critic} {names}"
    base, n = key, 1
    while key in used:
        n += 1
        key = f"{base} #{n}"
    used.add(key)
    return key


def train_group(
    member_args: Sequence[tuple], max_members: int | None = None, progress: bool = True
) -> list[StaircaseRecord]:
    """Trains the runs ``member_args`` (each the ``(StaircaseRun,)`` of :func:`~.staircase.run_staircase`, all
    of one :func:`group_key`) as ensembles; returns their records, in that order.

    Member k is built as :func:`~.staircase.run_staircase` builds it (the global seed set to its seed before
    its weights are drawn) and trained with its seed's data stream by :func:`micore.train_ensemble`,
    ``max_members`` at a time (``None``: as many as fit half the free memory of the device).
    """
    specs = [args[0] for args in member_args]
    if not specs:
        return []
    if len({group_key(s) for s in dict.fromkeys(replace(s, seed=0) for s in specs)}) != 1:
        raise ValueError("train_group: the runs differ in protocol, device or architecture; group them by group_key")
    estimators = []
    for spec in specs:
        torch.manual_seed(spec.seed)  # weight initialisation, as run_staircase
        estimators.append(estimator_for(spec))
    first = specs[0]
    tasks = "+".join(dict.fromkeys(s.config.task for s in specs))
    names = "+".join(dict.fromkeys(s.estimator for s in specs))
    start = time.perf_counter()
    histories = train_ensemble(
        estimators,
        [s.config.staircase() for s in specs],
        seeds=[s.seed for s in specs],
        batch_size=first.config.batch_size,
        lr=first.config.lr,
        device=first.device,
        progress=progress,
        divergence="member",
        max_members="auto" if max_members is None else max_members,
        desc=f"{tasks} {names} x{len(specs)}",
        precision=first.config.precision,
    )
    wall = time.perf_counter() - start
    records = []
    for i, (spec, est, hist) in enumerate(zip(specs, estimators, histories, strict=True)):
        chunk = histories.chunk_of[i]
        engine, size = histories.engines[chunk], histories.chunks[chunk]
        chunk_wall = histories.chunk_seconds[chunk] if len(histories.chunks) > 1 else wall
        # one by one ("loop"), each member's own time; in one model, an equal share of its chunk's
        size = 1 if engine == "loop" else size
        seconds = hist.seconds if engine == "loop" else chunk_wall / size
        ensemble = dict(ensemble_size=size, ensemble_seconds=chunk_wall, ensemble_engine=engine)
        records.append(record_of(spec, est, hist, diverged_at=hist.diverged_at, seconds=seconds, **ensemble))
    return records


# moved: the default group size per executor knows nothing about the benchmark
__getattr__ = deprecated_names(__name__, {"parallel_cap": ("selfconsistency.execution", "parallel_cap")})
