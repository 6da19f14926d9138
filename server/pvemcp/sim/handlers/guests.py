"""VMs and containers: indexes, status, power actions, create, clone, destroy, config, template.

Each failure is raised where PVE raises it (notes §1.7, §4): synchronously as HTTP 500, or inside the
worker so that the call returns a UPID and the task ends with the error as exit status. Examples: qemu
start of a running VM fails in the task (``VM 100 already running``) while LXC start of a running CT fails
synchronously (``CT 101 already running``); qemu stop/shutdown of a stopped VM is ``TASK OK``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pvemcp.sim import pending
from pvemcp.sim.errors import PveHttpError, TaskError, fail, param_error
from pvemcp.sim.handlers.common import (
    boot_guest,
    check_lock_sync,
    check_lock_task,
    check_quorum,
    config_missing,
    find_guest,
    find_snapshot,
    guest_alive,
    load_guest,
    not_running_error,
    running_stats,
    set_running,
    set_stopped,
    skiplock,
    start_guest_task,
)
from pvemcp.sim.handlers.restore import lxc_restore, qemu_restore
from pvemcp.sim.handlers.storage import volume_path
from pvemcp.sim.handlers.views import lxc_index_entry, qemu_index_entry
from pvemcp.sim.routing import Call, guest_route, route
from pvemcp.sim.state import (
    GIB,
    LXC_DISK_RE,
    QEMU_DISK_RE,
    QEMU_VERSION,
    ClusterState,
    Config,
    Guest,
    GuestType,
    Volume,
    config_digest,
    format_size,
    parse_size,
    split_property_string,
)
from pvemcp.sim.tasks import INTERRUPT_SIGNAL, Task, TaskContext, Worker

# simulated durations (seconds of task time)
START_SECONDS = 1.5
STOP_SECONDS = 1.0
CLONE_BYTES_PER_SECOND = 2 * GIB
CREATE_SECONDS = 2.0

_SIZE_ONLY = re.compile(r"^(\d+(?:\.\d+)?)$")


# ---------------------------------------------------------------------------------------------- indexes


@route("GET", "/nodes/{node}/qemu")
def qemu_index(call: Call) -> list[dict[str, Any]]:
    state = call.sim.state
    return [qemu_index_entry(state, g) for g in state.guests_on(call.node, "qemu") if call.ident.has("VM.Audit")]


@route("GET", "/nodes/{node}/lxc")
def lxc_index(call: Call) -> list[dict[str, Any]]:
    state = call.sim.state
    return [lxc_index_entry(state, g) for g in state.guests_on(call.node, "lxc") if call.ident.has("VM.Audit")]


@route("GET", "/nodes/{node}/qemu/{vmid}/status/current")
def qemu_status_current(call: Call) -> dict[str, Any]:
    guest = load_guest(call, "qemu")
    state = call.sim.state
    entry = qemu_index_entry(state, guest)
    entry["qmpstatus"] = guest.qmpstatus if guest.status == "running" else "stopped"
    entry["ha"] = {"managed": 0}
    stats = running_stats(state, guest)
    entry["diskread"] = stats["diskread"]
    entry["diskwrite"] = stats["diskwrite"]
    agent = str(guest.config.get("agent", "0"))
    if agent.split(",")[0] in ("1", "enabled=1"):
        entry["agent"] = 1
    if guest.status == "running":
        mem = entry["mem"]
        entry.update(
            {
                "running-machine": str(guest.config.get("machine", "pc-i440fx-10.1+pve0")),
                "running-qemu": QEMU_VERSION,
                "balloon": guest.maxmem,
                "freemem": max(0, guest.maxmem - mem),
                "ballooninfo": {
                    "actual": guest.maxmem,
                    "max_mem": guest.maxmem,
                    "total_mem": guest.maxmem - 64 * 1024 * 1024,
                    "free_mem": max(0, guest.maxmem - mem),
                    "mem_swapped_in": 0,
                    "mem_swapped_out": 0,
                    "major_page_faults": 1200,
                    "minor_page_faults": 2_400_000,
                    "last_update": int(state.clock.now()),
                },
                "nics": {f"tap{guest.vmid}i0": {"netin": entry["netin"], "netout": entry["netout"]}},
                "blockstat": {key: _blockstat(entry) for key, _ in guest.disks()},
                "proxmox-support": {
                    "backup-fleecing": True,
                    "backup-max-workers": True,
                    "pbs-dirty-bitmap": True,
                    "pbs-dirty-bitmap-migration": True,
                    "pbs-dirty-bitmap-savevm": True,
                    "pbs-library-version": "1.5.2 (UNKNOWN)",
                    "pbs-masterkey": True,
                    "query-bitmap-info": True,
                },
            }
        )
    return entry


def _blockstat(entry: dict[str, Any]) -> dict[str, Any]:
    """QEMU's ``query-blockstats`` counters for one drive (as ``status/current`` shows them)."""
    up = max(1, int(entry["uptime"]))
    return {
        "rd_bytes": entry["diskread"],
        "wr_bytes": entry["diskwrite"],
        "rd_operations": up * 3,
        "wr_operations": up * 5,
        "flush_operations": up,
        "rd_merged": 0,
        "wr_merged": 0,
        "unmap_operations": 0,
        "unmap_bytes": 0,
        "failed_rd_operations": 0,
        "failed_wr_operations": 0,
        "failed_flush_operations": 0,
        "invalid_rd_operations": 0,
        "invalid_wr_operations": 0,
        "invalid_flush_operations": 0,
        "rd_total_time_ns": up * 1000,
        "wr_total_time_ns": up * 2000,
        "flush_total_time_ns": up * 500,
        "idle_time_ns": 1_000_000,
        "account_failed": True,
        "account_invalid": True,
        "timed_stats": [],
    }


