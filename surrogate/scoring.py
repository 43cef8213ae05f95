"""Scoring service of the campaign loop: predict a batch of configurations in-process or on Dask.

In-process::

    pred = score_batch("models/mos2-sparse", batch)        # Prediction, rows in batch order

On Dask (a LocalCluster of 2 single-threaded workers by default, or any scheduler address)::

    with DaskScorer("models/mos2-sparse") as scorer:        # or DaskScorer(path, "tcp://host:8786")
        pred = scorer.score(batch)                          # rows in batch order

Each process (the client and every worker) loads a model directory once and keeps it in a cache keyed
by the resolved path and the files' modification times, so a retrained model (saved over the same
directory) is picked up and an unchanged one is never reloaded. Workers receive the configurations
as the batch's integer arrays (sites, codes) plus the host name and supercell: no pymatgen objects,
no model bytes per task.
"""

from __future__ import annotations

import logging
import os
import threading
from concurrent.futures import CancelledError
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hts.defects import ConfigBatch
from hts.errors import ClusterError, ConfigError, ModelError
from surrogate.model import MODEL_JSON, Prediction, SurrogateModel, check_same_kind

if TYPE_CHECKING:  # pragma: no cover
    from distributed import Client

log = logging.getLogger(__name__)

_CACHE: dict[str, tuple[tuple[int, ...], SurrogateModel]] = {}
_LOCK = threading.Lock()
DEFAULT_CHUNK = 25_000


def model_token(model_dir: str | os.PathLike[str]) -> tuple[str, tuple[int, ...]]:
    """(resolved path, modification times of its files): changes whenever the model is re-saved."""
    root = Path(model_dir).resolve()
    info = root / MODEL_JSON
    if not info.is_file():
        raise ModelError(f"{root} is not a surrogate model directory ({MODEL_JSON} missing)")
    stamps = [info.stat().st_mtime_ns, root.stat().st_mtime_ns]
    stamps += [p.stat().st_mtime_ns for p in sorted(root.glob("*.cbm"))]
    return str(root), tuple(stamps)


MAX_CACHED = 2
"""Models a process keeps loaded: the newest, and the one before it for tasks scheduled before a refit;
refits during a campaign would otherwise pile up (~13 MB each for the MoS2 default; BENCHMARKS.md,
"Hardening: fuzzing and soak"). A campaign that switches to a refitted model drops the one before at
once (:func:`forget`, :meth:`DaskScorer.use_model`)."""


def load_cached(model_dir: str | os.PathLike[str]) -> SurrogateModel:
    """The model in ``model_dir``, loaded at most once per process and version of the files."""
    key, stamp = model_token(model_dir)
    with _LOCK:
        hit = _CACHE.get(key)
        if hit is not None and hit[0] == stamp:
            return hit[1]
        model = SurrogateModel.load(key)
        _CACHE.pop(key, None)
        _CACHE[key] = (stamp, model)
        while len(_CACHE) > MAX_CACHED:  # a campaign that refits moves on to each new model: drop the oldest
            _CACHE.pop(next(iter(_CACHE)))
        log.debug("loaded surrogate %s into process %d", key, os.getpid())
        return model


def forget(model_dir: str | os.PathLike[str]) -> None:
    """Drop ``model_dir`` from this process's cache: a campaign that moved on to a refitted model frees
    the one before at once instead of keeping it until :data:`MAX_CACHED` newer ones are loaded."""
    with _LOCK:
        _CACHE.pop(str(Path(model_dir).resolve()), None)


def clear_cache() -> None:
    """Forget every cached model of this process."""
    with _LOCK:
        _CACHE.clear()


def score_batch(
    model: SurrogateModel | str | os.PathLike[str],
    batch: ConfigBatch,
    *,
    uncertainty: str = "total",
    thread_count: int = 1,
) -> Prediction:
    """Featurise and predict ``batch`` in this process; rows come back in batch order."""
    m = model if isinstance(model, SurrogateModel) else load_cached(model)
    return m.predict(batch, uncertainty=uncertainty, thread_count=thread_count)


