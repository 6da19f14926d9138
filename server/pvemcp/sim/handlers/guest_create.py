"""Creating VMs (``POST /nodes/{node}/qemu``) and containers (``POST /nodes/{node}/lxc``), restores included."""

from __future__ import annotations

import re

from pvemcp.sim.errors import PveHttpError, TaskError, fail, param_error
from pvemcp.sim.handlers.common import (
    check_quorum,
    guest_alive,
    set_running,
    start_guest_task,
)
from pvemcp.sim.handlers.guest_config import (
    SIZE_ONLY,
    allocate_disk_value,
    check_qemu_drive_storage,
    net_with_mac,
    store_value,
)
from pvemcp.sim.handlers.guest_delete import destroy_guest
from pvemcp.sim.handlers.guest_lifecycle import START_SECONDS
from pvemcp.sim.handlers.restore import lxc_restore, qemu_restore
from pvemcp.sim.handlers.storage import volume_path
from pvemcp.sim.routing import Call, route
from pvemcp.sim.state import (
    LXC_DISK_RE,
    QEMU_DISK_RE,
    QEMU_VERSION,
    ClusterState,
    Config,
    Guest,
    GuestType,
    format_size,
)
from pvemcp.sim.tasks import Task, TaskContext, Worker

CREATE_SECONDS = 2.0


_NON_CONFIG = frozenset(
    {"node", "vmid", "digest", "delete", "revert", "skiplock", "background_delay", "force", "start"}
)


def check_vmid_free(state: ClusterState, vmid: int, gtype: GuestType) -> None:
    existing = state.guests.get(vmid)
    if existing is None:
        return
    if gtype == "qemu":
        raise fail(f"unable to create VM {vmid} - VM {vmid} already exists on node '{existing.node}'")
    raise fail(f"CT {vmid} already exists on node '{existing.node}'")


def _check_ct_storage(state: ClusterState, sid: str, node: str) -> None:
    """pve-container ``create_vm`` ``$check_and_activate_storage``: enabled on the node, takes ``rootdir``."""
    storage = state.storages.get(sid)
    if storage is None:
        raise fail(f"storage '{sid}' does not exist")
    if not storage.enabled:
        raise fail(f"storage '{sid}' is disabled")
    if not storage.available_on(node):
        raise fail(f"storage '{sid}' is not available on node '{node}'")
    if "rootdir" not in storage.content:
        raise param_error({"storage": f"storage '{sid}' does not support container directories"})


def check_pool(state: ClusterState, pool: str | None) -> None:
    if pool and pool not in state.pools:
        raise PveHttpError(403, f"Permission check failed (pool '{pool}' does not exist)\n")


def add_guest(state: ClusterState, vmid: int, gtype: GuestType, node: str, pool: str | None) -> Guest:
    guest = Guest(vmid=vmid, type=gtype, node=node, config={"lock": "create"})
    guest.cpu_load = round(state.rng.uniform(0.005, 0.2), 6)
    guest.mem_fraction = round(state.rng.uniform(0.2, 0.7), 4)
    guest.shutdown_seconds = 4.0
    state.guests[vmid] = guest
    if pool:
        guest.pool = pool
        state.pools[pool].vmids.add(vmid)
    state.touch()
    return guest


@route("POST", "/nodes/{node}/qemu")
def qemu_create(call: Call) -> Task:
    state = call.sim.state
    vmid = call.vmid
    node = call.node
    if call.text("archive"):
        return qemu_restore(call)
    check_quorum(call)
    check_vmid_free(state, vmid, "qemu")
    pool = call.text("pool")
    check_pool(state, pool)
    updates = {k: v for k, v in call.params.items() if k not in _NON_CONFIG and k != "pool" and k != "archive"}
    for key, value in updates.items():
        if QEMU_DISK_RE.match(key) or re.match(r"^(ide|sata)\d+$", key):
            check_qemu_drive_storage(state, str(value))
    guest = add_guest(state, vmid, "qemu", node, pool)
    start = call.flag("start")

    def worker(ctx: TaskContext) -> Worker:
        ok = False
        try:
            cfg: Config = {}
            for key, value in updates.items():
                stored = store_value(value)
                if QEMU_DISK_RE.match(key) and isinstance(stored, str):
                    stored, vol = allocate_disk_value(state, guest, key, stored, node)
                    if vol is not None:
                        state.add_volume(vol)
                        ctx.log(f"{key}: successfully created disk '{vol.volid},size={format_size(vol.size)}'")
                elif key.startswith("net") and isinstance(stored, str):
                    stored = net_with_mac(state, stored, "qemu")
                cfg[key] = stored
            cfg.setdefault("memory", "2048")
            cfg.setdefault("cores", 1)
            cfg.setdefault("sockets", 1)
            cfg["meta"] = f"creation-qemu={QEMU_VERSION},ctime={int(ctx.now())}"
            cfg["smbios1"] = f"uuid={state.new_uuid()}"
            cfg["vmgenid"] = state.new_uuid()
            if "boot" not in cfg:
                # PVE's default: the first disk, then CD-ROMs, then NICs
                order = [k for k in cfg if QEMU_DISK_RE.match(k) or k.startswith("net")]
                order.sort(key=lambda k: (k.startswith("net"), "media=cdrom" in str(cfg[k]), k))
                if order:
                    cfg["boot"] = "order=" + ";".join(order)
            yield CREATE_SECONDS
            if not guest_alive(state, guest):
                raise TaskError(f"VM {vmid} was removed during creation")
            guest.config = dict(sorted(cfg.items()))
            state.touch()
            ok = True
            if start:
                ctx.log(f"start VM {vmid}")
                set_running(state, guest)
                yield START_SECONDS
        finally:
            if not ok:
                destroy_guest(state, guest)

    return start_guest_task(call, "qmcreate", worker)


