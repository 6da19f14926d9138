"""What a plan touches, with current facts: the objects a confirmation names and scope is checked on.

Every request of a plan is read by :func:`~pvemcp.core.policy.targets.extract_targets`; what it names
only indirectly is looked up here: a backup job's *current* selection (one ``GET /cluster/backup/{id}``),
the facts of every guest (name, node, type, state, pool, tags, from the ``/cluster/resources`` list
the planner already used). The result is the plan's ``objects`` — shown in the question, bound by its
digest — and, per request, the merged targets the scope is checked on.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from pvemcp.core.policy.redact import redact
from pvemcp.core.policy.risk import Risk, explain_call
from pvemcp.core.policy.scope import Scope, ScopeViolation
from pvemcp.core.policy.targets import (
    CallTargets,
    backup_selection,
    check_call,
    extract_targets,
    merge_targets,
)
from pvemcp.core.pve.errors import PveError
from pvemcp.core.tools.base import JsonDict, Plan, PlanObject, RunContext, ToolError

if TYPE_CHECKING:
    from pvemcp.core.pve.resolve import GuestRef

__all__ = ["ScopeRefused", "check_plan_scope", "plan_objects", "render_question", "scoped_view", "visible_in_scope"]

#: Body parameters worth naming in a question about a backup job (schedule, where, what, how long).
_JOB_KEYS = ("schedule", "storage", "vmid", "all", "pool", "exclude", "node", "prune-backups", "enabled", "mode")


class ScopeRefused(ToolError):
    """A plan touches something outside the scope; ``subjects`` names each object refused."""

    def __init__(self, message: str, subjects: list[str]) -> None:
        super().__init__(message)
        self.subjects = subjects


async def plan_objects(rc: RunContext, plan: Plan) -> None:
    """Fill ``plan.objects``, ``plan.call_targets`` and ``plan.facts`` (sends GETs only)."""
    guests = {g.vmid: g for g in await rc.client.list_guests()}
    plan.facts = guests
    objects: dict[tuple[str, str], PlanObject] = {}

    def add(obj: PlanObject) -> None:
        objects.setdefault((obj.kind, obj.id), obj)

    def guest(vmid: int) -> None:
        ref = guests.get(vmid)
        if ref is None:
            add(PlanObject("guest", str(vmid), {"known": False}))
            return
        facts = {"name": ref.name, "node": ref.node, "type": ref.type, "state": ref.status, "pool": ref.pool}
        add(PlanObject("guest", str(vmid), {**facts, "tags": sorted(ref.tags)}))

    plan.call_targets = []
    for call in plan.calls:
        targets = extract_targets(call.method, call.template, {**call.path, **call.args})
        for job_id in sorted(targets.backup_jobs):
            job = await _backup_job(rc, job_id)
            selection = backup_selection(job)
            targets = merge_targets(targets, selection)
            add(PlanObject("backup_job", job_id, _job_facts(job)))
        plan.call_targets.append(targets)
        for vmid in sorted(targets.guests):
            guest(vmid)
        for vmid in sorted(targets.new_guests):
            if vmid in guests:  # a restore with force over a guest that exists acts on that guest
                guest(vmid)
                continue
            add(PlanObject("new_guest", str(vmid), {"node": targets.new_guest_node, "pool": targets.new_guest_pool}))
        for volid, owner in targets.volumes:
            add(PlanObject("volume", volid, {"owner": owner}))
        for upid, owner in targets.tasks:
            add(PlanObject("task", upid, {"guest": owner}))
        for node in sorted(targets.node_wide):
            on_node = sorted(v for v, g in guests.items() if g.node == node)
            add(PlanObject("node", node, {"reach": targets.reach or "every guest on the node", "guests": on_node}))
        for pool in sorted(targets.pools):
            add(PlanObject("pool", pool, {"members": sorted(v for v, g in guests.items() if g.pool == pool)}))
        if targets.cluster_wide:
            add(PlanObject("cluster", "cluster", {"reach": targets.reach or "every guest of the cluster"}))
    for ref in plan.guests:
        guest(ref.vmid)
    order = {"guest": 0, "new_guest": 1, "backup_job": 2, "volume": 3, "task": 4, "pool": 5, "node": 6, "cluster": 7}
    plan.objects = sorted(objects.values(), key=lambda o: (order.get(o.kind, 9), o.id))


async def _backup_job(rc: RunContext, job_id: str) -> Mapping[str, Any]:
    try:
        job = await rc.client.get("/cluster/backup/{id}", path={"id": job_id})
    except PveError as exc:
        raise ToolError(f"backup job {job_id}: {exc}", field="path") from None
    return job if isinstance(job, Mapping) else {}


def _job_facts(job: Mapping[str, Any]) -> JsonDict:
    if job.get("pool"):
        selection = f"pool {job['pool']}"
    elif job.get("vmid"):
        selection = f"guests {job['vmid']}"
    elif job.get("all") or job.get("exclude"):
        selection = "all guests" + (f" except {job['exclude']}" if job.get("exclude") else "")
    else:
        selection = "nothing"
    if job.get("node"):
        selection += f" on {job['node']}"
    facts: JsonDict = {"selection": selection}
    for key in ("schedule", "storage", "prune-backups", "enabled"):
        if job.get(key) not in (None, ""):
            facts[key] = job[key]
    return facts


def check_plan_scope(scope: Scope, plan: Plan) -> None:
    """Refuse the plan if any object of any request is outside ``scope`` (the whole plan, before sending)."""
    if scope.unrestricted:
        return
    violations: list[ScopeViolation] = []
    for targets in plan.call_targets:
        violations.extend(check_call(scope, targets, plan.facts))
    raise_scope(scope, violations)


def raise_scope(scope: Scope, violations: Iterable[ScopeViolation]) -> None:
    unique = {v.subject: v for v in violations}
    if unique:
        details = "; ".join(str(v) for v in unique.values())
        raise ScopeRefused(f"outside the allowed scope ({scope.describe()}): {details}", list(unique))


def visible_in_scope(scope: Scope, inventory: Mapping[int, GuestRef], entry: Mapping[str, Any]) -> bool:
    """Read scope for one listed entry: a guest (``vmid``), a volume (``volid``), a task (``upid``)
    or a node's entry is shown only if what it is about is in scope."""
    if scope.unrestricted:
        return True
    targets = CallTargets()
    if entry.get("upid"):
        targets = extract_targets("GET", "/nodes/{node}/tasks/{upid}/status", {"node": "-", "upid": entry["upid"]})
    elif entry.get("volid"):
        targets = extract_targets(
            "GET", "/nodes/{node}/storage/{storage}/content/{volume}", {"node": "-", "volume": entry["volid"]}
        )
    elif entry.get("type") in ("qemu", "lxc", None) and _int(entry.get("vmid")) is not None:
        targets = CallTargets(guests=frozenset({_int(entry.get("vmid")) or 0}))
    elif entry.get("sid") is not None:  # an HA resource (vm:100) or an HA status entry
        targets = extract_targets("GET", "/cluster/ha/resources/{sid}", {"sid": entry["sid"]})
    elif _int(entry.get("guest")) is not None:  # a replication job
        targets = CallTargets(guests=frozenset({_int(entry.get("guest")) or 0}))
    if check_call(scope, CallTargets(guests=targets.guests), inventory):
        return False
    node = entry.get("node")
    return node is None or scope.allows_node(str(node))


