"""Wall time of one set of runs with each executor, side by side, and whether their records agree.

Runs the same commands through the CLI (one subprocess each, so every executor pays its own start-up)
into fresh output directories, then compares the records run for run:

* ``bench``: the README's quick set (cpc, nwj, smile:5 on MI 2, 4, 6 with 200 steps each) with 3 seeds;
* the same with the separable critic (small matmuls: threads help less, processes more);
* ``check``: smile:5 and cpc on the digits, baseline at rows 0, 4, 8, 2 seeds, 2 epochs per cell;
* each in-process (torch's default threads, and ``--threads 1``), with ``--jobs 2`` and with ``--ray``
  (a local Ray on this machine's CPUs);
* the fixed cost of each executor: ``ray.init`` + ``shutdown``, and the same command with runs of 2 steps.

    python benchmarks/runner_speed.py                # everything (about 10 minutes on 2 cores)
    python benchmarks/runner_speed.py --only bench   # one part
    python benchmarks/runner_speed.py --json benchmarks/results/runner_speed_cpu.json

Run it on an otherwise idle machine: the executors compete for the same cores.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

EXECUTORS = {
    "in-process": [],
    "in-process --threads 1": ["--threads", "1"],
    "--jobs 2": ["--jobs", "2"],
    "--ray": ["--ray"],
}
BENCH = "bench cpc nwj smile:5 --levels 2 4 6 --steps-per-level 200 --seeds 3 --device cpu --no-progress".split()
TINY_BENCH = "bench cpc nwj smile:5 --levels 2 --steps-per-level 2 --seeds 3 --device cpu --no-progress".split()
BENCH_SEPARABLE = BENCH + ["--critic", "separable"]
CHECK = "check smile:5 cpc --settings baseline --rows 0 4 8 --seeds 2 --epochs 2 --device cpu --no-progress".split()


def timed(argv: list[str], out: Path) -> float:
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "selfconsistency", *argv, "--out", str(out)], capture_output=True, text=True
    )
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return seconds


def load(folder: Path, field: str) -> dict:
    return {
        str(p.relative_to(folder)): json.loads(p.read_text())[field]
        for p in sorted(folder.rglob("*.json"))
        if p.parent.name not in ("failed",) and p.name[0] != "." and ("runs" in p.parts or "cells" in p.parts)
    }


def compare(results: dict[str, dict], base: str) -> dict[str, str]:
    """Per executor: identical to ``base`` run for run, or the largest difference."""
    out = {}
    for name, recs in results.items():
        if set(recs) != set(results[base]):
            out[name] = f"different runs: {sorted(set(recs) ^ set(results[base]))[:4]}"
            continue
        worst = 0.0
        for key, value in recs.items():
            a = value if isinstance(value, list) else [value]
            b = results[base][key] if isinstance(results[base][key], list) else [results[base][key]]
            worst = max([worst] + [abs(x - y) for x, y in zip(a, b, strict=True) if x is not None and y is not None])
        out[name] = "identical" if worst == 0.0 else f"max |difference| {worst:.3g}"
    return out


def part(title: str, argv: list[str], field: str, root: Path, repeat: int = 1) -> dict:
    print(f"\n## {title}: selfconsistency {' '.join(argv)}")
    times, results = {}, {}
    for rnd in range(repeat):
        for name, flags in EXECUTORS.items():
            out = root / f"{title}-{name.replace(' ', '_').replace('-', '')}-{rnd}"
            times.setdefault(name, []).append(timed(argv + flags, out))
            results[name] = load(out, field)
            print(f"  {name:24s} {times[name][-1]:7.1f} s", flush=True)
    agree = compare(results, "in-process --threads 1")
    base = min(times["in-process"])
    print(f"  {'executor':24s} {'wall s (best)':>13s} {'vs in-process':>14s}  records vs in-process --threads 1")
    rows = {}
    for name in EXECUTORS:
        best = min(times[name])
        rows[name] = {"seconds": times[name], "ratio_to_in_process": best / base, "records": agree[name]}
        print(f"  {name:24s} {best:13.1f} {best / base:13.2f}x  {agree[name]}")
    return rows


def ray_startup() -> dict:
    code = (
        "import time, ray; t = time.perf_counter(); ray.init(num_cpus=2, include_dashboard=False, "
        "logging_level='ERROR'); a = time.perf_counter() - t; f = ray.remote(lambda: 1); t = time.perf_counter();"
        " ray.get(f.remote()); b = time.perf_counter() - t; t = time.perf_counter(); ray.shutdown(); "
        "print(a, b, time.perf_counter() - t)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    init, first_task, shutdown = (float(v) for v in out[-3:])
    print(f"\n## Ray start-up: init {init:.1f} s, first task {first_task:.2f} s, shutdown {shutdown:.1f} s")
    return {"init": init, "first_task": first_task, "shutdown": shutdown}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", choices=("bench", "separable", "check", "overhead"), default=None)
    ap.add_argument("--repeat", type=int, default=1, help="rounds per command (the best is reported)")
    ap.add_argument("--json", default=None, help="write the numbers here")
    args = ap.parse_args()
    print(f"{os.cpu_count()} CPUs; python {sys.version.split()[0]}")
    report = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        if args.only in (None, "overhead"):
            report["ray_startup"] = ray_startup()
            report["overhead"] = part("overhead (9 runs of 2 steps)", TINY_BENCH, "estimates", root, args.repeat)
        if args.only in (None, "bench"):
            report["bench"] = part(
                "bench --quick, 3 seeds (9 runs of 600 steps)", BENCH, "estimates", root, args.repeat
            )
        if args.only in (None, "separable"):
            report["bench_separable"] = part(
                "bench --quick --critic separable, 3 seeds", BENCH_SEPARABLE, "estimates", root, args.repeat
            )
        if args.only in (None, "check"):
            report["check"] = part("check, 2 estimators x 3 cells x 2 seeds", CHECK, "estimate", root, args.repeat)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n")
        print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
