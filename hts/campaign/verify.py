"""Verification outside the loop: ``top_k`` more candidates of a campaign directory, on Dask.

The same :class:`hts.campaign.verifier.Verifier` that runs beside generation, on a cluster of its
own (the campaign's scheduler, or a LocalCluster of ``dask.workers`` processes with the fast BLAS):
candidates chosen for the expected number of new verified motifs (:mod:`hts.campaign.acquisition`),
results committed one by one to the store's ``oracle`` table, where ``hts status``, ``export`` and
``report`` show them next to the predictions.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from hts.campaign.config import Campaign, oracle_method
from hts.campaign.store import CampaignStore, sqlite_url
from hts.campaign.verifier import MotifOf, Progress, Verifier, dask_submit, log_progress, motif_groups
from hts.hosts import Host

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

log = logging.getLogger(__name__)


def choose_for_oracle(pool: pd.DataFrame, campaign: Campaign, host: Host, k: int) -> pd.DataFrame:
    """The ``k`` rows of ``pool`` (ranked candidates, with ``pred_``/``std_`` columns) the acquisition
    picks first when nothing is verified yet (:func:`hts.campaign.acquisition.select_for_oracle`)."""
    from hts.campaign.acquisition import select_for_oracle

    if pool.empty:
        return pool
    names = list(campaign.targets)
    mean = pool[[f"pred_{n}" for n in names]].to_numpy(dtype=float)
    std = pool[[f"std_{n}" for n in names]].to_numpy(dtype=float)
    rows = select_for_oracle(mean, std, list(motif_groups(pool, host)), campaign.targets, k, seed=campaign.seed)
    return pool.iloc[rows]


def verify_top(
    campaign: Campaign,
    host: Host,
    out_dir: Path,
    top_k: int | None = None,
    progress: Progress | None = log_progress,
    motif_of: MotifOf | None = None,
) -> int:
    """Verify ``top_k`` (default ``oracle.top_k``) more candidates; returns how many results were stored.

    ``progress(verified, in flight, hash, status)`` is called as each result is stored (``None``: silent);
    ``motif_of`` gives a near miss the oracle confirms its motif (:class:`hts.campaign.verifier.Verifier`)."""
    from hts.cluster import dask_client
    from hts.oracle.blas import fast_blas_env

    # checked as run --resume does: results are never written into a damaged store, nor a new one made
    store = CampaignStore(campaign.store_url or sqlite_url(out_dir / "campaign.sqlite"), check=True, create=False)
    try:
        wanted = len(store.oracle_frame()) + (top_k or campaign.oracle.top_k)
        d = campaign.dask
        with dask_client(d.scheduler, d.workers, 1, fast_blas_env(), security=d.security()) as client:
            log.info("oracle: verifying up to %d candidates with %s", wanted, oracle_method(campaign))
            verifier = Verifier(
                campaign, host, out_dir, store, dask_submit(client), d.workers, progress=progress, motif_of=motif_of
            )
            try:
                verifier.finish(deadline=None, top_k=wanted)
            finally:
                verifier.cancel()
            return verifier.stored
    finally:
        store.close()
