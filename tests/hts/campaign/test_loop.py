from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hts.campaign.results import CampaignResults, export_shortlist
from hts.campaign.runner import run_campaign
from hts.errors import ConfigError
from tests.hts.campaign.conftest import campaign_text


def _tiny_llama(tmp_path: Path) -> Path:
    """A random 2-layer Llama with the project tokenizer, saved as a base model for 4x4 MoS2."""
    import torch

    from llm.model import ModelManifest, new_model, save_model, versions
    from llm.tokenizer import build_tokenizer, tokenizer_fingerprint

    torch.manual_seed(0)
    tok = build_tokenizer()
    return save_model(
        new_model(tok, "test", seed=0, max_positions=2048),
        tok,
        tmp_path / "llm",
        ModelManifest(
            kind="base",
            tokenizer_fingerprint=tokenizer_fingerprint(tok),
            encodings=["sparse"],
            hosts=["MoS2-4x4x1"],
            versions=versions(),
        ),
    )


def _random_stands_in_for_the_llm(monkeypatch) -> None:
    """llm-bo with the random proposer in place of the LLM (fast): Ax's side of the loop only."""
    import hts.campaign.runner as runner
    from hts.campaign.proposers import RandomProposer

    def proposer(c, h, base=None):
        p = RandomProposer(h, c)
        p.prompt_properties = None  # stands in for an LLM that may be prompted with any property
        return p

    monkeypatch.setattr(runner, "make_proposer", proposer)


def _stored_trials(out: Path):
    """The stored trials of a finished campaign and what each ran (scout, exploit, local, probe, ax)."""
    res = CampaignResults.open(out)
    trials = res.store.trials_frame()
    res.close()
    return trials, list(trials["kind"])


def _observations(out: Path):
    """``(kind, observations)`` of every stored trial (:meth:`CampaignStore.observations_by_trial`)."""
    from hts.campaign.store import CampaignStore, sqlite_url

    store = CampaignStore.open(sqlite_url(out / "campaign.sqlite"))
    try:
        return store.observations_by_trial()
    finally:
        store.close()


