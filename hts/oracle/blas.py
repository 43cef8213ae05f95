"""A fast BLAS/LAPACK for tblite, without rebuilding or patching the wheel.

The tblite wheel bundles reference BLAS/LAPACK 3.8 (``tblite.libs/libblas-*.so``,
``liblapack-*.so``), linked by its extension through a ``DT_RPATH`` (not ``RUNPATH``), so
``LD_LIBRARY_PATH`` cannot redirect it and the wheel's copy is always loaded. A GFN1-xTB single point
on 8x8 MoS2 (192 atoms) takes ~130 s with it on 2 cores and ~10-20 s with OpenBLAS.

Mechanism (in-process, no ``LD_PRELOAD``, no re-exec): :func:`activate_fast_blas` loads Debian's
OpenMP OpenBLAS (``libopenblas0-openmp``; installed by ``scripts/install_fast_blas.sh``) with
``RTLD_GLOBAL`` *before* tblite is imported. Libraries Python loads later (tblite's extension is
loaded ``RTLD_LOCAL``) resolve symbols in the global scope first, so tblite's ``dgemm_``,
``dsygvd_``... bind to OpenBLAS (same Fortran names and ABI as reference LAPACK); the bundled copy is
mapped but unused. :class:`hts.oracle.xtb.XTBOracle` calls it before its lazy ``import tblite``, so
every process that runs the oracle (Dask workers included) gets the fast BLAS by itself. Results are
identical to ~1e-12 Hartree. pip's ``scipy-openblas32/64`` are not usable: their symbols are prefixed
(``scipy_dgemm_``), and patching the wheel (``patchelf --replace-needed``) breaks on reinstall.

Environment (set before OpenBLAS/libgomp load; :func:`fast_blas_env` gives it for child processes):

- ``OPENBLAS_CORETYPE``: the kernel family from ``/proc/cpuinfo`` flags (``SkylakeX`` with AVX-512,
  ``Haswell`` with AVX2/FMA), because OpenBLAS's CPUID detection can fall back to slow generic
  kernels in VMs that report a generic CPU model. A value already set is kept.
- ``OMP_WAIT_POLICY=PASSIVE``: with the default (spinning) policy, two tblite processes with 2
  OpenMP threads each on 2 cores took 260 s each instead of 35 s (measured here); PASSIVE costs up to
  ~2x for a lone process on an idle machine. Dask workers with ``OMP_NUM_THREADS=1`` are unaffected.
- ``HTS_FAST_BLAS``: the library path (or ``0``/``off`` to disable the mechanism).

``LD_PRELOAD`` remains available (``fast_blas_env(preload=True)``) for processes that import tblite
before any of this code runs.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
import os
import subprocess
import sys
import sysconfig
from collections.abc import Sequence
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

ENV_LIBRARY = "HTS_FAST_BLAS"
"""Environment variable: path of the BLAS library to use, or ``0``/``off``/``none`` to disable."""
ENV_REEXEC_GUARD = "HTS_FAST_BLAS_REEXEC"
_DISABLED = {"0", "off", "false", "no", "none", ""}

_activated: str | None = None


def _candidates() -> list[Path]:
    """Known locations of an OpenMP OpenBLAS (Debian/Ubuntu multiarch, then RPM-style names)."""
    multiarch = sysconfig.get_config_var("MULTIARCH") or "x86_64-linux-gnu"
    roots = [Path("/usr/lib") / multiarch, Path("/usr/lib64"), Path("/usr/lib")]
    out: list[Path] = []
    for root in roots:
        out += [root / "openblas-openmp" / "libopenblas.so.0", root / "libopenblaso.so.0"]
    # The alternatives symlink may point at the pthread or serial variant: still fast, checked last.
    out += [root / "libopenblas.so.0" for root in roots]
    return out


@functools.lru_cache(maxsize=1)
def find_fast_blas() -> Path | None:
    """Path of a usable fast BLAS library, or ``None`` (``HTS_FAST_BLAS`` overrides the search)."""
    override = os.environ.get(ENV_LIBRARY)
    if override is not None:
        if override.strip().lower() in _DISABLED:
            return None
        path = Path(override)
        if path.is_file():
            return path
        log.warning("%s=%s does not exist; looking for OpenBLAS in the usual places", ENV_LIBRARY, override)
    for path in _candidates():
        if path.is_file():
            return path
    found = ctypes.util.find_library("openblas")  # a soname the dynamic loader resolves, if any
    return Path(found) if found else None


def has_fast_blas() -> bool:
    """True if a fast BLAS library is installed (see ``scripts/install_fast_blas.sh``)."""
    return find_fast_blas() is not None


def openblas_coretype() -> str | None:
    """OpenBLAS kernel family for this CPU from ``/proc/cpuinfo`` flags (``None`` if unknown)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return None
    flags: set[str] = set()
    for line in text.splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
            break
    if {"avx512f", "avx512bw", "avx512vl", "avx512dq"} <= flags:
        return "SkylakeX"
    if {"avx2", "fma"} <= flags:
        return "Haswell"
    return None


