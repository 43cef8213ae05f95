"""Proposers: what turns a trial's knob setting into candidate configurations.

- :class:`RandomProposer` — the ``random`` baseline: uniform random configurations under the
  campaign's rules (allowed defect types, defect count bounds, maximum concentration), no LLM.
- :class:`LLMProposer` — the ``llm-fixed`` and ``llm-bo`` strategies: prompts the generator with
  property values and sampling settings taken from the knobs, and has it place exactly the
  composition of the ``n_*`` knobs, or use only the defect types the ``rule_*`` knobs leave on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from hts.campaign.config import Campaign
from hts.defects import PAD, ConfigBatch
from hts.hosts import Host


@dataclass
class Proposal:
    """The candidates of one trial (valid ones as a batch) and how many samples were drawn."""

    batch: ConfigBatch
    n_generated: int
    stats: dict[str, float]


class Proposer(Protocol):
    def propose(self, knobs: Mapping[str, Any], n: int, rng: np.random.Generator) -> Proposal: ...


def allowed_codes(host: Host, campaign: Campaign) -> np.ndarray:
    """(n_sites, n_codes) bool: which (site, new species) the campaign allows."""
    names = set(campaign_rules(host, campaign))
    ok = np.zeros_like(host.allowed)
    for r in host.rules:
        if r.name in names:
            ok[host.site_species_array == r.element, host.code_of(r.new_species)] = True
    return ok


def rule_knob(rule_name: str) -> str:
    """The knob that switches a defect rule on or off: ``rule_vac_S``, ``rule_S_to_Se``."""
    return "rule_" + rule_name.replace("->", "_to_")


def count_knob(rule_name: str) -> str:
    """The knob that sets the number of defects of one type: ``n_vac_S``, ``n_S_to_Se``."""
    return "n_" + rule_name.replace("->", "_to_")


def knob_composition(host: Host, knobs: Mapping[str, Any]) -> dict[str, int] | None:
    """``{rule name: count}`` from a trial's ``n_*`` knobs (``None`` when it has none)."""
    out = {r.name: round(float(knobs[count_knob(r.name)])) for r in host.rules if count_knob(r.name) in knobs}
    return out or None


def campaign_rules(host: Host, campaign: Campaign) -> list[str]:
    """Names of the host's rules the campaign allows, in the host's order."""
    names = set(campaign.defects.allowed or [r.name for r in host.rules])
    return [r.name for r in host.rules if r.name in names]


def knob_allowed(host: Host, allowed: np.ndarray, knobs: Mapping[str, Any]) -> np.ndarray:
    """``allowed`` narrowed by the trial's ``rule_*`` knobs (a rule whose knob is 0 is switched off;
    rules without a knob stay as they are). May be all False: no rule left."""
    out = allowed.copy()
    for r in host.rules:
        v = knobs.get(rule_knob(r.name))
        if v is not None and round(float(v)) == 0:
            out[host.site_species_array == r.element, host.code_of(r.new_species)] = False
    return out


# Random keys drawn at once by RandomProposer (rows x eligible sites: 128 MB of float64 and as much for
# their argsort); a trial's samples are drawn in chunks of at most this many keys, so that a large (legal)
# samples_per_trial stays bounded in memory. A trial that fits in one chunk (83,000 samples of an 8x8
# MoS2 host) draws exactly as before.
PROPOSE_CHUNK_ELEMENTS = 16_000_000


def max_defects(host: Host, campaign: Campaign) -> int:
    """The campaign's defect-count ceiling (``max_defects`` and ``max_concentration`` together)."""
    return max(1, min(campaign.defects.max_defects, int(campaign.defects.max_concentration * host.n_sites)))


