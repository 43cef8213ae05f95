"""Reading a campaign directory back: ranking, status summary and export of candidate CIFs."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hts.campaign.config import Campaign, load_campaign
from hts.campaign.plan import TrialKind
from hts.campaign.store import CampaignStore, parse_defects, sqlite_url
from hts.defects import DefectConfiguration
from hts.errors import ConfigError
from hts.hosts import Host, get_host

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

ORACLE_COLUMNS = (
    "homo_lumo_gap",
    "homo",
    "lumo",
    "normalized_homo",
    "normalized_lumo",
    "formation_energy",
    "formation_energy_per_site",
    "fermi_level",
    "energy_per_atom",
)


@dataclass
class CampaignResults:
    """A campaign directory opened for reading."""

    out_dir: Path
    campaign: Campaign
    host: Host
    store: CampaignStore

    @classmethod
    def open(cls, out_dir: str | Path, salvage: bool = False) -> CampaignResults:
        """A campaign directory for reading: its store checked (integrity_check, row digests) and opened
        read-only; ``salvage`` skips the check to read what a damaged store still holds."""
        root = Path(out_dir)
        yaml_copy = root / "campaign.yaml"
        if not yaml_copy.is_file():
            raise ConfigError(f"{root} is not a campaign directory (campaign.yaml missing); run `hts run` first")
        campaign = load_campaign(yaml_copy)
        url = campaign.store_url or sqlite_url(root / "campaign.sqlite")
        if campaign.store_url is None and not (root / "campaign.sqlite").is_file():
            raise ConfigError(f"{root} holds no campaign store (campaign.sqlite missing); run `hts run` first")
        store = CampaignStore.open(url, check=not salvage)
        return cls(root, campaign, get_host(campaign.host.material, campaign.host.supercell), store)

    def close(self) -> None:
        self.store.close()

    def ranked(self) -> pd.DataFrame:
        """All candidates, best first: by distance to the targets, then by predictive uncertainty."""
        import pandas as pd

        df = self.store.candidates_frame()
        if df.empty:
            return df
        names = list(self.campaign.targets)
        preds = df.pop("predictions").tolist()
        columns: dict[str, Any] = {}
        for p in dict.fromkeys(k for d in preds[:1] for k in d):  # every row has the model's properties
            columns[f"pred_{p}"] = np.array([d[p][0] for d in preds], dtype=float)
            columns[f"std_{p}"] = np.array([d[p][1] for d in preds], dtype=float)
        out = pd.concat([df, pd.DataFrame(columns, index=df.index)], axis=1)
        known = [n for n in names if f"std_{n}" in columns]
        if known:  # RMS of the targets' standard deviations in window half-widths
            half = np.array([self.campaign.targets[n].half_width for n in known])
            stds = np.column_stack([columns[f"std_{n}"] for n in known])
            out["uncertainty"] = np.sqrt(np.mean((stds / half) ** 2, axis=1))
        else:
            out["uncertainty"] = np.nan
        motifs = self.store.motifs_frame(oracle=True)
        out = out.merge(motifs, on="hash", how="left") if not motifs.empty else out.assign(motif=None)
        orc = self.oracle_results()
        if not orc.empty:
            out = out.merge(orc, on="hash", how="left")
        out = out.sort_values(["distance", "uncertainty", "eval_index"], kind="stable").reset_index(drop=True)
        out.insert(0, "rank", np.arange(1, len(out) + 1))
        return out

    def config_of(self, defects_text: str) -> DefectConfiguration:
        return DefectConfiguration.from_mapping(self.host, parse_defects(defects_text))

    def summary(self) -> dict[str, Any]:
        trials = self.store.trials_frame()
        b = self.campaign.budget
        cands = self.store.candidates_frame(predictions=False)
        orc = self.oracle_results()
        return {
            "name": self.campaign.name,
            "strategy": self.campaign.strategy,
            "host": self.host.key,
            "trials": len(trials),
            "max_trials": b.iterations * b.trials_per_iteration,
            "evaluations": int(trials["n_valid"].sum()) if len(trials) else 0,
            "generated": int(trials["n_generated"].sum()) if len(trials) else 0,
            "candidates": len(cands),
            "hits": int(cands["hit"].sum()) if len(cands) else 0,
            # screen: placements of motifs that already had their share of stored hits (counted only)
            "hits_not_stored": int(sum(e.get("new_hits_not_stored", 0) for e in trials["extra"])) if len(trials) else 0,
            # distinct defect make-ups among the hits: many hits of one make-up are placements of the same defects
            "hit_compositions": (
                len({composition_key(self.host, d) for d in cands.loc[cands["hit"].astype(bool), "defects"]})
                if len(cands)
                else 0
            ),
            # distinct motifs among the hits: a hit stripped of its spectators (hts.campaign.motifs)
            "hit_motifs": int(self.store.motifs_frame()["motif"].nunique()),
            "best_distance": float(cands["distance"].min()) if len(cands) else float("nan"),
            "verified": len(orc),
            # verified candidates the oracle also puts inside every target window
            "confirmed": int(orc["oracle_hit"].eq(True).sum()) if not orc.empty else 0,
            # oracle failures (SCF not converged, errors): recorded with their status, never fatal
            "oracle_failed": int((~orc["oracle_status"].isin(GOOD_ORACLE_STATUS)).sum()) if not orc.empty else 0,
            **verified_motifs(self.store.motifs_frame(oracle=True), orc),
            **{f"{kind} trials": n for kind, n in trial_kind_counts(trials).items()},
        }

    def oracle_results(self) -> pd.DataFrame:
        """One row per verified candidate: ``hash``, ``oracle_created`` (ISO time), ``oracle_status``,
        ``oracle_<property>`` and the oracle's verdict on the targets (:func:`oracle_agreement`); empty if nothing
        was verified."""
        import pandas as pd

        oracle = self.store.oracle_frame()
        if oracle.empty:
            return pd.DataFrame()
        orc = pd.DataFrame(
            [
                {
                    "hash": h,
                    "oracle_created": c,
                    "oracle_status": st,
                    **{f"oracle_{k}": r.get(k) for k in ORACLE_COLUMNS},
                }
                for h, c, st, r in zip(
                    oracle["hash"], oracle["created"], oracle["status"], oracle["result"], strict=True
                )
            ]
        )
        return orc.join(oracle_agreement(orc, self.campaign))


GOOD_ORACLE_STATUS = ("converged", "converged_after_retry")


def verified_motifs(motifs: pd.DataFrame, orc: pd.DataFrame) -> dict[str, Any]:
    """``verified_motifs`` (motifs with a verified hit), ``confirmed_motifs`` (with a hit the oracle
    confirms) and ``shortlist_precision``: the fraction of verified hits the oracle puts inside every
    window (NaN before any verification of a hit)."""
    if orc.empty or motifs.empty:
        return {"verified_motifs": 0, "confirmed_motifs": 0, "shortlist_precision": float("nan")}
    joined = motifs.merge(orc[["hash", "oracle_hit"]], on="hash")
    confirmed = joined["oracle_hit"].eq(True)
    return {
        "verified_motifs": int(joined["motif"].nunique()),
        "confirmed_motifs": int(joined.loc[confirmed, "motif"].nunique()),
        "shortlist_precision": float(confirmed.mean()) if len(joined) else float("nan"),
    }


def oracle_agreement(ranked: pd.DataFrame, campaign: Campaign) -> pd.DataFrame:
    """``oracle_distance`` and ``oracle_hit`` for ``ranked`` rows (with ``oracle_<target>`` columns):
    the distance to the targets of the oracle's values (the same measure as the predictions'
    ``distance``), and whether it is 0, i.e. the physics code confirms the hit. Missing (NaN) where
    the candidate was not verified or the oracle gave no value for some target (a failed SCF)."""
    import pandas as pd

    from hts.campaign.objective import distances

    names = list(campaign.targets)
    cols = [f"oracle_{n}" for n in names]
    out = pd.DataFrame(index=ranked.index, columns=["oracle_distance", "oracle_hit"], dtype=object)
    if not set(cols) <= set(ranked.columns):
        return out
    values = ranked[cols].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
    known = np.isfinite(values).all(axis=1)
    if known.any():
        d, _ = distances(values[known], names, campaign.targets)
        out.loc[known, "oracle_distance"] = d
        out.loc[known, "oracle_hit"] = d == 0
    return out


TRIAL_KINDS = tuple(k.value for k in TrialKind)
"""What a stored trial ran (:class:`hts.campaign.plan.TrialKind`), in the order reports list them."""


def trial_kind_counts(trials: pd.DataFrame) -> dict[str, int]:
    """How many stored trials of each kind (kinds with none left out), in :data:`TRIAL_KINDS` order."""
    if trials.empty:
        return {}
    counts = trials["kind"].value_counts()
    return {k: int(counts[k]) for k in TRIAL_KINDS if k in counts}


def composition_key(host: Host, defects: str) -> tuple[tuple[str, int], ...]:
    """A candidate's composition (defects per type, e.g. ``(("Mo->W", 1), ("vac_S", 2))``) as a
    hashable key, from the stored defects text (the stored configurations were validated when stored)."""
    names = {(r.element, r.new_species): r.name for r in host.rules}
    counts: dict[str, int] = {}
    for site, species in parse_defects(defects):
        name = names[(host.site_species[site], species)]
        counts[name] = counts.get(name, 0) + 1
    return tuple(sorted(counts.items()))


def rule_makeup(config: DefectConfiguration) -> str:
    """``vac_S x2 + Mo->W`` style text of a configuration's defect types."""
    return " + ".join(f"{k} x{v}" if v > 1 else k for k, v in sorted(config.rule_counts().items())) or "pristine"


