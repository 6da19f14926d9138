"""Benchmark: calls/s and p50/p99 latency of 1 replica and of 3 replicas behind HAProxy, side by side.

Everything on this machine, on 127.0.0.1: a throw-away PostgreSQL (the shared state), the simulator,
three ``pvemcp serve --http`` replicas with the same ``state_url`` and keys, and HAProxy balancing
round-robin. The same workload (reads an agent polls with, and dry runs of a batch action: each plans
against live state, nothing is sent) runs first against one replica directly, then through the
balancer against all three. On a machine with fewer cores than replicas, more replicas mostly add
contention: the figures say what this machine does, not what a cluster of machines would. Needs
Debian's postgresql and haproxy (scripts/test.sh installs them). Bounded by a call count and a time
limit; everything it starts is stopped before it exits. Not a test: figures depend on the machine.

    python bench/bench_replicas.py [--calls 600] [--concurrency 24]
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from pvemcp.sim import running_simulator  # noqa: E402
from reliability.helpers import cluster_env, subprocess_env  # noqa: E402
from replicas.infra import running_haproxy, running_postgres, running_replicas  # noqa: E402

DEADLINE_S = 300.0


def workload(n: int, vmids: list[int]) -> tuple[str, dict[str, Any]]:
    vmid = vmids[n % len(vmids)]
    return [
        ("guest_status", {"vmid": vmid}),
        ("guest_config", {"vmid": vmid}),
        ("guest_list", {}),
        ("guest_stop", {"vmids": vmids[:3], "dry_run": True}),
    ][n % 4]


async def measure(url: str, calls: int, concurrency: int, vmids: list[int]) -> dict[str, float]:
    """Run ``calls`` calls, ``concurrency`` at a time (one sessionless client per worker)."""
    latencies: list[float] = []
    errors = 0
    queue = iter(range(calls))

    async def worker() -> None:
        nonlocal errors
        async with (
            httpx2.AsyncClient(timeout=httpx2.Timeout(120.0)) as http,
            Client(streamable_http_client(url, http_client=http)) as client,  # type: ignore[arg-type]
        ):
            for n in queue:
                tool, args = workload(n, vmids)
                started = time.perf_counter()
                result = await client.call_tool(tool, args)
                latencies.append(time.perf_counter() - started)
                errors += bool(result.is_error)

    began = time.perf_counter()
    with anyio.fail_after(DEADLINE_S):
        async with anyio.create_task_group() as tg:
            for _ in range(concurrency):
                tg.start_soon(worker)
    elapsed = time.perf_counter() - began
    ordered = sorted(latencies)
    return {
        "calls": len(latencies),
        "errors": errors,
        "calls_s": len(latencies) / elapsed,
        "p50_ms": statistics.median(ordered) * 1000,
        "p99_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000,
    }


async def run(calls: int, concurrency: int) -> None:
    with tempfile.TemporaryDirectory(prefix="pvemcp-bench-") as scratch, running_postgres() as db_url:
        tmp = Path(scratch)
        for name in ("audit.key", "secret.key"):
            (tmp / name).write_text(secrets.token_hex(32))
            (tmp / name).chmod(0o600)
        async with running_simulator(seed=1, task_speed=50.0) as sim:
            env = subprocess_env(
                **cluster_env(sim),
                PVEMCP_STATE_URL=db_url,
                PVEMCP_AUDIT_KEY_FILE=str(tmp / "audit.key"),
                PVEMCP_SECRET_KEY_FILE=str(tmp / "secret.key"),
                PVEMCP_CACHE_DIR=str(tmp / "cache"),
            )
            vmids = sorted(v for v, g in sim.state.guests.items() if not g.template)
            async with running_replicas(env, 3, tmp) as replicas:
                one = await measure(replicas[0].url, calls, concurrency, vmids)
                with running_haproxy([r.port for r in replicas], tmp / "haproxy.log") as lb:
                    three = await measure(f"http://127.0.0.1:{lb}/mcp", calls, concurrency, vmids)
    print(f"{calls} calls, {concurrency} at a time, state in PostgreSQL; reads and dry runs, nothing sent\n")
    print("| | 1 replica (direct) | 3 replicas (HAProxy) | ratio |\n|---|---:|---:|---:|")
    for key, label, fmt in (
        ("calls_s", "calls/s", "{:.0f}"),
        ("p50_ms", "p50 latency", "{:.1f} ms"),
        ("p99_ms", "p99 latency", "{:.1f} ms"),
        ("errors", "errors", "{:.0f}"),
    ):
        ratio = f"{three[key] / one[key]:.2f}×" if one[key] else "n/a"
        print(f"| {label} | {fmt.format(one[key])} | {fmt.format(three[key])} | {ratio} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--calls", type=int, default=600, help="calls per configuration")
    parser.add_argument("--concurrency", type=int, default=24, help="calls in flight at once")
    args = parser.parse_args(argv)
    anyio.run(run, args.calls, args.concurrency, backend="asyncio")
    return 0


if __name__ == "__main__":
    sys.exit(main())
