"""Node networking and the guest agent's read-only views (shapes from the PVE 9 captures)."""

from __future__ import annotations

import ipaddress
from typing import Any

from pvemcp.sim.handlers.agent import agent_guest
from pvemcp.sim.handlers.common import node_of
from pvemcp.sim.routing import Call, route


@route("GET", "/nodes/{node}/network")
def network(call: Call) -> list[dict[str, Any]]:
    """``nic0`` (PVE 9 interface pinning, with altnames) bridged into ``vmbr0`` with the node's address."""
    node = node_of(call)
    wanted = call.text("type")
    gateway = str(ipaddress.ip_network(f"{node.ip}/24", strict=False).network_address + 1)
    entries: list[dict[str, Any]] = [
        {
            "iface": "vmbr0",
            "type": "bridge",
            "method": "static",
            "method6": "manual",
            "address": node.ip,
            "netmask": "24",
            "cidr": f"{node.ip}/24",
            "gateway": gateway,
            "bridge_ports": "nic0",
            "bridge_stp": "off",
            "bridge_fd": "0",
            "families": ["inet"],
            "active": 1,
            "autostart": 1,
            "priority": 4,
        },
        {
            "iface": "nic0",
            "type": "eth",
            "method": "manual",
            "method6": "manual",
            "families": ["inet"],
            "active": 1,
            "exists": 1,
            "altnames": ["enp1s0", f"enx0c42a1{node.nodeid:06x}"],
            "priority": 3,
        },
    ]
    if wanted in (None, "any_bridge", "bridge"):
        return entries if wanted is None else [e for e in entries if e["type"] == "bridge"]
    return [e for e in entries if e["type"] == wanted]


def _agent_guest(call: Call) -> Any:
    return agent_guest(call)


@route("GET", "/nodes/{node}/qemu/{vmid}/agent/network-get-interfaces")
def agent_interfaces(call: Call) -> dict[str, Any]:
    guest = _agent_guest(call)
    mac = str(guest.config.get("net0", "")).split(",")[0].partition("=")[2].lower() or "bc:24:11:00:00:01"
    octet = guest.vmid % 200 + 20
    stats = {
        "rx-bytes": 6480,
        "rx-packets": 84,
        "rx-errs": 0,
        "rx-dropped": 0,
        "tx-bytes": 6480,
        "tx-packets": 84,
        "tx-errs": 0,
        "tx-dropped": 0,
    }
    return {
        "result": [
            {
                "name": "lo",
                "hardware-address": "00:00:00:00:00:00",
                "ip-addresses": [
                    {"ip-address": "127.0.0.1", "ip-address-type": "ipv4", "prefix": 8},
                    {"ip-address": "::1", "ip-address-type": "ipv6", "prefix": 128},
                ],
                "statistics": dict(stats),
            },
            {
                "name": "ens18",
                "hardware-address": mac,
                "ip-addresses": [
                    {"ip-address": f"10.10.20.{octet}", "ip-address-type": "ipv4", "prefix": 24},
                ],
                "statistics": dict(stats),
            },
        ]
    }


@route("GET", "/nodes/{node}/qemu/{vmid}/agent/get-osinfo")
def agent_osinfo(call: Call) -> dict[str, Any]:
    _agent_guest(call)
    return {
        "result": {
            "id": "debian",
            "name": "Debian GNU/Linux",
            "pretty-name": "Debian GNU/Linux 13 (trixie)",
            "version": "13 (trixie)",
            "version-id": "13",
            "kernel-release": "6.12.57+deb13-amd64",
            "kernel-version": "#1 SMP PREEMPT_DYNAMIC Debian 6.12.57-1",
            "machine": "x86_64",
        }
    }


@route("POST", "/nodes/{node}/qemu/{vmid}/agent/ping")
def agent_ping(call: Call) -> dict[str, Any]:
    _agent_guest(call)
    return {"result": {}}
