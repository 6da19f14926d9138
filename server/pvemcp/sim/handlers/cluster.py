"""Cluster-wide views and node information: resources, status, nextid, nodes, version, pools.

``/cluster/resources`` is the hot path of every client (a vmid alone is resolved through it), so its
guest entries are cached per state version and simulated second: 10,000 guests stay fast.
"""

from __future__ import annotations

import json
from typing import Any

from pvemcp.sim.errors import fail, param_error
from pvemcp.sim.handlers.common import node_of, quorate
from pvemcp.sim.handlers.views import (
    node_resource_entry,
    node_usage,
    resource_entry,
    storage_resource_entry,
)
from pvemcp.sim.routing import Call, PreEncoded, route
from pvemcp.sim.state import (
    KERNEL_RELEASE,
    KERNEL_VERSION,
    PVE_RELEASE,
    PVE_REPOID,
    PVE_VERSION,
    ClusterState,
    Node,
)

_CACHE: dict[int, tuple[tuple[int, int], dict[str, list[dict[str, Any]]]]] = {}


def _resources(state: ClusterState) -> dict[str, list[dict[str, Any]]]:
    """All resource entries by type, cached for one state version and one simulated second."""
    key = (state.version, int(state.clock.now()))
    hit = _CACHE.get(id(state))
    if hit is not None and hit[0] == key:
        return hit[1]
    online = {n.name: n.online for n in state.nodes.values()}
    vms = [
        resource_entry(state, state.guests[v], online.get(state.guests[v].node, False))
        for v in sorted(state.guests, key=str)
    ]
    nodes = [node_resource_entry(state, n, node_usage(state, n) if n.online else None) for n in state.nodes.values()]
    storages: list[dict[str, Any]] = []
    usage: dict[tuple[str, str], int] = {}
    for vol in state.volumes.values():
        k = (vol.storage, vol.node or "")
        usage[k] = usage.get(k, 0) + vol.size
    for storage in state.storages.values():
        shared_used = usage.get((storage.storage, ""), 0)
        for node in state.nodes.values():
            if not storage.available_on(node.name):
                continue
            entry = storage_resource_entry(state, storage, node)
            if "disk" in entry:
                base = int(storage.options.get("_base_used", 0))
                entry["disk"] = base + shared_used + usage.get((storage.storage, node.name), 0)
            storages.append(entry)
    pools = _pool_entries(state, vms)
    network = [
        {
            "id": f"network/{n.name}/zone/localnetwork",
            "type": "network",
            "network": "localnetwork",
            "network-type": "zone",
            "node": n.name,
            "status": "ok" if n.online else "unknown",
        }
        for n in state.nodes.values()
    ]
    result = {"vm": vms, "node": nodes, "storage": storages, "pool": pools, "network": network}
    _CACHE.clear()
    _CACHE[id(state)] = (key, result)
    return result


