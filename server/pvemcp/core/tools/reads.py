"""Read-only tools: lists that are cluster-wide, filtered, paginated and compact by default."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Mapping
from typing import Any

from pvemcp.core.kinds import BOOL, INT, PAGE, STR, HandlerKind, Mode, ReadScope
from pvemcp.core.pve.errors import PveError
from pvemcp.core.tools.args import check_against_operation, path_arguments, task_node
from pvemcp.core.tools.base import JsonDict, RunContext, ToolResult
from pvemcp.core.tools.guests import resolve_targets
from pvemcp.core.tools.rows import STORAGE_ALERT_PCT, duration, gib, guest_row, over_threshold, pct, storage_row, usage
from pvemcp.dialect.tags import parse_tags

DEFAULT_LIMIT = 50

GuestFilter = Callable[[Mapping[str, Any]], bool]


def page(rc: RunContext, items: list[Any], noun: str, row: Callable[[Any], Any] | None = None) -> ToolResult:
    """Slice a list by offset/limit and say how many there are in all (read scope applied first).

    ``row``: turns an item into what the result shows; applied to the page only, so a 50,000-entry
    list costs 50 rows, not 50,000.
    """
    if rc.visible is not None:
        items = [i for i in items if not isinstance(i, Mapping) or rc.visible(i)]
    offset = int(rc.args.get("offset") or 0)
    paged = "limit" in rc.tool.input_schema["properties"]  # a list without paging comes whole
    limit = int(rc.args.get("limit") or DEFAULT_LIMIT) if paged else max(len(items), 1)
    chunk = items[offset : offset + limit]
    if row is not None:
        chunk = [row(item) for item in chunk]
    next_offset = offset + limit if offset + limit < len(items) else None
    more = f"; next offset {next_offset}" if next_offset is not None else ""
    text = f"{len(chunk)} of {len(items)} {noun}{more}"
    structured: JsonDict = {"items": chunk, "total": len(items), "offset": offset}
    if next_offset is not None:
        structured["next_offset"] = next_offset
    return ToolResult(structured, text)


async def guest_list(rc: RunContext, visible: GuestFilter | None = None) -> ToolResult:
    """Guests, filtered, then paged; only the page is turned into rows.

    Cluster-wide, the entries come from the client's guest index (the same short-lived, mutation-aware
    copy of ``/cluster/resources`` that guest resolution uses), already sorted by vmid; with ``node``,
    from that node's own lists. ``visible``: the read scope's test, None when the scope is unrestricted.
    """
    args = rc.args
    if args.get("node"):
        node = args["node"]
        rows: list[Mapping[str, Any]] = []
        for kind in ("qemu", "lxc"):
            if args.get("type") in (None, kind):
                for entry in await rc.client.get(f"/nodes/{{node}}/{kind}", path={"node": node}):
                    rows.append({**entry, "type": kind, "node": node})
        rows.sort(key=lambda e: int(e.get("vmid", 0)))
    else:
        rows = await rc.client.guest_entries()
    tests = _guest_tests(args) + ([visible] if visible is not None else [])
    selected = [e for e in rows if all(test(e) for test in tests)] if tests else rows
    fields = args.get("fields")
    return page(rc, selected, "guests", lambda e: guest_row(e, fields))


GUEST_LIST = HandlerKind(
    "guest_list",
    Mode.READ,
    guest_list,
    read_scope=ReadScope.FILTERS,
    params={
        "node": STR,
        "type": {"enum": ["qemu", "lxc"]},
        "status": {"enum": ["running", "stopped"]},
        "tag": STR,
        "pool": STR,
        "name": {**STR, "description": "glob, e.g. web-*"},
        "template": BOOL,
        "fields": {"type": "array", "items": STR, "description": "columns to show, e.g. [uptime, pool]"},
        **PAGE,
    },
)


def _equals(key: str, wanted: Any) -> GuestFilter:
    return lambda entry: entry.get(key) == wanted


def _guest_tests(args: Mapping[str, Any]) -> list[GuestFilter]:
    """One test per filter the caller gave (none given: every guest passes without a test run)."""
    tests: list[GuestFilter] = []
    for key in ("type", "status", "pool"):
        if args.get(key) is not None:
            tests.append(_equals(key, args[key]))
    if args.get("tag") is not None:
        tag = str(args["tag"]).casefold()
        tests.append(lambda e: tag in parse_tags(e.get("tags")))
    if args.get("name") is not None:
        pattern = args["name"]
        tests.append(lambda e: fnmatch.fnmatchcase(str(e.get("name") or ""), pattern))
    if args.get("template") is not None:
        wanted = bool(args["template"])
        tests.append(lambda e: bool(e.get("template")) == wanted)
    return tests


async def guest_read(rc: RunContext) -> ToolResult:
    """One GET on one guest (status, config, snapshot list)."""
    (guest,) = await resolve_targets(rc)
    op = rc.spec.operation(rc.tool.operations[guest.type])
    params = {k: v for k, v in rc.args.items() if k in rc.tool.api_params and k not in ("vmid", "node")}
    path = {"node": guest.node, "vmid": guest.vmid}
    check_against_operation(op, {**path, **params})
    data = await rc.client.get(op.path, path=path, params=params)
    who = f"{guest.type} {guest.vmid} on {guest.node}"
    if isinstance(data, list):
        return page(rc, data, f"snapshots of {who}")
    if op.path.endswith("/status/current") and isinstance(data, Mapping):
        return ToolResult({"data": _live_status(data, guest.node)}, f"status of {who}")
    return ToolResult({"data": data}, f"config of {who}")


GUEST_READ = HandlerKind("guest_read", Mode.READ, guest_read)


def _live_status(data: Mapping[str, Any], node: str) -> JsonDict:
    """The operator's view of ``status/current``: state, lock, CPU, memory, disk, uptime, HA, agent.

    The raw answer also has per-disk block and balloon counters (most of its size); api_call reads them.
    """
    out: JsonDict = {k: data[k] for k in ("vmid", "name", "status") if data.get(k) is not None}
    out["node"] = node
    if data.get("qmpstatus") not in (None, data.get("status")):
        out["qmpstatus"] = data["qmpstatus"]
    for key in ("lock", "cpus", "tags", "template"):
        if data.get(key) not in (None, ""):
            out[key] = data[key]
    out.update(usage(data))
    if data.get("maxdisk"):
        out["maxdisk_gib"] = gib(data["maxdisk"])
    if data.get("uptime"):
        out["uptime"] = duration(data["uptime"])
    ha = data.get("ha")
    if isinstance(ha, Mapping) and ha.get("managed"):
        out["ha"] = ha.get("state") or "managed"
    if data.get("agent") is not None:
        out["agent"] = data["agent"]
    return out


async def api_read(rc: RunContext) -> ToolResult:
    """A GET tool over one operation: path parameters from the arguments, the rest as query."""
    key = next(iter(rc.tool.operations.values()))
    op = rc.spec.operation(key)
    path = path_arguments(op, rc.args)
    params = {k: v for k, v in rc.args.items() if k in rc.tool.api_params and k not in path and v is not None}
    check_against_operation(op, {**path, **params})
    data = await rc.client.get(op.path, path=path, params=params)
    if isinstance(data, list):
        return page(rc, data, rc.tool.title.lower().removeprefix("list "))
    return ToolResult({"data": data}, rc.tool.title)


API_READ = HandlerKind("api_read", Mode.READ, api_read, read_scope=ReadScope.OPERATION)


async def storage_list(rc: RunContext) -> ToolResult:
    """Storages with their fill level: cluster-wide from ``/cluster/resources``, or one node's view.

    Cluster-wide, a shared storage is listed once (it reports the same usage on every node), and a
    storage of ``/storage`` (the configuration) that reports on no node is listed as not reporting.
    """
    content = rc.args.get("content")
    if rc.args.get("node"):
        params = {"content": content} if content else {}
        data = await rc.client.get("/nodes/{node}/storage", path={"node": rc.args["node"]}, params=params)
        rows = [storage_row(s) for s in data]
    else:
        rows = []
        shared_seen: set[str] = set()
        # pve-manager API2/Cluster.pm (resources): a storage entry per node, with disk/maxdisk and shared
        for entry in await rc.client.get("/cluster/resources", params={"type": "storage"}):
            if content and content not in str(entry.get("content", "")).split(","):
                continue
            if entry.get("shared"):
                if entry.get("storage") in shared_seen:
                    continue
                shared_seen.add(str(entry.get("storage")))
                entry = {k: v for k, v in entry.items() if k != "node"}
            rows.append(storage_row(entry))
        reporting = {str(r.get("storage")) for r in rows}
        for defined in await rc.client.get("/storage"):  # configured, but reporting on no node (disabled, down)
            if str(defined.get("storage")) not in reporting and (
                not content or content in str(defined.get("content", "")).split(",")
            ):
                rows.append({**storage_row(defined), "status": "not reporting"})
        rows.sort(key=lambda r: (str(r.get("storage")), str(r.get("node", ""))))
    result = page(rc, rows, "storages")
    full = over_threshold(rows)
    if full:
        return ToolResult(result.structured, f"{result.text}; at or over {STORAGE_ALERT_PCT}%: {', '.join(full)}")
    return result


STORAGE_LIST = HandlerKind("storage_list", Mode.READ, storage_list)


async def cluster_status(rc: RunContext) -> ToolResult:
    """Health first: quorum, nodes online with CPU/memory/uptime, storages filling up, guests running."""
    status = await rc.client.get("/cluster/status")
    resources = await rc.client.get("/cluster/resources")
    nodes = {e.get("node"): e for e in resources if e.get("type") == "node"}
    cluster = next((e for e in status if e.get("type") == "cluster"), None)
    rows = []
    for entry in status:
        if entry.get("type") != "node":
            continue
        usage_entry = nodes.get(entry.get("name"), {})
        row: JsonDict = {k: entry.get(k) for k in ("name", "online", "ip", "local") if k in entry}
        row.update(usage(usage_entry))
        if usage_entry.get("maxcpu"):
            row["maxcpu"] = usage_entry["maxcpu"]
        if usage_entry.get("uptime"):
            row["uptime"] = duration(usage_entry["uptime"])
        rows.append(row)
    storages = [storage_row(e) for e in resources if e.get("type") == "storage"]
    guests = [e for e in resources if e.get("type") in ("qemu", "lxc") and not e.get("template")]
    online = sum(1 for r in rows if r.get("online"))
    data: JsonDict = {
        "cluster": {k: cluster.get(k) for k in ("name", "quorate", "nodes", "version") if k in cluster}
        if cluster
        else None,
        "nodes": rows,
        "guests_running": sum(1 for g in guests if g.get("status") == "running"),
        "guests_total": len(guests),
        "storages_full": over_threshold(storages),
    }
    if cluster:
        quorate = "quorate" if cluster.get("quorate") else "NOT quorate"
        head = f"cluster {cluster.get('name')}: {quorate}"
    else:
        head = "standalone node"
    return ToolResult({"data": data}, f"{head}, {online}/{len(rows)} nodes online")


CLUSTER_STATUS = HandlerKind("cluster_status", Mode.READ, cluster_status)


async def node_status(rc: RunContext) -> ToolResult:
    """A node's health: CPU, load, memory, swap, root disk, uptime, versions (not its CPU flag list)."""
    node = str(rc.args["node"])
    raw = await rc.client.get("/nodes/{node}/status", path={"node": node})
    memory = raw.get("memory") or {}
    swap = raw.get("swap") or {}
    rootfs = raw.get("rootfs") or {}
    cpuinfo = raw.get("cpuinfo") or {}
    data: JsonDict = {"node": node, "cpu_pct": pct(raw.get("cpu")), "cpus": cpuinfo.get("cpus")}
    if raw.get("loadavg"):
        data["loadavg"] = raw["loadavg"]
    if memory.get("total"):
        data.update(mem_gib=gib(memory.get("used")), maxmem_gib=gib(memory["total"]))
        data["mem_pct"] = pct(memory.get("used"), memory["total"])
    if swap.get("total"):
        data["swap_used_gib"] = gib(swap.get("used"))
    if rootfs.get("total"):
        data["rootfs_used_pct"] = pct(rootfs.get("used"), rootfs["total"])
        data["rootfs_total_gib"] = gib(rootfs["total"])
    if raw.get("uptime"):
        data["uptime"] = duration(raw["uptime"])
    data["pveversion"] = raw.get("pveversion")
    kernel = raw.get("current-kernel") or {}
    data["kernel"] = kernel.get("release") or raw.get("kversion")
    data["cpu_model"] = cpuinfo.get("model")
    return ToolResult({"data": {k: v for k, v in data.items() if v is not None}}, f"node {node}")


