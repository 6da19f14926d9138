"""Undo of a guest config change: the before-state goes to the audit ledger, one call puts it back.

Recording: a config change (``guest_config_set``, and ``config_undo`` itself) reads the config before
it is sent (only a GET, during planning) and, once Proxmox accepted the change, reads it again. The
ledger record of the change then carries ``details.undo``: a call id of its own (independent of the
ledger's record ids), the changed keys' previous values (``null`` = the key was absent), the digest
before and the digest after. The call id is shown in the tool's result, so "undo that change" is one
call.

Undoing: ``config_undo`` finds the record by call id, refuses when the guest's config digest is no
longer the digest after that change (someone changed it since: undoing would clobber their change), and
otherwise sends one PUT that sets the previous values back and deletes the keys the change added,
guarded by the current digest (PVE's ``digest`` check refuses if the config moves in between).

A value that the ledger would not store verbatim (a secret-looking key or text, or a value longer than
the ledger keeps) is recorded as unrecorded; such a change cannot be undone and says so.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable, Mapping
from typing import Any

from pvemcp.core.kinds import STR, HandlerKind, Mode
from pvemcp.core.policy.ledger import MAX_VALUE_CHARS
from pvemcp.core.policy.redact import redact
from pvemcp.core.pve.resolve import GuestRef
from pvemcp.core.tools.args import check_against_operation
from pvemcp.core.tools.base import (
    AfterHook,
    BeforeHook,
    JsonDict,
    Plan,
    PlannedCall,
    RunContext,
    ToolError,
    guest_label,
)

UNRECORDED = {"unrecorded": True}


def _config_path(guest: GuestRef) -> tuple[str, JsonDict]:
    return f"/nodes/{{node}}/{guest.type}/{{vmid}}/config", {"node": guest.node, "vmid": guest.vmid}


async def read_config(rc: RunContext, guest: GuestRef) -> JsonDict:
    template, path = _config_path(guest)
    data = await rc.client.get(template, path=path)
    return dict(data) if isinstance(data, Mapping) else {}


def _storable(key: str, value: Any) -> bool:
    """Whether the ledger keeps ``value`` byte for byte (not masked, not cut)."""
    return bool(redact({key: value}, max_chars=MAX_VALUE_CHARS) == {key: value})


def before_state(config: Mapping[str, Any], keys: Iterable[str]) -> JsonDict:
    """The previous values of ``keys`` (``None``: absent), unrecorded where the ledger would alter them."""
    out: JsonDict = {}
    for key in keys:
        value = config.get(key)
        out[key] = value if value is None or _storable(key, value) else UNRECORDED
    return out


def recorder(guest: GuestRef, before: JsonDict, digest_before: str | None) -> AfterHook:
    """The after-hook of a config change: read the new digest, name the change, return the ledger details."""

    async def after(rc: RunContext, call: PlannedCall, item: JsonDict) -> JsonDict | None:
        if rc.ledger is None:
            return None  # nothing to undo from: no call id is promised
        config = await read_config(rc, guest)
        call_id = "chg-" + secrets.token_hex(5)
        item["call_id"] = call_id
        undo = {
            "call_id": call_id,
            "vmid": guest.vmid,
            "type": guest.type,
            "before": before,
            "digest_before": digest_before,
            "digest_after": config.get("digest"),
        }
        return {"undo": undo}

    return after


async def record_change(rc: RunContext, guest: GuestRef, keys: Iterable[str]) -> AfterHook:
    """Read the before-state of ``keys`` now (planning) and return the hook that records it."""
    config = await read_config(rc, guest)
    return recorder(guest, before_state(config, keys), config.get("digest"))


CONFIG_TEMPLATES = ("/nodes/{node}/qemu/{vmid}/config", "/nodes/{node}/lxc/{vmid}/config")
_NOT_CONFIG = frozenset({"digest", "delete", "revert", "skiplock", "background_delay"})


def changed_keys(args: Mapping[str, Any]) -> list[str]:
    """The config keys a config PUT/POST sets or deletes."""
    deleted = [k.strip() for k in str(args.get("delete") or "").replace(";", ",").split(",") if k.strip()]
    return [k for k in args if k not in _NOT_CONFIG] + [k for k in deleted if k not in args]


def record_in_flight(keys: Iterable[str]) -> tuple[BeforeHook, AfterHook]:
    """Hooks recording a config change planned elsewhere (the generic API tool): the before-state is
    read just before the request is sent, then recorded like a ``guest_config_set`` change."""
    wanted = list(keys)
    seen: dict[str, Any] = {}

    async def before(rc: RunContext, call: PlannedCall) -> str | None:
        try:
            guest = await rc.client.resolve_guest(int(call.path["vmid"]))
            config = await read_config(rc, guest)
        except Exception:  # the request itself will report what is wrong; it just is not undoable then
            return None
        seen.update(guest=guest, before=before_state(config, wanted), digest=config.get("digest"))
        return None

    async def after(rc: RunContext, call: PlannedCall, item: JsonDict) -> JsonDict | None:
        if "guest" not in seen:
            return None
        return await recorder(seen["guest"], seen["before"], seen["digest"])(rc, call, item)

    return before, after


def find_change(rc: RunContext, call_id: str) -> JsonDict:
    """The ``details.undo`` of the succeeded change ``call_id`` in the ledger."""
    if rc.ledger is None:
        raise ToolError("undo needs the audit ledger, and none is configured (policy.audit_log)", field="call_id")
    found: JsonDict | None = None
    with open(rc.ledger.path, encoding="utf-8") as handle:
        for line in handle:
            if call_id not in line:
                continue
            try:
                record = json.loads(line)
            except ValueError:
                continue
            undo = (record.get("details") or {}).get("undo") or {}
            if undo.get("call_id") == call_id and record.get("outcome") == "succeeded":
                found = undo
    if found is None:
        raise ToolError(
            f"no recorded config change with call id {call_id!r} (the call id is in the result of "
            "guest_config_set or config_undo)",
            field="call_id",
        )
    return found


def _show(value: Any) -> str:
    return "(absent)" if value is None else repr(value) if not isinstance(value, str) else value


async def plan_config_undo(rc: RunContext) -> Plan:
    """config_undo: one PUT restoring the before-state of a recorded change, guarded by digests."""
    call_id = str(rc.args["call_id"]).strip()
    change = find_change(rc, call_id)
    vmid = int(change["vmid"])
    try:
        guest = await rc.client.resolve_guest(vmid)
    except Exception as exc:
        raise ToolError(f"the guest of change {call_id} is gone: {exc}", field="call_id") from None
    before: Mapping[str, Any] = change.get("before") or {}
    lost = sorted(k for k, v in before.items() if v == UNRECORDED)
    if lost:
        raise ToolError(
            f"change {call_id} cannot be undone: the previous value of {', '.join(lost)} was not recorded "
            "(a secret or a value too long for the ledger); set it by hand with guest_config_set",
            field="call_id",
        )
    config = await read_config(rc, guest)
    current = config.get("digest")
    if current != change.get("digest_after"):
        raise ToolError(
            f"the config of {guest_label(guest)} changed after {call_id} (digest {current} is not "
            f"{change.get('digest_after')}); undoing would overwrite the later change. Read guest_config and "
            "set the values you want with guest_config_set",
            field="call_id",
        )
    to_set = {k: v for k, v in before.items() if v is not None}
    to_delete = sorted(k for k, v in before.items() if v is None and k in config)
    args: JsonDict = dict(to_set)
    if to_delete:
        args["delete"] = ",".join(to_delete)
    if not args:
        raise ToolError(f"change {call_id} left nothing to undo: the config already has its previous values")
    args["digest"] = current
    template, path = _config_path(guest)
    op = rc.spec.operation(f"PUT {template}")
    check_against_operation(op, {**path, **args})
    changes = "; ".join(f"{k}: {_show(config.get(k))} -> {_show(v)}" for k, v in sorted(before.items()))
    call = PlannedCall(
        method="PUT",
        template=op.path,
        path=path,
        args=args,
        task=op.task,
        target=guest,
        label=f"undo {call_id} on {guest_label(guest)} ({changes})",
        note=f"undo {call_id}: {changes}",
        after=recorder(guest, before_state(config, before), current),
    )
    return Plan(calls=[call], risk=rc.tool.risk)


CONFIG_UNDO = HandlerKind(
    "config_undo",
    Mode.PLAN,
    plan_config_undo,
    params={"call_id": {**STR, "description": "from the change's result"}},
    required=("call_id",),
)