def scoped_view(scope: Scope, inventory: Mapping[int, GuestRef], data: Any) -> tuple[Any, int]:
    """``data`` with the entries out of scope left out (a list's items, or the lists inside an object
    such as a pool's ``members``), and how many were left out."""
    if scope.unrestricted:
        return data, 0

    def keep(items: list[Any]) -> list[Any]:
        return [e for e in items if not isinstance(e, Mapping) or visible_in_scope(scope, inventory, e)]

    if isinstance(data, list):
        kept = keep(data)
        return kept, len(data) - len(kept)
    if isinstance(data, Mapping):
        out = {k: keep(v) if isinstance(v, list) else v for k, v in data.items()}
        hidden = sum(len(v) - len(out[k]) for k, v in data.items() if isinstance(v, list))
        return out, hidden
    return data, 0


def _int(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def render_question(tool: Any, plan: Plan) -> str:
    """The confirmation question, from the plan: action, each target (name, vmid, node, state), the
    parameters that matter, the consequence."""
    targets = [o.label() for o in plan.objects if o.kind != "node" or o.facts.get("reach")]
    if tool.per_call_risk:
        action = "; ".join(f"{c.method} {c.concrete_path}" for c in plan.calls)
    else:
        action = tool.title if len(plan.objects) != 1 else tool.title.replace("guests", "guest")
    parts = [f"{action}: {', '.join(targets) or 'no existing guest'}"]
    params = _parameters(tool, plan)
    if params:
        parts.append(f"with {params}")
    if plan.notes:
        parts.append(f"({'; '.join(plan.notes)})")
    text = " ".join(parts) + "?"
    consequences = [tool.consequence] if tool.consequence else []
    for call in plan.calls if not consequences else ():
        why = explain_call(call.method, call.template, call.args)
        if why.risk is Risk.DESTRUCTIVE and why.reason not in consequences:
            consequences.append(why.reason)
    if consequences:
        text += " Consequence: " + "; ".join(c.rstrip(".") for c in consequences) + "."
    return text


def _parameters(tool: Any, plan: Plan) -> str:
    """The body parameters of the requests (redacted), a backup job's first; path ones are in the targets."""
    shown: list[str] = []
    for call in plan.calls:
        args = dict(redact(dict(call.args)))
        if "/cluster/backup" in call.template:
            keys = [k for k in _JOB_KEYS if k in args] + [k for k in args if k not in _JOB_KEYS]
        elif tool.per_call_risk or not tool.batch:
            keys = list(args)
        else:
            keys = [k for k in args if k != "vmid"]
        keys = [k for k in keys if k != "digest"]  # the config digest guards the edit; it is no decision
        for key in keys:
            item = f"{key}={args[key]}"
            if item not in shown:
                shown.append(item)
    text = ", ".join(shown)
    return text if len(text) <= 400 else text[:397] + "..."
