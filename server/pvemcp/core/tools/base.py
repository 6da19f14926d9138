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

if TYPE_CHECKING:
    from pvemcp.core.policy.ledger import AuditLedger
    from pvemcp.core.pve.client import PveClient
    from pvemcp.core.pve.resolve import GuestRef
    from pvemcp.core.spec.model import Spec

JsonDict = dict[str, Any]
ProgressFn = Callable[[float, float | None, str], Awaitable[None]]


@dataclass(frozen=True)
class CallContext:
    """Who calls and what the calling client can do (filled in by the door)."""

    caller: str = "local"
    can_elicit: bool = False
    confirmed: bool = False
    progress: ProgressFn | None = None


@dataclass(frozen=True)
class ToolResult:
    structured: JsonDict
    text: str
    is_error: bool = False


@dataclass(frozen=True)
class ConfirmationNeeded:
    question: str
    tool: str
    arguments: JsonDict


@dataclass(frozen=True)
class UnknownTool:
    name: str


Outcome = ToolResult | ConfirmationNeeded | UnknownTool


class ToolError(Exception):
    """A failure the model should read: what failed and what to do next (becomes is_error)."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


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

    @property
    def concrete_path(self) -> str:
        out = self.template
        for key, value in self.path.items():
            out = out.replace("{" + key + "}", str(value))
        return out

    def describe(self) -> JsonDict:
        where = "params" if self.method in ("GET", "DELETE") else "body"
        return {"method": self.method, "path": self.concrete_path, where: dict(self.args)}


@dataclass
class Plan:
    """Everything a mutating call will do; policy is decided on it before anything is sent."""

    calls: list[PlannedCall]
    risk: str
    risk_reason: str = ""
    new_vmids: list[int] = field(default_factory=list)
    new_nodes: list[str] = field(default_factory=list)
    wait: int = 0
    guests: list[GuestRef] = field(default_factory=list)  # when one call acts on several guests

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
    ledger: AuditLedger | None = None  # the audit ledger, for tools that read it back (undo)
    safety_snapshot: bool = False  # policy: snapshot/back up before rollback, restore-over, delete

    async def progress(self, value: float, total: float | None, message: str) -> None:
        if self.call.progress is not None:
            await self.call.progress(value, total, message)


def guest_label(guest: GuestRef) -> str:
    kind = "VM" if guest.type == "qemu" else "CT"
    name = f" ({guest.name})" if guest.name else ""
    return f"{kind} {guest.vmid}{name} on {guest.node}"
