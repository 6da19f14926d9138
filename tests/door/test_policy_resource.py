"""The effective policy as the model reads it: ``pve://policy`` through the official MCP client, both eras.

A tool that policy hides must be named there with the reason, so that a missing tool never looks like
a tool that was never written; the Proxmox VE version comes from the simulator over loopback HTTPS.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import mcp_types as types
import pytest
from mcp import Client

from pvemcp.door._core import App, load_app_config
from pvemcp.door.server import build_server
from pvemcp.sim.runner import RunningSimulator
from pvemcp.sim.state import PVE_RELEASE, PVE_VERSION

from .helpers import MODES, cluster_env

pytestmark = pytest.mark.anyio


@pytest.fixture(params=sorted(MODES))
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def read_policy(app: App, mode: str) -> tuple[dict[str, Any], list[str], list[str]]:
    async with Client(build_server(app), mode=mode) as client:
        uris = [str(r.uri) for r in (await client.list_resources()).resources]
        tools = [t.name for t in (await client.list_tools()).tools]
        result = await client.read_resource("pve://policy")
    content = result.contents[0]
    assert isinstance(content, types.TextResourceContents) and content.mime_type == "application/json"
    return json.loads(content.text), uris, tools


async def test_policy_resource_matches_the_listing(app: App, audit_log: Path, mode: str) -> None:
    policy, uris, tools = await read_policy(app, mode)
    assert "pve://policy" in uris
    assert policy["tools"]["listed"] == tools
    # hidden: only the opt-in toolsets' tools, each with the toolset that would list it
    opt_in = {t.name: t.toolset for t in app.catalog.tools.values() if t.toolset not in app.catalog.default_toolsets}
    assert {name: why.split(" is not enabled")[0] for name, why in policy["tools"]["hidden"].items()} == {
        name: f"toolset {toolset}" for name, toolset in opt_in.items()
    }
    assert policy["pve"] == {"default": {"reachable": True, "version": PVE_VERSION, "release": PVE_RELEASE}}
    assert policy["audit"]["log"] == str(audit_log) and policy["audit"]["ok"] is True
    assert policy["rules"]["destructive"] == "confirm"


@pytest.fixture
async def read_only_app(sim: RunningSimulator, audit_log: Path) -> AsyncIterator[App]:
    env = cluster_env(sim, PVEMCP_AUDIT_LOG=str(audit_log), PVEMCP_READ_ONLY="1", PVEMCP_TOOLSETS="guests,tasks")
    async with App(load_app_config(config_path=None, env=env)) as instance:
        yield instance


async def test_hidden_tools_are_named_with_what_hides_them(read_only_app: App, mode: str) -> None:
    policy, _, tools = await read_policy(read_only_app, mode)
    hidden = policy["tools"]["hidden"]
    assert "guest_delete" not in tools
    assert hidden["guest_delete"] == "read_only: destructive tools are hidden and refused"
    assert hidden["snapshot_list"] == "toolset snapshots is not enabled (policy.toolsets: guests, tasks)"
    assert policy["read_only"] is True and policy["toolsets"]["enabled"] == ["guests", "tasks"]
    assert set(tools) | set(hidden) == set(read_only_app.catalog.tools)


async def test_unreachable_cluster_is_reported_not_raised(tmp_path: Path, mode: str) -> None:
    env = {
        "PROXMOX_URL": "https://127.0.0.1:9",
        "PROXMOX_TOKEN_ID": "pvemcp@pve!mcp",
        "PROXMOX_TOKEN_SECRET": "never-accepted",
        "PROXMOX_CONNECT_TIMEOUT": "2",
    }
    async with App(load_app_config(config_path=None, env=env)) as unreachable:
        policy, _, tools = await read_policy(unreachable, mode)
    assert policy["pve"]["default"]["reachable"] is False and policy["pve"]["default"]["error"]
    assert policy["tools"]["listed"] == tools
