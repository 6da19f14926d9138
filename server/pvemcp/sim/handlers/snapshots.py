"""Snapshots of VMs and containers (``pve-guest-common`` ``AbstractConfig`` semantics, notes §4.6).

The list is a tree: every snapshot records the snapshot that was ``current`` when it was taken as its
``parent``; the list ends with the ``current`` pseudo-entry ("You are here!"). Creating, deleting and
rolling back are tasks that hold a config lock (``snapshot``, ``snapshot-delete``, ``rollback``) while
they run; name/lock/template problems end the task with PVE's texts.
"""

from __future__ import annotations

from typing import Any

from pvemcp.sim.errors import TaskError, fail
from pvemcp.sim.handlers.common import (
    check_lock_sync,
    check_lock_task,
    check_quorum,
    find_snapshot,
    guest_alive,
    load_guest,
    set_running,
    set_stopped,
    start_guest_task,
)
from pvemcp.sim.routing import Call, guest_route
from pvemcp.sim.state import Config, Guest, Snapshot, config_digest
from pvemcp.sim.tasks import Task, TaskContext, Worker

RESERVED = {"qemu": ("current", "pending"), "lxc": ("current", "vzdump")}
SNAPSHOT_SECONDS = 1.0
VMSTATE_SECONDS = 3.0


@guest_route("GET", "/nodes/{node}/{type}/{vmid}/snapshot")
def snapshot_list(call: Call) -> list[dict[str, Any]]:
    gtype = call.guest_type
    guest = load_guest(call, gtype)
    out: list[dict[str, Any]] = []
    for snap in guest.snapshots.values():
        entry: dict[str, Any] = {"name": snap.name, "snaptime": snap.snaptime, "description": snap.description}
        if gtype == "qemu":
            entry["vmstate"] = 1 if snap.vmstate else 0
        if snap.parent:
            entry["parent"] = snap.parent
        if snap.snapstate:
            entry["snapstate"] = snap.snapstate
        out.append(entry)
    current: dict[str, Any] = {
        "name": "current",
        "description": "You are here!",
        "digest": config_digest(guest),
        "running": 1 if guest.status == "running" else 0,
    }
    parent = guest.config.get("parent")
    if parent:
        current["parent"] = str(parent)
    out.append(current)
    return out


@guest_route("POST", "/nodes/{node}/{type}/{vmid}/snapshot")
def snapshot_create(call: Call) -> Task:
    gtype = call.guest_type
    check_quorum(call)
    guest = load_guest(call, gtype)
    state = call.sim.state
    name = call.req("snapname")
    if name in RESERVED[gtype]:
        raise fail(f"unable to use snapshot name '{name}' (reserved name)")
    vmstate = call.flag("vmstate") and gtype == "qemu"
    description = call.text("description", "") or ""

    def worker(ctx: TaskContext) -> Worker:
        if not guest_alive(state, guest):
            raise TaskError(f"Configuration file '{guest.config_path()}' does not exist")
        check_lock_task(guest)
        if name in guest.snapshots:
            raise TaskError(f"snapshot name '{name}' already used")
        if guest.template:
            raise TaskError("you can't take a snapshot if it's a template")
        guest.config["lock"] = "snapshot"
        now = int(ctx.now())
        parent = guest.config.get("parent")
        snap_cfg: Config = {k: v for k, v in guest.config.items() if k not in ("lock", "parent")}
        if parent:
            snap_cfg["parent"] = parent
        snap_cfg["snaptime"] = now
        if description:
            snap_cfg["description"] = description
        snap = Snapshot(
            name=name,
            snaptime=now,
            description=description,
            config=snap_cfg,
            parent=str(parent) if parent else None,
            vmstate=bool(vmstate and guest.status == "running"),
            snapstate="prepare",
        )
        snap_cfg["snapstate"] = "prepare"
        guest.snapshots[name] = snap
        state.touch()
        try:
            if snap.vmstate:
                ctx.log(f"saving VM state and RAM using storage '{_state_storage(guest)}'")
                yield VMSTATE_SECONDS
                saved = guest.maxmem // (1024**2) // 3
                ctx.log(f"completed saving the VM state in {int(VMSTATE_SECONDS)}s, saved {saved} MiB")
            for _key, value in guest.disks():
                volid = value.split(",", 1)[0]
                if volid.startswith("local-lvm:"):
                    ctx.log(f'  Logical volume "snap_{volid.split(":", 1)[1]}_{name}" created.')
                else:
                    ctx.log(f"snapshotting '{volid}'")
            yield SNAPSHOT_SECONDS
            snap.snapstate = None
            snap_cfg.pop("snapstate", None)
            if snap.vmstate:
                snap_cfg["vmstate"] = f"{_state_storage(guest)}:vm-{guest.vmid}-state-{name}"
            guest.config["parent"] = name
        finally:
            guest.config.pop("lock", None)
            guest.config = dict(sorted(guest.config.items()))
            state.touch()

    wtype = "qmsnapshot" if gtype == "qemu" else "vzsnapshot"
    return start_guest_task(call, wtype, worker)


