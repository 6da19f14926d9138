"""Adversarial guardrail tests: attempts to get a mutation past the policy.

The witness is the simulator's request log: every attempt here must leave zero mutating requests.
Elicitation forgery (pre-filled input_responses, forged or replayed request_state) and HTTP auth are
attacked through real MCP clients in tests/door; tampering with the ledger in tests/policy.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from pvemcp.core.app import App
from pvemcp.core.config import AppConfig
from pvemcp.core.policy.config import PolicyConfig
from pvemcp.core.policy.confirm import ConfirmationStore
from pvemcp.core.pve.config import ClientConfig
from pvemcp.core.tools.base import CallContext, ToolResult, UnknownTool
from pvemcp.sim import running_simulator

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def sim() -> AsyncIterator[Any]:
    async with running_simulator(seed=3, task_speed=200.0) as simulator:
        yield simulator


def config(sim: Any, policy: dict[str, Any] | None = None) -> AppConfig:
    cluster = ClientConfig(
        url=sim.url, token_id=sim.token_id, token_secret=sim.token_secret, fingerprint=sim.fingerprint
    )
    return AppConfig(clusters={"default": cluster}, policy=PolicyConfig.from_mapping(policy or {}))


def mutations(sim: Any) -> list[Any]:
    return [r for r in sim.request_log if r.method != "GET"]


def running_guest(sim: Any) -> Any:
    return next(g for _, g in sorted(sim.state.guests.items()) if g.status == "running" and not g.template)


async def result(app: App, tool: str, args: dict[str, Any], caller: str = "agent") -> ToolResult:
    outcome = await app.call(tool, args, CallContext(caller=caller))
    assert isinstance(outcome, ToolResult), outcome
    return outcome


async def test_expired_token_is_refused(sim: Any) -> None:
    now = [1000.0]
    store = ConfirmationStore(ttl_s=300, clock=lambda: now[0])
    guest = running_guest(sim)
    async with App(config(sim), confirmations=store) as app:
        preview = await result(app, "guest_stop", {"vmid": guest.vmid})
        token = preview.structured["confirmation"]["confirm_token"]
        now[0] += 301
        late = await result(app, "guest_stop", {"vmid": guest.vmid, "confirm_token": token})
        assert late.is_error and "expired" in late.text
    assert not mutations(sim)


async def test_token_of_another_caller_or_tool_is_refused(sim: Any) -> None:
    guest = running_guest(sim)
    async with App(config(sim)) as app:
        preview = await result(app, "guest_stop", {"vmid": guest.vmid}, caller="alice")
        token = preview.structured["confirmation"]["confirm_token"]
        stolen = await result(app, "guest_stop", {"vmid": guest.vmid, "confirm_token": token}, caller="mallory")
        assert stolen.is_error
        other_tool = await result(app, "guest_delete", {"vmid": guest.vmid, "confirm_token": token}, caller="alice")
        assert other_tool.is_error
        forged = await result(app, "guest_stop", {"vmid": guest.vmid, "confirm_token": "A" * 46}, caller="alice")
        assert forged.is_error
    assert not mutations(sim)


@pytest.mark.parametrize(
    "path",
    [
        "/api2/json/nodes/{node}/{kind}/{vmid}/status/stop",  # the full URL's prefix: still a stop
        "/nodes/{node}/{kind}/{vmid}/status/stop",
    ],
)
async def test_destructive_endpoints_through_the_generic_tool_need_confirmation(sim: Any, path: str) -> None:
    guest = running_guest(sim)
    concrete = path.format(node=guest.node, kind=guest.type, vmid=guest.vmid)
    async with App(config(sim)) as app:
        preview = await result(app, "api_call", {"method": "POST", "path": concrete})
        assert preview.structured["confirmation"]["required"], preview.text
        lower = await result(app, "api_call", {"method": "post", "path": concrete})
        assert lower.is_error
    assert not mutations(sim)


@pytest.mark.parametrize(
    "path",
    ["/nodes/{node}/{kind}/{vmid}/status/%2e%2e/status/stop", "/nodes/{node}/{kind}/{vmid}/./status/stop", "//version"],
)
async def test_encoded_and_dotted_paths_are_refused(sim: Any, path: str) -> None:
    guest = running_guest(sim)
    async with App(config(sim)) as app:
        refused = await result(
            app, "api_call", {"method": "POST", "path": path.format(node=guest.node, kind=guest.type, vmid=guest.vmid)}
        )
        assert refused.is_error and "path" in refused.text
    assert not mutations(sim)


async def test_read_only_cannot_be_bypassed(sim: Any) -> None:
    guest = running_guest(sim)
    async with App(config(sim, {"read_only": True})) as app:
        listed = {t.name for t in app.tools()}
        assert "api_get" in listed and not [t.name for t in app.tools() if not t.annotations["readOnlyHint"]]
        for tool in ("guest_stop", "guest_config_set", "snapshot_rollback", "guest_delete", "api_call"):
            assert isinstance(await app.call(tool, {"vmid": guest.vmid}, CallContext()), UnknownTool)
        stop = f"/nodes/{guest.node}/{guest.type}/{guest.vmid}/status/stop"
        for args in (
            {"method": "POST", "path": stop},
            {"method": "POST", "path": stop, "dry_run": False, "confirm_token": "x" * 46},
            {"method": "DELETE", "path": f"/nodes/{guest.node}/{guest.type}/{guest.vmid}"},
        ):
            assert isinstance(await app.call("api_call", args, CallContext()), UnknownTool)
            # The read tool takes no method: a mutation cannot be smuggled through it.
            smuggled = await result(app, "api_get", args)
            assert smuggled.is_error and "method" in smuggled.text
        read = await result(app, "api_get", {"path": f"/nodes/{guest.node}/{guest.type}/{guest.vmid}/status/current"})
        assert not read.is_error and read.structured["data"]["status"] == "running"
    assert not mutations(sim)


async def test_scope_covers_target_nodes_new_ids_and_batches(sim: Any) -> None:
    guests = [g for _, g in sorted(sim.state.guests.items()) if not g.template]
    home = guests[0].node
    others = sorted({g.node for g in sim.state.guests.values()} - {home})
    template = next(g for _, g in sorted(sim.state.guests.items()) if g.template and g.node == home)
    policy = {"scope": {"nodes": [home], "vmid_ranges": [[100, 5000]]}}
    async with App(config(sim, policy)) as app:
        to_other_node = await result(app, "guest_clone", {"vmid": template.vmid, "newid": 4000, "target": others[0]})
        assert to_other_node.is_error and "scope" in to_other_node.text
        high_id = await result(app, "guest_clone", {"vmid": template.vmid, "newid": 6000})
        assert high_id.is_error and "scope" in high_id.text
        create_elsewhere = await result(app, "vm_create", {"node": others[0], "vmid": 4001})
        assert create_elsewhere.is_error and "scope" in create_elsewhere.text
        foreign = next(g for g in guests if g.node != home)
        mixed = await result(app, "guest_start", {"vmids": [guests[0].vmid, foreign.vmid]})
        assert mixed.is_error and str(foreign.vmid) in mixed.text
        generic = await result(
            app,
            "api_call",
            {"method": "POST", "path": f"/nodes/{foreign.node}/{foreign.type}/{foreign.vmid}/status/start"},
        )
        assert generic.is_error and "scope" in generic.text
        migrate = await result(
            app,
            "api_call",
            {
                "method": "POST",
                "path": f"/nodes/{home}/{guests[0].type}/{guests[0].vmid}/migrate",
                "args": {"target": others[0]},
            },
        )
        assert migrate.is_error and "scope" in migrate.text
        by_tag = await result(app, "guest_list", {"limit": 500})
        assert all(item["node"] == home for item in by_tag.structured["items"])
    assert not mutations(sim)


async def test_denied_tool_is_neither_listed_nor_callable(sim: Any) -> None:
    guest = running_guest(sim)
    async with App(config(sim, {"rules": {"guest_delete": "deny", "destructive": "deny"}})) as app:
        names = {t.name for t in app.tools()}
        assert "guest_delete" not in names and "guest_stop" not in names
        assert isinstance(await app.call("guest_delete", {"vmid": guest.vmid}, CallContext()), UnknownTool)
        generic = await result(
            app, "api_call", {"method": "POST", "path": f"/nodes/{guest.node}/{guest.type}/{guest.vmid}/status/stop"}
        )
        assert generic.is_error and "refused by policy" in generic.text
    assert not mutations(sim)


async def test_confirm_fallback_deny_requires_elicitation(sim: Any) -> None:
    guest = running_guest(sim)
    async with App(config(sim, {"confirm_fallback": "deny"})) as app:
        refused = await result(app, "guest_stop", {"vmid": guest.vmid})
        assert refused.is_error and "cannot ask" in refused.text
    assert not mutations(sim)
