"""Helpers shared by the handlers: guest lookup with PVE's errors, lock checks, status entries."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pvemcp.sim import pending
from pvemcp.sim.errors import PveHttpError, TaskError, fail, param_error
from pvemcp.sim.routing import Call
from pvemcp.sim.state import ClusterState, Guest, GuestType, Node, Snapshot
from pvemcp.sim.tasks import Task, WorkerFactory


def config_missing(node: str, vmid: int, gtype: GuestType) -> str:
    sub = "qemu-server" if gtype == "qemu" else "lxc"
    return f"Configuration file 'nodes/{node}/{sub}/{vmid}.conf' does not exist"


def find_guest(call: Call, gtype: GuestType) -> Guest | None:
    """The guest ``vmid`` if its config lives on ``node`` with that type (what ``load_config`` sees)."""
    guest = call.sim.state.guests.get(call.vmid)
    if guest is None or guest.type != gtype or guest.node != call.node:
        return None
    return guest


def load_guest(call: Call, gtype: GuestType) -> Guest:
    """``load_config``: the guest, or 500 ``Configuration file 'nodes/N/qemu-server/ID.conf' does not exist``."""
    guest = find_guest(call, gtype)
    if guest is None:
        raise fail(config_missing(call.node, call.vmid, gtype))
    return guest


def set_running(state: ClusterState, guest: Guest) -> None:
    """The guest is now running: a fresh PID and start time (start, resume from disk, rollback)."""
    guest.status = "running"
    guest.qmpstatus = "running"
    guest.started_at = state.clock.now()
    guest.pid = state.alloc_pid()
    state.touch()


def boot_guest(state: ClusterState, guest: Guest, from_state: bool = False) -> None:
    """Start the guest as ``vm_start`` does: pending changes are applied first, unless resuming a saved state.

    qemu-server ``QemuServer.pm`` ``vm_start_nolock`` (``!$statefile && !$resume``) and pve-container
    ``LXC.pm`` ``vm_start`` call ``vmconfig_apply_pending``; a reboot is a shutdown plus such a start.
    """
    if not from_state and (guest.pending or guest.pending_delete):
        pending.apply_pending(state, guest)
    set_running(state, guest)


def set_stopped(state: ClusterState, guest: Guest) -> None:
    """The guest is now stopped, with no PID or start time (stop, shutdown, rollback)."""
    guest.status = "stopped"
    guest.qmpstatus = "stopped"
    guest.started_at = None
    guest.pid = None
    state.touch()


def start_guest_task(call: Call, wtype: str, worker: WorkerFactory, **kw: Any) -> Task:
    """Fork a worker for the guest the call's path names, as PVE does for every guest action.

    The UPID's node is the path's node, its id the VMID, its user the caller; ``kw`` goes to
    :meth:`~pvemcp.sim.tasks.TaskManager.start` (``interrupt_text``).
    """
    return call.sim.tasks.start(call.node, wtype, str(call.vmid), call.ident.authid, worker, **kw)


def find_snapshot(guest: Guest, name: str, error: Callable[[str], Exception] = fail) -> Snapshot:
    """The guest's snapshot ``name``, or PVE's ``snapshot 'NAME' does not exist``.

    Every endpoint that names a snapshot (snapshot config/index/delete/rollback, ``config?snapshot=``)
    reports a missing one with this text: synchronous handlers as a 500 (``error=fail``), workers as
    the task's exit status (``error=TaskError``).
    """
    snap = guest.snapshots.get(name)
    if snap is None:
        raise error(f"snapshot '{name}' does not exist")
    return snap


def lock_message(guest: Guest) -> str:
    return f"{guest.kind} is locked ({guest.lock})"


def check_lock_sync(guest: Guest, call: Call | None = None, ignore: tuple[str, ...] = ()) -> None:
    """``check_lock`` raised synchronously (config updates, clone, LXC destroy)."""
    if guest.lock and guest.lock not in ignore and not (call is not None and skiplock(call)):
        raise fail(lock_message(guest))


def check_lock_task(guest: Guest, skip: bool = False, ignore: tuple[str, ...] = ()) -> None:
    """``check_lock`` inside a worker (qemu start/stop/destroy/snapshot …)."""
    if guest.lock and guest.lock not in ignore and not skip:
        raise TaskError(lock_message(guest))


def skiplock(call: Call) -> bool:
    """``skiplock`` is root-only; anybody else gets PVE's 400."""
    if not call.flag("skiplock"):
        return False
    if call.ident.authid != "root@pam":
        raise param_error({"skiplock": "Only root may use this option."})
    return True


def guest_alive(state: ClusterState, guest: Guest) -> bool:
    """The guest still exists (a worker must not touch a guest destroyed meanwhile)."""
    return state.guests.get(guest.vmid) is guest


def quorate(state: ClusterState) -> bool:
    """More than half of the nodes are online (corosync's simple majority, one vote each)."""
    online = sum(1 for n in state.nodes.values() if n.online)
    return online * 2 > len(state.nodes)


def check_quorum(call: Call) -> None:
    """``check_cfs_quorum``: writes to /etc/pve need quorum; PVE refuses synchronously."""
    if not quorate(call.sim.state):
        raise fail("cluster not ready - no quorum?")


def node_of(call: Call) -> Node:
    node = call.sim.state.nodes.get(call.node)
    if node is None:  # proxying already rejected unknown nodes; endpoints without proxyto land here
        raise fail(f"no such cluster node '{call.node}'")
    return node


def running_stats(state: ClusterState, guest: Guest) -> dict[str, Any]:
    """The metrics PVE reads from the process / RRD: zero for stopped guests."""
    now = state.clock.now()
    up = guest.uptime(now)
    running = guest.status == "running"
    maxmem = guest.maxmem
    return {
        "cpu": guest.cpu_load if running else 0,
        "mem": int(maxmem * guest.mem_fraction) if running else 0,
        "uptime": up,
        "netin": guest.net_rate * up,
        "netout": (guest.net_rate // 3) * up,
        "diskread": guest.disk_rate * up,
        "diskwrite": (guest.disk_rate // 2) * up,
    }


def not_running_error(guest: Guest) -> PveHttpError:
    return fail(f"{guest.kind} {guest.vmid} not running")
