"""Refitting the surrogate on the oracle's labels (hts.campaign.refit): which labels count, where the
training data is found, the refitted model's folder and what the store remembers of it.

A tiny model (32 synthetic rows, 20 CatBoost iterations) stands in for the campaign's surrogate."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from hts.campaign.refit import REFIT_META, dataset_path, oracle_labels, refit_surrogate
from hts.campaign.store import CampaignStore, CandidateRecord, TrialRecord, format_defects, sqlite_url
from hts.defects import DefectConfiguration
from hts.errors import ModelError
from hts.hosts import get_host

HOST = get_host("MoS2", (4, 4, 1))
TARGETS = ["homo_lumo_gap", "formation_energy"]
S = [int(s) for s in HOST.sites_of("S")]
MO = [int(s) for s in HOST.sites_of("Mo")]
# a candidate per hash: its defects (all valid on the 4x4 host)
DEFECTS = {
    "conv": [(S[0], "VAC")],
    "retry": [(S[1], "VAC"), (S[2], "Se")],
    "fail": [(MO[0], "W")],
    "err": [(MO[1], "VAC")],
    "partial": [(S[3], "Se")],
}
HELD_OUT = 4  # training rows the model held out for its test figures


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """A surrogate that records its dataset (written to disk) and the rows it held out."""
    from surrogate.features import make_featuriser
    from surrogate.model import SurrogateModel
    from surrogate.training import load_dataset
    from tests.surrogate.synthetic import make_dataset, write_dataset

    root = tmp_path_factory.mktemp("refit")
    data = write_dataset(root / "data", make_dataset(per_concentration=8, seed=0))
    ds = load_dataset(data, host="MoS2")
    model = SurrogateModel.fit(
        make_featuriser("sparse"),
        ds.batch(),
        ds.table,
        TARGETS,
        params={"iterations": 20, "depth": 3},
        thread_count=1,
        calibrate=False,
        meta={"dataset": str(data), "split": {"test_ids": ds.ids[:HELD_OUT]}},
    )
    return model.save(root / "surrogate")


def _store(path: Path, oracle: dict[str, tuple[str, dict]]) -> CampaignStore:
    store = CampaignStore(sqlite_url(path))
    cands = [
        CandidateRecord(h, format_defects(d), len(d), {"homo_lumo_gap": (0.6, 0.1)}, 0.0, True)
        for h, d in DEFECTS.items()
    ]
    store.record_trial(TrialRecord(0, 0, "random", {}, 5, 5, 5, 5, {}, 0.1), cands)
    for h, (status, result) in oracle.items():
        store.record_oracle(h, status, result)
    return store


ORACLE = {
    "conv": ("converged", {"homo_lumo_gap": 0.7, "formation_energy": 3.0, "energy": -1.0}),
    "retry": ("converged_after_retry", {"homo_lumo_gap": 0.9, "formation_energy": 5.0}),
    "fail": ("failed", {"homo_lumo_gap": 0.1, "scf_status": "failed"}),
    "err": ("error", {"error": "RuntimeError: lost worker"}),
    "partial": ("converged", {"homo_lumo_gap": 1.1}),  # no formation energy (no chemical potentials)
    "ghost": ("converged", {"homo_lumo_gap": 0.5, "formation_energy": 1.0}),  # not a stored candidate
}


def _labels_by_config(configs, labels) -> dict[tuple, list[float]]:
    return {c.defects: row for c, row in zip(configs, labels.to_numpy().tolist(), strict=True)}


def test_only_converged_results_of_stored_candidates_are_labels(tmp_path):
    store = _store(tmp_path / "s.sqlite", ORACLE)
    try:
        configs, labels = oracle_labels(store, HOST, TARGETS)
    finally:
        store.close()
    assert list(labels.columns) == TARGETS and labels.dtypes.eq(float).all()
    got = _labels_by_config(configs, labels)
    want = {h: DefectConfiguration.from_mapping(HOST, DEFECTS[h]).defects for h in ("conv", "retry", "partial")}
    assert set(got) == set(want.values())
    assert got[want["conv"]] == [0.7, 3.0]
    assert got[want["retry"]] == [0.9, 5.0]
    assert got[want["partial"]][0] == 1.1 and math.isnan(got[want["partial"]][1])


def test_no_oracle_results_are_no_labels(tmp_path):
    store = _store(tmp_path / "s.sqlite", {})
    try:
        configs, labels = oracle_labels(store, HOST, TARGETS)
    finally:
        store.close()
    assert configs == [] and labels.empty and list(labels.columns) == TARGETS


def test_dataset_path_is_found_as_recorded_or_beside_the_model(tmp_path, monkeypatch):
    model = tmp_path / "model"
    (model / "data").mkdir(parents=True)
    absolute = tmp_path / "abs-data"
    absolute.mkdir()
    assert dataset_path(str(absolute), model) == absolute
    monkeypatch.chdir(tmp_path)  # a relative path is not found from the working folder by accident
    assert dataset_path("data", model) == model / "data"
    for missing in (None, "", "None"):
        with pytest.raises(ModelError, match=f"{model} does not record the dataset"):
            dataset_path(missing, model)
    with pytest.raises(ModelError, match=r"the training data of .*model \(gone/data\) is not here"):
        dataset_path("gone/data", model)


def test_refit_adds_the_labels_to_the_training_rows_and_is_remembered(tmp_path, model_dir):
    from surrogate.model import SurrogateModel

    out = tmp_path / "campaign"
    out.mkdir()
    store = _store(out / "campaign.sqlite", ORACLE)
    try:
        dest = refit_surrogate(model_dir, store, HOST, out, thread_count=1)
        assert dest == out / "surrogate-refit-3"  # three labels: conv, retry, partial
        assert store.get_meta(REFIT_META) == str(dest)
        assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["surrogate-refit-3"]  # no temporary left
        new, old = SurrogateModel.load(dest), SurrogateModel.load(model_dir)
        assert new.meta["refit"] == {"from": str(model_dir), "oracle_labels": 3, "dataset_rows": 32 - HELD_OUT}
        assert new.meta["dataset"] == old.meta["dataset"] and new.meta["split"] == old.meta["split"]
        assert new.targets == old.targets and new.params == old.params
        # the same labels again: nothing new to learn, no second folder
        assert refit_surrogate(model_dir, store, HOST, out, thread_count=1) is None
        # one more label: a new model beside the first
        store.record_oracle("err", "converged", {"homo_lumo_gap": 0.4, "formation_energy": 2.0})
        assert refit_surrogate(dest, store, HOST, out, thread_count=1) == out / "surrogate-refit-4"
        assert SurrogateModel.load(out / "surrogate-refit-4").meta["refit"]["from"] == str(dest)
        assert store.get_meta(REFIT_META) == str(out / "surrogate-refit-4")
    finally:
        store.close()


def test_no_converged_label_refits_nothing(tmp_path, model_dir):
    store = _store(tmp_path / "s.sqlite", {k: v for k, v in ORACLE.items() if k in ("fail", "err", "ghost")})
    try:
        assert refit_surrogate(model_dir, store, HOST, tmp_path, thread_count=1) is None
        assert store.get_meta(REFIT_META) is None
    finally:
        store.close()
    assert not list(tmp_path.glob("surrogate-refit-*"))


def test_a_refit_that_fails_to_write_leaves_no_folder_and_the_old_model_in_use(tmp_path, model_dir, monkeypatch):
    import surrogate.model

    seen: list[str] = []

    def broken(_obj):
        seen.extend(p.name for p in tmp_path.iterdir() if p.is_dir())  # what save had written by then
        raise OSError("disk full")

    monkeypatch.setattr(surrogate.model, "jsonable", broken)  # model.json cannot be written
    store = _store(tmp_path / "s.sqlite", ORACLE)
    try:
        with pytest.raises(OSError, match="disk full"):
            refit_surrogate(model_dir, store, HOST, tmp_path, thread_count=1)
        assert store.get_meta(REFIT_META) is None
    finally:
        store.close()
    assert len(seen) == 1 and seen[0].startswith(".surrogate-refit-3.")  # written beside, under a temporary name
    assert [p.name for p in tmp_path.iterdir() if p.is_dir()] == []  # neither the model nor its temporary


def test_a_model_without_its_dataset_cannot_be_refitted(tmp_path, tiny_surrogate):
    store = _store(tmp_path / "s.sqlite", ORACLE)
    try:
        with pytest.raises(ModelError, match="does not record the dataset it was trained on"):
            refit_surrogate(tiny_surrogate, store, HOST, tmp_path, thread_count=1)
        assert store.get_meta(REFIT_META) is None
    finally:
        store.close()
    assert not list(tmp_path.glob("surrogate-refit-*"))
