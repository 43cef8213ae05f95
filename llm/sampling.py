"""Uniform random defect configurations under a host's rules (pretraining corpus, tests, baselines)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from hts.defects import DefectConfiguration
from hts.hosts import Host

if TYPE_CHECKING:  # pragma: no cover
    from llm.generation import GenerationRequest, GenerationResult


def random_configuration(
    host: Host, n_defects: int, rng: np.random.Generator, allowed: np.ndarray | None = None
) -> DefectConfiguration:
    """``n_defects`` distinct random sites, each given a random species its rules (or ``allowed``) permit."""
    mask = host.allowed if allowed is None else allowed
    candidates = np.flatnonzero(mask.any(axis=1))
    sites = rng.choice(candidates, size=min(n_defects, candidates.size), replace=False)
    defects = {int(s): host.species_codes[int(rng.choice(np.flatnonzero(mask[s])))] for s in sites}
    return DefectConfiguration.from_mapping(host, defects)


def random_configurations(
    host: Host,
    n: int,
    max_defects: int,
    rng: np.random.Generator,
    min_defects: int = 1,
    allowed: np.ndarray | None = None,
) -> list[DefectConfiguration]:
    """``n`` random configurations with a uniform number of defects in ``[min_defects, max_defects]``."""
    counts = rng.integers(min_defects, max_defects + 1, size=n)
    return [random_configuration(host, int(k), rng, allowed) for k in counts]


def rule_mask(host: Host, rules: Sequence[int]) -> np.ndarray:
    """(n_sites, n_codes) bool: the (site, new species) pairs of the host's rules numbered ``rules``."""
    mask = np.zeros_like(host.allowed)
    for k in rules:
        r = host.rules[int(k)]
        mask[host.site_species_array == r.element, host.code_of(r.new_species)] = True
    return mask


def random_rule_subset_configurations(
    host: Host, n: int, max_defects: int, rng: np.random.Generator, min_defects: int = 1
) -> list[DefectConfiguration]:
    """``n`` random configurations, each drawn under a random non-empty subset of the host's rules.

    Uniform configurations under all rules almost always contain every defect type once they hold a
    few defects (for MoS2 with 12 defects, 93 % contain a vacancy); drawing the rules first also
    covers the substitution-only, vacancy-only and single-type patterns that set the extremes of the
    property ranges (e.g. the pristine-like band gap), as 2DMD's low-density types do.
    """
    n_rules = len(host.rules)
    masks = [rule_mask(host, [k for k in range(n_rules) if (bits >> k) & 1]) for bits in range(1, 2**n_rules)]
    picks = rng.integers(0, len(masks), size=n)
    counts = rng.integers(min_defects, max_defects + 1, size=n)
    return [random_configuration(host, int(k), rng, masks[int(m)]) for m, k in zip(picks, counts, strict=True)]


class RandomGenerator:
    """The ``random`` baseline as a :class:`~llm.generation.Generator`: uniform random configurations
    under the host's rules (defect count uniform in the request's budget), no language model.

    Also a fast stand-in for the LLM in tests of the campaign loop."""

    encoding = "sparse"

    def __init__(self, default_max_defects: int = 12, seed: int = 0) -> None:
        self.default_max_defects = default_max_defects
        self.rng = np.random.default_rng(seed)

    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        from llm.encodings import encode_answer
        from llm.generation import GenerationResult

        out = []
        for ri, req in enumerate(requests):
            rng = np.random.default_rng(req.seed) if req.seed is not None else self.rng
            hi = req.max_defects if req.max_defects is not None else self.default_max_defects
            mask = req.host.allowed if req.allowed is None else req.allowed
            hi = min(hi, int(mask.any(axis=1).sum()))
            lo = min(req.min_defects, hi)
            for cfg in random_configurations(req.host, req.n, hi, rng, min_defects=lo, allowed=mask):
                out.append(GenerationResult(ri, encode_answer(cfg, "sparse"), cfg, None, 0))
        return out
