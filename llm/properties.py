"""Properties a prompt can condition on: their names, prompt wording and rounding.

Names are the 2DMD column names (``targets.csv.gz``). Values are rounded to a fixed number of
decimals in prompts (digits are single tokens, so every decimal costs one token): 2 for energies in
eV that vary by tenths of an eV between structures, 4 for the energy per atom, whose differences
between configurations are meV-sized (the study wrote 4 decimals for every property).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from hts.errors import ConfigError


@dataclass(frozen=True)
class PropertySpec:
    """One property: 2DMD column ``name``, the sentence that states it, decimals in prompts."""

    name: str
    phrase: str
    decimals: int
    aliases: tuple[str, ...] = ()

    def format(self, value: float) -> str:
        """``value`` rounded to :attr:`decimals` (never ``-0.00``)."""
        text = f"{round(float(value), self.decimals) + 0.0:.{self.decimals}f}"
        return "0." + "0" * self.decimals if text.lstrip("-") == "0." + "0" * self.decimals else text

    def sentence(self, value: float) -> str:
        """``The band gap is 1.23.`` (the study's wording: no units)."""
        return f"{self.phrase} {self.format(value)}."


PROPERTIES: dict[str, PropertySpec] = {
    p.name: p
    for p in (
        PropertySpec("homo", "The HOMO energy is", 2, ("homo_energy",)),
        PropertySpec("lumo", "The LUMO energy is", 2, ("lumo_energy",)),
        PropertySpec("homo_lumo_gap", "The band gap is", 2, ("gap", "band_gap", "bandgap")),
        PropertySpec("formation_energy", "The formation energy is", 2, ("ef", "e_form")),
        PropertySpec("energy_per_atom", "The energy per atom is", 4, ("epa",)),
        PropertySpec("fermi_level", "The Fermi level is", 2, ("fermi", "ef_level")),
        PropertySpec("normalized_homo", "The HOMO above the valence band maximum is", 2, ("homo_above_vbm",)),
        PropertySpec("normalized_lumo", "The LUMO above the valence band maximum is", 2, ("lumo_above_vbm",)),
        PropertySpec("formation_energy_per_site", "The formation energy per defect site is", 2, ("ef_per_site",)),
    )
}
"""The conditioning properties, in the order they appear in prompts. The last three are not the study's:
levels relative to the pristine host's valence band maximum (2DMD's normalised HOMO/LUMO) carry a
defect level across hosts whose absolute energies differ (the h-BN and black-phosphorus campaigns
target them), and the formation energy per defect site compares cells with different defect counts."""

STUDY_PROPERTIES: tuple[str, ...] = (
    "homo",
    "lumo",
    "homo_lumo_gap",
    "formation_energy",
    "energy_per_atom",
    "fermi_level",
)
"""The six properties the study's prompts condition on: what a generator that does not record its
properties (e.g. a Llama-3 adapter trained elsewhere) is taken to understand."""


def canonical_property(name: str) -> str:
    """Resolve a property name or alias (case-insensitive) to its 2DMD column name."""
    key = name.strip().lower().replace("-", "_")
    for spec in PROPERTIES.values():
        if key == spec.name or key in spec.aliases:
            return spec.name
    raise ConfigError(f"unknown property {name!r}; known: {', '.join(PROPERTIES)} (aliases: gap, band_gap)")


def normalize_targets(targets: Mapping[str, float] | None) -> dict[str, float]:
    """Targets with canonical names, in prompt order; raises :class:`ConfigError` on unknown/NaN."""
    out: dict[str, float] = {}
    for name, value in (targets or {}).items():
        key = canonical_property(name)
        v = float(value)
        if v != v:
            raise ConfigError(f"target {name!r} is NaN")
        out[key] = v
    return {k: out[k] for k in PROPERTIES if k in out}


def round_targets(targets: Mapping[str, float]) -> dict[str, float]:
    """Targets rounded as the prompt states them (what the model is actually asked for)."""
    norm = normalize_targets(targets)
    return {k: float(PROPERTIES[k].format(v)) for k, v in norm.items()}