def export_shortlist(
    out_dir: str | Path,
    dest: str | Path,
    top: int = 20,
    per_motif: int = 1,
    all_placements: bool = False,
    verified_only: bool = False,
    force: bool = False,
    salvage: bool = False,
) -> Path:
    """Write the shortlist as CIFs (``<rank>_<hash>.cif``), ``candidates.csv``, ``motifs.csv`` and the
    campaign file.

    By default one representative per motif (:mod:`hts.campaign.shortlist`: confirmed motifs first,
    rejected ones left out), at most ``top`` motifs, ``per_motif`` hits of each. ``all_placements``:
    the ``top`` ranked candidates one by one, hits or not (every placement, the archive's order).
    ``verified_only``: only hits the oracle confirmed. Ranks are those of the whole archive. ``dest`` is
    new or empty, or with ``force`` holds an earlier export of hts, whose files are replaced
    (:func:`hts.campaign.safety.prepare_export_dir`); ``salvage`` reads a damaged store unchecked."""
    from hts.campaign.safety import prepare_export_dir
    from hts.campaign.shortlist import motif_table

    if top < 1:
        raise ConfigError(f"--top must be at least 1, got {top}")
    if per_motif < 1:
        raise ConfigError(f"--per-motif must be at least 1, got {per_motif}")
    res = CampaignResults.open(out_dir, salvage=salvage)
    try:
        ranked = res.ranked()
        if ranked.empty:
            raise ConfigError(f"{out_dir} has no candidates yet; nothing to export")
        motifs = motif_table(ranked, res.host)
        dest = Path(dest)
        prepare_export_dir(dest, force)
        if all_placements:
            chosen = top_placements(ranked, top, verified_only)
        else:
            chosen = top_motifs(ranked, res.host, top, per_motif, verified_only)
        write_candidate_files(res, chosen, dest)
        motifs.to_csv(dest / "motifs.csv", index=False)
        shutil.copyfile(res.out_dir / "campaign.yaml", dest / "campaign.yaml")
        options = {"top": top, "per_motif": per_motif, "all_placements": all_placements, "verified_only": verified_only}
        write_export_provenance(res, dest, options)
        return dest
    finally:
        res.close()


