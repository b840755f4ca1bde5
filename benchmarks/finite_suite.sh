#!/usr/bin/env bash
# The finite-sample protocol (issue 11) on a cross-section of the task suite, as measured for the README:
# 15 tasks (bmi's Beyond-Normal names: the 1-d and 5-d normal and their MI-preserving maps, Student-t, additive
# noise, a mixture, a 25-d dense normal and a 10-nat sparse normal) x 7 estimators x 3 seeds at N = 5000,
# separable critic (the joint critic's step is ~10x dearer on this CPU); then Butakov et al.'s additive-uniform
# comparison (true MI 2/4/6 nats, N = 10000, InfoNCE / DV / NWJ).
# Usage: bash benchmarks/finite_suite.sh [OUT]   (resumes: finished runs are skipped)
set -euo pipefail
OUT=${1:-benchmarks/results/finite_suite}
TASKS=(
  1v1-normal-0.75 half_cube-1v1-normal-0.75 wiggly-1v1-normal-0.75 normal_cdf-1v1-normal-0.75
  swissroll_x-normal_cdf-1v1-normal-0.75 1v1-additive-0.1 1v1-X-0.9
  student-identity-3-3-2 asinh-student-identity-3-3-2
  multinormal-sparse-5-5-2-2.0 half_cube-multinormal-sparse-5-5-2-2.0 normal_cdf-multinormal-sparse-5-5-2-2.0
  spiral-multinormal-sparse-5-5-2-2.0 multinormal-dense-25-25-0.5
  "multinormal_sparse(dim_x=5,dim_y=5,n_interacting=2,mi=10.0)"
)
selfconsistency bench cpc nwj mine smile:5 smile:inf remine gm-flow --protocol finite --task "${TASKS[@]}" \
  --critic separable --seeds 3 --n 5000 --jobs 2 --no-progress --out "$OUT/n5000"
# epsilon such that eps - log(2 eps) = 2, 4, 6 nats
selfconsistency bench cpc dv nwj --protocol finite \
  --task 1v1-additive-0.0727758 1v1-additive-0.00924286 1v1-additive-0.00124092 \
  --critic separable --seeds 3 --n 10000 --jobs 2 --no-progress --out "$OUT/additive_n10000"
