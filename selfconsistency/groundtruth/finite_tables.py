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

from ..execution.storage import write_outputs
from .config import FINITE_ESTIMATORS
from .figures import figure_name, plot_heatmap
from .finite import load_finite
from .records import FiniteRecord

__all__ = ["summarize_finite", "finite_markdown", "finite_csv", "finite_report", "CSV_FIELDS"]

CSV_FIELDS = (
    "task", "true_mi", "estimator", "kind", "seed", "value", "stderr", "train_value", "log2_ratio", "steps",
    "best_step", "stopped", "seconds", "n", "critic", "flags",
)  # fmt: skip


def _protocol(rec: FiniteRecord) -> str:
    c = rec.config
    return f"n={c.n}, {c.critic} critic, max {c.max_steps} steps, patience {c.patience}x{c.eval_every}"


def _log2_ratio(value: float | None, truth: float) -> float:
    if value is None or not (math.isfinite(value) and truth > 0) or value <= 0:
        return math.nan  # a non-positive estimate of a positive MI has no ratio; the table shows the value
    return math.log2(value / truth)


def summarize_finite(recs) -> dict[str, dict]:
    """``{protocol: {"tasks": {task: true MI}, "cells": {(task, estimator): stats}, "estimators": [...]}}`` of
    the records ``recs`` (:class:`~.records.FiniteRecord`, or their dicts)."""
    out: dict[str, dict] = {}
    for r in map(FiniteRecord.coerce, recs):
        p = out.setdefault(_protocol(r), {"tasks": {}, "estimators": [], "cells": {}})
        p["tasks"].setdefault(r.task, r.true_mi)
        if r.estimator not in p["estimators"]:
            p["estimators"].append(r.estimator)
        p["cells"].setdefault((r.task, r.estimator), []).append(r)
    order = {name: i for i, name in enumerate(FINITE_ESTIMATORS)}
    for p in out.values():
        p["estimators"].sort(key=lambda e: (order.get(e, len(order)), e))  # the order, then by name
        for key, rs in p["cells"].items():
            vals = [x.value for x in rs if x.value is not None and math.isfinite(x.value)]
            mean = statistics.fmean(vals) if vals else math.nan
            p["cells"][key] = {
                "mean": mean,
                "sd": statistics.stdev(vals) if len(vals) > 1 else math.nan,
                "seeds": len(rs),
                "log2_ratio": _log2_ratio(mean, rs[0].true_mi),
                "seconds": statistics.fmean(x.seconds for x in rs),
                "flags": sorted({f for x in rs for f in x.flags}),
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


def finite_csv(recs) -> str:
    """One row per run, the columns of :data:`CSV_FIELDS`."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(CSV_FIELDS)
    for r in sorted(map(FiniteRecord.coerce, recs), key=lambda r: (r.task, r.estimator, r.seed)):
        w.writerow(
            [
                r.task,
                r.true_mi,
                r.estimator,
                r.kind or "",
                r.seed,
                r.value,
                r.stderr,
                r.train_value,
                _log2_ratio(r.value, r.true_mi),
                r.steps,
                r.best_step,
                r.stopped,
                r.seconds,
                r.config.n,
                r.config.critic,
                ";".join(r.flags),
            ]  # fmt: skip
        )
    return buf.getvalue()


def _heatmap(p: dict, title: str):
    return lambda path: plot_heatmap(p, path, title)


def finite_report(out, log=print) -> str:
    """Rebuilds ``finite.md``, ``finite.json``, ``finite.csv`` and ``finite_heatmap*.png`` in ``out``."""
    recs = load_finite(out, required=True)
    summary = summarize_finite(recs)
    md = finite_markdown(summary)
    js = {
        protocol: {
            "tasks": p["tasks"],
            "estimators": p["estimators"],
            "cells": [{"task": t, "estimator": e, **c} for (t, e), c in p["cells"].items()],
        }
        for protocol, p in summary.items()
    }
    figures = [(figure_name("finite_heatmap", i), _heatmap(p, title)) for i, (title, p) in enumerate(summary.items())]
    files = {"finite.md": "# Finite-sample benchmark\n\n" + md, "finite.json": js, "finite.csv": finite_csv(recs)}
    log(md)  # before writing: shown even where out cannot be written
    write_outputs(Path(out), files, figures, log)
    return md
