"""Table 2 as mean ± sd over seeds: per run, the signed bias of each MI level (mean per-step estimate minus
the truth), then its mean and sd over the seeds, beside Song & Ermon's Table 2 bias (joint critic; the
paper shows the separable critic only as Figure 1's curves).

Usage: python benchmarks/seed_table.py OUT [--abs]   (OUT: a `selfconsistency bench --out` directory)
"""

from __future__ import annotations

import argparse
import math
import statistics

from selfconsistency.groundtruth.reference import SONG_ERMON_TABLE2
from selfconsistency.groundtruth.staircase import load_runs


def _num(v: float) -> str:
    return f"{v:.2f}" if abs(v) < 1000 else f"{v:.1e}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.partition("\n\n")[0])
    p.add_argument("out")
    p.add_argument("--abs", action="store_true", help="|bias| (Table 2's convention) instead of the signed bias")
    a = p.parse_args()
    runs = load_runs(a.out)
    cells: dict[tuple, list[float]] = {}
    diverged: dict[tuple, list[int]] = {}
    for r in runs:
        c = r["config"]
        spl = c["steps_per_level"]
        for li, mi in enumerate(c["levels"]):
            vals = [v for v in r["estimates"][li * spl : (li + 1) * spl] if v is not None and math.isfinite(v)]
            if len(vals) < spl:  # a level cut short by divergence has no bias
                if r["diverged_at"] is not None:
                    diverged.setdefault((c["task"], r["estimator"]), []).append(r["diverged_at"])
                continue
            bias = statistics.fmean(vals) - mi
            cells.setdefault((c["task"], r["estimator"], mi), []).append(abs(bias) if a.abs else bias)
    tasks = sorted({k[0] for k in cells}, key=lambda t: t != "gaussian")
    names = sorted({k[1] for k in cells})
    levels = sorted({k[2] for k in cells})
    head = [f"{t.capitalize()} {m:g}" for t in tasks for m in levels]
    print("| estimator | " + " | ".join(head) + " |")
    print("|---|" + "---|" * len(head))
    for n in names:
        row = []
        for t in tasks:
            paper = SONG_ERMON_TABLE2.get(n, {}).get("bias", {}).get(t)
            for i, m in enumerate(levels):
                v = cells.get((t, n, m))
                if not v:
                    row.append("—")
                    continue
                sd = f" ± {_num(statistics.stdev(v))}" if len(v) > 1 else ""
                ref = f" ({paper[i]:.2f})" if paper else ""
                seeds = "" if len(v) == 3 else f" [{len(v)}]"
                row.append(f"{_num(statistics.fmean(v))}{sd}{seeds}{ref}")
        print(f"| {n} | " + " | ".join(row) + " |")
    if diverged:
        print(
            "\nDiverged (levels cut short are left out; [k] = seeds left): "
            + "; ".join(f"{t} {n} at steps {sorted(set(s))}" for (t, n), s in sorted(diverged.items()))
        )


if __name__ == "__main__":
    main()