def _sigkill_after_trials(path: Path, out: Path, n: int, timeout: float) -> int:
    """Run ``hts run`` on ``path`` in a subprocess, SIGKILL it once ``n`` trials are stored (or it
    ends, or ``timeout`` seconds pass) and return the trials stored by then."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "hts.cli", "run", str(path), "--out", str(out)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    db = out / "campaign.sqlite"
    deadline, stored = time.time() + timeout, 0
    while time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
        if db.exists():
            try:
                with sqlite3.connect(db) as con:
                    stored = con.execute("select count(*) from trials").fetchone()[0]
            except sqlite3.OperationalError:
                continue
            if stored >= n:
                break
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return stored


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "c.yaml"
    p.write_text(text)
    return p


def test_random_campaign_runs_and_exports(tmp_path, tiny_surrogate):
    path = _write(tmp_path, campaign_text(tiny_surrogate))
    summary, out = run_campaign(path, out=tmp_path / "run")
    assert summary.trials == 6 and summary.stopped == "iterations"
    res = CampaignResults.open(out)
    ranked = res.ranked()
    res.close()
    assert len(ranked) == summary.candidates > 0
    assert ranked["hash"].is_unique
    assert (ranked["distance"].diff().dropna() >= 0).all()  # best first
    assert summary.hits == int(ranked["hit"].sum()) and summary.hits > 0
    # where in its trial the first hit came (evaluations-to-first-hit per sample)
    res = CampaignResults.open(out)
    trials = res.store.trials_frame()
    res.close()
    for n_hits, n_valid, extra in zip(trials["n_hits"], trials["n_valid"], trials["extra"], strict=True):
        first = extra["first_hit_sample"]
        assert (first is None) == (n_hits == 0)
        assert first is None or 1 <= first <= n_valid
    # every placement, in rank order
    dest = export_shortlist(out, tmp_path / "export", top=5, all_placements=True)
    cifs = sorted(dest.glob("*.cif"))
    assert len(cifs) == 5 and cifs[0].name.startswith("0001_")
    assert (dest / "candidates.csv").read_text().count("\n") == 6
    assert (dest / "campaign.yaml").is_file()
    # the default shortlist: one representative per motif, each a hit with the motif's columns
    import pandas as pd

    short = pd.read_csv(export_shortlist(out, tmp_path / "short") / "candidates.csv")
    motifs = pd.read_csv(tmp_path / "short" / "motifs.csv")
    assert short["motif"].is_unique and short["hit"].all()
    assert list(short["motif"]) == list(motifs["motif"].head(20))  # the motif table's order
    assert {"motif_hits", "core", "core_words", "spectators", "verdict"} <= set(short.columns)
    assert (short["motif_hits"] >= 1).all() and short["motif_hits"].sum() <= summary.hits
    two = pd.read_csv(export_shortlist(out, tmp_path / "two", per_motif=2) / "candidates.csv")
    assert two.groupby("motif").size().max() <= 2 and len(two) >= len(short)
    with pytest.raises(ConfigError, match="per-motif"):
        export_shortlist(out, tmp_path / "bad", per_motif=0)


def test_status_export_report_commands(tmp_path, tiny_surrogate):
    """The morning after: ``hts status``, ``hts export`` and ``hts report`` on a finished campaign."""
    from typer.testing import CliRunner

    from hts.cli import app

    path = _write(tmp_path, campaign_text(tiny_surrogate, iterations=2))
    _, out = run_campaign(path, out=tmp_path / "run")
    runner = CliRunner(env={"COLUMNS": "200"})
    res = runner.invoke(app, ["status", str(out), "--top", "3"])
    assert res.exit_code == 0, res.output
    assert "trials 4/4" in res.output and "trials by kind: random 4" in res.output
    assert "motifs" in res.output and "defect make-ups)" in res.output  # how many motifs the hits span
    assert "motifs among the hits" in res.output  # the motif table
    res = runner.invoke(app, ["export", str(out), "--top", "3", "--all", "--out", str(tmp_path / "export")])
    assert res.exit_code == 0, res.output
    assert len(list((tmp_path / "export").glob("000[1-3]_*.cif"))) == 3
    res = runner.invoke(app, ["export", str(out), "--top", "2", "--out", str(tmp_path / "e1")])
    assert res.exit_code == 0, res.output
    assert "exported 2 candidates (2 motifs)" in res.output
    res = runner.invoke(app, ["report", str(out)])
    assert res.exit_code == 0, res.output
    assert (out / "report" / "index.html").is_file() and (out / "report" / "trial_hits.png").is_file()
    res = runner.invoke(app, ["status", str(tmp_path)])  # not a campaign directory
    assert res.exit_code != 0 and "campaign.yaml missing" in (res.output + str(res.exception))


def test_rerun_without_resume_is_refused(tmp_path, tiny_surrogate):
    path = _write(tmp_path, campaign_text(tiny_surrogate, iterations=1))
    run_campaign(path, out=tmp_path / "run")
    with pytest.raises(ConfigError, match="--resume"):
        run_campaign(path, out=tmp_path / "run")
    summary, _ = run_campaign(path, out=tmp_path / "run", resume=True)  # nothing left: stops at once
    assert summary.trials == 2


def test_report_writes_html_and_pngs(tmp_path, tiny_surrogate):
    from hts.campaign.report import write_report

    path = _write(tmp_path, campaign_text(tiny_surrogate, iterations=2))
    _, out = run_campaign(path, out=tmp_path / "run")
    html = write_report(out)
    text = html.read_text()
    for png in ("progress.png", "trial_hits.png", "targets.png", "makeup.png", "top_structures.png"):
        assert (html.parent / png).stat().st_size > 1000
        assert png in text


@pytest.mark.slow
def test_llm_bo_strategy_drives_ax(tmp_path, tiny_surrogate, monkeypatch):
    """llm-bo with the random proposer standing in for the LLM: Ax suggests, completes, snapshots."""
    from hts.campaign.axclient import restore_ax_client

    _random_stands_in_for_the_llm(monkeypatch)
    path = _write(tmp_path, campaign_text(tiny_surrogate, strategy="llm-bo", iterations=3))
    import warnings

    with warnings.catch_warnings(record=True) as caught:  # the root logger is not at DEBUG: not verbose
        warnings.simplefilter("always")
        summary, out = run_campaign(path, out=tmp_path / "run")
    assert summary.trials == 6
    # Ax's and BoTorch's own warnings (deprecations, GP-fit notes) stay out of a non-verbose run
    noisy = [w for w in caught if any(f"/{m}/" in w.filename for m in ("ax", "botorch", "gpytorch"))]
    assert not noisy, [f"{w.filename}: {w.message}" for w in noisy]
    res = CampaignResults.open(out)
    trials = res.store.trials_frame()
    res_snapshot = res.store.latest_ax_snapshot()
    assert res_snapshot is not None
    summary_kinds = {k: v for k, v in res.summary().items() if k.endswith(" trials")}
    res.close()
    assert summary_kinds["scout trials"] == 1 and sum(summary_kinds.values()) == 6
    assert {"temperature", "prompt_homo_lumo_gap"} <= set(trials["knobs"].iloc[1])
    # the scout's composition groups are observed Ax trials next to those of the 5 trials after it
    client = restore_ax_client(res_snapshot)
    n_ax = len(client._experiment.trials)
    (scout_kind, scout), *rest = _observations(out)
    assert scout_kind == "scout" and [o.ax_index for o in scout] == list(range(len(scout)))
    assert [o.ax_index for _, obs in rest for o in obs] == list(range(len(scout), n_ax))


@pytest.mark.slow
def test_sigkill_then_resume_loses_and_repeats_nothing(tmp_path, tiny_surrogate):
    # A budget that an idle machine cannot finish between two polls (40 iterations once did).
    path = _write(tmp_path, campaign_text(tiny_surrogate, iterations=400, samples=16))
    out = tmp_path / "run"
    db = out / "campaign.sqlite"
    n_before = _sigkill_after_trials(path, out, 5, timeout=120)
    assert 5 <= n_before < 800, "the campaign should be killed mid-run"
    with sqlite3.connect(db) as con:
        before = set(con.execute("select hash from candidates").fetchall())
        trials_before = con.execute("select count(*) from trials").fetchone()[0]
    summary, _ = run_campaign(path, out=out, resume=True)
    with sqlite3.connect(db) as con:
        after = con.execute("select hash from candidates").fetchall()
        assert con.execute("pragma integrity_check").fetchone()[0] == "ok"
        trial_ids = [r[0] for r in con.execute("select trial_id from trials order by trial_id")]
        hits = {r[0] for r in con.execute("select hash from candidates where hit")}
        with_motif = [r[0] for r in con.execute("select hash from motifs")]
    assert before <= set(after)  # nothing stored was lost
    assert len(after) == len(set(after))  # nothing repeated
    assert summary.trials == 800 and trials_before < 800
    assert trial_ids == list(range(800))
    assert hits and sorted(with_motif) == sorted(hits)  # every hit has its motif, once; nothing else has one


def test_llm_bo_sigkilled_mid_run_resumes_its_probes_and_ax_state(tmp_path, tiny_surrogate):
    """llm-bo with a (tiny) LLM, killed with SIGKILL mid-run and resumed: nothing stored is lost or
    repeated, trial ids run on, and every stored probe part and Ax-run trial is in the Ax state."""
    from hts.campaign.axclient import restore_ax_client

    base = _tiny_llama(tmp_path)
    extra = f"generator: {{base_model: {base}, adapter: null, encoding: sparse, batch_size: 16}}\n"
    path = _write(tmp_path, campaign_text(tiny_surrogate, strategy="llm-bo", iterations=15, samples=8, extra=extra))
    out = tmp_path / "run"
    db = out / "campaign.sqlite"
    n_before = _sigkill_after_trials(path, out, 6, timeout=300)
    assert 6 <= n_before < 30, "the campaign should be killed mid-run"
    with sqlite3.connect(db) as con:
        before = set(con.execute("select hash from candidates").fetchall())
    summary, _ = run_campaign(path, out=out, resume=True)
    assert summary.trials == 30
    res = CampaignResults.open(out)
    trials = res.store.trials_frame()
    cands = res.store.candidates_frame()
    client = restore_ax_client(res.store.latest_ax_snapshot())
    res.close()
    assert before <= {(h,) for h in cands["hash"]} and cands["hash"].is_unique
    assert list(trials["trial_id"]) == list(range(30))
    completed = [t.arm.parameters for t in client._experiment.trials.values() if t.status.name == "COMPLETED" and t.arm]
    observed = _observations(out)
    for _, obs in observed:
        for o in obs:
            assert any(all(c.get(k) == v for k, v in o.parameters.items()) for c in completed), o.parameters
    assert "probe" in [k for k, _ in observed]


@pytest.mark.slow
def test_oracle_verifies_top_candidates(tmp_path, tiny_surrogate):
    """GFN1-xTB on the 2 best 4x4 candidates at the end; results shown next to predictions."""
    path = _write(tmp_path, campaign_text(tiny_surrogate, iterations=1, extra="oracle: {enabled: true, top_k: 2}\n"))
    _, out = run_campaign(path, out=tmp_path / "run")
    res = CampaignResults.open(out)
    ranked = res.ranked()
    oracle = res.store.oracle_frame()
    res.close()
    assert len(oracle) == 2
    assert set(oracle["status"]) <= {"converged", "converged_after_retry"}
    verified = ranked.dropna(subset=["oracle_homo_lumo_gap"])
    # the two the pool acquisition chooses over the whole archive (nothing was verified before)
    from hts.campaign.config import load_campaign
    from hts.campaign.verify import choose_for_oracle
    from hts.hosts import get_host

    chosen = choose_for_oracle(ranked, load_campaign(path), get_host("MoS2", (4, 4, 1)), 2)
    assert set(verified["hash"]) == set(chosen["hash"])
    assert verified["hit"].all()  # the tiny campaign has many predicted hits: the picks are among them
    assert (verified["oracle_homo_lumo_gap"] >= 0).all()


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["llm-bo", "llm-fixed"])
def test_llm_strategies_with_a_tiny_llama(tmp_path, tiny_surrogate, strategy):
    """The LLM paths: (Ax knobs | fixed target prompts) -> constrained sampling from a 2-layer Llama -> scores."""
    base = _tiny_llama(tmp_path)
    extra = f"generator: {{base_model: {base}, adapter: null, encoding: sparse, batch_size: 16}}\n"
    path = _write(tmp_path, campaign_text(tiny_surrogate, strategy=strategy, iterations=2, samples=16, extra=extra))
    summary, out = run_campaign(path, out=tmp_path / "run")
    assert summary.trials == 4
    res = CampaignResults.open(out)
    trials = res.store.trials_frame()
    has_ax = res.store.latest_ax_snapshot() is not None
    res.close()
    assert has_ax == (strategy == "llm-bo")
    if strategy == "llm-fixed":  # the study's approach: the target centres in the prompt, every trial alike
        assert all(k == trials["knobs"].iloc[0] for k in trials["knobs"])
        assert trials["knobs"].iloc[0]["prompt_homo_lumo_gap"] == pytest.approx(0.6)
    # constrained decoding: every sample parsed into an allowed configuration within the budget
    assert (trials["n_valid"] == trials["n_generated"]).all()
    assert all(e.get("no_rules") or e["valid_fraction"] == 1.0 for e in trials["extra"])
    assert summary.candidates > 0


@pytest.mark.slow
def test_llm_bo_composition_knobs_with_a_tiny_llama(tmp_path, tiny_surrogate):
    """bo.defect_knobs: composition: Ax picks counts per type (sum within bounds), the constrained
    decoder places exactly those; every stored candidate has its trial's composition."""
    from hts.campaign.proposers import count_knob
    from hts.campaign.store import parse_defects
    from hts.defects import DefectConfiguration
    from hts.hosts import get_host
    from llm.generation import type_counts

    base = _tiny_llama(tmp_path)
    extra = (
        f"generator: {{base_model: {base}, adapter: null, encoding: sparse, batch_size: 16}}\n"
        "bo: {defect_knobs: composition}\n"
    )
    path = _write(tmp_path, campaign_text(tiny_surrogate, strategy="llm-bo", iterations=3, samples=8, extra=extra))
    summary, out = run_campaign(path, out=tmp_path / "run")
    assert summary.trials == 6 and summary.candidates > 0
    res = CampaignResults.open(out)
    trials = res.store.trials_frame().set_index("trial_id")
    cands = res.store.candidates_frame()
    res.close()
    host = get_host("MoS2", (4, 4, 1))
    # the scout trial: the model chose the compositions; each became an observed Ax trial
    scout = trials.iloc[0]
    observed = dict(zip(trials.index, _observations(out), strict=True))
    assert scout["kind"] == "scout" and not any(k.startswith("n_") for k in scout["knobs"])
    assert 1 <= len(observed[0][1]) <= scout["n_valid"]
    trials = trials.iloc[1:]
    for _, trial in trials.iterrows():
        want = {r.name: round(trial["knobs"][count_knob(r.name)]) for r in host.rules}
        assert 1 <= sum(want.values()) <= 8  # Ax kept the sum within the campaign's bounds
        assert trial["n_valid"] == trial["n_generated"]

    def composition(knobs):
        return {r.name: round(knobs[count_knob(r.name)]) for r in host.rules if round(knobs[count_knob(r.name)])}

    for _, cand in cands[cands["trial_id"].isin(trials.index)].iterrows():
        trial_id = cand["trial_id"]
        # a probe's samples come from its parts, each with the composition it asked for (its
        # observations: one per part, the decoder placing exactly the part's composition)
        kind, obs = observed[trial_id]
        asked = [o.parameters for o in obs] if kind == "probe" else [trials.loc[trial_id, "knobs"]]
        wanted = [composition(k) for k in asked]
        config = DefectConfiguration.from_mapping(host, parse_defects(cand["defects"]))
        assert type_counts(config) in wanted
    probes = [obs for kind, obs in observed.values() if kind == "probe"]
    assert probes, list(trials["kind"])
    for obs in probes:  # one observation per part: the parts' compositions are distinct
        comps = [composition(o.parameters) for o in obs]
        assert len(comps) >= 2 and all(comps.count(c) == 1 for c in comps)