@route("GET", "/nodes/{node}/lxc/{vmid}/status/current")
def lxc_status_current(call: Call) -> dict[str, Any]:
    guest = load_guest(call, "lxc")
    entry = lxc_index_entry(call.sim.state, guest)
    entry["ha"] = {"managed": 0}
    return entry


# ---------------------------------------------------------------------------------------------- power


@route("POST", "/nodes/{node}/qemu/{vmid}/status/start")
def qemu_start(call: Call) -> Task:
    check_quorum(call)
    skip = skiplock(call)
    node, vmid = call.node, call.vmid

    def worker(ctx: TaskContext) -> Worker:
        guest = find_guest(call, "qemu")
        if guest is None:
            raise TaskError(config_missing(node, vmid, "qemu"))
        if guest.template:
            raise TaskError("you can't start a vm if it's a template")
        if guest.lock == "backup" and guest.status == "running":
            return  # a backup in progress: start just resumes the VM
        resumed = guest.lock == "suspended"
        if resumed:
            ctx.log(f"Resuming suspended VM {vmid}")
            guest.config.pop("lock", None)
            guest.config.pop("vmstate", None)
        else:
            check_lock_task(guest, skip)
        if guest.status == "running":
            raise TaskError(f"VM {vmid} already running")
        boot_guest(ctx.state, guest, from_state=resumed)
        yield START_SECONDS

    return start_guest_task(call, "qmstart", worker)


def _stop_now(ctx: TaskContext, guest: Guest) -> None:
    if guest_alive(ctx.state, guest) and guest.status == "running":
        set_stopped(ctx.state, guest)


