"""CatBoost surrogate models of defect properties: featurisers, models with uncertainty, metrics, scoring.

Importing this package is cheap: CatBoost, pymatgen, matplotlib and dask are imported inside the
functions that need them. The public entry points are

- :mod:`surrogate.features`: :func:`~surrogate.features.make_featuriser` (``sparse``, ``slices``);
- :class:`surrogate.model.SurrogateModel` (fit, predict with uncertainty, save/load);
- :mod:`surrogate.training`: splits, training and evaluation on a 2DMD-layout dataset;
- :mod:`surrogate.scoring`: :func:`~surrogate.scoring.score_batch` and
  :class:`~surrogate.scoring.DaskScorer`, used by the campaign loop.
"""

from __future__ import annotations

from hts.twodmd import TARGET_PROPERTIES

DEFAULT_TARGETS: tuple[str, ...] = TARGET_PROPERTIES
"""The properties a surrogate predicts unless told otherwise (2DMD ``targets.csv.gz`` column names)."""

__all__ = ["DEFAULT_TARGETS"]
