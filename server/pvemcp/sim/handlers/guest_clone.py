"""Cloning VMs and containers (full or linked), one handler for both types."""

from __future__ import annotations

import re

from pvemcp.sim.errors import TaskError, fail, param_error
from pvemcp.sim.handlers.common import (
    check_lock_sync,
    check_quorum,
    find_snapshot,
    guest_alive,
    load_guest,
    start_guest_task,
)
from pvemcp.sim.handlers.guest_create import add_guest, check_pool, check_vmid_free
from pvemcp.sim.handlers.guest_delete import destroy_guest
from pvemcp.sim.routing import Call, guest_route
from pvemcp.sim.state import (
    GIB,
    LXC_DISK_RE,
    QEMU_DISK_RE,
    Config,
    Guest,
    GuestType,
    Volume,
    parse_size,
    split_property_string,
)
from pvemcp.sim.tasks import INTERRUPT_SIGNAL, Task, TaskContext, Worker

CLONE_BYTES_PER_SECOND = 2 * GIB


def _fmt_bytes(n: float) -> str:
    for unit, mul in (("TiB", 1024**4), ("GiB", GIB), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= mul:
            return f"{n / mul:.1f} {unit}"
    return f"{n:.1f} B"


def _clone_checks(call: Call, gtype: GuestType) -> tuple[Guest, Config, bool, str, list[tuple[str, str]]]:
    """The synchronous checks of ``clone_vm``, in PVE's order; returns (source, config, full, target, disks).

    qemu-server ``API2/Qemu.pm`` ``clone_vm`` (``$load_and_check``, ``$check_storage_access_clone``) and
    pve-container ``API2/LXC.pm`` ``clone_vm``. Differences kept: a VM is "shared" only if every drive,
    CD-ROMs included, is on shared storage, whatever ``storage`` says; a CT counts ``storage`` instead.
    Linked clones need the storage's ``clone`` feature (pve-storage ``volume_has_feature``: LVM-thin for
    base volumes and snapshots, directory-like storages for base volumes only).
    """
    state = call.sim.state
    pool = call.text("pool")
    check_pool(state, pool)
    target = call.text("target")
    if target in (call.node, "localhost"):
        target = None
    if target is not None and target not in state.nodes:
        raise fail(f"no such cluster node '{target}'")
    storage_id = call.text("storage")
    if storage_id is not None:
        st = state.storages.get(storage_id)
        if st is None:
            raise fail(f"storage '{storage_id}' does not exist")
        if not st.enabled:
            raise fail(f"storage '{storage_id}' is disabled")
        if not st.available_on(call.node):
            raise fail(f"storage '{storage_id}' is not available on node '{call.node}'")
        if gtype == "qemu" and "images" not in st.content:
            raise param_error({"storage": f"storage '{storage_id}' does not support vm images"})
        if target is not None:
            if not st.available_on(target):
                raise fail(f"storage '{storage_id}' is not available on node '{target}'")
            if not st.shared:
                raise fail(f"can't clone to non-shared storage '{storage_id}'")
    check_quorum(call)
    src = load_guest(call, gtype)
    check_lock_sync(src)
    snapname = call.text("snapname")
    if gtype == "lxc":
        # the CT's 'disk' lock is taken first, then create_and_lock_config checks the new id
        check_vmid_free(state, call.integer("newid") or 0, "lxc")
    source_cfg = find_snapshot(src, snapname).config if snapname else src.config
    full_param = call.params.get("full")
    full = bool(int(full_param)) if full_param is not None else not src.template
    if storage_id is not None and not full:
        raise fail("parameter 'storage' not allowed for linked clones")
    if gtype == "qemu" and call.text("format") is not None and not full:
        raise fail("parameter 'format' not allowed for linked clones")
    disks = [
        (k, str(v))
        for k, v in source_cfg.items()
        if (QEMU_DISK_RE if gtype == "qemu" else LXC_DISK_RE).match(k)
        and "media=cdrom" not in str(v)
        and "cloudinit" not in str(v)
    ]
    shared = True
    drives = [(k, str(v)) for k, v in source_cfg.items() if QEMU_DISK_RE.match(k) or re.match(r"^(ide|sata)\d+$", k)]
    for _key, value in drives if gtype == "qemu" else disks:
        head = value.split(",", 1)[0]
        if head in ("none", "cdrom") or ":" not in head:
            continue
        sid = head.split(":", 1)[0]
        if gtype == "lxc" and storage_id is not None:
            sid = storage_id
        st = state.storages.get(sid)
        if st is None or not st.shared:
            shared = False
    if gtype == "qemu":
        if target is not None and not shared:
            raise fail(f"can't clone VM to node '{target}' (VM uses local storage)")
        newid = call.integer("newid") or 0
        if newid in state.guests:
            raise fail(f"unable to create VM {newid}: config file already exists")
    for key, value in disks:
        volid = value.split(",", 1)[0]
        st = state.storages.get(volid.split(":", 1)[0])
        if full:
            if gtype == "lxc" and src.status == "running" and not snapname:
                raise fail("Full clone of a running container is only possible from a snapshot")
            continue
        is_base = "base-" in volid.split(":", 1)[-1].split("/")[0] or src.template
        can_clone = st is not None and (
            (st.type == "lvmthin" and (is_base or bool(snapname)))
            or (st.supports_linked_clone and st.type != "lvmthin" and is_base and not snapname)
        )
        if not can_clone:
            if gtype == "lxc":
                raise fail(f"Linked clone feature for '{volid}' is not available")
            of = " a snapshot of" if snapname else ""
            raise fail(f"Linked clone feature is not supported for{of} '{volid}' ({key})")
    if gtype == "lxc" and target is not None and not shared:
        raise fail(f"can't clone CT to node '{target}' (CT uses local storage)")
    return src, source_cfg, full, target or call.node, disks


@guest_route("POST", "/nodes/{node}/{type}/{vmid}/clone")
def guest_clone(call: Call) -> Task:
    gtype = call.guest_type
    state = call.sim.state
    src, source_cfg, full, target, disks = _clone_checks(call, gtype)
    newid = call.integer("newid")
    assert newid is not None
    pool = call.text("pool")
    storage_id = call.text("storage")

    new_guest = add_guest(state, newid, gtype, target, pool)
    # qemu-server writes "lock: clone" into the new config; pve-container locks the source CT with 'disk'
    # (set_lock) and creates the new one with 'create' (create_and_lock_config) until the worker ends
    new_guest.config = {"lock": "clone" if gtype == "qemu" else "create"}
    if gtype == "lxc":
        src.config["lock"] = "disk"
        state.touch()
    name_key = "name" if gtype == "qemu" else "hostname"
    name = call.text(name_key)
    fmt_param = call.text("format")

    def worker(ctx: TaskContext) -> Worker:
        ok = False
        try:
            cfg: Config = {}
            skip_keys = {"template", "lock", "parent", "snaptime", "vmstate", "runningmachine", "runningcpu"}
            for key, value in source_cfg.items():
                if key in skip_keys or key.startswith("unused"):
                    continue
                cfg[key] = value
            if gtype == "qemu":
                cfg["name"] = name or f"Copy-of-VM-{src.name}"
                if "smbios1" in cfg:
                    cfg["smbios1"] = f"uuid={state.new_uuid()}"
                if "vmgenid" in cfg:
                    cfg["vmgenid"] = state.new_uuid()
            elif name:
                cfg["hostname"] = name
            for key in [k for k in cfg if k.startswith("net")]:
                text = str(cfg[key])
                cfg[key] = re.sub(
                    r"(?<![0-9A-Fa-f:])([0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){5})",
                    lambda _m: state.new_mac(),
                    text,
                    count=1,
                )
            description = call.text("description")
            if description is not None:
                cfg["description"] = description
            for key, value in disks:
                volid, _, rest = value.partition(",")
                sid = volid.split(":", 1)[0]
                src_storage = state.storages[sid]
                dst_sid = storage_id or sid
                dst_storage = state.storages[dst_sid]
                if gtype == "lxc" and full and "rootdir" not in dst_storage.content:
                    # pve-container LXC.pm alloc_disk (via copy_volume), inside the clone worker
                    raise TaskError(f"content type 'rootdir' is not available or configured on storage '{dst_sid}'")
                src_vol = state.find_volume(volid, src.node)
                size = src_vol.size if src_vol else 0
                if not size:
                    _, opts = split_property_string(value)
                    size = parse_size(opts.get("size", "0"))
                idx = state.next_disk_index(dst_sid, newid)
                if full:
                    what = "drive" if gtype == "qemu" else "mountpoint"
                    ctx.log(f"create full clone of {what} {key} ({volid})")
                    if dst_storage.file_based and gtype == "qemu":
                        fmt = fmt_param or "qcow2"
                        new_volid = f"{dst_sid}:{newid}/vm-{newid}-disk-{idx}.{fmt}"
                    else:
                        fmt = "raw"
                        new_volid = f"{dst_sid}:vm-{newid}-disk-{idx}"
                    if dst_storage.type == "lvmthin":
                        ctx.log(f'  Logical volume "vm-{newid}-disk-{idx}" created.')
                    steps = 4
                    seconds = max(1.0, size / CLONE_BYTES_PER_SECOND)
                    ctx.log(f"transferred 0.0 B of {_fmt_bytes(size)} (0.00%)")
                    for i in range(1, steps + 1):
                        yield seconds / steps
                        done = size * i / steps
                        ctx.log(f"transferred {_fmt_bytes(done)} of {_fmt_bytes(size)} ({100.0 * i / steps:.2f}%)")
                else:
                    what = "drive" if gtype == "qemu" else "mount point"  # sic: PVE's two spellings
                    ctx.log(f"create linked clone of {what} {key} ({volid})")
                    fmt = src_vol.format if src_vol else "raw"
                    if src_storage.file_based:
                        base_path = volid.split(":", 1)[1]
                        new_volid = f"{sid}:{base_path}/{newid}/vm-{newid}-disk-{idx}.{fmt}"
                    elif "base-" in volid:
                        new_volid = f"{volid}/vm-{newid}-disk-{idx}"
                    else:  # LVM-thin clone of a snapshot: a thin snapshot, no base name in the volid
                        new_volid = f"{sid}:vm-{newid}-disk-{idx}"
                    yield 0.5
                new_vol = Volume(
                    new_volid,
                    dst_sid,
                    "images" if gtype == "qemu" else "rootdir",
                    fmt,
                    size,
                    int(ctx.now()),
                    node=None if dst_storage.shared else target,
                    vmid=newid,
                    parent=None if full else volid.split(":", 1)[1],
                )
                state.add_volume(new_vol)
                cfg[key] = new_volid + ("," + rest if rest else "")
            if not guest_alive(state, new_guest):
                raise TaskError(f"clone target {newid} was removed")
            # qemu-server API2/Qemu.pm and pve-container API2/LXC.pm clone_vm: clone_vmfw_conf copies the .fw
            call.sim.firewall.clone_guest_conf(state, src.vmid, new_guest)
            new_guest.config = dict(sorted(cfg.items()))
            state.touch()
            ok = True
        except TaskError as err:
            raise TaskError(f"clone failed: {err.message}") from None  # both clone_vm workers say so
        finally:
            if gtype == "lxc" and src.config.get("lock") == "disk":
                src.config.pop("lock", None)  # "Unlock the source config in any case"
                state.touch()
            if not ok:
                destroy_guest(state, new_guest)

    wtype = "qmclone" if gtype == "qemu" else "vzclone"
    # the workers' own SIGTERM handler dies "interrupted by signal" inside the eval that adds "clone failed: "
    return start_guest_task(call, wtype, worker, interrupt_text=f"clone failed: {INTERRUPT_SIGNAL}")