NODE_STATUS = HandlerKind("node_status", Mode.READ, node_status)


async def next_vmid(rc: RunContext) -> ToolResult:
    vmid = rc.args.get("vmid")
    try:
        data = await rc.client.get("/cluster/nextid", params={"vmid": vmid} if vmid else None)
    except PveError as exc:
        if vmid and exc.status == 400:
            return ToolResult({"data": {"vmid": vmid, "free": False}}, f"vmid {vmid} is taken: {exc.message}")
        raise
    return ToolResult({"data": {"vmid": int(data), "free": True}}, f"vmid {int(data)} is free")


NEXT_VMID = HandlerKind("next_vmid", Mode.READ, next_vmid)


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
    return page(rc, [_task_row(t) for t in data], "tasks")


TASK_LIST = HandlerKind("task_list", Mode.READ, task_list, params=PAGE)


def _task_row(task: Mapping[str, Any]) -> JsonDict:
    """A task without what its UPID already says twice (pid, pstart) or bookkeeping (saved)."""
    return {k: v for k, v in task.items() if k not in ("pid", "pstart", "saved", "tokenid") and v is not None}


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


TASK_STATUS = HandlerKind("task_status", Mode.READ, task_status, params={"wait": INT})


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
    text = f"log of task {upid}: lines {first}-{first + len(lines)} of {total}" if lines else "no log"
    structured: JsonDict = {"items": lines, "total": total, "offset": first}
    if next_offset is not None:
        structured["next_offset"] = next_offset
    return ToolResult(structured, text)


TASK_LOG = HandlerKind("task_log", Mode.READ, task_log, params={"limit": INT})
