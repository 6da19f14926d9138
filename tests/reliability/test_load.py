"""Load: 500 concurrent tool calls over streamable HTTP, twice, with zero errors and bounded memory.

The door is served in-process by uvicorn on a free 127.0.0.1 port (``http_endpoint``, the code path of
``pvemcp serve --http``), in front of the real App and a simulator. 25 client sessions, alternating the
two protocol eras, each fire 20 calls at once, so 500 calls are in flight together; the mix is the
read tools an agent polls with (lists, status, config, snapshots, tasks) plus dry runs of batch
actions, which plan against live state but send nothing.

Asserted: every call answers without ``isError``, nothing mutating reaches the simulator, and the
process's resident memory after the second wave is not materially above the first (no per-call leak;
the bound is deliberately loose, it catches leaks, not allocator noise). Latency percentiles and
memory are *printed* in the terminal summary, never asserted: timings on a shared CI box are noise.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx2
import mcp_types as types
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from pvemcp.door.transports import HttpSettings, http_endpoint
from pvemcp.sim import running_simulator

from .helpers import COUNTS, FIGURES, cluster_env, make_app, mutations, text_of

pytestmark = pytest.mark.anyio

SESSIONS = 25
CALLS_PER_SESSION = 20  # 25 x 20 = 500 calls in flight at once
WAVE_DEADLINE_S = 180.0
LEAK_BOUND_MB = 64.0  # growth allowed from the first wave's peak to the second's


def rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


@asynccontextmanager
async def session(url: str, mode: str) -> AsyncIterator[Client]:
    limits = httpx2.Limits(max_connections=CALLS_PER_SESSION + 2)
    async with (
        httpx2.AsyncClient(timeout=httpx2.Timeout(120.0), limits=limits) as http,
        Client(streamable_http_client(url, http_client=http), mode=mode) as client,
    ):
        yield client


def workload(vmids: list[int], nodes: list[str], upids: list[str]) -> list[tuple[str, dict[str, Any]]]:
    """The calls of one session: cycle through reads and dry runs over real identifiers."""
    calls: list[tuple[str, dict[str, Any]]] = []
    for i in range(CALLS_PER_SESSION):
        vmid = vmids[i % len(vmids)]
        choice = i % 10
        options: list[tuple[str, dict[str, Any]]] = [
            ("guest_list", {}),
            ("guest_status", {"vmid": vmid}),
            ("guest_config", {"vmid": vmid}),
            ("snapshot_list", {"vmid": vmid}),
            ("cluster_status", {}),
            ("storage_list", {}),
            ("task_list", {"limit": 10}),
            ("node_status", {"node": nodes[i % len(nodes)]}),
            ("guest_start", {"vmids": vmids[:5], "dry_run": True}),
            ("task_status", {"upid": upids[i % len(upids)]}),
        ]
        calls.append(options[choice])
    return calls


async def wave(url: str, calls: list[tuple[str, dict[str, Any]]]) -> tuple[list[float], list[str]]:
    """SESSIONS sessions, each firing all its calls at once; returns latencies (ms) and failures."""
    latencies: list[float] = []
    failures: list[str] = []

    async def one(client: Client, tool: str, args: dict[str, Any]) -> None:
        start = time.perf_counter()
        try:
            result: types.CallToolResult = await client.call_tool(tool, args)
        except Exception as exc:  # any protocol or transport failure is an error of the run
            failures.append(f"{tool}: {exc!r}")
            return
        latencies.append((time.perf_counter() - start) * 1000.0)
        if result.is_error:
            failures.append(f"{tool}({args}): {text_of(result)[:200]}")

    async def run_session(index: int) -> None:
        async with session(url, "legacy" if index % 2 == 0 else "auto") as client, anyio.create_task_group() as tg:
            for tool, args in calls:
                tg.start_soon(one, client, tool, args)

    with anyio.fail_after(WAVE_DEADLINE_S):
        async with anyio.create_task_group() as tg:
            for index in range(SESSIONS):
                tg.start_soon(run_session, index)
    return latencies, failures


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def test_500_concurrent_calls_over_streamable_http(tmp_path: Path) -> None:
    async with running_simulator(seed=11, guests=40, task_speed=50.0) as sim:
        app = make_app(cluster_env(sim))
        settings = HttpSettings(host="127.0.0.1", port=0)
        async with http_endpoint(app, settings) as endpoint:
            vmids = sorted(v for v, g in sim.state.guests.items() if not g.template)
            upids = [str(t.upid) for t in sim.sim.tasks.all()][:10]
            calls = workload(vmids, sorted(sim.state.nodes), upids)
            gc.collect()
            rss_start = rss_mb()
            started = time.perf_counter()
            first, first_failures = await wave(endpoint.url, calls)
            wall = time.perf_counter() - started
            gc.collect()
            rss_first = rss_mb()
            second, second_failures = await wave(endpoint.url, calls)
            gc.collect()
            rss_second = rss_mb()
    total = len(first) + len(second)
    COUNTS["load: tool calls over streamable HTTP"] += total + len(first_failures) + len(second_failures)
    both = first + second
    FIGURES["load: latency p50 / p99 (wave 1)"] = f"{percentile(first, 0.5):.0f} / {percentile(first, 0.99):.0f} ms"
    FIGURES["load: latency p50 / p99 (wave 2)"] = f"{percentile(second, 0.5):.0f} / {percentile(second, 0.99):.0f} ms"
    FIGURES["load: latency mean (both waves)"] = f"{statistics.fmean(both):.0f} ms over {len(both)} calls"
    FIGURES["load: wave 1 wall time"] = (
        f"{wall:.1f} s for {SESSIONS * CALLS_PER_SESSION} calls ({SESSIONS * CALLS_PER_SESSION / wall:.0f} calls/s, "
        "one event loop for server, simulator and clients)"
    )
    FIGURES["load: RSS start / after wave 1 / after wave 2"] = (
        f"{rss_start:.0f} / {rss_first:.0f} / {rss_second:.0f} MB (test process: server, simulator and clients)"
    )
    assert not first_failures and not second_failures, (first_failures + second_failures)[:10]
    assert len(first) == len(second) == SESSIONS * CALLS_PER_SESSION
    assert not mutations(sim.request_log)
    assert rss_second - rss_first < LEAK_BOUND_MB, f"RSS grew {rss_second - rss_first:.0f} MB between waves"