@route("POST", "/nodes/{node}/qemu/{vmid}/status/stop")
def qemu_stop(call: Call) -> Task:
    skip = skiplock(call)
    node, vmid = call.node, call.vmid
    overrule = call.flag("overrule-shutdown")

    def worker(ctx: TaskContext) -> Worker:
        guest = find_guest(call, "qemu")
        if guest is None:
            raise TaskError(config_missing(node, vmid, "qemu"))
        # qemu-server QemuServer.pm _do_vm_stop returns before check_lock when the VM is not running
        if guest.status == "running":
            check_lock_task(guest, skip)
        if overrule:
            for t in call.sim.tasks.running_for(str(vmid), ("qmshutdown",)):
                ctx.log(f"overruling shutdown task {t.upid}")
                call.sim.tasks.stop(t)
        if guest.status != "running":
            return
        yield STOP_SECONDS
        _stop_now(ctx, guest)

    return start_guest_task(call, "qmstop", worker)


def _shutdown_worker(
    call: Call, guest_type: GuestType, timeout: int, force: bool, skip: bool, then_start: bool = False
) -> Any:
    node, vmid = call.node, call.vmid

    def worker(ctx: TaskContext) -> Worker:
        guest = find_guest(call, guest_type)
        if guest is None:
            raise TaskError(config_missing(node, vmid, guest_type))
        if guest.status != "running":
            return  # qemu-server _do_vm_stop: nothing to do, no lock check
        # the lock is checked in the worker: qemu _do_vm_stop (shutdown and reboot), pve-container
        # vm_shutdown's realcmd; pve-container LXC.pm vm_reboot stops and starts without a lock check
        if guest_type == "qemu" or not then_start:
            check_lock_task(guest, skip)
        needed = guest.shutdown_seconds
        if needed is not None and needed <= timeout:
            yield needed
            _stop_now(ctx, guest)
        else:
            yield float(timeout)
            if guest.status == "running" and guest_alive(ctx.state, guest):
                if not force:
                    if guest_type == "qemu":
                        raise TaskError("VM quit/powerdown failed - got timeout")
                    raise TaskError("container did not stop")
                ctx.log("VM still running - terminating now with SIGTERM")
                yield 1.0
                _stop_now(ctx, guest)
        if then_start and guest_alive(ctx.state, guest):
            yield START_SECONDS
            boot_guest(ctx.state, guest)

    return worker


def _shutdown_timeout(call: Call, guest: Guest | None) -> int:
    timeout = call.integer("timeout")
    if timeout is not None:
        return timeout
    if guest is not None:
        _, opts = split_property_string(str(guest.config.get("startup", "")))
        if "down" in opts and opts["down"].isdigit():
            return int(opts["down"])
    return 60


@route("POST", "/nodes/{node}/qemu/{vmid}/status/shutdown")
def qemu_shutdown(call: Call) -> Task:
    skip = skiplock(call)
    force = call.flag("forceStop")
    guest = find_guest(call, "qemu")
    if guest is not None and guest.qmpstatus == "paused" and not force:
        raise fail("VM is paused - cannot shutdown")
    worker = _shutdown_worker(call, "qemu", _shutdown_timeout(call, guest), force, skip)
    return start_guest_task(call, "qmshutdown", worker)


def _check_running_qemu(call: Call) -> Guest:
    """``check_running``: config must exist on this node, else the 'unable to find' error."""
    guest = find_guest(call, "qemu")
    if guest is None:
        raise fail(f"unable to find configuration file for VM {call.vmid} on node '{call.node}'")
    return guest


@route("POST", "/nodes/{node}/qemu/{vmid}/status/reboot")
def qemu_reboot(call: Call) -> Task:
    guest = _check_running_qemu(call)
    if guest.qmpstatus == "paused":
        raise fail("VM is paused - cannot shutdown")
    if guest.status != "running":
        raise not_running_error(guest)
    worker = _shutdown_worker(call, "qemu", _shutdown_timeout(call, guest), False, False, then_start=True)
    return start_guest_task(call, "qmreboot", worker)


