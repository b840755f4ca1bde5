"""estimate_mi on data with a known answer (issue 12): does the default call's interval cover the truth?

Three parts, each written to ``benchmarks/results/estimate_mi/`` as soon as it finishes (JSON + Markdown):

1. ``tasks``: the default call (joint critic, 3 seeds, N = 5000) of cpc, mine, smile:5 and gm-flow on four tasks
   with known MI: the seed's 20-d Gaussian and Cubic at 2 nats, bmi's 5-d sparse normal and 3-d Student-t;
2. ``coverage``: 20 fresh datasets of one task, one estimator: how often the nominal 95% interval covers the
   truth (``--coverage-critic`` separable by default, so the 20 x 3 trainings fit in minutes);
3. ``timing``: the wall time of the default call (smile:5) at N = 5,000 and N = 50,000.

Usage: python benchmarks/estimate_mi_coverage.py [--parts tasks coverage timing] [--quick]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from micore.tasks import make_task
from selfconsistency import estimate_mi

OUT = Path(__file__).parent / "results" / "estimate_mi"
TASKS = ("gaussian-20-2.0", "cubic-20-2.0", "multinormal-sparse-5-5-2-2.0", "student-identity-3-3-2")
METHODS = ("cpc", "mine", "smile:5", "gm-flow")


def _write(name: str, obj, md: str) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    tmp = OUT / f".{name}.json.tmp"
    tmp.write_text(json.dumps(obj, indent=1))
    tmp.replace(OUT / f"{name}.json")
    tmp = OUT / f".{name}.md.tmp"
    tmp.write_text(md)
    tmp.replace(OUT / f"{name}.md")


def part_tasks(n: int, kw: dict) -> None:
    rows, lines = [], ["| task | true MI | estimator | value | 95% interval | covers | kind | flags | time (s) |",
                       "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for name in TASKS:
        task = make_task(name)
        x, y = task.sample(n, seed=12345)
        comp = estimate_mi(x, y, list(METHODS), progress=False, **kw)
        for r in comp.results:
            cov = r.covers(task.mi)
            flags = ", ".join(f.name for f in r.flags) or "-"
            rows.append({"task": name, "true_mi": task.mi, "covers": cov, **r.to_dict()})
            lines.append(
                f"| {name} | {task.mi:.3f} | {r.name} | {r.value:.3f} | [{r.low:.3f}, {r.high:.3f}] | "
                f"{'yes' if cov else 'no'} | {r.kind} | {flags} | {r.seconds:.0f} |"
            )
            print(lines[-1], flush=True)
        for f in comp.failures:
            lines.append(f"| {name} | {task.mi:.3f} | {f.name} | failed: {f.error} | | | | | |")
        _write("tasks", rows, "\n".join(lines) + "\n")


def part_coverage(n: int, reps: int, critic: str, kw: dict) -> None:
    name, method = "multinormal-sparse-5-5-2-2.0", "smile:5"
    task = make_task(name)
    rows = []
    for rep in range(reps):
        x, y = task.sample(n, seed=1000 + rep)
        r = estimate_mi(x, y, method, critic=critic, seeds=[3 * rep, 3 * rep + 1, 3 * rep + 2], progress=False, **kw)
        rows.append({"rep": rep, "value": r.value, "low": r.low, "high": r.high, "covers": r.covers(task.mi),
                     "values": r.values, "flags": [f.name for f in r.flags], "seconds": r.seconds})  # fmt: skip
        print(rows[-1], flush=True)
        hits = sum(r["covers"] for r in rows)
        mean = sum(r["value"] for r in rows) / len(rows)
        width = sum(r["high"] - r["low"] for r in rows) / len(rows)
        md = (
            f"{method} ({critic} critic, 3 seeds, N = {n}) on {name} (true MI {task.mi:.4f} nats): the nominal 95% "
            f"interval covered the truth in {hits} of {len(rows)} fresh datasets; mean value {mean:.4f} "
            f"(bias {mean - task.mi:+.4f}), mean interval width {width:.4f}.\n"
        )
        _write("coverage", {"task": name, "true_mi": task.mi, "method": method, "critic": critic, "n": n,
                            "reps": rows}, md)  # fmt: skip


def part_timing(sizes, kw: dict) -> None:
    task = make_task("multinormal-sparse-5-5-2-2.0")
    rows, lines = [], ["| N | method | wall time (s) | steps per seed | value | true MI |", "|---|---|---|---|---|---|"]
    for n in sizes:
        x, y = task.sample(n, seed=7)
        start = time.perf_counter()
        r = estimate_mi(x, y, "smile:5", progress=False, **kw)
        wall = time.perf_counter() - start
        rows.append({"n": n, "seconds": wall, "steps": r.steps, "value": r.value, "true_mi": task.mi,
                     "threads": torch.get_num_threads()})  # fmt: skip
        lines.append(f"| {n} | smile:5 (joint, 3 seeds) | {wall:.0f} | {r.steps} | {r.value:.3f} | {task.mi:.3f} |")
        print(lines[-1], flush=True)
        _write("timing", rows, "\n".join(lines) + "\n")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.partition("\n\n")[0])
    p.add_argument("--parts", nargs="+", default=["tasks", "coverage", "timing"])
    p.add_argument("--reps", type=int, default=20)
    p.add_argument("--coverage-critic", default="separable")
    p.add_argument("--quick", action="store_true", help="a smoke run: 1000 samples, 200 steps")
    p.add_argument("--out", type=Path, default=None, help=f"default {OUT}")
    a = p.parse_args()
    if a.out is not None:
        globals()["OUT"] = a.out
    kw = {"max_steps": 200} if a.quick else {}
    n = 1000 if a.quick else 5000
    if "tasks" in a.parts:
        part_tasks(n, kw)
    if "coverage" in a.parts:
        part_coverage(n, 2 if a.quick else a.reps, a.coverage_critic, kw)
    if "timing" in a.parts:
        part_timing((1000,) if a.quick else (5000, 50_000), kw)


if __name__ == "__main__":
    main()
