"""Near misses (candidates the surrogate puts just outside a window): the oracle's acquisition groups
them by make-up and vacancy clustering, and one the oracle confirms gets a motif and a place on the
shortlist."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from hts.campaign.config import parse_campaign
from hts.campaign.motifs import find_motifs, near_miss_groups, verified_motif
from hts.campaign.results import CampaignResults
from hts.campaign.shortlist import motif_table, shortlist
from hts.campaign.store import CampaignStore, CandidateRecord, TrialRecord, format_defects, sqlite_url
from hts.campaign.verifier import MIN_PROBABILITY, REFERENCE, Verifier
from hts.defects import ConfigBatch, DefectConfiguration
from hts.hosts import VAC, get_host
from tests.hts.campaign.conftest import fake_xtb_result
from tests.hts.campaign.store_fixtures import CAMPAIGN_YAML
from tests.hts.campaign.test_motifs import _nearest_s_pair, vacancy_gap

CAMPAIGN = parse_campaign(CAMPAIGN_YAML)  # homo_lumo_gap in [0.45, 0.75]
HOST = get_host("MoS2", (4, 4, 1))  # Mo 0-15, S 16-47


class BiasedScorer:
    """The toy surrogate of the motif tests, 0.2 eV too high everywhere."""

    def score(self, batch: ConfigBatch) -> SimpleNamespace:
        mean = vacancy_gap(batch)[:, None] + 0.2
        return SimpleNamespace(targets=["homo_lumo_gap"], mean=mean, std=np.full_like(mean, 0.05))


def test_a_confirmed_near_miss_gets_the_motif_its_bare_core_has():
    pair = _nearest_s_pair(False)
    decorated = DefectConfiguration.from_mapping(HOST, [(s, VAC) for s in pair] + [(3, "W"), (40, "Se")])
    # predicted 0.9 eV (outside), measured 0.7 eV: with the residual the spectators strip as for a hit
    assert BiasedScorer().score(ConfigBatch.from_configs([decorated])).mean[0, 0] > 0.75
    found = verified_motif(decorated, {"homo_lumo_gap": 0.7}, BiasedScorer(), CAMPAIGN)
    bare = ConfigBatch.from_configs([DefectConfiguration.from_mapping(HOST, [(s, VAC) for s in pair])])
    exact = find_motifs(bare, lambda b: (vacancy_gap(b) >= 0.45) & (vacancy_gap(b) <= 0.75))
    assert found["motif"] == exact.hashes()[0]
    assert found["core"] == format_defects(sorted((s, VAC) for s in pair))
    assert found["spectators"] == "3:W,40:Se"


def test_near_misses_of_one_make_up_and_clustering_are_one_group():
    one = [DefectConfiguration.from_mapping(HOST, [(s, VAC)]) for s in (16, 29, 44)]
    near, far = _nearest_s_pair(False), _nearest_s_pair(True)
    pairs = [DefectConfiguration.from_mapping(HOST, [(s, VAC) for s in p]) for p in (near, far)]
    groups = near_miss_groups(ConfigBatch.from_configs(one + pairs))
    assert len(set(groups[:3])) == 1  # one S vacancy wherever it sits
    assert len(set(groups)) == 3  # an adjacent pair and a distant pair differ from it and each other


def near_miss(hash_: str, sites: list[int], gap: float = 0.8) -> CandidateRecord:
    """A stored near miss: S vacancies at ``sites``, predicted at ``gap`` (outside the window) +- 0.05."""
    return CandidateRecord(
        hash=hash_,
        defects=format_defects([(s, VAC) for s in sites]),
        n_defects=len(sites),
        predictions={"homo_lumo_gap": (gap, 0.05)},
        distance=round(gap - 0.75, 6),
        hit=False,
    )


class Pending:
    def done(self) -> bool:
        return False

    def cancel(self) -> None:
        pass


def test_the_oracle_sends_one_near_miss_of_a_group_and_shortlists_a_confirmed_one(tmp_path):
    store = CampaignStore(sqlite_url(tmp_path / "campaign.sqlite"))
    try:
        three = [16, 29, 44]  # three S vacancies apart: the fake oracle puts them at 0.6 eV (inside)
        cands = [near_miss("a1", three), near_miss("a2", [17, 30, 45]), near_miss("b1", [16])]
        store.record_trial(TrialRecord(0, 0, "random", {}, 3, 3, 3, 0, {}, 0.1), cands)
        store.set_meta(REFERENCE, fake_xtb_result(()))
        motif_of = lambda config, measured: {  # noqa: E731
            "motif": "m-three",
            "core": format_defects(config.defects),
            "spectators": "",
        }
        v = Verifier(CAMPAIGN, HOST, tmp_path, store, lambda *a, key: Pending(), 2, progress=None, motif_of=motif_of)
        v.pump(MIN_PROBABILITY)
        sent = {h for h, _ in v.jobs.values()}
        assert len(sent) == 2 and "b1" in sent and len(sent & {"a1", "a2"}) == 1  # not both placements
        job = next(j for j, (h, _) in v.jobs.items() if h in {"a1", "a2"})
        hash_, defects = v.jobs.pop(job)
        v._record(hash_, defects, fake_xtb_result(defects))  # 0.6 eV: inside
        assert "m-three" in v.found and store.oracle_found_motifs()[hash_]["motif"] == "m-three"
        res = CampaignResults(tmp_path, CAMPAIGN, HOST, store)
        ranked = res.ranked()
        table = motif_table(ranked, HOST)
        assert list(table["motif"]) == ["m-three"] and list(table["verdict"]) == ["confirmed"]
        assert list(shortlist(ranked, HOST)["hash"]) == [hash_]
        assert res.summary()["confirmed_motifs"] == 1
        # a resumed verifier credits the confirmed motif and the near misses' group
        again = Verifier(CAMPAIGN, HOST, tmp_path, store, lambda *a, key: Pending(), 2, progress=None)
        assert "m-three" in again.found and again.groups[hash_] == v.groups[hash_]
        assert [r["hash"] for r in again._choose_pooled(1, MIN_PROBABILITY)] == ["b1"]  # a2: a credited group
    finally:
        store.close()


def test_a_rejected_near_miss_gets_no_motif(tmp_path):
    store = CampaignStore(sqlite_url(tmp_path / "campaign.sqlite"))
    try:
        store.record_trial(TrialRecord(0, 0, "random", {}, 1, 1, 1, 0, {}, 0.1), [near_miss("b1", [16])])
        store.set_meta(REFERENCE, fake_xtb_result(()))
        calls = []
        v = Verifier(
            CAMPAIGN,
            HOST,
            tmp_path,
            store,
            lambda *a, key: Pending(),
            1,
            progress=None,
            motif_of=lambda *a: calls.append(a),
        )
        v.pump(MIN_PROBABILITY)
        (job,) = v.jobs
        hash_, defects = v.jobs.pop(job)
        v._record(hash_, defects, fake_xtb_result(defects))  # 1.4 eV: outside
        assert calls == [] and store.oracle_found_motifs() == {} and not v.found
        assert motif_table(CampaignResults(tmp_path, CAMPAIGN, HOST, store).ranked(), HOST).empty
    finally:
        store.close()


def test_verification_at_the_end_of_a_resumed_campaign_gives_confirmed_near_misses_a_motif(
    tmp_path, tiny_surrogate, monkeypatch
):
    import hts.campaign.verify
    from hts.campaign.runner import verify_at_the_end

    seen = {}
    monkeypatch.setattr(hts.campaign.verify, "verify_top", lambda *a, motif_of=None, **k: seen.update(f=motif_of))
    verify_at_the_end(CAMPAIGN, HOST, tmp_path, tiny_surrogate)
    found = seen["f"](DefectConfiguration.from_mapping(HOST, [(16, VAC), (3, "W")]), {"homo_lumo_gap": 0.6})
    assert set(found) == {"motif", "core", "spectators"} and found["core"]


def test_a_confirmed_hit_is_counted_under_the_motif_the_oracle_values_give_it(tmp_path):
    """A hit whose stored core keeps a spectator (the surrogate thought it mattered) is shortlisted under
    the motif judged from xTB's values; an unverified hit keeps its stored motif."""
    store = CampaignStore(sqlite_url(tmp_path / "campaign.sqlite"))
    try:
        decorated = CandidateRecord(
            hash="h1",
            defects="16:VAC,29:VAC,40:Se,44:VAC",
            n_defects=4,
            predictions={"homo_lumo_gap": (0.6, 0.05)},
            distance=0.0,
            hit=True,
            motif="m-decorated",
            core="16:VAC,29:VAC,40:Se,44:VAC",
            spectators="",
        )
        other = CandidateRecord("h2", "29:VAC", 1, {"homo_lumo_gap": (0.6, 0.05)}, 0.0, True, "m-other", "29:VAC", "")
        store.record_trial(TrialRecord(0, 0, "random", {}, 2, 2, 2, 2, {}, 0.1), [decorated, other])
        store.set_meta(REFERENCE, fake_xtb_result(()))
        judged: list[tuple] = []

        def motif_of(config, measured):
            judged.append(config.defects)
            return {"motif": "m-bare", "core": "16:VAC,29:VAC,44:VAC", "spectators": "40:Se"}

        v = Verifier(CAMPAIGN, HOST, tmp_path, store, lambda *a, key: Pending(), 1, progress=None, motif_of=motif_of)
        config = DefectConfiguration.from_mapping(HOST, [(16, VAC), (29, VAC), (40, "Se"), (44, VAC)])
        v._record("h1", config.defects, fake_xtb_result(config.defects))  # inside: judged from the oracle's values
        assert judged == [config.defects] and "m-bare" in v.found
        frame = store.motifs_frame(oracle=True).set_index("hash")
        assert frame.loc["h1", "motif"] == "m-bare" and frame.loc["h1", "spectators"] == "40:Se"
        assert frame.loc["h2", "motif"] == "m-other"  # not verified: as stored
        assert store.motifs_frame().set_index("hash").loc["h1", "motif"] == "m-decorated"  # the hit as found
        assert CampaignResults(tmp_path, CAMPAIGN, HOST, store).summary()["confirmed_motifs"] == 1
    finally:
        store.close()