@route("POST", "/nodes/{node}/qemu/{vmid}/status/reset")
def qemu_reset(call: Call) -> Task:
    guest = _check_running_qemu(call)
    skip = skiplock(call)
    if guest.status != "running":
        raise not_running_error(guest)

    def worker(ctx: TaskContext) -> Worker:
        check_lock_task(guest, skip)
        set_running(ctx.state, guest)
        yield 0.2

    return start_guest_task(call, "qmreset", worker)


@route("POST", "/nodes/{node}/qemu/{vmid}/status/suspend")
def qemu_suspend(call: Call) -> Task:
    guest = _check_running_qemu(call)
    skip = skiplock(call)
    todisk = call.flag("todisk")
    if guest.status != "running":
        raise not_running_error(guest)

    def worker(ctx: TaskContext) -> Worker:
        check_lock_task(guest, skip)
        if not todisk:
            guest.qmpstatus = "paused"
            ctx.state.touch()
            yield 0.2
            return
        guest.config["lock"] = "suspending"
        ctx.state.touch()
        ctx.log(f"suspending VM {guest.vmid} to disk")
        yield 3.0
        if not guest_alive(ctx.state, guest):
            return
        guest.config["lock"] = "suspended"
        guest.config["vmstate"] = f"local-lvm:vm-{guest.vmid}-state-suspend-{_date_stamp(ctx)}"
        set_stopped(ctx.state, guest)

    return start_guest_task(call, "qmsuspend" if todisk else "qmpause", worker)


def _date_stamp(ctx: TaskContext) -> str:
    import time

    return time.strftime("%Y-%m-%d", time.gmtime(ctx.now()))


@route("POST", "/nodes/{node}/qemu/{vmid}/status/resume")
def qemu_resume(call: Call) -> Task:
    guest = _check_running_qemu(call)
    skip = skiplock(call)
    to_disk_suspended = guest.lock == "suspended"
    if guest.status != "running" and not to_disk_suspended:
        raise not_running_error(guest)

    def worker(ctx: TaskContext) -> Worker:
        if to_disk_suspended:
            guest.config.pop("lock", None)
            guest.config.pop("vmstate", None)
            set_running(ctx.state, guest)
            yield START_SECONDS
            return
        check_lock_task(guest, skip)
        if guest.qmpstatus == "paused":
            guest.qmpstatus = "running"
            ctx.state.touch()
        yield 0.2

    return start_guest_task(call, "qmresume", worker)


# LXC power actions: state errors are synchronous, locks are checked in the task


def _running_lxc(call: Call) -> Guest:
    """The container of the path, which must be running: ``CT N not running`` (500) otherwise.

    Shared by shutdown, suspend and resume; stop checks ``skiplock`` in between, so it keeps its own.
    """
    guest = load_guest(call, "lxc")
    if guest.status != "running":
        raise not_running_error(guest)
    return guest


@route("POST", "/nodes/{node}/lxc/{vmid}/status/start")
def lxc_start(call: Call) -> Task:
    check_quorum(call)
    guest = load_guest(call, "lxc")
    skip = skiplock(call)
    if guest.status == "running":
        raise fail(f"CT {guest.vmid} already running")
    if guest.template:
        raise fail("you can't start a CT if it's a template")

    def worker(ctx: TaskContext) -> Worker:
        check_lock_task(guest, skip, ignore=("mounted",))
        if guest.status == "running":
            raise TaskError(f"CT {guest.vmid} already running")
        boot_guest(ctx.state, guest)
        yield START_SECONDS

    return start_guest_task(call, "vzstart", worker)


@route("POST", "/nodes/{node}/lxc/{vmid}/status/stop")
def lxc_stop(call: Call) -> Task:
    guest = load_guest(call, "lxc")
    skip = skiplock(call)
    if guest.status != "running":
        raise not_running_error(guest)

    def worker(ctx: TaskContext) -> Worker:
        check_lock_task(guest, skip)
        yield STOP_SECONDS
        _stop_now(ctx, guest)

    return start_guest_task(call, "vzstop", worker)


