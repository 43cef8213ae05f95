"""Start-up: nothing is written before the campaign is validated and its models found; a store left by a
failed start is taken over; the resume hint is the exact command; a finished campaign answers --resume
at once; damaged stores and Ax states are refused unread; the machine's memory and cores are checked;
a trial's samples are drawn and scored in bounded chunks."""

from __future__ import annotations

import hashlib
import shlex
import sqlite3
from pathlib import Path

import numpy as np
import pytest

import hts.campaign.runner as runner
from hts.campaign.config import parse_campaign
from hts.campaign.runner import run_campaign
from hts.campaign.safety import ChunkedScorer, check_resources, resume_command
from hts.errors import ClusterError, ConfigError, ModelError, StoreError
from hts.hosts import get_host
from tests.hts.campaign.conftest import campaign_text
from tests.hts.campaign.store_fixtures import PAGE, damage, reseal


def _write(folder: Path, text: str, name: str = "c.yaml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    p = folder / name
    p.write_text(text)
    return p


def _files(folder: Path) -> dict[str, str]:
    """Every file's bytes, hashed (SQLite's -shm, a shared-memory index readers update, left out)."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir() if p.suffix != ".sqlite-shm"}


def test_a_missing_model_writes_nothing_and_the_fixed_file_runs(tmp_path, tiny_surrogate):
    out = tmp_path / "run"
    bad = _write(tmp_path, campaign_text(tmp_path / "no-such-model", iterations=1))
    with pytest.raises(ModelError, match="no-such-model does not exist"):
        run_campaign(bad, out=out)
    assert not out.exists()  # validated and models found before anything is written
    good = _write(tmp_path, campaign_text(tiny_surrogate, iterations=1))
    summary, _ = run_campaign(good, out=out)
    assert summary.trials == 2


def test_model_paths_that_are_files_are_named_as_such(tmp_path, tiny_surrogate):
    a_file = tmp_path / "model.txt"
    a_file.write_text("not a model")
    path = _write(tmp_path, campaign_text(a_file, iterations=1))
    with pytest.raises(ModelError, match=r"surrogate path .*model\.txt is a file, expected a folder"):
        run_campaign(path, out=tmp_path / "run")
    llm = campaign_text(tiny_surrogate, strategy="llm-fixed", iterations=1) + (
        f"generator: {{base_model: {tiny_surrogate}, adapter: {a_file}}}\n"
    )
    with pytest.raises(ModelError, match=r"adapter path .*model\.txt is a file, expected a folder"):
        run_campaign(_write(tmp_path, llm), out=tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_an_output_folder_that_is_a_file_is_named_as_such(tmp_path, tiny_surrogate):
    path = _write(tmp_path, campaign_text(tiny_surrogate, iterations=1))
    a_file = tmp_path / "out"
    a_file.write_text("x")
    with pytest.raises(ConfigError, match=r"output folder .*out is a file, expected a folder"):
        run_campaign(path, out=a_file)
    with pytest.raises(ConfigError, match=r"cannot be created: .*out is a file, expected a folder"):
        run_campaign(path, out=a_file / "below")
    assert a_file.read_text() == "x"


def test_a_store_left_by_a_failed_start_is_taken_over_by_the_fixed_file(tmp_path, tiny_surrogate, monkeypatch):
    out = tmp_path / "run"
    first = _write(tmp_path, campaign_text(tiny_surrogate, iterations=1) + "# first\n", "first.yaml")

    def unreachable(*_args, **_kwargs):
        raise ClusterError("cannot reach the Dask scheduler at tcp://nowhere:8786")

    with monkeypatch.context() as m:  # the cluster fails after the store was created
        m.setattr(runner, "make_scorer", unreachable)
        with pytest.raises(ClusterError):
            run_campaign(first, out=out)
    assert (out / "campaign.sqlite").exists()
    fixed_text = campaign_text(tiny_surrogate, iterations=2) + "# fixed\n"
    fixed = _write(tmp_path, fixed_text, "fixed.yaml")
    for resume in (True, False):  # with and without --resume: no trial was finished, the file may differ
        with monkeypatch.context() as m:
            m.setattr(runner, "make_scorer", unreachable)
            with pytest.raises(ClusterError):
                run_campaign(fixed, out=out, resume=resume)
    summary, _ = run_campaign(fixed, out=out)
    assert summary.trials == 4
    assert (out / "campaign.yaml").read_text() == fixed_text
    con = sqlite3.connect(out / "campaign.sqlite")
    assert con.execute("select value from meta where key = 'campaign_yaml'").fetchone()[0] == fixed_text
    con.close()


def test_the_resume_hint_is_the_exact_command(tmp_path, tiny_surrogate):
    out = tmp_path / "my run"
    path = _write(tmp_path / "camp dir", campaign_text(tiny_surrogate, iterations=1))
    run_campaign(path, out=out)
    before = _files(out)
    with pytest.raises(ConfigError) as info:
        run_campaign(path, out=out)
    msg = str(info.value)
    assert f"`hts run {shlex.quote(str(path))} --resume --out {shlex.quote(str(out))}`" in msg
    assert "tiny --resume" not in msg  # not the campaign's name
    assert _files(out) == before
    assert resume_command("c.yaml", None) == "hts run c.yaml --resume"


def test_resume_with_another_campaign_names_what_differs(tmp_path, tiny_surrogate):
    out = tmp_path / "run"
    run_campaign(_write(tmp_path, campaign_text(tiny_surrogate, iterations=1)), out=out)
    before = _files(out)
    other = _write(tmp_path, campaign_text(tiny_surrogate, iterations=1, samples=16), "other.yaml")
    with pytest.raises(ConfigError, match=r"differs from the one .* started with \(budget\.samples_per_trial\)"):
        run_campaign(other, out=out, resume=True)
    assert _files(out) == before


def test_resume_of_a_finished_campaign_answers_at_once(tmp_path, tiny_surrogate, monkeypatch):
    out = tmp_path / "run"
    path = _write(tmp_path, campaign_text(tiny_surrogate, iterations=1))
    done, _ = run_campaign(path, out=out)
    before = _files(out)

    def must_not_run(*_args, **_kwargs):
        raise AssertionError("a finished campaign starts no models, no Dask")

    for name in ("make_scorer", "make_proposer", "prepare_models", "run_loop"):
        monkeypatch.setattr(runner, name, must_not_run)
    summary, _ = run_campaign(path, out=out, resume=True)
    assert (summary.trials, summary.stopped, summary.evaluations) == (2, "iterations", done.evaluations)
    assert (summary.candidates, summary.hits) == (done.candidates, done.hits)
    assert _files(out) == before


def test_resume_of_a_damaged_store_is_refused_and_nothing_is_written(tmp_path, tiny_surrogate):
    out = tmp_path / "run"
    path = _write(tmp_path, campaign_text(tiny_surrogate, iterations=2))
    run_campaign(path, out=out)
    damage(out / "campaign.sqlite", 3 * PAGE, b"\xff" * 64)
    before = _files(out)
    with pytest.raises(StoreError) as info:
        run_campaign(path, out=out, resume=True)
    msg = str(info.value)
    assert str(out / "campaign.sqlite") in msg and "damaged" in msg and "backup" in msg
    assert _files(out) == before
    with pytest.raises(StoreError, match="damaged"):  # without --resume too: checked before it is read
        run_campaign(path, out=out)
    assert _files(out) == before


@pytest.mark.slow
def test_resume_with_ax_state_that_does_not_load_names_the_trial(tmp_path, tiny_surrogate, monkeypatch):
    from hts.campaign.proposers import RandomProposer

    def proposer(c, h, base=None):
        p = RandomProposer(h, c)
        p.prompt_properties = None
        return p

    monkeypatch.setattr(runner, "make_proposer", proposer)
    out = tmp_path / "run"
    path = _write(tmp_path, campaign_text(tiny_surrogate, strategy="llm-bo", iterations=2, samples=16))
    run_campaign(path, out=out)
    con = sqlite3.connect(out / "campaign.sqlite")
    last = con.execute("select max(trial_id) from ax_state").fetchone()[0]
    con.execute('update ax_state set snapshot = \'{"not": "ax"}\' where trial_id = ?', (last,))
    con.execute("delete from trials where trial_id = ?", (last,))  # one trial left to run: Ax is needed
    con.commit()
    con.close()
    reseal(out / "campaign.sqlite")  # a sound store whose snapshot Ax cannot load, not a damaged one
    before = _files(out)
    with pytest.raises(StoreError) as info:
        run_campaign(path, out=out, resume=True)
    msg = str(info.value)
    assert f"the Ax state stored with trial {last - 1} in {out / 'campaign.sqlite'}" in msg or (
        f"the Ax state stored with trial {last} in {out / 'campaign.sqlite'}" in msg
    )
    assert "cannot be loaded" in msg and "backup" in msg
    assert _files(out) == before


# -- resources and chunks ------------------------------------------------------------------------


def test_check_resources_names_keys_values_and_the_machine():
    host = get_host("MoS2")
    c = parse_campaign(
        "name: t\nhost: {material: MoS2}\ntargets: {homo_lumo_gap: {value: 1, tolerance: 0.1}}\n"
        "budget: {samples_per_trial: 100000}\ndask: {workers: 8}\n"
    )
    check_resources(c, host, memory=64 * 2**30, cores=16)
    with pytest.raises(ConfigError) as info:
        check_resources(c, host, memory=2 * 2**30, cores=16)
    msg = str(info.value)
    assert "budget.samples_per_trial: 100,000" in msg and "dask.workers: 8" in msg and "2.0 GiB" in msg
    with pytest.raises(ConfigError, match=r"dask.workers: 8 local workers on a machine with 1 cores; at most 4"):
        check_resources(c, host, memory=64 * 2**30, cores=1)
    remote = c.model_copy(update={"dask": c.dask.model_copy(update={"scheduler": "tcp://cluster:8786"})})
    check_resources(remote, host, memory=64 * 2**30, cores=1)  # remote workers are the cluster's business


def test_a_trial_too_big_for_the_machine_is_refused_before_anything_is_written(tmp_path, tiny_surrogate, monkeypatch):
    monkeypatch.setattr("hts.campaign.safety.machine_memory", lambda: 2**30)
    path = _write(tmp_path, campaign_text(tiny_surrogate, iterations=1, samples=100_000))
    with pytest.raises(ConfigError, match="budget.samples_per_trial: 100,000"):
        run_campaign(path, out=tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_chunked_scoring_equals_scoring_at_once(tiny_surrogate):
    from hts.campaign.proposers import RandomProposer
    from surrogate.scoring import load_cached, score_batch

    host = get_host("MoS2", (4, 4, 1))
    c = parse_campaign(campaign_text(tiny_surrogate))
    batch = RandomProposer(host, c).propose({}, 50, np.random.default_rng(0)).batch
    model = load_cached(tiny_surrogate)

    class Counting:
        def __init__(self) -> None:
            self.calls: list[int] = []

        def score(self, b):
            self.calls.append(len(b))
            return score_batch(model, b)

    scorer = Counting()
    whole = score_batch(model, batch)
    parts = ChunkedScorer(scorer, chunk=7).score(batch)
    assert scorer.calls == [7] * 7 + [1]
    assert parts.targets == whole.targets
    for a in ("mean", "std", "data_std", "knowledge_std"):
        np.testing.assert_allclose(getattr(parts, a), getattr(whole, a), equal_nan=True)


def test_random_proposals_are_drawn_in_bounded_chunks(tiny_surrogate, monkeypatch):
    import hts.campaign.proposers as proposers

    host = get_host("MoS2", (4, 4, 1))
    c = parse_campaign(campaign_text(tiny_surrogate))
    p = proposers.RandomProposer(host, c)
    one = p.propose({}, 300, np.random.default_rng(5))
    monkeypatch.setattr(proposers, "PROPOSE_CHUNK_ELEMENTS", 48 * 64)  # 64 rows per chunk
    drawn: list[int] = []
    draw = p._draw
    monkeypatch.setattr(p, "_draw", lambda k, n, rng: drawn.append(n) or draw(k, n, rng))
    chunked = p.propose({}, 300, np.random.default_rng(5))
    assert drawn == [64, 64, 64, 64, 44]
    assert len(chunked.batch) == len(one.batch) == chunked.n_generated == 300
    n = chunked.batch.n_defects
    assert n.min() >= 1 and n.max() <= 8 and chunked.batch.validate().all()
