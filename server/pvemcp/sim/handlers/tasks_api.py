"""``/nodes/{node}/tasks``: task lists, status, logs, and stopping a task (notes §3)."""

from __future__ import annotations

from typing import Any

from pvemcp.dialect.upid import parse_upid
from pvemcp.sim.errors import param_error, perm_error
from pvemcp.sim.routing import Call, route
from pvemcp.sim.tasks import Task


def _task(call: Call) -> Task:
    upid = call.req("upid")
    try:
        node = parse_upid(upid).node
    except ValueError:
        raise param_error({"upid": "unable to parse worker upid"}) from None
    task = call.sim.tasks.get(upid)
    if task is None or node != call.node:
        raise param_error({"upid": "no such task"})
    return task


def _owner(call: Call, task: Task) -> bool:
    return task.upid.user in (call.ident.authid,) or (call.ident.token is None and task.upid.user == call.ident.userid)


def _require(call: Call, task: Task, priv: str) -> None:
    if not _owner(call, task) and not call.ident.has(priv):
        raise perm_error(f"/nodes/{call.node}, {priv}")


@route("GET", "/nodes/{node}/tasks")
def task_list(call: Call) -> list[dict[str, Any]]:
    tasks = [t for t in call.sim.tasks.all() if t.node == call.node]
    source = call.text("source", "archive")
    if source == "archive":
        tasks = [t for t in tasks if not t.running]
    elif source == "active":
        tasks = [t for t in tasks if t.running]
    userfilter = (call.text("userfilter") or "").lower()
    typefilter = call.text("typefilter")
    vmid = call.integer("vmid")
    errors_only = call.flag("errors")
    since = call.integer("since")
    until = call.integer("until")
    statuses = {s for s in (call.text("statusfilter") or "").split(",") if s}
    can_audit = call.ident.has("Sys.Audit")
    out: list[Task] = []
    for t in tasks:
        if not can_audit and not _owner(call, t):
            continue
        if userfilter and userfilter not in t.upid.user.lower():
            continue
        if typefilter and t.upid.type != typefilter:
            continue
        if vmid is not None and t.upid.id != str(vmid):
            continue
        if errors_only and (t.running or t.exitstatus == "OK"):
            continue
        if since is not None and t.upid.starttime < since:
            continue
        if until is not None and t.upid.starttime > until:
            continue
        if statuses:
            kind = (
                "ok"
                if t.exitstatus == "OK"
                else "warning"
                if (t.exitstatus or "").startswith("WARNINGS")
                else "unknown"
                if t.running or not t.exitstatus
                else "error"
            )
            if kind not in statuses:
                continue
        out.append(t)
    out.sort(key=lambda t: (t.upid.starttime, t.upid.pid), reverse=True)
    start = call.integer("start", 0) or 0
    limit = call.integer("limit", 50)
    call.total = len(out)
    # pve-manager PVE/API2/Tasks.pm node_tasks: $filter_task drops every task once $limit <= 0, so
    # limit=0 lists nothing (unlike the task log, where PVE::Tools::dump_logfile reads to the end)
    page = out[start : start + max(0, limit if limit is not None else 50)]
    return [t.list_entry() for t in page]


@route("GET", "/nodes/{node}/tasks/{upid}")
def task_index(call: Call) -> list[dict[str, str]]:
    _task(call)
    return [{"name": "log"}, {"name": "status"}]


@route("GET", "/nodes/{node}/tasks/{upid}/status")
def task_status(call: Call) -> dict[str, Any]:
    task = _task(call)
    _require(call, task, "Sys.Audit")
    return task.status_entry()


@route("GET", "/nodes/{node}/tasks/{upid}/log")
def task_log(call: Call) -> list[dict[str, Any]]:
    task = _task(call)
    _require(call, task, "Sys.Audit")
    lines = task.log
    if call.flag("download"):
        if call.params.get("start") is not None or call.params.get("limit") is not None:
            raise param_error({"download": "'download' cannot be used together with 'start' or 'limit'"})
        call.total = len(lines)
        return [{"n": i + 1, "t": line} for i, line in enumerate(lines)]
    start = call.integer("start", 0) or 0
    limit = call.integer("limit", 50)
    call.total = len(lines)
    if not lines:
        return [{"n": 1, "t": "no content"}]
    end = len(lines) if not limit else start + limit
    return [{"n": i + 1, "t": lines[i]} for i in range(start, min(end, len(lines)))]


@route("DELETE", "/nodes/{node}/tasks/{upid}")
def task_stop(call: Call) -> None:
    task = _task(call)
    _require(call, task, "Sys.Modify")
    call.sim.tasks.stop(task)
    return None