@route("POST", "/nodes/{node}/lxc/{vmid}/status/shutdown")
def lxc_shutdown(call: Call) -> Task:
    guest = _running_lxc(call)
    worker = _shutdown_worker(call, "lxc", _shutdown_timeout(call, guest), call.flag("forceStop"), False)
    return start_guest_task(call, "vzshutdown", worker)


@route("POST", "/nodes/{node}/lxc/{vmid}/status/reboot")
def lxc_reboot(call: Call) -> Task:
    guest = load_guest(call, "lxc")
    if guest.status != "running":
        raise fail(f"VM {guest.vmid} not running")  # sic: PVE says VM here
    worker = _shutdown_worker(call, "lxc", _shutdown_timeout(call, guest), True, False, then_start=True)
    return start_guest_task(call, "vzreboot", worker)


@route("POST", "/nodes/{node}/lxc/{vmid}/status/suspend")
def lxc_suspend(call: Call) -> Task:
    """pve-container ``API2/LXC/Status.pm`` ``vm_suspend``: ``lxc-checkpoint -s`` checkpoints and stops the CT."""
    guest = _running_lxc(call)

    def worker(ctx: TaskContext) -> Worker:
        check_lock_task(guest)
        yield 0.5
        if guest_alive(ctx.state, guest):
            set_stopped(ctx.state, guest)

    return start_guest_task(call, "vzsuspend", worker)


@route("POST", "/nodes/{node}/lxc/{vmid}/status/resume")
def lxc_resume(call: Call) -> Task:
    """``vm_resume``: ``CT N already running`` unless stopped, then ``lxc-checkpoint -r`` restores it.

    A restore without a checkpoint fails in PVE with lxc's own error, which is not modelled here.
    """
    guest = load_guest(call, "lxc")
    if guest.status == "running":
        raise fail(f"CT {guest.vmid} already running")

    def worker(ctx: TaskContext) -> Worker:
        boot_guest(ctx.state, guest, from_state=True)
        yield 0.5

    return start_guest_task(call, "vzresume", worker)


# ---------------------------------------------------------------------------------------------- config


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


_NON_CONFIG = frozenset(
    {"node", "vmid", "digest", "delete", "revert", "skiplock", "background_delay", "force", "start"}
)


def _store_value(value: Any) -> str | int | float:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int | float):
        return value
    return str(value)


def _allocate_disk_value(
    state: ClusterState, guest: Guest, key: str, value: str, node: str
) -> tuple[str, Volume | None]:
    """``local-lvm:32`` → a new volume ``local-lvm:vm-<id>-disk-N,size=32G`` (PVE's disk allocation)."""
    head, opts = split_property_string(value)
    if head is None or ":" not in head:
        return value, None
    storage_id, rest = head.split(":", 1)
    if not _SIZE_ONLY.match(rest):
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
            _check_qemu_drive_storage(call.sim.state, str(value))
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
        stored = _store_value(value)
        if opt in guest.pending and str(guest.pending[opt]) == str(stored):
            continue
        if QEMU_DISK_RE.match(opt) and isinstance(stored, str):
            stored, vol = _allocate_disk_value(state, guest, opt, stored, guest.node)
            if vol is not None:
                state.add_volume(vol)
                lines.append(f"{opt}: successfully created disk '{vol.volid},size={format_size(vol.size)}'")
        elif opt.startswith("net") and isinstance(stored, str):
            stored = _net_with_mac(state, stored, "qemu")
        if opt == "cipassword":
            guest.config[opt] = stored  # written to the config directly, never pending
        else:
            guest.pending[opt] = stored
        guest.pending_delete.pop(opt, None)
    pending.cleanup_pending(guest)
    if guest.status == "running":
        pending.hotplug_pending(state, guest, modified)
    else:
        pending.apply_pending(state, guest)
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
        stored = _store_value(upd.updates[opt])
        if LXC_DISK_RE.match(opt) and isinstance(stored, str):
            if guest.config.get("protection"):
                raise fail(f"can't update CT {guest.vmid} drive '{opt}'")
            head = stored.split(",", 1)[0]
            sid = head.split(":", 1)[0] if ":" in head else None
            storage = state.storages.get(sid) if sid else None
            if storage is not None and "rootdir" not in storage.content:
                raise fail(f"storage '{sid}' does not allow content type 'rootdir' (Container)")
            stored, vol = _allocate_disk_value(state, guest, opt, stored, guest.node)
            if vol is not None:
                state.add_volume(vol)
        elif opt == "unprivileged":
            raise fail(f"unable to modify read-only option: '{opt}'")
        elif opt.startswith("net") and isinstance(stored, str):
            stored = _lxc_net(state, stored)
        guest.pending[opt] = stored
        guest.pending_delete.pop(opt, None)
    pending.cleanup_pending(guest)
    if guest.status == "running":
        pending.hotplug_pending(state, guest, modified)
    else:
        pending.apply_pending(state, guest)


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


