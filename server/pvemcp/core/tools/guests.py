"""Planning the guest tools: power actions, snapshots, delete, create, clone, config, backups.

Each planner resolves its targets (vmid, vmids or tag) to guests with node and type, picks the
operation for the guest's type, builds the exact request and validates it against the operation's
schema. Planning sends only GETs (resolution, next free vmid); nothing mutates before policy.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from pvemcp.core.kinds import STR, Fact, HandlerKind, Mode
from pvemcp.core.policy._canonical import canonical_bytes
from pvemcp.core.pve.errors import PveError
from pvemcp.core.pve.resolve import GuestRef, guest_by_name
from pvemcp.core.tools import safety
from pvemcp.core.tools.args import check_against_operation, encode_structured, path_arguments, task_node
from pvemcp.core.tools.base import JsonDict, Plan, PlannedCall, RunContext, ToolError, guest_label
from pvemcp.dialect.upid import parse_upid

_ADDRESSING = ("vmid", "node", "vmids", "tag")


class NothingMatched(ToolError):
    """A batch selector that matches no guest: nothing to do, which is not an error."""


async def resolve_targets(rc: RunContext) -> list[GuestRef]:
    """The guests a call addresses: exactly one of vmid, name (unless the tool's ``name`` is an API
    parameter, as the clone's new name), vmids or tag."""
    args = rc.args
    keys = ("vmid", "vmids", "tag") if "name" in rc.tool.api_params else ("vmid", "name", "vmids", "tag")
    given = [k for k in keys if args.get(k) not in (None, [], "")]
    if len(given) != 1:
        if rc.tool.batch:
            raise ToolError("give exactly one of vmid, name, vmids or tag", field="vmid")
        raise ToolError("give vmid (or the guest's exact name)" if "name" in keys else "vmid is required", field="vmid")
    if given[0] == "name":
        try:
            guests = [guest_by_name(await rc.client.list_guests(), str(args["name"]))]
        except PveError as exc:
            raise ToolError(str(exc), field="name") from None
    elif given[0] == "tag":
        tag = str(args["tag"])
        guests = [g for g in await rc.client.list_guests() if tag in g.tags and not g.template]
        if not guests:
            raise NothingMatched(f"no guest has the tag {tag!r}")
    else:
        vmids = args["vmids"] if given[0] == "vmids" else [args["vmid"]]
        if len(set(vmids)) != len(vmids):
            raise ToolError("vmids contains duplicates", field="vmids")
        guests = []
        for vmid in vmids:
            try:
                guests.append(await rc.client.resolve_guest(vmid))
            except PveError as exc:
                raise ToolError(str(exc), field="vmid") from None
    node = args.get("node")
    if node is not None:
        for guest in guests:
            if guest.node != node:
                raise ToolError(f"{guest_label(guest)}, not on {node}; omit node to let pvemcp find it", field="node")
    return guests


def _api_args(rc: RunContext, exclude: set[str]) -> JsonDict:
    return {k: v for k, v in rc.args.items() if k in rc.tool.api_params and k not in exclude and v is not None}


def _planned(rc: RunContext, key: str, path: Mapping[str, Any], args: JsonDict, guest: GuestRef | None) -> PlannedCall:
    op = rc.spec.operation(key)
    body = encode_structured(op, args)
    check_against_operation(op, {**path, **body})
    return PlannedCall(
        method=op.method,
        template=op.path,
        path=dict(path),
        args=body,
        task=op.task,
        target=guest,
        label=guest_label(guest) if guest else op.key,
    )


async def plan_guest_action(rc: RunContext) -> Plan:
    """Power actions, snapshots, rollback, snapshot/guest delete: one request per target guest."""
    guests = await resolve_targets(rc)
    calls = []
    for guest in guests:
        key = rc.tool.operations[guest.type]
        path: JsonDict = {"node": guest.node, "vmid": guest.vmid}
        if "{snapname}" in key:
            if not rc.args.get("snapname"):
                raise ToolError("snapname is required", field="snapname")
            path["snapname"] = rc.args["snapname"]
        args = _api_args(rc, set(_ADDRESSING) | set(path))
        calls.append(safety.guard(rc, _planned(rc, key, path, args, guest)))
    return Plan(calls=calls, risk=rc.tool.risk, wait=rc.tool.wait)


GUEST_ACTION = HandlerKind("guest_action", Mode.PLAN, plan_guest_action)


async def plan_operation(rc: RunContext) -> Plan:
    """A curated tool over one non-guest operation: path parameters from the arguments, the rest as body."""
    key = next(iter(rc.tool.operations.values()))
    path = path_arguments(rc.spec.operation(key), rc.args)
    args = _api_args(rc, set(path))
    return Plan(calls=[_planned(rc, key, path, args, None)], risk=rc.tool.risk, wait=rc.tool.wait)


API_WRITE = HandlerKind("api_write", Mode.PLAN, plan_operation)


async def plan_backup_job(rc: RunContext) -> Plan:
    """backup_job_create: pvemcp names the job itself, so the result can say which job it created.

    ``POST /cluster/backup`` returns null; its ``id`` ("Job ID (will be autogenerated)", format
    pve-configid) is optional, so the id is chosen here in the form PVE generates (backup-xxxxxxxx-xxxx).
    The id is derived from the job's own arguments, not drawn at random: a confirmed call is planned again
    before it is sent, and that plan must be the one the person confirmed (a random id would change its
    digest every time). The same job asked for twice gets PVE's "already exists" answer.
    """
    plan = await plan_operation(rc)
    (call,) = plan.calls
    if "id" not in call.args:
        job = hashlib.sha256(canonical_bytes(dict(call.args))).hexdigest()[:12]
        call = PlannedCall(**{**call.__dict__, "args": {**call.args, "id": f"backup-{job[:8]}-{job[8:]}"}})
    return Plan(calls=[call], risk=plan.risk, wait=plan.wait)


BACKUP_JOB = HandlerKind("backup_job", Mode.PLAN, plan_backup_job, reports=(Fact.JOB_ID,))


async def plan_task_stop(rc: RunContext) -> Plan:
    """task_stop: the task's node is part of its UPID."""
    upid = str(rc.args["upid"])
    task_node(upid)  # refuses a malformed UPID as the caller's error
    parsed = parse_upid(upid)
    key = next(iter(rc.tool.operations.values()))
    call = _planned(rc, key, {"node": parsed.node, "upid": upid}, {}, None)
    label = f"task {parsed.type} {parsed.id} on {parsed.node}".replace("  ", " ")
    return Plan(calls=[PlannedCall(**{**call.__dict__, "label": label})], risk=rc.tool.risk)


TASK_STOP = HandlerKind("task_stop", Mode.PLAN, plan_task_stop)


async def next_free_vmid(rc: RunContext) -> int:
    return int(await rc.client.get("/cluster/nextid"))


async def plan_create(rc: RunContext) -> Plan:
    """vm_create / ct_create: vmid defaults to the next free id; the node is where it is created."""
    key = next(iter(rc.tool.operations.values()))
    vmid = rc.args.get("vmid") or await next_free_vmid(rc)
    node = rc.args["node"]
    args = {**_api_args(rc, {"node", "vmid"}), "vmid": vmid}
    call = _planned(rc, key, {"node": node}, args, None)
    kind = "VM" if "/qemu" in key else "CT"
    call = PlannedCall(**{**call.__dict__, "label": f"new {kind} {vmid} on {node}"})
    return Plan(calls=[call], risk=rc.tool.risk, wait=rc.tool.wait)


GUEST_CREATE = HandlerKind("guest_create", Mode.PLAN, plan_create, reports=(Fact.NEW_GUEST,))


async def plan_clone(rc: RunContext) -> Plan:
    """guest_clone: newid defaults to the next free id; ``name`` is ``hostname`` for containers."""
    (guest,) = await resolve_targets(rc)
    newid = rc.args.get("newid") or await next_free_vmid(rc)
    args = _api_args(rc, {"vmid", "node", "newid"})
    if guest.type == "lxc" and "name" in args:
        args["hostname"] = args.pop("name")
    args["newid"] = newid
    call = _planned(rc, rc.tool.operations[guest.type], {"node": guest.node, "vmid": guest.vmid}, args, guest)
    return Plan(calls=[call], risk=rc.tool.risk, wait=rc.tool.wait)


GUEST_CLONE = HandlerKind("guest_clone", Mode.PLAN, plan_clone, reports=(Fact.NEW_GUEST,))


async def plan_config_set(rc: RunContext) -> Plan:
    """guest_config_set: ``set`` keys (objects allowed for property strings), ``delete`` keys, digest."""
    (guest,) = await resolve_targets(rc)
    to_set: Mapping[str, Any] = rc.args.get("set") or {}
    to_delete: list[str] = list(rc.args.get("delete") or [])
    if not to_set and not to_delete:
        raise ToolError("nothing to change: give set and/or delete", field="set")
    reserved = {"node", "vmid", "digest", "delete"} & set(to_set)
    if reserved:
        raise ToolError(f"set: {', '.join(sorted(reserved))} cannot be set here", field="set")
    both = set(to_set) & set(to_delete)
    if both:
        raise ToolError(f"{', '.join(sorted(both))}: both set and deleted", field="delete")
    args: JsonDict = dict(to_set)
    if to_delete:
        args["delete"] = ",".join(to_delete)
    if rc.args.get("digest"):
        args["digest"] = rc.args["digest"]
    call = _planned(rc, rc.tool.operations[guest.type], {"node": guest.node, "vmid": guest.vmid}, args, guest)
    from pvemcp.core.tools.undo import record_change  # the before-state makes the change undoable

    call = PlannedCall(**{**call.__dict__, "after": await record_change(rc, guest, [*to_set, *to_delete])})
    return Plan(calls=[call], risk=rc.tool.risk)


GUEST_CONFIG_SET = HandlerKind(
    "guest_config_set",
    Mode.PLAN,
    plan_config_set,
    params={"set": {"type": "object"}, "delete": {"type": "array", "items": STR}},
    reports=(Fact.DIGEST, Fact.STATE, Fact.PENDING),
)


async def plan_backup_now(rc: RunContext) -> Plan:
    """backup_now: one vzdump task per node holding targets (vzdump runs where the guests live)."""
    if isinstance(rc.args.get("vmid"), str):
        try:
            rc.args["vmids"] = [int(v) for v in rc.args.pop("vmid").replace(";", ",").split(",") if v.strip()]
        except ValueError:
            raise ToolError("vmid: a comma-separated list of vmids", field="vmid") from None
    guests = await resolve_targets(rc)
    by_node: dict[str, list[GuestRef]] = {}
    for guest in guests:
        by_node.setdefault(guest.node, []).append(guest)
    key = next(iter(rc.tool.operations.values()))
    calls = []
    for node, members in sorted(by_node.items()):
        args = {**_api_args(rc, {"vmid", "node"}), "vmid": ",".join(str(g.vmid) for g in members)}
        call = _planned(rc, key, {"node": node}, args, members[0] if len(members) == 1 else None)
        label = ", ".join(guest_label(g) for g in members)
        calls.append(PlannedCall(**{**call.__dict__, "label": f"backup of {label}"}))
    return Plan(calls=calls, risk=rc.tool.risk, wait=rc.tool.wait, guests=guests)


BACKUP_NOW = HandlerKind("backup_now", Mode.PLAN, plan_backup_now, reports=(Fact.VOLIDS,))
