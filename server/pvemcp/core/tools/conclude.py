"""What a mutating call produced and the state it reached, read back after its tasks ended.

A task's ``status: stopped`` only says the *task* ended; a model reads it as the guest's state. So the
task's own fields stay task fields (``exitstatus``, ``task_status`` while it runs) and, once a task
succeeded, the result names what it produced, as Proxmox reports it afterwards:

- the guest's state after the action (``guest_status``, from its ``status/current``),
- a new guest's vmid, name, node and state (create, clone), with a warning when its name is not unique,
- the snapshot name, the backup archive volids (``backup_now``), the backup job id,
- configuration changes left pending until the next reboot (``pending``), and the config's new
  ``digest`` after a change or a snapshot (both change it; the next guarded change needs it);

and a failed call on a guest says the guest's state (the usual reason: already stopped, not running).

Which of these a tool's result reads back is the tool's definition, not a list of names here: its handler
kind's record gives the default (``HandlerKind.reports``) and a tools.yaml entry's ``reports:`` replaces
it (``ToolDef.reports``); only a snapshot named in the request's path is always shown.

Reading back costs a few GETs after the work is done; it saves the model the calls it would make to
find these facts itself. A read-back that fails never turns a success into a failure: the fact is
just left out.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import anyio

from pvemcp.core.kinds import Fact
from pvemcp.core.pve.errors import PveError
from pvemcp.core.tools.base import JsonDict, Plan, PlannedCall, RunContext, ToolResult

_READBACK_CONCURRENCY = 8


async def conclude(rc: RunContext, plan: Plan, items: list[JsonDict]) -> ToolResult:
    """The result of an executed plan: per-call items with their produced facts, and a headline."""
    limiter = anyio.CapacityLimiter(_READBACK_CONCURRENCY)

    async def enrich(call: PlannedCall, item: JsonDict) -> None:
        async with limiter:
            _task_fields(item)
            if item.get("ok") and not item.get("task_status"):
                await _produced(rc, call, item)
            elif not item.get("ok") and call.target is not None:  # why it failed is often the guest's state
                status = await _status(rc, call.target.node, call.target.type, call.target.vmid)
                if status:
                    item["guest_status"] = _state_word(status)

    async with anyio.create_task_group() as tg:
        for call, item in zip(plan.calls, items, strict=False):
            tg.start_soon(enrich, call, item)
    ok = sum(1 for r in items if r.get("ok"))
    failed = len(items) - ok
    tool = rc.tool.name
    if rc.tool.output_schema.get("properties", {}).get("results") is None:
        item = items[0]
        verdict = "done" if item.get("ok") else "FAILED"
        headline = item.pop("summary", None) or f"{tool}: {verdict}"  # a handler may word its own headline
        return ToolResult({"data": item}, str(headline) + _undo_hint(items), is_error=not item.get("ok"))
    headline = f"{tool}: {ok} ok, {failed} failed"
    return ToolResult({"results": items, "ok": ok, "failed": failed}, headline + _undo_hint(items), is_error=ok == 0)


def _undo_hint(items: list[JsonDict]) -> str:
    """How to undo the recorded config changes (their call ids, set by the change's after-hook)."""
    ids = [str(i["call_id"]) for i in items if i.get("call_id")]
    return "".join(f"; to undo: config_undo call_id={call_id}" for call_id in ids)


def _task_fields(item: JsonDict) -> None:
    """Keep the task's status from reading as the guest's: ``task_status`` only while it runs."""
    status = item.pop("status", None)
    if item.get("exitstatus") is None and status is not None:
        item["task_status"] = status
    if item.get("timed_out") is False:
        del item["timed_out"]


async def _produced(rc: RunContext, call: PlannedCall, item: JsonDict) -> None:
    """The facts the tool reports (``ToolDef.reports``: its kind's, or its tools.yaml ``reports:``)."""
    reports = rc.tool.reports
    if "{snapname}" in call.template or Fact.SNAPNAME in reports:
        item["snapname"] = call.path.get("snapname") or call.args.get("snapname")
    if Fact.VOLIDS in reports:
        item["volids"] = await _archives(rc, call)
    if Fact.JOB_ID in reports and call.args.get("id"):
        item["job_id"] = call.args["id"]
    if Fact.NEW_GUEST in reports:
        await _new_guest(rc, call, item)
    if Fact.DESTROYED in reports:
        item["guest_status"] = "destroyed"
    guest = call.target
    if guest is None:
        return
    if Fact.DIGEST in reports:  # the digest a next guest_config_set must pass (a snapshot changes it)
        digest = await _digest(rc, guest.node, guest.type, guest.vmid)
        if digest:
            item["digest"] = digest
    if Fact.STATE in reports:
        status = await _status(rc, guest.node, guest.type, guest.vmid)
        if status:
            item["guest_status"] = _state_word(status)
    if Fact.PENDING in reports:
        pending = await _pending(rc, guest.node, guest.type, guest.vmid)
        if pending:
            item["pending"] = pending


async def _digest(rc: RunContext, node: str, kind: str, vmid: int) -> str | None:
    try:
        config = await rc.client.get(f"/nodes/{{node}}/{kind}/{{vmid}}/config", path={"node": node, "vmid": vmid})
    except PveError:
        return None
    return str(config["digest"]) if isinstance(config, dict) and config.get("digest") else None


def _state_word(status: JsonDict) -> str:
    """``running``, ``stopped``, or QEMU's finer state when it differs (``paused``, ``suspended``)."""
    state = str(status.get("status") or "unknown")
    qmp = status.get("qmpstatus")
    return str(qmp) if qmp and qmp != state else state


async def _status(rc: RunContext, node: str, kind: str, vmid: int) -> JsonDict | None:
    try:
        data = await rc.client.get(f"/nodes/{{node}}/{kind}/{{vmid}}/status/current", path={"node": node, "vmid": vmid})
    except PveError:
        return None
    return dict(data) if isinstance(data, dict) else None


async def _pending(rc: RunContext, node: str, kind: str, vmid: int) -> list[str]:
    """Changes Proxmox holds until the next reboot.

    ``GET .../pending`` (qemu-server and pve-container, ``vm_pending``) lists every key with its
    ``value`` and, when a change waits, its ``pending`` value or a ``delete`` flag.
    """
    try:
        entries = await rc.client.get(f"/nodes/{{node}}/{kind}/{{vmid}}/pending", path={"node": node, "vmid": vmid})
    except PveError:
        return []
    out = []
    for entry in entries if isinstance(entries, list) else []:
        if entry.get("delete"):
            out.append(f"delete {entry.get('key')}")
        elif "pending" in entry:
            out.append(f"{entry.get('key')}={entry.get('pending')}")
    return out


async def _new_guest(rc: RunContext, call: PlannedCall, item: JsonDict) -> None:
    """Name the guest a create or clone made, its state, and any other guest sharing its name."""
    if call.target is not None:  # a clone: the new guest is of the source's type, on target or the source's node
        vmid = int(call.args["newid"])
        kind: str = call.target.type
        node = str(call.args.get("target") or call.target.node)
        name = call.args.get("name") or call.args.get("hostname")
    else:
        vmid = int(call.args["vmid"])
        kind = "lxc" if "/lxc" in call.template else "qemu"
        node = str(call.path["node"])
        name = call.args.get("hostname") or call.args.get("name")
    item.update(new_vmid=vmid, new_node=node)
    status = await _status(rc, node, kind, vmid)
    if status:
        name = status.get("name") or name
        item["guest_status"] = _state_word(status)
    if name:
        item["new_name"] = str(name)
        others = await _same_name(rc, str(name), vmid)
        if others:
            item["warning"] = f"name {name} is also used by vmid {', '.join(str(v) for v in others)}"


async def _same_name(rc: RunContext, name: str, vmid: int) -> list[int]:
    try:
        guests = await rc.client.list_guests()
    except PveError:
        return []
    return [g.vmid for g in guests if g.name == name and g.vmid != vmid]


async def _archives(rc: RunContext, call: PlannedCall) -> list[str]:
    """The archive each backed-up guest got: its newest backup volume on the storage the task wrote to.

    vzdump's target storage is the ``storage`` argument, or else the node's vzdump.conf default; in
    that case every storage of the node that holds backups is looked at.
    """
    node = str(call.path["node"])
    vmids = [int(v) for v in str(call.args.get("vmid") or "").split(",") if v.strip()]
    storages: Sequence[str]
    if call.args.get("storage"):
        storages = [str(call.args["storage"])]
    else:
        try:
            listed = await rc.client.get("/nodes/{node}/storage", path={"node": node}, params={"content": "backup"})
        except PveError:
            return []
        storages = [str(s["storage"]) for s in listed if isinstance(s, dict) and s.get("storage")]
    volids = []
    for vmid in vmids:
        newest: tuple[int, str] | None = None
        for storage in storages:
            for volume in await _backups(rc, node, storage, vmid):
                key = (int(volume.get("ctime") or 0), str(volume.get("volid")))
                if newest is None or key > newest:
                    newest = key
        if newest is not None:
            volids.append(newest[1])
    return volids


async def _backups(rc: RunContext, node: str, storage: str, vmid: int) -> list[Any]:
    try:
        data = await rc.client.get(
            "/nodes/{node}/storage/{storage}/content",
            path={"node": node, "storage": storage},
            params={"content": "backup", "vmid": vmid},
        )
    except PveError:
        return []
    return [v for v in data if isinstance(v, dict)] if isinstance(data, list) else []
