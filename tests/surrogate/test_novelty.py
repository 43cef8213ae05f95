"""Novelty: the distance to the nearest labelled configuration in standardised features."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hts.errors import ModelError
from surrogate.novelty import Novelty, nearest_distance


def test_nearest_distance_matches_brute_force_across_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    import surrogate.novelty as novelty

    monkeypatch.setattr(novelty, "CHUNK", 7)  # several chunks
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(30, 5)), rng.normal(size=(11, 5))
    brute = np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(axis=2)).min(axis=1)
    np.testing.assert_allclose(nearest_distance(a, b), brute, rtol=1e-4, atol=1e-4)
    assert np.isinf(nearest_distance(a, b[:0])).all()


def test_labels_are_at_distance_zero_and_constant_features_do_not_blow_up() -> None:
    X = np.array([[0.0, 1.0, 5.0], [2.0, 1.0, 5.0], [4.0, 1.0, 7.0]])  # column 1 constant over the labels
    nov = Novelty.fit(X)
    np.testing.assert_allclose(nov.distance(X), 0.0, atol=1e-3)
    far = nov.distance(np.array([[2.0, 2.0, 6.0]]))  # one unit off the constant column: distance ~1, not 1e9
    assert 0.9 < far[0] < 2.0


def test_out_of_fold_measures_to_the_other_folds_only() -> None:
    X = np.array([[0.0], [0.0], [10.0], [11.0]])
    nov = Novelty.fit(X)
    rows = np.array([0, 1, 2, 3])
    fold = np.array([0, 1, 0, 1])
    d = nov.out_of_fold(rows, fold) * nov.scale[0]  # back to feature units
    np.testing.assert_allclose(d, [0.0, 0.0, 1.0, 1.0], atol=1e-3)


def test_save_load_roundtrip_and_a_broken_file(tmp_path: Path) -> None:
    nov = Novelty.fit(np.random.default_rng(1).normal(size=(20, 4)))
    nov.save(tmp_path / "novelty.npz")
    back = Novelty.load(tmp_path / "novelty.npz")
    np.testing.assert_array_equal(back.reference, nov.reference)
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(ModelError, match="bad.npz"):
        Novelty.load(tmp_path / "bad.npz")
