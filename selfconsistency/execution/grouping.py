"""Runs trained together: marking groups, splitting them into units of work, and how many units run at once.

* :func:`group_runs` gives the runs that share a key one :class:`~.runs.Group` (what the key is, a
  comparison decides: :mod:`selfconsistency.groundtruth.ensembles`, :mod:`selfconsistency.images.ensembles`);
* :func:`units_of_work` splits the members still to do into near-equal units of at most ``max_members``
  (:func:`micore.ensemble.chunk_ranges`), what :func:`~.runner.execute` hands the executor;
* :func:`parallel_cap` is the default ``max_members`` for an executor that runs several units at once.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import replace

from micore.ensemble import chunk_ranges
from micore.training.threads import available_cpus

from .runs import Group, Run

__all__ = ["group_runs", "units_of_work", "run_group", "parallel_cap", "parallel_units", "is_record"]


def is_record(rec) -> bool:
    """A run's result: a JSON-able dict, or a typed record (it has ``to_dict``)."""
    return isinstance(rec, dict) or hasattr(rec, "to_dict")


def group_runs(
    runs: Sequence[Run],
    key: Callable[[Run], Hashable | None],
    make_group: Callable[[list[Run]], Group],
) -> list[Run]:
    """``runs`` with a :class:`~.runs.Group` on those that share a ``key(run)`` (``None``: never grouped);
    ``make_group(members)`` makes each group of two or more. A run with no partner stays alone."""
    members: dict[Hashable, list[int]] = {}
    for i, run in enumerate(runs):
        k = key(run)
        if k is not None:
            members.setdefault(k, []).append(i)
    out = list(runs)
    for indices in members.values():
        if len(indices) < 2:
            continue
        group = make_group([runs[i] for i in indices])
        for i in indices:
            out[i] = replace(runs[i], group=group)
    return out


def run_group(fn, args: tuple, member_args: tuple, progress: bool = True) -> dict:
    """A group's unit of work as the executors see it: ``{"records": [one per member]}``."""
    records = fn(member_args, *args, progress=progress)
    if not isinstance(records, list) or len(records) != len(member_args):
        what = f"{len(records)} records" if isinstance(records, list) else type(records).__name__
        raise TypeError(f"the group function {fn.__qualname__} returned {what} for {len(member_args)} runs")
    for rec in records:
        if not is_record(rec):
            raise TypeError(f"the group function {fn.__qualname__} returned a {type(rec).__name__}, not a record")
    return {"records": records}


def units_of_work(todo: Sequence[Run]) -> list[tuple[Run, list[Run] | None]]:
    """The units of work: ``(run, None)`` for a run alone, ``(unit, members)`` for a group's members to do.

    A group's members keep the order of ``todo`` and are split into near-equal units of at most
    ``max_members``; a unit of one member is that run alone. Units start in the order of their first run.
    """
    by_group: dict[Group, list[Run]] = {}
    for run in todo:
        if run.group is not None:
            by_group.setdefault(run.group, []).append(run)
    units, placed = [], set()
    for run in todo:
        group = run.group
        if group is None:
            units.append((run, None))
            continue
        if group in placed:
            continue
        placed.add(group)
        members = by_group[group]
        chunks = chunk_ranges(len(members), group.max_members)
        for i, chunk in enumerate([members[r.start : r.stop] for r in chunks]):
            if len(chunk) == 1:
                units.append((chunk[0], None))
                continue
            part = f" part {i + 1}/{len(chunks)}" if len(chunks) > 1 else ""
            unit = Run(
                key=f"{group.key}{part} ({len(chunk)} runs)",
                relpath=chunk[0].relpath,
                fn=run_group,
                args=(group.fn, group.args, tuple(m.args for m in chunk)),
                gpu=any(m.gpu for m in chunk),
            )
            units.append((unit, chunk))
    keys = [u.key for u, _ in units]
    if len(set(keys)) != len(keys):
        raise ValueError(f"two groups share a key ({sorted(k for k in keys if keys.count(k) > 1)[0]!r})")
    return units


def parallel_units(executor) -> int:
    """How many units of work ``executor`` runs at once, where it knows (1 where it does not: a cluster)."""
    jobs = getattr(executor, "jobs", None)
    if jobs is not None:
        return jobs
    if getattr(executor, "name", None) == "ray" and executor.address is None:  # a local Ray
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
    parallel = parallel_units(executor)
    if str(device).startswith("cuda") or parallel <= 1 or n_runs < 1:
        return None
    return max(1, -(-n_runs // parallel))
