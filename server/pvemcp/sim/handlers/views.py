"""How guests, nodes and storages look in PVE's listings (guest indexes, ``/cluster/resources``, …).

Field sets follow the PVE 9 captures in ``shared/pve-fixtures`` and notes §4.9/§4.10: guest indexes have
no ``type`` for qemu but ``type: "lxc"`` for containers; ``template: 1`` only on templates in indexes but
``template: 0|1`` always in ``/cluster/resources``; 9.x adds ``memhost`` and the ``pressure*`` values for
running guests; booleans are 0/1.
"""

from __future__ import annotations

from typing import Any

from pvemcp.sim.handlers.common import running_stats
from pvemcp.sim.state import ClusterState, Guest, Node, Storage


def _optional(entry: dict[str, Any], guest: Guest) -> None:
    if guest.lock:
        entry["lock"] = guest.lock
    tags = guest.config.get("tags")
    if tags:
        entry["tags"] = str(tags)


def _pressure(guest: Guest, entry: dict[str, Any], qemu: bool) -> None:
    base = round(guest.cpu_load / 10, 2)
    if qemu:
        entry["pressurecpufull"] = 0
    entry["pressurecpusome"] = base
    entry["pressureiofull"] = 0
    entry["pressureiosome"] = round(base / 2, 2)
    entry["pressurememoryfull"] = 0
    entry["pressurememorysome"] = 0


def qemu_index_entry(state: ClusterState, guest: Guest) -> dict[str, Any]:
    """An item of ``GET /nodes/{node}/qemu`` (PVE 9: ``memhost``, ``pressure*`` when running)."""
    stats = running_stats(state, guest)
    running = guest.status == "running"
    entry: dict[str, Any] = {
        "vmid": guest.vmid,
        "name": guest.name,
        "status": guest.status,
        "cpus": int(guest.maxcpu),
        "cpu": stats["cpu"],
        "maxmem": guest.maxmem,
        "mem": stats["mem"],
        "memhost": stats["mem"],
        "maxdisk": guest.maxdisk,
        "disk": 0,
        "uptime": stats["uptime"],
        "netin": stats["netin"],
        "netout": stats["netout"],
    }
    if running:
        entry["pid"] = guest.pid
        _pressure(guest, entry, True)
    if guest.template:
        entry["template"] = 1
    if any(k.startswith("serial") for k in guest.config):
        entry["serial"] = 1
    _optional(entry, guest)
    return entry


def lxc_index_entry(state: ClusterState, guest: Guest) -> dict[str, Any]:
    """An item of ``GET /nodes/{node}/lxc`` (vmid is an integer since pve-container 5.0.10)."""
    stats = running_stats(state, guest)
    running = guest.status == "running"
    swap = int(guest.config.get("swap", 512)) * 1024 * 1024
    entry: dict[str, Any] = {
        "vmid": guest.vmid,
        "name": guest.name,
        "type": "lxc",
        "status": guest.status,
        "cpus": int(guest.maxcpu),
        "cpu": stats["cpu"],
        "maxmem": guest.maxmem,
        "mem": stats["mem"],
        "maxswap": swap,
        "swap": 0,
        "maxdisk": guest.maxdisk,
        "disk": int(guest.maxdisk * 0.27) if running else 0,
        "uptime": stats["uptime"],
        "netin": stats["netin"],
        "netout": stats["netout"],
        "diskread": stats["diskread"],
        "diskwrite": stats["diskwrite"],
    }
    if running:
        entry["pid"] = guest.pid
        _pressure(guest, entry, False)
    if guest.template:
        entry["template"] = 1
    _optional(entry, guest)
    return entry


def resource_entry(state: ClusterState, guest: Guest, node_online: bool = True) -> dict[str, Any]:
    """A ``qemu``/``lxc`` item of ``/cluster/resources``."""
    stats = running_stats(state, guest)
    entry: dict[str, Any] = {
        "id": f"{guest.type}/{guest.vmid}",
        "type": guest.type,
        "vmid": guest.vmid,
        "node": guest.node,
        "name": guest.name,
        "status": guest.status if node_online else "unknown",
        "uptime": stats["uptime"],
        "cpu": stats["cpu"],
        "maxcpu": guest.maxcpu if guest.maxcpu != int(guest.maxcpu) else int(guest.maxcpu),
        "mem": stats["mem"],
        "maxmem": guest.maxmem,
        "disk": int(guest.maxdisk * 0.27) if guest.type == "lxc" and guest.status == "running" else 0,
        "maxdisk": guest.maxdisk,
        "netin": stats["netin"],
        "netout": stats["netout"],
        "diskread": stats["diskread"],
        "diskwrite": stats["diskwrite"],
        "template": 1 if guest.template else 0,
    }
    if guest.type == "qemu":
        entry["memhost"] = stats["mem"]
    if guest.pool:
        entry["pool"] = guest.pool
    _optional(entry, guest)
    return entry


def node_usage(state: ClusterState, node: Node) -> dict[str, Any]:
    """CPU and memory of a node: its own base load plus its running guests."""
    running = [g for g in state.guests.values() if g.node == node.name and g.status == "running"]
    mem = node.mem_used + sum(int(g.maxmem * g.mem_fraction) for g in running)
    cpu = node.cpu_load + sum(g.cpu_load * g.maxcpu for g in running) / max(1, node.maxcpu)
    return {"cpu": round(min(cpu, 1.0), 6), "mem": min(mem, node.maxmem)}


def node_resource_entry(state: ClusterState, node: Node, usage: dict[str, Any] | None = None) -> dict[str, Any]:
    """A ``node`` item of ``/cluster/resources``; offline nodes keep only the static maxima."""
    if not node.online:
        return {
            "id": f"node/{node.name}",
            "type": "node",
            "node": node.name,
            "status": "offline",
            "maxcpu": node.maxcpu,
            "maxmem": node.maxmem,
            "maxdisk": node.maxdisk,
            "level": node.level,
        }
    usage = usage or node_usage(state, node)
    return {
        "id": f"node/{node.name}",
        "type": "node",
        "node": node.name,
        "status": "online",
        "cpu": usage["cpu"],
        "maxcpu": node.maxcpu,
        "mem": usage["mem"],
        "maxmem": node.maxmem,
        "disk": node.disk_used,
        "maxdisk": node.maxdisk,
        "uptime": int(state.clock.now() - node.boot_epoch),
        "level": node.level,
        "cgroup-mode": 2,
    }


def storage_resource_entry(state: ClusterState, storage: Storage, node: Node) -> dict[str, Any]:
    """A ``storage`` item of ``/cluster/resources`` (one per node where the storage is enabled)."""
    entry: dict[str, Any] = {
        "id": f"storage/{node.name}/{storage.storage}",
        "type": "storage",
        "storage": storage.storage,
        "node": node.name,
        "plugintype": storage.type,
        "status": "available" if node.online else "unknown",
        "shared": 1 if storage.shared else 0,
        "content": ",".join(storage.content),
    }
    if node.online:
        entry["disk"] = state.storage_used(storage, node.name)
        entry["maxdisk"] = storage.total
    return entry
