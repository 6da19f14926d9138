"""The handler kinds of tools.yaml: the record type, and where each kind's record lives.

A tools.yaml entry names its ``handler``; the record of that kind (a :class:`HandlerKind`) says everything
the catalog and the pipeline need to know of it: whether it reads or plans a change, the function that
does the work, the parameters pvemcp adds beyond the Proxmox operation's own (and which of those are
required), how the read scope applies, and what a change's result reads back afterwards.

Each record is written in the module of its function, right below it, as a module-level constant named
after the kind in capitals (``GUEST_ACTION = HandlerKind("guest_action", ...)`` in ``core/tools/guests.py``).
This module keeps only the record type and :data:`MODULES`, one line per kind naming its module. The index
is kept, rather than discovering the modules of ``core/tools/``, because it lets a start that only lists
tools (from the catalog cache) know where a kind lives without importing any handler module, lets the
App import just the one module a call needs, and turns a tools.yaml typo into an error that lists the
kinds pvemcp has. ``tests/core/test_kinds.py`` holds the index and the records to each other.

Adding a tool of an existing kind is one tools.yaml entry; a new kind is its module (function and record)
plus one line of :data:`MODULES`.
"""

from __future__ import annotations

import enum
import importlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pvemcp.dialect.types import JsonDict

# JSON-schema snippets of the parameters the records add.
INT: JsonDict = {"type": "integer"}
BOOL: JsonDict = {"type": "boolean"}
STR: JsonDict = {"type": "string"}
PAGE: Mapping[str, JsonDict] = {"offset": INT, "limit": INT}


class Mode(enum.Enum):
    """What a kind's function does with a call."""

    READ = "read"  #: answers from Proxmox's reads; never governed as a change
    PLAN = "plan"  #: plans the request(s) of a change, which the pipeline governs, confirms and executes
    GENERIC = "generic"  #: plans an arbitrary API request; its risk comes from the operation it reaches
    #: plans one arbitrary GET: governed by the rules and the read scope like a change, never confirmed,
    #: answered at once (filtered by the scope), and planned from the cached guest index like a read
    GENERIC_READ = "generic_read"


class ReadScope(enum.Enum):
    """How the read scope applies to a READ kind."""

    PROBE = "probe"  #: the pipeline checks what the call names (guest, node, task) before it reads
    OPERATION = "operation"  #: a curated GET: the node, guest or volume its operation's path names is checked
    FILTERS = "filters"  #: the function filters its own rows with the scope's test (``visible=``)
    NONE = "none"  #: reads nothing of the cluster (the bundled API schema)


class Fact(enum.StrEnum):
    """What the result of a change reads back from Proxmox once its request succeeded (``core/tools/conclude.py``).

    A kind's record gives the default; a tools.yaml entry's ``reports:`` replaces it for one tool (a
    snapshot reports the config's new digest, a deleted guest only that it is gone).
    """

    STATE = "state"  #: the guest's state after the action (``guest_status``)
    DIGEST = "digest"  #: the guest config's new ``digest``, which the next guarded change needs
    PENDING = "pending"  #: configuration changes Proxmox holds until the next reboot
    SNAPNAME = "snapname"  #: the snapshot's name when it goes in the body (one in the path is always shown)
    DESTROYED = "destroyed"  #: the guest is gone: ``guest_status`` is ``destroyed``, nothing is read
    NEW_GUEST = "new_guest"  #: the guest a create or clone made: vmid, node, name, state, a name clash
    VOLIDS = "volids"  #: the archive each backed-up guest got
    JOB_ID = "job_id"  #: the id of the backup job created


#: A kind's function: ``async (rc, ...) -> ToolResult`` for a READ kind (``visible=`` for one that filters
#: its own rows), ``async (rc) -> Plan`` for a PLAN or GENERIC kind.
KindFunction = Callable[..., Awaitable[Any]]


@dataclass(frozen=True)
class HandlerKind:
    """One handler kind: see the module docstring."""

    name: str  #: as tools.yaml's ``handler`` names it
    mode: Mode
    function: KindFunction  #: defined just above the record, in the same module
    params: Mapping[str, JsonDict] = field(default_factory=dict)  #: added beyond the operation's own
    required: tuple[str, ...] = ()  #: which of ``params`` a call must give
    read_scope: ReadScope = ReadScope.PROBE  #: a READ kind only
    reports: tuple[Fact, ...] = (Fact.STATE,)  #: a change only: what its result reads back by default


#: Every handler kind by the name tools.yaml uses, and the module of ``pvemcp.core.tools`` holding its record.
MODULES: Mapping[str, str] = {
    # reads
    "guest_list": "reads",
    "guest_read": "reads",
    "api_read": "reads",
    "storage_list": "reads",
    "cluster_status": "reads",
    "node_status": "reads",
    "next_vmid": "reads",
    "task_list": "reads",
    "task_status": "reads",
    "task_log": "reads",
    "api_search": "api",
    "guest_facts": "agent",
    "guest_metrics": "metrics",
    "node_metrics": "metrics",
    "guest_backups": "ops",
    # changes
    "guest_action": "guests",
    "guest_create": "guests",
    "guest_clone": "guests",
    "guest_config_set": "guests",
    "backup_now": "guests",
    "api_write": "guests",
    "backup_job": "guests",
    "task_stop": "guests",
    "guest_exec": "agent",
    "guest_migrate": "ops",
    "backup_restore": "ops",
    "disk_grow": "ops",
    "config_undo": "undo",
    # the generic tools
    "api_get": "api",
    "api_call": "api",
}


def module_of(name: str) -> str:
    """The dotted module holding kind ``name``'s record; a ``KeyError`` naming the kinds pvemcp has (a tools.yaml
    typo) otherwise."""
    try:
        return f"pvemcp.core.tools.{MODULES[name]}"
    except KeyError:
        raise KeyError(
            f"tools.yaml names handler {name!r}, which pvemcp does not have ({', '.join(MODULES)})"
        ) from None


def load(name: str) -> HandlerKind:
    """The record of kind ``name``, importing its module: for the catalog build, the warm-up and the tests.

    The App finds a record the same way, in its own few lines (``App._kind``), so that a call goes from the
    pipeline to the kind's function without a step through this module.
    """
    module = module_of(name)
    record = getattr(importlib.import_module(module), name.upper(), None)
    if not isinstance(record, HandlerKind) or record.name != name:
        raise LookupError(f"{module} has no HandlerKind record {name.upper()} named {name!r}")
    return record


def warm() -> None:
    """Import every handler module now (the server's warm-up), so the first call does not."""
    for name in MODULES:
        load(name)
