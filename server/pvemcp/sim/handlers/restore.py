"""Restoring a vzdump archive: ``POST /nodes/{node}/qemu`` with ``archive`` and ``POST .../lxc`` with
``restore=1`` (``ostemplate`` = the archive).

Read from qemu-server ``src/PVE/API2/Qemu.pm`` ``create_vm`` (drive options conflict with
``archive``; ``create_and_lock_config($vmid, $force)``; the ``qmrestore`` worker refuses a running VM
with ``unable to restore VM <id> - vm is running`` and a protected one via ``check_protection``);
pve-container ``src/PVE/API2/LXC.pm`` ``create_vm`` (``check_vmid_unused`` unless the same CT exists
here and ``force`` is given; ``can't overwrite running container``; the ``vzrestore`` worker);
pve-cluster ``PVE::Cluster::check_vmid_unused`` (``<VM|CT> <id> already exists on node '<node>'``, the
word from the existing guest's type); pve-guest-common ``AbstractConfig::check_protection``.

A restore replaces the guest's config with the one inside the archive (the volume keeps it, as the
``qemu-server.conf``/``pct.conf`` inside a real archive) and its disks with new volumes on the target
storage (or the disks' original storages); over an existing guest, the old disks are removed first.
Not modelled: PBS archives, live-restore, bandwidth limits, ``pool`` on restore over an existing guest.
"""

from __future__ import annotations

import re

from pvemcp.sim.errors import TaskError, fail, param_error
from pvemcp.sim.handlers.common import check_quorum, guest_alive, lock_message, start_guest_task
from pvemcp.sim.routing import Call
from pvemcp.sim.state import (
    LXC_DISK_RE,
    QEMU_DISK_RE,
    ClusterState,
    Config,
    Guest,
    GuestType,
    Volume,
    format_size,
    parse_size,
    split_property_string,
)
from pvemcp.sim.tasks import Task, TaskContext, Worker

RESTORE_BYTES_PER_SECOND = 512 * 1024**2
_MAC = re.compile(r"(virtio|e1000e?|rtl8139|vmxnet3|hwaddr)=([0-9A-Fa-f:]{17})")


def _archive(call: Call, volid: str) -> Volume:
    state = call.sim.state
    sid = volid.split(":", 1)[0] if ":" in volid else None
    if sid is not None and sid not in state.storages:
        raise fail(f"storage '{sid}' does not exist")
    vol = state.find_volume(volid, call.node)
    if vol is None or vol.content != "backup":
        raise fail(f"volume '{volid}' does not exist")
    return vol


def _existing(call: Call, gtype: GuestType, force: bool) -> Guest | None:
    """``check_vmid_unused`` unless ``force`` and the guest's config lives on this node with this type."""
    state = call.sim.state
    guest = state.guests.get(call.vmid)
    if guest is None:
        return None
    if force and guest.node == call.node and guest.type == gtype:
        return guest
    word = "VM" if guest.type == "qemu" else "CT"
    prefix = f"unable to restore VM {call.vmid} - " if gtype == "qemu" else ""
    raise fail(f"{prefix}{word} {call.vmid} already exists on node '{guest.node}'")


def _new_disks(ctx: TaskContext, state: ClusterState, guest: Guest, cfg: Config, storage_id: str | None) -> Config:
    """Allocate a fresh volume for every disk of the archived config (``vm-<id>-disk-N``)."""
    pattern = QEMU_DISK_RE if guest.type == "qemu" else LXC_DISK_RE
    out: Config = {}
    for key, value in cfg.items():
        text = str(value)
        head, opts = split_property_string(text)
        if not pattern.match(key) or head is None or ":" not in head or opts.get("media") == "cdrom":
            out[key] = value
            continue
        sid = storage_id or head.split(":", 1)[0]
        storage = state.storages.get(sid)
        if storage is None:
            raise TaskError(f"storage '{sid}' does not exist")
        size = parse_size(opts.get("size", "4G"))
        idx = state.next_disk_index(sid, guest.vmid)
        if storage.file_based:
            name = "vm" if guest.type == "qemu" else "subvol"
            ext = "qcow2" if guest.type == "qemu" else "raw"
            volid = f"{sid}:{guest.vmid}/{name}-{guest.vmid}-disk-{idx}.{ext}"
        else:
            volid = f"{sid}:vm-{guest.vmid}-disk-{idx}"
        content = "images" if guest.type == "qemu" else "rootdir"
        fmt = "qcow2" if volid.endswith(".qcow2") else "raw"
        node = None if storage.shared else guest.node
        state.add_volume(Volume(volid, sid, content, fmt, size, int(ctx.now()), node=node, vmid=guest.vmid))
        ctx.log(f"new volume ID is '{volid}'")
        opts["size"] = format_size(size)
        out[key] = ",".join([volid, *(f"{k}={v}" for k, v in opts.items())])
    return out


