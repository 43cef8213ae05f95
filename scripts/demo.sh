#!/usr/bin/env bash
# The main job, end to end on a fresh machine: set up, generate a small MoS2 dataset following the
# 2DMD rules, label a 4x4 subset with GFN1-xTB on Dask, and summarise both.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
OUT=${HTS_DEMO_DIR:-runs/demo}
mkdir -p "$OUT"
.venv/bin/hts data generate --host MoS2 --density both --per-type 3 --per-concentration 5 --out "$OUT/mos2_8x8" --force
.venv/bin/hts data info "$OUT/mos2_8x8"
.venv/bin/hts data generate --host MoS2 --supercell 4x4 --density high --per-concentration 2 --out "$OUT/mos2_4x4" --force
.venv/bin/hts data label "$OUT/mos2_4x4" --oracle xtb --workers 2
.venv/bin/hts data info "$OUT/mos2_4x4"
