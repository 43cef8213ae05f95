"""Planners: what the next trials of an iteration run (:class:`hts.campaign.plan.TrialPlan`).

Each planner is a small object with one method, ``plan(state, want)``, that returns at most ``want``
plans for the campaign state (:class:`hts.campaign.state.CampaignState`). ``llm-fixed`` and ``random``
run one :class:`FixedPlanner`. ``llm-bo`` chains the others in :class:`BOPlanner`, the way Ax's
generation strategy hands over from one node to the next: the scout first, then in each iteration
exploitation of the best setting, local search next to the leading setting, and Ax's suggestions for
the trials left.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Protocol

from hts.campaign.plan import TrialKind, TrialPlan
from hts.campaign.planners.ax import AxPlanner
from hts.campaign.planners.bo import BOPlanner
from hts.campaign.planners.exploit import ExploitPlanner
from hts.campaign.planners.fixed import FixedPlanner
from hts.campaign.planners.local import LocalPlanner
from hts.campaign.planners.scout import ScoutPlanner
from hts.campaign.state import CampaignState
from hts.campaign.store import CampaignStore

__all__ = [
    "AxPlanner",
    "BOPlanner",
    "ExploitPlanner",
    "FixedPlanner",
    "LocalPlanner",
    "Planner",
    "ScoutPlanner",
    "make_planner",
]


class Planner(Protocol):
    def plan(self, state: CampaignState, want: int) -> list[TrialPlan]:
        """At most ``want`` trials to run next (at least one while ``want`` > 0)."""
        ...


def make_planner(
    state: CampaignState,
    store: CampaignStore,
    prompt_properties: Collection[str] | None = None,
    label_ranges: Mapping[str, tuple[float, float]] | None = None,
) -> Planner:
    """The planner of the campaign's strategy. For ``llm-bo`` also the knob space and the Ax client
    (restored from the store's last snapshot, or new), set on ``state``."""
    from hts.campaign.knobs import fixed_knobs, knob_constraints, knob_space

    campaign, host = state.campaign, state.host
    fixed = fixed_knobs(campaign, host, prompt_properties)
    if campaign.strategy != "llm-bo":
        return FixedPlanner(fixed, TrialKind.RANDOM if campaign.strategy == "random" else TrialKind.FIXED)
    from hts.campaign.axclient import new_ax_client, optimiser_warnings, restore_ax_client
    from hts.campaign.safety import restore_ax_checked
    from hts.campaign.scout import scout_knobs

    state.space = knob_space(campaign, host, label_ranges, prompt_properties)
    with optimiser_warnings():
        state.ax = restore_ax_checked(store, restore_ax_client)  # a snapshot that does not load names its trial
        if state.ax is None:
            n_init = campaign.bo.initial_trials or max(2, 2 * state.trials_per_iteration)
            state.ax = new_ax_client(state.space, campaign.seed, n_init, knob_constraints(campaign, host))
    bo = campaign.bo
    return BOPlanner(
        ScoutPlanner(bo.scout_trials, scout_knobs(state.space, fixed)),
        ExploitPlanner(bo.exploit_trials),
        LocalPlanner(bo.local_trials if bo.defect_knobs == "composition" else 0),
        AxPlanner(),
    )
