"""A fixed string-hash seed, so that a campaign's ``seed`` fixes its trials from one run to the next.

Python salts ``hash(str)`` per process (``PYTHONHASHSEED``), and so the iteration order of a set of
strings. Ax's integer rounding under a parameter constraint (``llm-bo``'s per-type defect counts
must sum to at most ``max_defects``) draws one random number per count parameter while iterating
over a set of their names (``ax.adapter.transforms.int_to_float``), so which count gets which draw
changes with the salt, and so do the trials (BENCHMARKS.md, "Research explorations": string-hash
salt). Ax seeds the draws (``Client.get_next_trials`` seeds ``random``, NumPy and torch with the
client's seed); their order needs the salt fixed before the interpreter starts, which
:func:`fix_hash_seed` does by re-executing the program once. ``hts`` and the strategy benchmark call
it; a program that runs campaigns through the Python API should set ``PYTHONHASHSEED`` itself for
runs that repeat exactly.
"""

from __future__ import annotations

import os
import sys

DEFAULT = "0"


def fix_hash_seed() -> None:
    """Re-execute this Python program with ``PYTHONHASHSEED=0`` unless the variable is set already
    (any value is respected, ``random`` included). Call it first thing in a program's entry point."""
    if os.environ.get("PYTHONHASHSEED") is not None:
        return
    env = {**os.environ, "PYTHONHASHSEED": DEFAULT}
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], env)
