"""fix_hash_seed: the program re-executes itself once with a fixed string-hash salt."""

from __future__ import annotations

import os
import subprocess
import sys

PROBE = (
    "from hts.hashseed import fix_hash_seed; fix_hash_seed(); "
    "import os; print(os.environ['PYTHONHASHSEED'], hash('vac_S'))"
)


def _probe(**env: str) -> str:
    base = {k: v for k, v in os.environ.items() if k != "PYTHONHASHSEED"}
    run = subprocess.run([sys.executable, "-c", PROBE], env={**base, **env}, capture_output=True, text=True, check=True)
    return run.stdout


def test_unset_salt_is_fixed_so_string_hashes_repeat():
    first, second = _probe(), _probe()
    assert first == second and first.startswith("0 ")


def test_a_salt_the_user_set_is_kept():
    assert _probe(PYTHONHASHSEED="7").startswith("7 ")
    assert _probe(PYTHONHASHSEED="random").startswith("random ")