@pytest.mark.slow
def test_verification_beside_generation_refits_the_surrogate(tmp_path, monkeypatch):
    """oracle.refit_surrogate: GFN1-xTB verifies beside the loop, the surrogate is refitted on its
    labels in a process of its own, and the trials after the refit are scored by the refitted model. The
    pump is made to wait for its jobs and the refit so that the refit falls between two iterations."""
    import time

    import numpy as np

    import hts.campaign.refit
    from hts.campaign.store import parse_defects
    from hts.campaign.verifier import Verifier
    from hts.defects import ConfigBatch, DefectConfiguration
    from hts.hosts import get_host
    from surrogate.model import SurrogateModel
    from surrogate.training import load_dataset, train
    from tests.surrogate.synthetic import make_dataset, write_dataset

    pump = Verifier.pump

    def pump_and_wait(self, *args, **kwargs):
        n = pump(self, *args, **kwargs)
        while self.jobs or self.reference_job is not None or self.on_pump.busy:
            time.sleep(0.05)
            n += pump(self, limit=0)
        return n

    monkeypatch.setattr(Verifier, "pump", pump_and_wait)
    monkeypatch.setattr(hts.campaign.refit, "REFIT_EVERY", 1)
    data = write_dataset(tmp_path / "data", make_dataset(per_concentration=20, seed=1))
    fit = train(
        load_dataset(data),
        targets=["homo_lumo_gap", "formation_energy"],
        params={"iterations": 80, "depth": 4},
        thread_count=1,
    )
    model_dir = fit.model.save(tmp_path / "surrogate")
    extra = "oracle: {enabled: true, top_k: 1, share: 0.5, refit_surrogate: true}\n"
    path = _write(tmp_path, campaign_text(model_dir, iterations=2, samples=16, extra=extra))
    _, out = run_campaign(path, out=tmp_path / "run")
    res = CampaignResults.open(out)
    oracle = res.store.oracle_frame()
    refit = res.store.get_meta("surrogate_model")
    cands = res.store.candidates_frame()
    trials = res.store.trials_frame()
    res.close()
    assert len(oracle) >= 1 and set(oracle["status"]) <= {"converged", "converged_after_retry"}
    assert refit is not None and (out / "surrogate-refit-1").is_dir()
    first_refit = SurrogateModel.load(out / "surrogate-refit-1")
    assert first_refit.meta["refit"]["oracle_labels"] == 1
    # the second iteration's candidates carry the first refit's predictions, not the original model's
    late = cands[cands["trial_id"].isin(trials.loc[trials["iteration"] == 1, "trial_id"])]
    assert len(late) > 0
    host = get_host("MoS2", (4, 4, 1))
    batch = ConfigBatch.from_configs(
        [DefectConfiguration.from_mapping(host, parse_defects(d)) for d in late["defects"]]
    )
    stored = np.array([p["homo_lumo_gap"][0] for p in late["predictions"]])
    col = first_refit.targets.index("homo_lumo_gap")
    np.testing.assert_allclose(first_refit.predict(batch).mean[:, col], stored, rtol=1e-6, atol=1e-9)
    original = SurrogateModel.load(model_dir).predict(batch).mean[:, col]
    assert not np.allclose(original, stored)


