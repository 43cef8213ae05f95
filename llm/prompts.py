"""The instruction (prompt) text, shared by all encodings, in the study's wording.

A prompt names the host material and supercell, lists the host's defect rules as 2DMD dicts, states
the properties conditioned on (none for an unconditional prompt), gives the order to change only
atom symbols (VAC for a vacancy), and ends with the encoding's answer header::

    Here is a TMDC material (MoS2), unitcell of size [8, 8, 1].
    The defects for this material MoS2 are generated based on following rules:
    {'type': 'substitution', 'from': 'Mo', 'to': 'W'}
    ...
    {'type': 'vacancy', 'element': 'S'}.

    The material has the following properties:
    - The band gap is 1.23.

    Generate defects in the crystal structure, of the following types (vacancy, substitutional).
    You are only allowed to change the atom symbol (in the case of vacancy replace it with VAC)
    without changing anything else.   [one line in the prompt]

    Crystal structure:

The answer (see :mod:`llm.encodings`) follows the last line directly.
"""

from __future__ import annotations

from collections.abc import Mapping

from hts.hosts import Host
from llm.properties import PROPERTIES, normalize_targets

_TMDC = {"MoS2", "WSe2"}

_TAIL = {
    "cif": (
        "You are only allowed to change the atom symbol (in the case of vacancy replace it with VAC) "
        "without changing anything else.\n\nCrystal structure:\n"
    ),
    "sites": (
        "You are only allowed to change the atom symbol (in the case of vacancy replace it with VAC). "
        "Write the symbol of every site in the fixed site order.\n\nSites:\n"
    ),
    "sparse": (
        "You are only allowed to change the atom symbol (in the case of vacancy replace it with VAC). "
        "List only the changed sites as site index and new symbol, in increasing site order.\n\nDefects:\n"
    ),
}


def rules_text(host: Host) -> str:
    """The host's defect rules as the study wrote them: one 2DMD dict per line, a final period."""
    return "\n".join(str(rule.as_2dmd()) for rule in host.rules) + "."


def host_header(host: Host) -> str:
    """First lines of every prompt: material, supercell and defect rules."""
    kind = "TMDC" if host.name in _TMDC else "2D"
    size = ", ".join(str(x) for x in host.supercell)
    return (
        f"Here is a {kind} material ({host.name}), unitcell of size [{size}].\n"
        f"The defects for this material {host.name} are generated based on following rules:\n"
        f"{rules_text(host)}\n"
    )


def build_prompt(host: Host, targets: Mapping[str, float] | None, encoding: str) -> str:
    """The full instruction for ``host`` conditioned on ``targets`` (property -> value), ending with
    the answer header of ``encoding``. ``targets`` empty or ``None`` gives the unconditional prompt."""
    from llm.encodings import check_encoding

    encoding = check_encoding(encoding)
    norm = normalize_targets(targets)
    parts = [host_header(host)]
    if norm:
        lines = "\n".join(f"- {PROPERTIES[k].sentence(v)}" for k, v in norm.items())
        parts.append(f"\nThe material has the following properties:\n{lines}\n")
    kinds = sorted({"vacancy" if r.kind == "vacancy" else "substitutional" for r in host.rules}, reverse=True)
    parts.append(
        f"\nGenerate defects in the crystal structure, of the following types ({', '.join(kinds)}).\n" + _TAIL[encoding]
    )
    return "".join(parts)