def top_placements(ranked: pd.DataFrame, top: int, verified_only: bool) -> pd.DataFrame:
    """The ``top`` first rows of the archive's ranking, hits or not (``verified_only``: only those the
    oracle confirmed): every placement on its own, for an export that is not one per motif."""
    if verified_only:
        ranked = ranked[ranked.get("oracle_hit", pd_false(ranked)).eq(True)]
    return ranked.head(top)


def top_motifs(ranked: pd.DataFrame, host: Host, top: int, per_motif: int, verified_only: bool) -> pd.DataFrame:
    """The shortlist's rows of its first ``top`` motifs, ``per_motif`` hits of each
    (:func:`hts.campaign.shortlist.shortlist`: confirmed motifs first, rejected ones left out)."""
    from hts.campaign.shortlist import shortlist

    chosen = shortlist(ranked, host, per_motif, verified_only)
    keep = set(chosen["motif"].drop_duplicates().head(top))
    return chosen[chosen["motif"].isin(keep)]


def write_candidate_files(res: CampaignResults, chosen: pd.DataFrame, dest: Path) -> None:
    """One CIF per chosen candidate in ``dest``, ``<rank>_<hash>.cif``, and ``candidates.csv``: the
    chosen rows with the name of their CIF and their defect types added."""
    chosen = chosen.copy()
    files = []
    for rec in chosen.to_dict("records"):
        name = f"{int(rec['rank']):04d}_{rec['hash']}.cif"
        (dest / name).write_text(res.config_of(rec["defects"]).to_cif())
        files.append(name)
    chosen.insert(1, "cif", files)
    chosen.insert(4, "defect_types", [rule_makeup(res.config_of(d)) for d in chosen["defects"]])
    chosen.to_csv(dest / "candidates.csv", index=False)