@pytest.mark.slow
def test_a_finished_campaign_resumed_verifies_only_what_it_lacks(tmp_path, tiny_surrogate):
    """top_k is the number verified by the end; --resume of a finished campaign with them answers at once."""
    extra = "oracle: {enabled: true, top_k: 2, share: 0}\n"
    path = _write(tmp_path, campaign_text(tiny_surrogate, iterations=2, samples=8, extra=extra))
    _, out = run_campaign(path, out=tmp_path / "run")
    res = CampaignResults.open(out)
    first = set(res.store.oracle_frame()["hash"])
    res.close()
    assert len(first) == 2
    run_campaign(path, out=out, resume=True)
    res = CampaignResults.open(out)
    again = set(res.store.oracle_frame()["hash"])
    res.close()
    assert again == first


def _one_move(diff: list[int]) -> bool:
    """Whether two compositions are equal or one move apart (a defect added, removed or changed)."""
    steps = sum(abs(d) for d in diff)
    return steps <= 1 or (steps == 2 and sum(diff) == 0)


def test_llm_bo_stopped_and_resumed_keeps_scout_exploit_and_ax_bookkeeping(tmp_path, tiny_surrogate, monkeypatch):
    """Stopped after 3 trials (mid-iteration) and resumed: store ids run on, Ax indices run on, the
    incumbent is rebuilt from the store, and no candidate is stored twice."""
    from hts.campaign.axclient import restore_ax_client

    _random_stands_in_for_the_llm(monkeypatch)
    path = _write(tmp_path, campaign_text(tiny_surrogate, strategy="llm-bo", iterations=4, samples=16))
    seen: list[int] = []

    def stop_after_three(info):
        seen.append(info["trial"])
        if len(seen) == 3:
            os.kill(os.getpid(), signal.SIGINT)  # the runner stops after the trial in flight

    summary, out = run_campaign(path, out=tmp_path / "run", progress=stop_after_three)
    assert summary.stopped == "interrupted" and summary.trials == 3
    summary, _ = run_campaign(path, out=tmp_path / "run", resume=True)
    assert summary.trials == 8
    res = CampaignResults.open(out)
    trials = res.store.trials_frame()
    cands = res.store.candidates_frame()
    client = restore_ax_client(res.store.latest_ax_snapshot())
    res.close()
    assert list(trials["trial_id"]) == list(range(8))
    assert cands["hash"].is_unique
    observed = _observations(out)
    kinds = [k for k, _ in observed]
    assert kinds == list(trials["kind"])
    assert kinds[0] == "scout" and kinds.count("scout") == 1
    assert kinds.count("exploit") >= 3  # one per iteration once something scored above zero
    # every observation is one completed Ax trial, in the order they were attached; the trials
    # handed out by the stopped run but never run are marked abandoned on resume
    from ax.core.trial_status import TrialStatus

    ax_ids = [o.ax_index for _, obs in observed for o in obs]
    assert ax_ids == sorted(ax_ids) and len(set(ax_ids)) == len(ax_ids)
    assert max(ax_ids) < len(client._experiment.trials)
    statuses = {i: t.status for i, t in client._experiment.trials.items()}
    assert all(statuses[i] == TrialStatus.COMPLETED for i in ax_ids)
    assert all(s == TrialStatus.ABANDONED for i, s in statuses.items() if i not in set(ax_ids))
    # an exploitation trial re-runs a setting that had been observed before it
    for i, (kind, knobs) in enumerate(zip(kinds, trials["knobs"], strict=True)):
        if kind == "exploit":
            assert knobs in [o.parameters for _, obs in observed[:i] for o in obs]