@route("POST", "/nodes/{node}/lxc")
def lxc_create(call: Call) -> Task:
    state = call.sim.state
    vmid = call.vmid
    node = call.node
    if call.flag("restore"):
        return lxc_restore(call)
    check_quorum(call)
    check_vmid_free(state, vmid, "lxc")
    pool = call.text("pool")
    check_pool(state, pool)
    ostemplate = call.req("ostemplate")
    tmpl = state.find_volume(ostemplate, node)
    if tmpl is None:
        sid = ostemplate.split(":", 1)[0]
        if ":" in ostemplate and sid not in state.storages:
            raise fail(f"storage '{sid}' does not exist")
        raise fail(f"volume '{ostemplate}' does not exist")
    storage_id = call.text("storage", "local") or "local"
    # pve-container API2/LXC.pm create_vm: a bare number for rootfs/mpN means "<storage>:<GiB>"; every
    # volume's storage must exist and take rootdir content (400), checked before the worker forks
    mounts: dict[str, str] = {}
    for key, value in call.params.items():
        if LXC_DISK_RE.match(key):
            text = str(value)
            mounts[key] = f"{storage_id}:{text}" if SIZE_ONLY.match(text) else text
    if mounts and "rootfs" not in mounts:
        raise fail("mount points configured, but 'rootfs' not set - aborting")
    for text in [*mounts.values()] or [f"{storage_id}:4"]:
        head = text.split(",", 1)[0]
        if ":" in head and not head.startswith("/"):
            _check_ct_storage(state, head.split(":", 1)[0], node)
    rootfs = mounts.get("rootfs", f"{storage_id}:4")
    skip = {"ostemplate", "storage", "password", "ssh-public-keys", "pool", "start", "restore", "force", "unique"}
    skip |= {"ha-managed", "ignore-unpack-errors", "bwlimit"}
    updates = {k: v for k, v in call.params.items() if k not in _NON_CONFIG and k not in skip}
    updates.update(mounts)
    updates["rootfs"] = rootfs
    # 'unprivileged' defaults to 1 and is only written when set ($conf->{unprivileged} = 1 if $unprivileged)
    if call.params.get("unprivileged") is not None and not call.flag("unprivileged"):
        updates.pop("unprivileged", None)
    else:
        updates["unprivileged"] = 1
    guest = add_guest(state, vmid, "lxc", node, pool)
    start = call.flag("start")

    def worker(ctx: TaskContext) -> Worker:
        ok = False
        try:
            cfg: Config = {"arch": "amd64"}
            name = tmpl.volid.rsplit("/", 1)[-1]
            ostype = name.split("-", 1)[0] if "-" in name else "unmanaged"
            cfg["ostype"] = ostype if ostype in ("debian", "ubuntu", "alpine", "centos", "fedora") else "unmanaged"
            for key, value in updates.items():
                stored = store_value(value)
                if LXC_DISK_RE.match(key) and isinstance(stored, str):
                    stored, vol = allocate_disk_value(state, guest, key, stored, node)
                    if vol is not None:
                        state.add_volume(vol)
                elif key.startswith("net") and isinstance(stored, str):
                    stored = net_with_mac(state, stored, "lxc")
                cfg[key] = stored
            cfg.setdefault("memory", 512)
            cfg.setdefault("swap", 512)
            cfg.setdefault("hostname", f"CT{vmid}")
            ctx.log(f"extracting archive '{volume_path(state.storages[tmpl.storage], tmpl.volid)}'")
            yield 3.0
            ctx.log(f"Total bytes read: {tmpl.size * 4} ({tmpl.size * 4 // (1024 * 1024)}MiB, 1.1GiB/s)")
            ctx.log(f"Detected container architecture: {cfg['arch']}")
            ctx.log("Creating SSH host key 'ssh_host_ed25519_key' - this may take some time ...")
            yield 1.0
            if not guest_alive(state, guest):
                raise TaskError(f"CT {vmid} was removed during creation")
            guest.config = dict(sorted(cfg.items()))
            state.touch()
            ok = True
            if start:
                set_running(state, guest)
                yield START_SECONDS
        finally:
            if not ok:
                destroy_guest(state, guest)

    return start_guest_task(call, "vzcreate", worker)