def _score_arrays(
    model_dir: str,
    host_name: str,
    supercell: tuple[int, int, int],
    sites: np.ndarray,
    codes: np.ndarray,
    uncertainty: str,
    thread_count: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Task run on a worker: rebuild the batch from arrays, score it with the cached model."""
    from hts.hosts import get_host

    model = load_cached(model_dir)
    batch = ConfigBatch(get_host(host_name, supercell), sites, codes)
    p = model.predict(batch, uncertainty=uncertainty, thread_count=thread_count)
    return p.mean, p.std, p.data_std, p.knowledge_std


def _load_on_worker(model_dir: str, replaces: str | None = None) -> None:
    """Load ``model_dir`` into the worker's cache (dropping the model it ``replaces``); returns nothing,
    so that the model is not pickled back."""
    if replaces is not None and replaces != model_dir:
        forget(replaces)
    load_cached(model_dir)


class DaskScorer:
    """Scores batches on Dask workers, each holding the model loaded once.

    ``scheduler``: ``None`` starts a ``LocalCluster`` (``n_workers`` processes, ``threads_per_worker``
    threads each); a string is a scheduler address (``tcp://...``); ``client`` reuses a client.
    ``chunk_size`` rows go into one task (the batch is cut into ``ceil(N / chunk_size)`` tasks).

    Workers of an external cluster load ``model_dir`` themselves, so it must be on a filesystem they
    share with the client. Start them without ``MALLOC_TRIM_THRESHOLD_`` (Dask sets it to 65536 by
    default; unset it with the config ``distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_:
    null``), or scoring costs about 1.6x the CPU.
    """

    def __init__(
        self,
        model_dir: str | os.PathLike[str],
        scheduler: str | None = None,
        *,
        n_workers: int = 2,
        threads_per_worker: int = 1,
        chunk_size: int = DEFAULT_CHUNK,
        uncertainty: str = "total",
        client: Client | None = None,
    ) -> None:
        if chunk_size < 1:
            raise ConfigError(f"chunk_size must be a positive number of rows, got {chunk_size!r}")
        self.model_dir = str(Path(model_dir).resolve())
        self.model = load_cached(self.model_dir)  # validates the directory and gives targets/host
        self.chunk_size = int(chunk_size)
        self.uncertainty = uncertainty
        self.threads_per_worker = int(threads_per_worker)
        self._own_cluster: Any = None
        self._own_client = client is None
        if client is not None:
            self.client = client
        else:
            import dask
            from distributed import Client, LocalCluster

            from hts.cluster import bounded_logs

            if scheduler is None:
                # Dask starts workers with MALLOC_TRIM_THRESHOLD_=65536, which also switches off glibc's
                # adaptive mmap threshold: every temporary array of the featuriser and of CatBoost is
                # then mmapped and page-faulted afresh, +50-70 % CPU per configuration (measured).
                # Scoring workers hold little memory, so they keep glibc's defaults.
                # Dask's debugging logs bounded as in hts.cluster.dask_client (they would hold every
                # scored batch's message: hts.cluster.DEBUG_LOG_LENGTH).
                with (
                    dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}),
                    bounded_logs(),
                ):
                    self._own_cluster = LocalCluster(
                        n_workers=n_workers,
                        threads_per_worker=threads_per_worker,
                        processes=True,
                        dashboard_address=":0",
                    )
                    self.client = Client(self._own_cluster)
            else:
                try:
                    self.client = Client(scheduler, timeout="20s")
                except (OSError, TimeoutError) as exc:
                    raise ConfigError(f"cannot reach the Dask scheduler at {scheduler!r}: {exc}") from None
        self.address = str(self.client.scheduler.address)
        log.info("Dask scorer on %s with model %s", self.address, self.model_dir)

    def __enter__(self) -> DaskScorer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the client (and the LocalCluster this scorer started)."""
        if self._own_client:
            self.client.close()
        if self._own_cluster is not None:
            self._own_cluster.close()
            self._own_cluster = None

    def use_model(self, model_dir: str | os.PathLike[str]) -> None:
        """Score with another model directory of the same kind from now on (e.g. one refitted during a
        campaign). The workers load it and drop the one before; this process reads only its
        ``model.json`` (it keeps the first model for the host check and the targets), so refits do not
        pile models up in any process."""
        new = str(Path(model_dir).resolve())
        check_same_kind(new, self.model)
        old, self.model_dir = self.model_dir, new
        try:
            self.warm_up(replaces=old)
        except Exception:  # the workers cannot load it: score on with the model before (they reload it)
            self.model_dir = old
            raise

    def warm_up(self, replaces: str | None = None) -> None:
        """Load the model on every worker now (otherwise the first task of each worker does it), and
        drop the model directory it ``replaces`` from their caches."""
        self.client.run(_load_on_worker, self.model_dir, replaces)

    def score(self, batch: ConfigBatch) -> Prediction:
        """Predict ``batch`` on the workers; rows come back in batch order."""
        self.model.check_host(batch.host)
        n = len(batch)
        if n == 0:
            return self.model.predict(batch, uncertainty=self.uncertainty)
        host = batch.host
        futures = []
        for lo in range(0, n, self.chunk_size):
            hi = min(n, lo + self.chunk_size)
            futures.append(
                self.client.submit(
                    _score_arrays,
                    self.model_dir,
                    host.name,
                    host.supercell,
                    np.ascontiguousarray(batch.sites[lo:hi]),
                    np.ascontiguousarray(batch.codes[lo:hi]),
                    self.uncertainty,
                    self.threads_per_worker,
                    pure=False,
                )
            )
        try:
            parts = self.client.gather(futures)
        except CancelledError as exc:
            # distributed cancels every pending future when the client loses its scheduler.
            raise ClusterError(
                f"lost the Dask scheduler {self.address} while scoring {n} configurations "
                f"({exc}); finished work is kept: start the scheduler again and continue with --resume"
            ) from None
        targets = self.model.targets
        return Prediction.concat([Prediction(targets, *p) for p in parts])
