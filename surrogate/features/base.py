"""The featuriser protocol: a configuration batch in, a feature table CatBoost accepts out."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from hts.defects import PAD, ConfigBatch
from hts.errors import InputDataError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from hts.hosts import Host


@runtime_checkable
class Featuriser(Protocol):
    """Turns a :class:`~hts.defects.ConfigBatch` into a feature table for CatBoost.

    ``settings`` must hold everything that changes the features (it is stored with a model and
    compared on load); ``text_features`` names the columns CatBoost treats as text (empty for a
    purely numeric featuriser, whose :meth:`transform` then returns a float32 array).
    """

    name: str

    @property
    def settings(self) -> dict[str, Any]: ...

    @property
    def text_features(self) -> list[str]: ...

    def feature_names(self, host: Host) -> list[str]: ...

    def transform(self, batch: ConfigBatch) -> np.ndarray | pd.DataFrame: ...


def row_bincount(values: np.ndarray, n_bins: int) -> np.ndarray:
    """(n, n_bins) counts of each value in 0..n_bins-1 per row of an (n, m) int array."""
    n_rows = values.shape[0]
    offset = (np.arange(n_rows, dtype=np.int64) * n_bins)[:, None]
    flat = (values.astype(np.int64) + offset).ravel()
    return np.bincount(flat, minlength=n_rows * n_bins).reshape(n_rows, n_bins)


def rule_types(batch: ConfigBatch) -> np.ndarray:
    """(N, K) int: the defect-type (rule) index of every defect, ``len(host.rules)`` where padded.

    Raises :class:`InputDataError` when a defect's site or species code is out of range or no rule of
    the host allows it (for example a species the host does not know).
    """
    host = batch.host
    sites = np.asarray(batch.sites)
    codes = np.asarray(batch.codes)
    if sites.ndim != 2 or sites.shape != codes.shape:
        raise InputDataError(f"batch sites {sites.shape} and codes {codes.shape} must be (N, K) arrays of one shape")
    mask = sites != PAD
    bad_range = mask & ((sites < 0) | (sites >= host.n_sites) | (codes < 0) | (codes >= host.n_codes))
    if bad_range.any():
        row = int(np.flatnonzero(bad_range.any(axis=1))[0])
        raise InputDataError(
            f"configuration {row} has a site outside 0..{host.n_sites - 1} or a species code outside "
            f"0..{host.n_codes - 1} ({', '.join(host.species_codes)}) for {host.key}; check the batch's host"
        )
    s = np.where(mask, sites, 0)
    c = np.where(mask, codes, 0).astype(np.intp)
    t = host.rule_index[s, c].astype(np.int64)
    forbidden = mask & (t < 0)
    if forbidden.any():
        row, col = (int(x[0]) for x in np.nonzero(forbidden))
        site = int(sites[row, col])
        raise InputDataError(
            f"configuration {row}: site {site} ({host.site_species[site]}) cannot become "
            f"{host.species_codes[int(codes[row, col])]} under the rules of {host.key}; "
            "validate configurations with ConfigBatch.validate() before featurising"
        )
    return np.where(mask, t, len(host.rules))
