"""The runner's parts that need no campaign run (hts.campaign.runner): model paths, an existing store
taken over or continued, a finished campaign answered from its store, signals, the strategy's loop
and the refits every few oracle results."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from hts import settings
from hts.campaign import runner
from hts.campaign.config import Campaign, parse_campaign
from hts.campaign.state import RunSummary
from hts.campaign.store import CampaignStore, CandidateRecord, TrialRecord, sqlite_url
from hts.errors import ConfigError, ModelError
from hts.hosts import get_host

HOST = get_host("MoS2", (4, 4, 1))


def _text(strategy: str = "random", extra: str = "") -> str:
    return f"""\
name: runner
host: {{material: MoS2, supercell: [4, 4, 1]}}
targets:
  homo_lumo_gap: {{value: 0.6, tolerance: 0.15}}
strategy: {strategy}
budget: {{iterations: 2, trials_per_iteration: 2, samples_per_trial: 10}}
dask: {{enabled: false}}
{extra}"""


def _campaign(strategy: str = "random", extra: str = "") -> Campaign:
    return parse_campaign(_text(strategy, extra))


def _store(path: Path, trials: int, text: str | None = None, n_valid: int = 10) -> CampaignStore:
    """A store with ``trials`` trials of one candidate each (the first a hit), and ``text`` as its campaign."""
    store = CampaignStore(sqlite_url(path))
    if text is not None:
        store.set_meta("campaign_yaml", text)
    for t in range(trials):
        cand = CandidateRecord(f"h{t}", "16:VAC", 1, {"homo_lumo_gap": (0.6, 0.1)}, 0.0, t == 0)
        store.record_trial(TrialRecord(t, t // 2, "random", {}, n_valid, n_valid, 1, int(t == 0), {}, 0.1), [cand])
    return store


# -- resolve_model --------------------------------------------------------------------------------


def test_no_model_is_none():
    for value in (None, "none", "None", "null", ""):
        assert runner.resolve_model(value, "adapter") is None


def test_relative_model_paths_are_from_the_campaign_folder_and_absolute_ones_as_given(tmp_path, monkeypatch):
    (tmp_path / "campaigns" / "models" / "m").mkdir(parents=True)
    (tmp_path / "abs").mkdir()
    monkeypatch.chdir(tmp_path)
    base = tmp_path / "campaigns"
    assert runner.resolve_model("models/m", "surrogate", base) == base / "models" / "m"
    assert runner.resolve_model(str(tmp_path / "abs"), "surrogate", base) == tmp_path / "abs"
    assert runner.resolve_model("abs", "surrogate") == Path("abs")  # no base: from the working folder
    monkeypatch.setenv("HOME", str(tmp_path))
    assert runner.resolve_model("~/abs", "adapter", base) == tmp_path / "abs"


def test_a_model_path_that_is_a_file_or_missing_is_named(tmp_path):
    (tmp_path / "model.cbm").write_text("x")
    with pytest.raises(ModelError, match=f"surrogate path {tmp_path / 'model.cbm'} is a file, expected a folder"):
        runner.resolve_model("model.cbm", "surrogate", tmp_path)
    with pytest.raises(ModelError, match=f"adapter path {tmp_path / 'gone'} does not exist"):
        runner.resolve_model("gone", "adapter", tmp_path)


def test_a_default_that_is_not_built_names_its_folder(tmp_path, monkeypatch):
    monkeypatch.setenv(settings.MODELS_DIR_ENV, str(tmp_path))
    with pytest.raises(ModelError) as info:
        runner.resolve_model("default", "base_model")
    assert f"the embedded default base_model ({tmp_path / 'llm-base'}) is not built yet" in str(info.value)
    (tmp_path / "llm-base").mkdir()
    assert runner.resolve_model("default", "base_model", tmp_path / "elsewhere") == tmp_path / "llm-base"


# -- an existing store ---------------------------------------------------------------------------


def test_no_store_is_none_and_nothing_is_created(tmp_path):
    out = tmp_path / "run"
    assert runner.open_existing_store(_campaign(), out, False, _text(), "hts run c.yaml --resume") is None
    assert not out.exists()


def test_a_store_without_trials_is_taken_over_whatever_campaign_it_was_started_with(tmp_path):
    _store(tmp_path / runner.STORE_FILE, 0, _text(extra="seed: 9\n")).close()
    store = runner.open_existing_store(_campaign(), tmp_path, False, _text(), "hint")
    assert store is not None
    try:
        assert store.n_trials() == 0 and not store.readonly
    finally:
        store.close()


def test_a_store_with_trials_is_continued_only_with_resume_and_the_same_campaign(tmp_path):
    text = _text()
    _store(tmp_path / runner.STORE_FILE, 2, text).close()
    with pytest.raises(ConfigError) as info:
        runner.open_existing_store(_campaign(), tmp_path, False, text, "hts run c.yaml --resume")
    msg = str(info.value)
    assert f"{tmp_path} already holds a campaign with 2 finished trials" in msg
    assert "`hts run c.yaml --resume`" in msg
    changed = _text(extra="seed: 9\n")
    with pytest.raises(ConfigError, match=r"the campaign file differs .*\(seed\); resume with the same file"):
        runner.open_existing_store(parse_campaign(changed), tmp_path, True, changed, "hint")
    # the same campaign, written differently (a comment): continued
    same = text + "# a note\n"
    store = runner.open_existing_store(parse_campaign(same), tmp_path, True, same, "hint")
    assert store is not None
    try:
        assert store.n_trials() == 2
    finally:
        store.close()


def test_differing_keys_are_dotted_and_sorted():
    a = {"budget": {"iterations": 2, "samples": 10}, "seed": 1, "name": "x"}
    b = {"budget": {"iterations": 3, "samples": 10}, "seed": 2, "name": "x", "extra": None}
    assert runner.differing_keys(a, b) == ["budget.iterations", "seed"]  # an absent key equals None
    assert runner.differing_keys(a, a) == []
    assert runner.differing_keys({"a": {"b": 1}}, {"a": 5}) == ["a"]


# -- a finished campaign ------------------------------------------------------------------------------


def test_finished_summary_from_the_store(tmp_path):
    c = _campaign()  # 2 x 2 = 4 trials
    store = _store(tmp_path / "s.sqlite", 3)
    try:
        assert runner.finished_summary(c, store) is None
        store.record_trial(TrialRecord(3, 1, "random", {}, 10, 10, 0, 0, {}, 0.1), [])
        assert runner.finished_summary(c, store) == RunSummary(4, 40, 3, 1, "iterations", 0.0)
        assert runner.finished_summary(_campaign("screen"), store) is None  # screen counts configurations
    finally:
        store.close()


def test_finished_summary_after_the_evaluation_budget(tmp_path):
    c = parse_campaign(_text().replace("samples_per_trial: 10}", "samples_per_trial: 10, max_evaluations: 25}"))
    store = _store(tmp_path / "s.sqlite", 2)
    try:
        assert runner.finished_summary(c, store) is None  # 20 of 25
        store.record_trial(TrialRecord(2, 1, "random", {}, 5, 5, 0, 0, {}, 0.1), [])
        assert runner.finished_summary(c, store) == RunSummary(3, 25, 2, 1, "max_evaluations", 0.0)
    finally:
        store.close()


def test_needs_verification_until_top_k_are_verified(tmp_path):
    oracle = _campaign(extra="oracle: {enabled: true, top_k: 2}\n")
    empty = CampaignStore(sqlite_url(tmp_path / "empty.sqlite"))
    store = _store(tmp_path / "s.sqlite", 2)
    try:
        assert not runner.needs_verification(_campaign(), store)  # no oracle
        assert not runner.needs_verification(oracle, empty)  # no trial: nothing to verify
        assert runner.needs_verification(oracle, store)
        store.record_oracle("h0", "failed", {})
        assert runner.needs_verification(oracle, store)
        store.record_oracle("h1", "converged", {})
        assert not runner.needs_verification(oracle, store)  # top_k results, failures included
    finally:
        store.close()
        empty.close()


# -- signals ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_asks_to_stop_a_second_aborts_and_the_handlers_are_restored(signum):
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    with runner.stop_on_signals() as stopping:
        assert stopping() is False
        assert all(signal.getsignal(s) not in (before[s], signal.SIG_DFL) for s in before)
        signal.raise_signal(signum)
        assert stopping() is True
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signum)
    assert {s: signal.getsignal(s) for s in before} == before


def test_the_handlers_are_restored_when_the_run_fails():
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(RuntimeError), runner.stop_on_signals():
        raise RuntimeError("the loop failed")
    assert signal.getsignal(signal.SIGINT) is before


# -- the strategy's loop ------------------------------------------------------------------------------


def _record(calls: list, name: str):
    def fake(*args, **kwargs):
        calls.append((name, args, kwargs))
        return RunSummary(1, 2, 3, 4, "iterations", 0.5)

    return fake


def test_screen_runs_its_own_loop(monkeypatch):
    import hts.campaign.screen

    calls: list = []
    monkeypatch.setattr(hts.campaign.screen, "run_screen", _record(calls, "screen"))
    monkeypatch.setattr(runner, "run_loop", _record(calls, "loop"))
    c = _campaign("screen")
    stop, pump, progress = (lambda: False), (lambda: 1), (lambda d: None)
    summary = runner.run_strategy(c, HOST, "store", None, "scorer", progress, stop, pump)
    assert summary == RunSummary(1, 2, 3, 4, "iterations", 0.5)
    assert calls == [("screen", (c, HOST, "store", "scorer", progress, stop, pump), {})]


@pytest.mark.parametrize("strategy", ["random", "llm-fixed", "llm-bo"])
def test_other_strategies_run_the_campaign_loop_pumping_the_oracle_after_each_iteration(monkeypatch, strategy):
    import hts.campaign.screen

    calls: list = []
    monkeypatch.setattr(hts.campaign.screen, "run_screen", _record(calls, "screen"))
    monkeypatch.setattr(runner, "run_loop", _record(calls, "loop"))
    c = _campaign(strategy, "surrogate: {model: default}\n")
    stop = lambda: False  # noqa: E731
    pumped: list[int] = []
    runner.run_strategy(c, HOST, "store", "proposer", "scorer", None, stop, lambda: pumped.append(1))
    ((name, args, kwargs),) = calls
    assert name == "loop" and args == (c, HOST, "store", "proposer", "scorer")
    assert kwargs["progress"] is None and kwargs["should_stop"] is stop
    kwargs["on_iteration_end"](0)
    kwargs["on_iteration_end"](1)
    assert pumped == [1, 1]
    calls.clear()
    runner.run_strategy(c, HOST, "store", "proposer", "scorer", None, stop, None)  # no oracle beside the loop
    assert calls[0][2]["on_iteration_end"] is None


def test_in_process_scorer_holds_one_model_across_refits(tiny_surrogate: Path, tmp_path: Path) -> None:
    import shutil

    from surrogate import scoring

    refits = [shutil.copytree(tiny_surrogate, tmp_path / f"refit-{i}") for i in range(3)]
    scoring.clear_cache()
    with runner.make_scorer(_campaign(), HOST, tiny_surrogate) as scorer:
        for path in refits:
            scorer.use_model(path)
            assert list(scoring._CACHE) == [str(path.resolve())]
    scoring.clear_cache()
