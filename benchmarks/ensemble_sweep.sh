#!/usr/bin/env bash
# The staircase sweep one by one (--ensemble off) against ensembles (--ensemble auto), side by side on the
# same idle machine: 3 estimators x both tasks x 3 seeds, separable critic, 1000 steps per level (the ratio is
# what this measures; the full sweep's time scales with its steps). Usage: bash benchmarks/ensemble_sweep.sh
set -euo pipefail
OUT=${1:-/tmp/ensemble_sweep}
rm -rf "$OUT"
for mode in off auto off auto; do
  start=$(date +%s.%N)
  selfconsistency bench cpc nwj smile:5 --task both --critic separable --seeds 3 --steps-per-level 1000 \
    --ensemble "$mode" --no-progress --out "$OUT/$mode-$RANDOM" > /dev/null
  echo "$mode $(echo "$(date +%s.%N) - $start" | bc) s"
done
