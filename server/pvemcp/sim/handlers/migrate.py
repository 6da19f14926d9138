"""Moving guests between nodes: the qemu precondition check and qemu/lxc migration.

Read from qemu-server ``src/PVE/API2/Qemu.pm`` (``migrate_vm_precondition``, ``migrate_vm``,
``$check_vm_disks_local``), pve-container ``src/PVE/API2/LXC.pm`` ``migrate_vm_precondition`` (only HA
blockers; every other node is allowed), ``src/PVE/QemuServer.pm`` (``check_storage_availability``,
``check_local_storage_availability``, ``foreach_volid``), ``src/PVE/QemuMigrate.pm``
(``prepare``, ``scan_local_volumes``: a running VM's attached local disks need ``with-local-disks``);
pve-container ``src/PVE/API2/LXC.pm`` (``migrate_vm``) and ``src/PVE/LXC/Migrate.pm`` (``prepare``:
no live migration of containers, restart mode for running ones); pve-guest-common
``src/PVE/AbstractMigrate.pm`` (``migrate``: the ``migration aborted``/``finished`` lines and exit texts).

Not modelled: HA-managed guests (``hamigrate``), replication, mapped devices, ``targetstorage`` maps
beyond naming an existing storage, bandwidth limits.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Iterator
from typing import Any

from pvemcp.sim.errors import TaskError, fail, param_error
from pvemcp.sim.handlers.common import (
    check_lock_sync,
    check_quorum,
    guest_alive,
    load_guest,
    lock_message,
    set_running,
    set_stopped,
    start_guest_task,
)
from pvemcp.sim.routing import Call, route
from pvemcp.sim.state import ClusterState, Guest, parse_size, split_property_string
from pvemcp.sim.tasks import Task, TaskContext, Worker

MIGRATE_BYTES_PER_SECOND = 1024**3  # a 10 GbE link, roughly
_LOCAL_RESOURCE = re.compile(r"^(hostpci|usb|parallel)\d+$")


def _check_target(call: Call, target: str) -> None:
    """``target is local node.`` (400), quorum, ``check_node_exists``."""
    if target == call.node:
        raise param_error({"target": "target is local node."})
    check_quorum(call)
    if target not in call.sim.state.nodes:
        raise fail(f"no such cluster node '{target}'")


def _root_only(call: Call, *names: str) -> None:
    for name in names:
        if call.params.get(name) not in (None, "", 0, "0") and call.ident.authid != "root@pam":
            raise param_error({name: "Only root may use this option."})


def _volumes(guest: Guest) -> list[tuple[str, str, dict[str, str]]]:
    """(config key, volid, options) of every volume the config references (CD-ROM images included)."""
    out = []
    pattern = re.compile(r"^(scsi|virtio|sata|ide|efidisk|tpmstate|unused)\d+$|^(rootfs|mp\d+)$")
    for key, value in guest.config.items():
        if not pattern.match(key):
            continue
        volid, opts = split_property_string(str(value))
        if volid and volid != "none" and ":" in volid:
            out.append((key, volid, opts))
    return out


def local_disks(state: ClusterState, guest: Guest) -> list[dict[str, Any]]:
    """``$check_vm_disks_local``: volumes on storages that are not shared, with ``foreach_volid``'s attributes."""
    out = []
    for key, volid, opts in _volumes(guest):
        storage = state.storages.get(volid.split(":", 1)[0])
        if storage is None or storage.shared or opts.get("shared") == "1":
            continue
        cdrom = opts.get("media") == "cdrom"
        entry: dict[str, Any] = {
            "volid": volid,
            "drivename": key,
            "cdrom": 1 if cdrom else 0,
            "is_cloudinit": 1 if "cloudinit" in volid else 0,
            "is_unused": 1 if key.startswith("unused") else 0,
            "is_attached": 0 if key.startswith("unused") else 1,
            "is_tpmstate": 1 if key == "tpmstate0" else 0,
            "is_vmstate": 0,
            "replicate": 0 if cdrom or opts.get("replicate") == "0" else 1,
            "shared": 0,
        }
        if "size" in opts:
            entry["size"] = parse_size(opts["size"])
        out.append(entry)
    return out


def _unavailable_storages(state: ClusterState, guest: Guest, node: str) -> list[str]:
    """``check_local_storage_availability`` for one node: storages disabled or restricted elsewhere."""
    missing = set()
    for _, volid, _ in _volumes(guest):
        storage = state.storages.get(volid.split(":", 1)[0])
        if storage is not None and not storage.available_on(node):
            missing.add(storage.storage)
    return sorted(missing)