def _unique_macs(state: ClusterState, cfg: Config) -> Config:
    return {
        k: _MAC.sub(lambda m: f"{m.group(1)}={state.new_mac()}", str(v)) if k.startswith("net") else v
        for k, v in cfg.items()
    }


def _drop_disks(state: ClusterState, guest: Guest) -> None:
    for vol in [v for v in state.volumes.values() if v.vmid == guest.vmid and v.content in ("images", "rootdir")]:
        state.remove_volume(vol)


def _restore(call: Call, gtype: GuestType, archive_volid: str, force: bool) -> Task:
    check_quorum(call)
    state = call.sim.state
    vmid = call.vmid
    node = call.node
    archive = _archive(call, archive_volid)
    existing = _existing(call, gtype, force)
    kind = "VM" if gtype == "qemu" else "CT"
    emsg = f"unable to restore {kind} {vmid} -"
    if existing is not None:
        if existing.lock:
            raise fail(f"{emsg} {lock_message(existing)}")
        if gtype == "lxc" and existing.status == "running":
            raise fail("can't overwrite running container")
        if existing.config.get("protection"):
            raise fail(f"{emsg} protection mode enabled")
        guest = existing
        guest.config["lock"] = "create"
    else:
        guest = Guest(vmid=vmid, type=gtype, node=node, config={"lock": "create"})
        guest.cpu_load = round(state.rng.uniform(0.005, 0.2), 6)
        guest.mem_fraction = round(state.rng.uniform(0.2, 0.7), 4)
        state.guests[vmid] = guest
    state.touch()
    storage_id = call.text("storage")
    unique = call.flag("unique")
    start = call.flag("start")
    pool = call.text("pool")
    overrides = {
        k: v
        for k, v in call.params.items()
        if k not in ("node", "vmid", "archive", "ostemplate", "restore", "force", "storage", "unique", "start", "pool")
        and k not in ("bwlimit", "live-restore", "ignore-unpack-errors", "password", "ssh-public-keys")
    }

    def worker(ctx: TaskContext) -> Worker:
        ok = False
        try:
            if gtype == "qemu" and guest.status == "running":
                raise TaskError(f"{emsg} vm is running")
            if archive.guest_config is None:
                raise TaskError(f"{emsg} no guest configuration in archive '{archive.volid}'")
            path = archive.volid.split(":", 1)[1].replace("backup/", "dump/")
            store_path = state.storages[archive.storage].options.get("path", "/var/lib/vz")
            ctx.log(f"restore {'vma' if gtype == 'qemu' else 'tar'} archive: {store_path}/{path}")
            if existing is not None:
                _drop_disks(state, guest)
                ctx.log(f"removed old disks of {kind} {vmid}")
            yield max(1.0, archive.size / RESTORE_BYTES_PER_SECOND)
            if not guest_alive(state, guest):
                raise TaskError(f"{emsg} {kind} {vmid} was removed during restore")
            cfg = _new_disks(ctx, state, guest, dict(archive.guest_config), storage_id)
            cfg.pop("lock", None)
            if unique:
                cfg = _unique_macs(state, cfg)
            cfg.update({k: v if isinstance(v, int | float) else str(v) for k, v in overrides.items()})
            guest.config = dict(sorted(cfg.items()))
            guest.snapshots = {}
            if pool and pool in state.pools and existing is None:
                guest.pool = pool
                state.pools[pool].vmids.add(vmid)
            state.touch()
            ctx.log("rescan volumes...")
            ok = True
            if start:
                from pvemcp.sim.handlers.common import set_running

                set_running(state, guest)
                yield 1.5
        finally:
            if not ok and existing is None and guest_alive(state, guest):
                _drop_disks(state, guest)
                del state.guests[vmid]
                state.touch()
            elif not ok and guest.config.get("lock") == "create":
                guest.config.pop("lock", None)
                state.touch()

    return start_guest_task(call, "qmrestore" if gtype == "qemu" else "vzrestore", worker)


def qemu_restore(call: Call) -> Task:
    """``create_vm`` with ``archive``: drive options conflict with the archive's own disks."""
    conflicts = sorted(k for k in call.params if QEMU_DISK_RE.match(k) or re.match(r"^(unused|ide|sata)\d+$", k))
    if conflicts:
        raise param_error({k: "option conflicts with option 'archive'" for k in conflicts})
    return _restore(call, "qemu", call.req("archive"), call.flag("force"))


def lxc_restore(call: Call) -> Task:
    """``create_vm`` with ``restore=1``: the archive comes as ``ostemplate``."""
    return _restore(call, "lxc", call.req("ostemplate"), call.flag("force"))
