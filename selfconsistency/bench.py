"""The ground-truth benchmark of Song & Ermon App. B.1 (Table 2, Figure 1).

Each estimator is trained on the staircase (MI 2, 4, 6, 8, 10 nats, 4k steps each, batch 64,
Adam lr 5e-4) of the 20-d Gaussian or Cubic task; the estimate on every training batch (drawn
fresh, before the update on it) is recorded. Each finished run is written at once, atomically, to
``OUT/runs/``; re-running skips finished runs. The table (bias, variance, MSE per MI level)
and the figure are rebuilt from all runs found in ``OUT``.
"""
from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from micore import TrainingDiverged
from micore.tasks import Staircase

from .reference import SONG_ERMON_TABLE2
from .registry import make_factory
from .storage import read_json, save_figure_atomic, write_json_atomic, write_text_atomic

__all__ = ["BenchConfig", "run_benchmark", "summarize", "table_markdown", "plot_runs", "QUICK"]

TASKS = ("gaussian", "cubic")


@dataclass(frozen=True)
class BenchConfig:
    """One benchmark protocol; the defaults are the seed's (Song & Ermon App. B.1)."""

    task: str = "gaussian"
    critic: str = "joint"
    levels: tuple[float, ...] = (2.0, 4.0, 6.0, 8.0, 10.0)
    steps_per_level: int = 4000
    batch_size: int = 64
    lr: float = 5e-4
    dim: int = 20

    def __post_init__(self):
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {self.task!r}")
        if self.critic not in ("joint", "separable"):
            raise ValueError(f'critic must be "joint" or "separable" for the benchmark, got {self.critic!r}')
        object.__setattr__(self, "levels", tuple(float(m) for m in self.levels))

    def staircase(self) -> Staircase:
        return Staircase(self.levels, self.steps_per_level, self.dim, cubic=self.task == "cubic")


# The README's quick default: the seed's architecture and batch, a short staircase (about a minute
# on 2 CPU cores).
QUICK = dict(estimators=("cpc", "nwj", "smile:5"), levels=(2.0, 4.0, 6.0), steps_per_level=200)


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9.-]+", "_", name)


def run_path(out: Path, cfg: BenchConfig, name: str, seed: int) -> Path:
    return Path(out) / "runs" / f"{cfg.task}_{cfg.critic}_{_slug(name)}_seed{seed}.json"


def run_one(name: str, cfg: BenchConfig, seed: int, device=None, progress: bool = True) -> dict:
    """Trains one estimator on the staircase and returns its per-step record."""
    torch.manual_seed(seed)  # weight initialisation
    est = make_factory(name, critic=cfg.critic)((cfg.dim,), (cfg.dim,))
    record = {"estimator": name, "seed": seed, "config": asdict(cfg), "kind": est.kind, "diverged_at": None}
    try:
        hist = est.fit(cfg.staircase(), batch_size=cfg.batch_size, lr=cfg.lr, seed=seed, device=device,
                       progress=progress, desc=f"{cfg.task} {name} seed {seed}")
    except TrainingDiverged as err:
        hist = err.history
        record["diverged_at"] = err.step
    record.update(estimates=hist.estimate, seconds=hist.seconds, device=hist.device,
                  steps_per_second=len(hist.loss) / hist.seconds if hist.seconds > 0 else None)
    return record


def run_benchmark(estimators, cfg: BenchConfig, seeds=(0,), out="bench", device=None, progress=True,
                  log=print) -> list[dict]:
    """Runs every (estimator, seed) not already finished in ``out``; returns all their records."""
    out = Path(out)
    factories_checked = [make_factory(name, critic=cfg.critic) for name in estimators]  # fail fast on bad names
    del factories_checked
    records = []
    for name in estimators:
        for seed in seeds:
            path = run_path(out, cfg, name, seed)
            if path.exists():
                rec = read_json(path)
                if rec.get("config") != _jsonable(asdict(cfg)):
                    raise ValueError(f"{path} was made with another protocol ({rec.get('config')}); "
                                     "use another --out directory")
                log(f"[skip] {cfg.task} {name} seed {seed}: finished earlier ({path})")
            else:
                rec = run_one(name, cfg, seed, device, progress)
                write_json_atomic(path, rec)
                status = f"diverged at step {rec['diverged_at']}" if rec["diverged_at"] is not None else "done"
                log(f"[{status}] {cfg.task} {name} seed {seed}: {rec['seconds']:.0f} s -> {path}")
            records.append(rec)
    return records


def _jsonable(d: dict) -> dict:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}


def load_runs(out) -> list[dict]:
    return [read_json(p) for p in sorted((Path(out) / "runs").glob("*.json"))]


@dataclass
class LevelStats:
    mi: float
    bias: float          # mean estimate - true MI (signed)
    var: float
    mse: float
    steps: int           # finite per-step estimates pooled over seeds
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
                vals += [v for v in r["estimates"][li * spl:(li + 1) * spl]]
            t = torch.tensor([math.nan if v is None else v for v in vals], dtype=torch.float64)
            finite = t[torch.isfinite(t)]
            if len(finite) < 2:
                s.levels.append(LevelStats(mi, math.nan, math.nan, math.nan, len(finite), len(t) - len(finite), len(rs)))
                continue
            err = finite - mi
            s.levels.append(LevelStats(mi, float(err.mean()), float(finite.var()), float((err ** 2).mean()),
                                       len(finite), len(t) - len(finite), len(rs)))
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
        head = ["", "estimator"] + [f"{t.capitalize()} {int(l.mi) if l.mi.is_integer() else l.mi}"
                                    for t in tasks for l in levels[t]]
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
            lines += ["", "Diverged (training stopped at step): " +
                      "; ".join(f"{s.task} {s.estimator}: {s.diverged}" for s in div)]
        lines.append("")
    if compare_seed:
        lines.append("In parentheses: Song & Ermon (2020), Table 2 (joint critic), where reported.")
    return "\n".join(lines) + "\n"


def summaries_json(summaries: list[Summary]) -> list[dict]:
    return [asdict(s) for s in summaries]


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
    colors = {c: col for c, col in zip(critics, ("tab:blue", "tab:orange", "tab:green"))}
    fig, axes = plt.subplots(len(tasks), len(names), figsize=(3.2 * len(names), 2.8 * len(tasks)),
                             squeeze=False, sharex=True, sharey=True)
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
                ax.set_title(name.upper() if ":" not in name else f"{name.split(':')[0].upper()} ($\\tau$ = {name.split(':')[1]})")
            if ti == len(tasks) - 1:
                ax.set_xlabel("Steps")
            if ni == 0:
                ax.set_ylabel(f"{task.capitalize()}\nMI (nats)")
    for ax in axes.flat:
        ax.set_ylim(-0.5, top * 1.25 + 0.5)
    axes[0][-1].legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    return save_figure_atomic(fig, path)


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
