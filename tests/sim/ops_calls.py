"""The operations of issue 13 (agent, resize, migrate, rrd) for the broad output-schema run.

Kept apart from ``test_output_schema.py``'s own lists so that adding them touches that file in one place.
Run in order after the broad run, on its simulator: the exec pid is the agent's first (deterministic).
"""

from __future__ import annotations

OPS_CALLS: list[tuple[str, str, dict[str, str]]] = [
    ("GET", "/nodes/pve1/qemu/102/agent/info", {}),
    ("POST", "/nodes/pve1/qemu/102/agent/exec", {"command": "hostname"}),
    ("GET", "/nodes/pve1/qemu/102/agent/exec-status?pid=1207", {}),
    ("GET", "/nodes/pve3/lxc/103/interfaces", {}),
    ("GET", "/nodes/pve1/rrddata?timeframe=hour", {}),
    ("GET", "/nodes/pve1/qemu/100/rrddata?timeframe=day", {}),
    ("GET", "/nodes/pve3/lxc/103/rrddata?timeframe=week&cf=MAX", {}),
    ("GET", "/nodes/pve1/qemu/100/migrate", {}),
    ("GET", "/nodes/pve3/lxc/103/migrate", {}),
    ("PUT", "/nodes/pve1/qemu/100/resize", {"disk": "scsi0", "size": "+1G"}),
    ("PUT", "/nodes/pve3/lxc/103/resize", {"disk": "rootfs", "size": "+1G"}),
    ("POST", "/nodes/pve1/qemu/106/migrate", {"target": "pve2", "online": "1"}),
    ("POST", "/nodes/pve3/lxc/103/migrate", {"target": "pve2", "restart": "1"}),
]