class RandomProposer:
    """Uniform random configurations under the campaign's rules (vectorised)."""

    prompt_properties: tuple[str, ...] = ()  # no prompt: prompt knobs would be meaningless

    def __init__(self, host: Host, campaign: Campaign) -> None:
        self.host = host
        self.allowed = allowed_codes(host, campaign)
        self.sites = np.flatnonzero(self.allowed.any(axis=1))
        self.k_min = max(1, campaign.defects.min_defects)
        self.k_max = max(self.k_min, max_defects(host, campaign))

    def propose(self, knobs: Mapping[str, Any], n: int, rng: np.random.Generator) -> Proposal:
        k_hi = int(knobs.get("max_defects", self.k_max))
        step = max(1, PROPOSE_CHUNK_ELEMENTS // max(1, self.sites.size))
        if n <= step:
            return Proposal(self._draw(k_hi, n, rng), n, {})
        parts = [self._draw(k_hi, min(step, n - lo), rng) for lo in range(0, n, step)]
        return Proposal(ConfigBatch.concat(self.host, parts), n, {})

    def _draw(self, k_hi: int, n: int, rng: np.random.Generator) -> ConfigBatch:
        """``n`` random configurations, rows sorted by site."""
        ks = rng.integers(self.k_min, max(self.k_min, k_hi) + 1, size=n)
        width = int(ks.max())
        # A random permutation of the eligible sites per row; keep the first k.
        order = np.argsort(rng.random((n, self.sites.size)), axis=1)[:, :width]
        sites = self.sites[order].astype(np.int32)
        keep = np.arange(width)[None, :] < ks[:, None]
        sites = np.where(keep, sites, PAD)
        # Choose uniformly among the allowed species of each chosen site.
        safe = np.where(keep, sites, 0)
        options = self.allowed[safe]  # (n, width, n_codes)
        u = rng.random(options.shape) * options
        codes = np.argmax(u, axis=2).astype(np.int8)
        return ConfigBatch(self.host, sites, codes).sorted_rows()


class LLMProposer:
    """Samples from an LLM generator with prompt values and sampling settings from the knobs."""

    def __init__(self, host: Host, campaign: Campaign, generator: Any) -> None:
        self.host = host
        self.campaign = campaign
        self.generator = generator
        # What the generator was trained to condition on (None: not recorded; the template's properties),
        # and the value ranges it saw (None: not recorded).
        self.prompt_properties: list[str] | None = getattr(generator, "properties", None)
        self.prompt_ranges: dict[str, tuple[float, float]] | None = getattr(generator, "property_ranges", None)
        self.k_min = max(1, campaign.defects.min_defects)
        self.k_max = max(self.k_min, max_defects(host, campaign))
        self.allowed = allowed_codes(host, campaign)

    def propose(self, knobs: Mapping[str, Any], n: int, rng: np.random.Generator) -> Proposal:
        from llm.generation import GenerationRequest

        prompt_targets = {k.removeprefix("prompt_"): float(v) for k, v in knobs.items() if k.startswith("prompt_")}
        allowed = knob_allowed(self.host, self.allowed, knobs)
        composition = knob_composition(self.host, knobs)
        if composition is not None and not (self.k_min <= sum(composition.values()) <= self.k_max):
            # Ax keeps the counts' sum within the bounds; a hand-made setting outside draws nothing.
            return Proposal(ConfigBatch.empty(self.host), 0, {"no_rules": 1.0})
        if not allowed.any():  # every defect type switched off: nothing to generate, nothing spent
            return Proposal(ConfigBatch.empty(self.host), 0, {"no_rules": 1.0})
        req = GenerationRequest(
            self.host,
            prompt_targets,
            n=n,
            temperature=float(knobs.get("temperature", 1.0)),
            top_p=float(knobs.get("top_p", 1.0)),
            max_defects=int(knobs.get("max_defects", self.k_max)),
            min_defects=self.k_min,
            seed=int(rng.integers(2**31 - 1)),
            allowed=allowed,  # the decoder enforces the campaign's (and the knobs') subset of the rules
            composition=composition,  # exact counts per type (bo.defect_knobs: composition)
        )
        results = self.generator.generate([req])
        configs = [r.config for r in results if r.config is not None]
        # Unconstrained back ends (or vLLM's regex) may still produce what the campaign forbids.
        kept = [c for c in configs if all(allowed[s, self.host.code_of(sp)] for s, sp in c.defects)]
        stats = {
            "valid_fraction": len(configs) / max(1, len(results)),
            "allowed_fraction": len(kept) / max(1, len(configs)),
            "mean_tokens": float(np.mean([r.n_tokens for r in results])) if results else 0.0,
        }
        batch = ConfigBatch.from_configs(kept) if kept else ConfigBatch.empty(self.host)
        return Proposal(batch, len(results), stats)