def test_llm_bo_searches_next_to_its_leader_while_nothing_is_worth_exploiting(tmp_path, tiny_surrogate, monkeypatch):
    """With no setting good enough to re-run (a 1 meV window, an exploitation floor of 1), one trial per
    iteration runs the prompt and temperature of the leading setting (or, once its neighbours are all
    tried, a runner-up's) on its composition or ones a move away: a local trial, or a probe when it
    runs several; the other comes from Ax."""
    import hts.campaign.planners.exploit as exploit

    _random_stands_in_for_the_llm(monkeypatch)
    monkeypatch.setattr(exploit, "EXPLOIT_MIN_HIT_RATE", 1.0)
    text = campaign_text(tiny_surrogate, strategy="llm-bo", iterations=4, samples=16)
    narrow = "homo_lumo_gap: {value: 0.6, tolerance: 0.001}"  # near misses, next to no hits
    path = _write(tmp_path, text.replace("homo_lumo_gap: {value: 0.6, tolerance: 0.15}", narrow))
    summary, out = run_campaign(path, out=tmp_path / "run")
    assert summary.trials == 8
    trials, kinds = _stored_trials(out)
    assert "exploit" not in kinds
    assert kinds.count("local") + kinds.count("probe") >= 3, str(kinds)  # one per iteration from the 2nd
    assert "probe" in kinds, kinds
    observed = _observations(out)
    seen = [o.parameters for o in observed[0][1]]  # the scout's groups
    for (kind, obs), knobs in zip(observed[1:], trials["knobs"].iloc[1:], strict=True):
        if kind == "local":  # one composition, a move from one observed before
            parts = [knobs]
        elif kind == "probe":  # its samples, grouped by the composition drawn, are Ax observations (the
            # random stand-in ignores the counts asked for; the LLM's decoder places them exactly)
            parts = [knobs]
            assert sum(o.n_samples for o in obs) == 16 and all(o.ax_index is not None for o in obs)
        else:
            parts = []
        for part in parts:
            counts = [k for k in part if k.startswith("n_")]
            assert counts
            assert any(
                all(e.get(k) == v for k, v in part.items() if not k.startswith("n_"))
                and _one_move([int(part[k]) - int(e[k]) for k in counts])
                for e in seen
            ), part
        seen.extend([knobs] + [o.parameters for o in obs])


