"""Growing a guest's disk: ``PUT /nodes/{node}/{qemu,lxc}/{vmid}/resize``.

qemu-server ``src/PVE/API2/Qemu.pm`` ``resize_vm``: every check runs inside the ``resize`` worker under
the config lock (digest, lock, ``disk '...' does not exist``, cdrom, ``shrinking disks is not
supported``); resizing to the current size is a silent no-op. pve-container ``src/PVE/API2/LXC.pm``
``resize_vm``: the same checks run once synchronously before the fork (``$load_and_check``), with the
container's own texts (``unable to shrink disk size``, ``disk is already at specified size``).
"""

from __future__ import annotations

import re

from pvemcp.sim.errors import TaskError, fail
from pvemcp.sim.handlers.common import check_lock_sync, load_guest, lock_message, skiplock, start_guest_task
from pvemcp.sim.routing import Call, route
from pvemcp.sim.state import ClusterState, Guest, format_size, parse_size, split_property_string
from pvemcp.sim.tasks import Task, TaskContext, Worker

_SIZE = re.compile(r"^(\+)?(\d+(?:\.\d+)?)([KMGT])?$")
RESIZE_SECONDS = 0.5


def _new_size(current: int, text: str) -> int:
    m = _SIZE.match(text)
    if m is None:  # the schema's pattern let it through but the handler's stricter one does not
        raise TaskError("internal error")
    grow, number, unit = m.groups()
    requested = int(float(number) * {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}[unit or ""])
    return current + requested if grow else requested


def _current(guest: Guest, disk: str) -> tuple[str, dict[str, str], int]:
    head, opts = split_property_string(str(guest.config[disk]))
    return head or "", opts, parse_size(opts.get("size", "0"))


def _apply(state: ClusterState, guest: Guest, disk: str, newsize: int) -> None:
    """Write the new ``size=`` into the disk's property string and grow the volume."""
    value = str(guest.config[disk])
    volid = value.split(",", 1)[0]
    if "size=" in value:
        value = re.sub(r"size=[^,]*", f"size={format_size(newsize)}", value)
    else:
        value = f"{value},size={format_size(newsize)}"
    guest.config[disk] = value
    vol = state.find_volume(volid, guest.node)
    if vol is not None:
        vol.size = newsize
    state.touch()


@route("PUT", "/nodes/{node}/qemu/{vmid}/resize")
def qemu_resize(call: Call) -> Task:
    guest = load_guest(call, "qemu")
    disk = call.req("disk")
    size = call.req("size")
    digest = call.text("digest")
    skip = skiplock(call)
    state = call.sim.state

    def worker(ctx: TaskContext) -> Worker:
        from pvemcp.sim.state import config_digest

        if digest and digest != config_digest(guest):
            raise TaskError("checksum mismatch (file change by other user?)")
        if guest.lock and not skip:
            raise TaskError(lock_message(guest))
        if disk not in guest.config:
            raise TaskError(f"disk '{disk}' does not exist")
        volid, opts, current = _current(guest, disk)
        if not volid or volid == "none":
            raise TaskError(f"disk '{disk}' has no associated volume")
        if opts.get("media") == "cdrom":
            raise TaskError("you can't resize a cdrom")
        newsize = _new_size(current, size)
        if newsize < current:
            raise TaskError("shrinking disks is not supported")
        if newsize == current:
            return
        yield RESIZE_SECONDS
        ctx.log(f"Image resized. New size {newsize}")  # what `qemu-img resize`/block_resize leave in the log
        _apply(state, guest, disk, newsize)

    return start_guest_task(call, "resize", worker)


@route("PUT", "/nodes/{node}/lxc/{vmid}/resize")
def lxc_resize(call: Call) -> Task:
    guest = load_guest(call, "lxc")
    disk = call.req("disk")
    size = call.req("size")
    digest = call.text("digest")
    state = call.sim.state

    def load_and_check() -> int:
        from pvemcp.sim.state import config_digest

        check_lock_sync(guest)
        if digest and digest != config_digest(guest):
            raise fail("detected modified configuration - file changed by other user? Try again.")
        if disk not in guest.config:
            # PVE parses an absent mount point and fails further down with a text the source does not make
            # certain; the simulator answers with qemu-server's wording for the same mistake.
            raise fail(f"disk '{disk}' does not exist")
        _, _, current = _current(guest, disk)
        newsize = _new_size(current, size) if _SIZE.match(size) else -1
        if newsize < 0:
            raise fail("invalid size string")
        if newsize < current:
            raise fail("unable to shrink disk size")
        if newsize == current:
            raise fail("disk is already at specified size")
        return newsize

    load_and_check()  # early checks before forking and locking

    def worker(ctx: TaskContext) -> Worker:
        try:
            newsize = load_and_check()
        except Exception as exc:  # the same checks, now inside the worker
            raise TaskError(str(getattr(exc, "message", exc)).strip()) from None
        yield RESIZE_SECONDS
        ctx.log(f"Resizing image: {format_size(newsize)}")
        _apply(state, guest, disk, newsize)

    return start_guest_task(call, "resize", worker)
