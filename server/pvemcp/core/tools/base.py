"""Shared types of the tool pipeline: what a call gets, what it plans, what it returns.

Mutating tools are split in two on purpose: a handler first *plans* (resolves guests, builds the
exact requests) without sending anything, then the App applies policy (scope, risk, read-only,
confirmation, dry run) to the plan, and only then executes it. That split is what makes dry runs
exact and guarantees that nothing reaches Proxmox before every check has passed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pvemcp.core.catalog import ToolDef
from pvemcp.core.policy.risk_class import Risk

if TYPE_CHECKING:
    from pvemcp.core.policy.ledger import AuditLedger
    from pvemcp.core.pve.client import PveClient
    from pvemcp.core.pve.resolve import GuestRef
    from pvemcp.dialect.model import Spec

from pvemcp.dialect.types import JsonDict as JsonDict
from pvemcp.dialect.types import ProgressFn as ProgressFn  # re-exported: the tools import it from here


@dataclass(frozen=True)
class CallContext:
    """Who calls and what the calling client can do (filled in by the door)."""

    caller: str = "local"
    can_elicit: bool = False
    confirmed: bool = False
    progress: ProgressFn | None = None
    confirmed_plan: str | None = None
    """The digest of the plan the user confirmed (set with ``confirmed``): what may be sent, exactly."""
    call_id: str | None = None
    """Ties every ledger record of one call together, across the question and the confirmed run."""


@dataclass(frozen=True)
class ToolResult:
    structured: JsonDict
    text: str
    is_error: bool = False


@dataclass(frozen=True)
class ConfirmationNeeded:
    """The door must ask the user ``question``; on yes it calls ``tool`` again with ``arguments`` and a
    ``CallContext`` carrying ``confirmed_plan=plan_digest`` (and ``call_id``), so only the plan asked
    about can run."""

    question: str
    tool: str
    arguments: JsonDict
    plan_digest: str = ""
    call_id: str | None = None


@dataclass(frozen=True)
class UnknownTool:
    name: str


Outcome = ToolResult | ConfirmationNeeded | UnknownTool


class ToolError(Exception):
    """A failure the model should read: what failed and what to do next (becomes is_error)."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


#: Why a call was refused, for agents that branch without parsing prose (``structuredContent.refused``).
REFUSAL_REASONS = (
    "read_only",
    "scope",
    "rule",
    "declined",
    "expired",
    "plan_changed",
    "token",
    "no_confirmation",
    "rate_limited",
)


def refusal(reason: str, message: str, obj: Any = None, **extra: Any) -> ToolResult:
    """An ``isError`` result whose structured face says why: ``{"refused": {"reason", "object", "message"}}``."""
    assert reason in REFUSAL_REASONS, reason
    body: JsonDict = {"reason": reason, "message": message}
    if obj is not None:
        body["object"] = obj
    return ToolResult({"refused": body, **extra}, message, is_error=True)


@dataclass(frozen=True)
class PlannedCall:
    """One Proxmox request a mutating tool will send, exactly as it will be sent."""

    method: str
    template: str
    path: Mapping[str, Any]
    args: Mapping[str, Any]
    task: bool
    target: GuestRef | None = None
    label: str = ""
    # Run after the request succeeded (waiting on guest-agent exec, recording a config change's
    # before-state); it may add fields to the result item and returns extra ledger details.
    after: AfterHook | None = None
    # Run just before the request; if it fails, the request is not sent (the policy's safety snapshot);
    # a text it returns is reported with the result.
    before: BeforeHook | None = None
    # What the planner learned that the person deciding must read (the exact command line, a migration's
    # mode and the disks it copies, what a restore overwrites, a disk's size before and after, a safety
    # step): shown in the question, the dry run and the token preview, and bound by the plan's digest.
    note: str = ""

    @property
    def concrete_path(self) -> str:
        out = self.template
        for key, value in self.path.items():
            out = out.replace("{" + key + "}", str(value))
        return out

    def describe(self) -> JsonDict:
        where = "params" if self.method in ("GET", "DELETE") else "body"
        return {"method": self.method, "path": self.concrete_path, where: dict(self.args)}


