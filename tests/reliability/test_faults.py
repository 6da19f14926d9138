"""Faults injected in the simulator: every call ends in time with a result or a clear error, and no
mutation is ever sent twice.

Each scenario gets a fresh simulator and the real App behind the MCP door, driven in-memory by the
official client (legacy era: real JSON-RPC framing). Timeouts are shortened through the same
``PROXMOX_*_TIMEOUT`` variables an operator would use, so a hang costs seconds, not minutes. Every call
runs under a hang guard (``CALL_DEADLINE_S``, far above what the configured timeouts and retries
allow): it checks that the call *ends*, not how fast.

"A clear error" means: ``isError``, not the door's internal-error fallback, and a text that says what
happened (the status or Proxmox's message, a timeout, a reset, an offline node).

"Sent twice" is judged on the simulator's request log: the same mutating (method, path) reaching it
twice. A request answered 401 is excluded: PVE refuses it before any handler runs, which is why a
client may (and pvemcp does) resend it once after renewing the ticket.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp import Client

from pvemcp.door.server import build_server
from pvemcp.sim import running_simulator
from pvemcp.sim.runner import RunningSimulator

from .helpers import COUNTS, cluster_env, make_app, mutations, text_of, ticket_env

pytestmark = pytest.mark.anyio

CALL_DEADLINE_S = 45.0
FAST_TIMEOUTS = {"PROXMOX_READ_TIMEOUT": "1.5", "PROXMOX_MUTATE_TIMEOUT": "2", "PROXMOX_CONNECT_TIMEOUT": "2"}


@dataclass
class Rig:
    """One simulator, the App behind the door, and a client; ``call`` is the guarded tools/call."""

    sim: RunningSimulator
    client: Client

    async def call(self, tool: str, args: dict[str, Any]) -> types.CallToolResult:
        with anyio.fail_after(CALL_DEADLINE_S):  # a hang guard: the call must end, however it ends
            result = await self.client.call_tool(tool, args)
        COUNTS["faults: tool calls under injected faults"] += 1
        assert "internal error" not in text_of(result).lower(), text_of(result)
        return result

    def guest(self, *, status: str, kind: str = "qemu", node: str | None = None, skip: tuple[int, ...] = ()) -> int:
        """The lowest vmid of an unlocked, non-template guest in ``status`` (optionally on ``node``)."""
        for vmid, guest in sorted(self.sim.state.guests.items()):
            if vmid in skip or guest.type != kind or guest.status != status or guest.template or guest.lock:
                continue
            if node is None or guest.node == node:
                return vmid
        raise LookupError(f"no {status} {kind} guest" + (f" on {node}" if node else ""))

    def sent(self, method: str, suffix: str) -> list[Any]:
        return [r for r in self.sim.request_log if r.method == method and r.path.endswith(suffix)]


def never_sent_twice(sim: RunningSimulator) -> None:
    executed = Counter((r.method, r.path) for r in mutations(sim.request_log) if r.status != 401)
    twice = sorted(key for key, n in executed.items() if n > 1)
    assert not twice, f"mutations sent more than once: {twice}"


@asynccontextmanager
async def rig(tmp_path: Path, *, ticket: bool = False, task_speed: float = 50.0) -> AsyncIterator[Rig]:
    async with running_simulator(seed=5, guests=16, task_speed=task_speed) as sim:
        env = (ticket_env if ticket else cluster_env)(sim, **FAST_TIMEOUTS)
        app = make_app(env)
        async with app, Client(build_server(app, caller="faults"), mode="legacy") as client:
            yield Rig(sim, client)
    # Checked after the simulator stopped: a hung request is logged only when its connection ends.
    never_sent_twice(sim)
    COUNTS["faults: scenarios"] += 1


def assert_clear_error(result: types.CallToolResult, *words: str) -> str:
    """An ``isError`` answer whose text carries at least one of ``words`` (case-insensitive)."""
    text = text_of(result)
    assert result.is_error, f"expected an error, got: {text}"
    assert any(w.lower() in text.lower() for w in words), f"the error does not say {words}: {text}"
    return text


def item_of(result: types.CallToolResult) -> dict[str, Any]:
    structured = result.structured_content or {}
    if "results" in structured:
        (item,) = structured["results"]
        return dict(item)
    return dict(structured.get("data") or {})


# ------------------------------------------------------------------------------------------------ 5xx


async def test_500_on_a_read_is_reported_not_retried(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        r.sim.faults.add("error", path="/cluster/resources", method="GET", count=1, status=500, message="boom")
        assert_clear_error(await r.call("guest_list", {}), "500", "boom")
        assert len(r.sent("GET", "/cluster/resources")) == 1
        again = await r.call("guest_list", {})
        assert not again.is_error, text_of(again)


async def test_transient_503_on_a_read_is_retried(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        r.sim.faults.add("error", path="/cluster/resources", method="GET", count=2, status=503)
        result = await r.call("guest_list", {})
        assert not result.is_error, text_of(result)
        assert len(r.sent("GET", "/cluster/resources")) == 3


async def test_503_on_a_start_is_not_resent(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        vmid = r.guest(status="stopped")
        r.sim.faults.add("error", path=f"/nodes/*/qemu/{vmid}/status/start", method="POST", count=3, status=503)
        result = await r.call("guest_start", {"vmid": vmid})
        assert not item_of(result).get("ok", False) or result.is_error, text_of(result)
        assert "503" in text_of(result)
        assert len(r.sent("POST", f"/{vmid}/status/start")) == 1


# --------------------------------------------------------------------------------------------- resets


async def test_reset_on_a_read_is_retried(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        vmid = r.guest(status="running")
        await r.call("guest_status", {"vmid": vmid})  # resolve the guest first: only the status read is faulted
        r.sim.faults.add("reset", path=f"/nodes/*/qemu/{vmid}/status/current", method="GET", count=1)
        result = await r.call("guest_status", {"vmid": vmid})
        assert not result.is_error, text_of(result)
        assert len(r.sent("GET", f"/{vmid}/status/current")) == 3


async def test_reset_on_a_mutation_is_not_resent_and_says_it_may_have_happened(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        vmid = r.guest(status="stopped")
        r.sim.faults.add("reset", path=f"/nodes/*/qemu/{vmid}/status/start", method="POST", count=5)
        result = await r.call("guest_start", {"vmid": vmid})
        text = text_of(result)
        assert not item_of(result).get("ok", False) or result.is_error, text
        assert "may have reached" in text or "check" in text.lower(), text
        assert len(r.sent("POST", f"/{vmid}/status/start")) == 1


# ---------------------------------------------------------------------------------------------- hangs


async def test_hung_read_times_out_with_a_clear_error(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        vmid = r.guest(status="running")
        await r.call("guest_status", {"vmid": vmid})
        r.sim.faults.add("hang", path=f"/nodes/*/qemu/{vmid}/status/current", method="GET", count=10)
        assert_clear_error(await r.call("guest_status", {"vmid": vmid}), "timed out", "timeout")


async def test_hung_mutation_times_out_and_is_not_resent(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        vmid = r.guest(status="stopped")
        r.sim.faults.add("hang", path=f"/nodes/*/qemu/{vmid}/status/start", method="POST", count=10)
        result = await r.call("guest_start", {"vmid": vmid})
        text = text_of(result)
        assert not item_of(result).get("ok", False) or result.is_error, text
        assert "time" in text.lower(), text
    # the hung request is logged when the simulator closes its connection; a resend would be a second one
    assert len(r.sent("POST", f"/{vmid}/status/start")) == 1


async def test_slow_but_answering_server_is_waited_for(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        r.sim.faults.add("latency", path="*", delay_s=0.3)
        result = await r.call("guest_list", {"status": "running"})
        assert not result.is_error, text_of(result)


# --------------------------------------------------------------------------------------- auth expiry


async def test_expired_ticket_is_renewed_once_and_the_mutation_runs_once(tmp_path: Path) -> None:
    async with rig(tmp_path, ticket=True) as r:
        vmid = r.guest(status="stopped")
        first = await r.call("guest_list", {})
        assert not first.is_error, text_of(first)
        logins = len(r.sent("POST", "/access/ticket"))
        r.sim.expire_tickets()
        result = await r.call("guest_start", {"vmid": vmid})
        assert not result.is_error, text_of(result)
        assert len(r.sent("POST", "/access/ticket")) == logins + 1
        executed = [x for x in r.sent("POST", f"/{vmid}/status/start") if x.status != 401]
        assert len(executed) == 1
        assert r.sim.state.guests[vmid].status == "running"


# -------------------------------------------------------------------------------------- offline node


async def test_offline_node(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        nodes = sorted(r.sim.state.nodes)
        down, up = nodes[-1], nodes[0]
        lost = r.guest(status="stopped", node=down)
        fine = r.guest(status="stopped", node=up)
        r.sim.faults.add("offline_node", node=down)
        listing = await r.call("guest_list", {})
        assert not listing.is_error, text_of(listing)
        assert_clear_error(await r.call("guest_status", {"vmid": lost}), down, "595", "offline", "unreachable")
        batch = await r.call("guest_start", {"vmids": [lost, fine]})
        structured = batch.structured_content or {}
        assert structured.get("ok") == 1 and structured.get("failed") == 1, text_of(batch)
        assert r.sim.state.guests[fine].status == "running"
        assert len(r.sent("POST", f"/{lost}/status/start")) <= 1


# ---------------------------------------------------------------------------------------- slow tasks


async def test_slow_task_returns_the_upid_when_the_wait_runs_out(tmp_path: Path) -> None:
    async with rig(tmp_path, task_speed=0.0) as r:  # the task clock is frozen: the start never finishes alone
        vmid = r.guest(status="stopped")
        result = await r.call("guest_start", {"vmid": vmid, "wait": 2})
        item = item_of(result)
        assert not result.is_error, text_of(result)
        assert str(item.get("upid", "")).startswith("UPID:"), item
        assert "task_status" in text_of(result) or item.get("timed_out") or item.get("note"), item
        status = await r.call("task_status", {"upid": item["upid"]})
        assert not status.is_error, text_of(status)
        r.sim.advance_clock(600)
        done = await r.call("task_status", {"upid": item["upid"], "wait": 5})
        assert not done.is_error, text_of(done)
        assert len(r.sent("POST", f"/{vmid}/status/start")) == 1


async def test_flaky_reads_always_end(tmp_path: Path) -> None:
    """Half of all reads fail at random (500s and resets): every call still ends with an answer."""
    async with rig(tmp_path) as r:
        r.sim.faults.add("error", path="/nodes/*", method="GET", rate=0.3, status=503)
        r.sim.faults.add("reset", path="/nodes/*", method="GET", rate=0.2)
        r.sim.faults.add("error", path="/cluster/*", method="GET", rate=0.3, status=500)
        vmids = sorted(r.sim.state.guests)[:8]
        outcomes: Counter[str] = Counter()
        for vmid in vmids:
            for tool in ("guest_status", "guest_config", "snapshot_list"):
                result = await r.call(tool, {"vmid": vmid})
                outcomes["error" if result.is_error else "ok"] += 1
        assert sum(outcomes.values()) == len(vmids) * 3