def _state_storage(guest: Guest) -> str:
    for _key, value in guest.disks():
        return value.split(":", 1)[0]
    return "local-lvm"


@guest_route("DELETE", "/nodes/{node}/{type}/{vmid}/snapshot/{snapname}")
def snapshot_delete(call: Call) -> Task:
    gtype = call.guest_type
    guest = load_guest(call, gtype)
    state = call.sim.state
    name = call.req("snapname")

    def worker(ctx: TaskContext) -> Worker:
        # pve-guest-common AbstractConfig.pm snapshot_delete: set_lock('snapshot-delete') runs check_lock
        # whether or not 'force' is set ('force' only ignores failing volume snapshot removals), and
        # the lock taken is the only one removed at the end — a guest locked otherwise keeps its lock
        snap = find_snapshot(guest, name, TaskError)
        check_lock_task(guest)
        guest.config["lock"] = "snapshot-delete"
        snap.snapstate = "delete"
        state.touch()
        try:
            yield SNAPSHOT_SECONDS
            for other in guest.snapshots.values():
                if other.parent == name:
                    other.parent = snap.parent
                    if snap.parent:
                        other.config["parent"] = snap.parent
                    else:
                        other.config.pop("parent", None)
            if guest.config.get("parent") == name:
                if snap.parent:
                    guest.config["parent"] = snap.parent
                else:
                    guest.config.pop("parent", None)
            del guest.snapshots[name]
        finally:
            if guest.config.get("lock") == "snapshot-delete":
                guest.config.pop("lock", None)
            if name in guest.snapshots:
                guest.snapshots[name].snapstate = None
            state.touch()

    wtype = "qmdelsnapshot" if gtype == "qemu" else "vzdelsnapshot"
    return start_guest_task(call, wtype, worker)


@guest_route("POST", "/nodes/{node}/{type}/{vmid}/snapshot/{snapname}/rollback")
def snapshot_rollback(call: Call) -> Task:
    gtype = call.guest_type
    guest = load_guest(call, gtype)
    state = call.sim.state
    name = call.req("snapname")
    start_after = call.flag("start")

    def worker(ctx: TaskContext) -> Worker:
        snap = find_snapshot(guest, name, TaskError)
        if snap.snapstate:
            raise TaskError(f"unable to rollback to incomplete snapshot (snapstate = {snap.snapstate})")
        check_lock_task(guest)
        if guest.status == "running":
            ctx.log(f"stopping {'VM' if gtype == 'qemu' else 'CT'} {guest.vmid}")
            set_stopped(state, guest)
        guest.config["lock"] = "rollback"
        state.touch()
        yield SNAPSHOT_SECONDS
        for _key, value in guest.disks():
            volid = value.split(",", 1)[0]
            if volid.startswith("local-lvm:"):
                ctx.log(f'  Logical volume "{volid.split(":", 1)[1]}" successfully removed.')
                ctx.log(f'  Logical volume "{volid.split(":", 1)[1]}" created.')
        restored: Config = {
            k: v for k, v in snap.config.items() if k not in ("snaptime", "description", "vmstate", "snapstate")
        }
        if "description" in guest.config:
            restored["description"] = guest.config["description"]
        restored["parent"] = name
        guest.config = dict(sorted(restored.items()))
        # pve-guest-common AbstractConfig.pm __snapshot_apply_config builds a new config from the snapshot
        # (plus description and unused disks): pending changes are dropped
        guest.pending.clear()
        guest.pending_delete.clear()
        state.touch()
        if snap.vmstate or start_after:
            if snap.vmstate:
                ctx.log("Resuming VM from saved state")
            set_running(state, guest)
            yield 1.0

    wtype = "qmrollback" if gtype == "qemu" else "vzrollback"
    return start_guest_task(call, wtype, worker)


@guest_route("GET", "/nodes/{node}/{type}/{vmid}/snapshot/{snapname}/config")
def snapshot_config(call: Call) -> dict[str, Any]:
    gtype = call.guest_type
    guest = load_guest(call, gtype)
    name = call.req("snapname")
    snap = find_snapshot(guest, name)
    return dict(snap.config)


@guest_route("PUT", "/nodes/{node}/{type}/{vmid}/snapshot/{snapname}/config")
def snapshot_config_put(call: Call) -> None:
    gtype = call.guest_type
    guest = load_guest(call, gtype)
    name = call.req("snapname")
    check_lock_sync(guest)
    snap = find_snapshot(guest, name)
    desc = call.text("description")
    if desc is not None:
        snap.description = desc
        if desc:
            snap.config["description"] = desc
        else:
            snap.config.pop("description", None)
        call.sim.state.touch()
    return None


@guest_route("GET", "/nodes/{node}/{type}/{vmid}/snapshot/{snapname}")
def snapshot_index(call: Call) -> list[dict[str, str]]:
    gtype = call.guest_type
    guest = load_guest(call, gtype)
    name = call.req("snapname")
    find_snapshot(guest, name)
    return [{"subdir": "rollback"}, {"subdir": "config"}]
