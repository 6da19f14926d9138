"""Run the simulator in-process over real HTTPS on loopback — the test bed of the project's own tests.

``running_simulator(...)`` starts uvicorn on a free port of 127.0.0.1 with a fresh self-signed certificate,
yields a :class:`RunningSimulator` carrying the banner fields and the test hooks of the ``pvemcp.sim``
contract (docs/CONTRACTS.md), and stops the server on exit — also when the test body fails. It needs the
asyncio event loop (uvicorn); under pytest use the anyio plugin with the ``asyncio`` backend.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import uvicorn

from pvemcp.sim.app import SimApp
from pvemcp.sim.faults import FaultSet
from pvemcp.sim.protocol import PveH11Protocol
from pvemcp.sim.simulator import RequestRecord, Simulator
from pvemcp.sim.state import ClusterState
from pvemcp.sim.tls import CertFiles, make_certificate

STARTUP_TIMEOUT_S = 15.0
SHUTDOWN_TIMEOUT_S = 10.0


class _QuietServer(uvicorn.Server):
    """uvicorn server that leaves the process's signal handlers alone (it runs inside a test)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def uvicorn_config(app: SimApp, host: str, port: int, cert: CertFiles) -> uvicorn.Config:
    """The one uvicorn configuration the simulator is served with (CLI and in-process alike)."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        ssl_certfile=str(cert.cert_file),
        ssl_keyfile=str(cert.key_file),
        http=PveH11Protocol,
        lifespan="off",
        log_config=None,
        log_level="warning",
        access_log=False,
        server_header=False,
        date_header=True,
        timeout_graceful_shutdown=2,
        timeout_keep_alive=30,
    )


@dataclass
class RunningSimulator:
    """A started simulator: where it is, how to log in, and the hooks tests use."""

    url: str
    fingerprint: str
    ca_file: str
    user: str
    password: str
    token_id: str
    token_secret: str
    readonly_token_id: str
    readonly_token_secret: str
    readonly_user: str
    readonly_password: str
    sim: Simulator

    @property
    def state(self) -> ClusterState:
        return self.sim.state

    @property
    def faults(self) -> FaultSet:
        return self.sim.faults

    @property
    def request_log(self) -> list[RequestRecord]:
        return self.sim.request_log

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1].split("/", 1)[0])

    def advance_clock(self, seconds: float) -> None:
        self.sim.advance_clock(seconds)

    def expire_tickets(self) -> None:
        self.sim.expire_tickets()

    def banner(self) -> dict[str, Any]:
        """The JSON object ``pvemcp sim`` prints as its first line."""
        return {
            "url": self.url,
            "fingerprint": self.fingerprint,
            "user": self.user,
            "password": self.password,
            "token_id": self.token_id,
            "token_secret": self.token_secret,
            "readonly_token_id": self.readonly_token_id,
            "readonly_token_secret": self.readonly_token_secret,
            "ca_file": self.ca_file,
        }


def describe(sim: Simulator, url: str, cert: CertFiles) -> RunningSimulator:
    """Banner fields of a simulator served at ``url`` with ``cert``."""
    admin = sim.auth.admin
    auditor = sim.auth.auditor
    return RunningSimulator(
        url=url,
        fingerprint=cert.fingerprint,
        ca_file=str(cert.cert_file),
        user=admin.userid,
        password=admin.password,
        token_id=f"{admin.userid}!pvemcp",
        token_secret=admin.tokens["pvemcp"].secret,
        readonly_token_id=f"{auditor.userid}!ro",
        readonly_token_secret=auditor.tokens["ro"].secret,
        readonly_user=auditor.userid,
        readonly_password=auditor.password,
        sim=sim,
    )


def url_for(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"https://{shown}:{port}/api2/json"


@contextlib.asynccontextmanager
async def running_simulator(
    *,
    seed: int = 1,
    nodes: int = 3,
    guests: int = 12,
    task_speed: float = 1.0,
    latency_ms: float = 0.0,
    faults: str = "",
    host: str = "127.0.0.1",
    port: int = 0,
    start_epoch: float | None = None,
) -> AsyncIterator[RunningSimulator]:
    """Start a simulator on ``host`` (loopback) and a free port; stop it when the block exits."""
    sim = Simulator(
        seed=seed,
        nodes=nodes,
        guests=guests,
        task_speed=task_speed,
        latency_ms=latency_ms,
        faults=faults,
        start_epoch=start_epoch,
    )
    with tempfile.TemporaryDirectory(prefix="pvemcp-sim-") as tmp:
        cert = make_certificate(Path(tmp))
        sim.state.nodes[sim.local_node].ssl_fingerprint = cert.fingerprint
        app = SimApp(sim)
        server = _QuietServer(uvicorn_config(app, host, port, cert))
        async with anyio.create_task_group() as tg:

            async def serve() -> None:
                try:
                    await server.serve()
                finally:
                    tg.cancel_scope.cancel()  # also ends the shutdown watchdog

            async def watchdog() -> None:
                await anyio.sleep(SHUTDOWN_TIMEOUT_S)
                server.force_exit = True
                tg.cancel_scope.cancel()

            tg.start_soon(serve)
            with anyio.fail_after(STARTUP_TIMEOUT_S):
                while not server.started:
                    await anyio.sleep(0.01)
            bound = server.servers[0].sockets[0].getsockname()[1]
            running = describe(sim, url_for(host, bound), cert)
            try:
                yield running
            finally:
                app.closing.set()
                server.should_exit = True
                tg.start_soon(watchdog)
