"""Proxmox's errors surfaced in its own words; retries only where safe; timeouts honoured."""

from __future__ import annotations

from typing import Any

import pytest

from pvemcp.core.pve.client import PveClient
from pvemcp.core.pve.config import ClientConfig
from pvemcp.core.pve.errors import PveError

from .conftest import needs_sim
from .simhelp import count, pick_guest, token_config

pytestmark = [pytest.mark.anyio, needs_sim]

START = "/nodes/{node}/qemu/{vmid}/status/start"


async def test_400_parameter_errors(sim: Any) -> None:
    async with PveClient(token_config(sim)) as pve:
        guest = await pick_guest(pve, type="qemu", status="stopped")
        with pytest.raises(PveError) as info:
            await pve.get("/cluster/nextid", params={"vmid": guest.vmid})
        err = info.value
        assert err.status == 400 and err.kind == "params"
        assert err.errors == {"vmid": f"VM {guest.vmid} already exists"}
        with pytest.raises(PveError) as info:
            await pve.post(
                "/nodes/{node}/qemu/{vmid}/clone", path={"node": guest.node, "vmid": guest.vmid}, data={"newid": 99}
            )
        err = info.value
        assert err.status == 400 and err.message == "Parameter verification failed."
        assert err.errors["newid"] == "invalid format - value does not look like a valid VM ID"
        assert "newid: invalid format - value does not look like a valid VM ID" in str(err)


async def test_403_read_only_token(sim: Any) -> None:
    async with PveClient(token_config(sim)) as admin:
        guest = await pick_guest(admin, type="qemu", status="stopped")
    cfg = ClientConfig(
        url=sim.url,
        token_id=sim.readonly_token_id,
        token_secret=sim.readonly_token_secret,
        fingerprint=sim.fingerprint,
    )
    async with PveClient(cfg) as pve:
        await pve.get("/version")  # reading works
        with pytest.raises(PveError) as info:
            await pve.post(START, path={"node": guest.node, "vmid": guest.vmid})
    err = info.value
    assert err.status == 403 and err.kind == "permission"
    assert err.message == f"Permission check failed (/vms/{guest.vmid}, VM.PowerMgmt)"
    assert f"lacks privilege VM.PowerMgmt on /vms/{guest.vmid}" in err.hint
    assert sim.readonly_token_id in err.hint
    assert sim.readonly_token_secret not in str(err)


async def test_500_missing_vm(sim: Any) -> None:
    async with PveClient(token_config(sim)) as pve:
        guests = await pve.list_guests()
        node = guests[0].node
        missing = max(g.vmid for g in guests) + 1000
        with pytest.raises(PveError) as info:
            await pve.get("/nodes/{node}/qemu/{vmid}/status/current", path={"node": node, "vmid": missing})
    err = info.value
    assert err.status == 500 and err.kind == "not_found_or_state"
    assert err.message == f"Configuration file 'nodes/{node}/qemu-server/{missing}.conf' does not exist"
    assert err.reason == err.message
    assert "resolve the vmid again" in err.hint


async def test_595_offline_node(sim: Any) -> None:
    async with PveClient(token_config(sim)) as pve:
        nodes = sorted({g.node for g in await pve.list_guests()})
        offline = nodes[-1]
        sim.faults.add("offline_node", node=offline)
        mark = len(sim.request_log)
        with pytest.raises(PveError) as info:
            await pve.get("/nodes/{node}/status", path={"node": offline})
    err = info.value
    assert err.status == 595 and err.kind == "unreachable" and err.node == offline
    assert err.reason and err.reason in err.message  # Proxmox's (AnyEvent's) words
    assert f"node {offline!r} is unreachable" in err.hint
    assert count(sim, "GET", f"/nodes/{offline}/status", since=mark) == 1  # 595 is not retried


async def test_get_retried_on_injected_5xx(sim: Any) -> None:
    sim.faults.add("error", path="/version", method="GET", count=2, status=503, message="simulated outage")
    mark = len(sim.request_log)
    async with PveClient(token_config(sim)) as pve:
        assert "version" in await pve.get("/version")
    gets = [r.status for r in sim.request_log[mark:] if r.method == "GET" and r.path == "/version"]
    assert gets == [503, 503, 200]


