#!/usr/bin/env bash
# One generator for three hosts (MoS2, h-BN, P): base pretrained on all three, one instruction set per host
# (MoS2 conditioned on the band gap, h-BN and P on the level above the VBM, normalized_homo: what their
# campaigns target), one LoRA over the three sets; then the conditioning figures per host (R2 of the requested
# property, scored by the host's surrogate) and the shipped MoS2 adapter's beside them. ~35 min on 2 cores.
#   OMP_NUM_THREADS=2 bash benchmarks/research/multihost_generator.sh      (writes runs/multihost/)
set -euo pipefail
cd "$(dirname "$0")/../.."
HTS=.venv/bin/hts
R=runs/multihost
mkdir -p $R
$HTS llm pretrain --data datasets/mos2_8x8_xtb --data datasets/bn_8x8_xtb --data datasets/p_6x6_xtb \
  --random 20000 --preset tiny --steps 800 --batch-size 32 --lr 2e-3 --threads 2 --out $R/llm-base
$HTS llm dataset --data datasets/mos2_8x8_xtb --encoding sparse --augment 4 --out $R/ins-mos2 --seed 0 \
  --properties homo_lumo_gap --pseudo-labels models/surrogate-mos2-sparse --pseudo-random 4000 --pseudo-max-defects 24 \
  --pseudo-rule-subsets --balance homo_lumo_gap
$HTS llm dataset --data datasets/bn_8x8_xtb --encoding sparse --augment 4 --out $R/ins-bn --seed 0 \
  --properties normalized_homo --pseudo-labels models/surrogate-bn-sparse --pseudo-random 4000 --pseudo-max-defects 16 \
  --pseudo-rule-subsets --balance normalized_homo
$HTS llm dataset --data datasets/p_6x6_xtb --encoding sparse --augment 4 --out $R/ins-p --seed 0 \
  --properties normalized_homo --pseudo-labels models/surrogate-p-sparse --pseudo-random 4000 --pseudo-max-defects 12 \
  --pseudo-rule-subsets --balance normalized_homo
$HTS llm finetune --base $R/llm-base --data $R/ins-mos2 --data $R/ins-bn --data $R/ins-p --steps 400 \
  --batch-size 32 --lr 5e-3 --warmup 20 --save-every 100 --threads 2 --out $R/llm-lora
gen() { # name base adapter host sweep min-defects max-defects surrogate train
  $HTS llm generate --model "$2" --adapter "$3" --host "$4" --sweep "$5" -n 64 --min-defects "$6" --max-defects "$7" \
    --threads 2 --out $R/s-"$1".jsonl
  $HTS llm eval --samples $R/s-"$1".jsonl --train "$9" --surrogate "$8" --out $R/eval-"$1".json
}
gen mos2 $R/llm-base $R/llm-lora MoS2 homo_lumo_gap=0.2:1.8:9 1 12 models/surrogate-mos2-sparse $R/ins-mos2/train.jsonl
gen shipped-mos2 models/llm-base models/llm-lora MoS2 homo_lumo_gap=0.2:1.8:9 1 12 models/surrogate-mos2-sparse \
  $R/ins-mos2/train.jsonl
gen bn $R/llm-base $R/llm-lora h-BN normalized_homo=0.4:3.2:8 3 12 models/surrogate-bn-sparse $R/ins-bn/train.jsonl
gen p $R/llm-base $R/llm-lora P normalized_homo=-0.2:0.4:7 4 10 models/surrogate-p-sparse $R/ins-p/train.jsonl
