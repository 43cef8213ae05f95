"""Guards around a campaign's start, its memory, its stored Ax state and its export folder.

- :func:`check_resources`: what a campaign's legal (:data:`hts.campaign.config.LIMITS`) settings
  still need from this machine (memory for a trial's samples and the local Dask workers, cores for
  the workers), checked at start-up, before anything is written.
- :class:`ChunkedScorer`: scores a batch in chunks of at most :data:`SCORE_CHUNK` rows, so that a
  trial's samples are featurised a bounded number at a time.
- :func:`restore_ax_checked`: the newest stored Ax state, loaded; a snapshot that does not load is a
  :class:`StoreError` naming its trial and what to do.
- :func:`prepare_export_dir`: an export folder is new or empty, or (``force``) holds a previous
  export written by hts, whose files alone are removed.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hts.errors import ConfigError, HTSError, StoreError

if TYPE_CHECKING:  # pragma: no cover
    from hts.campaign.config import Campaign
    from hts.campaign.store import CampaignStore
    from hts.defects import ConfigBatch
    from hts.hosts import Host

# -- memory and cores --------------------------------------------------------------------------------

SCORE_CHUNK = 25_000  # rows featurised and predicted at once in-process (DaskScorer's task size too)
# Peak memory of one trial per sample (random proposals, canonicalisation, scoring, records), measured
# on MoS2 8x8 (192 sites) with the default surrogate in-process: +120 MB for 20,000 samples.
BYTES_PER_SAMPLE = 6_000
REFERENCE_SITES = 192
BYTES_PER_WORKER = 200 * 2**20  # a LocalCluster scoring worker and its nanny (~170 MB measured, soak)
BYTES_BASE = 1 * 2**30  # the campaign process itself with the LLM and Ax loaded (~0.9 GB measured, soak)
MEMORY_FRACTION = 0.8  # of the machine's memory a campaign may plan to use
WORKERS_PER_CORE = 4


def machine_memory() -> int:
    """Bytes of memory this process may use: the machine's, or its cgroup's limit when lower."""
    import psutil

    total = int(psutil.virtual_memory().total)
    for limit_file in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(limit_file).read_text().strip()
        except OSError:
            continue
        if text.isdigit() and 0 < int(text) < total:
            total = int(text)
    return total


def machine_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def trial_memory(campaign: Campaign, host: Host) -> int:
    """Estimated peak bytes of one trial's samples (scales with the supercell's sites)."""
    scale = max(1.0, host.n_sites / REFERENCE_SITES)
    return int(campaign.budget.samples_per_trial * BYTES_PER_SAMPLE * scale)


def check_resources(campaign: Campaign, host: Host, memory: int | None = None, cores: int | None = None) -> None:
    """Refuse, before anything is written, a campaign this machine cannot run: a trial's samples and the
    local Dask workers needing more than :data:`MEMORY_FRACTION` of its memory, or more local workers
    than :data:`WORKERS_PER_CORE` per core. The :class:`ConfigError` names the keys, their values, the
    estimate and what the machine has."""
    memory = machine_memory() if memory is None else memory
    cores = machine_cores() if cores is None else cores
    d = campaign.dask
    local_workers = d.workers if d.enabled and d.scheduler is None else 0
    max_workers = max(4, WORKERS_PER_CORE * cores)
    if local_workers > max_workers:
        raise ConfigError(
            f"dask.workers: {local_workers} local workers on a machine with {cores} cores; at most {max_workers} "
            f"({WORKERS_PER_CORE} per core, at least 4) — lower it, or give dask.scheduler for a cluster"
        )
    trial = trial_memory(campaign, host)
    workers = local_workers * BYTES_PER_WORKER
    need = BYTES_BASE + trial + workers
    allowed = int(MEMORY_FRACTION * memory)
    if need > allowed:
        gib = 2**30
        raise ConfigError(
            f"budget.samples_per_trial: {campaign.budget.samples_per_trial:,} samples per trial "
            f"(~{trial / gib:.1f} GiB on {host.key}) and dask.workers: {local_workers} local workers "
            f"(~{workers / gib:.1f} GiB) need about "
            f"{need / gib:.1f} GiB with the campaign process; this machine allows {allowed / gib:.1f} GiB "
            f"({MEMORY_FRACTION:.0%} of {memory / gib:.1f} GiB): lower them"
        )


class ChunkedScorer:
    """A scorer that predicts at most ``chunk`` rows at a time and joins the parts in batch order;
    everything else (``use_model``, ``warm_up``, ...) is the wrapped scorer's."""

    def __init__(self, scorer: Any, chunk: int = SCORE_CHUNK) -> None:
        if chunk < 1:
            raise ConfigError(f"the scoring chunk must be at least 1 row, got {chunk}")
        self.scorer = scorer
        self.chunk = int(chunk)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.scorer, name)

    def score(self, batch: ConfigBatch) -> Any:
        from hts.defects import ConfigBatch
        from surrogate.model import Prediction

        n = len(batch)
        if n <= self.chunk:
            return self.scorer.score(batch)
        parts = [
            self.scorer.score(
                ConfigBatch(batch.host, batch.sites[lo : lo + self.chunk], batch.codes[lo : lo + self.chunk])
            )
            for lo in range(0, n, self.chunk)
        ]
        return Prediction(
            targets=list(parts[0].targets),
            mean=np.concatenate([p.mean for p in parts]),
            std=np.concatenate([p.std for p in parts]),
            data_std=np.concatenate([p.data_std for p in parts]),
            knowledge_std=np.concatenate([p.knowledge_std for p in parts]),
        )


