"""Converting a VM or container into a template."""

from __future__ import annotations

from pvemcp.sim.errors import fail
from pvemcp.sim.handlers.common import (
    check_lock_sync,
    load_guest,
    start_guest_task,
)
from pvemcp.sim.routing import Call, route
from pvemcp.sim.state import (
    LXC_DISK_RE,
    QEMU_DISK_RE,
    ClusterState,
    Config,
    Guest,
)
from pvemcp.sim.tasks import Task, TaskContext, Worker


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