# ---------------------------------------------------------------------------------------------- create


def _check_vmid_free(state: ClusterState, vmid: int, gtype: GuestType) -> None:
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


def _check_qemu_drive_storage(state: ClusterState, value: str) -> None:
    """qemu-server ``API2/Qemu.pm`` ``$check_storage_access``: a new disk's storage must take ``images`` (400)."""
    head = value.split(",", 1)[0]
    if "media=cdrom" in value or ":" not in head:
        return
    sid, rest = head.split(":", 1)
    storage = state.storages.get(sid)
    if storage is None:
        raise fail(f"storage '{sid}' does not exist")
    if _SIZE_ONLY.match(rest) and "images" not in storage.content:
        raise param_error({"storage": f"storage '{sid}' does not support vm images"})


def _check_pool(state: ClusterState, pool: str | None) -> None:
    if pool and pool not in state.pools:
        raise PveHttpError(403, f"Permission check failed (pool '{pool}' does not exist)\n")


def _new_guest(state: ClusterState, vmid: int, gtype: GuestType, node: str, pool: str | None) -> Guest:
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


def _destroy_guest(state: ClusterState, guest: Guest) -> None:
    for vol in [v for v in state.volumes.values() if v.vmid == guest.vmid and v.content in ("images", "rootdir")]:
        state.remove_volume(vol)
    if state.guests.get(guest.vmid) is guest:
        del state.guests[guest.vmid]
    if guest.pool and guest.pool in state.pools:
        state.pools[guest.pool].vmids.discard(guest.vmid)
    state.touch()


def _net_with_mac(state: ClusterState, value: str, gtype: GuestType) -> str:
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


@route("POST", "/nodes/{node}/qemu")
def qemu_create(call: Call) -> Task:
    state = call.sim.state
    vmid = call.vmid
    node = call.node
    if call.text("archive"):
        return qemu_restore(call)
    check_quorum(call)
    _check_vmid_free(state, vmid, "qemu")
    pool = call.text("pool")
    _check_pool(state, pool)
    updates = {k: v for k, v in call.params.items() if k not in _NON_CONFIG and k != "pool" and k != "archive"}
    for key, value in updates.items():
        if QEMU_DISK_RE.match(key) or re.match(r"^(ide|sata)\d+$", key):
            _check_qemu_drive_storage(state, str(value))
    guest = _new_guest(state, vmid, "qemu", node, pool)
    start = call.flag("start")

    def worker(ctx: TaskContext) -> Worker:
        ok = False
        try:
            cfg: Config = {}
            for key, value in updates.items():
                stored = _store_value(value)
                if QEMU_DISK_RE.match(key) and isinstance(stored, str):
                    stored, vol = _allocate_disk_value(state, guest, key, stored, node)
                    if vol is not None:
                        state.add_volume(vol)
                        ctx.log(f"{key}: successfully created disk '{vol.volid},size={format_size(vol.size)}'")
                elif key.startswith("net") and isinstance(stored, str):
                    stored = _net_with_mac(state, stored, "qemu")
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
                _destroy_guest(state, guest)

    return start_guest_task(call, "qmcreate", worker)


