"""The policy's safety snapshot (``[policy] safety_snapshot = true``): a way back before a one-way step.

Before a snapshot rollback, pvemcp snapshots the current state (so the rollback itself can be rolled
back). Before a guest delete or a restore over an existing guest, a snapshot would not survive (PVE
removes a guest's snapshots with its disks), so pvemcp takes a vzdump backup instead, on a backup
storage of the guest's node (a shared one when there is one). The question names the step; if it
fails, the request is not sent.
"""

from __future__ import annotations

import time

from pvemcp.core.tools.base import PlannedCall, RunContext, ToolError

SAFETY_WAIT_S = 3600


def _kind(call: PlannedCall) -> str | None:
    if call.target is None:
        return None
    if call.method == "POST" and call.template.endswith("/rollback"):
        return "snapshot"
    if call.method == "DELETE" and call.template in ("/nodes/{node}/qemu/{vmid}", "/nodes/{node}/lxc/{vmid}"):
        return "backup"
    if call.method == "POST" and call.template in ("/nodes/{node}/qemu", "/nodes/{node}/lxc"):
        return "backup" if call.args.get("force") else None
    return None


def guard(rc: RunContext, call: PlannedCall) -> PlannedCall:
    """``call`` with the safety step attached when the policy asks for one and the call needs it."""
    kind = _kind(call) if rc.safety_snapshot else None
    if kind is None:
        return call
    step = "a safety snapshot" if kind == "snapshot" else "a safety backup (vzdump)"
    label = f"{call.label} — {step} is taken first"
    note = "; ".join(n for n in (call.note, f"{step} is taken first") if n)
    hook = _snapshot if kind == "snapshot" else _backup
    return PlannedCall(**{**call.__dict__, "label": label, "before": hook, "note": note})


async def _wait(rc: RunContext, upid: object, what: str) -> None:
    result = await rc.client.wait_task(str(upid), deadline_s=SAFETY_WAIT_S)
    if not result.ok:
        raise ToolError(f"{what}: {result.exitstatus or 'did not finish'}")


async def _snapshot(rc: RunContext, call: PlannedCall) -> str:
    guest = call.target
    assert guest is not None
    name = time.strftime("pvemcp_safety_%Y%m%d_%H%M%S", time.gmtime())
    upid = await rc.client.post(
        f"/nodes/{{node}}/{guest.type}/{{vmid}}/snapshot",
        path={"node": guest.node, "vmid": guest.vmid},
        data={"snapname": name, "description": f"taken by pvemcp before: {call.label}"},
    )
    await _wait(rc, upid, f"safety snapshot {name}")
    return f"safety snapshot {name} taken"


async def _backup(rc: RunContext, call: PlannedCall) -> str:
    guest = call.target
    assert guest is not None
    storages = await rc.client.get(
        "/nodes/{node}/storage", path={"node": guest.node}, params={"content": "backup", "enabled": 1}
    )
    usable = sorted(storages or [], key=lambda s: (not s.get("shared"), str(s.get("storage"))))
    if not usable:
        raise ToolError(f"no backup storage is available on {guest.node} for the safety backup")
    storage = str(usable[0]["storage"])
    upid = await rc.client.post(
        "/nodes/{node}/vzdump",
        path={"node": guest.node},
        data={"vmid": str(guest.vmid), "storage": storage, "mode": "snapshot"},
    )
    await _wait(rc, upid, f"safety backup of {guest.vmid} on {storage}")
    return f"safety backup of {guest.vmid} on {storage} taken"
