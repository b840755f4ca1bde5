"""Derives the tolerances of tests/micore/training/test_training.py from the spread over seeds.

Trains every estimator in the test's configuration (selfconsistency.testing: the
registry's discriminative examples) for several seeds and prints, per estimator,
the mean and standard deviation over seeds of the held-out estimate at MI = 2 (and ReMINE's on the
one-hot set, I = log 16); the test allows |estimate - I| <= |mean - I| + 4 sd (rounded up).

    python benchmarks/training_tolerances.py --seeds 8
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import torch

from selfconsistency.testing import MI, NAMES, ONEHOT_CLASSES, evaluate, evaluate_onehot


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--seeds", type=int, default=8)
    p.add_argument(
        "--only", nargs="*", default=None, help=f"estimators to run, among {sorted(NAMES)} and remine-onehot"
    )
    args = p.parse_args()
    unknown = sorted(set(args.only or ()) - {*NAMES, "remine-onehot"})
    if unknown:
        p.error(f"--only: unknown {unknown}; choose among {sorted(NAMES)} and remine-onehot")
    torch.set_num_threads(1)
    runs = {name: (lambda s, n=name: evaluate(n, s), MI) for name in NAMES}
    runs["remine-onehot"] = (evaluate_onehot, math.log(ONEHOT_CLASSES))
    for name, (run, truth) in runs.items():
        if args.only is not None and name not in args.only:
            continue
        t = time.perf_counter()
        vals = [run(seed) for seed in range(args.seeds)]
        m, sd = statistics.mean(vals), statistics.stdev(vals)
        print(
            f"{name:14s} mean {m:.3f}  sd {sd:.3f}  bias {m - truth:+.3f}  tol {abs(m - truth) + 4 * sd:.3f}"
            f"  ({(time.perf_counter() - t) / args.seeds:.1f} s/seed)",
            flush=True,
        )


if __name__ == "__main__":
    main()
