"""Guest configuration: ``config`` and ``pending`` reads, and the qemu/lxc update APIs.

The value helpers (sizes, disk allocation, network MACs, drive storage) are also what create uses to
write a new guest's config.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pvemcp.sim import pending
from pvemcp.sim.errors import PveHttpError, TaskError, fail, param_error
from pvemcp.sim.handlers.common import (
    check_lock_sync,
    check_quorum,
    find_snapshot,
    load_guest,
    skiplock,
    start_guest_task,
)
from pvemcp.sim.routing import Call, guest_route, route
from pvemcp.sim.state import (
    GIB,
    LXC_DISK_RE,
    QEMU_DISK_RE,
    ClusterState,
    Config,
    Guest,
    GuestType,
    Volume,
    config_digest,
    format_size,
    split_property_string,
)
from pvemcp.sim.tasks import Task, TaskContext, Worker

SIZE_ONLY = re.compile(r"^(\d+(?:\.\d+)?)$")


def _config_response(guest: Guest, cfg: Config) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in cfg.items():
        if k in ("cipassword",):
            out[k] = "**********"
        elif k == "lxc" and guest.type == "lxc":
            continue
        else:
            out[k] = v
    return out


@guest_route("GET", "/nodes/{node}/{type}/{vmid}/config")
def guest_config_get(call: Call) -> dict[str, Any]:
    """``vm_config``: the snapshot's config, or the config with pending values taken in unless ``current=1``.

    qemu-server ``API2/Qemu.pm`` ``vm_config`` refuses ``snapshot`` together with ``current``;
    pve-guest-common ``AbstractConfig.pm`` ``load_current_config`` merges ``[PENDING]``.
    """
    gtype = call.guest_type
    guest = load_guest(call, gtype)
    snapname = call.text("snapshot")
    current = call.flag("current")
    if snapname and current:
        both = "cannot use 'snapshot' parameter with 'current'"
        raise param_error({"snapshot": both, "current": both})
    if snapname:
        out = _config_response(guest, find_snapshot(guest, snapname).config)
    else:
        out = _config_response(guest, pending.effective_config(guest, current))
    out["digest"] = config_digest(guest)
    return out


@guest_route("GET", "/nodes/{node}/{type}/{vmid}/pending")
def guest_pending(call: Call) -> list[dict[str, Any]]:
    """``vm_pending`` (qemu-server ``API2/Qemu.pm``; pve-container ``API2/LXC.pm`` answers the same array):
    ``GuestHelpers::config_with_pending_array``."""
    return pending.pending_items(load_guest(call, call.guest_type))


def store_value(value: Any) -> str | int | float:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int | float):
        return value
    return str(value)


def allocate_disk_value(
    state: ClusterState, guest: Guest, key: str, value: str, node: str
) -> tuple[str, Volume | None]:
    """``local-lvm:32`` → a new volume ``local-lvm:vm-<id>-disk-N,size=32G`` (PVE's disk allocation)."""
    head, opts = split_property_string(value)
    if head is None or ":" not in head:
        return value, None
    storage_id, rest = head.split(":", 1)
    if not SIZE_ONLY.match(rest):
        return value, None
    storage = state.storages.get(storage_id)
    if storage is None:
        raise fail(f"storage '{storage_id}' does not exist")
    content = "images" if guest.type == "qemu" else "rootdir"
    if content not in storage.content:
        if guest.type == "qemu":
            raise fail(f"storage '{storage_id}' does not support vm images")
        raise fail(f"storage '{storage_id}' does not support container directories")
    size = int(float(rest) * GIB)
    idx = state.next_disk_index(storage_id, guest.vmid)
    if storage.file_based and guest.type == "qemu":
        volid = f"{storage_id}:{guest.vmid}/vm-{guest.vmid}-disk-{idx}.qcow2"
        fmt = "qcow2"
    elif storage.file_based:
        # pve-container LXC.pm alloc_disk: a sized volume on a directory storage is a raw image
        volid = f"{storage_id}:{guest.vmid}/vm-{guest.vmid}-disk-{idx}.raw"
        fmt = "raw"
    else:
        volid = f"{storage_id}:vm-{guest.vmid}-disk-{idx}"
        fmt = "raw"
    vol = Volume(
        volid,
        storage_id,
        content,
        fmt,
        size,
        int(state.clock.now()),
        node=None if storage.shared else node,
        vmid=guest.vmid,
    )
    opts["size"] = format_size(size)
    rendered = ",".join([volid, *(f"{k}={v}" for k, v in opts.items())])
    return rendered, vol


_CONFIG_META = frozenset({"node", "vmid", "digest", "delete", "revert", "skiplock", "background_delay", "force"})


# config keys PVE knows (``option_exists``) that the update API does not take as parameters
_CONFIG_ONLY = frozenset({"vmstate", "runningmachine", "runningcpu", "running-nets-host-mtu"})


def _option_exists(call: Call, key: str) -> bool:
    """``option_exists``: a key of the guest config schema (the update call's own parameters, indexed ones too)."""
    if key in _CONFIG_ONLY:
        return True
    schema = call.sim.spec.operation(call.key).input_schema
    if key in _CONFIG_META:
        return False
    if key in schema.get("properties", {}):
        return True
    return any(re.fullmatch(p, key) for p in schema.get("patternProperties", {}))


def _split_list(text: str | None) -> list[str]:
    """``PVE::Tools::split_list``."""
    return [d for d in re.split(r"[,;\s]+", text or "") if d]


@dataclass
class _ConfigUpdate:
    """A config update that passed PVE's synchronous checks, ready to be written."""

    guest: Guest
    updates: dict[str, Any]
    deletes: list[str]
    reverts: list[str]
    force: bool


def _check_qemu_update(call: Call, guest: Guest) -> _ConfigUpdate:
    """qemu-server ``API2/Qemu.pm`` ``$update_vm_api`` up to ``$load_and_check_config->(0)`` (before forking)."""
    check_quorum(call)
    skip = skiplock(call)  # root-only check happens first, whether or not the guest is locked
    updates = {k: v for k, v in call.params.items() if k not in _CONFIG_META}
    delete_str, revert_str = call.text("delete"), call.text("revert")
    if not delete_str and not revert_str and not updates:
        raise fail("no options specified")
    reverts: list[str] = []
    for opt in _split_list(revert_str):
        if not _option_exists(call, opt):
            raise param_error({"revert": f"unknown option '{opt}'"})
        if opt in updates:
            raise param_error({"delete": f"you can't use '-{opt}' and -revert {opt}' at the same time"})
        reverts.append(opt)
    deletes: list[str] = []
    for opt in _split_list(delete_str):
        opt = "ide2" if opt == "cdrom" else opt
        if opt in updates:
            raise param_error({"delete": f"you can't use '-{opt}' and -delete {opt}' at the same time"})
        if opt in reverts:
            raise param_error({"revert": f"you can't use '-delete {opt}' and -revert {opt}' at the same time"})
        if not _option_exists(call, opt):
            raise param_error({"delete": f"unknown option '{opt}'"})
        deletes.append(opt)
    digest = call.text("digest")
    if digest and digest != config_digest(guest):
        raise fail("checksum mismatch (file change by other user?)")
    # deleting the saved state of a VM suspended to disk also drops its 'suspended' lock
    # ($load_and_check_config: the lock is ignored for the check and deleted with it)
    discard_state = "vmstate" in deletes and guest.lock == "suspended"
    if discard_state:
        deletes += [k for k in ("lock", "runningmachine", "runningcpu") if k in guest.config and k not in deletes]
    if not skip and not discard_state:
        check_lock_sync(guest)
    _check_balloon(guest, updates)
    for key, value in updates.items():
        if QEMU_DISK_RE.match(key) or re.match(r"^(ide|sata)\d+$", key):
            check_qemu_drive_storage(call.sim.state, str(value))
    return _ConfigUpdate(guest, updates, deletes, reverts, call.flag("force"))


def _check_balloon(guest: Guest, updates: dict[str, Any]) -> None:
    if not (updates.get("memory") or updates.get("balloon") is not None):
        return
    memory = updates.get("memory") or guest.pending.get("memory") or guest.config.get("memory", 2048)
    text = str(memory)
    maxmem = int(split_property_string(text)[1].get("current", 2048)) if "=" in text else int(text)
    balloon = updates.get("balloon")
    balloon = balloon if balloon is not None else guest.pending.get("balloon") or guest.config.get("balloon")
    if balloon and int(balloon) > maxmem:
        raise fail("balloon value too large (must be smaller than assigned memory)")


def _check_boot_order(guest: Guest, value: str, updates: dict[str, Any], deletes: list[str]) -> None:
    """``$update_vm_api``: every device of a new ``boot: order=…`` must exist and not be deleted."""
    _, opts = split_property_string(value)
    for dev in _split_list(opts.get("order")):
        exists = dev in guest.config or dev in guest.pending or dev in updates
        if not exists or dev in deletes:
            raise fail(f"invalid bootorder: device '{dev}' does not exist'")  # sic: PVE's stray quote


def _write_qemu_update(call: Call, upd: _ConfigUpdate) -> list[str]:
    """``$updatefn``: write the changes to ``[PENDING]``, then apply or hot-plug them (log lines returned)."""
    state, guest = call.sim.state, upd.guest
    if "boot" in upd.updates:
        _check_boot_order(guest, str(upd.updates["boot"]), upd.updates, upd.deletes)
    lines: list[str] = []
    modified: set[str] = set()
    for opt in upd.reverts:
        guest.pending.pop(opt, None)
        guest.pending_delete.pop(opt, None)
    for opt in upd.deletes:
        value = guest.config.get(opt, guest.pending.get(opt))
        if value is None:
            lines.append(f"cannot delete '{opt}' - not set in current configuration!")
            continue
        modified.add(opt)
        pending_value = guest.pending.pop(opt, None)
        if opt.startswith("unused") or opt in ("tags", "vmstate", "lock"):
            # removed at once (try_deallocate_drive for unused disks and the saved state), never pending
            guest.config.pop(opt, None)
            if opt.startswith("unused") or opt == "vmstate":
                vol = state.find_volume(str(value), guest.node)
                if vol is not None:
                    state.remove_volume(vol)
            continue
        if pending_value is not None and QEMU_DISK_RE.match(opt):
            # a drive that was only pending is registered as unused (``vmconfig_register_unused_drive``)
            volid = str(pending_value).split(",", 1)[0]
            if volid != str(guest.config.get(opt, "")).split(",", 1)[0] and "media=cdrom" not in str(pending_value):
                pending.add_unused(guest, volid)
        if opt in guest.config:
            guest.pending_delete[opt] = upd.force
    for opt, value in upd.updates.items():
        modified.add(opt)
        stored = store_value(value)
        if opt in guest.pending and str(guest.pending[opt]) == str(stored):
            continue
        if QEMU_DISK_RE.match(opt) and isinstance(stored, str):
            stored, vol = allocate_disk_value(state, guest, opt, stored, guest.node)
            if vol is not None:
                state.add_volume(vol)
                lines.append(f"{opt}: successfully created disk '{vol.volid},size={format_size(vol.size)}'")
        elif opt.startswith("net") and isinstance(stored, str):
            stored = net_with_mac(state, stored, "qemu")
        if opt == "cipassword":
            guest.config[opt] = stored  # written to the config directly, never pending
        else:
            guest.pending[opt] = stored
        guest.pending_delete.pop(opt, None)
    pending.settle_update(state, guest, modified)
    return lines


def _check_lxc_update(call: Call, guest: Guest) -> _ConfigUpdate:
    """pve-container ``API2/LXC/Config.pm`` ``update_vm`` (checks before ``update_pct_config``)."""
    check_quorum(call)
    updates = {k: v for k, v in call.params.items() if k not in _CONFIG_META}
    if not updates and not call.text("delete") and not call.text("revert"):
        raise fail("no options specified")
    deletes, reverts = _split_list(call.text("delete")), _split_list(call.text("revert"))
    check_lock_sync(guest)
    digest = call.text("digest")
    if digest and digest != config_digest(guest):
        raise fail("detected modified configuration - file changed by other user? Try again.")
    for opt in reverts:
        if not _option_exists(call, opt):
            raise param_error({"revert": f"unknown option '{opt}'"})
        if opt in updates:
            raise param_error({"revert": f"you can't use '-{opt}' and '-revert {opt}' at the same time"})
    for opt in deletes:
        if not _option_exists(call, opt):
            raise param_error({"delete": f"unknown option '{opt}'"})
        if opt in updates:
            raise param_error({"delete": f"you can't use '-{opt}' and -delete {opt}' at the same time"})
        if opt in reverts:
            raise param_error({"delete": f"you can't use '-delete {opt}' and '-revert {opt}' at the same time"})
    return _ConfigUpdate(guest, updates, deletes, reverts, False)


def _write_lxc_update(call: Call, upd: _ConfigUpdate) -> None:
    """pve-container ``LXC/Config.pm`` ``update_pct_config``."""
    state, guest = call.sim.state, upd.guest
    for opt in upd.reverts:
        guest.pending.pop(opt, None)
        guest.pending_delete.pop(opt, None)
    modified: set[str] = set()
    for opt in upd.deletes:
        if opt not in guest.config and opt not in guest.pending:
            continue  # PVE warns "cannot delete '…' - not set in current configuration!"
        modified.add(opt)
        if opt in ("memory", "rootfs", "ostype"):
            raise fail(f"unable to delete required option '{opt}'")
        if opt == "unprivileged":
            raise fail(f"unable to delete read-only option: '{opt}'")
        if re.match(r"^(unused|mp)\d+$", opt) and guest.config.get("protection"):
            raise fail(f"can't remove CT {guest.vmid} drive '{opt}'")
        guest.pending_delete[opt] = False
    for opt in sorted(upd.updates):
        modified.add(opt)
        stored = store_value(upd.updates[opt])
        if LXC_DISK_RE.match(opt) and isinstance(stored, str):
            if guest.config.get("protection"):
                raise fail(f"can't update CT {guest.vmid} drive '{opt}'")
            head = stored.split(",", 1)[0]
            sid = head.split(":", 1)[0] if ":" in head else None
            storage = state.storages.get(sid) if sid else None
            if storage is not None and "rootdir" not in storage.content:
                raise fail(f"storage '{sid}' does not allow content type 'rootdir' (Container)")
            stored, vol = allocate_disk_value(state, guest, opt, stored, guest.node)
            if vol is not None:
                state.add_volume(vol)
        elif opt == "unprivileged":
            raise fail(f"unable to modify read-only option: '{opt}'")
        elif opt.startswith("net") and isinstance(stored, str):
            stored = _lxc_net(state, stored)
        guest.pending[opt] = stored
        guest.pending_delete.pop(opt, None)
    pending.settle_update(state, guest, modified)


@route("PUT", "/nodes/{node}/qemu/{vmid}/config")
def qemu_config_put(call: Call) -> None:
    guest = load_guest(call, "qemu")
    _write_qemu_update(call, _check_qemu_update(call, guest))
    return None


@route("POST", "/nodes/{node}/qemu/{vmid}/config")
def qemu_config_post(call: Call) -> Task | None:
    guest = load_guest(call, "qemu")
    upd = _check_qemu_update(call, guest)

    def worker(ctx: TaskContext) -> Worker:
        try:
            lines = _write_qemu_update(call, upd)
        except PveHttpError as err:
            raise TaskError(err.message) from None
        for line in lines:
            ctx.log(line)
        yield 0.5

    task = start_guest_task(call, "qmconfig", worker)
    if call.integer("background_delay"):
        # PVE waits up to background_delay seconds; a config task is always done by then
        call.sim.tasks.complete(task)
        if task.exitstatus == "OK":
            return None
        raise fail(f"failed to update VM {guest.vmid}: {task.exitstatus}")
    return task


@route("PUT", "/nodes/{node}/lxc/{vmid}/config")
def lxc_config_put(call: Call) -> None:
    guest = load_guest(call, "lxc")
    _write_lxc_update(call, _check_lxc_update(call, guest))
    return None


def check_qemu_drive_storage(state: ClusterState, value: str) -> None:
    """qemu-server ``API2/Qemu.pm`` ``$check_storage_access``: a new disk's storage must take ``images`` (400)."""
    head = value.split(",", 1)[0]
    if "media=cdrom" in value or ":" not in head:
        return
    sid, rest = head.split(":", 1)
    storage = state.storages.get(sid)
    if storage is None:
        raise fail(f"storage '{sid}' does not exist")
    if SIZE_ONLY.match(rest) and "images" not in storage.content:
        raise param_error({"storage": f"storage '{sid}' does not support vm images"})


def net_with_mac(state: ClusterState, value: str, gtype: GuestType) -> str:
    """Fill in a MAC like PVE does when the client gives only the model (``virtio,bridge=vmbr0``)."""
    parts = value.split(",")
    if gtype == "qemu":
        first = parts[0]
        if "=" not in first and first in ("virtio", "e1000", "e1000e", "rtl8139", "vmxnet3"):
            parts[0] = f"{first}={state.new_mac()}"
        elif first.startswith("model="):
            parts[0] = f"{first.split('=', 1)[1]}={state.new_mac()}"
        return ",".join(parts)
    return _lxc_net(state, value)


def _lxc_net(state: ClusterState, value: str) -> str:
    """pve-container ``LXC/Config.pm`` ``parse_lxc_network`` + ``print_lxc_network``.

    ``type`` is always ``veth`` and a missing ``hwaddr`` is generated; ``print_property_string``
    (pve-common ``JSONSchema.pm``) writes the required ``name`` first, then the other keys sorted.
    """
    opts = dict(p.split("=", 1) for p in value.split(",") if "=" in p)
    opts["type"] = "veth"
    opts.setdefault("hwaddr", state.new_mac())
    head = [f"name={opts.pop('name')}"] if "name" in opts else []
    return ",".join(head + [f"{k}={v}" for k, v in sorted(opts.items())])