# -- the stored Ax state -----------------------------------------------------------------------------


def restore_ax_checked(store: CampaignStore, restore: Callable[[str], Any] | None = None) -> Any | None:
    """The Ax client of the newest stored snapshot (``None`` when there is none), rebuilt by ``restore``
    (default :func:`hts.campaign.axclient.restore_ax_client`). A snapshot that is not JSON or that Ax cannot
    load is a :class:`StoreError` naming the trial it was stored with and what to do."""
    from hts.campaign.store import SALVAGE_FLAG

    state = store.latest_ax_state()  # StoreError naming the trial when the snapshot is not JSON
    if state is None:
        return None
    trial_id, snapshot = state
    if restore is None:
        from hts.campaign.axclient import restore_ax_client

        restore = restore_ax_client
    try:
        return restore(snapshot)
    except HTSError:
        raise
    except Exception as exc:
        detail = f"{type(exc).__name__}: {exc}"
        raise StoreError(
            f"the Ax state stored with trial {trial_id} in {store.where} cannot be loaded ({detail[:300]}); "
            f"restore the store from a backup to resume, or export its candidates with `hts export "
            f"{Path(store.where).parent} {SALVAGE_FLAG} --out DIR`"
        ) from None


# -- start-up ------------------------------------------------------------------------------------------


def resume_command(campaign_path: str | os.PathLike[str], out: str | os.PathLike[str] | None) -> str:
    """The exact command that resumes the campaign file at ``campaign_path`` (``--out`` when it was given)."""
    cmd = f"hts run {shlex.quote(str(campaign_path))} --resume"
    return cmd + (f" --out {shlex.quote(str(out))}" if out is not None else "")


def check_folder(path: Path, what: str) -> None:
    """``path`` is a folder or can become one: a :class:`ConfigError` naming it when it, or a folder above
    it, is a file."""
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{what} {path} is a file, expected a folder")
    for above in path.parents:
        if above.exists():
            if not above.is_dir():
                raise ConfigError(f"{what} {path} cannot be created: {above} is a file, expected a folder")
            return


