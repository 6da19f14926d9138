"""Throw-away PostgreSQL and HAProxy servers on 127.0.0.1 for the multi-replica tests.

Both are Debian's packages (``scripts/system-deps.sh`` installs them), run from a temporary
directory on a free port, and stopped in ``finally``: nothing outlives the test. PostgreSQL refuses
to run as root, so as root the server runs as the ``postgres`` user the package creates.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import anyio
import httpx2

from reliability.helpers import accepting, free_port, start_http_server, stop_processes

READY_S = 60.0


def _pg_bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


class MissingBinaries(RuntimeError):
    """PostgreSQL or HAProxy is not installed; the message says how to install them."""


def require_binaries() -> tuple[str, str, str]:
    """initdb, pg_ctl and haproxy, or :class:`MissingBinaries` saying how to install them."""
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    haproxy = shutil.which("haproxy") or ("/usr/sbin/haproxy" if os.path.exists("/usr/sbin/haproxy") else None)
    if not (initdb and pg_ctl and haproxy):
        raise MissingBinaries(
            "needs Debian's postgresql and haproxy: apt-get install postgresql haproxy (scripts/test.sh does)"
        )
    return initdb, pg_ctl, haproxy


def skip_unless_binaries() -> None:
    """Skip where PostgreSQL or HAProxy is missing, saying what to install; under CI (``CI`` set), where
    scripts/test.sh must have installed them, fail instead, so a green run always ran the real thing."""
    import pytest

    try:
        require_binaries()
    except MissingBinaries as exc:
        if os.environ.get("CI"):
            pytest.fail(f"CI: {exc}")
        pytest.skip(str(exc))


@contextlib.contextmanager
def running_postgres() -> Iterator[str]:
    """A fresh PostgreSQL cluster; yields its URL (trust auth on 127.0.0.1 only)."""
    initdb, pg_ctl, _ = require_binaries()
    scratch = Path(tempfile.mkdtemp(prefix="pvemcp-pg-"))
    data = scratch / "data"
    as_user: list[str] = []
    if os.geteuid() == 0:
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            raise MissingBinaries(
                "running as root needs the postgres user (Debian's postgresql package creates it)"
            ) from None
        os.chown(scratch, user.pw_uid, user.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    port = free_port()
    try:
        subprocess.run(
            [*as_user, initdb, "-D", str(data), "-U", "postgres", "-A", "trust", "--no-sync"],
            check=True,
            capture_output=True,
        )
        options = f"-p {port} -k {scratch} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
        subprocess.run(
            [*as_user, pg_ctl, "-D", str(data), "-l", str(scratch / "log"), "-o", options, "-w", "-t", "60", "start"],
            check=True,
            capture_output=True,
        )
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*as_user, pg_ctl, "-D", str(data), "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(scratch, ignore_errors=True)


HAPROXY_CFG = """
global
    maxconn 4096
    log stderr format raw local0 notice
defaults
    mode http
    log global
    option httplog
    option dontlog-normal
    timeout connect 2s
    timeout check 10s  # /readyz asks the cluster and the database: slow on a loaded 2-core box, not dead
    timeout client 120s
    timeout server 120s
    retries 3
    # a connection the killed replica refused was never a request: safe to send elsewhere
    option redispatch
frontend mcp
    bind 127.0.0.1:{port}
    default_backend replicas
backend replicas
    balance roundrobin
    option httpchk GET /readyz
    {servers}
"""


@contextlib.contextmanager
def running_haproxy(backend_ports: list[int], log: Path) -> Iterator[int]:
    """HAProxy balancing round-robin over the replicas, health-checked on ``/readyz``; yields its port.

    Its log (failed requests and server state changes only) goes to ``log``.
    """
    *_, haproxy = require_binaries()
    port = free_port()
    servers = "\n    ".join(
        f"server r{i} 127.0.0.1:{p} check inter 500ms fall 2 rise 1" for i, p in enumerate(backend_ports)
    )
    with tempfile.TemporaryDirectory(prefix="pvemcp-haproxy-") as scratch:
        cfg = Path(scratch) / "haproxy.cfg"
        cfg.write_text(HAPROXY_CFG.format(port=port, servers=servers), encoding="ascii")
        with open(log, "ab") as out:
            proc = subprocess.Popen([haproxy, "-db", "-f", str(cfg)], stdout=out, stderr=out)
        try:
            deadline = time.monotonic() + READY_S
            while not accepting(port):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"haproxy did not start: {log.read_text(errors='replace')[-2000:]}")
                time.sleep(0.05)
            yield port
        finally:
            stop_processes([proc], timeout=10)


@dataclass
class Replica:
    """One ``pvemcp serve --http`` child on 127.0.0.1."""

    port: int
    proc: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"


def start_replica(env: Mapping[str, str], log: Path) -> Replica:
    """A replica on a free port, its output appended to ``log``."""
    port = free_port()
    with open(log, "ab") as out:
        return Replica(port, start_http_server(port, env, out))


async def wait_ready(replica: Replica) -> None:
    """Until the replica answers ``/readyz`` with 200; ``RuntimeError`` if it exits or takes over 90 s."""
    deadline = time.monotonic() + 90
    async with httpx2.AsyncClient(timeout=5) as http:
        while True:
            if replica.proc.poll() is not None:
                raise RuntimeError(f"replica on {replica.port} exited with {replica.proc.returncode}")
            if accepting(replica.port):
                response = await http.get(f"http://127.0.0.1:{replica.port}/readyz")
                if response.status_code == 200:
                    return
            if time.monotonic() > deadline:
                raise RuntimeError(f"replica on {replica.port} never became ready")
            await anyio.sleep(0.2)


@contextlib.asynccontextmanager
async def running_replicas(env: Mapping[str, str], count: int, log_dir: Path) -> AsyncIterator[list[Replica]]:
    """``count`` replicas sharing ``env``, each ready; all stopped on exit (logs ``log_dir/replicaN.log``)."""
    replicas = [start_replica(env, log_dir / f"replica{i}.log") for i in range(count)]
    try:
        for replica in replicas:
            await wait_ready(replica)
        yield replicas
    finally:
        stop_processes([r.proc for r in replicas], timeout=15)
