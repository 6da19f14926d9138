"""The handler kinds of tools.yaml: the record type, and where each kind's record lives.

A tools.yaml entry names its ``handler``; the record of that kind (a :class:`HandlerKind`) says everything
the catalog and the pipeline need to know of it: whether it reads or plans a change, the function that
does the work, the parameters pvemcp adds beyond the Proxmox operation's own (and which of those are
required), how the read scope applies, and what a change's result reads back afterwards.

Each record is written in the module of its function, right below it, as a module-level constant named
after the kind in capitals (``GUEST_ACTION = HandlerKind("guest_action", ...)`` in ``core/tools/guests.py``).
This module keeps only the record type; the catalog build finds the records by importing the modules of
``core/tools/`` (:func:`discover`) and writes each tool's module into the catalog (``ToolDef.kind_module``),
so a start that lists tools from the catalog cache imports no handler module, and a call imports just the
one module it needs. A tools.yaml typo is an error that lists the kinds pvemcp has.

Adding a tool of an existing kind is one tools.yaml entry; a new kind is one module of ``core/tools/`` (its
function and record). The catalog cache's key covers every module there, so a new one rebuilds it.
"""

from __future__ import annotations

import enum
import functools
import importlib
import pkgutil
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
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


def discover() -> Mapping[str, tuple[str, HandlerKind]]:
    """Every handler kind: name -> (the module holding its record, the record). Imports every module of
    ``core/tools/`` once, so only a catalog build, the warm-up and the tests call it; a name given twice is
    an error that names both places."""
    return _discovered()


@functools.cache
def _discovered() -> Mapping[str, tuple[str, HandlerKind]]:
    import pvemcp.core.tools as package

    found: dict[str, tuple[str, HandlerKind]] = {}
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
        module_name = f"{package.__name__}.{info.name}"
        module = importlib.import_module(module_name)
        for attribute, value in vars(module).items():
            if not isinstance(value, HandlerKind) or getattr(value.function, "__module__", None) != module_name:
                continue  # a record imported from elsewhere is not defined here
            if attribute != value.name.upper():
                raise LookupError(f"{module_name}.{attribute}: a HandlerKind record is named {value.name.upper()}")
            if value.name in found:
                raise LookupError(f"handler kind {value.name!r} is defined in {found[value.name][0]} and {module_name}")
            found[value.name] = (module_name, value)
    return MappingProxyType(dict(sorted(found.items())))  # read-only: the one cached copy is shared


def _located(name: str) -> tuple[str, HandlerKind]:
    """Kind ``name``'s module and record; a ``KeyError`` naming the kinds pvemcp has (a tools.yaml typo)."""
    known = discover()
    try:
        return known[name]
    except KeyError:
        raise KeyError(f"tools.yaml names handler {name!r}, which pvemcp does not have ({', '.join(known)})") from None


def module_of(name: str) -> str:
    """The dotted module holding kind ``name``'s record (a ``KeyError`` for an unknown kind)."""
    return _located(name)[0]


def load(name: str) -> HandlerKind:
    """The record of kind ``name``: for the catalog build, the warm-up and the tests.

    The App finds a record in its own few lines (``App._kind``, by the module the catalog recorded), so that
    a call goes from the pipeline to the kind's function without a step through this module.
    """
    return _located(name)[1]


def warm() -> None:
    """Import every handler module now (the server's warm-up), so the first call does not."""
    discover()
