"""Guest routes: operations that qemu-server and pve-container answer alike are served by one handler."""

from __future__ import annotations

import pytest

import pvemcp.sim.handlers  # noqa: F401  (importing the handler modules registers their routes)
from pvemcp.sim.routing import ROUTES, Call, guest_route


def test_shared_guest_operations_have_one_handler_for_both_types() -> None:
    shared = [key for key in ROUTES if "/qemu/" in key and key.replace("/qemu/", "/lxc/", 1) in ROUTES]
    same = [key for key in shared if ROUTES[key].handler is ROUTES[key.replace("/qemu/", "/lxc/", 1)].handler]
    assert "POST /nodes/{node}/qemu/{vmid}/snapshot" in same
    assert "POST /nodes/{node}/qemu/{vmid}/clone" in same
    assert "GET /nodes/{node}/qemu/{vmid}/firewall/rules" in same
    # start/stop differ (an LXC start of a running CT fails synchronously, a qemu one in the task)
    assert "POST /nodes/{node}/qemu/{vmid}/status/start" not in same


def test_the_handler_reads_the_guest_type_from_the_operation() -> None:
    def call(key: str) -> Call:
        return Call(sim=None, ident=None, method=key.split()[0], key=key, params={})  # type: ignore[arg-type]

    assert call("GET /nodes/{node}/lxc/{vmid}/snapshot").guest_type == "lxc"
    assert call("GET /nodes/{node}/qemu/{vmid}/config").guest_type == "qemu"
    with pytest.raises(RuntimeError, match="not a guest operation"):
        _ = call("GET /nodes/{node}/storage").guest_type


def test_a_shared_route_needs_a_type_segment() -> None:
    with pytest.raises(ValueError, match="no \\{type\\} segment"):
        guest_route("GET", "/nodes/{node}/qemu/{vmid}/snapshot")
