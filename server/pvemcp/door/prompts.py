"""MCP prompts: the workflows operators repeat, offered as slash commands by Claude Desktop, Claude Code, VS Code.

A prompt is a message the *user* chooses to send; it holds no logic and grants nothing. Each one names
the tools to use in order, so the assistant drives pvemcp's tools — and every guardrail (confirmation,
scope, read-only, audit) applies exactly as for a hand-written request. A prompt is listed only when
every tool it needs is listed: a read-only server offers the health check and the task investigation,
not provisioning or draining (draining uses the generic ``api_call``, which a read-only server keeps
listed but refuses to mutate with).

Arguments are interpolated into the text, so each is checked against the shape Proxmox gives it (node
name, VMID, UPID, hostname, ...); a bad value is a protocol error naming the argument, never text the
model would read as an instruction.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import mcp_types as types
from mcp.shared.exceptions import MCPError

from pvemcp.dialect.upid import UPID_RE
from pvemcp.door._core import App

# Shapes of the arguments (PVE's own formats: pve-node, pve-vmid, the UPID, pve-storage-id, dns-name).
_NODE = re.compile(r"^[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?$")
_VMID = re.compile(r"^[1-9][0-9]{2,8}$")
_STORAGE = re.compile(r"^[a-zA-Z][a-zA-Z0-9\-_.]*[a-zA-Z0-9]$")
_HOSTNAME = re.compile(r"^(?=.{1,253}$)[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(?:\.[a-zA-Z0-9-]{1,63})*$")
_VOLID = re.compile(r"^[a-zA-Z][a-zA-Z0-9\-_.]*:[A-Za-z0-9/._\-]+$")
_SIZE = re.compile(r"^[1-9][0-9]{1,6}$")


@dataclass(frozen=True)
class Arg:
    name: str
    description: str
    shape: re.Pattern[str]
    example: str
    required: bool = False


@dataclass(frozen=True)
class PromptDef:
    name: str
    title: str
    description: str
    args: tuple[Arg, ...]
    tools: tuple[str, ...]  # every tool the text names; the prompt is listed only if all are
    render: Callable[[Mapping[str, str]], str]
    changes: bool = False  # the workflow changes the cluster: not offered by a read-only server


def _health(a: Mapping[str, str]) -> str:
    scope = f"node {a['node']}" if "node" in a else "every node"
    return (
        f"Run a health check of the Proxmox cluster ({scope}) and report in a short table, worst first.\n"
        "1. `cluster_status`: quorum, nodes online/offline.\n"
        f"2. `node_status` for {scope}: CPU, memory, root disk, load, uptime; flag anything above 85 %.\n"
        "3. `storage_list`: storages that are inactive or more than 85 % full.\n"
        "4. `task_list` with errors=true: failed tasks of the last day, grouped by type.\n"
        "5. `guest_list` with full=true: guests holding a lock (backup, migrate, snapshot, ...) and guests "
        "that are stopped although their tags or pool suggest production.\n"
        "Only read; change nothing. End with the three most important things to fix and how."
    )


def _provision(a: Mapping[str, str]) -> str:
    node = a.get("node", "the node with the most free memory (from `node_status`)")
    template = a.get("template", "the newest Debian or Ubuntu template found by `storage_content` with content=vztmpl")
    storage = a.get("storage", "a storage with rootdir content and free space (from `storage_list`)")
    memory = a.get("memory_mb", "1024")
    return (
        f"Provision an LXC container named {a['hostname']}.\n"
        f"- node: {node}\n- template: {template}\n- root disk storage: {storage}\n- memory: {memory} MB\n"
        "Steps:\n"
        "1. `next_vmid` for a free VMID.\n"
        "2. `ct_create` with dry_run=true first and show me the exact request; then create it for real "
        "(unprivileged, with a network interface on vmbr0 using DHCP unless I say otherwise).\n"
        "3. Wait for the task with `task_status`; if it fails, read `task_log` and explain.\n"
        "4. `guest_start`, then `guest_status` to confirm it runs, and report its VMID and node."
    )


def _investigate(a: Mapping[str, str]) -> str:
    if "upid" in a:
        target = f"the task {a['upid']}"
        first = f"1. `task_status` and `task_log` of {a['upid']}."
    elif "vmid" in a:
        target = f"the latest failed task of guest {a['vmid']}"
        first = f"1. `task_list` with vmid={a['vmid']} and errors=true; take the most recent, then its `task_log`."
    else:
        target = "the most recent failed task"
        first = "1. `task_list` with errors=true; take the most recent, then its `task_log`."
    return (
        f"Investigate {target} on the Proxmox cluster.\n"
        f"{first}\n"
        "2. For a guest task, `guest_status` and `guest_config` of that guest (locks, disks, storage).\n"
        "3. For a storage or backup problem, `storage_list` for free space and state.\n"
        "Explain in plain words what failed and why, quoting the decisive log lines, and propose the fix. "
        "Do not retry or change anything unless I ask."
    )


def _drain(a: Mapping[str, str]) -> str:
    target = f"node {a['target']}" if "target" in a else "the other online nodes, spreading by free memory"
    node = a["node"]
    return (
        f"Prepare node {node} for maintenance by moving its running guests to {target}.\n"
        f"1. `guest_list` filtered to node {node}, and `cluster_status` to see which nodes are online.\n"
        "2. Present the plan first: one line per guest (VMID, name, type, target node) and wait for my go.\n"
        f"3. For each VM: `api_call` POST /nodes/{node}/qemu/VMID/migrate with target=NODE and online=1; "
        f"for each container: POST /nodes/{node}/lxc/VMID/migrate with target=NODE and restart=1. "
        "Use dry_run=true once to show the request; confirm each migration when asked.\n"
        "4. Follow every migration with `task_status` until it ends; on failure read `task_log`, stop and report.\n"
        f"5. Finally `guest_list` for node {node} again: it must show no running guest. "
        "Do not shut down, reboot or update the node itself."
    )


PROMPTS: tuple[PromptDef, ...] = (
    PromptDef(
        "cluster_health",
        "Cluster health check",
        "Quorum, nodes, storage, failed tasks and stuck guests, summarised worst first (read only).",
        (Arg("node", "only this node (default: all)", _NODE, "pve1"),),
        ("cluster_status", "node_status", "storage_list", "task_list", "guest_list"),
        _health,
    ),
    PromptDef(
        "provision_container",
        "Provision a container",
        "Create, start and verify an LXC container, previewing the request first.",
        (
            Arg("hostname", "hostname of the new container", _HOSTNAME, "web-03", required=True),
            Arg("node", "node to create it on", _NODE, "pve1"),
            Arg("template", "ostemplate volid", _VOLID, "local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst"),
            Arg("storage", "storage for the root disk", _STORAGE, "local-lvm"),
            Arg("memory_mb", "memory in MB", _SIZE, "1024"),
        ),
        (
            *("node_status", "storage_content", "storage_list", "next_vmid", "ct_create"),
            *("task_status", "task_log", "guest_start", "guest_status"),
        ),
        _provision,
        changes=True,
    ),
    PromptDef(
        "investigate_task",
        "Investigate a failed task",
        "Find a failed task (by UPID, by guest, or the latest), read its log and explain the cause.",
        (
            Arg("upid", "the task's UPID", UPID_RE, "UPID:pve1:0000A1B2:0001C3D4:67890ABC:qmstart:100:root@pam:"),
            Arg("vmid", "a guest whose latest failed task to look at", _VMID, "100"),
        ),
        ("task_status", "task_log", "task_list", "guest_status", "guest_config", "storage_list"),
        _investigate,
    ),
    PromptDef(
        "drain_node",
        "Drain a node for maintenance",
        "Plan and run the migration of a node's running guests elsewhere, one confirmed step at a time.",
        (
            Arg("node", "the node to empty", _NODE, "pve2", required=True),
            Arg("target", "move everything to this node (default: spread)", _NODE, "pve1"),
        ),
        ("guest_list", "cluster_status", "api_call", "task_status", "task_log"),
        _drain,
        changes=True,
    ),
)


class PromptDoor:
    """``prompts/list`` and ``prompts/get`` for one App: only prompts whose tools the App lists."""

    def __init__(self, app: App, prompts: Sequence[PromptDef] = PROMPTS) -> None:
        self._app = app
        self._all = {p.name: p for p in prompts}

    def available(self) -> list[PromptDef]:
        listed = {t.name for t in self._app.tools()}
        read_only = self._app.config.policy.read_only
        return [p for p in self._all.values() if set(p.tools) <= listed and not (p.changes and read_only)]

    def listing(self) -> list[types.Prompt]:
        return [
            types.Prompt(
                name=p.name,
                title=p.title,
                description=p.description,
                arguments=[
                    types.PromptArgument(
                        name=a.name, description=f"{a.description}, e.g. {a.example}", required=a.required
                    )
                    for a in p.args
                ],
            )
            for p in self.available()
        ]

    def get(self, name: str, arguments: Mapping[str, str] | None) -> types.GetPromptResult:
        prompt = next((p for p in self.available() if p.name == name), None)
        if prompt is None:
            raise MCPError(code=types.INVALID_PARAMS, message=f"Unknown prompt: {name}")
        given = {k: str(v).strip() for k, v in (arguments or {}).items() if str(v).strip()}
        known = {a.name: a for a in prompt.args}
        unknown = sorted(set(given) - set(known))
        if unknown:
            raise MCPError(code=types.INVALID_PARAMS, message=f"{name}: unknown argument {unknown[0]!r}")
        for arg in prompt.args:
            if arg.required and arg.name not in given:
                raise MCPError(code=types.INVALID_PARAMS, message=f"{name}: argument {arg.name!r} is required")
            if arg.name in given and not arg.shape.match(given[arg.name]):
                raise MCPError(
                    code=types.INVALID_PARAMS,
                    message=f"{name}: {arg.name}={given[arg.name][:60]!r} is not a valid {arg.description} "
                    f"(e.g. {arg.example})",
                )
        text = prompt.render(given)
        return types.GetPromptResult(
            description=prompt.description,
            messages=[types.PromptMessage(role="user", content=types.TextContent(text=text))],
        )
