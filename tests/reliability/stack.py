"""Run a simulator and ``pvemcp serve --http`` against it, together, for tools that need a live URL.

    python tests/reliability/stack.py [--port 0] [--lifetime 900]

Why: the conformance suite (scripts/conformance.sh) and the MCP Inspector test a server by URL, and
must test the real command, ``pvemcp serve --http 127.0.0.1:PORT``, not an in-process stand-in. This
starts the simulator in-process (loopback HTTPS), the server as a child process pointed at it through
the documented ``PROXMOX_*`` variables, waits until the server accepts connections, then prints one
JSON line on stdout: ``{"url": "http://127.0.0.1:PORT/mcp", "pid": ...}``. Everything else goes to
stderr. It stops the server and the simulator on SIGTERM/SIGINT, when the server exits, or after
``--lifetime`` seconds, whichever comes first: nothing it starts can outlive it for long.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from pathlib import Path

import anyio

from pvemcp.sim import running_simulator

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script: the tests' shared helpers

from reliability.helpers import (
    accepting,
    cluster_env,
    free_port,
    start_http_server,
    stop_processes,
    subprocess_env,
)

READY_TIMEOUT_S = 60.0


async def serve(port: int, lifetime_s: float, seed: int) -> int:
    stopping: list[int] = []  # a plain flag: a signal handler must not touch the event loop

    def on_signal(signum: int, frame: object) -> None:
        stopping.append(signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    async with running_simulator(seed=seed, task_speed=50.0) as sim:
        server = start_http_server(port, subprocess_env(**cluster_env(sim)), sys.stderr)
        try:
            deadline = time.monotonic() + READY_TIMEOUT_S
            while not accepting(port):
                if server.poll() is not None or time.monotonic() > deadline:
                    print(f"stack: pvemcp serve --http did not come up (exit {server.poll()})", file=sys.stderr)
                    return 1
                await anyio.sleep(0.1)
            print(json.dumps({"url": f"http://127.0.0.1:{port}/mcp", "pid": server.pid}), flush=True)
            with anyio.move_on_after(lifetime_s):
                while not stopping and server.poll() is None:
                    await anyio.sleep(0.2)
            return 0 if server.poll() is None else 1
        finally:
            stop_processes([server], timeout=10)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--port", type=int, default=0, help="server port on 127.0.0.1 (0 = any free port)")
    parser.add_argument("--lifetime", type=float, default=900.0, help="stop after this many seconds")
    parser.add_argument("--seed", type=int, default=1, help="seed of the simulated cluster")
    args = parser.parse_args(argv)
    port = args.port or free_port()
    return anyio.run(serve, port, args.lifetime, args.seed, backend="asyncio")


if __name__ == "__main__":
    sys.exit(main())
