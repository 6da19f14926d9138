"""``pvemcp demo --tour``: a scripted session with the official MCP client through the main features.

It is both a demonstration (one readable line per step) and an end-to-end check of the product
path: real streamable HTTP, the 2026-07-28 protocol, elicitation answered by a callback, progress
notifications, and the client's own outputSchema validation of every structured result. Each step
verifies its effect through the tools themselves, the way an assistant would.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx2
import mcp_types as types
from mcp import Client
from mcp.client.context import ClientRequestContext
from mcp.client.streamable_http import streamable_http_client

ANNOTATION_FIELDS = ("read_only_hint", "destructive_hint", "idempotent_hint", "open_world_hint")


class StepFailed(Exception):
    """A tour step did not have the expected effect; the message says what was seen."""


@dataclass
class Elicitor:
    """Answers elicitations as the tour script dictates, and remembers the questions."""

    answer: str = "accept"
    questions: list[str] = field(default_factory=list)

    async def __call__(
        self, context: ClientRequestContext, params: types.ElicitRequestParams
    ) -> types.ElicitResult | types.ErrorData:
        message = getattr(params, "message", "")
        self.questions.append(message)
        if self.answer == "accept":
            return types.ElicitResult(action="accept", content={"confirm": True})
        return types.ElicitResult(action="decline")


@dataclass
class Tour:
    client: Client
    elicitor: Elicitor
    passed: int = 0
    failed: int = 0
    facts: dict[str, Any] = field(default_factory=dict)

    async def step(self, title: str, body: Callable[[], Awaitable[str]]) -> None:
        started = time.monotonic()
        try:
            detail = await body()
        except Exception as exc:  # a failed step is reported, the tour goes on
            self.failed += 1
            print(f"FAIL {title}: {type(exc).__name__}: {exc}", flush=True)
            return
        self.passed += 1
        print(f"ok   {title}: {detail} ({time.monotonic() - started:.2f}s)", flush=True)

    async def call(self, tool: str, arguments: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        result = await self.client.call_tool(tool, arguments, **kwargs)
        text = " ".join(c.text for c in result.content if isinstance(c, types.TextContent))
        if result.is_error:
            raise StepFailed(f"{tool} returned an error: {text}")
        if not isinstance(result.structured_content, dict):
            raise StepFailed(f"{tool} returned no structured content")
        self.facts["last_text"] = text
        return result.structured_content

    async def guest(self, vmid: int) -> dict[str, Any]:
        data = (await self.call("guest_status", {"vmid": vmid})).get("data")
        if not isinstance(data, dict):
            raise StepFailed(f"guest_status {vmid}: no data")
        return data


def _action_ok(result: dict[str, Any]) -> None:
    if result.get("failed"):
        raise StepFailed(f"action failed: {result.get('results')}")
    if "dry_run" in result or "confirmation" in result:
        raise StepFailed(f"action did not run: {sorted(result)}")


async def run_tour(url: str, *, bearer: str | None = None) -> int:
    """Run every step against ``url``; 0 when all passed."""
    elicitor = Elicitor()
    headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(60.0)) as http,
        Client(streamable_http_client(url, http_client=http), elicitation_callback=elicitor) as client,
    ):
        print(f"tour: {url} speaking MCP {client.protocol_version}", flush=True)
        tour = Tour(client, elicitor)
        await _steps(tour)
    print(f"tour: {tour.passed} passed, {tour.failed} failed", flush=True)
    return 0 if tour.failed == 0 else 1


async def _steps(t: Tour) -> None:
    async def list_tools() -> str:
        tools = (await t.client.list_tools()).tools
        missing = [
            tool.name
            for tool in tools
            if tool.annotations is None
            or any(getattr(tool.annotations, f) is None for f in ANNOTATION_FIELDS)
            or tool.output_schema is None
            or not tool.title
        ]
        if missing:
            raise StepFailed(f"tools without title/outputSchema/annotations: {missing}")
        t.facts["tools"] = {tool.name for tool in tools}
        return f"{len(tools)} tools, each with title, outputSchema and all four annotation hints"

    async def list_guests() -> str:
        listing = await t.call("guest_list", {"type": "qemu", "status": "running", "template": False})
        items = listing.get("items") or []
        if not items:
            raise StepFailed("no running VM in the simulated cluster")
        vm = items[0]
        t.facts["vmid"] = int(vm["vmid"])
        t.facts["node"] = vm.get("node", "?")
        everything = await t.call("guest_list", {})
        return f"{everything['total']} guests; {listing['total']} running VMs, using {vm['vmid']} ({vm.get('name')})"

    async def status() -> str:
        data = await t.guest(t.facts["vmid"])
        if data.get("status") != "running":
            raise StepFailed(f"expected running, saw {data.get('status')}")
        return f"VM {t.facts['vmid']} is running on {t.facts['node']}, uptime {data.get('uptime', '?')}"

    async def stop_confirmed() -> str:
        t.elicitor.answer = "accept"
        asked = len(t.elicitor.questions)
        _action_ok(await t.call("guest_stop", {"vmid": t.facts["vmid"]}))
        if len(t.elicitor.questions) == asked:
            raise StepFailed("guest_stop ran without asking for confirmation")
        state = (await t.guest(t.facts["vmid"])).get("status")
        if state != "stopped":
            raise StepFailed(f"expected stopped, saw {state}")
        return f"asked {t.elicitor.questions[-1]!r}, accepted; VM is stopped"

    async def start_with_progress() -> str:
        seen: list[float] = []

        async def progress(done: float, total: float | None, message: str | None) -> None:
            seen.append(done)

        result = await t.call("guest_start", {"vmid": t.facts["vmid"], "wait": 60}, progress_callback=progress)
        _action_ok(result)
        state = (await t.guest(t.facts["vmid"])).get("status")
        if state != "running":
            raise StepFailed(f"expected running, saw {state}")
        return f"started and waited for the task; {len(seen)} progress notification(s)"

    async def snapshot() -> str:
        name = "tour"
        _action_ok(await t.call("snapshot_create", {"vmid": t.facts["vmid"], "snapname": name}))
        snaps = await t.call("snapshot_list", {"vmid": t.facts["vmid"]})
        names = [s.get("name") for s in snaps.get("items", [])]
        if name not in names:
            raise StepFailed(f"snapshot {name} not listed: {names}")
        return f"snapshot {name} taken and listed"

    async def clone() -> str:
        free = (await t.call("next_vmid", {})).get("data")
        newid = int(free["vmid"]) if isinstance(free, dict) and "vmid" in free else int(str(free))
        _action_ok(await t.call("guest_clone", {"vmid": t.facts["vmid"], "newid": newid, "name": "tour-clone"}))
        t.facts["clone"] = newid
        data = await t.guest(newid)
        return f"cloned {t.facts['vmid']} to {newid} ({data.get('name', 'tour-clone')})"

    async def dry_run() -> str:
        target = t.facts.get("clone") or t.facts["vmid"]
        result = await t.call("guest_delete", {"vmid": target, "dry_run": True})
        if "dry_run" not in result:
            raise StepFailed(f"no dry_run section in {sorted(result)}")
        await t.guest(target)  # still exists
        return f"guest_delete {target} previewed, nothing sent, guest still there"

    async def declined() -> str:
        t.elicitor.answer = "decline"
        try:
            result = await t.client.call_tool("guest_stop", {"vmid": t.facts["vmid"]})
        finally:
            t.elicitor.answer = "accept"
        state = (await t.guest(t.facts["vmid"])).get("status")
        if state != "running":
            raise StepFailed(f"declined stop still changed the guest: {state}")
        text = " ".join(c.text for c in result.content if isinstance(c, types.TextContent))
        return f"declined; VM still running ({text})"

    async def resource() -> str:
        listing = await t.client.list_resources()
        if not listing.resources:
            return "no resources listed"
        first = listing.resources[0]
        read = await t.client.read_resource(first.uri)
        size = sum(len(getattr(c, "text", "")) for c in read.contents)
        return f"read {first.uri} ({size} characters)"

    await t.step("list tools", list_tools)
    await t.step("list guests", list_guests)
    if "vmid" not in t.facts:
        return
    await t.step("guest status", status)
    await t.step("stop with confirmation (accepted)", stop_confirmed)
    await t.step("start, waiting with progress", start_with_progress)
    await t.step("snapshot", snapshot)
    await t.step("clone", clone)
    await t.step("dry run", dry_run)
    await t.step("declined confirmation", declined)
    await t.step("resource", resource)