def _local_resources(guest: Guest) -> list[str]:
    """``check_local_resources``: passed-through host devices pin a VM to its node."""
    out = []
    for key, value in guest.config.items():
        text = str(value)
        device = _LOCAL_RESOURCE.match(key) and "mapping=" not in text and "spice" not in text
        if device or (re.match(r"^serial\d+$", key) and text.startswith("/dev/")):
            out.append(key)
    return out


@route("GET", "/nodes/{node}/qemu/{vmid}/migrate")
def qemu_migrate_precondition(call: Call) -> dict[str, Any]:
    check_quorum(call)
    state = call.sim.state
    guest = load_guest(call, "qemu")
    check_lock_sync(guest)
    allowed: list[str] = []
    not_allowed: dict[str, Any] = {}
    for name in state.nodes:
        if name == call.node:
            continue
        missing = _unavailable_storages(state, guest, name)
        if missing:
            not_allowed[name] = {"unavailable_storages": missing}
        else:
            allowed.append(name)
    return {
        "running": 1 if guest.status == "running" else 0,
        "allowed_nodes": allowed,
        "not_allowed_nodes": not_allowed,
        "local_disks": local_disks(state, guest),
        "local_resources": _local_resources(guest),
        "mapped-resources": [],
        "mapped-resource-info": {},
        "has-dbus-vmstate": 1,
    }


@route("GET", "/nodes/{node}/lxc/{vmid}/migrate")
def lxc_migrate_precondition(call: Call) -> dict[str, Any]:
    check_quorum(call)
    guest = load_guest(call, "lxc")
    check_lock_sync(guest)
    others = [name for name in call.sim.state.nodes if name != call.node]
    return {"running": 1 if guest.status == "running" else 0, "allowed-nodes": others, "not-allowed-nodes": {}}


def _duration(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}"


def _stamp(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(epoch))


def _move(state: ClusterState, guest: Guest, target: str) -> None:
    """The config moves to the target node; local volumes now live there."""
    for _, volid, _ in _volumes(guest):
        vol = state.find_volume(volid, guest.node)
        if vol is not None and vol.node is not None:
            state.remove_volume(vol)
            vol.node = target
            state.add_volume(vol)
    guest.node = target
    state.touch()


def _snapshot_error(state: ClusterState, guest: Guest, volid: str, running: bool) -> str | None:
    """``scan_local_volumes``: a local volume referenced by a snapshot moves only offline, and only where
    the snapshots live inside the volume (zfspool, qcow2 files)."""
    if not any(volid in str(v) for snap in guest.snapshots.values() for v in snap.config.values()):
        return None
    if running:
        return "online storage migration not possible if non-replicated snapshot exists"
    storage = state.storages.get(volid.split(":", 1)[0])
    if storage is not None and (storage.type == "zfspool" or volid.endswith(".qcow2")):
        return None
    return "non-migratable snapshot exists"


def _abort(ctx: TaskContext, started: float, why: str) -> TaskError:
    ctx.log(f"{_stamp(ctx.now())} ERROR: migration aborted (duration {_duration(ctx.elapsed() - started)}): {why}")
    return TaskError("migration aborted")


@contextlib.contextmanager
def _migrate_lock(state: ClusterState, guest: Guest) -> Iterator[None]:
    """The ``migrate`` lock held for the copy and the move, released however the migration ends."""
    guest.config["lock"] = "migrate"
    state.touch()
    try:
        yield
    finally:
        if guest.config.get("lock") == "migrate":
            guest.config.pop("lock", None)
            state.touch()


def _log_finished(ctx: TaskContext, started: float) -> None:
    ctx.log(f"{_stamp(ctx.now())} migration finished successfully (duration {_duration(ctx.elapsed() - started)})")


