"""Table 2 of Song & Ermon (2020): bias, variance and MSE of the per-step estimates per MI level."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from ..storage import write_json_atomic, write_text_atomic
from .figures import plot_runs
from .reference import SONG_ERMON_TABLE2
from .staircase import TASKS, load_runs

__all__ = ["LevelStats", "Summary", "summarize", "table_markdown", "summaries_json", "report"]


@dataclass
class LevelStats:
    mi: float
    bias: float  # mean estimate - true MI (signed)
    var: float
    mse: float
    steps: int  # finite per-step estimates pooled over seeds
    non_finite: int = 0
    seeds: int = 0


@dataclass
class Summary:
    task: str
    critic: str
    estimator: str
    levels: list[LevelStats] = field(default_factory=list)
    diverged: list[int] = field(default_factory=list)


def summarize(runs: list[dict]) -> list[Summary]:
    """Bias, variance and MSE of the per-step estimates within each MI level, pooled over seeds."""
    groups: dict[tuple, list[dict]] = {}
    for r in runs:
        c = r["config"]
        groups.setdefault((c["task"], c["critic"], r["estimator"]), []).append(r)
    out = []
    for (task, critic, name), rs in sorted(groups.items()):
        c = rs[0]["config"]
        spl, levels = c["steps_per_level"], c["levels"]
        s = Summary(task, critic, name, diverged=[r["diverged_at"] for r in rs if r["diverged_at"] is not None])
        for li, mi in enumerate(levels):
            vals = []
            for r in rs:
                vals += [v for v in r["estimates"][li * spl : (li + 1) * spl]]
            t = torch.tensor([math.nan if v is None else v for v in vals], dtype=torch.float64)
            finite = t[torch.isfinite(t)]
            if len(finite) < 2:
                s.levels.append(
                    LevelStats(mi, math.nan, math.nan, math.nan, len(finite), len(t) - len(finite), len(rs))
                )
                continue
            err = finite - mi
            s.levels.append(
                LevelStats(
                    mi,
                    float(err.mean()),
                    float(finite.var()),
                    float((err**2).mean()),
                    len(finite),
                    len(t) - len(finite),
                    len(rs),
                )
            )
        out.append(s)
    return out


def _fmt(v: float) -> str:
    if v is None or not math.isfinite(v):
        return "—"
    return f"{v:.2f}" if abs(v) < 1000 else f"{v:.3g}"


def table_markdown(summaries: list[Summary], compare_seed: bool = True) -> str:
    """Table 2's layout: blocks Bias / Var / MSE, rows estimators, columns MI levels per task.

    Bias is shown as |mean - true| as in the paper (the JSON keeps the sign). With
    ``compare_seed``, the seed's value follows in parentheses where the paper reports one.
    """
    by_critic: dict[str, list[Summary]] = {}
    for s in summaries:
        by_critic.setdefault(s.critic, []).append(s)
    lines = []
    for critic, ss in by_critic.items():
        tasks = [t for t in TASKS if any(s.task == t for s in ss)]
        names = list(dict.fromkeys(s.estimator for s in ss))
        levels = {t: next(s for s in ss if s.task == t).levels for t in tasks}
        head = ["", "estimator"] + [
            f"{t.capitalize()} {int(lv.mi) if lv.mi.is_integer() else lv.mi}" for t in tasks for lv in levels[t]
        ]
        lines += [f"### {critic} critic", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for metric in ("bias", "var", "mse"):
            for i, name in enumerate(names):
                cells = [metric.capitalize() if i == 0 else "", name]
                for t in tasks:
                    s = next((s for s in ss if s.task == t and s.estimator == name), None)
                    ref = SONG_ERMON_TABLE2.get(name, {}).get(metric, {}).get(t) if compare_seed else None
                    for li, lvl in enumerate(levels[t]):
                        if s is None or li >= len(s.levels):
                            cells.append("")
                            continue
                        v = getattr(s.levels[li], metric)
                        v = abs(v) if metric == "bias" else v
                        cell = _fmt(v)
                        if ref is not None and lvl.mi in (2, 4, 6, 8, 10):
                            cell += f" ({ref[int(lvl.mi) // 2 - 1]:.2f})"
                        cells.append(cell)
                lines.append("| " + " | ".join(cells) + " |")
        div = [s for s in ss if s.diverged]
        if div:
            lines += [
                "",
                "Diverged (training stopped at step): "
                + "; ".join(f"{s.task} {s.estimator}: {s.diverged}" for s in div),
            ]
        lines.append("")
    if compare_seed:
        lines.append("In parentheses: Song & Ermon (2020), Table 2 (joint critic), where reported.")
    return "\n".join(lines) + "\n"


def summaries_json(summaries: list[Summary]) -> list[dict]:
    return [asdict(s) for s in summaries]


def report(out, log=print) -> str:
    """Rebuilds ``table.md``, ``table.json`` and ``figure1.png`` in ``out`` from every finished run."""
    out = Path(out)
    runs = load_runs(out)
    if not runs:
        raise ValueError(f"no finished runs in {out / 'runs'}")
    summaries = summarize(runs)
    md = table_markdown(summaries)
    write_text_atomic(out / "table.md", "# Ground-truth benchmark (Song & Ermon Table 2 layout)\n\n" + md)
    write_json_atomic(out / "table.json", summaries_json(summaries))
    plot_runs(runs, out / "figure1.png")
    log(md)
    log(f"wrote {out / 'table.md'}, {out / 'table.json'}, {out / 'figure1.png'}")
    return md