async def test_get_gives_up_after_bounded_retries(sim: Any) -> None:
    sim.faults.add("error", path="/version", method="GET", status=503, message="simulated outage")
    mark = len(sim.request_log)
    async with PveClient(token_config(sim, retries=3)) as pve:
        with pytest.raises(PveError) as info:
            await pve.get("/version")
    assert info.value.status == 503 and info.value.message == "simulated outage"
    assert count(sim, "GET", "/version", since=mark) == 3


async def test_get_retried_on_connection_reset(sim: Any) -> None:
    fault = sim.faults.add("reset", path="/version", method="GET", count=1)
    mark = len(sim.request_log)
    async with PveClient(token_config(sim)) as pve:
        assert "version" in await pve.get("/version")
    assert fault.fired == 1
    gets = [r.status for r in sim.request_log[mark:] if r.method == "GET" and r.path == "/version"]
    assert gets[-1] == 200 and len(gets) in (1, 2)  # the reset request may or may not be logged


async def test_post_never_retried_on_5xx(sim: Any) -> None:
    async with PveClient(token_config(sim)) as pve:
        guest = await pick_guest(pve, type="qemu", status="stopped")
        path = f"/nodes/{guest.node}/qemu/{guest.vmid}/status/start"
        sim.faults.add("error", path=path, method="POST", count=1, status=503, message="simulated outage")
        mark = len(sim.request_log)
        with pytest.raises(PveError) as info:
            await pve.post(START, path={"node": guest.node, "vmid": guest.vmid})
    assert info.value.status == 503
    assert count(sim, "POST", path, since=mark) == 1


async def test_post_never_retried_on_reset(sim: Any) -> None:
    async with PveClient(token_config(sim)) as pve:
        guest = await pick_guest(pve, type="qemu", status="stopped")
        path = f"/nodes/{guest.node}/qemu/{guest.vmid}/status/start"
        fault = sim.faults.add("reset", path=path, method="POST", count=1)
        mark = len(sim.request_log)
        with pytest.raises(PveError) as info:
            await pve.post(START, path={"node": guest.node, "vmid": guest.vmid})
    err = info.value
    assert err.kind == "connection" and "may have reached Proxmox" in err.hint
    assert fault.fired == 1
    assert count(sim, "POST", path, since=mark) <= 1  # sent once; never again


async def test_read_timeout_honoured_on_hang(sim: Any) -> None:
    sim.faults.add("hang", path="/version", method="GET", count=1)
    mark = len(sim.request_log)
    async with PveClient(token_config(sim, read_timeout_s=0.3)) as pve:
        with pytest.raises(PveError) as info:
            await pve.get("/version")
        assert info.value.kind == "timeout" and "0.3 s" in info.value.message
        assert "version" in await pve.get("/version")  # the client is still usable
    assert count(sim, "GET", "/version", since=mark) <= 2


async def test_mutating_timeout_says_it_may_have_been_applied(sim: Any) -> None:
    async with PveClient(token_config(sim, mutate_timeout_s=0.3)) as pve:
        guest = await pick_guest(pve, type="qemu", status="stopped")
        path = f"/nodes/{guest.node}/qemu/{guest.vmid}/status/start"
        sim.faults.add("hang", path=path, method="POST", count=1)
        with pytest.raises(PveError) as info:
            await pve.post(START, path={"node": guest.node, "vmid": guest.vmid})
    err = info.value
    assert err.kind == "timeout" and "may have reached Proxmox" in err.hint


async def test_connection_refused_names_host(sim: Any) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = ClientConfig(url=f"https://127.0.0.1:{port}", token_id=sim.token_id, token_secret=sim.token_secret,
                       fingerprint=sim.fingerprint, retry_backoff_s=0.0)  # fmt: skip
    async with PveClient(cfg) as pve:
        with pytest.raises(PveError) as info:
            await pve.get("/version")
    err = info.value
    assert err.kind == "connection" and f"127.0.0.1:{port}" in err.message
    assert sim.token_secret not in str(err)
