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


# -- the background refit in a campaign ------------------------------------------------------------------
class _Store:
    """What the Refitter asks of a store: its meta."""

    def __init__(self) -> None:
        self.meta: dict[str, str] = {}

    def set_meta(self, key: str, value: str) -> None:
        self.meta[key] = value


def _refitter(tmp_path, monkeypatch, every: int = 4):
    """A Refitter whose plans are numbered jobs and whose fits are futures the test completes."""
    from concurrent.futures import Future

    import hts.campaign.refit as refit

    planned: list[Path] = []
    started: list[Future] = []

    def plan(model, store, host, out_dir):
        planned.append(model)
        return f"job-{len(planned)}"

    def start(job):
        started.append(Future())
        return started[-1]

    monkeypatch.setattr(refit, "plan_refit", plan)
    monkeypatch.setattr(refit, "REFIT_EVERY", every)
    models: list[Path] = []
    r = refit.Refitter(_Store(), HOST, tmp_path, tmp_path / "original", models.append, start=start)
    return r, planned, started, models


def test_a_refit_runs_in_the_background_and_the_scorer_moves_on_once_it_is_done(tmp_path, monkeypatch):
    r, planned, started, models = _refitter(tmp_path, monkeypatch)
    rescored: list[Path] = []  # the model in use each time the verifier's pool is re-predicted
    r.after = lambda: rescored.append(models[-1])
    for stored in range(4):
        r(stored)
    assert planned == [] and not r.busy  # fewer than REFIT_EVERY results
    r(4)
    assert planned == [tmp_path / "original"] and r.busy
    for stored in (5, 6, 7):  # the loop goes on with the model in use
        r(stored)
    assert len(started) == 1 and models == [] and rescored == []
    started[0].set_result(str(tmp_path / "refit-8"))
    r(7)
    assert models == [tmp_path / "refit-8"] and r.model == tmp_path / "refit-8" and rescored == models
    assert r.store.meta[REFIT_META] == str(tmp_path / "refit-8")
    assert not r.busy  # fewer than REFIT_EVERY new results since the refit started
    r(8)
    assert planned[-1] == tmp_path / "refit-8" and len(started) == 2
    r(20)  # no second refit while one runs, however many results come in
    assert len(started) == 2
    started[1].set_result(str(tmp_path / "refit-16"))
    r(20)  # 12 results came in during that refit: the next starts at once
    assert models[-1] == tmp_path / "refit-16" and len(started) == 3


def test_a_failed_refit_is_logged_and_the_model_in_use_stays(tmp_path, monkeypatch, caplog):
    r, _planned, started, models = _refitter(tmp_path, monkeypatch)
    r(4)
    started[0].set_exception(MemoryError("out of memory"))
    with caplog.at_level("ERROR"):
        r(5)
    assert "surrogate refit failed (MemoryError: out of memory)" in caplog.text
    assert models == [] and r.model == tmp_path / "original" and REFIT_META not in r.store.meta
    r(8)  # the next one starts as usual
    assert len(started) == 2


def test_nothing_new_to_fit_on_starts_nothing(tmp_path, monkeypatch):
    import hts.campaign.refit as refit

    r, _planned, started, _models = _refitter(tmp_path, monkeypatch)
    monkeypatch.setattr(refit, "plan_refit", lambda *a: None)
    r(4)
    assert started == [] and not r.busy


def test_close_cancels_a_running_refit(tmp_path, monkeypatch):
    r, _planned, started, _models = _refitter(tmp_path, monkeypatch)
    r(4)
    r.close()
    assert started[0].cancelled() and not r.busy


def _planned(model: Path, tmp_path: Path):
    """The refit of ``model`` on the ORACLE store's labels."""
    from hts.campaign.refit import plan_refit

    store = _store(tmp_path / "s.sqlite", ORACLE)
    try:
        return plan_refit(model, store, HOST, tmp_path)
    finally:
        store.close()


def test_a_refit_in_a_process_of_its_own_fits_the_oracles_labels(tmp_path, model_dir):
    from hts.campaign.refit import start_process
    from surrogate.model import SurrogateModel

    job = _planned(model_dir, tmp_path)
    assert job is not None and job.dest == tmp_path / "surrogate-refit-3"
    dest = start_process(job).result()
    assert dest == job.dest and SurrogateModel.load(dest).meta["refit"]["oracle_labels"] == 3


def test_a_refit_process_that_fails_names_why(tmp_path, tiny_surrogate):
    from hts.campaign.refit import start_process

    job = _planned(tiny_surrogate, tmp_path)
    assert job is not None
    with pytest.raises(RuntimeError, match="ModelError: .* does not record the dataset it was trained on"):
        start_process(job).result()
    assert not job.dest.exists()


def test_a_complete_model_left_by_a_killed_run_is_used_without_fitting_again(tmp_path, model_dir, monkeypatch):
    from hts.campaign.refit import fit_refit, plan_refit
    from surrogate.model import SurrogateModel

    store = _store(tmp_path / "s.sqlite", ORACLE)
    try:
        job = plan_refit(model_dir, store, HOST, tmp_path)
        assert job is not None
        first = fit_refit(job)  # saved, then the run was killed before the store remembered it
        assert store.get_meta(REFIT_META) is None
        again = plan_refit(model_dir, store, HOST, tmp_path)
    finally:
        store.close()
    assert again is not None
    monkeypatch.setattr(SurrogateModel, "fit", lambda *a, **k: pytest.fail("fitted again"))
    assert fit_refit(again) == first


def test_planning_a_refit_loads_no_model_in_the_campaign_process(tmp_path, model_dir):
    from hts.campaign.refit import plan_refit
    from surrogate import scoring

    store = _store(tmp_path / "s.sqlite", ORACLE)
    scoring.clear_cache()
    try:
        job = plan_refit(model_dir, store, HOST, tmp_path / "out")
    finally:
        store.close()
    assert job is not None and len(job.defects) == 3
    assert scoring._CACHE == {}  # the targets come from model.json; the fit loads the model in its own process


def test_candidate_defects_reads_only_the_hashes_asked_for(tmp_path):
    store = _store(tmp_path / "s.sqlite", {})
    try:
        asked = [f"unknown-{i}" for i in range(1200)] + ["retry", "conv", "conv"]  # over several reads
        got = store.candidate_defects(asked)
    finally:
        store.close()
    assert got == {h: format_defects(DEFECTS[h]) for h in ("retry", "conv")}
