"""Tables and the heatmap of the finite-sample protocol (:mod:`.finite`).

Per protocol (sample size and critic; never pooled): a task x estimator table of the mean held-out estimate
± its sd over seeds beside the true MI, a CSV with one row per run, a JSON summary, and the field's picture:
a heatmap of :math:`\\log_2(\\hat I / I)` (0 = right, -1 = half the truth, +1 = twice), the true MI written in
each row's label, as in Czyż et al. (2023, Fig. 2).
"""

from __future__ import annotations

import csv
import io
import math
import statistics
from pathlib import Path

from ..storage import save_figure_atomic, write_all, write_json_atomic, write_text_atomic
from .finite import DEFAULT_ESTIMATORS, load_finite

__all__ = ["summarize_finite", "finite_markdown", "finite_csv", "plot_heatmap", "finite_report", "CSV_FIELDS"]

CSV_FIELDS = (
    "task", "true_mi", "estimator", "kind", "seed", "value", "stderr", "train_value", "log2_ratio", "steps",
    "best_step", "stopped", "seconds", "n", "critic", "flags",
)  # fmt: skip


def _protocol(rec: dict) -> str:
    c = rec["config"]
    return f"n={c['n']}, {c['critic']} critic, max {c['max_steps']} steps, patience {c['patience']}x{c['eval_every']}"


def _log2_ratio(value: float, truth: float) -> float:
    if not (math.isfinite(value) and truth > 0) or value <= 0:
        return math.nan  # a non-positive estimate of a positive MI has no ratio; the table shows the value
    return math.log2(value / truth)


def summarize_finite(recs: list[dict]) -> dict[str, dict]:
    """``{protocol: {"tasks": {task: true MI}, "cells": {(task, estimator): stats}, "estimators": [...]}}``."""
    out: dict[str, dict] = {}
    for r in recs:
        p = out.setdefault(_protocol(r), {"tasks": {}, "estimators": [], "cells": {}})
        p["tasks"].setdefault(r["task"], r["true_mi"])
        if r["estimator"] not in p["estimators"]:
            p["estimators"].append(r["estimator"])
        p["cells"].setdefault((r["task"], r["estimator"]), []).append(r)
    order = {name: i for i, name in enumerate(DEFAULT_ESTIMATORS)}
    for p in out.values():
        p["estimators"].sort(key=lambda e: (order.get(e, len(order)), e))  # the order, then by name
        for key, rs in p["cells"].items():
            vals = [x["value"] for x in rs if x["value"] is not None and math.isfinite(x["value"])]
            mean = statistics.fmean(vals) if vals else math.nan
            p["cells"][key] = {
                "mean": mean,
                "sd": statistics.stdev(vals) if len(vals) > 1 else math.nan,
                "seeds": len(rs),
                "log2_ratio": _log2_ratio(mean, rs[0]["true_mi"]),
                "seconds": statistics.fmean(x["seconds"] for x in rs),
                "flags": sorted({f for x in rs for f in x.get("flags", [])}),
            }
    return out


def finite_markdown(summary: dict[str, dict]) -> str:
    parts = []
    for protocol, p in summary.items():
        ests = p["estimators"]
        lines = [
            f"### {protocol}",
            "",
            "| task | true MI | " + " | ".join(ests) + " |",
            "|---|---|" + "---|" * len(ests),
        ]
        for task, truth in p["tasks"].items():
            row = []
            for e in ests:
                c = p["cells"].get((task, e))
                if c is None:
                    row.append("")
                    continue
                sd = "" if math.isnan(c["sd"]) else f" ± {c['sd']:.2f}"
                flag = " *" if c["flags"] else ""
                row.append(f"{c['mean']:.2f}{sd}{flag}")
            lines.append(f"| {task} | {truth:.2f} | " + " | ".join(row) + " |")
        runs = sum(c["seeds"] for c in p["cells"].values())
        seconds = sum(c["seconds"] * c["seeds"] for c in p["cells"].values())
        lines.append("")
        lines.append(
            f"Mean held-out estimate ± sd over seeds (nats); * = a diagnostic flag fired in some seed. "
            f"{runs} runs, {seconds / 60:.1f} min of training in all."
        )
        parts.append("\n".join(lines))
    return "\n\n".join(parts)


def finite_csv(recs: list[dict]) -> str:
    """One row per run, the columns of :data:`CSV_FIELDS`."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(CSV_FIELDS)
    for r in sorted(recs, key=lambda r: (r["task"], r["estimator"], r["seed"])):
        c = r["config"]
        w.writerow(
            [
                r["task"],
                r["true_mi"],
                r["estimator"],
                r.get("kind", ""),
                r["seed"],
                r["value"],
                r.get("stderr"),
                r.get("train_value"),
                _log2_ratio(r["value"], r["true_mi"]),
                r["steps"],
                r.get("best_step"),
                r["stopped"],
                r["seconds"],
                c["n"],
                c["critic"],
                ";".join(r.get("flags", [])),
            ]  # fmt: skip
        )
    return buf.getvalue()


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


def finite_report(out, log=print) -> str:
    """Rebuilds ``finite.md``, ``finite.json``, ``finite.csv`` and ``finite_heatmap*.png`` in ``out``."""
    out = Path(out)
    recs = load_finite(out)
    if not recs:
        raise ValueError(f"no finished finite-sample runs in {out / 'finite'}")
    summary = summarize_finite(recs)
    md = finite_markdown(summary)
    log(md)
    js = {
        protocol: {
            "tasks": p["tasks"],
            "estimators": p["estimators"],
            "cells": [{"task": t, "estimator": e, **c} for (t, e), c in p["cells"].items()],
        }
        for protocol, p in summary.items()
    }
    writers = [
        (out / "finite.md", lambda: write_text_atomic(out / "finite.md", "# Finite-sample benchmark\n\n" + md)),
        (out / "finite.json", lambda: write_json_atomic(out / "finite.json", js)),
        (out / "finite.csv", lambda: write_text_atomic(out / "finite.csv", finite_csv(recs))),
    ]
    for i, (protocol, p) in enumerate(summary.items()):
        path = out / ("finite_heatmap.png" if i == 0 else f"finite_heatmap_{i + 1}.png")
        writers.append((path, lambda p=p, path=path, protocol=protocol: plot_heatmap(p, path, protocol)))
    written = write_all(writers)
    log("wrote " + ", ".join(str(p) for p in written))
    return md
