"""Derives the training tolerances of the genmi tests from the spread over seeds.

* ``flow`` — the shortened staircase of tests/genmi/test_flows.py (held-out error at the end of each level);
* ``ba`` — the lower and upper bounds of tests/genmi/test_barber_agakov.py after a short training.

Both trainings live in :mod:`selfconsistency.testing`, which the tests import too.

For each quantity it prints the mean and standard deviation over seeds of the error and the tolerance
the tests use: |mean| + 4 sd, rounded up to 0.05.

    python benchmarks/genmi_test_tolerances.py --seeds 6
    python benchmarks/genmi_test_tolerances.py --only ba
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import torch

from selfconsistency.testing import SHORT_LEVELS, TASK, short_staircase, train_lower, train_upper


def report(name: str, errors: list[float]) -> None:
    m, sd = statistics.mean(errors), statistics.stdev(errors)
    tol = math.ceil((abs(m) + 4 * sd) / 0.05 - 1e-9) * 0.05
    print(f"{name:24s} mean error {m:+.3f}  sd {sd:.3f}  tolerance {tol:.2f}", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, default=6)
    p.add_argument("--only", choices=("flow", "ba"), default=None)
    args = p.parse_args()
    torch.set_num_threads(1)
    if args.only in (None, "flow"):
        errors = {mi: [] for mi in SHORT_LEVELS}
        for seed in range(args.seeds):
            t = time.perf_counter()
            for mi, value, _ in short_staircase(seed):
                errors[mi].append(value - mi)
            print(
                f"flow seed {seed}: "
                + "  ".join(f"MI {mi:g}: {errors[mi][-1]:+.3f}" for mi in SHORT_LEVELS)
                + f"  ({time.perf_counter() - t:.0f} s)",
                flush=True,
            )
        for mi in SHORT_LEVELS:
            report(f"flow, MI {mi:g}", errors[mi])
    if args.only in (None, "ba"):
        lower, upper = [], []
        for seed in range(args.seeds):
            t = time.perf_counter()
            lower.append(TASK.mi - train_lower(seed).value)
            upper.append(train_upper(seed).value - TASK.mi)
            print(
                f"ba seed {seed}: MI - lower {lower[-1]:+.3f}  upper - MI {upper[-1]:+.3f}"
                f"  ({time.perf_counter() - t:.0f} s)",
                flush=True,
            )
        report("ba lower (MI - value)", lower)
        report("ba upper (value - MI)", upper)


if __name__ == "__main__":
    main()