def test_adaptive_exploitation_gives_slots_to_the_exploited_setting(tmp_path, tiny_surrogate, monkeypatch):
    """The allocation's answer decides how many of an iteration's other trials re-run the exploited
    setting (here: all of them); it is told the exploited setting's and the exploration trials' hits."""
    import hts.campaign.planners.exploit as exploit

    _random_stands_in_for_the_llm(monkeypatch)
    calls: list[tuple] = []

    def everything(recent, explored, tried, slots, trials_left):
        calls.append((recent, list(explored), tried, slots, trials_left))
        return slots

    monkeypatch.setattr(exploit, "extra_exploit_slots", everything)
    path = _write(tmp_path, campaign_text(tiny_surrogate, strategy="llm-bo", iterations=7, samples=16))
    summary, out = run_campaign(path, out=tmp_path / "run")
    assert summary.trials == 14
    trials, kinds = _stored_trials(out)
    by_iteration = [kinds[i : i + 2] for i in range(0, 14, 2)]
    first = next(i for i, ks in enumerate(by_iteration) if "exploit" in ks)
    assert calls, kinds
    assert all(ks == ["exploit", "exploit"] for ks in by_iteration[first + 1 :]), kinds
    # what the allocation was told: the exploration trials' (hits, samples), a probe as one try
    explored = [(int(h), int(n)) for k, h, n in zip(kinds, trials["n_hits"], trials["n_generated"], strict=True)
                if k in ("ax", "local", "probe")]  # fmt: skip
    recent, told, tried, slots, trials_left = calls[-1]
    assert slots == 1 and 0 < recent[0] <= recent[1]
    assert told == explored[: len(told)]  # empty when exploitation took every slot from the start
    assert 0 <= tried <= len(told)
    assert trials_left == 1  # the last iteration: its exploitation trial is spoken for, one slot left
    assert [c[4] for c in calls] == sorted((c[4] for c in calls), reverse=True)


def test_a_probe_never_has_a_part_without_samples(tmp_path, tiny_surrogate, monkeypatch):
    """3 samples per trial and probes of 4 compositions: a probe draws 3 parts, one sample each."""
    import hts.campaign.planners.exploit as exploit

    _random_stands_in_for_the_llm(monkeypatch)
    monkeypatch.setattr(exploit, "EXPLOIT_MIN_HIT_RATE", 1.0)  # nothing exploited: every iteration searches
    path = _write(tmp_path, campaign_text(tiny_surrogate, strategy="llm-bo", iterations=5, samples=3))
    summary, out = run_campaign(path, out=tmp_path / "run")
    assert summary.trials == 10
    probes = [obs for kind, obs in _observations(out) if kind == "probe"]
    assert probes and all(sum(o.n_samples for o in obs) == 3 for obs in probes)
    assert all(o.n_samples >= 1 for obs in probes for o in obs)
