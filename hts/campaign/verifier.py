"""The physics oracle beside generation: verification through the whole campaign, not only at its end.

A :class:`Verifier` keeps up to ``slots`` oracle jobs (GFN1-xTB single points, :mod:`hts.labelling`)
in flight on the campaign's Dask cluster while the loop generates and scores. The loop calls
:meth:`Verifier.pump` after every iteration (the ``screen`` strategy after every chunk): it stores
the results that have come in and fills the free slots with the candidates that maximise the expected
number of *new verified motifs* (:mod:`hts.campaign.acquisition`): motifs that no finished or running
verification covers, weighed by their probability of being inside every target window under the
surrogate's calibrated uncertainty. While the loop runs only candidates with at least
:data:`MIN_PROBABILITY` of being inside are sent, and only of motifs (groups) that no finished or running
verification covers: a second placement of a covered motif adds nothing the acquisition values, so the
slot stays free and its core goes to generation and scoring; at the end :meth:`Verifier.finish` verifies until
the campaign has ``oracle.top_k`` verified candidates and waits for the jobs in flight, both within
the campaign's wall-clock budget.

While the loop runs the candidates come from an :class:`hts.campaign.pool.OraclePool` held in
memory: each pump reads only the trials stored since the last one, and the pool keeps the candidates
with at least :data:`MIN_PROBABILITY`, at most :data:`hts.campaign.pool.PER_GROUP` of each motif and
:data:`hts.campaign.pool.TOTAL` in all (best probability first), so a choice reads only the new
candidates and weighs a bounded number of rows however large the store grows. The verified
candidates and their motifs are read from the store once, when the verifier starts, and kept up to
date as results are stored. The top-up at the end, which may send candidates of any probability and
runs only while fewer than ``oracle.top_k`` are verified, chooses from the whole store
(:meth:`hts.campaign.results.CampaignResults.ranked`). After a refit of the surrogate
(:meth:`Verifier.rescore`) both choose by what the refitted model predicts.

The acquisition's groups are motifs; a **near miss** (a candidate the surrogate puts just outside a
window, so it has no motif) is grouped with the near misses of its make-up and vacancy clustering
(:func:`hts.campaign.motifs.near_miss_groups`): placements of one make-up share the surrogate's error,
so one verification of the group is worth nearly as much as all. Every candidate the oracle puts
inside every window, hit or near miss, gets its motif from what the oracle measured
(:func:`hts.campaign.motifs.verified_motif`: spectators stripped with the predictions shifted by the
candidate's own residual; stored with its result), and the shortlist counts it under that motif: a
hit whose core the surrogate kept decorated because it misplaced the level is counted with the bare
motif that xTB's values say it is (BENCHMARKS.md, "Research explorations": one judge for motifs).

Every result is committed to the store's ``oracle`` table as it arrives, failed SCFs and oracle
errors included (named in their status, never fatal), so a campaign killed at any moment loses only
the jobs in flight, and ``--resume`` repeats no finished verification. A Dask worker lost mid-job has
its job redone on another worker by the scheduler.

HOMO/LUMO are normalised to the pristine host, computed once per campaign as the first job (stored in
the store's meta ``oracle_reference``); results that arrive before it wait for it.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hts.campaign.config import Campaign, oracle_method
from hts.campaign.pool import OraclePool, batch_of, near_miss_groups_of
from hts.campaign.results import CampaignResults
from hts.campaign.store import CampaignStore, parse_defects
from hts.defects import DefectConfiguration
from hts.hosts import Host

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

log = logging.getLogger(__name__)

MIN_PROBABILITY = 0.05
"""While the loop runs, a candidate is verified only if the surrogate gives it at least this
probability of being inside every window (the end of the run tops up to ``oracle.top_k`` regardless)."""
REFERENCE = "oracle_reference"
POLL_S = 0.5

Submit = Callable[..., Any]
"""``submit(fn, *args, key=...)`` -> a future with ``done()``, ``result()`` and ``cancel()`` (a Dask
client's submit, or a ``concurrent.futures`` executor's in tests)."""
Progress = Callable[[int, int, str, str], None]
MotifOf = Callable[[DefectConfiguration, dict[str, float]], dict[str, str]]
"""``motif_of(config, measured)``: ``{motif, core, spectators}`` of a candidate the oracle put inside every
window though the surrogate did not (:func:`hts.campaign.motifs.verified_motif` with the campaign's scorer)."""


def log_progress(done: int, total: int, hash_: str, status: str) -> None:
    """The default progress: one log line per candidate the oracle finishes."""
    log.info("oracle: %d verified, %d in flight (%s: %s)", done, total, hash_, status)


@dataclass
class Verifier:
    """Oracle jobs in flight beside the loop (see the module docstring)."""

    campaign: Campaign
    host: Host
    out_dir: Path
    store: CampaignStore
    submit: Submit
    slots: int
    compute: Callable[..., dict[str, Any]] | None = None  # default: hts.labelling.compute_one
    progress: Progress | None = log_progress
    on_pump: Callable[[int], None] | None = None  # called on every pump with the number of results stored so far
    motif_of: MotifOf | None = None  # the motif of a candidate the oracle confirms (None: it gets none)
    jobs: dict[Any, tuple[str, tuple[tuple[int, str], ...]]] = field(default_factory=dict)
    waiting: list[tuple[str, tuple[tuple[int, str], ...], dict[str, Any] | Exception]] = field(default_factory=list)
    reference_job: Any = None
    stored: int = 0
    broken: str | None = None  # why verification stopped (the pristine reference failed)
    predict: Callable[[list[str]], tuple[Any, Any]] | None = None  # the refitted surrogate's (see rescore)

    def __post_init__(self) -> None:
        from hts.labelling import OracleSettings, compute_one

        self.settings = OracleSettings(method=oracle_method(self.campaign))
        self.compute = self.compute or compute_one
        self.pool = OraclePool(self.campaign.targets, MIN_PROBABILITY, self.host)
        # group (a hit's motif, a near miss's make-up and clustering) of every candidate verified or sent
        hit_motif = self.store.oracle_motifs()
        loose = [h for h, m in hit_motif.items() if m is None]
        defects = self.store.defects_of(loose)
        loose = [h for h in loose if h in defects]
        family = dict(zip(loose, near_miss_groups_of(self.host, [defects[h] for h in loose]), strict=True))
        self.groups: dict[str, str] = {h: m or family.get(h, h) for h, m in hit_motif.items()}
        # motifs of the near misses the oracle confirmed: verified, like their groups
        self.found: set[str] = {m["motif"] for m in self.store.oracle_found_motifs().values()}
        self.verified: set[str] = set(self.groups)  # hashes with a stored oracle result
        for hash_ in self.verified:
            self.pool.discard(hash_, self.groups[hash_])
        if self.store.get_meta(REFERENCE) is None:
            self.reference_job = self._submit((), "oracle-reference")

    # -- the loop's hooks ---------------------------------------------------------------------
    def pump(self, minimum_probability: float = MIN_PROBABILITY, limit: int | None = None) -> int:
        """Store what has finished and fill the free slots (at most ``limit`` new jobs); returns the
        results stored now."""
        before = self.stored
        self._collect()
        if self.broken is not None:
            return 0
        if self.on_pump is not None:
            self.on_pump(self.stored)
        free = self.slots - len(self.jobs) if limit is None else min(limit, self.slots - len(self.jobs))
        if free > 0:
            for rec in self._choose(free, minimum_probability):
                defects = tuple(parse_defects(rec["defects"]))
                self.groups[rec["hash"]] = rec["group"]
                self.jobs[self._submit(defects, f"oracle-{rec['hash']}")] = (rec["hash"], defects)
        return self.stored - before

    def finish(self, deadline: float | None, top_k: int) -> None:
        """Top up to ``top_k`` verified candidates and wait for the jobs in flight, until ``deadline``
        (``time.perf_counter()``; ``None``: no limit); what is still running then is cancelled."""
        while deadline is None or time.perf_counter() < deadline:
            pending = len(self.jobs) + len(self.waiting)  # waiting: done, stored once the reference is in
            self.pump(minimum_probability=0.0, limit=max(0, top_k - self._n_verified() - pending))
            if self.broken is not None:
                return
            if not self.jobs and self.reference_job is None and not self.waiting:
                return
            time.sleep(POLL_S)
        log.warning("oracle: the wall-clock budget is spent; %d verifications cancelled", len(self.jobs))
        self.cancel()

    def cancel(self) -> None:
        """Cancel the jobs in flight (they were never stored; a resumed run may choose them again)."""
        for job in list(self.jobs):
            job.cancel()
        self.jobs.clear()
        if self.reference_job is not None:
            self.reference_job.cancel()
            self.reference_job = None

    # -- internals ------------------------------------------------------------------------------
    def _submit(self, defects: tuple[tuple[int, str], ...], key: str) -> Any:
        args = (self.host.name, self.host.supercell, defects, self.settings)
        return self.submit(self.compute, *args, key=key)

    def _collect(self) -> None:
        if self.reference_job is not None and self.reference_job.done():
            try:
                pristine = self.reference_job.result()
            except Exception as exc:  # no result can be normalised without it: verification stops, the run goes on
                log.error(
                    "oracle: the pristine reference failed (%s: %s); no verification in this run",
                    type(exc).__name__,
                    exc,
                )
                self.broken = f"{type(exc).__name__}: {exc}"
                self.cancel()
                return
            self.store.set_meta(REFERENCE, pristine)
            self.reference_job = None
        for job in [j for j in self.jobs if j.done()]:
            hash_, defects = self.jobs.pop(job)
            try:
                outcome: dict[str, Any] | Exception = job.result()
            except Exception as exc:  # one failure does not stop the campaign: recorded, named
                outcome = exc
            self.waiting.append((hash_, defects, outcome))
        if self.reference_job is None:
            for hash_, defects, outcome in self.waiting:
                self._record(hash_, defects, outcome)
            self.waiting.clear()

    def _record(self, hash_: str, defects: tuple[tuple[int, str], ...], outcome: dict[str, Any] | Exception) -> None:
        from hts.labelling import chemical_potentials, derived_properties

        result: dict[str, Any]
        if isinstance(outcome, Exception):
            status, result = "error", {"error": f"{type(outcome).__name__}: {outcome}"}
        else:
            status, result = str(outcome.get("scf_status", "ok")), outcome
            if status != "failed":
                try:
                    mu = chemical_potentials(self.settings)
                except Exception as exc:  # missing references: energies stay, formation energies are skipped
                    log.warning("no chemical potentials (%s); formation energies not computed", exc)
                    mu = {}
                pristine = json.loads(self.store.get_meta(REFERENCE))
                config = DefectConfiguration.from_mapping(self.host, defects)
                result = {**outcome, **derived_properties(config, outcome, pristine, mu)}
                result = self._with_motif(hash_, config, result)
        self.store.record_oracle(hash_, status, result)
        self.stored += 1
        self.verified.add(hash_)
        self.pool.discard(hash_, self.groups.setdefault(hash_, hash_))
        if self.progress is not None:
            self.progress(self._n_verified(), len(self.jobs), hash_, status)

    def _with_motif(self, hash_: str, config: DefectConfiguration, result: dict[str, Any]) -> dict[str, Any]:
        """``result`` with the candidate's ``motif`` (:data:`MotifOf`) when the oracle puts it inside every
        window (a hit or a near miss); its motif then counts as verified for the acquisition."""
        import numpy as np

        from hts.campaign.objective import distances

        names = list(self.campaign.targets)
        measured = {t: float(result.get(t, np.nan)) for t in names}
        values = np.array([[measured[t] for t in names]])
        if self.motif_of is None or not np.isfinite(values).all():
            return result
        if distances(values, names, self.campaign.targets)[0][0] != 0.0:
            return result
        try:
            found = self.motif_of(config, measured)
        except Exception as exc:  # the result is stored without a motif rather than lost
            log.warning("oracle: no motif for confirmed near miss %s (%s: %s)", hash_, type(exc).__name__, exc)
            return result
        self.found.add(found["motif"])
        self.pool.spent.add(found["motif"])
        return {**result, "motif": found}

    def _n_verified(self) -> int:
        return len(self.verified)

    def _busy(self) -> set[str]:
        """Hashes running on the oracle or done and waiting for the reference."""
        return {h for h, _ in self.jobs.values()} | {h for h, _, _ in self.waiting}

    def rescore(self, score: Callable[[Any], Any]) -> int:
        """Re-predict the pool's candidates with ``score`` (a batch -> prediction, e.g. a scorer's, after
        the surrogate was refitted), so that the oracle chooses by what the refitted model says; returns
        the rows left in the pool."""
        import numpy as np

        names = list(self.campaign.targets)

        def predict(defects: list[str]) -> tuple[Any, Any]:
            pred = score(batch_of(self.host, defects))
            cols = [list(pred.targets).index(n) for n in names]
            return np.asarray(pred.mean)[:, cols], np.asarray(pred.std)[:, cols]

        self.predict = predict  # the top-up at the end re-predicts what it ranks, too
        return self.pool.rescore(predict)

    def _choose(self, k: int, minimum_probability: float) -> list[dict[str, Any]]:
        """The ``k`` candidates to verify next (see the module docstring): from the pool while the
        threshold is at least the pool's, else from the whole store."""
        if minimum_probability >= self.pool.minimum:
            return self._choose_pooled(k, minimum_probability)
        return self._choose_ranked(k, minimum_probability)

    def _choose_pooled(self, k: int, minimum_probability: float) -> list[dict[str, Any]]:
        """:meth:`_choose` from the pool, brought up to date first."""
        import numpy as np

        from hts.campaign.acquisition import select_for_oracle

        self.pool.update(self.store)
        busy = self._busy()
        rows = self.pool.choices(exclude=busy | self.verified, minimum=minimum_probability)
        if not rows:
            return []
        credited = {self.groups.get(h, h) for h in self.verified | busy} | self.found
        rows = [r for r in rows if r.group not in credited]  # worth nothing: the slot stays free
        if not rows:
            return []
        mean = np.array([r.mean for r in rows], dtype=float)
        std = np.array([r.std for r in rows], dtype=float)
        chosen = select_for_oracle(mean, std, [r.group for r in rows], self.campaign.targets, k, credited=credited)
        return [rows[i].record() for i in chosen]

    def _choose_ranked(self, k: int, minimum_probability: float) -> list[dict[str, Any]]:
        """:meth:`_choose` from the whole store, read and ranked as ``hts status`` ranks it; after a refit
        the candidates' predictions are the refitted model's, not the stored ones."""
        from hts.campaign.acquisition import marginal_hit_probability, select_for_oracle

        results = CampaignResults(self.out_dir, self.campaign, self.host, self.store)
        ranked = results.ranked()
        if ranked.empty:
            return []
        busy = self._busy()
        verified = ranked["oracle_status"].notna() if "oracle_status" in ranked else ranked["hash"].isna()
        groups = motif_groups(ranked, self.host)
        credited = set(groups[verified | ranked["hash"].isin(busy)]) | self.found
        pool = ranked[~verified & ~ranked["hash"].isin(busy)]
        names = list(self.campaign.targets)
        if self.predict is not None and len(pool):  # the surrogate was refitted: what it says now
            mean, std = self.predict([str(d) for d in pool["defects"]])
        else:
            mean = pool[[f"pred_{n}" for n in names]].to_numpy(dtype=float)
            std = pool[[f"std_{n}" for n in names]].to_numpy(dtype=float)
        windows = [self.campaign.targets[n].window for n in names]
        keep = marginal_hit_probability(mean, std, windows) >= minimum_probability
        pool, mean, std = pool[keep], mean[keep], std[keep]
        rows = select_for_oracle(mean, std, list(groups[pool.index]), self.campaign.targets, k, credited=credited)
        return [
            {
                **{str(c): v for c, v in pool.iloc[r].to_dict().items()},
                "group": groups[pool.index[r]],
                "mean": tuple(mean[r]),
                "std": tuple(std[r]),
            }
            for r in rows
        ]


def motif_groups(ranked: pd.DataFrame, host: Host) -> pd.Series:
    """Each candidate's group for the acquisition: its motif, or for a near miss (no motif) its make-up
    and vacancy clustering (:func:`hts.campaign.motifs.near_miss_groups`)."""
    import pandas as pd

    motif = ranked["motif"] if "motif" in ranked else pd.Series(None, index=ranked.index, dtype=object)
    loose = motif.isna()
    if "defects" in ranked and loose.any():
        family = near_miss_groups_of(host, [str(d) for d in ranked.loc[loose, "defects"]])
        motif = motif.astype(object).where(~loose, pd.Series(family, index=ranked.index[loose.to_numpy()]))
    return motif.fillna(ranked["hash"]).astype(str)


def dask_submit(client: Any, workers: list[str] | None = None) -> Submit:
    """A :data:`Submit` on a Dask client, pinned to ``workers`` when given (the oracle's share)."""

    def submit(fn: Callable[..., Any], *args: Any, key: str) -> Any:
        return client.submit(fn, *args, key=f"{key}-{time.time_ns()}", workers=workers, allow_other_workers=False)

    return submit


def oracle_workers(client: Any, share: float) -> list[str]:
    """The workers the oracle may use: the last ``share`` of the cluster's workers, at least one."""
    addresses = sorted(client.scheduler_info()["workers"])
    n = max(1, round(share * len(addresses)))
    return addresses[-n:]


def thread_submit(executor: Any) -> Submit:
    """A :data:`Submit` on a ``concurrent.futures`` executor (tests, in-process runs)."""

    def submit(fn: Callable[..., Any], *args: Any, key: str) -> Future[Any]:
        return executor.submit(fn, *args)

    return submit
