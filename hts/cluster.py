"""Dask clients for the project: a scheduler address, or a LocalCluster of worker processes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from hts.errors import ConfigError


@contextmanager
def dask_client(
    scheduler: str | None,
    n_workers: int = 2,
    threads_per_worker: int = 1,
    env: dict[str, str] | None = None,
    security: Any = None,
) -> Iterator[Any]:
    """A ``distributed.Client``: to ``scheduler`` if given, else to a new LocalCluster.

    ``env`` is set in each local worker process before it starts (so settings such as the fast
    BLAS take effect); ``OMP_NUM_THREADS`` is set to ``threads_per_worker``. ``security`` (a
    ``distributed.security.Security``) is passed to the client for TLS clusters.
    """
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
