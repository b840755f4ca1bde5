#!/usr/bin/env bash
# The follow-up GPU check of issue 10 (about 3 minutes on one H200): the CUDA-graph and precision tests,
# then the precision's effect on Table 2's bias for NWJ and MINE (joint critic, both tasks, 3 seeds,
# one 6-member ensemble each, one process: side-by-side processes share the GPU badly, see README).
#   bash benchmarks/gpu_precision.sh                       # on the GPU machine (OUT set by the device tool)
#   TINY=1 DEVICE=cpu OUT=/tmp/gp bash benchmarks/gpu_precision.sh   # checks the script on the CPU
set -u
OUT=${OUT:-out/gpu_precision}
DEVICE=${DEVICE:-cuda}
W=$(mktemp -d)
mkdir -p "$OUT"
export PYTHONPATH="$PWD:$PWD/.gpu_site${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 MPLBACKEND=Agg
PY=${PY:-python3}
LOG=$OUT/log.txt
STAIR=()
[ "${TINY:-0}" = 1 ] && STAIR=(--levels 2 --steps-per-level 20)
stamp() { echo "== $(date +%T) $*" | tee -a "$LOG"; }
run() {  # limit precision estimators...
    local limit=$1 precision=$2; shift 2
    local start; start=$(date +%s.%N)
    timeout "$limit" $PY -m selfconsistency bench "$@" --task both --seeds 3 --critic joint --precision "$precision" \
        "${STAIR[@]}" --device "$DEVICE" --no-progress --threads 1 --out "$W/precision" >> "$W/precision.log" 2>&1
    echo "$precision $*: exit $? after $($PY -c "import time; print(round(time.time() - $start, 1))") s" | tee -a "$LOG"
}

stamp "tests"
timeout 45 $PY -m pytest -q -p no:cacheprovider tests/micore/ensemble/test_precision_graphs.py > "$OUT/tests.txt" 2>&1
echo "exit $?" >> "$OUT/tests.txt"
grep -E "passed|failed|FAILED|Error" "$OUT/tests.txt" | tail -n 20 | tee -a "$LOG"
stamp "precision"
[ "$DEVICE" = cuda ] && run 45 tf32 nwj
run 75 bf16 nwj mine
grep "\[done\]" "$W/precision.log" | tee -a "$LOG"
(cd "$W" && tar cJf "$OUT/precision.tar.xz" precision precision.log)
stamp "done"
