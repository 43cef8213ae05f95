"""``oracle.refit_surrogate``: refit the campaign's surrogate with the labels its oracle produced.

The refit uses what the surrogate was trained on (its ``meta.dataset``, the same training rows: the
rows it held out for its test figures stay out) plus every candidate the oracle verified with a
converged SCF, with the same featuriser, CatBoost settings and calibration. The new model goes to
``<campaign>/surrogate-refit-<n>/`` (``n`` = verified labels it includes), the store remembers it
(meta ``surrogate_model``), and the loop scores with it from the next trial on, also after
``--resume``. Predictions already stored are not rewritten: they are what the loop saw.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from hts.campaign.store import CampaignStore, parse_defects
from hts.defects import ConfigBatch, DefectConfiguration
from hts.errors import ModelError
from hts.hosts import Host
from hts.settings import checkout_root

log = logging.getLogger(__name__)

REFIT_META = "surrogate_model"
GOOD_STATUS = ("converged", "converged_after_retry")


def dataset_path(recorded: str | None, model_dir: Path) -> Path:
    """Where the surrogate's training data is: as recorded, else relative to the checkout or the model."""
    if not recorded or recorded == "None":
        raise ModelError(f"{model_dir} does not record the dataset it was trained on; cannot refit it")
    root = checkout_root()
    candidates = [Path(recorded), *([root / recorded] if root is not None else []), model_dir / recorded]
    for p in candidates:
        if p.exists():
            return p
    raise ModelError(f"the training data of {model_dir} ({recorded}) is not here; cannot refit it")


def oracle_labels(
    store: CampaignStore, host: Host, targets: list[str]
) -> tuple[list[DefectConfiguration], pd.DataFrame]:
    """The converged oracle results of the store as configurations and a label table (``targets``)."""
    oracle = store.oracle_frame()
    if oracle.empty:
        return [], pd.DataFrame(columns=targets)
    cands = store.candidates_frame().set_index("hash")
    configs, rows = [], []
    for h, status, result in zip(oracle["hash"], oracle["status"], oracle["result"], strict=True):
        if status not in GOOD_STATUS or h not in cands.index:
            continue
        configs.append(DefectConfiguration.from_mapping(host, parse_defects(cands.loc[h, "defects"])))
        rows.append({t: result.get(t, np.nan) for t in targets})
    return configs, pd.DataFrame(rows, columns=targets, dtype=float)


def refit_surrogate(
    model_dir: Path, store: CampaignStore, host: Host, out_dir: Path, thread_count: int = 2
) -> Path | None:
    """Refit (see the module docstring); returns the new model directory, or ``None`` when the oracle
    has added nothing since the last refit."""
    from surrogate.model import SurrogateModel
    from surrogate.training import load_dataset

    model = SurrogateModel.load(model_dir)
    configs, labels = oracle_labels(store, host, model.targets)
    if not configs:
        return None
    dest = out_dir / f"surrogate-refit-{len(configs)}"
    if dest.exists():  # this set of labels is already in a refit model
        return None
    ds = load_dataset(dataset_path(model.meta.get("dataset"), Path(model_dir)), host=host.name)
    held_out = set((model.meta.get("split") or {}).get("test_ids") or [])
    train = [i for i, sid in enumerate(ds.ids) if sid not in held_out]
    base_configs = [ds.configs[i] for i in train]
    base_labels = ds.table[model.targets].iloc[train].reset_index(drop=True)
    table = pd.concat([base_labels, labels], ignore_index=True)
    batch = ConfigBatch.from_configs(base_configs + configs)
    new = SurrogateModel.fit(
        model.featuriser,
        batch,
        table,
        model.targets,
        params=model.params,
        thread_count=thread_count,
        calibrate=bool(model.calibration),
        meta={
            "dataset": model.meta.get("dataset"),
            "split": model.meta.get("split"),
            "refit": {"from": str(model_dir), "oracle_labels": len(configs), "dataset_rows": len(train)},
        },
    )
    new.save(dest)  # atomic: a partly written model never appears under this name
    store.set_meta(REFIT_META, str(dest))
    log.info("surrogate refitted with %d oracle labels: %s", len(configs), dest)
    return dest
