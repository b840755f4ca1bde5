"""The staircase benchmark end to end: runs (:mod:`.staircase`), grouped into ensembles (:mod:`.ensembles`),
executed and stored (:mod:`selfconsistency.execution`); ``selfconsistency bench`` calls :func:`run_benchmark`."""

from __future__ import annotations

from ..execution import execute, parallel_cap
from .ensembles import group_runs
from .records import StaircaseRecord
from .staircase import bench_runs

__all__ = ["run_benchmark"]


def run_benchmark(
    estimators,
    cfg,
    seeds=(0,),
    out="bench",
    device=None,
    progress=True,
    log=print,
    executor=None,
    ensemble="auto",
    max_members=None,
) -> list[StaircaseRecord]:
    """Runs every (estimator, seed) of ``cfg`` (one :class:`~.config.BenchConfig` or several) not already
    finished in ``out``; returns all their records.

    ``executor``: where the runs execute (default in this process, one after another; see
    :mod:`selfconsistency.execution.executors`). Failed runs are recorded and raise
    :class:`~selfconsistency.execution.RunsFailed` at the end, after the others finished.
    ``ensemble``: ``"auto"`` trains the runs that can share one model (the seeds of an estimator) as
    ensembles, ``max_members`` at most in one (``None``: as many as fit the memory; on the CPU with an
    executor running P units at once, also at most ``ceil(runs / P)``:
    :func:`~selfconsistency.execution.parallel_cap`), each run's record written as its own; ``"off"``: one
    by one (see :mod:`.ensembles`).
    """
    runs = bench_runs(estimators, cfg, seeds, device)
    if max_members is None and runs:
        max_members = parallel_cap(len(runs), executor, runs[0].args[0].device)
    runs = group_runs(runs, ensemble=ensemble, max_members=max_members)
    outcome = execute(runs, out, executor, progress=progress, log=log, desc="bench")
    return list(outcome.records.values())
