"""VM and container reads: the per-node indexes and ``status/current``."""

from __future__ import annotations

from typing import Any

from pvemcp.sim.handlers.common import (
    load_guest,
    running_stats,
)
from pvemcp.sim.handlers.views import lxc_index_entry, qemu_index_entry
from pvemcp.sim.routing import Call, route
from pvemcp.sim.state import (
    QEMU_VERSION,
)


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
