"""Destroying VMs and containers, and removing every reference to them (pools, jobs, ACLs...)."""

from __future__ import annotations

import re

from pvemcp.sim.errors import TaskError, fail
from pvemcp.sim.handlers.common import (
    check_lock_sync,
    check_lock_task,
    check_quorum,
    load_guest,
    skiplock,
    start_guest_task,
)
from pvemcp.sim.handlers.guest_lifecycle import STOP_SECONDS, stop_now
from pvemcp.sim.routing import Call, route
from pvemcp.sim.state import (
    ClusterState,
    Guest,
)
from pvemcp.sim.tasks import Task, TaskContext, Worker


def destroy_guest(state: ClusterState, guest: Guest) -> None:
    for vol in [v for v in state.volumes.values() if v.vmid == guest.vmid and v.content in ("images", "rootdir")]:
        state.remove_volume(vol)
    if state.guests.get(guest.vmid) is guest:
        del state.guests[guest.vmid]
    if guest.pool and guest.pool in state.pools:
        state.pools[guest.pool].vmids.discard(guest.vmid)
    state.touch()


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
        destroy_guest(state, guest)

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
            stop_now(ctx, guest)
        yield 1.0
        if purge:
            ctx.log(f"purging CT {guest.vmid} from related configurations..")
            _purge_references(state, guest.vmid)
        destroy_guest(state, guest)

    return start_guest_task(call, "vzdestroy", worker)
