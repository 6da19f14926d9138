"""``pvemcp sim``: serve the simulated cluster over HTTPS until SIGTERM/SIGINT.

The first line on stdout is one JSON object — url, certificate fingerprint, administrator password and
API token, plus the read-only token — so that scripts (``pvemcp demo``, CI) can start the simulator and
read how to reach it; everything else goes to stderr. The certificate and key live in a temporary
directory that is removed on exit.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import json
import signal
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import uvicorn

from pvemcp.sim.app import SimApp
from pvemcp.sim.runner import describe, url_for, uvicorn_config
from pvemcp.sim.simulator import Simulator
from pvemcp.sim.tls import CertFiles, make_certificate


def _note(text: str) -> None:
    print(f"pvemcp sim: {text}", file=sys.stderr, flush=True)


class _BannerServer(uvicorn.Server):
    """Prints the banner once the socket is bound (the port may have been 0 = any free port)."""

    def __init__(self, config: uvicorn.Config, sim: Simulator, cert: CertFiles, host: str) -> None:
        super().__init__(config)
        self._sim = sim
        self._cert = cert
        self._host = host

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """Stop gracefully on SIGINT/SIGTERM and exit 0 (uvicorn would re-raise the signal afterwards)."""
        originals = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in originals.items():
                signal.signal(sig, handler)

    async def startup(self, sockets: list[object] | None = None) -> None:  # type: ignore[override]
        await super().startup(sockets=sockets)  # type: ignore[arg-type]
        if self.should_exit or not self.servers:
            return
        port = self.servers[0].sockets[0].getsockname()[1]
        running = describe(self._sim, url_for(self._host, port), self._cert)
        sys.stdout.write(json.dumps(running.banner()) + "\n")
        sys.stdout.flush()
        state = self._sim.state
        _note(
            f"serving {len(state.nodes)} nodes and {len(state.guests)} guests at {running.url} "
            f"(seed {self._sim.seed}, task speed {self._sim.clock.task_speed:g}); stop with Ctrl-C"
        )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def cmd_sim(args: argparse.Namespace) -> int:
    """Entry point of ``pvemcp sim`` (arguments from ``cli._add_sim_arguments``); returns the exit code."""
    try:
        sim = Simulator(
            seed=args.seed,
            nodes=args.nodes,
            guests=args.guests,
            task_speed=args.task_speed,
            latency_ms=args.latency_ms,
            faults=args.faults or "",
        )
    except ValueError as err:
        _note(f"error: {err}")
        return 2
    if not _is_loopback(args.host):
        _note(
            f"warning: binding {args.host} exposes the simulator (and its admin credentials in this "
            "banner) beyond this machine"
        )
    with tempfile.TemporaryDirectory(prefix="pvemcp-sim-") as tmp:
        hostnames = ("localhost",) if _is_loopback(args.host) else ("localhost", args.host)
        cert = make_certificate(Path(tmp), hostnames=hostnames)
        sim.state.nodes[sim.local_node].ssl_fingerprint = cert.fingerprint
        app = SimApp(sim)
        server = _BannerServer(uvicorn_config(app, args.host, args.port, cert), sim, cert, args.host)
        # uvicorn exits via SystemExit when it cannot bind; that is reported below
        with contextlib.suppress(KeyboardInterrupt, SystemExit):
            asyncio.run(server.serve())
        if not server.started:
            _note(f"could not serve on {args.host}:{args.port}")
            return 1
    _note("stopped")
    return 0
