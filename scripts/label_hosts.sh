#!/usr/bin/env bash
# Label the bundled datasets of the five hosts beside MoS2 with each host's xTB method (GFN1-xTB; GFN2-xTB for
# InSe and GaSe, ~140-190 s per defected 6x6 cell on one thread, so they come last), one after another, at low
# priority (nice 19) so that interactive work on the same machine keeps its cores. Resumable: killed at any
# moment and restarted, it repeats no finished structure (hts data label appends each result to
# DIR/labels/part-*.jsonl as it arrives). Hours on 2 cores (BENCHMARKS.md, "Datasets").
#   WORKERS=1 bash scripts/label_hosts.sh [DATASET ...]   (default: every host dataset below)
set -euo pipefail
cd "$(dirname "$0")/.."
WORKERS=${WORKERS:-1}
SETS=("$@")
if [ ${#SETS[@]} -eq 0 ]; then
  SETS=(datasets/bn_8x8_xtb datasets/p_6x6_xtb datasets/wse2_8x8_xtb datasets/inse_6x6_xtb datasets/gase_6x6_xtb)
fi
for d in "${SETS[@]}"; do
  nice -n 19 .venv/bin/hts data label "$d" --oracle xtb --workers "$WORKERS"
done
