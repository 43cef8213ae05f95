"""The knob space ``llm-bo`` tunes (prompt values, temperature, the defects' make-up) and the fixed
setting of ``llm-fixed`` (the study's one-shot prompt): what a trial's setting can hold."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from hts.campaign.config import Campaign
from hts.campaign.proposers import campaign_rules, count_knob, max_defects, rule_knob
from hts.hosts import Host


@dataclass(frozen=True)
class Knob:
    """One Ax parameter: a float or integer range."""

    name: str
    low: float
    high: float
    kind: str = "float"  # "float" | "int"


def prompt_targets(campaign: Campaign, prompt_properties: Collection[str] | None = None) -> list[str]:
    """The campaign's targets a prompt can carry: the ones the generator was trained to condition on
    (``prompt_properties``, recorded by ``hts llm finetune``) that the prompt template knows
    (:data:`llm.properties.PROPERTIES`); for a generator that records none, the study's six
    (:data:`llm.properties.STUDY_PROPERTIES`)."""
    from llm.properties import PROPERTIES, STUDY_PROPERTIES

    allowed = set(STUDY_PROPERTIES) if prompt_properties is None else set(prompt_properties) & set(PROPERTIES)
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
    knobs = prompt_knobs(campaign, label_ranges, prompt_properties)
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


def prompt_knobs(
    campaign: Campaign,
    label_ranges: Mapping[str, tuple[float, float]] | None = None,
    prompt_properties: Collection[str] | None = None,
) -> list[Knob]:
    """The ``prompt_<property>`` knobs of :func:`knob_space`: each target a prompt can carry, from a
    range around its window (clipped to the trained range), then the other trained properties over
    their whole trained range."""
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
    return knobs
