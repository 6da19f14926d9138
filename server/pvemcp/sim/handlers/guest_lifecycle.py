"""VM and container power actions: start, stop, shutdown, reboot, reset, suspend, resume.

Each failure is raised where PVE raises it (notes §1.7, §4): synchronously as HTTP 500, or inside the
worker so that the call returns a UPID and the task ends with the error as exit status. Examples: qemu
start of a running VM fails in the task (``VM 100 already running``) while LXC start of a running CT fails
synchronously (``CT 101 already running``); qemu stop/shutdown of a stopped VM is ``TASK OK``.
"""

from __future__ import annotations

from typing import Any

from pvemcp.sim.errors import TaskError, fail
from pvemcp.sim.handlers.common import (
    boot_guest,
    check_lock_task,
    check_quorum,
    config_missing,
    find_guest,
    guest_alive,
    load_guest,
    not_running_error,
    set_running,
    set_stopped,
    skiplock,
    start_guest_task,
)
from pvemcp.sim.routing import Call, route
from pvemcp.sim.state import (
    Guest,
    GuestType,
    split_property_string,
)
from pvemcp.sim.tasks import Task, TaskContext, Worker

# simulated durations (seconds of task time)
START_SECONDS = 1.5


STOP_SECONDS = 1.0


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


def stop_now(ctx: TaskContext, guest: Guest) -> None:
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
        stop_now(ctx, guest)

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
            stop_now(ctx, guest)
        else:
            yield float(timeout)
            if guest.status == "running" and guest_alive(ctx.state, guest):
                if not force:
                    if guest_type == "qemu":
                        raise TaskError("VM quit/powerdown failed - got timeout")
                    raise TaskError("container did not stop")
                ctx.log("VM still running - terminating now with SIGTERM")
                yield 1.0
                stop_now(ctx, guest)
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
        stop_now(ctx, guest)

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
