"""Featurisers: ``sparse`` (defect-only numeric features) and ``slices`` (SLICES text feature)."""

from __future__ import annotations

from typing import Any

from hts.errors import ConfigError
from surrogate.features.base import Featuriser, rule_types
from surrogate.features.slices import SlicesFeaturiser
from surrogate.features.sparse import SparseFeaturiser

FEATURISERS: dict[str, type] = {"sparse": SparseFeaturiser, "slices": SlicesFeaturiser}


def make_featuriser(name: str, settings: dict[str, Any] | None = None) -> Featuriser:
    """The featuriser ``name`` (``sparse`` or ``slices``) with ``settings`` (keyword arguments)."""
    cls = FEATURISERS.get(name)
    if cls is None:
        raise ConfigError(f"unknown featuriser {name!r}; choose one of: {', '.join(FEATURISERS)}")
    try:
        return cls(**(settings or {}))  # type: ignore[no-any-return]
    except TypeError as exc:
        raise ConfigError(f"bad settings for the {name} featuriser {settings!r}: {exc}") from None


__all__ = ["FEATURISERS", "Featuriser", "SlicesFeaturiser", "SparseFeaturiser", "make_featuriser", "rule_types"]
