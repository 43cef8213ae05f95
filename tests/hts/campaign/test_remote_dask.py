"""The loop against a Dask scheduler and workers started as separate processes on loopback."""

from __future__ import annotations

import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from hts.campaign.runner import run_campaign
from hts.errors import ClusterError, ConfigError
from tests.hts.campaign.conftest import campaign_text


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class _Loopback:
    address: str
    scheduler: subprocess.Popen


@contextmanager
def _cluster(
    protocol: str = "tcp", extra: tuple[str, ...] = (), security=None, port: int | None = None
) -> Iterator[_Loopback]:
    """A scheduler and two workers, each its own process, on loopback (``port``: a free one by default)."""
    from distributed import Client

    port = port or _free_port()
    address = f"{protocol}://127.0.0.1:{port}"
    bindir = Path(sys.executable).parent
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    procs = [
        subprocess.Popen(
            [
                str(bindir / "dask"),
                "scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--protocol",
                protocol,
                "--dashboard-address",
                ":0",
                "--no-show",
                *extra,
            ],
            **quiet,
        )
    ]
    try:
        time.sleep(2)
        procs += [
            subprocess.Popen(
                [
                    str(bindir / "dask"),
                    "worker",
                    address,
                    "--nthreads",
                    "1",
                    "--no-dashboard",
                    "--host",
                    "127.0.0.1",
                    *extra,
                ],
                **quiet,
            )
            for _ in range(2)
        ]
        with Client(address, timeout="30s", security=security) as c:
            c.wait_for_workers(2, timeout=90)
        yield _Loopback(address, procs[0])
    finally:
        for p in procs[::-1]:
            p.terminate()
        for p in procs:
            p.wait(timeout=30)
        time.sleep(1)  # the port is free again before a test starts the next scheduler on it


@pytest.mark.slow
def test_campaign_on_separate_scheduler_and_workers(tmp_path, tiny_surrogate):
    with _cluster() as cluster:
        address = cluster.address
        text = campaign_text(tiny_surrogate, iterations=2).replace(
            "dask: {enabled: false}", f"dask: {{enabled: true, scheduler: '{address}'}}"
        )
        path = tmp_path / "c.yaml"
        path.write_text(text)
        summary, _ = run_campaign(path, out=tmp_path / "run")
        assert summary.trials == 4 and summary.candidates > 0


def test_unreachable_scheduler_is_a_clear_error(tmp_path, tiny_surrogate):
    address = f"tcp://127.0.0.1:{_free_port()}"
    text = campaign_text(tiny_surrogate, iterations=1).replace(
        "dask: {enabled: false}", f"dask: {{enabled: true, scheduler: '{address}'}}"
    )
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match="cannot reach the Dask scheduler"):
        run_campaign(path, out=tmp_path / "run")
    # The store was created and is intact; nothing half-written.
    assert (tmp_path / "run" / "campaign.yaml").is_file()


def _make_tls_files(d: Path) -> tuple[Path, Path, Path]:
    """A throw-away CA and a certificate for 127.0.0.1 signed by it (openssl)."""
    ca_key, ca, key, csr, cert = (d / n for n in ("ca.key", "ca.pem", "node.key", "node.csr", "node.pem"))
    ext = d / "ext.cnf"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True)

    run(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        str(ca_key),
        "-out",
        str(ca),
        "-days",
        "1",
        "-subj",
        "/CN=hts-test-ca",
    )
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr), "-subj", "/CN=127.0.0.1")
    run(
        "x509",
        "-req",
        "-in",
        str(csr),
        "-CA",
        str(ca),
        "-CAkey",
        str(ca_key),
        "-CAcreateserial",
        "-out",
        str(cert),
        "-days",
        "1",
        "-extfile",
        str(ext),
    )
    return ca, cert, key


@pytest.mark.slow
def test_campaign_over_tls(tmp_path, tiny_surrogate):
    import shutil

    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make the test certificates")
    ca, cert, key = _make_tls_files(tmp_path)
    from distributed.security import Security

    tls = ("--tls-ca-file", str(ca), "--tls-cert", str(cert), "--tls-key", str(key))
    sec = Security(tls_ca_file=str(ca), tls_client_cert=str(cert), tls_client_key=str(key), require_encryption=True)
    with _cluster("tls", tls, sec) as cluster:
        address = cluster.address
        text = campaign_text(tiny_surrogate, iterations=2, extra="oracle: {enabled: true, top_k: 1}\n").replace(
            "dask: {enabled: false}",
            f"dask: {{enabled: true, scheduler: '{address}', tls: {{ca_file: '{ca}', cert: '{cert}', key: '{key}'}}}}",
        )
        path = tmp_path / "c.yaml"
        path.write_text(text)
        summary, out = run_campaign(path, out=tmp_path / "run")
        assert summary.trials == 4 and summary.candidates > 0
        # the oracle's xTB jobs ran on the same TLS cluster
        with sqlite3.connect(out / "campaign.sqlite") as con:
            status = [r[0] for r in con.execute("select status from oracle")]
        assert status and set(status) <= {"converged", "converged_after_retry"}
        # Without the TLS settings the campaign is refused with a clear error.
        path.write_text(text.replace(f", tls: {{ca_file: '{ca}', cert: '{cert}', key: '{key}'}}", ""))
        with pytest.raises(ConfigError, match="uses TLS: give the CA file"):
            run_campaign(path, out=tmp_path / "run2")


@pytest.mark.slow
def test_scheduler_lost_mid_run_then_resume(tmp_path, tiny_surrogate):
    """The scheduler dies after the first trial: a ClusterError, the store intact, --resume finishes."""
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    text = campaign_text(tiny_surrogate, iterations=3).replace(
        "dask: {enabled: false}", f"dask: {{enabled: true, scheduler: '{address}'}}"
    )
    path, out = tmp_path / "c.yaml", tmp_path / "run"
    path.write_text(text)
    with _cluster(port=port) as cluster:

        def kill_scheduler(_: dict) -> None:
            if cluster.scheduler.poll() is None:
                cluster.scheduler.kill()
                cluster.scheduler.wait()

        with pytest.raises(ClusterError, match="lost the Dask scheduler"):
            run_campaign(path, out=out, progress=kill_scheduler)
    db = sqlite3.connect(out / "campaign.sqlite")
    assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    (trials,) = db.execute("SELECT COUNT(*) FROM trials").fetchone()
    kept = {h for (h,) in db.execute("SELECT hash FROM candidates")}
    db.close()
    assert trials == 1 and kept  # the trial finished before the loss is stored, the one in flight is not
    with _cluster(port=port):
        summary, _ = run_campaign(path, resume=True, out=out)
    assert summary.trials == 6
    db = sqlite3.connect(out / "campaign.sqlite")
    hashes = [h for (h,) in db.execute("SELECT hash FROM candidates")]
    db.close()
    assert kept <= set(hashes) and len(hashes) == len(set(hashes))
