"""RRD statistics of nodes and guests: ``GET /nodes/{node}[/{qemu,lxc}/{vmid}]/rrddata``.

pve-cluster ``src/PVE/RRD.pm`` ``create_rrd_data`` with the PVE 9 layout (``$setup``; a cluster without
pre-9 ``pve2-*`` files): hour 60 rows of 1 min, day 1440 of 1 min, week 336 of 30 min, month 1440 of
30 min, year 1440 of 6 h, decade 570 of 1 week; aligned to the resolution and ending before the current
slot, ``cf`` AVERAGE unless MAX is asked; fields with no value are left out of a row. qemu-server
``src/PVE/API2/Qemu.pm`` ``rrddata`` reads ``pve-vm-9.0/<vmid>`` whatever the node (no config load);
the node handler in pve-manager ``PVE/API2/Nodes.pm`` reads ``pve-node-9.0/<node>``.

The series are deterministic (a function of the guest, the time slot and the seed), plausible (a
working-hours hump, noise, rare spikes) and consistent with the guest's state: nothing before a guest
ran, zero while it is stopped, rrdtool's "No such file" for a guest the cluster never had.
"""

from __future__ import annotations

import math
import random
from typing import Any

from pvemcp.sim.errors import fail
from pvemcp.sim.handlers.common import node_of
from pvemcp.sim.routing import Call, guest_route, route
from pvemcp.sim.state import GIB, Guest

SETUP = {
    "hour": (60, 60),
    "day": (60, 1440),
    "week": (60 * 30, 336),
    "month": (60 * 30, 1440),
    "year": (3600 * 6, 1440),
    "decade": (86400 * 7, 570),
}
RESOLUTION = {k: v[0] for k, v in SETUP.items()}


def slots(now: float, timeframe: str) -> list[int]:
    reso, count = SETUP[timeframe]
    ctime = reso * int(now // reso)
    start = ctime - reso * count
    return [start + i * reso for i in range(count)]


def _load(key: str, seed: int, t: int, reso: int, peak: bool) -> float:
    """A 0..~2 load factor: a working-hours hump (UTC), noise, and a spike now and then."""
    rng = random.Random(f"{seed}:{key}:{t // reso}")
    hour = (t % 86400) / 3600
    hump = 0.55 + 0.45 * max(0.0, math.sin(math.pi * (hour - 7) / 11)) if 7 <= hour <= 18 else 0.55
    noise = rng.uniform(0.8, 1.2)
    spike = 2.2 if rng.random() < 0.03 else 1.0
    value = hump * noise * spike
    return value * (1.25 if peak else 1.0)


def guest_rows(
    guest: Guest | None, key: str, seed: int, now: float, timeframe: str, peak: bool
) -> list[dict[str, Any]]:
    reso = RESOLUTION[timeframe]
    rows: list[dict[str, Any]] = []
    for t in slots(now, timeframe):
        row: dict[str, Any] = {"time": t}
        if guest is None:
            rows.append(row)
            continue
        maxmem = guest.maxmem
        row.update(maxcpu=guest.maxcpu, maxmem=maxmem, maxdisk=guest.maxdisk, disk=0)
        running = guest.status == "running" and guest.started_at is not None and t >= guest.started_at
        if running:
            f = _load(key, seed, t, reso, peak)
            cpu = min(1.0, guest.cpu_load * f)
            mem = min(maxmem, int(maxmem * guest.mem_fraction * (0.9 + 0.1 * f)))
            row.update(
                cpu=round(cpu, 6),
                mem=mem,
                memhost=mem,
                netin=round(guest.net_rate * f / 60, 2),
                netout=round(guest.net_rate * f / 180, 2),
                diskread=round(guest.disk_rate * f / 60, 2),
                diskwrite=round(guest.disk_rate * f / 120, 2),
                pressurecpusome=round(cpu * 3, 2),
                pressurecpufull=0,
                pressureiosome=round(f * 0.4, 2),
                pressureiofull=round(f * 0.2, 2),
                pressurememorysome=0,
                pressurememoryfull=0,
            )
        else:
            row.update(cpu=0, mem=0, memhost=0, netin=0, netout=0, diskread=0, diskwrite=0)
        rows.append(row)
    return rows


def _timeframe(call: Call) -> tuple[str, bool]:
    return call.req("timeframe"), (call.text("cf") or "AVERAGE") == "MAX"


@guest_route("GET", "/nodes/{node}/{type}/{vmid}/rrddata")
def guest_rrddata(call: Call) -> list[dict[str, Any]]:
    timeframe, peak = _timeframe(call)
    guest = call.sim.state.guests.get(call.vmid)
    if guest is None:  # no RRD file was ever written for it: RRDs::fetch fails, create_rrd_data dies
        raise fail(f"RRD error: opening '/var/lib/rrdcached/db/pve-vm-9.0/{call.vmid}': No such file or directory")
    key = f"vm/{call.vmid}"
    return guest_rows(guest, key, call.sim.seed, call.sim.state.clock.now(), timeframe, peak)


@route("GET", "/nodes/{node}/rrddata")
def node_rrddata(call: Call) -> list[dict[str, Any]]:
    node = node_of(call)
    timeframe, peak = _timeframe(call)
    reso = RESOLUTION[timeframe]
    rows = []
    for t in slots(call.sim.state.clock.now(), timeframe):
        row: dict[str, Any] = {"time": t}
        if node.online and t >= node.boot_epoch:
            f = _load(f"node/{node.name}", call.sim.seed, t, reso, peak)
            cpu = min(1.0, node.cpu_load * f)
            row.update(
                cpu=round(cpu, 6),
                iowait=round(cpu / 20, 6),
                loadavg=round(cpu * node.maxcpu, 2),
                maxcpu=node.maxcpu,
                memtotal=node.maxmem,
                memused=min(node.maxmem, int(node.mem_used * (0.95 + 0.05 * f))),
                memavailable=node.maxmem - node.mem_used,
                arcsize=0,
                swaptotal=8 * GIB,
                swapused=0,
                roottotal=node.maxdisk,
                rootused=node.disk_used,
                netin=round(250_000 * f, 2),
                netout=round(120_000 * f, 2),
            )
        rows.append(row)
    return rows
