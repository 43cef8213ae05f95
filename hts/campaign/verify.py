"""Oracle verification of a campaign's best candidates (GFN1-xTB on Dask), stored with them.

Which ``top_k`` unverified candidates are labelled by the physics oracle is chosen by pool
acquisition over the whole archive (:mod:`hts.campaign.acquisition`: the BoTorch Monte Carlo
probability that at least one of them is a true hit, under the surrogate's predictive uncertainty,
with errors shared within a composition). The results (same 2DMD columns as the labelled
datasets, formation energies against the same elemental references, HOMO/LUMO normalised to the
pristine host computed once per campaign) go to the store's ``oracle`` table, where ``hts status``,
``export`` and ``report`` show them next to the predictions.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hts.campaign.config import Campaign
from hts.campaign.results import CampaignResults, composition_key
from hts.campaign.store import CampaignStore, parse_defects, sqlite_url
from hts.defects import DefectConfiguration
from hts.hosts import Host

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)


def choose_for_oracle(pool: pd.DataFrame, campaign: Campaign, host: Host, k: int) -> pd.DataFrame:
    """The ``k`` rows of ``pool`` (ranked candidates, with ``pred_``/``std_`` columns) to verify, in
    the order chosen by :func:`hts.campaign.acquisition.select_for_oracle`."""
    from hts.campaign.acquisition import select_for_oracle

    if pool.empty:
        return pool
    names = list(campaign.targets)
    mean = pool[[f"pred_{n}" for n in names]].to_numpy(dtype=float)
    std = pool[[f"std_{n}" for n in names]].to_numpy(dtype=float)
    groups = [composition_key(host, d) for d in pool["defects"]]
    rows = select_for_oracle(mean, std, groups, campaign.targets, k, seed=campaign.seed)
    return pool.iloc[rows]


def log_progress(done: int, total: int, hash_: str, status: str) -> None:
    """The default progress of :func:`verify_top`: one log line per candidate the oracle finishes."""
    log.info("oracle: %d/%d verified (%s: %s)", done, total, hash_, status)


def verify_top(
    campaign: Campaign,
    host: Host,
    out_dir: Path,
    top_k: int | None = None,
    progress: Callable[[int, int, str, str], None] | None = log_progress,
) -> int:
    """Label ``top_k`` unverified candidates chosen by pool acquisition; returns how many were done.

    ``progress(done, total, hash, status)`` is called as each candidate's result is stored (``None``:
    silent); the default logs a line each."""
    from distributed import as_completed

    from hts.cluster import dask_client
    from hts.labelling import OracleSettings, chemical_potentials, compute_one, derived_properties

    results = CampaignResults(
        out_dir, campaign, host, CampaignStore(campaign.store_url or sqlite_url(out_dir / "campaign.sqlite"))
    )
    store = results.store
    try:
        k = top_k or campaign.oracle.top_k
        ranked = results.ranked()  # the same order as status/export/report
        if ranked.empty:
            return 0
        done = set(store.oracle_frame()["hash"]) if store.oracle_frame().shape[0] else set()
        todo = choose_for_oracle(ranked[~ranked["hash"].isin(done)].reset_index(drop=True), campaign, host, k)
        if todo.empty:
            return 0
        settings = OracleSettings(method=campaign.oracle.method)
        try:
            from hts.oracle.blas import fast_blas_env

            env = fast_blas_env()
        except ImportError:  # pragma: no cover
            env = {}
        d = campaign.dask
        with dask_client(d.scheduler, d.workers, 1, env, security=d.security()) as client:
            ref_text = store.get_meta("oracle_reference")
            if ref_text is None:
                pristine = client.submit(compute_one, host.name, host.supercell, (), settings, pure=False).result()
                store.set_meta("oracle_reference", pristine)
            else:
                pristine = json.loads(ref_text)
            try:
                mu = chemical_potentials(settings)
            except Exception as exc:  # missing references: energies stay, formation energies are skipped
                log.warning("no chemical potentials (%s); formation energies not computed", exc)
                mu = {}
            futures = {}
            log.info("oracle: verifying %d candidates with %s on %d workers", len(todo), settings.method, d.workers)
            for rec in todo.to_dict("records"):
                defects = tuple(parse_defects(rec["defects"]))
                fut = client.submit(compute_one, host.name, host.supercell, defects, settings, pure=False)
                futures[fut] = (rec["hash"], defects)
            n = 0
            for fut in as_completed(futures):
                h, defects = futures[fut]
                try:
                    res: dict[str, Any] = fut.result()
                    config = DefectConfiguration.from_mapping(host, defects)
                    props = derived_properties(config, res, pristine, mu) if res.get("scf_status") != "failed" else {}
                    status = str(res.get("scf_status", "ok"))
                    store.record_oracle(h, status, {**res, **props})
                except Exception as exc:  # one failure does not stop the others
                    status = "error"
                    store.record_oracle(h, status, {"error": f"{type(exc).__name__}: {exc}"})
                n += 1
                if progress is not None:
                    progress(n, len(futures), h, status)
            return n
    finally:
        store.close()
