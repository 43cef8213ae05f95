"""TrialPlan: parts and their samples; TrialKind's properties."""

from hts.campaign.plan import TrialKind, TrialPlan, split_samples


def test_samples_split_evenly_larger_parts_first():
    assert split_samples(10, 4) == [3, 3, 2, 2] and split_samples(3, 1) == [3]


def test_a_part_never_goes_without_samples():
    """3 samples over a probe of 4 compositions: 3 parts of one sample each."""
    plan = TrialPlan(TrialKind.PROBE, [{"n": 1}, {"n": 2}, {"n": 3}, {"n": 4}])
    assert plan.parts(3) == [({"n": 1}, 1), ({"n": 2}, 1), ({"n": 3}, 1)]
    assert plan.parts(64) == [({"n": i}, 16) for i in (1, 2, 3, 4)]
    assert plan.knobs == {"n": 1}


def test_kinds_drawn_in_parts_and_kinds_that_explore():
    assert {k for k in TrialKind if k.in_parts} == {TrialKind.SCOUT, TrialKind.PROBE}
    assert {k for k in TrialKind if k.explores} == {TrialKind.AX, TrialKind.LOCAL, TrialKind.PROBE}
