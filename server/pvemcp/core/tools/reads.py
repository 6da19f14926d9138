"""Read-only tools: lists that are cluster-wide, filtered, paginated and compact by default."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Mapping
from typing import Any

from pvemcp.core.pve.errors import PveError
from pvemcp.core.tools.args import check_against_operation, path_arguments, task_node
from pvemcp.core.tools.base import JsonDict, RunContext, ToolResult
from pvemcp.core.tools.guests import resolve_targets

DEFAULT_LIMIT = 50
_COMPACT_GUEST = ("vmid", "name", "type", "node", "status")
_OPTIONAL_GUEST = ("tags", "pool", "template", "lock")

GuestFilter = Callable[[Mapping[str, Any]], bool]


def page(rc: RunContext, items: list[Any], noun: str) -> ToolResult:
    """Slice a list by offset/limit and say how many there are in all (read scope applied first)."""
    if rc.visible is not None:
        items = [i for i in items if not isinstance(i, Mapping) or rc.visible(i)]
    offset = int(rc.args.get("offset") or 0)
    limit = int(rc.args.get("limit") or DEFAULT_LIMIT)
    chunk = items[offset : offset + limit]
    next_offset = offset + limit if offset + limit < len(items) else None
    more = f"; next offset {next_offset}" if next_offset is not None else ""
    text = f"{len(chunk)} of {len(items)} {noun}{more}"
    structured: JsonDict = {"items": chunk, "total": len(items), "offset": offset}
    if next_offset is not None:
        structured["next_offset"] = next_offset
    return ToolResult(structured, text)


def _compact_guest(entry: Mapping[str, Any], node: str | None = None) -> JsonDict:
    row: JsonDict = {k: entry[k] for k in _COMPACT_GUEST if k in entry}
    row.setdefault("type", entry.get("type") or "qemu")
    if node and "node" not in row:
        row["node"] = node
    row["vmid"] = int(row.get("vmid", 0))
    for key in _OPTIONAL_GUEST:
        value = entry.get(key)
        if value not in (None, "", 0):
            row[key] = value
    return row


async def guest_list(rc: RunContext, visible: GuestFilter) -> ToolResult:
    args = rc.args
    rows: list[JsonDict] = []
    if args.get("node"):
        node = args["node"]
        for kind in ("qemu", "lxc"):
            if args.get("type") in (None, kind):
                for entry in await rc.client.get(f"/nodes/{{node}}/{kind}", path={"node": node}):
                    rows.append({**entry, "type": kind, "node": node})
    else:
        rows = [dict(e) for e in await rc.client.get("/cluster/resources", params={"type": "vm"})]
    pattern = args.get("name")
    tag = args.get("tag")

    def keep(entry: Mapping[str, Any]) -> bool:
        tags = str(entry.get("tags") or "").replace(",", ";").split(";")
        return (
            (args.get("type") is None or entry.get("type") == args["type"])
            and (args.get("status") is None or entry.get("status") == args["status"])
            and (tag is None or tag in tags)
            and (args.get("pool") is None or entry.get("pool") == args["pool"])
            and (pattern is None or fnmatch.fnmatchcase(str(entry.get("name") or ""), pattern))
            and (args.get("template") is None or bool(entry.get("template")) == bool(args["template"]))
            and visible(entry)
        )

    selected = sorted((e for e in rows if keep(e)), key=lambda e: int(e.get("vmid", 0)))
    items = selected if args.get("full") else [_compact_guest(e) for e in selected]
    return page(rc, items, "guests")


async def guest_read(rc: RunContext) -> ToolResult:
    """One GET on one guest (status, config, snapshot list)."""
    (guest,) = await resolve_targets(rc)
    op = rc.spec.operation(rc.tool.operations[guest.type])
    params = {k: v for k, v in rc.args.items() if k in rc.tool.api_params and k not in ("vmid", "node")}
    path = {"node": guest.node, "vmid": guest.vmid}
    check_against_operation(op, {**path, **params})
    data = await rc.client.get(op.path, path=path, params=params)
    if isinstance(data, list):
        return page(rc, data, f"entries of {guest.type} {guest.vmid}")
    return ToolResult({"data": data}, _summarize_object(rc.tool.name, guest.vmid, data))


def _summarize_object(tool: str, vmid: int, data: Any) -> str:
    if isinstance(data, Mapping) and "status" in data:
        name = f" ({data['name']})" if data.get("name") else ""
        extra = f", {data['qmpstatus']}" if data.get("qmpstatus") not in (None, data.get("status")) else ""
        return f"{vmid}{name}: {data['status']}{extra}"
    if isinstance(data, Mapping):
        return f"{tool} {vmid}: {len(data)} keys"
    return f"{tool} {vmid}"


async def api_read(rc: RunContext) -> ToolResult:
    """A GET tool over one operation: path parameters from the arguments, the rest as query."""
    key = next(iter(rc.tool.operations.values()))
    op = rc.spec.operation(key)
    path = path_arguments(op, rc.args)
    params = {k: v for k, v in rc.args.items() if k in rc.tool.api_params and k not in path and v is not None}
    check_against_operation(op, {**path, **params})
    data = await rc.client.get(op.path, path=path, params=params)
    if isinstance(data, list):
        return page(rc, data, rc.tool.title.lower())
    return ToolResult({"data": data}, f"{rc.tool.title}: {_brief(data)}")


def _brief(data: Any) -> str:
    if isinstance(data, Mapping):
        keys = ", ".join(list(data)[:6])
        return f"{len(data)} fields ({keys}{', …' if len(data) > 6 else ''})"
    return str(data)[:80]


async def storage_list(rc: RunContext) -> ToolResult:
    content = rc.args.get("content")
    if rc.args.get("node"):
        params = {"content": content} if content else {}
        data = await rc.client.get("/nodes/{node}/storage", path={"node": rc.args["node"]}, params=params)
    else:
        data = await rc.client.get("/storage")
        if content:
            data = [s for s in data if content in str(s.get("content", "")).split(",")]
    return page(rc, list(data), "storages")


async def cluster_status(rc: RunContext) -> ToolResult:
    status = await rc.client.get("/cluster/status")
    nodes = {n["node"]: n for n in await rc.client.get("/nodes")}
    cluster = next((e for e in status if e.get("type") == "cluster"), None)
    rows = []
    for entry in status:
        if entry.get("type") != "node":
            continue
        usage = nodes.get(entry.get("name"), {})
        row = {k: entry.get(k) for k in ("name", "online", "ip", "local") if k in entry}
        for key in ("cpu", "maxcpu", "mem", "maxmem", "uptime"):
            if key in usage:
                row[key] = usage[key]
        rows.append(row)
    online = sum(1 for r in rows if r.get("online"))
    if cluster:
        quorate = "quorate" if cluster.get("quorate") else "NOT quorate"
        head = f"cluster {cluster.get('name')}: {quorate}"
    else:
        head = "standalone node"
    data = {"cluster": cluster, "nodes": rows}
    return ToolResult({"data": data}, f"{head}, {online}/{len(rows)} nodes online")


async def next_vmid(rc: RunContext) -> ToolResult:
    vmid = rc.args.get("vmid")
    try:
        data = await rc.client.get("/cluster/nextid", params={"vmid": vmid} if vmid else None)
    except PveError as exc:
        if vmid and exc.status == 400:
            return ToolResult({"data": {"vmid": vmid, "free": False}}, f"vmid {vmid} is taken: {exc.message}")
        raise
    return ToolResult({"data": {"vmid": int(data), "free": True}}, f"vmid {int(data)} is free")


async def task_list(rc: RunContext) -> ToolResult:
    args = rc.args
    if args.get("node"):
        params = {k: args[k] for k in ("vmid", "typefilter", "errors") if args.get(k) is not None}
        params["limit"] = 500
        data = await rc.client.get("/nodes/{node}/tasks", path={"node": args["node"]}, params=params)
    else:
        data = list(await rc.client.get("/cluster/tasks"))
        data = [t for t in data if _task_matches(t, args)]
        data.sort(key=lambda t: -int(t.get("starttime", 0)))
    return page(rc, list(data), "tasks")


def _task_matches(task: Mapping[str, Any], args: Mapping[str, Any]) -> bool:
    if args.get("vmid") is not None and str(task.get("id")) != str(args["vmid"]):
        return False
    if args.get("typefilter") and task.get("type") != args["typefilter"]:
        return False
    return not (args.get("errors") and task.get("status") in ("OK", None))


async def task_status(rc: RunContext) -> ToolResult:
    upid = str(rc.args["upid"])
    node = task_node(upid)
    wait = int(rc.args.get("wait") or 0)
    if wait > 0:
        result = await rc.client.wait_task(upid, deadline_s=wait, on_progress=rc.progress)
        data = result.to_dict()
        state = "still running" if result.timed_out else (result.exitstatus or result.status)
        return ToolResult({"data": data}, f"task {result.type} {result.id}: {state}")
    data = await rc.client.get("/nodes/{node}/tasks/{upid}/status", path={"node": node, "upid": upid})
    state = data.get("exitstatus") or data.get("status")
    return ToolResult({"data": data}, f"task {data.get('type')} {data.get('id')}: {state}")


async def task_log(rc: RunContext) -> ToolResult:
    upid = str(rc.args["upid"])
    node = task_node(upid)
    limit = int(rc.args.get("limit") or DEFAULT_LIMIT)
    path = {"node": node, "upid": upid}
    start = rc.args.get("start")
    envelope = await rc.client.request("GET", "/nodes/{node}/tasks/{upid}/log", path=path, params={"limit": limit})
    total = envelope.total or len(envelope.data)
    if start is None and total > limit:
        start = total - limit
    if start:
        envelope = await rc.client.request(
            "GET", "/nodes/{node}/tasks/{upid}/log", path=path, params={"start": start, "limit": limit}
        )
    lines = [entry.get("t", "") for entry in envelope.data]
    first = int(start or 0)
    next_offset = first + len(lines) if first + len(lines) < total else None
    text = lines[-1] if lines else "no log"
    structured: JsonDict = {"items": lines, "total": total, "offset": first}
    if next_offset is not None:
        structured["next_offset"] = next_offset
    return ToolResult(structured, text)
