"""Derives the tolerances of tests/test_training.py from the spread over seeds.

Trains every estimator in the test's configuration for several seeds and prints, per estimator,
the mean and standard deviation over seeds of the held-out estimate at MI = 2; the test allows
|estimate - 2| <= |mean - 2| + 4 sd (rounded up).

    python benchmarks/training_tolerances.py --seeds 8
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from training_config import ESTIMATORS, evaluate  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--seeds", type=int, default=8)
    args = p.parse_args()
    torch.set_num_threads(1)
    for name in ESTIMATORS:
        t = time.perf_counter()
        vals = [evaluate(name, seed) for seed in range(args.seeds)]
        m, sd = statistics.mean(vals), statistics.stdev(vals)
        print(f"{name:14s} mean {m:.3f}  sd {sd:.3f}  bias {m - 2.0:+.3f}  tol {abs(m - 2.0) + 4 * sd:.3f}"
              f"  ({(time.perf_counter() - t) / args.seeds:.1f} s/seed)", flush=True)


if __name__ == "__main__":
    main()
