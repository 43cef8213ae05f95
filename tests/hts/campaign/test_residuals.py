"""The oracle's residuals shared by a vacancy class (hts.campaign.residuals) and their use by the verifier."""

from __future__ import annotations

import numpy as np
import pytest

from hts.campaign.residuals import SHARED, OracleResiduals, vacancy_classes
from hts.campaign.store import CampaignStore, CandidateRecord, sqlite_url
from hts.campaign.verifier import MIN_PROBABILITY, REFERENCE
from hts.hosts import VAC, get_host
from tests.hts.campaign.test_pool import CAMPAIGN, add_trial, make_verifier

HOST = get_host(CAMPAIGN.host.material, CAMPAIGN.host.supercell)
S_SITES = [int(s) for s in HOST.sites_of("S")]
MO_SITES = [int(s) for s in HOST.sites_of("Mo")]


def test_the_shift_is_the_posterior_mean_of_the_class_bias() -> None:
    r = OracleResiduals(["gap", "lumo"])
    r.add((1, 0), [0.60, 0.9], {"gap": 0.30, "lumo": None})  # no LUMO from the oracle: skipped
    one = SHARED / (SHARED + 1 - SHARED)
    np.testing.assert_allclose(r.shift([(1, 0), (0, 1)]), [[-0.30 * one, 0.0], [0.0, 0.0]])
    r.add((1, 0), [0.50, 0.9], {"gap": 0.40, "lumo": 1.0})
    two = 2 * SHARED / (2 * SHARED + 1 - SHARED)
    np.testing.assert_allclose(r.shift([(1, 0)]), [[-0.20 * two, 0.1 * one]])


def test_substitutions_do_not_change_the_vacancy_class_and_vacancy_clustering_does() -> None:
    mo = MO_SITES[0]
    d = HOST.distance_matrix
    near = min(S_SITES, key=lambda s: d[mo, s])
    far = max(S_SITES, key=lambda s: d[mo, s])
    w_site = max(MO_SITES, key=lambda s: d[mo, s])
    bare, with_se, with_w, vac_near, vac_far = vacancy_classes(
        HOST,
        [
            [(mo, VAC)],
            [(mo, VAC), (near, "Se"), (far, "Se")],
            [(mo, VAC), (w_site, "W")],
            [(mo, VAC), (near, VAC)],
            [(mo, VAC), (far, VAC)],
        ],
    )
    assert bare == with_se == with_w
    assert vac_near != vac_far != bare


def cand(hash_: str, site: int, gap: float, motif: str) -> CandidateRecord:
    return CandidateRecord(
        hash=hash_,
        defects=f"{site}:VAC",
        n_defects=1,
        predictions={"homo_lumo_gap": (gap, 0.05)},
        distance=0.0,
        hit=True,
        motif=motif,
        core=f"{site}:VAC",
        spectators="",
    )


@pytest.mark.parametrize("oracle_rejected_an_s_vacancy", [False, True])
def test_a_rejection_moves_the_next_choice_to_another_vacancy_class(tmp_path, oracle_rejected_an_s_vacancy) -> None:
    store = CampaignStore(sqlite_url(tmp_path / "campaign.sqlite"))
    try:
        # window [0.45, 0.75]: the S vacancies at 0.60 are surer hits than the Mo vacancy at 0.52
        add_trial(
            store,
            0,
            [
                cand("a000", S_SITES[0], 0.60, "vs0"),
                cand("a001", S_SITES[1], 0.60, "vs1"),
                cand("a002", S_SITES[2], 0.60, "vs2"),
                cand("b000", MO_SITES[0], 0.52, "vmo"),
            ],
        )
        if oracle_rejected_an_s_vacancy:
            store.record_oracle("a000", "converged", {"homo_lumo_gap": 0.30})  # 0.30 below the prediction
        v = make_verifier(store, tmp_path, slots=1)
        chosen = v._choose(1, MIN_PROBABILITY)[0]["hash"]
        assert chosen == ("b000" if oracle_rejected_an_s_vacancy else "a000")
        assert v._choose_ranked(1, MIN_PROBABILITY)[0]["hash"] == chosen
    finally:
        store.close()


def test_a_result_that_comes_in_teaches_the_next_choice(tmp_path) -> None:
    from tests.hts.campaign.conftest import fake_xtb_result

    store = CampaignStore(sqlite_url(tmp_path / "campaign.sqlite"))
    try:
        add_trial(store, 0, [cand("a000", S_SITES[0], 0.60, "vs0"), cand("a001", S_SITES[1], 0.60, "vs1")])
        add_trial(store, 1, [cand("b000", MO_SITES[0], 0.52, "vmo")])
        v = make_verifier(store, tmp_path, slots=1)
        store.set_meta(REFERENCE, fake_xtb_result(()))  # a whole pristine result, as the oracle stores it
        first = v._choose(1, MIN_PROBABILITY)[0]
        assert first["hash"] == "a000"
        v.predicted["a000"] = first["mean"]
        defects = ((S_SITES[0], VAC),)
        v._record("a000", defects, fake_xtb_result(defects))  # xTB: 1.4 eV, far above the 0.60 predicted
        (key,) = vacancy_classes(HOST, [defects])
        assert v.residuals.counts[key][0] == 1 and v.residuals.shift([key])[0, 0] > 0.3
        assert v._choose(1, MIN_PROBABILITY)[0]["hash"] == "b000"  # the other S vacancy is now predicted outside
    finally:
        store.close()
