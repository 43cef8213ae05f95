#!/usr/bin/env bash
# Idempotent set-up of a fresh machine: .venv, PyTorch (CPU build pinned unless an NVIDIA GPU is
# present, so no multi-GB CUDA download on CPU-only machines), the project with its xtb and dev
# extras, and a fast BLAS for the xTB oracle (Debian's OpenBLAS; see scripts/install_fast_blas.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
PIP=".venv/bin/python -m pip"
if ! .venv/bin/python -c "import torch" >/dev/null 2>&1; then
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    $PIP install -q "torch>=2.4"
  elif ls /opt/wheels/torch-2.13.0+cpu-* >/dev/null 2>&1 || ls "${PIP_FIND_LINKS:-/nonexistent}"/torch-2.13.0+cpu-* >/dev/null 2>&1; then
    $PIP install -q torch==2.13.0          # the CPU wheel on this machine's local wheel folder
  else
    $PIP install -q torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
  fi
fi
$PIP install -q -e ".[xtb,dev]"
bash scripts/install_fast_blas.sh || echo "warning: no fast BLAS; the xTB oracle will be ~10x slower" >&2
