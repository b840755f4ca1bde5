"""The ground-truth benchmark: estimators trained on tasks with known MI (Song & Ermon App. B.1), ``bench``.

* :mod:`.config` — the protocols and the defaults the command reads (:class:`BenchConfig`, :class:`FiniteConfig`);
* :mod:`.staircase` — one run per (task, estimator, seed) on the staircase (:class:`~.staircase.StaircaseRun`);
* :mod:`.ensembles` — compatible runs trained as one batched model, each record written as its own;
* :mod:`.bench` — :func:`run_benchmark`: the staircase runs, grouped, executed and stored;
* :mod:`.finite` — the finite-sample protocol on any task of :mod:`micore.tasks`;
* :mod:`.records` — the typed records of both (:class:`~.records.StaircaseRecord`, :class:`~.records.FiniteRecord`);
* :mod:`.tables`, :mod:`.finite_tables` — Table 2 (bias, variance, MSE per level), the finite table and CSV;
* :mod:`.figures` — Figure 1 (the per-step estimates) and the finite protocol's heatmap;
* :mod:`.reference` — the published numbers printed beside ours.
"""

from ..execution import execute
from . import finite
from .bench import run_benchmark
from .config import QUICK, TASKS, BenchConfig, FiniteConfig
from .figures import plot_heatmap, plot_runs
from .finite import finite_runs, run_finite_benchmark
from .finite_tables import finite_report
from .records import FiniteRecord, StaircaseRecord
from .staircase import StaircaseRun, load_runs, run_one
from .tables import report, summarize, table_markdown

__all__ = [
    "BenchConfig",
    "FiniteConfig",
    "QUICK",
    "TASKS",
    "StaircaseRun",
    "StaircaseRecord",
    "FiniteRecord",
    "run_benchmark",
    "run_one",
    "load_runs",
    "summarize",
    "table_markdown",
    "plot_runs",
    "plot_heatmap",
    "report",
    "finite",
    "finite_runs",
    "run_finite_benchmark",
    "finite_report",
    "execute",
]
