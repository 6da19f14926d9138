"""Authentication and authorization: tickets, CSRF, API tokens, privileges (notes §2, §1.4)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from pvemcp.sim import RunningSimulator

from .conftest import Api

pytestmark = pytest.mark.anyio

TICKET_RE = re.compile(r"^PVE:root@pam:[0-9A-F]{8}::[A-Za-z0-9+/=]+$")
CSRF_RE = re.compile(r"^[0-9A-F]{8}:[A-Za-z0-9+/]{43}$")


async def _login(api: Api, user: str, password: str) -> dict[str, Any]:
    r = await api.post("/access/ticket", data={"username": user, "password": password})
    assert r.status_code == 200, r.text
    data: dict[str, Any] = r.json()["data"]
    return data


def _ticket_headers(login: dict[str, str], csrf: bool = True) -> dict[str, str]:
    h = {"Cookie": f"PVEAuthCookie={login['ticket']}"}
    if csrf:
        h["CSRFPreventionToken"] = login["CSRFPreventionToken"]
    return h


async def test_ticket_login_shape(sim: RunningSimulator, anon: Api) -> None:
    data = await _login(anon, sim.user, sim.password)
    assert data["username"] == "root@pam"
    assert TICKET_RE.match(data["ticket"])
    assert CSRF_RE.match(data["CSRFPreventionToken"])
    assert data["clustername"] == "pvemcp-sim"
    assert data["cap"]["vms"]["VM.PowerMgmt"] == 1 and "Sys.Audit" in data["cap"]["nodes"]


async def test_realm_parameter(sim: RunningSimulator, anon: Api) -> None:
    r = await anon.post("/access/ticket", data={"username": "root", "realm": "pam", "password": sim.password})
    assert r.status_code == 200 and r.json()["data"]["username"] == "root@pam"


async def test_bad_password_is_401_with_json_body(sim: RunningSimulator, anon: Api) -> None:
    for user in (sim.user, "nobody@pve"):
        r = await anon.post("/access/ticket", data={"username": user, "password": "wrong"})
        assert r.status_code == 401
        assert r.reason_phrase == "authentication failure"
        assert r.json() == {"data": None, "message": "authentication failure\n"}


async def test_no_credentials_is_401_no_ticket_empty_body(anon: Api) -> None:
    r = await anon.get("/cluster/resources")
    assert (r.status_code, r.reason_phrase, r.content) == (401, "No ticket", b"")


async def test_forged_or_bad_credentials(sim: RunningSimulator, anon: Api) -> None:
    cases = [
        {"Cookie": "PVEAuthCookie=PVE:root@pam:00000000::Zm9yZ2Vk"},
        {"Authorization": f"PVEAPIToken={sim.token_id}=00000000-0000-0000-0000-000000000000"},
        {"Authorization": f"PVEAPIToken=root@pam!nosuchtoken={sim.token_secret}"},
        {"Authorization": f"PVEAPIToken=nobody@pve!pvemcp={sim.token_secret}"},
    ]
    for headers in cases:
        r = await anon.client.get(sim.url + "/version", headers=headers)
        assert (r.status_code, r.reason_phrase, r.content) == (401, "Authentication failed!", b""), headers


async def test_ticket_works_and_csrf_is_required_for_writes(sim: RunningSimulator, anon: Api) -> None:
    login = await _login(anon, sim.user, sim.password)
    r = await anon.client.get(sim.url + "/cluster/resources", headers=_ticket_headers(login, csrf=False))
    assert r.status_code == 200
    url = sim.url + "/nodes/pve1/qemu/100/config"
    r = await anon.client.put(url, data={"description": "x"}, headers=_ticket_headers(login, csrf=False))
    assert (r.status_code, r.reason_phrase, r.content) == (401, "Permission denied - invalid csrf token", b"")
    bad = _ticket_headers(login) | {"CSRFPreventionToken": "00000000:" + "A" * 43}
    r = await anon.client.put(url, data={"description": "x"}, headers=bad)
    assert r.status_code == 401
    r = await anon.client.put(url, data={"description": "x"}, headers=_ticket_headers(login))
    assert r.status_code == 200


async def test_ticket_in_authorization_header(sim: RunningSimulator, anon: Api) -> None:
    login = await _login(anon, sim.user, sim.password)
    r = await anon.client.get(sim.url + "/version", headers={"Authorization": f"PVEAuthCookie={login['ticket']}"})
    assert r.status_code == 200


async def test_token_needs_no_csrf(admin: Api) -> None:
    r = await admin.put("/nodes/pve1/qemu/100/config", data={"description": "by token"})
    assert r.status_code == 200


async def test_ticket_expires_after_two_hours_on_the_simulated_clock(sim: RunningSimulator, anon: Api) -> None:
    login = await _login(anon, sim.user, sim.password)
    sim.advance_clock(3600)
    r = await anon.client.get(sim.url + "/version", headers=_ticket_headers(login))
    assert r.status_code == 200
    renewed = await _login(anon, sim.user, login["ticket"])  # renewal: the ticket as password
    assert renewed["ticket"] != login["ticket"]
    sim.advance_clock(3601)
    r = await anon.client.get(sim.url + "/version", headers=_ticket_headers(login))
    assert (r.status_code, r.reason_phrase) == (401, "Authentication failed!")
    r = await anon.post("/access/ticket", data={"username": sim.user, "password": login["ticket"]})
    assert r.status_code == 401  # an expired ticket cannot be renewed
    r = await anon.client.get(sim.url + "/version", headers=_ticket_headers(renewed))
    assert r.status_code == 200


async def test_expire_tickets_hook(sim: RunningSimulator, anon: Api) -> None:
    login = await _login(anon, sim.user, sim.password)
    sim.expire_tickets()
    r = await anon.client.get(sim.url + "/version", headers=_ticket_headers(login))
    assert r.status_code == 401
    fresh = await _login(anon, sim.user, sim.password)
    r = await anon.client.get(sim.url + "/version", headers=_ticket_headers(fresh))
    assert r.status_code == 200


async def test_readonly_token_reads_but_cannot_mutate(auditor: Api) -> None:
    res = await auditor.data("GET", "/cluster/resources", params={"type": "vm"})
    assert len(res) == 12
    r = await auditor.post("/nodes/pve1/qemu/100/status/stop")
    assert r.status_code == 403
    assert r.reason_phrase == "Permission check failed (/vms/100, VM.PowerMgmt)"
    assert r.json() == {"data": None, "message": "Permission check failed (/vms/100, VM.PowerMgmt)\n"}
    r = await auditor.put("/nodes/pve1/qemu/100/config", data={"description": "x"})
    assert r.status_code == 403
    assert r.json()["message"].startswith("Permission check failed (/vms/100, VM.Config.Disk|VM.Config.CDROM|")
    r = await auditor.post("/nodes/pve1/vzdump", data={"vmid": "100"})
    assert r.json()["message"] == "Permission check failed (/vms/100, VM.Backup)\n"
    r = await auditor.post("/nodes/pve1/qemu", data={"vmid": "900"})
    assert r.status_code == 403 and r.json()["message"] == "Permission check failed\n"


async def test_permission_check_precedes_validation(auditor: Api, admin: Api) -> None:
    r = await auditor.post("/nodes/pve1/qemu/100/snapshot", data={"snapname": "1-bad name", "bogus": "x"})
    assert r.status_code == 403
    r = await admin.post("/nodes/pve1/qemu/100/snapshot", data={"snapname": "1-bad name", "bogus": "x"})
    assert r.status_code == 400


async def test_auditor_ticket_and_permissions(sim: RunningSimulator, anon: Api, auditor: Api) -> None:
    login = await _login(anon, sim.readonly_user, sim.readonly_password)
    assert "clustername" in login and "VM.PowerMgmt" not in login["cap"]["vms"]
    perms = await auditor.data("GET", "/access/permissions")
    assert perms["/"]["VM.Audit"] == 1 and "VM.PowerMgmt" not in perms["/"]
    one = await auditor.data("GET", "/access/permissions", params={"path": "/vms/100"})
    assert set(one) == {"/vms/100"}


async def test_privsep_token_without_acls_sees_nothing(sim: RunningSimulator, anon: Api) -> None:
    secret = sim.sim.auth.admin.tokens["privsep"].secret
    headers = {"Authorization": f"PVEAPIToken=root@pam!privsep={secret}"}
    r = await anon.client.get(sim.url + "/cluster/resources", headers=headers)
    assert r.status_code == 200 and r.json() == {"data": []}
    r = await anon.client.get(sim.url + "/nodes/pve1/qemu/100/config", headers=headers)
    assert r.status_code == 403
    assert r.json()["message"] == "Permission check failed (/vms/100, VM.Audit)\n"


async def test_skiplock_is_root_only(sim: RunningSimulator, admin: Api, anon: Api) -> None:
    r = await admin.put("/nodes/pve1/qemu/100/config", data={"description": "x", "skiplock": "1"})
    assert r.status_code == 400
    assert r.json()["errors"] == {"skiplock": "Only root may use this option."}
    login = await _login(anon, sim.user, sim.password)
    r = await anon.client.put(
        sim.url + "/nodes/pve1/qemu/100/config",
        data={"description": "x", "skiplock": "1"},
        headers=_ticket_headers(login),
    )
    assert r.status_code == 200
