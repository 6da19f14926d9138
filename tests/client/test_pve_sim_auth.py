"""Token and ticket auth, CSRF, single-flight renewal — against the simulator over loopback HTTPS."""

from __future__ import annotations

import ssl
from typing import Any

import anyio
import httpx2
import pytest

from pvemcp.core.pve.client import PveClient
from pvemcp.core.pve.config import ClientConfig
from pvemcp.core.pve.errors import PveError

from .conftest import needs_sim
from .simhelp import count, pick_guest, ticket_config, token_config

pytestmark = [pytest.mark.anyio, needs_sim]


async def test_token_auth(sim: Any) -> None:
    async with PveClient(token_config(sim)) as pve:
        version = await pve.get("/version")
        assert isinstance(version, dict) and "version" in version
    rec = [r for r in sim.request_log if r.path == "/version"]
    assert rec and rec[-1].auth == "token" and rec[-1].status == 200
    assert count(sim, "POST", "/access/ticket") == 0


async def test_ticket_auth_and_csrf_on_writes(sim: Any) -> None:
    async with PveClient(ticket_config(sim)) as pve:
        guests = await pve.list_guests()
        assert guests
        guest = await pick_guest(pve, type="qemu", status="stopped")
        # a synchronous write: needs the CSRF token with ticket auth
        await pve.request(
            "PUT",
            "/nodes/{node}/qemu/{vmid}/config",
            path={"node": guest.node, "vmid": guest.vmid},
            data={"description": "set by the client test"},
        )
        assert pve.ticket_renewals == 1
    puts = [r for r in sim.request_log if r.method == "PUT"]
    assert puts and puts[-1].status == 200 and puts[-1].auth == "ticket"
    assert count(sim, "POST", "/access/ticket") == 1


async def test_write_without_csrf_is_refused_by_the_simulator(sim: Any) -> None:
    """Control for the test above: the simulator really enforces CSRF, so the client must be sending it."""
    async with PveClient(token_config(sim)) as pve:
        guest = await pick_guest(pve, type="qemu", status="stopped")
    verify = ssl.create_default_context(cafile=str(sim.ca_file))
    async with httpx2.AsyncClient(verify=verify, trust_env=False) as raw:
        login = await raw.post(f"{sim.url}/access/ticket", data={"username": sim.user, "password": sim.password})
        ticket = login.json()["data"]["ticket"]
        resp = await raw.put(
            f"{sim.url}/nodes/{guest.node}/qemu/{guest.vmid}/config",
            data={"description": "x"},
            headers={"Cookie": f"PVEAuthCookie={ticket}"},
        )
    assert resp.status_code == 401


async def test_fifty_concurrent_calls_across_expired_tickets_renew_once(sim: Any) -> None:
    async with PveClient(ticket_config(sim)) as pve:
        await pve.get("/version")
        mark = len(sim.request_log)
        sim.expire_tickets()
        results: list[Any] = []

        async def call() -> None:
            results.append(await pve.get("/cluster/resources", params={"type": "vm"}))

        async with anyio.create_task_group() as tg:
            for _ in range(50):
                tg.start_soon(call)
        assert len(results) == 50 and all(isinstance(r, list) for r in results)
    assert count(sim, "POST", "/access/ticket", since=mark) == 1
    assert count(sim, "GET", "/cluster/resources", since=mark) >= 50


async def test_renewal_after_two_hours_of_simulated_time_under_fifty_writes(sim: Any) -> None:
    """Ticket and CSRF token both age out on the server; fifty concurrent writes renew once and succeed."""
    async with PveClient(ticket_config(sim)) as pve:
        guest = await pick_guest(pve, type="qemu", status="stopped")
        mark = len(sim.request_log)
        sim.advance_clock(7300)  # older than the 2 h lifetime on the server

        async def write(i: int) -> None:
            await pve.request(
                "PUT",
                "/nodes/{node}/qemu/{vmid}/config",
                path={"node": guest.node, "vmid": guest.vmid},
                data={"description": f"write {i}"},
            )

        async with anyio.create_task_group() as tg:
            for i in range(50):
                tg.start_soon(write, i)
    assert count(sim, "POST", "/access/ticket", since=mark) == 1
    puts = [r for r in sim.request_log[mark:] if r.method == "PUT"]
    assert sum(1 for r in puts if r.status == 200) == 50  # every write landed exactly once
    assert {r.status for r in puts} <= {200, 401}  # the only failures were the stale-ticket 401s


async def test_proactive_renewal_posts_ticket_before_expiry(sim: Any) -> None:
    now = {"t": 0.0}
    async with PveClient(ticket_config(sim), clock=lambda: now["t"]) as pve:
        await pve.get("/version")
        mark = len(sim.request_log)
        now["t"] += 3700
        sim.advance_clock(3700)  # both sides agree: 1 h old, still valid for another hour
        async with anyio.create_task_group() as tg:
            for _ in range(50):
                tg.start_soon(pve.get, "/version")
    assert count(sim, "POST", "/access/ticket", since=mark) == 1
    assert all(r.status == 200 for r in sim.request_log[mark:])


async def test_wrong_password_and_wrong_token(sim: Any) -> None:
    bad_pw = ClientConfig(url=sim.url, user=sim.user, password="not-the-password", fingerprint=sim.fingerprint)
    async with PveClient(bad_pw) as pve:
        with pytest.raises(PveError) as info:
            await pve.get("/version")
    assert info.value.kind == "auth" and info.value.status == 401
    assert sim.user in info.value.hint and "not-the-password" not in str(info.value)

    secret = "00000000-0000-0000-0000-000000000000"
    bad_token = ClientConfig(url=sim.url, token_id=sim.token_id, token_secret=secret, fingerprint=sim.fingerprint)
    async with PveClient(bad_token) as pve:
        with pytest.raises(PveError) as info:
            await pve.get("/version")
    err = info.value
    assert err.kind == "auth" and err.status == 401 and err.reason == "Authentication failed!"
    assert sim.token_id in err.hint and secret not in str(err) and secret not in repr(err)
