"""Scoring service: in-process cache, Dask workers, order of results."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from hts.cluster import DEBUG_LOG_LENGTH
from hts.defects import ConfigBatch
from hts.errors import InputDataError, ModelError
from surrogate import scoring
from surrogate.model import SurrogateModel
from tests.surrogate.synthetic import SyntheticDataset


def test_score_batch_uses_process_cache(model_dir: Path, dataset: SyntheticDataset, tmp_path: Path) -> None:
    scoring.clear_cache()
    batch = dataset.batch()
    first = scoring.score_batch(model_dir, batch)
    m1 = scoring.load_cached(model_dir)
    assert scoring.load_cached(model_dir) is m1  # loaded once
    np.testing.assert_array_equal(first.mean, SurrogateModel.load(model_dir).predict(batch).mean)
    # A model re-saved in place is picked up (the cache key holds the files' mtimes).
    copy = tmp_path / "m"
    shutil.copytree(model_dir, copy)
    a = scoring.load_cached(copy)
    later = time.time() + 5
    os.utime(copy / "model.json", (later, later))
    assert scoring.load_cached(copy) is not a
    with pytest.raises(ModelError, match="not a surrogate model directory"):
        scoring.load_cached(tmp_path)


def test_dask_scorer_matches_in_process_and_keeps_order(model_dir: Path, dataset: SyntheticDataset) -> None:
    pytest.importorskip("distributed")
    batch = dataset.batch()
    rev = np.arange(len(batch))[::-1]
    shuffled = ConfigBatch(batch.host, batch.sites[rev], batch.codes[rev])
    ref = scoring.score_batch(model_dir, shuffled)
    with scoring.DaskScorer(model_dir, n_workers=1, chunk_size=17) as scorer:
        scorer.warm_up()
        got = scorer.score(shuffled)
        np.testing.assert_allclose(got.mean, ref.mean)
        np.testing.assert_allclose(got.std, ref.std)
        small = ConfigBatch(batch.host, batch.sites[:5], batch.codes[:5])
        for _ in range(3 * DEBUG_LOG_LENGTH):  # Dask's debugging logs stay bounded (hts.cluster.bounded_logs)
            scorer.score(small)
        streams = scorer._own_cluster.scheduler.stream_comms.values()
        assert max(len(s.recent_message_log) for s in streams) <= DEBUG_LOG_LENGTH
        bad = ConfigBatch(batch.host, batch.sites[:2].copy(), batch.codes[:2].copy())
        bad.codes[:] = 99
        with pytest.raises(InputDataError):
            scorer.score(bad)


def test_use_model_moves_the_workers_to_the_new_model_and_loads_nothing_here(
    model_dir: Path, dataset: SyntheticDataset, tmp_path: Path
) -> None:
    pytest.importorskip("distributed")
    refit = shutil.copytree(model_dir, tmp_path / "refit")
    other = shutil.copytree(model_dir, tmp_path / "other")
    info = json.loads((other / "model.json").read_text())
    info["targets"] = ["fermi_level"]
    (other / "model.json").write_text(json.dumps(info))
    batch = dataset.batch()
    scoring.clear_cache()
    with scoring.DaskScorer(model_dir, n_workers=1) as scorer:
        scorer.warm_up()
        scorer.use_model(refit)
        on_workers = scorer.client.run(lambda: list(scoring._CACHE))
        assert list(on_workers.values()) == [[str(refit.resolve())]]  # the model before is dropped there
        assert str(refit.resolve()) not in scoring._CACHE  # this process reads only model.json
        np.testing.assert_allclose(scorer.score(batch).mean, scoring.score_batch(model_dir, batch).mean)
        with pytest.raises(ModelError, match="not a model of the same kind"):
            scorer.use_model(other)
        assert scorer.model_dir == str(refit.resolve())  # a refused model changes nothing
        broken = shutil.copytree(model_dir, tmp_path / "broken")
        for booster in broken.glob("*.cbm"):
            booster.write_bytes(b"not a model")
        with pytest.raises(ModelError):
            scorer.use_model(broken)
        assert scorer.model_dir == str(refit.resolve())  # the workers could not load it: the model before stays
        np.testing.assert_allclose(scorer.score(batch).mean, scoring.score_batch(model_dir, batch).mean)
    scoring.clear_cache()
