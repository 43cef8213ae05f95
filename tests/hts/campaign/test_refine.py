"""Surrogate-screened local search (hts.campaign.refine)."""

from __future__ import annotations

import numpy as np

from hts.campaign.config import parse_campaign
from hts.campaign.proposers import RandomProposer, allowed_codes
from hts.campaign.refine import RefiningProposer, neighbours
from hts.hosts import get_host
from surrogate.model import SurrogateModel
from surrogate.scoring import score_batch
from tests.hts.campaign.conftest import campaign_text

HOST = get_host("MoS2", (4, 4, 1))


def _moves(a: dict[int, str], b: dict[int, str]) -> int:
    """Defects that differ between two configurations (a move counts 2, a change, add or remove 1)."""
    return sum(1 for s in set(a) | set(b) if a.get(s) != b.get(s))


def test_neighbours_are_valid_one_move_variants_within_the_bounds(tiny_surrogate):
    campaign = parse_campaign(campaign_text(tiny_surrogate))
    allowed = allowed_codes(HOST, campaign)
    rng = np.random.default_rng(0)
    seeds = RandomProposer(HOST, campaign).propose({}, 20, rng).batch
    near = neighbours(seeds, 30, allowed, 1, 6, rng)
    assert len(near) > 0.9 * 20 * 30 and near.validate().all()
    assert (near.n_defects >= 1).all() and (near.n_defects <= 6).all()
    originals = [c.as_dict() for c in seeds.to_configs()]
    for config in near.to_configs()[:200]:
        assert min(_moves(o, config.as_dict()) for o in originals) <= 2


def test_refining_keeps_the_samples_and_adds_screened_neighbours(tiny_surrogate):
    campaign = parse_campaign(campaign_text(tiny_surrogate))
    model = SurrogateModel.load(tiny_surrogate)

    class Scorer:
        def score(self, batch):
            return score_batch(model, batch)

    inner = RandomProposer(HOST, campaign)
    refined = RefiningProposer(inner, HOST, campaign, Scorer(), per_seed=50)
    plain = inner.propose({}, 16, np.random.default_rng(1))
    out = refined.propose({}, 16, np.random.default_rng(1))
    assert out.n_generated == 16 and len(out.batch) > len(plain.batch)
    np.testing.assert_array_equal(out.batch.sites[: len(plain.batch), : plain.batch.sites.shape[1]], plain.batch.sites)
    assert out.stats["refine_scored"] > 0.9 * 16 * 50
