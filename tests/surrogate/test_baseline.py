"""Linear composition baseline: exact on additive energies, extrapolates in defect count, round-trips."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hts.defects import ConfigBatch
from hts.errors import ModelError
from hts.hosts import get_host
from llm.sampling import random_configurations
from surrogate.baseline import LinearBaseline, rule_counts
from surrogate.features import SparseFeaturiser
from surrogate.model import SurrogateModel

HOST = get_host("MoS2", (4, 4, 1))
# Per-type formation energies of an additive toy model (eV), in the host's rule order.
PER_TYPE = {"vac_S": 2.5, "vac_Mo": 4.0, "Mo->W": 0.3, "S->Se": 0.2}


def _batch(lo: int, hi: int, n: int, seed: int) -> ConfigBatch:
    return ConfigBatch.from_configs(random_configurations(HOST, n, hi, np.random.default_rng(seed), min_defects=lo))


def _additive(batch: ConfigBatch) -> np.ndarray:
    w = np.array([PER_TYPE[r.name] for r in HOST.rules])
    return rule_counts(batch) @ w + 0.05 * np.sin(batch.sites.clip(0).sum(axis=1))  # a small non-additive part


def test_rule_counts():
    cfgs = random_configurations(HOST, 20, 6, np.random.default_rng(0))
    counts = rule_counts(ConfigBatch.from_configs(cfgs))
    names = [r.name for r in HOST.rules]
    for c, row in zip(cfgs, counts, strict=True):
        assert dict(zip(names, row, strict=True)) == {n: float(c.rule_counts().get(n, 0)) for n in names}


@pytest.mark.parametrize("per", [None, "atom", "defect"])
def test_baseline_recovers_per_type_values(per):
    batch = _batch(1, 8, 200, 1)
    counts = rule_counts(batch)
    total = counts @ np.array([PER_TYPE[r.name] for r in HOST.rules]) + 1.5
    n_vac = counts[:, [i for i, r in enumerate(HOST.rules) if r.kind == "vacancy"]].sum(axis=1)
    divisor = {None: 1.0, "atom": HOST.n_sites - n_vac, "defect": np.maximum(1, counts.sum(axis=1))}[per]
    base = LinearBaseline.fit(batch, total / divisor, per)
    np.testing.assert_allclose(base.predict(batch), total / divisor, atol=2e-3)
    assert LinearBaseline.from_json(base.to_json()) == base


def test_model_with_baseline_extrapolates_in_defect_count(tmp_path):
    """Trained on 1-4 defects, tested on 10-12: the baseline carries the additive trend, trees cannot."""
    train, test = _batch(1, 4, 300, 2), _batch(10, 12, 100, 3)
    labels = pd.DataFrame({"formation_energy": _additive(train)})
    params = {"iterations": 150, "depth": 4}
    fit: dict = {"params": params, "thread_count": 1, "calibrate": False}
    with_base = SurrogateModel.fit(SparseFeaturiser(), train, labels, ["formation_energy"], **fit)
    without = SurrogateModel.fit(SparseFeaturiser(), train, labels, ["formation_energy"], linear_baseline={}, **fit)
    y = _additive(test)
    mae_with = np.abs(with_base.predict(test).mean[:, 0] - y).mean()
    mae_without = np.abs(without.predict(test).mean[:, 0] - y).mean()
    assert mae_with < 0.2 < mae_without / 5, (mae_with, mae_without)
    loaded = SurrogateModel.load(with_base.save(tmp_path / "m"))
    np.testing.assert_allclose(loaded.predict(test).mean, with_base.predict(test).mean)
    with pytest.raises(ModelError, match="linear baseline"):
        loaded.predict_features(loaded.featuriser.transform(test))
