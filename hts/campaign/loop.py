"""The campaign loop: plan -> propose -> score -> observe -> store, until the budget is spent.

Each round asks the strategy's planner (:mod:`hts.campaign.planners`) for the trials left in the
current iteration; each trial is run (:func:`hts.campaign.trial.run_trial`: the generator proposes, the
surrogate scores what is new, Ax and the incumbent observe the result) and committed to the store with
its candidates, its observations and the Ax state after it, in one transaction. A crash or SIGKILL
loses at most the trial in flight; on ``--resume`` the state is rebuilt from the store
(:meth:`hts.campaign.state.CampaignState.resume`), Ax from its last snapshot (trials it had handed out
but never completed are marked abandoned), and no stored candidate is repeated.

Strategies here: ``llm-bo`` (Ax/BoTorch over prompt values, temperature and the defects' make-up, with
a scout trial, exploitation of the best setting and local search around the leading one),
``llm-fixed`` (the study: the LLM prompted with the target centres, temperature 1, no BO) and
``random``. ``screen`` has a loop of its own (:mod:`hts.campaign.screen`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from hts.campaign.axclient import ax_snapshot
from hts.campaign.config import Campaign
from hts.campaign.planners import make_planner
from hts.campaign.proposers import Proposer
from hts.campaign.score import Scorer
from hts.campaign.state import CampaignState, RunSummary
from hts.campaign.store import CampaignStore, TrialRecord
from hts.campaign.trial import run_trial
from hts.hosts import Host


def run_loop(
    campaign: Campaign,
    host: Host,
    store: CampaignStore,
    proposer: Proposer,
    scorer: Scorer,
    label_ranges: Mapping[str, tuple[float, float]] | None = None,
    progress: Callable[[dict[str, Any]], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    on_iteration_end: Callable[[int], None] | None = None,
) -> RunSummary:
    """Run (or continue) the campaign until its budget is spent; see the module docstring.

    ``label_ranges``: the property ranges the generator was trained on (default: the proposer's);
    ``progress(event)`` after every trial; ``should_stop()`` is asked before every trial (a signal);
    ``on_iteration_end(iteration)`` after the last trial of each iteration (e.g. for the oracle
    verifying beside the loop, :mod:`hts.campaign.verifier`).
    """
    state = CampaignState.resume(campaign, host, store)
    planner = make_planner(
        state,
        store,
        getattr(proposer, "prompt_properties", None),  # what the generator can put into a prompt
        label_ranges if label_ranges is not None else getattr(proposer, "prompt_ranges", None),
    )
    while (stopped := state.stop_reason(should_stop)) is None:
        plans = planner.plan(state, state.want())
        if not plans:  # e.g. Ax can suggest nothing more in a space it has exhausted
            stopped = "nothing_to_plan"
            break
        for plan in plans:
            if should_stop is not None and should_stop():
                break
            outcome = run_trial(plan, state, proposer, scorer)
            snapshot = ax_snapshot(state.ax) if state.ax is not None else None
            store.record_trial(outcome.trial, outcome.candidates, snapshot, outcome.observations)
            state.record(outcome.trial, outcome.candidates)
            if progress is not None:
                progress(progress_event(outcome.trial, state))
            if on_iteration_end is not None and state.iteration_done():
                on_iteration_end(outcome.trial.iteration)
    return state.summary(store, stopped)


def progress_event(trial: TrialRecord, state: CampaignState) -> dict[str, Any]:
    """What a progress callback is told after a trial."""
    return {
        "trial": trial.trial_id,
        "iteration": trial.iteration,
        "trials": state.n_trials,
        "max_trials": state.max_trials,
        "evaluations": state.evaluations,
        "new": trial.n_new,
        "hits": trial.n_hits,
        **trial.metrics,
    }
