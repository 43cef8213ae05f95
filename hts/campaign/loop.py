"""The campaign loop: Ax suggests knob settings, the generator proposes, the surrogate scores.

One trial = one knob setting = ``samples_per_trial`` samples. Its candidates are canonicalised,
de-duplicated within the trial and against the archive, scored, reduced to distances, hits and the
trial score (:mod:`hts.campaign.objective`), and committed to the store together with the Ax state
after the trial, in one transaction. A crash or SIGKILL loses at most the trial in flight; on
``--resume`` the Ax client is rebuilt from the last snapshot, trials it had handed out but never
completed are marked abandoned, and the loop continues; no stored candidate is repeated.

Strategies: ``llm-bo`` (Ax/BoTorch over prompt values, temperature and the defects' make-up: an
exact count per defect type, or a budget with on/off switches per type; it starts with a scout
trial, :mod:`hts.campaign.scout`, re-runs its incumbent in part of each iteration,
:mod:`hts.campaign.incumbent`, as many trials as :mod:`hts.campaign.allocation` finds worth it, and
probes the compositions next to its leading setting in another part, :mod:`hts.campaign.local`),
``llm-fixed``
(the study: the LLM prompted with the target centres, temperature 1, no BO) and ``random``.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from hts.campaign.allocation import RECENT_EXPLOIT, extra_exploit_slots
from hts.campaign.config import BudgetSection, Campaign
from hts.campaign.incumbent import Incumbent
from hts.campaign.local import plan_local_trials
from hts.campaign.motifs import hit_motifs
from hts.campaign.objective import ClosenessKernel, distances, hit_probability, hit_term, score_sem, trial_score
from hts.campaign.proposers import Proposer, campaign_rules, count_knob, max_defects, rule_knob
from hts.campaign.scout import (
    Segment,
    propose_scout,
    propose_segments,
    scout_knobs,
    segmented_observations,
    split_samples,
)
from hts.campaign.store import CampaignStore, CandidateRecord, TrialRecord, format_defects
from hts.canonical import canonical_hashes, canonicalize, hash_hex
from hts.defects import ConfigBatch
from hts.errors import ConfigError, HTSError
from hts.hosts import Host

log = logging.getLogger(__name__)

OBJECTIVE = "score"


class Scorer(Protocol):
    """Anything that predicts a batch: ``score(batch)`` returns an object with ``targets``, ``mean``
    (N, T) and ``std`` (N, T) (e.g. :class:`surrogate.model.Prediction`)."""

    def score(self, batch: ConfigBatch) -> Any: ...


@dataclass(frozen=True)
class Knob:
    """One Ax parameter: a float or integer range."""

    name: str
    low: float
    high: float
    kind: str = "float"  # "float" | "int"


def prompt_targets(campaign: Campaign, prompt_properties: Collection[str] | None = None) -> list[str]:
    """The campaign's targets a prompt can carry: properties the prompt template knows
    (:data:`llm.properties.PROPERTIES`; not e.g. ``normalized_homo``), and of those only the ones the
    generator was trained to condition on when it records them (``prompt_properties``)."""
    from llm.properties import PROPERTIES

    allowed = set(PROPERTIES) if prompt_properties is None else set(prompt_properties) & set(PROPERTIES)
    return [name for name in campaign.targets if name in allowed]


def knob_space(
    campaign: Campaign,
    host: Host,
    label_ranges: Mapping[str, tuple[float, float]] | None = None,
    prompt_properties: Collection[str] | None = None,
) -> list[Knob]:
    """The generator's knobs tuned by ``llm-bo``.

    - ``prompt_<property>`` for every target a prompt can carry (:func:`prompt_targets`): the value
      written into the prompt, from a range around the target window (clipped to the range the
      generator was trained on, ``label_ranges``, where known) — the model may hit the window best
      when asked for something slightly different;
    - ``prompt_<property>`` also for every property the generator was trained on that is *not* a
      target, over its whole trained range (when ``prompt_properties`` and ``label_ranges`` say): a
      gap-conditioned generator can then be steered towards a HOMO/LUMO window through the gap it is
      asked for;
    - ``temperature`` in [0.4, 1.6];
    - ``max_defects`` between the campaign's bounds (the defect budget of the grammar);
    - ``rule_<defect type>`` in {0, 1} for each defect type the campaign allows, when it allows more
      than one: which types the decoder may use in the trial (all off: the trial draws nothing).
      Which kinds of defect to combine is the first thing a defect engineer decides; the generator's
      grammar makes it a hard switch, the same for both back ends (the vLLM back end gets the
      narrowed rules in its regular expression).

    With ``bo.defect_knobs: composition`` the last two are replaced by ``n_<defect type>`` in
    [0, max defects] for each allowed type: the exact number of defects of that type (their sum
    within the campaign's bounds, :func:`knob_constraints`). The decoder then places exactly that
    composition (:class:`llm.constraints.SparseCompositionAutomaton`): BO chooses *what* to put in
    the cell, the model *where*.
    """
    knobs = []
    for name in prompt_targets(campaign, prompt_properties):
        t = campaign.targets[name]
        lo, hi = t.window
        span = max(3 * t.half_width, 0.5)
        a, b = lo - span, hi + span
        if label_ranges and name in label_ranges:
            dlo, dhi = label_ranges[name]
            a, b = max(a, dlo), min(b, dhi)
            if a >= b:  # the window lies outside the data: search the data range
                a, b = dlo, dhi
        knobs.append(Knob(f"prompt_{name}", float(a), float(b)))
    if prompt_properties is not None and label_ranges:
        from llm.properties import PROPERTIES

        for name in sorted(set(prompt_properties) & set(PROPERTIES) & set(label_ranges)):
            lo_r, hi_r = label_ranges[name]
            if name not in campaign.targets and hi_r > lo_r:
                knobs.append(Knob(f"prompt_{name}", float(lo_r), float(hi_r)))
    knobs.append(Knob("temperature", 0.4, 1.6))
    k_min, k_max = max(1, campaign.defects.min_defects), max_defects(host, campaign)
    rules = campaign_rules(host, campaign)
    if campaign.bo.defect_knobs == "composition":
        if len(rules) == 1:  # the one count is the defect budget: bounds instead of constraints
            return [*knobs, Knob(count_knob(rules[0]), k_min, k_max, "int")]
        knobs.extend(Knob(count_knob(r), 0, k_max, "int") for r in rules)
        return knobs
    if k_max > k_min:
        knobs.append(Knob("max_defects", k_min, k_max, "int"))
    if len(rules) > 1:
        knobs.extend(Knob(rule_knob(r), 0, 1, "int") for r in rules)
    return knobs


def knob_constraints(campaign: Campaign, host: Host) -> list[str]:
    """Ax parameter constraints of the knob space: with ``bo.defect_knobs: composition``, the counts
    per type add up to a number within the campaign's defect bounds."""
    rules = campaign_rules(host, campaign)
    if campaign.bo.defect_knobs != "composition" or len(rules) < 2:
        return []
    total = " + ".join(count_knob(r) for r in rules)
    k_min, k_max = max(1, campaign.defects.min_defects), max_defects(host, campaign)
    return [f"{total} <= {k_max}", f"{total} >= {k_min}"]


# A band gap implied by HOMO and LUMO targets (either scale): gap = LUMO - HOMO.
_GAP_PAIRS = (("homo", "lumo"), ("normalized_homo", "normalized_lumo"))


def implied_gap(campaign: Campaign) -> float | None:
    """The band gap a campaign's HOMO and LUMO targets imply (their centres' difference), when it
    targets both levels but not the gap itself; ``None`` otherwise."""
    if "homo_lumo_gap" in campaign.targets:
        return None
    for homo, lumo in _GAP_PAIRS:
        if homo in campaign.targets and lumo in campaign.targets:
            return float(campaign.targets[lumo].centre - campaign.targets[homo].centre)
    return None


def fixed_knobs(campaign: Campaign, host: Host, prompt_properties: Collection[str] | None = None) -> dict[str, Any]:
    """``llm-fixed``: the targets' centres in the prompt, temperature 1, the full defect budget.

    For HOMO and LUMO targets a generator that conditions on the band gap is also asked for the gap
    they imply (:func:`implied_gap`), as a user of the one-shot approach would write it: the
    normalised levels cannot be written into a prompt at all, so the gap is how such a model is
    pointed at a HOMO/LUMO window."""
    out: dict[str, Any] = {
        f"prompt_{n}": campaign.targets[n].centre for n in prompt_targets(campaign, prompt_properties)
    }
    gap = implied_gap(campaign)
    if gap is not None and (prompt_properties is None or "homo_lumo_gap" in prompt_properties):
        out["prompt_homo_lumo_gap"] = gap
    out["temperature"] = 1.0
    out["max_defects"] = max_defects(host, campaign)
    return out


_OPTIMISER_MODULES = r"(ax|botorch|gpytorch|linear_operator)(\.|$)"


def quiet_ax() -> None:
    """Ax gives each of its modules an INFO logger of its own. Keep them to errors unless the run is
    verbose (``hts -v run``): its routine warnings ("only 1 of 2 trials could be generated" while
    Sobol hands over to BoTorch, falling back to Sobol when a model fit fails) are about Ax's own
    bookkeeping, and the trial table records what each trial ran with anyway."""
    verbose = logging.getLogger().isEnabledFor(logging.DEBUG)
    if not verbose and "ax" not in sys.modules:  # importing Ax logs at INFO through its own handlers
        previous = logging.root.manager.disable
        logging.disable(logging.INFO)
        try:
            import ax  # noqa: F401
        finally:
            logging.disable(previous)
    level = logging.DEBUG if verbose else logging.ERROR
    for name in list(logging.root.manager.loggerDict):
        if name == "ax" or name.startswith("ax."):
            logging.getLogger(name).setLevel(level)


@contextlib.contextmanager
def optimiser_warnings() -> Iterator[None]:
    """Around Ax/BoTorch calls: their Python warnings (numerical notes of the GP fit and the acquisition
    optimiser, deprecations inside Ax) are hidden unless the run is verbose."""
    with warnings.catch_warnings():
        if not logging.getLogger().isEnabledFor(logging.DEBUG):
            warnings.filterwarnings("ignore", module=_OPTIMISER_MODULES)
        yield


def new_ax_client(knobs: list[Knob], seed: int, n_init: int, constraints: Sequence[str] = ()) -> Any:
    """An Ax ``Client`` over ``knobs`` (with linear ``constraints`` between them, Ax's string form)
    maximising the trial score (Sobol start, then BoTorch)."""
    quiet_ax()
    from ax import Client, RangeParameterConfig

    client = Client(random_seed=seed)
    client.configure_experiment(
        parameters=[
            RangeParameterConfig(name=k.name, parameter_type=k.kind, bounds=(k.low, k.high))  # type: ignore[arg-type]
            for k in knobs
        ],
        parameter_constraints=list(constraints) or None,
        name="hts-campaign",
    )
    client.configure_optimization(objective=OBJECTIVE)
    # The scout's composition groups do not count towards the Sobol start: they all come from the
    # model's own idea of the targets, and when that idea is off (the mid-gap campaign: asked for
    # 1.0 eV, the adapter answers ~1.46 eV) only quasi-random trials find the region that hits.
    client.configure_generation_strategy(
        method="fast",
        initialization_budget=n_init,
        initialization_random_seed=seed,
        use_existing_trials_for_initialization=False,
    )
    return client


def restore_ax_client(snapshot: str) -> Any:
    """Rebuild the Ax client from a stored snapshot (Ax's public JSON file round trip); trials left
    running are marked abandoned."""
    quiet_ax()
    from ax import Client

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ax.json"
        path.write_text(snapshot)
        client = Client.load_from_json_file(str(path))
    if client.summarize().empty:
        return client
    trials = client.summarize()[["trial_index", "trial_status"]]
    for idx, status in zip(trials["trial_index"], trials["trial_status"], strict=True):
        if status in ("RUNNING", "CANDIDATE", "STAGED"):
            client.mark_trial_abandoned(int(idx))
    return client


def ax_snapshot(client: Any) -> str:
    """The Ax client's state as JSON text (Ax's public JSON file round trip), stored after each trial."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ax.json"
        client.save_to_json_file(str(path))
        return path.read_text()


@dataclass
class RunSummary:
    trials: int
    evaluations: int
    candidates: int
    hits: int
    stopped: str
    wall_time_s: float


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

    ``on_iteration_end(iteration)`` is called after the last trial of each iteration (e.g. for
    the oracle verifying beside the loop, :mod:`hts.campaign.verifier`).
    """
    b = campaign.budget
    q = b.trials_per_iteration
    max_trials = b.iterations * q
    t_start = time.perf_counter()
    deadline = t_start + b.wall_clock_hours * 3600 if b.wall_clock_hours else None

    archive = store.known_hashes()
    n_trials = len(store.trials_frame()) if store.last_trial() else 0
    resumed_at = n_trials  # trials run before this run (a resumed campaign), for the wall-clock estimate
    evaluations = store.n_evaluations()
    # What the proposer can put into a prompt (an adapter records what it was trained on, and the ranges).
    prompt_properties = getattr(proposer, "prompt_properties", None)
    if label_ranges is None:
        label_ranges = getattr(proposer, "prompt_ranges", None)
    ax = None
    space = knob_space(campaign, host, label_ranges, prompt_properties) if campaign.strategy == "llm-bo" else []
    if campaign.strategy == "llm-bo":
        from hts.campaign.safety import restore_ax_checked

        with optimiser_warnings():
            ax = restore_ax_checked(store, restore_ax_client)  # a snapshot that does not load names its trial
            if ax is None:
                ax = new_ax_client(
                    space,
                    campaign.seed,
                    n_init=campaign.bo.initial_trials or max(2, q * 2),
                    constraints=knob_constraints(campaign, host),
                )
    fixed = fixed_knobs(campaign, host, prompt_properties)
    scout = scout_knobs(space, fixed)
    stored = store.trials_frame().to_dict("records") if n_trials else []
    incumbent = Incumbent.from_trials(stored)
    next_id = (store.last_trial() or (-1, 0))[0] + 1
    kernel = ClosenessKernel(campaign.bo.closeness_width, campaign.bo.closeness_tail)
    stopped = "budget"
    while True:
        if n_trials >= max_trials:
            stopped = "iterations"
            break
        if b.max_evaluations is not None and evaluations >= b.max_evaluations:
            stopped = "max_evaluations"
            break
        halt = stop_reason(deadline, should_stop)
        if halt is not None:
            stopped = halt
            break
        want = min(q - n_trials % q, max_trials - n_trials)  # the rest of the current iteration
        # (store id, Ax trial index or None, knobs (a probe: its parts' knobs), kind: "scout" | "exploit" |
        # "local" | "probe" | "ax" | "fixed")
        batch_trials: list[tuple[int, int | None, dict[str, Any] | list[dict[str, Any]], str]]
        if ax is not None and n_trials < campaign.bo.scout_trials:
            batch_trials = [(next_id, None, dict(scout), "scout")]
        elif ax is not None:
            best = incumbent.best(campaign.bo.exploit_min_hit_rate)  # a setting that has produced hits
            n_exploit = min(campaign.bo.exploit_trials, want) if best is not None else 0
            every = campaign.bo.explore_every
            keeps_exploring = every > 0 and (n_trials // q) % every == every - 1
            if best is not None and campaign.bo.adaptive_exploit and not keeps_exploring:
                n_exploit += extra_exploit_slots(
                    incumbent.hits_of(best, last=RECENT_EXPLOIT),
                    incumbent.explored(),
                    incumbent.explored_since(best),
                    want - n_exploit,
                    _trials_left(max_trials - n_trials, evaluations, b, deadline, t_start, n_trials - resumed_at)
                    - n_exploit,
                )
            with optimiser_warnings():
                chosen: list[tuple[int | None, dict[str, Any] | list[dict[str, Any]], str]] = []
                if best is not None:
                    chosen += [(ax.attach_trial(parameters=best), dict(best), "exploit") for _ in range(n_exploit)]
                # local trials search for a setting worth exploiting, and (bo.local_after_exploit) for a
                # better one next to the leader in the exploration slots left; the rest come from Ax
                searching = best is None or campaign.bo.local_after_exploit
                n_local = min(campaign.bo.local_trials, want - len(chosen)) if searching else 0
                for parts in _local_trials(ax, incumbent, space, campaign, host, n_local, next_id):
                    if len(parts) == 1:
                        chosen.append((ax.attach_trial(parameters=parts[0]), parts[0], "local"))
                    else:  # a probe: its parts are attached to Ax once drawn, like the scout's groups
                        chosen.append((None, parts, "probe"))
                if want > len(chosen):
                    suggested = ax.get_next_trials(max_trials=want - len(chosen))
                    chosen += [(int(i), dict(p), "ax") for i, p in suggested.items()]
            batch_trials = [(next_id + j, i, p, kind) for j, (i, p, kind) in enumerate(chosen)]
        else:
            batch_trials = [(next_id + j, None, dict(fixed), "fixed") for j in range(want)]
        for trial_id, ax_index, planned, kind in batch_trials:
            # a probe's plan is its parts' settings; its trial row records the first (the others in extra)
            parts, knobs = (planned, dict(planned[0])) if isinstance(planned, list) else ([], planned)
            if should_stop is not None and should_stop():
                break
            t0 = time.perf_counter()
            iteration = n_trials // q
            rng = np.random.default_rng([campaign.seed, trial_id])
            n = b.samples_per_trial
            if b.max_evaluations is not None:
                n = max(1, min(n, b.max_evaluations - evaluations))
            segments: list[Segment] = []
            if kind == "scout":  # split over prompt settings
                proposal, segments = propose_scout(proposer, host, space, knobs, campaign.bo.scout_prompts, n, rng)
            elif kind == "probe":  # split over compositions next to the leader (no part without samples)
                parts = parts[:n]
                sizes = split_samples(n, len(parts))
                proposal, segments = propose_segments(proposer, host, list(zip(parts, sizes, strict=True)), rng)
            else:
                proposal = proposer.propose(knobs, n, rng)
            scored = score_new(proposal.batch, archive, scorer, campaign)
            score = trial_score(scored.distances, proposal.n_generated, kernel, scored.p_hit)
            metrics = {
                OBJECTIVE: score,
                "hit_fraction": scored.n_hits / max(1, proposal.n_generated),
                "best_distance": float(scored.distances.min()) if scored.distances.size else float("nan"),
            }
            extra: dict[str, Any] = {**proposal.stats, "first_hit_sample": scored.first_hit}
            snapshot = None
            if ax is not None:
                with optimiser_warnings():
                    if kind in ("scout", "probe"):
                        obs = segmented_observations(
                            host,
                            space,
                            segments,
                            proposal.batch,
                            scored.rows,
                            scored.distances,
                            kernel,
                            scored.p_hit,
                        )
                        for o in obs:
                            idx = ax.attach_trial(parameters=o.parameters)
                            ax.complete_trial(idx, raw_data={OBJECTIVE: _observed(o.score, o.sem, campaign)})
                        runs = [(o.parameters, o.score, o.n_samples, o.n_hits) for o in obs]
                        incumbent.add_group(runs, explored=kind == "probe")
                        if kind == "scout":
                            extra.update(
                                scout=True,
                                scout_groups=len(obs),
                                scout_obs=runs,
                                scout_prompts=[dict(s) for s, _, _ in segments],
                            )
                        else:
                            extra.update(local=True, probe_obs=runs, probe_settings=[dict(s) for s, _, _ in segments])
                    else:
                        sem = score_sem(hit_term(scored.distances, scored.p_hit), proposal.n_generated)
                        ax.complete_trial(ax_index, raw_data={OBJECTIVE: _observed(score, sem, campaign)})
                        incumbent.add(knobs, score, proposal.n_generated, scored.n_hits, kind in ("ax", "local"))
                        extra["ax_trial"] = ax_index
                        extra["exploit"] = kind == "exploit"
                        if kind == "local":
                            extra["local"] = True
                    snapshot = ax_snapshot(ax)
            trial = TrialRecord(
                trial_id=trial_id,
                iteration=iteration,
                strategy=campaign.strategy,
                knobs=knobs,
                n_generated=proposal.n_generated,
                n_valid=len(proposal.batch),
                n_new=len(scored.records),
                n_hits=scored.n_hits,
                metrics=metrics,
                wall_time_s=time.perf_counter() - t0,
                extra=extra,
            )
            store.record_trial(trial, scored.records, snapshot)
            archive.update(r.hash for r in scored.records)
            n_trials += 1
            evaluations += len(proposal.batch)
            next_id = trial_id + 1
            if progress is not None:
                progress(
                    {
                        "trial": trial_id,
                        "iteration": iteration,
                        "trials": n_trials,
                        "max_trials": max_trials,
                        "evaluations": evaluations,
                        "new": len(scored.records),
                        "hits": scored.n_hits,
                        **metrics,
                    }
                )
            if on_iteration_end is not None and (n_trials % q == 0 or n_trials == max_trials):
                on_iteration_end(iteration)
    hits_total = int(store.candidates_frame()["hit"].sum()) if store.n_candidates() else 0
    return RunSummary(n_trials, evaluations, store.n_candidates(), hits_total, stopped, time.perf_counter() - t_start)


def stop_reason(deadline: float | None, should_stop: Callable[[], bool] | None) -> str | None:
    """``wall_clock`` past ``deadline`` (``time.perf_counter()``), ``interrupted`` when ``should_stop()``
    says so (a signal), else ``None``: the stopping rules every strategy's loop shares."""
    if deadline is not None and time.perf_counter() > deadline:
        return "wall_clock"
    if should_stop is not None and should_stop():
        return "interrupted"
    return None


def _trials_left(
    trials_left: int,
    evaluations: int,
    budget: BudgetSection,
    deadline: float | None,
    t_start: float,
    run_here: int,
) -> int:
    """Trials a campaign has left: by its iterations, by its evaluation budget when it has one, and by
    its wall-clock limit when it has one (at the mean pace of the trials run so far in this run)."""
    left = trials_left
    if budget.max_evaluations is not None:
        left = min(left, -(-max(0, budget.max_evaluations - evaluations) // max(1, budget.samples_per_trial)))
    if deadline is not None and run_here > 0:
        now = time.perf_counter()
        pace = (now - t_start) / run_here
        left = min(left, int(max(0.0, deadline - now) / max(pace, 1e-9)))
    return left


def _local_trials(
    ax: Any, incumbent: Incumbent, space: list[Knob], campaign: Campaign, host: Host, n: int, trial_id: int
) -> list[list[dict[str, Any]]]:
    """Up to ``n`` local trials (:func:`hts.campaign.local.plan_local_trials`), each a list of settings
    (a probe, when more than one) chosen by Ax's model; a probe part's samples make a composition tried."""
    if n <= 0:
        return []

    def predict(points: list[dict[str, Any]]) -> list[tuple[float, float]]:
        return [p[OBJECTIVE] for p in ax.predict(points=points)]

    per_trial = campaign.bo.local_probes
    return plan_local_trials(
        incumbent,
        space,
        max(1, campaign.defects.min_defects),
        max_defects(host, campaign),
        max(1, campaign.budget.samples_per_trial // per_trial),
        per_trial,
        n,
        predict,
        np.random.default_rng([campaign.seed, trial_id, 1]),
    )


def _observed(score: float, sem: float, campaign: Campaign) -> float | tuple[float, float]:
    """A score as Ax is given it: with its standard error (``bo.noise: binomial``) or alone
    (``inferred``: Ax fits one noise level to all trials)."""
    return (score, sem) if campaign.bo.noise == "binomial" else score


@dataclass
class ScoredBatch:
    """What :func:`score_new` found in a trial's batch."""

    records: list[CandidateRecord]  # the new candidates, scored
    n_hits: int
    distances: np.ndarray  # (len(records),) distances of the new candidates
    first_hit: int | None  # 1-based position of the first hit among the batch's samples
    rows: list[int]  # the rows of the batch the records come from
    p_hit: np.ndarray | None  # (len(records),) hit probabilities with bo.hit_term: expected, else None


def score_new(batch: ConfigBatch, archive: set[str], scorer: Scorer, campaign: Campaign) -> ScoredBatch:
    """Canonicalise, drop duplicates (in the batch and in the archive), score what is new."""
    if len(batch) == 0:
        return ScoredBatch([], 0, np.zeros(0), None, [], None)
    canon = canonicalize(batch)
    hexes = [hash_hex(h) for h in canonical_hashes(canon)]
    seen: set[str] = set()
    rows = []
    for i, h in enumerate(hexes):
        if h in archive or h in seen:
            continue
        seen.add(h)
        rows.append(i)
    if not rows:
        return ScoredBatch([], 0, np.zeros(0), None, [], None)
    new = canon.take(rows)
    try:
        pred = scorer.score(new)
    except HTSError:
        raise
    except Exception as exc:  # a scoring back end failing is reported, not swallowed
        raise ConfigError(f"scoring failed: {type(exc).__name__}: {exc}") from exc
    d, _ = distances(pred.mean, list(pred.targets), campaign.targets)
    p_hit = None
    if campaign.bo.hit_term == "expected":
        p_hit = hit_probability(pred.mean, pred.std, list(pred.targets), campaign.targets)
    configs = new.to_configs()
    motifs = hit_motifs(new, d == 0.0, scorer, campaign)
    records = []
    for j, (i, c) in enumerate(zip(rows, configs, strict=True)):
        preds = {t: (float(pred.mean[j, k]), float(pred.std[j, k])) for k, t in enumerate(pred.targets)}
        records.append(
            CandidateRecord(
                hash=hexes[i],
                defects=format_defects(c.defects),
                n_defects=c.n_defects,
                predictions=preds,
                distance=float(d[j]),
                hit=bool(d[j] == 0.0),
                **motifs.get(j, {}),
            )
        )
    hit_rows = [i for i, dj in zip(rows, d, strict=True) if dj == 0.0]
    return ScoredBatch(records, len(hit_rows), d, hit_rows[0] + 1 if hit_rows else None, rows, p_hit)
