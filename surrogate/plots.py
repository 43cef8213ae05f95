"""Parity and calibration plots of an evaluation (PNG, matplotlib's Agg backend)."""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from surrogate.training import Evaluation

log = logging.getLogger(__name__)


def _pyplot():  # type: ignore[no-untyped-def]
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(plt: Any, fig: Any, path: str | os.PathLike[str]) -> Path:
    """Lay ``fig`` out, write it to ``path`` (PNG at 120 dpi, its folder made) and close it."""
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    log.info("wrote %s", out)
    return out


def parity_plots(ev: Evaluation, path: str | os.PathLike[str], title: str = "") -> Path:
    """One panel per target: predicted vs true with 90 % error bars, MAE/R2/R2_25th in the corner."""
    plt = _pyplot()
    targets = list(ev.metrics)
    ncol = min(4, max(1, len(targets)))
    nrow = max(1, math.ceil(len(targets) / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.6 * ncol, 3.4 * nrow), squeeze=False)
    for ax in axes.ravel()[len(targets) :]:
        ax.axis("off")
    for ax, t in zip(axes.ravel(), targets, strict=False):
        j = ev.prediction.column(t)
        y = ev.y_true[:, j]
        ok = np.isfinite(y)
        p = ev.prediction.mean[ok, j]
        s = ev.prediction.std[ok, j]
        ax.errorbar(y[ok], p, yerr=1.645 * s, fmt="o", ms=2.5, alpha=0.5, elinewidth=0.5, lw=0)
        lo = float(min(y[ok].min(), p.min()))
        hi = float(max(y[ok].max(), p.max()))
        ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
        m = ev.metrics[t]
        ax.set_title(t, fontsize=9)
        ax.set_xlabel("true", fontsize=8)
        ax.set_ylabel("predicted", fontsize=8)
        ax.text(
            0.03,
            0.97,
            f"MAE {m['mae']:.3g}\nR2 {m['r2']:.3f}\nR2_25th {m['r2_25th']:.3f}\n"
            f"90% cov {m.get('coverage_90', float('nan')):.2f}",
            transform=ax.transAxes,
            va="top",
            fontsize=7,
        )
    if title:
        fig.suptitle(title, fontsize=10)
    return _save(plt, fig, path)


def calibration_plot(ev: Evaluation, path: str | os.PathLike[str]) -> Path:
    """Observed coverage of the central predictive intervals vs their nominal level, per target."""
    from statistics import NormalDist

    plt = _pyplot()
    levels = np.linspace(0.05, 0.95, 19)
    fig, ax = plt.subplots(figsize=(4.2, 4.0))
    for t in ev.metrics:
        j = ev.prediction.column(t)
        y = ev.y_true[:, j]
        ok = np.isfinite(y)
        err = np.abs(y[ok] - ev.prediction.mean[ok, j])
        s = ev.prediction.std[ok, j]
        cover = [float((err <= NormalDist().inv_cdf(0.5 + lv / 2) * s).mean()) for lv in levels]
        ax.plot(levels, cover, marker=".", label=t)
    ax.plot([0, 1], [0, 1], "k--", lw=0.8)
    ax.set_xlabel("nominal interval level")
    ax.set_ylabel("observed coverage")
    ax.legend(fontsize=7)
    return _save(plt, fig, path)
