"""Moving, restoring and growing guests: migrate, restore a backup, list a guest's backups, grow a disk.

Planning reads what Proxmox would check anyway, so the confirmation can say it before anything is
sent: the migration precondition (``GET .../migrate``: local disks, local resources, nodes the VM
cannot go to), whether a restore overwrites an existing guest, the disk's current size.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from typing import Any

from pvemcp.core.kinds import STR, HandlerKind, Mode
from pvemcp.core.pve.errors import PveError
from pvemcp.core.tools import safety
from pvemcp.core.tools.args import check_against_operation
from pvemcp.core.tools.base import JsonDict, Plan, PlannedCall, RunContext, ToolError, ToolResult, guest_label
from pvemcp.core.tools.guests import next_free_vmid, resolve_targets
from pvemcp.core.tools.reads import page

_GIB = 1024**3
_SIZE = re.compile(r"^(\+)?(\d+(?:\.\d+)?)([KMGT])?$")
_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
_BOOT_DISKS = ("scsi0", "virtio0", "sata0", "ide0")


def _gib(n: float) -> str:
    return f"{n / _GIB:.1f}".rstrip("0").rstrip(".") + " GiB"


def _call(rc: RunContext, key: str, path: JsonDict, args: JsonDict, label: str, target: Any, note: str) -> PlannedCall:
    op = rc.spec.operation(key)
    check_against_operation(op, {**path, **args})
    return PlannedCall(op.method, op.path, path, args, op.task, target=target, label=label, note=note)


# ---------------------------------------------------------------------------------------------- migrate


async def plan_migrate(rc: RunContext) -> Plan:
    """guest_migrate: live for a running VM (local disks copied along), restart mode for a running CT."""
    (guest,) = await resolve_targets(rc)
    target = str(rc.args["target"])
    if target == guest.node:
        raise ToolError(f"{guest_label(guest)} is already on {target}", field="target")
    path: JsonDict = {"node": guest.node, "vmid": guest.vmid}
    args: JsonDict = {"target": target}
    notes: list[str] = []
    running = guest.status == "running"
    if guest.type == "qemu":
        pre = await rc.client.get("/nodes/{node}/qemu/{vmid}/migrate", path=path, params={"target": target})
        blocked = (pre.get("not_allowed_nodes") or {}).get(target)
        if blocked:
            reasons = "; ".join(f"{k}: {', '.join(map(str, v))}" for k, v in blocked.items() if v)
            raise ToolError(f"{guest_label(guest)} cannot go to {target}: {reasons}", field="target")
        if pre.get("local_resources"):
            raise ToolError(
                f"{guest_label(guest)} uses local devices ({', '.join(pre['local_resources'])}), which pin it to "
                f"{guest.node}",
                field="target",
            )
        online = bool(rc.args.get("online", running))
        if running and not online:
            raise ToolError("the VM is running: migrate it online, or shut it down first", field="online")
        disks = [d for d in pre.get("local_disks") or [] if not d.get("cdrom")]
        if disks and running:
            snapshots = await rc.client.get("/nodes/{node}/qemu/{vmid}/snapshot", path=path)
            if len([s for s in snapshots if s.get("name") != "current"]) > 0:
                # qemu-server QemuMigrate.pm scan_local_volumes refuses it inside the task
                raise ToolError(
                    f"{guest_label(guest)} has snapshots and local disks ({', '.join(d['volid'] for d in disks)}): "
                    "Proxmox refuses a live migration then (online storage migration not possible if "
                    "non-replicated snapshot exists). Shut it down and migrate offline (where its storage keeps "
                    "snapshots inside the volume), or delete the snapshots first",
                    field="vmid",
                )
        if online and running:
            args["online"] = 1
            notes.append("live (the VM keeps running)")
        else:
            notes.append("offline")
        if disks:
            if online and running:
                args["with-local-disks"] = 1
            size = sum(int(d.get("size") or 0) for d in disks)
            notes.append(f"copies local disk(s) {', '.join(d['volid'] for d in disks)} ({_gib(size)})")
    else:
        pre = await rc.client.get("/nodes/{node}/lxc/{vmid}/migrate", path=path, params={"target": target})
        blocked = (pre.get("not-allowed-nodes") or {}).get(target)
        if blocked:
            raise ToolError(f"{guest_label(guest)} cannot go to {target}: {blocked}", field="target")
        if running:
            args["restart"] = 1
            notes.append("restart mode: the container is shut down, moved and started again (downtime)")
        else:
            notes.append("offline")
    key = rc.tool.operations[guest.type]
    label = f"{guest_label(guest)} -> {target}, {', '.join(notes)}"
    call = _call(rc, key, path, args, label, guest, ", ".join(notes))
    return Plan(calls=[call], risk=rc.tool.risk, wait=rc.tool.wait)


GUEST_MIGRATE = HandlerKind("guest_migrate", Mode.PLAN, plan_migrate)


# ---------------------------------------------------------------------------------------------- backups


async def guest_backups(rc: RunContext) -> ToolResult:
    """guest_backups: every backup archive of a guest on every backup storage, newest first."""
    (guest,) = await resolve_targets(rc)
    storages = await rc.client.get("/storage")
    nodes = [n["node"] for n in await rc.client.get("/nodes") if n.get("status") == "online"]
    rows: dict[tuple[str, str | None], JsonDict] = {}
    for storage in storages:
        if "backup" not in str(storage.get("content", "")).split(",") or storage.get("disable"):
            continue
        shared = bool(storage.get("shared")) or storage.get("type") in ("nfs", "cifs", "pbs", "cephfs")
        allowed = str(storage.get("nodes") or "").split(",") if storage.get("nodes") else nodes
        for node in [n for n in nodes if n in allowed][: 1 if shared else None]:
            try:
                content = await rc.client.get(
                    "/nodes/{node}/storage/{storage}/content",
                    path={"node": node, "storage": storage["storage"]},
                    params={"content": "backup", "vmid": guest.vmid},
                )
            except PveError:
                continue  # a storage that is not active on that node holds nothing we can restore from there
            for entry in content:
                where = None if shared else node
                rows[(str(entry["volid"]), where)] = {
                    "volid": entry["volid"],
                    "storage": storage["storage"],
                    **({"node": node} if where else {}),
                    "created": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(int(entry.get("ctime", 0)))),
                    "ctime": int(entry.get("ctime", 0)),
                    "size": _gib(int(entry.get("size", 0))),
                    **{k: entry[k] for k in ("notes", "protected", "format") if entry.get(k) not in (None, "", 0)},
                }
    items = sorted(rows.values(), key=lambda r: -int(r["ctime"]))
    result = page(rc, items, f"backups of {guest_label(guest)}")
    if items:
        newest = items[0]
        text = f"{result.text}; newest {newest['volid']} ({newest['created']})"
        return ToolResult(result.structured, text)
    return ToolResult(result.structured, f"no backups of {guest_label(guest)} on any backup storage")


GUEST_BACKUPS = HandlerKind("guest_backups", Mode.READ, guest_backups)


# ---------------------------------------------------------------------------------------------- restore


_ARCHIVE = re.compile(r"vzdump-(qemu|lxc)-(\d+)-")


async def plan_restore(rc: RunContext) -> Plan:
    """backup_restore: to a new vmid (default: next free), or over an existing guest with force."""
    archive = str(rc.args["archive"])
    m = _ARCHIVE.search(archive)
    if m is None:
        example = "nfs-shared:backup/vzdump-qemu-105-2026_11_28-02_00_15.vma.zst"
        raise ToolError(f"archive: a vzdump backup volid (guest_backups lists them), e.g. {example}", field="archive")
    gtype, source = m.group(1), int(m.group(2))
    vmid = rc.args.get("vmid") or await next_free_vmid(rc)
    existing = None
    try:
        existing = await rc.client.resolve_guest(vmid)
    except PveError:
        existing = None
    force = bool(rc.args.get("force"))
    if existing is not None and not force:
        raise ToolError(
            f"{guest_label(existing)} exists; restoring over it replaces its disks and config. Pass force=true "
            "to overwrite it, or omit vmid to restore as a new guest",
            field="vmid",
        )
    if existing is not None and existing.type != gtype:
        raise ToolError(f"the archive holds a {gtype} guest but {guest_label(existing)} is not one", field="archive")
    node = rc.args.get("node") or (existing.node if existing is not None else None)
    if node is None:
        try:
            node = (await rc.client.resolve_guest(source)).node
        except PveError:
            node = next(n["node"] for n in await rc.client.get("/nodes") if n.get("status") == "online")
    if existing is not None and node != existing.node:
        raise ToolError(f"{guest_label(existing)}: restore over it on its own node", field="node")
    args: JsonDict = {"vmid": vmid}
    if gtype == "qemu":
        args["archive"] = archive
    else:
        args.update(ostemplate=archive, restore=1)
    for key in ("storage", "unique", "start"):
        if rc.args.get(key) is not None:
            args[key] = int(rc.args[key]) if isinstance(rc.args[key], bool) else rc.args[key]
    if existing is not None:
        args["force"] = 1
        label = (
            f"restore {archive} OVER {guest_label(existing)} (currently {existing.status}): its current disks "
            "and config are destroyed and replaced"
        )
    else:
        kind = "VM" if gtype == "qemu" else "CT"
        label = f"restore {archive} as new {kind} {vmid} on {node}"
    call = safety.guard(rc, _call(rc, f"POST /nodes/{{node}}/{gtype}", {"node": node}, args, label, existing, label))
    return Plan(calls=[call], risk=rc.tool.risk, wait=rc.tool.wait)


BACKUP_RESTORE = HandlerKind("backup_restore", Mode.PLAN, plan_restore)


# ---------------------------------------------------------------------------------------------- resize


def _disk_size(value: str) -> int:
    m = re.search(r"(?:^|,)size=(\d+(?:\.\d+)?)([KMGT]?)", value)
    return int(float(m.group(1)) * _UNITS[m.group(2)]) if m else 0


async def plan_disk_grow(rc: RunContext) -> Plan:
    """disk_grow: '+20G' adds, '52G' sets; the disk defaults to the boot disk (or rootfs)."""
    (guest,) = await resolve_targets(rc)
    path = {"node": guest.node, "vmid": guest.vmid}
    config: Mapping[str, Any] = await rc.client.get(f"/nodes/{{node}}/{guest.type}/{{vmid}}/config", path=path)
    disk = rc.args.get("disk")
    if not disk:
        candidates = ["rootfs"] if guest.type == "lxc" else [d for d in _BOOT_DISKS if d in config]
        boot = str(config.get("boot", ""))
        order = boot.removeprefix("order=").split(";")
        ordered = [d for d in order if d in config and "media=cdrom" not in str(config[d])]
        choices = ordered or candidates
        if not choices:
            raise ToolError(f"{guest_label(guest)} has no disk to grow", field="disk")
        disk = choices[0]
    if disk not in config:
        disks = [k for k in config if re.match(r"^(scsi|virtio|sata|ide|efidisk|tpmstate)\d+$|^(rootfs|mp\d+)$", k)]
        raise ToolError(f"{guest_label(guest)} has no disk {disk}; its disks: {', '.join(disks)}", field="disk")
    size = str(rc.args["size"]).strip().upper().replace("GB", "G").replace("GIB", "G")
    m = _SIZE.match(size)
    if m is None:
        raise ToolError("size: '+20G' to add 20 GiB, or '52G' for the new total", field="size")
    current = _disk_size(str(config[disk]))
    wanted = float(m.group(2)) * _UNITS[m.group(3) or ""]
    new = current + wanted if m.group(1) else wanted
    if current and new < current:
        raise ToolError(
            f"{disk} of {guest_label(guest)} is {_gib(current)}; Proxmox cannot shrink disks (asked: {_gib(new)})",
            field="size",
        )
    args: JsonDict = {"disk": disk, "size": size}
    if config.get("digest"):
        args["digest"] = config["digest"]
    note = f"grow {disk} from {_gib(current)} to {_gib(new)}"
    call = _call(rc, rc.tool.operations[guest.type], path, args, f"{guest_label(guest)}: {note}", guest, note)
    return Plan(calls=[call], risk=rc.tool.risk, wait=rc.tool.wait)


DISK_GROW = HandlerKind(
    "disk_grow", Mode.PLAN, plan_disk_grow, params={"disk": {**STR, "description": "default: the boot disk"}}
)