@route("POST", "/nodes/{node}/lxc")
def lxc_create(call: Call) -> Task:
    state = call.sim.state
    vmid = call.vmid
    node = call.node
    if call.flag("restore"):
        return lxc_restore(call)
    check_quorum(call)
    _check_vmid_free(state, vmid, "lxc")
    pool = call.text("pool")
    _check_pool(state, pool)
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
            mounts[key] = f"{storage_id}:{text}" if _SIZE_ONLY.match(text) else text
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
    guest = _new_guest(state, vmid, "lxc", node, pool)
    start = call.flag("start")

    def worker(ctx: TaskContext) -> Worker:
        ok = False
        try:
            cfg: Config = {"arch": "amd64"}
            name = tmpl.volid.rsplit("/", 1)[-1]
            ostype = name.split("-", 1)[0] if "-" in name else "unmanaged"
            cfg["ostype"] = ostype if ostype in ("debian", "ubuntu", "alpine", "centos", "fedora") else "unmanaged"
            for key, value in updates.items():
                stored = _store_value(value)
                if LXC_DISK_RE.match(key) and isinstance(stored, str):
                    stored, vol = _allocate_disk_value(state, guest, key, stored, node)
                    if vol is not None:
                        state.add_volume(vol)
                elif key.startswith("net") and isinstance(stored, str):
                    stored = _net_with_mac(state, stored, "lxc")
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
                _destroy_guest(state, guest)

    return start_guest_task(call, "vzcreate", worker)


# ---------------------------------------------------------------------------------------------- destroy


def _purge_references(state: ClusterState, vmid: int) -> None:
    """``purge``: pve-guest-common ``PVE/VZDump/Plugin.pm`` ``remove_vmid_from_backup_jobs``.

    The id leaves a job's ``vmid`` list — a job whose list becomes empty is deleted — or its ``exclude``
    list (``remove_vmid_from_job``).
    """
    for job_id, job in list(state.backup_jobs.items()):
        key = "vmid" if job.get("vmid") is not None else "exclude" if job.get("exclude") is not None else None
        if key is None:
            continue
        ids = [v for v in re.split(r"[,;\s]+", str(job[key])) if v and v != str(vmid)]
        if ids:
            job[key] = ",".join(ids)
        elif key == "vmid":
            del state.backup_jobs[job_id]
        else:
            job.pop("exclude", None)
    state.touch()


def _linked_clone_users(state: ClusterState, guest: Guest) -> str | None:
    for _, value in guest.disks():
        base = value.split(",", 1)[0]
        for other in state.guests.values():
            if other is guest:
                continue
            for _, ov in other.disks():
                if ov.split(",", 1)[0].startswith(base + "/"):
                    return base
    return None


@route("DELETE", "/nodes/{node}/qemu/{vmid}")
def qemu_destroy(call: Call) -> Task:
    check_quorum(call)
    guest = load_guest(call, "qemu")
    state = call.sim.state
    skip = skiplock(call)
    if guest.config.get("protection"):
        raise fail(f"can't remove VM {guest.vmid} - protection mode enabled")
    if guest.status == "running":
        raise fail(f"VM {guest.vmid} is running - destroy failed")
    purge = call.flag("purge")

    def worker(ctx: TaskContext) -> Worker:
        check_lock_task(guest, skip, ignore=("suspended",))
        in_use = _linked_clone_users(state, guest)
        if in_use:
            raise TaskError(f"base volume '{in_use}' is still in use by linked cloned")
        yield 1.0
        for _, value in guest.disks():
            volid = value.split(",", 1)[0]
            ctx.log(f'  Logical volume "{volid.split(":", 1)[-1]}" successfully removed.')
        if purge:
            ctx.log(f"purging VM {guest.vmid} from related configurations..")
            _purge_references(state, guest.vmid)
        _destroy_guest(state, guest)

    return start_guest_task(call, "qmdestroy", worker)


