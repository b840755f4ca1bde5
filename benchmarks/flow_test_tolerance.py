"""Derives the tolerance of tests/test_genmi_flows.py::test_flow_i_gm_tracks_a_shortened_gaussian_staircase.

Runs the test's shortened staircase (MI 2, 6, 10; a few hundred steps per level; held-out estimate at
the end of each level) for several seeds and prints, per level, the mean and standard deviation over
seeds of the held-out error; the test allows |estimate - MI| <= |mean error| + 4 sd (rounded up to 0.05).

    python benchmarks/flow_test_tolerance.py --seeds 6
"""
from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
from test_genmi_flows import SHORT_LEVELS, short_staircase  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, default=6)
    args = p.parse_args()
    torch.set_num_threads(1)
    errors = {mi: [] for mi in SHORT_LEVELS}
    for seed in range(args.seeds):
        t = time.perf_counter()
        for mi, value, _ in short_staircase(seed):
            errors[mi].append(value - mi)
        print(f"seed {seed}: " + "  ".join(f"MI {mi:g}: {errors[mi][-1]:+.3f}" for mi in SHORT_LEVELS)
              + f"  ({time.perf_counter() - t:.0f} s)", flush=True)
    for mi in SHORT_LEVELS:
        m, sd = statistics.mean(errors[mi]), statistics.stdev(errors[mi])
        tol = math.ceil((abs(m) + 4 * sd) / 0.05) * 0.05
        print(f"MI {mi:4g}: mean error {m:+.3f}  sd {sd:.3f}  tolerance {tol:.2f}")


if __name__ == "__main__":
    main()