def write_export_provenance(res: CampaignResults, dest: Path, options: dict[str, Any]) -> None:
    """``export.json`` in ``dest``: the campaign it came from, the export's ``options`` and the campaign's
    summary at the time, so that an export says what it is without its campaign."""
    from hts.provenance import write_provenance

    summary = json.loads(json.dumps(res.summary(), default=str))
    write_provenance(dest / "export.json", {"campaign_dir": str(res.out_dir), **options, "summary": summary})


def pd_false(frame: pd.DataFrame) -> pd.Series:
    """An all-False column for ``frame`` (no oracle results)."""
    import pandas as pd

    return pd.Series(False, index=frame.index)


def verification_course(motifs: pd.DataFrame, orc: pd.DataFrame) -> dict[str, Any]:
    """How verification went, in the order the oracle's results were stored: ``new_motif_calls``, the
    fraction of all oracle calls that verified a hit of a motif with no verified hit before (a call on
    a near miss, which has no motif, or on a second hit of a motif, found none), and the shortlist
    precision over the first and the last quarter of the verified hits (``precision_first_quarter``,
    ``precision_last_quarter``): whether refits on the oracle's labels made the surrogate's hits better.
    ``orc`` needs ``hash``, ``oracle_created`` and ``oracle_hit`` columns; NaN where there is nothing to
    count."""
    nan = float("nan")
    if orc.empty:
        return {"new_motif_calls": nan, "precision_first_quarter": nan, "precision_last_quarter": nan}
    calls = len(orc)
    joined = orc.merge(motifs[["hash", "motif"]], on="hash") if not motifs.empty else orc.iloc[:0]
    joined = joined.sort_values("oracle_created", kind="stable")
    hits = joined["oracle_hit"].eq(True).to_numpy()
    new = ~joined["motif"].duplicated().to_numpy() if len(joined) else hits
    quarter = max(1, len(joined) // 4)
    return {
        "new_motif_calls": float(new.sum()) / calls,
        "precision_first_quarter": float(hits[:quarter].mean()) if len(joined) else nan,
        "precision_last_quarter": float(hits[-quarter:].mean()) if len(joined) else nan,
    }