def check_model_folder(path: Path, kind: str) -> None:
    """A model path is a folder: a :class:`ModelError`-style message for files and missing paths."""
    from hts.errors import ModelError

    if not path.exists():
        raise ModelError(f"{kind} path {path} does not exist")
    if not path.is_dir():
        raise ModelError(f"{kind} path {path} is a file, expected a folder (a model directory)")


# -- export folders ----------------------------------------------------------------------------------

EXPORT_MARKER = "export.json"
# What `hts export` writes besides the CIFs; --force removes these (and the export's CIFs) only.
EXPORT_FILES = ("candidates.csv", "motifs.csv", "campaign.yaml")
EXPORT_CIF = re.compile(r"^\d{4,}_[0-9a-f]{16}\.cif$")  # <rank>_<canonical hash>.cif
_MAX_MARKER_BYTES = 10_000_000


def is_hts_export(folder: Path) -> bool:
    """Whether ``folder`` holds an export written by hts: an ``export.json`` that is hts's provenance
    record of an export (``hts_version``, ``settings.campaign_dir``)."""
    marker = folder / EXPORT_MARKER
    if marker.is_symlink() or not marker.is_file() or marker.stat().st_size > _MAX_MARKER_BYTES:
        return False
    try:
        data = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    settings = data.get("settings") if isinstance(data, dict) else None
    return isinstance(settings, dict) and "campaign_dir" in settings and "hts_version" in data


def _exported_cifs(folder: Path) -> set[str]:
    """CIF names the previous export's ``candidates.csv`` lists (its ``cif`` column)."""
    table = folder / "candidates.csv"
    if table.is_symlink() or not table.is_file():
        return set()
    try:
        with table.open(newline="", encoding="utf-8") as fh:
            return {
                name
                for row in csv.DictReader(fh)
                if isinstance(name := row.get("cif"), str) and name.endswith(".cif") and "/" not in name
            }
    except (OSError, ValueError, csv.Error):
        return set()


def prepare_export_dir(dest: Path, force: bool) -> None:
    """Make ``dest`` ready for an export: created when new; kept when empty; when it holds a previous
    export written by hts (:func:`is_hts_export`) and ``force`` is given, that export's files are removed
    (its CIFs — ``<rank>_<hash>.cif`` or listed in its ``candidates.csv`` — :data:`EXPORT_FILES` and
    ``export.json``, last) and nothing else, sub-folders included. Anything else is a
    :class:`ConfigError` naming the folder, and nothing is removed."""
    dest = Path(dest)
    if dest.is_symlink() and not dest.exists():
        raise ConfigError(f"export folder {dest} is a broken symbolic link, expected a folder")
    if dest.exists() and not dest.is_dir():
        raise ConfigError(f"export folder {dest} is a file, expected a folder (new or empty)")
    if not dest.exists():
        check_folder(dest, "export folder")
        try:
            dest.mkdir(parents=True)
        except OSError as exc:
            raise ConfigError(f"cannot create the export folder {dest}: {exc.strerror or exc}") from None
        return
    entries = sorted(dest.iterdir())
    if not entries:
        return
    if not force:
        raise ConfigError(
            f"export folder {dest} is not empty ({len(entries)} entries); export into a new or empty folder, or "
            "pass --force to replace a previous export of hts there (only the files hts wrote are removed)"
        )
    if not is_hts_export(dest):
        raise ConfigError(
            f"export folder {dest} is not empty and holds no export.json written by hts, so it is not a previous "
            "export; --force replaces only those: nothing was removed, choose a new or empty folder"
        )
    listed = _exported_cifs(dest)
    ours = [
        e
        for e in entries
        if (e.is_file() or e.is_symlink())
        and (e.name in EXPORT_FILES or (e.suffix == ".cif" and (EXPORT_CIF.match(e.name) or e.name in listed)))
    ]
    try:
        for e in ours:
            e.unlink()
        (dest / EXPORT_MARKER).unlink()  # last: an interrupted removal can be forced again
    except OSError as exc:
        raise ConfigError(f"cannot remove the previous export in {dest}: {exc.strerror or exc}") from None
