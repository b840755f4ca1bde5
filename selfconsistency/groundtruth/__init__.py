"""The ground-truth benchmark: estimators trained on tasks with known MI (Song & Ermon App. B.1).

* :mod:`.staircase` — the runs (one per task, estimator and seed) and their records;
* :mod:`.ensembles` — compatible runs trained as one batched model, each record written as its own;
* :mod:`.table` — Table 2 (bias, variance, MSE per MI level) from the finished runs;
* :mod:`.figures` — Figure 1 (the per-step estimates);
* :mod:`.reference` — the published numbers printed beside ours;
* :mod:`.finite`, :mod:`.finite_report` — the finite-sample protocol on any task of :mod:`micore.tasks`
  (N samples, held-out split, early stopping; table, CSV and the log2-ratio heatmap).
"""

from ..runner import execute
from . import finite
from .figures import plot_runs
from .finite import FiniteConfig, finite_runs, run_finite_benchmark
from .finite_report import finite_report
from .staircase import QUICK, TASKS, BenchConfig, load_runs, run_benchmark, run_one
from .table import report, summarize, table_markdown

__all__ = [
    "BenchConfig",
    "QUICK",
    "TASKS",
    "run_benchmark",
    "run_one",
    "load_runs",
    "summarize",
    "table_markdown",
    "plot_runs",
    "report",
    "finite",
    "FiniteConfig",
    "finite_runs",
    "run_finite_benchmark",
    "finite_report",
    "execute",
]