def _pool_entries(state: ClusterState, vms: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Pool entries as pve-manager ``PVE/API2/Cluster.pm`` ``resources`` builds them.

    Each pool sums its running members (those with an uptime): the longest ``uptime``, ``mem``/``maxmem``,
    and ``cpu`` weighted by ``maxcpu``.
    """
    pools: dict[str, dict[str, Any]] = {p: {"id": f"/pool/{p}", "pool": p, "type": "pool"} for p in sorted(state.pools)}
    for entry in vms:
        pe = pools.get(str(entry.get("pool", "")))
        if pe is None or not entry.get("uptime"):
            continue
        pe["uptime"] = max(int(pe.get("uptime", 0)), int(entry["uptime"]))
        pe["mem"] = pe.get("mem", 0) + entry.get("mem", 0)
        pe["maxmem"] = pe.get("maxmem", 0) + entry.get("maxmem", 0)
        cpu, maxcpu = pe.get("cpu", 0), pe.get("maxcpu", 0)
        total = maxcpu + entry.get("maxcpu", 0)
        pe["cpu"] = (cpu * maxcpu + entry.get("cpu", 0) * entry.get("maxcpu", 0)) / total if total else 0
        pe["maxcpu"] = total
    return list(pools.values())


_AUDIT_PRIVS = ("VM.Audit", "Sys.Audit", "Datastore.Audit", "Pool.Audit", "SDN.Audit")
_ENCODED: dict[tuple[Any, ...], PreEncoded] = {}


@route("GET", "/cluster/resources")
def cluster_resources(call: Call) -> PreEncoded:
    state = call.sim.state
    rtype = call.text("type")
    ident = call.ident
    privs = tuple(ident.has(p) for p in _AUDIT_PRIVS)
    key = (id(state), state.version, int(state.clock.now()), rtype, privs)
    hit = _ENCODED.get(key)
    if hit is not None:
        return hit
    res = _resources(state)
    # pve-manager PVE/API2/Cluster.pm resources: pools first, then guests, nodes, storages, networks;
    # every type can be asked for on its own
    out: list[dict[str, Any]] = []
    if rtype in (None, "pool") and ident.has("Pool.Audit"):
        out += res["pool"]
    if rtype in (None, "vm") and ident.has("VM.Audit"):
        out += res["vm"]
    if rtype in (None, "node") and ident.has("Sys.Audit"):
        out += res["node"]
    if rtype in (None, "storage") and ident.has("Datastore.Audit"):
        out += res["storage"]
    if rtype in (None, "network") and ident.has("SDN.Audit"):
        out += res["network"]
    encoded = PreEncoded(out, json.dumps({"data": out}, separators=(",", ":"), ensure_ascii=False).encode())
    if len(_ENCODED) > 32 or any(k[:3] != key[:3] for k in _ENCODED):
        _ENCODED.clear()
    _ENCODED[key] = encoded
    return encoded


@route("GET", "/cluster/status")
def cluster_status(call: Call) -> list[dict[str, Any]]:
    state = call.sim.state
    nodes = list(state.nodes.values())
    entries: list[dict[str, Any]] = []
    if len(nodes) > 1:
        entries.append(
            {
                "type": "cluster",
                "id": "cluster",
                "name": state.cluster_name,
                "nodes": len(nodes),
                "version": len(nodes) + 1,
                "quorate": 1 if quorate(state) else 0,
            }
        )
    for n in nodes:
        entries.append(
            {
                "type": "node",
                "id": f"node/{n.name}",
                "name": n.name,
                "nodeid": n.nodeid if len(nodes) > 1 else 0,
                "ip": n.ip,
                "local": 1 if n.name == call.sim.local_node else 0,
                "online": 1 if n.online else 0,
                "level": n.level,
            }
        )
    return entries


@route("GET", "/cluster/nextid")
def cluster_nextid(call: Call) -> str:
    state = call.sim.state
    wanted = call.integer("vmid")
    if wanted is not None:
        if wanted in state.guests:
            raise param_error({"vmid": f"VM {wanted} already exists"})
        return str(wanted)
    vmid = 100
    while vmid in state.guests:
        vmid += 1
    if vmid >= 1_000_000:
        raise fail("unable to get any free VMID in range [100, 999999]")
    return str(vmid)


@route("GET", "/cluster/tasks")
def cluster_tasks(call: Call) -> list[dict[str, Any]]:
    tasks = call.sim.tasks.all()
    tasks.sort(key=lambda t: (t.upid.starttime, t.upid.pid), reverse=True)
    ident = call.ident
    return [
        t.list_entry() for t in tasks[:1000] if ident.has("Sys.Audit") or t.upid.user in (ident.authid, ident.userid)
    ]


# ---------------------------------------------------------------------------------------------- nodes


@route("GET", "/nodes")
def nodes_index(call: Call) -> list[dict[str, Any]]:
    state = call.sim.state
    out = []
    for n in state.nodes.values():
        if not n.online:
            out.append(
                {
                    "node": n.name,
                    "id": f"node/{n.name}",
                    "type": "node",
                    "status": "offline",
                    "level": n.level,
                    "ssl_fingerprint": n.ssl_fingerprint,
                }
            )
            continue
        usage = node_usage(state, n)
        entry: dict[str, Any] = {
            "node": n.name,
            "id": f"node/{n.name}",
            "type": "node",
            "status": "online",
            "level": n.level,
            "ssl_fingerprint": n.ssl_fingerprint,
        }
        if call.ident.has("Sys.Audit"):
            entry.update(
                {
                    "cpu": usage["cpu"],
                    "maxcpu": n.maxcpu,
                    "mem": usage["mem"],
                    "maxmem": n.maxmem,
                    "disk": n.disk_used,
                    "maxdisk": n.maxdisk,
                    "uptime": int(state.clock.now() - n.boot_epoch),
                }
            )
        out.append(entry)
    return out


def _loadavg(node: Node, running: int) -> list[str]:
    base = node.cpu_load * node.maxcpu + running * 0.05
    return [f"{base:.2f}", f"{base * 0.9:.2f}", f"{base * 0.8:.2f}"]


@route("GET", "/nodes/{node}/status")
def node_status(call: Call) -> dict[str, Any]:
    state = call.sim.state
    node = node_of(call)
    usage = node_usage(state, node)
    running = sum(1 for g in state.guests.values() if g.node == node.name and g.status == "running")
    mem_total = node.maxmem
    mem_used = usage["mem"]
    swap_total = 8 * 1024**3
    return {
        "uptime": int(state.clock.now() - node.boot_epoch),
        "idle": 0,
        "loadavg": _loadavg(node, running),
        "kversion": f"Linux {KERNEL_RELEASE} {KERNEL_VERSION}",
        "current-kernel": {
            "sysname": "Linux",
            "release": KERNEL_RELEASE,
            "version": KERNEL_VERSION,
            "machine": "x86_64",
        },
        "boot-info": {"mode": "efi", "secureboot": 0},
        "cpuinfo": {
            "model": node.cpu_model,
            "cpus": node.maxcpu,
            "cores": node.maxcpu // 2,
            "sockets": node.sockets,
            "mhz": node.mhz,
            "flags": "fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx fxsr "
            "sse sse2 ht syscall nx pdpe1gb rdtscp lm constant_tsc rep_good nopl cpuid pni pclmulqdq "
            "ssse3 fma cx16 sse4_1 sse4_2 x2apic movbe popcnt aes xsave avx f16c rdrand hypervisor "
            "lahf_lm abm avx2 bmi1 bmi2 svm vmx",
            "hvm": "1",
            "user_hz": 100,
        },
        "cpu": usage["cpu"],
        "wait": 0.0002,
        "memory": {
            "total": mem_total,
            "used": mem_used,
            "free": mem_total - mem_used,
            "available": mem_total - mem_used,
        },
        "ksm": {"shared": 0},
        "swap": {"total": swap_total, "used": 0, "free": swap_total},
        "pveversion": f"pve-manager/{PVE_VERSION}/{PVE_REPOID}",
        "rootfs": {
            "total": node.maxdisk,
            "used": node.disk_used,
            "free": node.maxdisk - node.disk_used,
            "avail": node.maxdisk - node.disk_used,
        },
    }


@route("GET", "/nodes/{node}/version")
def node_version(call: Call) -> dict[str, Any]:
    node_of(call)
    return {"version": PVE_VERSION, "release": PVE_RELEASE, "repoid": PVE_REPOID}


@route("GET", "/version")
def version(call: Call) -> dict[str, Any]:
    return {"version": PVE_VERSION, "release": PVE_RELEASE, "repoid": PVE_REPOID}


# ---------------------------------------------------------------------------------------------- pools


def _pool_members(call: Call, poolid: str, rtype: str | None) -> list[dict[str, Any]]:
    state = call.sim.state
    res = _resources(state)
    pool = state.pools[poolid]
    members = [e for e in res["vm"] if e["vmid"] in pool.vmids and (rtype is None or rtype == e["type"])]
    if rtype in (None, "storage"):
        members += [e for e in res["storage"] if e["storage"] in pool.storages]
    return members


@route("GET", "/pools")
def pools_index(call: Call) -> list[dict[str, Any]]:
    state = call.sim.state
    wanted = call.text("poolid")
    if wanted is not None and wanted not in state.pools:
        raise fail(f"pool '{wanted}' does not exist")
    out = []
    for poolid, pool in sorted(state.pools.items()):
        if wanted is not None and poolid != wanted:
            continue
        if not call.ident.has("Pool.Audit"):
            continue
        entry: dict[str, Any] = {"poolid": poolid}
        if pool.comment:
            entry["comment"] = pool.comment
        if wanted is not None:
            entry["members"] = _pool_members(call, poolid, call.text("type"))
        out.append(entry)
    return out


@route("GET", "/pools/{poolid}")
def pool_get(call: Call) -> dict[str, Any]:
    state = call.sim.state
    poolid = call.req("poolid")
    pool = state.pools.get(poolid)
    if pool is None:
        raise fail(f"pool '{poolid}' does not exist")
    out: dict[str, Any] = {"members": _pool_members(call, poolid, call.text("type"))}
    if pool.comment:
        out["comment"] = pool.comment
    return out