@route("POST", "/nodes/{node}/qemu/{vmid}/migrate")
def qemu_migrate(call: Call) -> Task:
    target = call.req("target")
    _check_target(call, target)
    _root_only(call, "force", "migration_type", "migration_network")
    state = call.sim.state
    guest = load_guest(call, "qemu")
    check_lock_sync(guest)
    online = call.flag("online")
    if guest.status == "running" and not online:
        raise fail("can't migrate running VM without --online")
    if guest.status != "running":
        online = False
    for _, volid, _ in _volumes(guest):
        storage = state.storages.get(volid.split(":", 1)[0])
        if storage is not None and not storage.available_on(target):
            raise fail(f"storage '{storage.storage}' is not available on node '{target}'")
    with_local = call.flag("with-local-disks")

    def worker(ctx: TaskContext) -> Worker:
        started = ctx.elapsed()
        node = state.nodes[target]
        ctx.log(f"{_stamp(ctx.now())} use dedicated network address for sending migration traffic ({node.ip})")
        ctx.log(f"{_stamp(ctx.now())} starting migration of VM {guest.vmid} to node '{target}' ({node.ip})")
        if guest.lock:
            raise _abort(ctx, started, lock_message(guest))
        if not node.online:
            raise _abort(ctx, started, "Can't connect to destination address using public key")
        locals_ = [d for d in local_disks(state, guest) if not d["cdrom"]]
        blocked = []
        for disk in locals_:
            why = _snapshot_error(state, guest, disk["volid"], online)
            if why is None and disk["is_attached"] and online and not with_local:
                why = "can't live migrate attached local disks without with-local-disks option"
            if why is not None:
                blocked.append(disk["volid"])
                ctx.warn(f"can't migrate local disk '{disk['volid']}': {why}")
            else:
                ctx.log(f"{_stamp(ctx.now())} found local disk '{disk['volid']}' (attached)")
        if blocked:
            raise _abort(ctx, started, "Problem found while scanning volumes - can't migrate VM - check log")
        with _migrate_lock(state, guest):
            copy_bytes = sum(int(d.get("size", 0)) for d in locals_)
            if copy_bytes:
                ctx.log(f"{_stamp(ctx.now())} copying local disk images")
                yield max(1.0, copy_bytes / MIGRATE_BYTES_PER_SECOND)
            if online:
                ctx.log(f"{_stamp(ctx.now())} starting VM {guest.vmid} on remote node '{target}'")
                uri = f"unix:/run/qemu-server/{guest.vmid}.migrate"
                ctx.log(f"{_stamp(ctx.now())} starting online/live migration on {uri}")
                yield max(1.0, guest.maxmem * guest.mem_fraction / MIGRATE_BYTES_PER_SECOND)
                ctx.log(f"{_stamp(ctx.now())} migration status: completed")
            else:
                yield 1.0
            if not guest_alive(state, guest):
                raise _abort(ctx, started, f"VM {guest.vmid} was removed during migration")
            _move(state, guest, target)
            if online:
                set_running(state, guest)  # a new QEMU process on the target
        _log_finished(ctx, started)

    return start_guest_task(call, "qmigrate", worker)


@route("POST", "/nodes/{node}/lxc/{vmid}/migrate")
def lxc_migrate(call: Call) -> Task:
    target = call.req("target")
    _check_target(call, target)
    state = call.sim.state
    guest = load_guest(call, "lxc")
    online = call.flag("online")
    restart = call.flag("restart")
    if guest.status == "running" and not online and not restart:
        raise fail("can't migrate running container without --online or --restart")
    timeout = call.integer("timeout", 180) or 180

    def worker(ctx: TaskContext) -> Worker:
        started = ctx.elapsed()
        node = state.nodes[target]
        ctx.log(f"{_stamp(ctx.now())} starting migration of CT {guest.vmid} to node '{target}' ({node.ip})")
        if guest.lock:
            raise _abort(ctx, started, lock_message(guest))
        running = guest.status == "running"
        if running and online:
            raise _abort(ctx, started, "lxc live migration is currently not implemented")
        if running and not restart:
            raise _abort(ctx, started, "running container can only be migrated in restart mode")
        if not node.online:
            raise _abort(ctx, started, "Can't connect to destination address using public key")
        for disk in local_disks(state, guest):
            why = _snapshot_error(state, guest, disk["volid"], False)
            if why is not None:  # pve-container LXC/Migrate.pm phase1: the same rule for CT volumes
                ctx.warn(f"can't migrate local volume '{disk['volid']}': {why}")
                raise _abort(ctx, started, "can't migrate CT - check log")
        with _migrate_lock(state, guest):
            if running:
                ctx.log(f"{_stamp(ctx.now())} shutdown CT {guest.vmid}")
                # a CT ignoring the shutdown is stopped after the timeout (how PVE words that is not modelled)
                yield min(guest.shutdown_seconds or timeout, timeout)
                set_stopped(state, guest)
            copy_bytes = sum(int(d.get("size", 0)) for d in local_disks(state, guest))
            for disk in local_disks(state, guest):
                ctx.log(f"{_stamp(ctx.now())} found local volume '{disk['volid']}' (in current VM config)")
            yield max(1.0, copy_bytes / MIGRATE_BYTES_PER_SECOND)
            if not guest_alive(state, guest):
                raise _abort(ctx, started, f"CT {guest.vmid} was removed during migration")
            _move(state, guest, target)
            if running:
                ctx.log(f"{_stamp(ctx.now())} start container on target node")
                set_running(state, guest)
        _log_finished(ctx, started)

    return start_guest_task(call, "vzmigrate", worker)
