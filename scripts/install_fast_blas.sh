#!/usr/bin/env bash
# Install a fast BLAS for the xTB oracle: Debian's OpenMP OpenBLAS (libopenblas0-openmp).
#
# tblite's wheel bundles reference BLAS (~10x slower); hts/oracle/blas.py loads this library into
# the process before tblite is imported, so nothing else is needed. Idempotent: does nothing when the
# library is present. Uses apt-get only as root on a Debian-like system; otherwise, or when the
# install fails, it prints a warning and exits 0 (the oracle still works, slowly).
set -u

multiarch=$(gcc -dumpmachine 2>/dev/null || dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo "$(uname -m)-linux-gnu")
candidates=(
  "/usr/lib/${multiarch}/openblas-openmp/libopenblas.so.0"
  "/usr/lib/$(uname -m)-linux-gnu/openblas-openmp/libopenblas.so.0"
  "/usr/lib64/libopenblaso.so.0"
)

have_lib() {
  local p
  for p in "${candidates[@]}"; do
    [ -e "$p" ] && { echo "$p"; return 0; }
  done
  return 1
}

warn() { echo "install_fast_blas: warning: $*" >&2; }

if path=$(have_lib); then
  echo "install_fast_blas: OpenMP OpenBLAS present: $path"
  exit 0
fi

if [ "$(id -u)" != "0" ]; then
  warn "not root; install it with 'sudo apt-get install libopenblas0-openmp' (the xTB oracle is ~10x slower without)"
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  warn "no apt-get; install an OpenMP build of OpenBLAS and set HTS_FAST_BLAS=/path/to/libopenblas.so.0"
  exit 0
fi

export DEBIAN_FRONTEND=noninteractive
if ! apt-get install -y -qq --no-install-recommends libopenblas0-openmp >/dev/null 2>&1; then
  # The package lists may be missing or stale on a fresh machine: update once, then retry.
  apt-get update -qq >/dev/null 2>&1 || warn "apt-get update failed"
  apt-get install -y -qq --no-install-recommends libopenblas0-openmp >/dev/null 2>&1 ||
    warn "apt-get install libopenblas0-openmp failed"
fi

if path=$(have_lib); then
  echo "install_fast_blas: installed OpenMP OpenBLAS: $path"
else
  warn "no fast BLAS available; the xTB oracle will use tblite's bundled reference BLAS (~10x slower)"
fi
exit 0
