#!/usr/bin/env bash
# The main job, end to end on a fresh machine: set up, run the example campaign
# campaigns/mos2_homo_lumo_window.yaml on the embedded defaults (bundled xTB data and surrogate): screen
# 200,000 configurations with the surrogate while GFN1-xTB verifies the candidates of new motifs beside
# it, print the motif table, export one CIF per motif (confirmed ones first) and write the report.
# `hts run campaigns/mos2_vacancy_pair.yaml` is a target whose every motif is a defect cluster; the LLM
# strategies run with `strategy: llm-bo` or `llm-fixed` in any campaign (BENCHMARKS.md, "Distinct motifs").
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
