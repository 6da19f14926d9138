"""MCP resources, door-neutral: what an assistant may read without a tool call.

Reads go through the App's tools, so scope and policy apply to resources exactly as to tool calls.
``pve://policy`` is the effective policy (:mod:`pvemcp.core.policy.effective`): what is listed, what
is hidden and by what, what needs confirmation, the scope, the Proxmox VE version.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pvemcp.core.policy.effective import POLICY_URI, describe_policy, pve_versions
from pvemcp.core.tools.base import CallContext, ToolResult

if TYPE_CHECKING:
    from pvemcp.core.app import App

_GUEST_CONFIG = re.compile(r"^pve://guests/([1-9][0-9]{2,8})/config$")
_CONTEXT = CallContext(caller="resource")


@dataclass(frozen=True)
class ResourceView:
    uri: str
    name: str
    description: str
    mime_type: str = "application/json"
    template: bool = False


def list_resources() -> list[ResourceView]:
    return [
        ResourceView("pve://cluster/overview", "cluster-overview", "Nodes, quorum and guest counts by state."),
        ResourceView(
            POLICY_URI,
            "policy",
            "The operator's policy in force: read-only, toolsets, tools hidden and why, rules, scope, "
            "confirmation, audit log, Proxmox VE version.",
        ),
        ResourceView(
            "pve://guests/{vmid}/config", "guest-config", "A guest's configuration (with digest).", template=True
        ),
    ]


async def _tool_data(app: App, tool: str, args: dict[str, object]) -> object:
    result = await app.call(tool, args, _CONTEXT)
    if not isinstance(result, ToolResult) or result.is_error:
        raise ValueError(getattr(result, "text", f"{tool} is not available"))
    return result.structured.get("data", result.structured)


async def read_resource(app: App, uri: str) -> str:
    """The JSON text of a resource; ValueError for an unknown URI or a refused read."""
    if uri == "pve://cluster/overview":
        status = await _tool_data(app, "cluster_status", {})
        listing = await _tool_data(app, "guest_list", {"limit": 500})
        counts: dict[str, int] = {}
        for guest in listing.get("items", []) if isinstance(listing, dict) else []:
            key = f"{guest.get('type')}:{guest.get('status')}"
            counts[key] = counts.get(key, 0) + 1
        return json.dumps({"cluster": status, "guests": counts}, sort_keys=True)
    if uri == POLICY_URI:
        return json.dumps(describe_policy(app, await pve_versions(app)), sort_keys=True)
    match = _GUEST_CONFIG.match(uri)
    if match:
        return json.dumps(await _tool_data(app, "guest_config", {"vmid": int(match.group(1))}), sort_keys=True)
    raise ValueError(f"unknown resource {uri}")
