"""verification_course: new-motif calls and precision by quarter, in the order results were stored."""

import math

import pandas as pd

from hts.campaign.results import verification_course


def test_course_counts_new_motifs_and_quarters() -> None:
    motifs = pd.DataFrame({"hash": list("abcdefgh"), "motif": ["m1", "m1", "m2", "m3", "m3", "m4", "m5", "m5"]})
    orc = pd.DataFrame(
        {
            "hash": list("hgfedcba"),  # stored in reverse order of the hashes
            "oracle_created": [f"2026-01-01T00:00:0{i}Z" for i in range(8)],
            "oracle_hit": [True, True, True, False, True, False, False, False],
        }
    )
    course = verification_course(motifs, orc)
    # in storage order: h m5, g m5, f m4, e m3, d m3, c m2, b m1, a m1 -> new: m5, m4, m3, m2, m1
    assert course["new_motif_calls"] == 5 / 8
    # two more calls on near misses (no motif): no new motif found by them
    misses = pd.DataFrame(
        {"hash": ["x", "y"], "oracle_created": ["2026-01-01T00:00:09Z"] * 2, "oracle_hit": [True, False]}
    )
    assert verification_course(motifs, pd.concat([orc, misses]))["new_motif_calls"] == 5 / 10
    assert course["precision_first_quarter"] == 1.0  # h, g
    assert course["precision_last_quarter"] == 0.0  # b, a


def test_course_is_nan_without_verification() -> None:
    course = verification_course(pd.DataFrame({"hash": ["a"], "motif": ["m"]}), pd.DataFrame())
    assert all(math.isnan(v) for v in course.values())
    only_misses = pd.DataFrame({"hash": ["x"], "oracle_created": ["t"], "oracle_hit": [False]})
    course = verification_course(pd.DataFrame({"hash": ["a"], "motif": ["m"]}), only_misses)
    assert course["new_motif_calls"] == 0.0 and math.isnan(course["precision_first_quarter"])