def fast_blas_env(
    threads: int | None = None, wait_policy: str | None = "PASSIVE", preload: bool = False
) -> dict[str, str]:
    """Environment variables a worker process needs for the fast BLAS; ``{}`` if none is installed.

    ``threads`` sets ``OMP_NUM_THREADS``/``OPENBLAS_NUM_THREADS`` (left alone if ``None``);
    ``wait_policy`` sets ``OMP_WAIT_POLICY`` (``None`` leaves libgomp's default); ``preload`` adds the
    library to ``LD_PRELOAD`` (only needed if the process imports tblite outside :mod:`hts.oracle`).
    Values the current environment already has for ``OPENBLAS_CORETYPE``/``OMP_WAIT_POLICY`` win.
    """
    path = find_fast_blas()
    if path is None:
        log.warning(
            "no fast BLAS found (install Debian's libopenblas0-openmp: scripts/install_fast_blas.sh); "
            "tblite will use its bundled reference BLAS, ~10x slower"
        )
        return {}
    env = {ENV_LIBRARY: str(path)}
    coretype = os.environ.get("OPENBLAS_CORETYPE") or openblas_coretype()
    if coretype:
        env["OPENBLAS_CORETYPE"] = coretype
    policy = os.environ.get("OMP_WAIT_POLICY") or wait_policy
    if policy:
        env["OMP_WAIT_POLICY"] = policy
    if threads is not None:
        env["OMP_NUM_THREADS"] = env["OPENBLAS_NUM_THREADS"] = str(int(threads))
    if preload:
        current = os.environ.get("LD_PRELOAD", "")
        env["LD_PRELOAD"] = str(path) if not current else f"{path}:{current}"
    return env


def _mapped_libraries() -> set[str]:
    """Basenames of the shared objects mapped into this process (Linux; empty elsewhere)."""
    try:
        text = Path("/proc/self/maps").read_text()
    except OSError:
        return set()
    return {Path(line.split()[-1]).name for line in text.splitlines() if "/" in line}


def blas_provider() -> str | None:
    """Path of the library that provides ``dgemm_`` in this process's global scope, if any.

    After :func:`activate_fast_blas` (or with ``LD_PRELOAD``) it is the fast BLAS; libraries loaded
    later (tblite) bind to it.
    """

    class _DlInfo(ctypes.Structure):
        _fields_ = [
            ("dli_fname", ctypes.c_char_p),
            ("dli_fbase", ctypes.c_void_p),
            ("dli_sname", ctypes.c_char_p),
            ("dli_saddr", ctypes.c_void_p),
        ]

    try:
        proc = ctypes.CDLL(None)
        addr = ctypes.cast(proc.dgemm_, ctypes.c_void_p)
        info = _DlInfo()
        if not proc.dladdr(addr, ctypes.byref(info)) or not info.dli_fname:
            return None
        return os.fsdecode(info.dli_fname)
    except (AttributeError, OSError):
        return None


def activate_fast_blas(wait_policy: str | None = "PASSIVE") -> bool:
    """Load the fast BLAS into this process's global scope so that tblite binds to it.

    Call before ``import tblite`` (:class:`~hts.oracle.xtb.XTBOracle` does). Idempotent; returns
    True if the fast BLAS is (now) what tblite uses or will use. Sets ``OPENBLAS_CORETYPE`` and
    ``OMP_WAIT_POLICY`` in ``os.environ`` first unless already set.
    """
    global _activated
    if _activated is not None:
        return True
    path = find_fast_blas()
    if path is None:
        fast_blas_env()  # logs the warning
        return False
    if "tblite._libtblite" in sys.modules:
        provider = blas_provider()
        if provider and "openblas" in Path(provider).name.lower():
            _activated = provider  # e.g. LD_PRELOAD did it already
            return True
        log.warning("tblite was imported before the fast BLAS was activated; it keeps its slow bundled BLAS")
        return False
    mapped = _mapped_libraries()
    env = fast_blas_env(wait_policy=wait_policy)
    for key in ("OPENBLAS_CORETYPE", "OMP_WAIT_POLICY"):
        if key in env and key not in os.environ:
            if key == "OMP_WAIT_POLICY" and "libgomp.so.1" in mapped:
                log.debug("libgomp already loaded; OMP_WAIT_POLICY=%s will not take effect", env[key])
            os.environ[key] = env[key]
    try:
        ctypes.CDLL(str(path), mode=ctypes.RTLD_GLOBAL)
    except OSError as exc:
        log.warning("cannot load the fast BLAS %s (%s); tblite keeps its bundled BLAS", path, exc)
        return False
    _activated = str(path)
    os.environ.setdefault(ENV_LIBRARY, str(path))  # child processes find the same library
    log.info("fast BLAS active for tblite: %s (OPENBLAS_CORETYPE=%s)", path, os.environ.get("OPENBLAS_CORETYPE"))
    return True


def spawn_with_fast_blas(
    args: Sequence[str], threads: int | None = None, preload: bool = True, **popen_kwargs: Any
) -> subprocess.Popen[Any]:
    """Start ``args`` as a child process with :func:`fast_blas_env` merged into its environment.

    ``preload`` (default True) puts the library in ``LD_PRELOAD`` so that any program using tblite
    benefits, not only those going through :mod:`hts.oracle`.
    """
    env = dict(popen_kwargs.pop("env", None) or os.environ)
    env.update(fast_blas_env(threads=threads, preload=preload))
    return subprocess.Popen(list(args), env=env, **popen_kwargs)


def reexec_with_fast_blas(threads: int | None = None) -> None:
    """Replace this Python process by itself with the fast-BLAS environment (``LD_PRELOAD``).

    For scripts that must import tblite at the top. Does nothing if no fast BLAS is installed or if
    the process was already re-executed (guarded by ``HTS_FAST_BLAS_REEXEC``); otherwise never returns.
    """
    if os.environ.get(ENV_REEXEC_GUARD) == "1":
        return
    env_add = fast_blas_env(threads=threads, preload=True)
    if not env_add:
        return
    env = {**os.environ, **env_add, ENV_REEXEC_GUARD: "1"}
    argv = list(getattr(sys, "orig_argv", [])) or [sys.executable, *sys.argv]
    log.info("re-executing with the fast BLAS: %s", " ".join(argv))
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, *argv[1:]], env)
