"""The ground-truth benchmark: estimators trained on tasks with known MI (Song & Ermon App. B.1).

* :mod:`.staircase` — the runs (one per task, estimator and seed) and their records;
* :mod:`.table` — Table 2 (bias, variance, MSE per MI level) from the finished runs;
* :mod:`.figures` — Figure 1 (the per-step estimates);
* :mod:`.reference` — the published numbers printed beside ours.
"""

from .figures import plot_runs
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
]
