"""The per-process model cache keeps the newest MAX_CACHED models (refits do not pile up)."""

from __future__ import annotations

import shutil

from surrogate import scoring
from surrogate.features import make_featuriser
from surrogate.model import SurrogateModel
from tests.surrogate.synthetic import make_dataset


def test_the_cache_keeps_only_the_newest_models(tmp_path, monkeypatch):
    ds = make_dataset(per_concentration=5, seed=0)
    model = SurrogateModel.fit(
        make_featuriser("sparse"), ds.batch(), ds.table, ["homo_lumo_gap"], params={"iterations": 10}, thread_count=1
    )
    first = model.save(tmp_path / "m0")
    dirs = [first] + [shutil.copytree(first, tmp_path / f"m{i}") for i in range(1, 4)]
    monkeypatch.setattr(scoring, "MAX_CACHED", 2)
    scoring.clear_cache()
    loaded = [scoring.load_cached(d) for d in dirs]
    assert len(scoring._CACHE) == 2
    assert scoring.load_cached(dirs[-1]) is loaded[-1]  # the newest stays loaded
    assert scoring.load_cached(dirs[0]) is not loaded[0]  # the oldest was dropped and is loaded again
    scoring.clear_cache()


def test_forget_drops_one_model_and_keeps_the_others(tmp_path):
    ds = make_dataset(per_concentration=5, seed=0)
    model = SurrogateModel.fit(
        make_featuriser("sparse"), ds.batch(), ds.table, ["homo_lumo_gap"], params={"iterations": 10}, thread_count=1
    )
    a = model.save(tmp_path / "a")
    b = shutil.copytree(a, tmp_path / "b")
    scoring.clear_cache()
    kept = scoring.load_cached(b)
    scoring.load_cached(a)
    scoring.forget(tmp_path / "x" / ".." / "a")  # any spelling of the same folder
    assert list(scoring._CACHE) == [str(b.resolve())]
    assert scoring.load_cached(b) is kept
    scoring.forget(tmp_path / "never-loaded")  # nothing to drop: no error
    scoring.clear_cache()
