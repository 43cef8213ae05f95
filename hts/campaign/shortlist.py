"""The shortlist a DFT group receives: hits grouped by motif, one representative (or a few) per motif.

A motif's members are the surrogate's hits with that motif and the near misses that the oracle
confirmed and whose motif it is (:func:`hts.campaign.motifs.verified_motif`). A motif's **verdict**
comes from the physics oracle: ``confirmed`` when the oracle puts at least one of its verified members
inside every target window, ``rejected`` when it verified some and put none inside, ``unverified``
otherwise. The shortlist lists confirmed motifs first, then unverified ones
(best predicted distance first); rejected motifs are left out, and so are verified misses as
representatives.

A motif's **representative** is the hit with the fewest defects (the least decorated placement), then
the lowest predicted formation energy per defect, then the smallest predictive uncertainty, with
confirmed hits before unverified ones.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from hts.campaign.motifs import describe_core
from hts.campaign.store import parse_defects
from hts.hosts import Host

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

VERDICTS = ("confirmed", "unverified", "rejected")
FORMATION = "pred_formation_energy_per_site"


def _oracle_state(ranked: pd.DataFrame) -> np.ndarray:
    """Per row: 1 a verified hit, 0 not verified, -1 a verified miss (or a failed verification)."""
    if "oracle_status" not in ranked:
        return np.zeros(len(ranked), dtype=int)
    verified = ranked["oracle_status"].notna().to_numpy()
    hit = ranked["oracle_hit"].eq(True).to_numpy() if "oracle_hit" in ranked else np.zeros(len(ranked), bool)
    return np.where(hit, 1, np.where(verified, -1, 0))


def members(ranked: pd.DataFrame) -> pd.Series:
    """The rows that belong to a motif: the surrogate's hits, and the near misses the oracle confirmed
    (they carry the motif stored with their result)."""
    confirmed = ranked["oracle_hit"].eq(True) if "oracle_hit" in ranked else False
    return (ranked["hit"].astype(bool) | confirmed) & ranked["motif"].notna()


def representative_order(hits: pd.DataFrame) -> pd.DataFrame:
    """``hits`` sorted so that each motif's preferred representative comes first (module docstring)."""
    out = hits.assign(_state=-_oracle_state(hits))  # confirmed (-1) before unverified (0) before misses (1)
    formation = out.get(FORMATION, np.nan)
    out = out.assign(_formation=formation).fillna({"_formation": np.inf})
    keys = ["_state", "n_defects", "_formation", "uncertainty", "rank"]
    return out.sort_values(keys, kind="stable").drop(columns=["_state", "_formation"])


def motif_table(ranked: pd.DataFrame, host: Host) -> pd.DataFrame:
    """One row per motif among the hits of ``ranked`` (:meth:`CampaignResults.ranked`): ``motif``,
    ``core`` (in words), ``core_defects``, ``hits``, ``best_distance``, ``verified``, ``confirmed``,
    ``verdict`` and ``representative`` (its hash); shortlist order (module docstring)."""
    import pandas as pd

    cols = ["motif", "core", "core_defects", "hits", "best_distance", "verified", "confirmed", "verdict"]
    if ranked.empty or "motif" not in ranked:
        return pd.DataFrame(columns=[*cols, "representative"])
    hits = ranked[members(ranked)]
    if hits.empty:
        return pd.DataFrame(columns=[*cols, "representative"])
    state = pd.Series(_oracle_state(hits), index=hits.index)
    grouped = hits.assign(_verified=state != 0, _confirmed=state == 1).groupby("motif", sort=False)
    table = pd.DataFrame(
        {
            "core_defects": grouped["core"].first(),
            "hits": grouped.size(),
            "best_distance": grouped["distance"].min(),
            "verified": grouped["_verified"].sum().astype(int),
            "confirmed": grouped["_confirmed"].sum().astype(int),
        }
    ).reset_index()
    table.insert(1, "core", [describe_core(host, parse_defects(c)) for c in table["core_defects"]])
    table["verdict"] = np.where(
        table["confirmed"] > 0, "confirmed", np.where(table["verified"] > 0, "rejected", "unverified")
    )
    reps = representative_order(hits).groupby("motif", sort=False)["hash"].first()
    table["representative"] = table["motif"].map(reps)
    order = table["verdict"].map({v: i for i, v in enumerate(VERDICTS)})
    table = table.assign(_order=order).sort_values(["_order", "best_distance", "hits"], ascending=[True, True, False])
    return table.drop(columns="_order").reset_index(drop=True)


def shortlist(ranked: pd.DataFrame, host: Host, per_motif: int = 1, verified_only: bool = False) -> pd.DataFrame:
    """The shortlist: up to ``per_motif`` hits of every motif that is not rejected, representatives
    first, in the motif table's order, with columns ``motif``, ``motif_hits``, ``core``,
    ``spectators`` (in words) and ``verdict`` added; verified misses are never listed.
    ``verified_only``: only hits the oracle confirmed."""
    import pandas as pd

    table = motif_table(ranked, host)
    table = table[table["verdict"] != "rejected"]
    if table.empty:
        return ranked.iloc[0:0]
    hits = ranked[members(ranked) & ranked["motif"].isin(table["motif"])]
    state = _oracle_state(hits)
    hits = hits[state >= (1 if verified_only else 0)]
    ordered = representative_order(hits)
    chosen = ordered.groupby("motif", sort=False).head(per_motif)
    position = {m: i for i, m in enumerate(table["motif"])}
    chosen = chosen.assign(_pos=chosen["motif"].map(position)).sort_values(["_pos"], kind="stable")
    info = table.set_index("motif")
    out = chosen.drop(columns="_pos").copy()
    out["motif_hits"] = out["motif"].map(info["hits"]).astype(int)
    out["core_words"] = out["motif"].map(info["core"])
    out["verdict"] = out["motif"].map(info["verdict"])
    out["spectators_words"] = [
        describe_core(host, parse_defects(s)) if isinstance(s, str) and s else "" for s in out["spectators"]
    ]
    return pd.DataFrame(out).reset_index(drop=True)
