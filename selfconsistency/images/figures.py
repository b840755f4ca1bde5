"""Figures 4, 5, 6 and Table 3 of Song & Ermon (2020) from a :class:`~selfconsistency.images.report.Report`.

One line (or bar) per estimator, the seed spread as error bars, the ideal drawn dashed.
"""

from __future__ import annotations

from pathlib import Path

from ..execution.storage import save_figure_atomic
from ..registry import title as legend_title
from .transforms import TRANSFORMS

__all__ = ["plot_report"]

_DATASET_TITLE = {"digits": "Digits 8×8", "mnist": "MNIST", "cifar10": "CIFAR10"}


def _save(fig, path: Path) -> Path:
    return save_figure_atomic(fig, path)


def _curves(report, setting, prop, ylabel, title, ideal, path):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.6, 3.4))
    drawn = False
    for name in report.estimators:
        pts = [p for p in report.curve(name, setting, prop) if p.mean is not None]
        if not pts:
            continue
        drawn = True
        ts = [p.t for p in pts]
        ax.errorbar(
            ts,
            [p.mean for p in pts],
            yerr=[p.std or 0.0 for p in pts],
            marker="o",
            ms=4,
            lw=1.3,
            capsize=2,
            label=legend_title(name),
        )
    if not drawn:
        plt.close(fig)
        return None
    for y, label in ideal:
        ax.axhline(y, color="black", ls="--", lw=1.0, label=label)
    ax.set_xlabel("Rows used")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, path)


def _table3(report, path):
    import matplotlib.pyplot as plt

    names = [
        n for n in report.estimators if any(s.estimator == n and s.setting in TRANSFORMS for s in report.summaries)
    ]
    if not names:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(8.4, 3.2), sharey=False)
    width = 0.8 / len(names)
    for ax, prop, ideal in ((axes[0], "data-processing", 1.0), (axes[1], "additivity", 2.0)):
        for i, name in enumerate(names):
            xs, ys, es = [], [], []
            for j, tf in enumerate(TRANSFORMS):
                p = next(
                    (s for s in report.summaries if (s.estimator, s.setting, s.property) == (name, tf, prop)), None
                )
                if p is not None and p.mean is not None:
                    xs.append(j - 0.4 + width * (i + 0.5))
                    ys.append(p.mean)
                    es.append(p.std or 0.0)
            ax.bar(xs, ys, width, yerr=es, capsize=2, label=legend_title(name))
        ax.axhline(ideal, color="black", ls="--", lw=1.0, label="Ideal")
        ax.set_xticks(range(len(TRANSFORMS)), [t.capitalize() for t in TRANSFORMS])
        ax.set_title(f"{_DATASET_TITLE.get(report.dataset, report.dataset)} ({prop.replace('-', ' ').title()})")
        ax.set_ylabel("ratio")
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, path)


def plot_report(report, directory) -> list[Path]:
    """Writes ``figure4_<dataset>.png`` (baseline), ``figure5_<dataset>.png`` (data processing),
    ``figure6_<dataset>.png`` (additivity) and ``table3_<dataset>.png`` (transforms) where there is data."""
    import matplotlib

    matplotlib.use("Agg")
    directory = Path(directory)
    ds = report.dataset or "images"
    name = _DATASET_TITLE.get(ds, ds)
    paths = [
        _curves(
            report,
            "baseline",
            "baseline",
            "Î(X; Y) / Î(X; X)",
            f"{name} (Baseline)",
            [(1.0, "Ideal: ≤ 1, 0 at t = 0"), (0.0, None)],
            directory / f"figure4_{ds}.png",
        ),
        _curves(
            report,
            "data-processing",
            "data-processing",
            "Î([X, X]; [Y, h(Y)]) / Î(X; Y)",
            f"{name} (Data Processing)",
            [(1.0, "Ideal")],
            directory / f"figure5_{ds}.png",
        ),
        _curves(
            report,
            "additivity",
            "additivity",
            "Î([X1, X2]; [Y1, Y2]) / Î(X; Y)",
            f"{name} (Additivity)",
            [(2.0, "Ideal")],
            directory / f"figure6_{ds}.png",
        ),
        _table3(report, directory / f"table3_{ds}.png"),
    ]
    return [p for p in paths if p is not None]
