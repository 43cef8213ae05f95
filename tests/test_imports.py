"""`import hts` (and llm, surrogate, the CLI) must not import heavy packages."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ["torch", "transformers", "peft", "catboost", "pymatgen", "distributed", "ax", "botorch", "tblite", "vllm"]


@pytest.mark.parametrize(
    "module",
    [
        "hts",
        "llm",
        "surrogate",
        "hts.hosts",
        "hts.defects",
        "hts.canonical",
        "hts.twodmd",
        "hts.campaign.config",
        "hts.oracle",
        "hts.cli",
    ],
)
def test_import_is_light(module):
    code = f"import sys, {module}; print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "", f"import {module} pulled in: {out}"
