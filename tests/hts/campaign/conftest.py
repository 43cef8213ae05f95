"""A tiny surrogate (4x4 MoS2, synthetic labels) and campaign files for the loop tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.surrogate.synthetic import make_dataset


@pytest.fixture(scope="session")
def tiny_surrogate(tmp_path_factory) -> Path:
    from surrogate.features import make_featuriser
    from surrogate.model import SurrogateModel

    ds = make_dataset(per_concentration=30, seed=0)
    model = SurrogateModel.fit(
        make_featuriser("sparse"),
        ds.batch(),
        ds.table,
        ["homo_lumo_gap", "formation_energy"],
        params={"iterations": 150, "depth": 4},
        thread_count=1,
    )
    return model.save(tmp_path_factory.mktemp("models") / "surrogate")


def campaign_text(
    model: Path, strategy: str = "random", iterations: int = 3, samples: int = 32, extra: str = ""
) -> str:
    return f"""\
name: tiny
host: {{material: MoS2, supercell: [4, 4, 1]}}
defects: {{min_defects: 1, max_defects: 8}}
targets:
  homo_lumo_gap: {{value: 0.6, tolerance: 0.15}}
  formation_energy: {{range: [0.0, 30.0], weight: 0.5}}
strategy: {strategy}
budget: {{iterations: {iterations}, trials_per_iteration: 2, samples_per_trial: {samples}}}
surrogate: {{model: {model}}}
dask: {{enabled: false}}
seed: 3
{extra}"""


def fake_xtb_result(defects) -> dict:
    """What the oracle returns for a configuration, in place of xTB: converged, the gap falling 0.4 eV
    per vacancy from 1.8 eV (never below 0)."""
    n_vac = sum(sp == "VAC" for _, sp in defects)
    gap = max(0.0, 1.8 - 0.4 * n_vac)
    return {
        "energy": -100.0 + n_vac,
        "energy_per_atom": -2.0,
        "fermi_level": -5.0,
        "homo": -6.0,
        "lumo": -6.0 + gap,
        "homo_lumo_gap": gap,
        "e_1": -20.0,
        "n_fractional": 0,
        "scf_status": "converged",
    }
