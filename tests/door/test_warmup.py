"""The background warm-up (issue #15): after the handshake the server loads what the first call needs,
without ever delaying ``tools/list`` or failing a request because the cluster is slow or gone.

Driven through the official client (legacy era: a real JSON-RPC handshake over the in-memory transport)
against the simulator on loopback HTTPS. The simulator's request log is the witness of what the
server fetched and when; no timing is asserted (``anyio.fail_after`` only guards against hangs).
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import pytest
from mcp import Client

from pvemcp.door._core import App, load_app_config
from pvemcp.door.server import build_server
from pvemcp.sim.runner import RunningSimulator

from .helpers import cluster_env, text_of

pytestmark = pytest.mark.anyio

HANG_GUARD_S = 60.0  # a hang guard, not a timing assertion


def resource_fetches(sim: RunningSimulator) -> int:
    return sum(1 for r in sim.request_log if r.method == "GET" and r.path.endswith("/cluster/resources"))


@asynccontextmanager
async def session(env: dict[str, str]) -> AsyncIterator[Client]:
    app = App(load_app_config(config_path=None, env=env))
    async with app, Client(build_server(app), mode="legacy") as client:
        yield client


async def wait_for(condition: object, what: str) -> None:
    with anyio.fail_after(HANG_GUARD_S):
        while not condition():  # type: ignore[operator]
            await anyio.sleep(0.02)


async def test_warm_up_loads_the_guest_index_that_the_first_calls_share(sim: RunningSimulator) -> None:
    async with session(cluster_env(sim)) as client:
        tools = (await client.list_tools()).tools
        assert any(t.name == "guest_list" for t in tools)
        # No tool was called, yet the server fetched the guest index in the background.
        await wait_for(lambda: resource_fetches(sim) >= 1, "the warm-up's /cluster/resources")

        listing = await client.call_tool("guest_list", {})
        assert not listing.is_error, text_of(listing)
        assert listing.structured_content is not None
        assert listing.structured_content["total"] == len(sim.state.guests)
        vmid = listing.structured_content["items"][0]["vmid"]
        status = await client.call_tool("guest_status", {"vmid": vmid})
        assert not status.is_error, text_of(status)

    # guest_list and the vmid resolution of guest_status used the index the warm-up loaded:
    # one /cluster/resources for the whole session, not one per consumer.
    assert resource_fetches(sim) == 1


async def test_guest_list_sees_our_own_mutation_at_once(sim: RunningSimulator) -> None:
    """The shared index is dropped when we change the cluster, so the list after a start is current."""
    stopped = min(v for v, g in sim.state.guests.items() if g.status == "stopped" and not g.template and g.lock is None)
    async with session(cluster_env(sim)) as client:
        await client.list_tools()
        before = await client.call_tool("guest_list", {"status": "running"})
        assert before.structured_content is not None
        assert stopped not in {g["vmid"] for g in before.structured_content["items"]}
        started = await client.call_tool("guest_start", {"vmid": stopped, "wait": 60})
        assert not started.is_error, text_of(started)
        after = await client.call_tool("guest_list", {"status": "running", "limit": 500})
        assert after.structured_content is not None
        assert stopped in {g["vmid"] for g in after.structured_content["items"]}


async def test_tools_list_answers_while_the_cluster_hangs(sim: RunningSimulator) -> None:
    sim.faults.add("hang", path="*")
    env = cluster_env(sim, PROXMOX_READ_TIMEOUT="2", PROXMOX_CONNECT_TIMEOUT="2")
    async with session(env) as client:
        with anyio.fail_after(HANG_GUARD_S):
            tools = (await client.list_tools()).tools
            assert len(tools) > 20
            # The first call meets the hanging cluster (the warm-up's fetch or its own) and says so.
            hung = await client.call_tool("guest_list", {})
        assert hung.is_error
        assert "no answer from" in text_of(hung), text_of(hung)

        sim.faults.clear()
        with anyio.fail_after(HANG_GUARD_S):
            recovered = await client.call_tool("guest_list", {})
        assert not recovered.is_error, text_of(recovered)
        assert recovered.structured_content is not None
        assert recovered.structured_content["total"] == len(sim.state.guests)


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_unreachable_cluster_does_not_stop_the_listing(sim: RunningSimulator, tmp_path: Path) -> None:
    env = cluster_env(sim, PROXMOX_CONNECT_TIMEOUT="2")
    env["PROXMOX_URL"] = f"https://127.0.0.1:{closed_port()}"
    async with session(env) as client:
        with anyio.fail_after(HANG_GUARD_S):
            tools = (await client.list_tools()).tools
            assert any(t.name == "guest_list" for t in tools)
            result = await client.call_tool("guest_list", {})
        assert result.is_error
        assert "connection refused" in text_of(result), text_of(result)


async def test_the_warm_up_rehearses_one_read_that_changes_nothing(sim: RunningSimulator, tmp_path: Path) -> None:
    """The rehearsal (a one-row guest_list through the whole call path) sends only reads, answered from the
    index the warm-up fetched, and leaves no ledger record; with guest_list not listed there is none."""
    from pvemcp.door.server import Door

    ledger = tmp_path / "audit.jsonl"
    env = cluster_env(sim, PVEMCP_AUDIT_LOG=str(ledger))
    app = App(load_app_config(config_path=None, env=env))
    async with app:
        door = Door(app, caller="stdio")
        before = len(sim.request_log)
        with anyio.fail_after(HANG_GUARD_S):
            await door.warm_up()
            reply = await door.rehearse()
        assert reply is not None and not reply.is_error
        assert reply.structured_content is not None
        assert reply.structured_content["total"] == len(sim.state.guests)
        assert len(reply.structured_content["items"]) == 1
        sent = sim.request_log[before:]
        assert sent and all(r.method == "GET" for r in sent)
        assert resource_fetches(sim) == 1  # both rehearsals used the warm-up's index
    assert not ledger.exists() or ledger.read_text(encoding="utf-8") == ""

    config = tmp_path / "deny.toml"
    config.write_text('[policy.rules]\nguest_list = "deny"\n', encoding="utf-8")
    hidden = App(load_app_config(config_path=config, env=env))
    assert hidden.tool("guest_list") is None
    async with hidden:
        assert await Door(hidden, caller="stdio").rehearse() is None