@dataclass(frozen=True)
class PlanObject:
    """One thing a plan touches, with the facts the user is asked about and the scope is checked on.

    ``kind``: ``guest`` (name, node, type, state, pool, tags), ``new_guest``, ``backup_job`` (its
    selection), ``volume`` (its owner), ``task`` (its guest), ``node`` (a node-wide operation),
    ``cluster`` (a cluster-wide one), ``pool`` (every member of a pool).
    """

    kind: str
    id: str
    facts: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> JsonDict:
        return {"kind": self.kind, "id": self.id, **{k: v for k, v in self.facts.items() if v not in (None, "", [])}}

    def label(self) -> str:
        """``VM 105 (web1) on pve2, running`` / ``backup job backup-1 (selects all)`` ..."""
        f = self.facts
        if self.kind == "guest":
            kind = "VM" if f.get("type") == "qemu" else "CT" if f.get("type") == "lxc" else "guest"
            name = f" ({f['name']})" if f.get("name") else ""
            node = f" on {f['node']}" if f.get("node") else ""
            state = f", currently {f['state']}" if f.get("state") else ""
            return f"{kind} {self.id}{name}{node}{state}"
        extra = "; ".join(f"{k} {v}" for k, v in f.items() if v not in (None, "", []))
        return f"{self.kind.replace('_', ' ')} {self.id}" + (f" ({extra})" if extra else "")


@dataclass
class Plan:
    """Everything a call will do; policy is decided on it before anything is sent.

    ``calls`` are the exact requests; ``objects`` every thing they touch (filled in by the App from
    the calls and Proxmox's current facts). :meth:`digest` is what a confirmation binds: if the
    requests or the objects are different when the call is about to run, it does not run.
    """

    calls: list[PlannedCall]
    risk: Risk
    wait: int = 0
    guests: list[GuestRef] = field(default_factory=list)  # when one call acts on several guests
    objects: list[PlanObject] = field(default_factory=list)
    call_targets: list[Any] = field(default_factory=list)
    """Per request, the policy's ``CallTargets`` (indirect objects merged in): what scope checks."""
    facts: Mapping[int, Any] = field(default_factory=dict)
    """The guests (vmid -> ``GuestRef``) the objects were built from."""

    def digest(self) -> str:
        """SHA-256 of the canonical JSON of the requests and the objects they touch (with their state)."""
        import hashlib

        from pvemcp.core.policy._canonical import canonical_bytes

        body: JsonDict = {
            "requests": [c.describe() for c in self.calls],
            "objects": [o.to_json() for o in self.objects],
        }
        if self.notes:  # what the question told the person is part of what they confirmed
            body["notes"] = self.notes
        return hashlib.sha256(canonical_bytes(body)).hexdigest()

    @property
    def notes(self) -> list[str]:
        """The requests' notes, in order, each once (see :attr:`PlannedCall.note`)."""
        return list(dict.fromkeys(c.note for c in self.calls if c.note))

    @property
    def targets(self) -> list[GuestRef]:
        """Every existing guest the plan touches: checked against the scope, shown in the question."""
        seen = {g.vmid: g for g in self.guests}
        for call in self.calls:
            if call.target is not None:
                seen.setdefault(call.target.vmid, call.target)
        return list(seen.values())


AfterHook = Callable[["RunContext", PlannedCall, JsonDict], Awaitable[JsonDict | None]]
BeforeHook = Callable[["RunContext", PlannedCall], Awaitable[str | None]]


@dataclass
class RunContext:
    """What a handler may use: the tool, its validated arguments, the cluster's client and the spec."""

    tool: ToolDef
    args: JsonDict
    client: PveClient
    spec: Spec
    call: CallContext
    visible: Callable[[Mapping[str, Any]], bool] | None = None
    """Read scope for listings: entries (guests, volumes, tasks) this returns False for are left out."""
    ledger: AuditLedger | None = None  # the audit ledger, for tools that read it back (undo)
    safety_snapshot: bool = False  # policy: snapshot/back up before rollback, restore-over, delete

    async def progress(self, value: float, total: float | None, message: str) -> None:
        if self.call.progress is not None:
            await self.call.progress(value, total, message)


def guest_label(guest: GuestRef) -> str:
    kind = "VM" if guest.type == "qemu" else "CT"
    name = f" ({guest.name})" if guest.name else ""
    return f"{kind} {guest.vmid}{name} on {guest.node}"
