"""run_trial: propose, score, observe one planned trial, against an in-memory state and a fake Ax."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from hts.campaign.plan import TrialKind, TrialPlan
from hts.campaign.proposers import RandomProposer
from hts.campaign.trial import run_trial
from hts.defects import PAD, ConfigBatch
from tests.hts.campaign.planners.fakes import state


class GapByVacancies:
    """A surrogate stand-in: the gap falls 0.2 eV per defect from 1.0 eV (one or two defects hit the
    0.45-0.75 eV window of the test campaign), formation energy 1 eV per defect."""

    def score(self, batch: ConfigBatch) -> SimpleNamespace:
        n = (batch.sites != PAD).sum(axis=1).astype(float)
        mean = np.column_stack([1.0 - 0.2 * n, n])
        return SimpleNamespace(targets=["homo_lumo_gap", "formation_energy"], mean=mean, std=np.full_like(mean, 0.01))


def test_a_single_setting_trial_completes_its_ax_trial_and_the_incumbent():
    s = state(samples=16)
    proposer = RandomProposer(s.host, s.campaign)
    index = s.ax.attach_trial({"max_defects": 2})
    out = run_trial(TrialPlan(TrialKind.AX, [{"max_defects": 2}], index), s, proposer, GapByVacancies())
    t = out.trial
    assert (t.trial_id, t.kind, t.n_generated, t.knobs) == (0, "ax", 16, {"max_defects": 2})
    assert t.n_hits == sum(c.hit for c in out.candidates) > 0 and t.n_new == len(out.candidates)
    (obs,) = out.observations
    assert obs.ax_index == index and obs.n_samples == 16 and obs.n_hits == t.n_hits
    assert s.ax.completed[index] == (obs.score, obs.sem) and obs.score == pytest.approx(t.metrics["score"])
    assert s.incumbent.hits_of({"max_defects": 2}) == (t.n_hits, 16) and s.incumbent.explored() == [(t.n_hits, 16)]
    assert s.n_trials == 0  # the loop advances the state once the trial is stored


def test_a_probe_observes_each_part_and_explores_once():
    s = state(samples=16)
    proposer = RandomProposer(s.host, s.campaign)
    parts = [{"max_defects": 1}, {"max_defects": 3}]
    out = run_trial(TrialPlan(TrialKind.PROBE, parts), s, proposer, GapByVacancies())
    assert out.trial.kind == "probe" and out.trial.knobs == parts[0]
    assert len(out.observations) >= 2  # per part, per composition drawn in it
    assert sorted(o.ax_index for o in out.observations) == list(range(len(out.observations)))
    assert sum(o.n_samples for o in out.observations) == 16
    assert len(s.incumbent.explored()) == 1


def test_without_ax_nothing_is_observed():
    s = state("random", samples=8)
    out = run_trial(TrialPlan(TrialKind.RANDOM, [{}]), s, RandomProposer(s.host, s.campaign), GapByVacancies())
    assert out.observations == [] and out.trial.kind == "random" and out.trial.n_generated == 8
