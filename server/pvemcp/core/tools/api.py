"""Generic API access: search the 646 operations, describe one, and plan a call to any of them.

The generic tool is where a model could try to reach a destructive endpoint sideways, so the
path it gives is matched *exactly* against the spec (no case folding, no ``//``, no trailing
slash, no percent-encoding, no ``..``) and refused otherwise; the risk of the call is classified
from the matched operation and the arguments, never from the tool.
"""

from __future__ import annotations

import re
from typing import Any

from pvemcp.core.kinds import INT, STR, HandlerKind, Mode, ReadScope
from pvemcp.core.policy.risk import explain_call
from pvemcp.core.tools import undo
from pvemcp.core.tools.args import check_against_operation
from pvemcp.core.tools.base import JsonDict, Plan, PlannedCall, RunContext, ToolError, ToolResult
from pvemcp.core.tools.reads import page

_SAFE_PATH = re.compile(r"^(/[A-Za-z0-9_.@:!+=-]+)+$")


async def api_search(rc: RunContext) -> ToolResult:
    """Operations whose method, path or summary contain every word of the query."""
    if rc.args.get("operation"):
        return api_describe(rc, str(rc.args["operation"]))
    words = [w.lower() for w in str(rc.args.get("query") or "").split()]
    if not words:
        raise ToolError("give query (words) or operation ('METHOD /path')", field="query")
    hits = []
    for key in rc.spec:
        op = rc.spec.operation(key)
        haystack = f"{key} {op.summary}".lower()
        if all(w in haystack for w in words):
            hits.append({"operation": key, "summary": op.summary, "task": op.task})
    hits.sort(key=lambda h: (len(str(h["operation"])), str(h["operation"])))
    rc.args.setdefault("limit", 20)
    return page(rc, hits, "operations")


API_SEARCH = HandlerKind(
    "api_search",
    Mode.READ,
    api_search,
    read_scope=ReadScope.NONE,
    params={"query": STR, "operation": {**STR, "description": "'METHOD /path': its schema"}, "limit": INT},
)


def api_describe(rc: RunContext, key: str) -> ToolResult:
    method, _, path = key.strip().partition(" ")
    try:
        op = rc.spec.operation(f"{method.upper()} {path.strip()}")
    except KeyError:
        raise ToolError(f"no operation {key!r}; search with api_search query", field="operation") from None
    risk = explain_call(op.method, op.path, None)
    data: JsonDict = {
        "operation": op.key,
        "summary": op.summary,
        "description": op.description,
        "input_schema": op.input_schema,
        "task": op.task,
        "risk": str(risk.risk),
        "permissions": op.permissions,
    }
    return ToolResult({"data": data}, f"{op.key}: {op.summary}")


async def plan_api_get(rc: RunContext) -> Plan:
    """The generic read tool: one GET, planned like any call so that read scope sees what it reads."""
    return _plan_generic(rc, "GET")


API_GET = HandlerKind(
    "api_get", Mode.GENERIC_READ, plan_api_get, params={"path": STR, "args": {"type": "object"}}, required=("path",)
)


async def plan_api_call(rc: RunContext) -> Plan:
    """The generic write tool: one POST/PUT/DELETE; a GET belongs to api_get (listed in read-only mode)."""
    method = str(rc.args["method"])
    if method.upper() == "GET" or method not in ("POST", "PUT", "DELETE"):
        raise ToolError("method: POST, PUT or DELETE (read with api_get)", field="method")
    return _plan_generic(rc, method)


API_CALL = HandlerKind(
    "api_call",
    Mode.GENERIC,
    plan_api_call,
    params={
        "method": {"enum": ["POST", "PUT", "DELETE"]},
        "path": {**STR, "description": "e.g. /nodes/pve1/qemu/100/config"},
        "args": {"type": "object"},
    },
    required=("method", "path"),
)


def _plan_generic(rc: RunContext, method: str) -> Plan:
    path = str(rc.args["path"])
    if not _SAFE_PATH.match(path) or "/../" in path + "/" or "/./" in path + "/":
        raise ToolError(
            "path: give a plain concrete API path like /nodes/pve1/qemu/100/config "
            "(no query string, percent-encoding, '..', '//' or trailing '/')",
            field="path",
        )
    path = path.removeprefix("/api2/json")
    match = rc.spec.match(method, path)
    if match is None:
        if rc.spec.path_known(path):
            raise ToolError(f"{method} is not allowed on {path}; see api_search operation", field="method")
        raise ToolError(f"no API operation matches {method} {path}; find one with api_search", field="path")
    op, bound = match
    args: dict[str, Any] = dict(rc.args.get("args") or {})
    clash = sorted(set(args) & set(bound))
    if clash:
        raise ToolError(f"args: {clash[0]} is already given by the path", field="args")
    typed_path: JsonDict = {k: _typed(op.input_schema, k, v) for k, v in bound.items()}
    check_against_operation(op, {**typed_path, **args})
    classification = explain_call(op.method, op.path, args)
    call = PlannedCall(method=op.method, template=op.path, path=typed_path, args=args, task=op.task, label=op.key)
    if op.method in ("PUT", "POST") and op.path in undo.CONFIG_TEMPLATES:  # config changes stay undoable
        before, after = undo.record_in_flight(undo.changed_keys(args))
        call = PlannedCall(**{**call.__dict__, "before": before, "after": after})
    return Plan(calls=[call], risk=classification.risk)


def _typed(schema: JsonDict, name: str, value: str) -> Any:
    """Path segments are strings; the operation may declare them integers (vmid)."""
    if schema["properties"].get(name, {}).get("type") == "integer" and value.isdigit():
        return int(value)
    return value
