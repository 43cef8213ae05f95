"""Dask clients for the project: a scheduler address, or a LocalCluster of worker processes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from hts.errors import ConfigError

DEBUG_LOG_LENGTH = 20
"""Entries Dask keeps in each of its debugging logs (``distributed.admin.low-level-log-length``; Dask's
default is 1,000). Among them are the last batches of messages sent on every scheduler-worker stream and
the last stimuli of every worker; a campaign's messages carry the configurations it scores, so with the
default the campaign process (which holds the LocalCluster's scheduler) and every worker kept up to 1,000
of them and grew for the first hours of a campaign (BENCHMARKS.md, "Hardening: fuzzing and soak")."""


def bounded_logs() -> Any:
    """A ``dask.config.set`` context that bounds Dask's debugging logs (:data:`DEBUG_LOG_LENGTH`) in this
    process and in the worker processes started inside it (a nanny hands its config to its worker)."""
    import dask
    import distributed  # noqa: F401  (its defaults first: set() would drop, on exit, a section it created)

    return dask.config.set({"distributed.admin.low-level-log-length": DEBUG_LOG_LENGTH})


@contextmanager
def dask_client(
    scheduler: str | None,
    n_workers: int = 2,
    threads_per_worker: int = 1,
    env: dict[str, str] | None = None,
    security: Any = None,
) -> Iterator[Any]:
    """A ``distributed.Client``: to ``scheduler`` if given, else to a new LocalCluster, with Dask's
    debugging logs bounded (:func:`bounded_logs`) while it is open.

    ``env`` is set in each local worker process before it starts (so settings such as the fast
    BLAS take effect); ``OMP_NUM_THREADS`` is set to ``threads_per_worker``. ``security`` (a
    ``distributed.security.Security``) is passed to the client for TLS clusters. An external scheduler and
    its workers keep their own settings: start them with the same bound (README,
    "Remote Dask clusters").
    """
    with bounded_logs():
        yield from _client(scheduler, n_workers, threads_per_worker, env, security)


def _client(
    scheduler: str | None, n_workers: int, threads_per_worker: int, env: dict[str, str] | None, security: Any
) -> Iterator[Any]:
    import dask
    from distributed import Client, LocalCluster

    if scheduler:
        if scheduler.startswith("tls://") and security is None:
            raise ConfigError(
                f"the Dask scheduler {scheduler} uses TLS: give the CA file, certificate and key "
                "(campaign key dask.tls: {ca_file: ..., cert: ..., key: ...})"
            )
        try:
            client = Client(scheduler, timeout="20s", security=security)
        except (OSError, TimeoutError) as exc:
            raise ConfigError(
                f"cannot reach the Dask scheduler at {scheduler}: {exc}. Is it running, and is the address right?"
            ) from None
        try:
            yield client
        finally:
            client.close()
        return
    worker_env = {"OMP_NUM_THREADS": str(threads_per_worker), **(env or {})}
    with dask.config.set({"distributed.nanny.pre-spawn-environ": worker_env}):
        cluster = LocalCluster(
            n_workers=n_workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",
            env=worker_env,
        )
    client = Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()
