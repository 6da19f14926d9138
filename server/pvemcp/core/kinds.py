"""The handler kinds of tools.yaml: one record each, the only place a kind's name is looked up.

A tools.yaml entry names its ``handler``; the record of that kind says everything the catalog and the
pipeline need to know of it: whether it reads or plans a change, which function does the work, the
parameters pvemcp adds beyond the Proxmox operation's own (and which of those are required), and how the
read scope applies. Adding a tool of an existing kind is one tools.yaml entry; a new kind is its function
in ``core/tools/`` plus one record here.

The function is named as ``"module:function"`` under ``pvemcp.core.tools`` and imported on the first call
(:meth:`HandlerKind.function`): a server start that only lists tools never imports the handler modules.
"""

from __future__ import annotations

import enum
import importlib
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pvemcp.dialect.types import JsonDict

if TYPE_CHECKING:
    from pvemcp.core.tools.base import Plan, RunContext, ToolResult

INT: JsonDict = {"type": "integer"}
BOOL: JsonDict = {"type": "boolean"}
STR: JsonDict = {"type": "string"}


class Mode(enum.Enum):
    """What a kind's function does with a call."""

    READ = "read"  #: answers from Proxmox's reads; never governed as a change
    PLAN = "plan"  #: plans the request(s) of a change, which the pipeline governs, confirms and executes
    GENERIC = "generic"  #: plans an arbitrary API request; its risk comes from the operation it reaches


class ReadScope(enum.Enum):
    """How the read scope applies to a READ kind."""

    PROBE = "probe"  #: the pipeline checks what the call names (guest, node, task) before it reads
    FILTERS = "filters"  #: the function filters its own rows with the scope's test (``visible=``)
    NONE = "none"  #: reads nothing of the cluster (the bundled API schema)


@dataclass(frozen=True)
class HandlerKind:
    """One handler kind: see the module docstring."""

    name: str
    mode: Mode
    entry: str  #: ``"module:function"`` under ``pvemcp.core.tools``
    params: Mapping[str, JsonDict] = field(default_factory=dict)
    required: tuple[str, ...] = ()
    read_scope: ReadScope = ReadScope.PROBE

    def function(self) -> Callable[..., Any]:
        """The kind's function (``(rc, ...) -> ToolResult | Plan``, async or not), imported on first use."""
        module, name = self.entry.split(":")
        func: Callable[..., Any] = getattr(importlib.import_module(f"pvemcp.core.tools.{module}"), name)
        return func

    async def _call(self, rc: RunContext, **kwargs: Any) -> Any:
        result = self.function()(rc, **kwargs)
        return await result if inspect.isawaitable(result) else result

    async def read(self, rc: RunContext, **kwargs: Any) -> ToolResult:
        """Run a READ kind (``kwargs``: ``visible=`` for a kind that filters its own rows)."""
        result: ToolResult = await self._call(rc, **kwargs)
        return result

    async def plan(self, rc: RunContext) -> Plan:
        """Run a PLAN or GENERIC kind: the request(s) the call would send."""
        result: Plan = await self._call(rc)
        return result


_PAGE: dict[str, JsonDict] = {"offset": INT, "limit": INT}


def _read(name: str, entry: str, **kw: Any) -> HandlerKind:
    return HandlerKind(name, Mode.READ, entry, **kw)


def _plan(name: str, entry: str, **kw: Any) -> HandlerKind:
    return HandlerKind(name, Mode.PLAN, entry, **kw)


_ALL = (
    # reads
    _read(
        "guest_list",
        "reads:guest_list",
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
            **_PAGE,
        },
    ),
    _read("guest_read", "reads:guest_read"),
    _read("api_read", "reads:api_read", params={}),
    _read("storage_list", "reads:storage_list", params={}),
    _read("cluster_status", "reads:cluster_status"),
    _read("node_status", "reads:node_status"),
    _read("next_vmid", "reads:next_vmid"),
    _read("task_list", "reads:task_list", params=_PAGE),
    _read("task_status", "reads:task_status", params={"wait": INT}),
    _read("task_log", "reads:task_log", params={"limit": INT}),
    _read(
        "api_search",
        "api:api_search",
        read_scope=ReadScope.NONE,
        params={"query": STR, "operation": {**STR, "description": "'METHOD /path': its schema"}, "limit": INT},
    ),
    _read("guest_facts", "agent:guest_facts"),
    _read("guest_metrics", "metrics:guest_metrics"),
    _read("node_metrics", "metrics:node_metrics"),
    _read("guest_backups", "ops:guest_backups"),
    # changes
    _plan("guest_action", "guests:plan_guest_action"),
    _plan("guest_create", "guests:plan_create"),
    _plan("guest_clone", "guests:plan_clone"),
    _plan(
        "guest_config_set",
        "guests:plan_config_set",
        params={"set": {"type": "object"}, "delete": {"type": "array", "items": STR}},
    ),
    _plan("backup_now", "guests:plan_backup_now"),
    _plan("api_write", "guests:plan_operation"),
    _plan("backup_job", "guests:plan_backup_job"),
    _plan("task_stop", "guests:plan_task_stop"),
    _plan("guest_exec", "agent:plan_guest_exec"),
    _plan("guest_migrate", "ops:plan_migrate"),
    _plan("backup_restore", "ops:plan_restore"),
    _plan("disk_grow", "ops:plan_disk_grow", params={"disk": {**STR, "description": "default: the boot disk"}}),
    _plan(
        "config_undo",
        "undo:plan_config_undo",
        params={"call_id": {**STR, "description": "from the change's result"}},
        required=("call_id",),
    ),
    # the generic tools
    HandlerKind(
        "api_get",
        Mode.GENERIC,
        "api:plan_api_get",
        params={"path": STR, "args": {"type": "object"}},
        required=("path",),
    ),
    HandlerKind(
        "api_call",
        Mode.GENERIC,
        "api:plan_api_call",
        params={
            "method": {"enum": ["POST", "PUT", "DELETE"]},
            "path": {**STR, "description": "e.g. /nodes/pve1/qemu/100/config"},
            "args": {"type": "object"},
        },
        required=("method", "path"),
    ),
)

#: Every handler kind by the name tools.yaml uses.
KINDS: Mapping[str, HandlerKind] = {k.name: k for k in _ALL}


def kind_of(name: str) -> HandlerKind:
    """The record of handler ``name``, or a ``KeyError`` naming the kinds pvemcp has (a tools.yaml typo)."""
    try:
        return KINDS[name]
    except KeyError:
        raise KeyError(f"tools.yaml names handler {name!r}, which pvemcp does not have ({', '.join(KINDS)})") from None


def warm() -> None:
    """Import every kind's function now (the server's warm-up), so the first call does not."""
    for kind in _ALL:
        kind.function()
