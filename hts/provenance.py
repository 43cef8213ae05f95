"""Provenance written next to every output: versions, git hash, command settings, seeds."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def git_hash() -> str | None:
    """The current commit of the source tree, or ``None`` outside a git checkout."""
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def package_versions(
    names: tuple[str, ...] = (
        "numpy",
        "pymatgen",
        "catboost",
        "torch",
        "transformers",
        "peft",
        "ax-platform",
        "botorch",
        "dask",
        "tblite",
    ),
) -> dict[str, str]:
    """Installed versions of the named distributions (missing ones are left out)."""
    from importlib import metadata

    out = {}
    for n in names:
        try:
            out[n] = metadata.version(n)
        except metadata.PackageNotFoundError:
            continue
    return out


def provenance(settings: dict[str, Any]) -> dict[str, Any]:
    """Settings plus hts version, git hash, Python, platform and package versions."""
    from hts import __version__

    return {
        "settings": settings,
        "hts_version": __version__,
        "git_hash": git_hash(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "packages": package_versions(),
    }


def write_provenance(path: str | os.PathLike[str], settings: dict[str, Any]) -> None:
    """Write :func:`provenance` as JSON to ``path``."""
    Path(path).write_text(json.dumps(provenance(settings), indent=2, default=str) + "\n")