@route("DELETE", "/nodes/{node}/lxc/{vmid}")
def lxc_destroy(call: Call) -> Task:
    check_quorum(call)
    guest = load_guest(call, "lxc")
    state = call.sim.state
    if guest.config.get("protection"):
        raise fail(f"can't remove CT {guest.vmid} - protection mode enabled")
    check_lock_sync(guest)
    force = call.flag("force")
    if guest.status == "running" and not force:
        raise fail(f"unable to destroy CT {guest.vmid} - container is running")
    purge = call.flag("purge")

    def worker(ctx: TaskContext) -> Worker:
        if guest.status == "running":
            yield STOP_SECONDS
            _stop_now(ctx, guest)
        yield 1.0
        if purge:
            ctx.log(f"purging CT {guest.vmid} from related configurations..")
            _purge_references(state, guest.vmid)
        _destroy_guest(state, guest)

    return start_guest_task(call, "vzdestroy", worker)


# ---------------------------------------------------------------------------------------------- template


def _make_template(state: ClusterState, guest: Guest, ctx: TaskContext | None) -> None:
    new_cfg: Config = {}
    for key, value in guest.config.items():
        text = str(value)
        if (QEMU_DISK_RE if guest.type == "qemu" else LXC_DISK_RE).match(key) and f"vm-{guest.vmid}-disk" in text:
            volid = text.split(",", 1)[0]
            new_volid = volid.replace(f"vm-{guest.vmid}-disk", f"base-{guest.vmid}-disk")
            vol = state.find_volume(volid, guest.node)
            if vol is not None:
                state.remove_volume(vol)
                vol.volid = new_volid
                state.add_volume(vol)
            if ctx is not None:
                ctx.log(
                    f'  Renamed "{volid.split(":", 1)[-1]}" to "{new_volid.split(":", 1)[-1]}" in volume group "pve"'
                )
            text = text.replace(volid, new_volid)
        new_cfg[key] = text if isinstance(value, str) else value
    new_cfg["template"] = 1
    guest.config = dict(sorted(new_cfg.items()))
    state.touch()


def _template_checks(guest: Guest) -> None:
    check_lock_sync(guest)
    kind = guest.kind
    if guest.status == "running":
        raise fail(f"you can't convert a {kind} to template if {kind} is running")
    if guest.snapshots:
        raise fail(f"unable to create template, because {kind} contains snapshots")


@route("POST", "/nodes/{node}/qemu/{vmid}/template")
def qemu_template(call: Call) -> Task:
    guest = load_guest(call, "qemu")
    _template_checks(guest)
    state = call.sim.state

    def worker(ctx: TaskContext) -> Worker:
        yield 1.0
        _make_template(state, guest, ctx)

    return start_guest_task(call, "qmtemplate", worker)


@route("POST", "/nodes/{node}/lxc/{vmid}/template")
def lxc_template(call: Call) -> None:
    guest = load_guest(call, "lxc")
    _template_checks(guest)
    _make_template(call.sim.state, guest, None)
    return None


# ---------------------------------------------------------------------------------------------- clone


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
    _check_pool(state, pool)
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
        _check_vmid_free(state, call.integer("newid") or 0, "lxc")
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

    new_guest = _new_guest(state, newid, gtype, target, pool)
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
                _destroy_guest(state, new_guest)

    wtype = "qmclone" if gtype == "qemu" else "vzclone"
    # the workers' own SIGTERM handler dies "interrupted by signal" inside the eval that adds "clone failed: "
    return start_guest_task(call, wtype, worker, interrupt_text=f"clone failed: {INTERRUPT_SIGNAL}")
