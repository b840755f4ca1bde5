r"""The benchmark's pictures: Figure 1 of Song & Ermon (2020), the per-step estimates of each run on the
staircase (:func:`plot_runs`), and the finite-sample protocol's heatmap of :math:`\log_2(\hat I / I)` in the
layout of Czyż et al. (2023, Fig. 2) (:func:`plot_heatmap`)."""

from __future__ import annotations

import math
from pathlib import Path

import torch

from ..execution.storage import save_figure_atomic
from ..registry import title as legend_title
from .config import TASKS
from .records import StaircaseRecord

__all__ = ["plot_runs", "plot_heatmap", "figure_name"]


def figure_name(stem: str, i: int) -> str:
    """The file of the ``i``-th protocol's figure (protocols are never pooled): ``stem.png``, ``stem_2.png`` ..."""
    return f"{stem}.png" if i == 0 else f"{stem}_{i + 1}.png"


def plot_runs(runs: list[dict], path, smooth: float | None = None) -> Path:
    """Figure 1's layout: rows = tasks, columns = estimators; per critic the raw per-step estimates
    (light) and their exponential moving average (dark), the true MI and log(batch size).

    ``smooth``: the moving average's weight of the newest step; default 40 / steps per level
    (0.01 for the paper's 4000 steps), so the average settles within each level also on short runs.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = [StaircaseRecord.coerce(r) for r in runs]
    tasks = [t for t in TASKS if any(r.config.task == t for r in runs)]
    names = list(dict.fromkeys(r.estimator for r in runs))
    critics = list(dict.fromkeys(r.config.critic for r in runs))
    colors = {c: col for c, col in zip(critics, ("tab:blue", "tab:orange", "tab:green"), strict=False)}
    fig, axes = plt.subplots(
        len(tasks), len(names), figsize=(3.2 * len(names), 2.8 * len(tasks)), squeeze=False, sharex=True, sharey=True
    )
    top = 0.0
    for ti, task in enumerate(tasks):
        for ni, name in enumerate(names):
            ax = axes[ti][ni]
            rs = [r for r in runs if r.config.task == task and r.estimator == name]
            for r in rs:
                c = r.config
                rate = smooth if smooth is not None else min(1.0, 40 / c.steps_per_level)
                est = torch.tensor([math.nan if v is None else v for v in r.estimates], dtype=torch.float64)
                steps = torch.arange(len(est))
                ax.plot(steps, est, color=colors[c.critic], alpha=0.25, lw=0.5)
                ema, acc = [], None
                for v in est.tolist():
                    if math.isfinite(v):
                        acc = v if acc is None else (1 - rate) * acc + rate * v
                    ema.append(math.nan if acc is None else acc)
                label = f"{c.critic} critic" if r.seed == rs[0].seed else None
                ax.plot(steps, ema, color=colors[c.critic], lw=1.3, label=label)
                true = [m for m in c.levels for _ in range(c.steps_per_level)]
                top = max(top, max(c.levels))
            if rs:
                c = rs[0].config
                ax.plot(range(len(true)), true, color="black", lw=1.0, label="True MI")
                ax.axhline(math.log(c.batch_size), color="gray", ls="--", lw=0.8, label="log(bs)")
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


def plot_heatmap(p: dict, path, title: str = "") -> Path:
    """Tasks (rows, true MI in the label) x estimators (columns), colour :math:`\\log_2(\\hat I/I)` in [-2, 2]
    (grey where the estimate is <= 0 and has no ratio), the mean estimate written in each cell."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks, ests = list(p["tasks"]), p["estimators"]
    grid = [[p["cells"].get((t, e), {}).get("log2_ratio", math.nan) for e in ests] for t in tasks]
    fig, ax = plt.subplots(figsize=(1.1 * len(ests) + 4.5, 0.32 * len(tasks) + 1.6))
    # an estimate <= 0 of a positive MI has no ratio: grey, not the white of "right"
    cmap = matplotlib.colormaps["RdBu_r"].with_extremes(bad="0.6")
    im = ax.imshow(grid, cmap=cmap, vmin=-2, vmax=2, aspect="auto")
    ax.set_xticks(range(len(ests)), ests, rotation=30, ha="right")
    ax.set_yticks(range(len(tasks)), [f"{t}  ({p['tasks'][t]:.2f})" for t in tasks], fontsize=7)
    for i, row in enumerate(grid):
        for j, v in enumerate(row):
            c = p["cells"].get((tasks[i], ests[j]))
            if c is not None:
                text = f"{c['mean']:.2f}" if math.isfinite(c["mean"]) else "nan"
                ax.text(j, i, text, ha="center", va="center", fontsize=6, color="k" if abs(v) < 1.2 or v != v else "w")
    fig.colorbar(im, ax=ax, label="log2(estimate / true MI)")
    ax.set_title(
        (title + "\n" if title else "") + "held-out estimate (nats); colour: log2(estimate / true MI), "
        "grey: estimate <= 0",
        fontsize=9,
    )
    fig.tight_layout()
    try:
        return save_figure_atomic(fig, path)
    finally:
        plt.close(fig)
