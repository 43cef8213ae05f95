#!/usr/bin/env bash
# The main job, end to end on a fresh machine: set up, run the example campaign
# campaigns/mos2_homo_lumo_window.yaml on the embedded defaults (bundled xTB data, surrogate, tiny Llama + LoRA
# in models/), verify 3 candidates with GFN1-xTB, print the motif table, export one CIF per motif and
# write the report. The HOMO/LUMO
# window is the demo because at the demo's budget llm-bo's hits there vary little from seed to seed;
# the mid-gap campaign (`hts run campaigns/mos2_midgap.yaml`) is the harder example to try next
# (BENCHMARKS.md, "Strategy benchmark: hits per 1,000").
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
OUT=${HTS_DEMO_DIR:-runs/demo}
rm -rf "$OUT"
.venv/bin/hts data info datasets/mos2_8x8_xtb
.venv/bin/hts run campaigns/mos2_homo_lumo_window.yaml --out "$OUT"
.venv/bin/hts status "$OUT"
.venv/bin/hts export "$OUT" --out "$OUT/export"    # one CIF per motif, confirmed ones first
.venv/bin/hts report "$OUT"
echo "one CIF per motif, candidates.csv and motifs.csv: $OUT/export   report: $OUT/report/index.html"
