"""Trainings next to another busy process: torch's default thread count against the library's.

Times the README's quick benchmark (``selfconsistency bench --quick``) and the README's FlowMI example
(the first 300 steps of ``FlowMI(20, 20).fit``) on an idle machine and with one other process keeping
a core busy, each with every core's thread (``--threads N``, torch's default before the library chose)
and with the library's default (the idle cores when a training starts).

    python benchmarks/thread_contention.py
    python benchmarks/thread_contention.py --json benchmarks/results/thread_contention_cpu.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from micore.training.threads import available_cpus

FLOW = """
import sys, time, torch, micore
from genmi import FlowMI
from micore.tasks import CorrelatedGaussian
setting = sys.argv[1]
micore.set_threads(None if setting == "torch" else "auto")
torch.manual_seed(0)
est = FlowMI(x_dim=20, y_dim=20)
t = time.perf_counter()
hist = est.fit(CorrelatedGaussian(dim=20, mi=4.0), steps=300, batch_size=64, seed=0, progress=False, device="cpu")
print(time.perf_counter() - t, torch.get_num_threads(), getattr(hist, "threads", None))
"""


def busy():
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def quick(flags: list[str]) -> float:
    with tempfile.TemporaryDirectory() as out:
        argv = [sys.executable, "-m", "selfconsistency", "bench", "--quick", "--no-progress", "--device", "cpu"]
        start = time.perf_counter()
        subprocess.run(argv + ["--out", out] + flags, check=True, capture_output=True)
        return time.perf_counter() - start


def flow(setting: str) -> float:
    out = subprocess.run([sys.executable, "-c", FLOW, setting], check=True, capture_output=True, text=True)
    return float(out.stdout.split()[0])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    cpus = available_cpus()
    cases = {
        f"bench --quick, --threads {cpus} (torch's default)": lambda: quick(["--threads", str(cpus)]),
        "bench --quick, library default": lambda: quick([]),
        f"FlowMI 300 steps, torch's {cpus} threads": lambda: flow("torch"),
        "FlowMI 300 steps, library default": lambda: flow("auto"),
    }
    results = {}
    for load in ("idle", "one core busy"):
        for name, fn in cases.items():
            other = busy() if load != "idle" else None
            try:
                if other is not None:
                    time.sleep(0.5)  # let the busy loop show in the CPU counters
                seconds = fn()
            finally:
                if other is not None:
                    other.kill()
                    other.wait()
            results[f"{name} | {load}"] = seconds
            print(f"{load:14s} {name:48s} {seconds:7.1f} s", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"cpus": cpus, "seconds": results}, indent=1) + "\n")


if __name__ == "__main__":
    main()
