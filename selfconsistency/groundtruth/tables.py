"""Table 2 of Song & Ermon (2020): bias, variance and MSE of the per-step estimates per MI level.

Runs of different protocols (critic, MI levels, steps per level, batch size, lr, dimension) are never
pooled or tabulated together: each protocol gets its own table, whose heading states it, and the
paper's numbers appear only beside runs of the paper's own protocol (:data:`PAPER_PROTOCOL`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from ..execution.storage import write_outputs
from .config import TASKS, BenchConfig
from .figures import figure_name, plot_runs
from .records import StaircaseRecord
from .reference import MI_LEVELS, SONG_ERMON_TABLE2
from .staircase import load_runs

__all__ = [
    "LevelStats",
    "Summary",
    "PAPER_PROTOCOL",
    "protocol_of",
    "protocols",
    "summarize",
    "table_markdown",
    "summaries_json",
    "report",
]

# Song & Ermon App. B.1, the protocol of their Table 2 (joint critic): only runs made with it are
# comparable with the numbers in reference.py
PAPER_PROTOCOL = dict(
    critic="joint",
    levels=[float(m) for m in MI_LEVELS],
    steps_per_level=4000,
    batch_size=64,
    lr=5e-4,
    dim=20,
    precision="fp32",
)


def protocol_of(config: BenchConfig | dict) -> dict:
    """The part of a run's config that makes runs comparable (all of it but the task); a config
    without ``precision`` (fp32, and every run made before the option) is fp32."""
    config = {"precision": "fp32", **(config.to_dict() if isinstance(config, BenchConfig) else config)}
    return {k: [float(m) for m in config[k]] if k == "levels" else config[k] for k in PAPER_PROTOCOL}


def _key(protocol: dict) -> tuple:
    return tuple(tuple(v) if isinstance(v, list) else v for v in protocol.values())


def _heading(protocol: dict) -> str:
    levels = ", ".join(f"{m:g}" for m in protocol["levels"])
    return (
        f"{protocol['critic']} critic, MI {levels} nats, {protocol['steps_per_level']} steps per level, "
        f"batch {protocol['batch_size']}, lr {protocol['lr']:g}, dim {protocol['dim']}"
        + ("" if protocol["precision"] == "fp32" else f", {protocol['precision']}")
    )


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
    protocol: dict = field(default_factory=dict)  # see protocol_of


def summarize(runs) -> list[Summary]:
    """Bias, variance and MSE of the per-step estimates within each MI level, pooled over the seeds of
    one task, estimator and protocol (runs of different protocols are never pooled). ``runs``:
    :class:`~.records.StaircaseRecord` (or their dicts)."""
    groups: dict[tuple, list[StaircaseRecord]] = {}
    for r in map(StaircaseRecord.coerce, runs):
        groups.setdefault((_key(protocol_of(r.config)), r.config.task, r.estimator), []).append(r)
    out = []
    for (_, task, name), rs in sorted(groups.items(), key=lambda kv: (str(kv[0][0]), *kv[0][1:])):
        c = rs[0].config
        spl, levels = c.steps_per_level, c.levels
        diverged = [r.diverged_at for r in rs if r.diverged_at is not None]
        s = Summary(task, c.critic, name, diverged=diverged, protocol=protocol_of(c))
        for li, mi in enumerate(levels):
            vals = []
            for r in rs:
                vals += [v for v in r.estimates[li * spl : (li + 1) * spl]]
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


def protocols(summaries: list[Summary]) -> list[dict]:
    """The protocols of ``summaries``, the paper's first, then in a fixed order."""
    found = {_key(s.protocol): s.protocol for s in summaries}
    return [found[k] for k in sorted(found, key=lambda k: (found[k] != PAPER_PROTOCOL, str(k)))]


def _block(ss: list[Summary], compare_seed: bool) -> list[str]:
    """One protocol's table: blocks Bias / Var / MSE, rows estimators, columns MI levels per task."""
    tasks = [t for t in TASKS if any(s.task == t for s in ss)]
    names = list(dict.fromkeys(s.estimator for s in ss))
    levels = ss[0].protocol["levels"]
    head = ["", "estimator"] + [f"{t.capitalize()} {m:g}" for t in tasks for m in levels]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for metric in ("bias", "var", "mse"):
        for i, name in enumerate(names):
            cells = [metric.capitalize() if i == 0 else "", name]
            for t in tasks:
                s = next((s for s in ss if s.task == t and s.estimator == name), None)
                ref = SONG_ERMON_TABLE2.get(name, {}).get(metric, {}).get(t) if compare_seed else None
                for li, mi in enumerate(levels):
                    if s is None:
                        cells.append("")
                        continue
                    v = getattr(s.levels[li], metric)
                    cell = _fmt(abs(v) if metric == "bias" else v)
                    if ref is not None:
                        cell += f" ({ref[MI_LEVELS.index(int(mi))]:.2f})"
                    cells.append(cell)
            lines.append("| " + " | ".join(cells) + " |")
    div = [s for s in ss if s.diverged]
    if div:
        lines += [
            "",
            "Diverged (training stopped at step): " + "; ".join(f"{s.task} {s.estimator}: {s.diverged}" for s in div),
        ]
    return lines


def table_markdown(summaries: list[Summary], compare_seed: bool = True) -> str:
    """Table 2's layout, one table per protocol under a heading that states it.

    Bias is shown as |mean - true| as in the paper (the JSON keeps the sign). With ``compare_seed``,
    the paper's value follows in parentheses where it reports one, in the table of the paper's own
    protocol only: other protocols (``--quick``, other levels or steps) say that they are not comparable.
    """
    lines = []
    for protocol in protocols(summaries):
        papers = protocol == PAPER_PROTOCOL
        lines += [f"### {_heading(protocol)}", ""]
        if compare_seed and papers:
            lines += ["Song & Ermon's protocol. In parentheses: their Table 2 (joint critic), where reported.", ""]
        elif compare_seed:
            lines += [
                f"Not Song & Ermon's protocol ({_heading(PAPER_PROTOCOL)}): their Table 2 is not comparable "
                "and is not shown.",
                "",
            ]
        ss = [s for s in summaries if s.protocol == protocol]
        lines += _block(ss, compare_seed and papers) + [""]
    return "\n".join(lines)


def summaries_json(summaries: list[Summary]) -> list[dict]:
    return [asdict(s) for s in summaries]


def _figure1(runs: list[StaircaseRecord], protocol: dict):
    mine = [r for r in runs if protocol_of(r.config) == protocol]
    return lambda path: plot_runs(mine, path)


def report(out, log=print) -> str:
    """Rebuilds ``table.md``, ``table.json`` and Figure 1 in ``out`` from every finished run, and logs the table.

    The table is logged before anything is written, so it is shown even where ``out`` cannot be written
    (then :class:`~selfconsistency.execution.NotWritten` names the files that could not be). Figure 1 is
    ``figure1.png`` for the first protocol of the table, ``figure1_2.png`` ... for the others.
    """
    runs = load_runs(out, required=True)
    summaries = summarize(runs)
    md = table_markdown(summaries)
    log(md)
    files = {
        "table.md": "# Ground-truth benchmark (Song & Ermon Table 2 layout)\n\n" + md,
        "table.json": summaries_json(summaries),
    }
    figures = [(figure_name("figure1", i), _figure1(runs, protocol)) for i, protocol in enumerate(protocols(summaries))]
    write_outputs(Path(out), files, figures, log)
    return md
