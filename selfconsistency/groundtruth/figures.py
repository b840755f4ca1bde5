"""Figure 1 of Song & Ermon (2020): the per-step estimates of each run on the staircase."""

from __future__ import annotations

import math
from pathlib import Path

import torch

from ..registry import title as legend_title
from ..storage import save_figure_atomic
from .staircase import TASKS

__all__ = ["plot_runs"]


def plot_runs(runs: list[dict], path, smooth: float | None = None) -> Path:
    """Figure 1's layout: rows = tasks, columns = estimators; per critic the raw per-step estimates
    (light) and their exponential moving average (dark), the true MI and log(batch size).

    ``smooth``: the moving average's weight of the newest step; default 40 / steps per level
    (0.01 for the paper's 4000 steps), so the average settles within each level also on short runs.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = [t for t in TASKS if any(r["config"]["task"] == t for r in runs)]
    names = list(dict.fromkeys(r["estimator"] for r in runs))
    critics = list(dict.fromkeys(r["config"]["critic"] for r in runs))
    colors = {c: col for c, col in zip(critics, ("tab:blue", "tab:orange", "tab:green"), strict=False)}
    fig, axes = plt.subplots(
        len(tasks), len(names), figsize=(3.2 * len(names), 2.8 * len(tasks)), squeeze=False, sharex=True, sharey=True
    )
    top = 0.0
    for ti, task in enumerate(tasks):
        for ni, name in enumerate(names):
            ax = axes[ti][ni]
            rs = [r for r in runs if r["config"]["task"] == task and r["estimator"] == name]
            for r in rs:
                c = r["config"]
                rate = smooth if smooth is not None else min(1.0, 40 / c["steps_per_level"])
                est = torch.tensor([math.nan if v is None else v for v in r["estimates"]], dtype=torch.float64)
                steps = torch.arange(len(est))
                ax.plot(steps, est, color=colors[c["critic"]], alpha=0.25, lw=0.5)
                ema, acc = [], None
                for v in est.tolist():
                    if math.isfinite(v):
                        acc = v if acc is None else (1 - rate) * acc + rate * v
                    ema.append(math.nan if acc is None else acc)
                label = f"{c['critic']} critic" if r["seed"] == rs[0]["seed"] else None
                ax.plot(steps, ema, color=colors[c["critic"]], lw=1.3, label=label)
                true = [m for m in c["levels"] for _ in range(c["steps_per_level"])]
                top = max(top, max(c["levels"]))
            if rs:
                c = rs[0]["config"]
                ax.plot(range(len(true)), true, color="black", lw=1.0, label="True MI")
                ax.axhline(math.log(c["batch_size"]), color="gray", ls="--", lw=0.8, label="log(bs)")
            if ti == 0:
                ax.set_title(legend_title(name))
            if ti == len(tasks) - 1:
                ax.set_xlabel("Steps")
            if ni == 0:
                ax.set_ylabel(f"{task.capitalize()}\nMI (nats)")
    for ax in axes.flat:
        ax.set_ylim(-0.5, top * 1.25 + 0.5)
    axes[0][-1].legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    return save_figure_atomic(fig, path)
