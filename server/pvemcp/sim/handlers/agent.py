"""Guest agent exec/exec-status/info of VMs and the network interfaces of running containers.

Read from the real handlers: qemu-server ``src/PVE/API2/Qemu/Agent.pm`` (``exec``, ``exec-status``,
``register_command`` for ``info``) and ``src/PVE/QemuServer/Agent.pm`` (``assert_agent_available``,
``qemu_exec``, ``qemu_exec_status``); pve-container ``src/PVE/API2/LXC.pm`` (``{vmid}/interfaces``) and
``src/PVE/LXC.pm`` (``get_interfaces``). The other agent reads (ping, get-osinfo,
network-get-interfaces) live in ``nodes.py`` and share :func:`agent_guest`.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from pvemcp.sim.errors import fail
from pvemcp.sim.guest_agent import GuestAgents, spawn_error
from pvemcp.sim.handlers.common import load_guest
from pvemcp.sim.routing import Call, route
from pvemcp.sim.state import Guest, split_property_string

AGENT_VERSION = "9.2.0"  # qemu-guest-agent of Debian trixie


def agents(call: Call) -> GuestAgents:
    return call.sim.guest_agents


def agent_guest(call: Call) -> Guest:
    """``assert_agent_available``: an ``agent`` key in the config, the VM running, the agent answering.

    qemu-server tests ``defined($conf->{agent})``: ``agent: 0`` still counts as configured there and
    fails later on the socket; the simulator treats a disabled agent as not configured (it never answers).
    """
    guest = load_guest(call, "qemu")
    enabled = str(guest.config.get("agent", "0")).split(",")[0] in ("1", "enabled=1")
    if not enabled:
        raise fail("No QEMU guest agent configured")
    if guest.status != "running":
        raise fail(f"VM {guest.vmid} is not running")
    if not agents(call).answering(guest):
        raise fail("QEMU guest agent is not running")
    return guest


def _command_list(call: Call) -> list[str]:
    raw = call.params.get("command")
    if raw is None:
        return []
    return [str(v) for v in raw] if isinstance(raw, list) else [str(raw)]


@route("POST", "/nodes/{node}/qemu/{vmid}/agent/exec")
def agent_exec(call: Call) -> dict[str, Any]:
    """``qemu_exec``: ``{pid}`` at once; the command runs on in the guest."""
    guest = agent_guest(call)
    argv = _command_list(call)
    data = call.text("input-data")
    if not argv and data is None:
        raise fail("command or input-data (or both) required")
    stdin = data.encode() if data is not None else None
    state = call.sim.state
    # run times count on the task clock, so they follow the simulator's task speed like tasks do
    proc = agents(call).start(guest, argv, stdin, state.clock.task_time(), guest.uptime(state.clock.now()))
    if proc.exitcode == -1:
        del agents(call).processes[(guest.vmid, proc.pid)]
        raise fail(f"VM {guest.vmid} qga command 'guest-exec' failed - {spawn_error(argv)}")
    return {"pid": proc.pid}


@route("GET", "/nodes/{node}/qemu/{vmid}/agent/exec-status")
def agent_exec_status(call: Call) -> dict[str, Any]:
    """``qemu_exec_status``: ``exited`` 0/1, then ``exitcode`` and the decoded ``out-data``/``err-data``."""
    guest = agent_guest(call)
    pid = call.integer("pid") or 0
    status = agents(call).status(guest, pid, call.sim.state.clock.task_time())
    if status is None:
        # qemu-guest-agent's own text for an unknown pid (qga/commands.c guest_exec_status)
        raise fail(f"VM {guest.vmid} qga command 'guest-exec-status' failed - Invalid parameter 'pid'")
    return status


@route("GET", "/nodes/{node}/qemu/{vmid}/agent/info")
def agent_info(call: Call) -> dict[str, Any]:
    agent_guest(call)
    names = (
        "guest-exec",
        "guest-exec-status",
        "guest-get-osinfo",
        "guest-info",
        "guest-network-get-interfaces",
        "guest-ping",
        "guest-shutdown",
    )
    commands = [{"name": n, "enabled": True, "success-response": n != "guest-shutdown"} for n in names]
    return {"result": {"version": AGENT_VERSION, "supported_commands": commands}}


def container_address(guest: Guest, key: str, value: str) -> tuple[str, int] | None:
    """The IPv4 address and prefix a container's ``netN`` ends up with (static, or a stable DHCP lease)."""
    _, opts = split_property_string(value)
    ip = opts.get("ip")
    if ip is None or ip == "manual":
        return None
    if ip == "dhcp":
        index = int(key[3:] or 0)
        return f"10.10.{20 + index}.{guest.vmid % 200 + 20}", 24
    try:
        iface = ipaddress.ip_interface(ip)
    except ValueError:
        return None
    return str(iface.ip), iface.network.prefixlen


@route("GET", "/nodes/{node}/lxc/{vmid}/interfaces")
def lxc_interfaces(call: Call) -> list[dict[str, Any]] | None:
    """``get_interfaces``: ``ip --json a`` inside the CT's network namespace; ``null`` when it is not
    running (the handler loads no config, so an unknown CT answers ``null`` too)."""
    guest = call.sim.state.guests.get(call.vmid)
    if guest is None or guest.type != "lxc" or guest.node != call.node or guest.status != "running":
        return None
    out: list[dict[str, Any]] = [
        {
            "name": "lo",
            "hwaddr": "00:00:00:00:00:00",
            "hardware-address": "00:00:00:00:00:00",
            "inet": "127.0.0.1/8",
            "inet6": "::1/128",
            "ip-addresses": [
                {"ip-address-type": "inet", "ip-address": "127.0.0.1", "prefix": 8},
                {"ip-address-type": "inet6", "ip-address": "::1", "prefix": 128},
            ],
        }
    ]
    for key, value in guest.config.items():
        if not (key.startswith("net") and key[3:].isdigit()):
            continue
        _, opts = split_property_string(str(value))
        mac = opts.get("hwaddr", "").lower()
        entry: dict[str, Any] = {"name": opts.get("name", key.replace("net", "eth")), "ip-addresses": []}
        address = container_address(guest, key, str(value))
        if address is not None:
            entry["inet"] = f"{address[0]}/{address[1]}"
            entry["ip-addresses"].append({"ip-address-type": "inet", "ip-address": address[0], "prefix": address[1]})
        entry["hardware-address"] = mac
        entry["hwaddr"] = mac
        out.append(entry)
    return out
