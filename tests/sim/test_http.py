"""HTTP framing: envelopes, status codes, reason phrases, headers, request parsing (notes §1)."""

from __future__ import annotations

import gzip
import json

import httpx2
import pytest

from pvemcp.sim import RunningSimulator

from .conftest import Api, ssl_context, token_header

pytestmark = pytest.mark.anyio


async def test_success_envelope_has_data_only(shared_admin: Api) -> None:
    r = await shared_admin.get("/version")
    assert r.status_code == 200 and r.reason_phrase == "OK"
    body = r.json()
    assert set(body) == {"data"}
    assert body["data"]["version"] == "9.1.1" and body["data"]["release"] == "9.1"


async def test_pve_headers(shared_admin: Api) -> None:
    r = await shared_admin.get("/version")
    assert r.headers["server"] == "pve-api-daemon/3.0"
    assert r.headers["content-type"] == "application/json;charset=UTF-8"
    assert r.headers["cache-control"] == "max-age=0"
    assert r.headers["pragma"] == "no-cache"
    assert "expires" in r.headers
    assert r.headers.get("connection", "") != "close"


async def test_errors_close_the_connection_and_carry_message(shared_admin: Api) -> None:
    r = await shared_admin.get("/nodes/pve1/qemu/4242/config")
    assert r.status_code == 500
    assert r.reason_phrase == "Configuration file 'nodes/pve1/qemu-server/4242.conf' does not exist"
    assert r.headers["connection"] == "close"
    assert r.json() == {
        "data": None,
        "message": "Configuration file 'nodes/pve1/qemu-server/4242.conf' does not exist\n",
    }


async def test_missing_container_config(shared_admin: Api) -> None:
    r = await shared_admin.get("/nodes/pve2/lxc/100/config")  # 100 is a VM, and on pve1
    assert r.status_code == 500
    assert r.json()["message"] == "Configuration file 'nodes/pve2/lxc/100.conf' does not exist\n"


async def test_unknown_path_is_501_not_404(shared_admin: Api) -> None:
    r = await shared_admin.get("/no/such/thing")
    assert r.status_code == 501
    assert r.reason_phrase == "Method 'GET /no/such/thing' not implemented"
    assert r.json() == {"data": None, "message": "Method 'GET /no/such/thing' not implemented"}


async def test_unknown_method_on_known_path_is_501(shared_admin: Api) -> None:
    r = await shared_admin.delete("/version")
    assert r.status_code == 501
    assert r.reason_phrase == "Method 'DELETE /version' not implemented"


async def test_known_but_unmodelled_operation_is_501(shared_admin: Api) -> None:
    r = await shared_admin.get("/nodes/pve1/ceph/status")
    assert r.status_code == 501
    assert r.json()["message"] == "Method 'GET /nodes/pve1/ceph/status' not implemented"


async def test_directory_index_of_known_paths(shared_admin: Api) -> None:
    data = await shared_admin.data("GET", "/nodes/pve1/qemu/100")
    subdirs = {d["subdir"] for d in data}
    assert {"config", "status", "snapshot", "clone"} <= subdirs


async def test_patch_is_not_available(shared_admin: Api) -> None:
    r = await shared_admin.client.request("PATCH", shared_admin.sim.url + "/version")
    assert r.status_code == 501
    assert r.reason_phrase == "method 'PATCH' not available"


async def test_body_on_delete_is_rejected(shared_admin: Api) -> None:
    r = await shared_admin.client.request("DELETE", shared_admin.sim.url + "/cluster/backup/x", content=b"a=1")
    assert r.status_code == 501
    assert r.reason_phrase == "Unexpected content for method 'DELETE'"


async def test_outside_api2_json(shared_sim: RunningSimulator) -> None:
    base = shared_sim.url.removesuffix("/api2/json")
    async with httpx2.AsyncClient(verify=ssl_context(shared_sim)) as c:
        r = await c.get(base + "/api2")
    assert r.status_code == 501 and r.text == "no such uri"


async def test_large_bodies_are_gzipped_when_accepted(shared_sim: RunningSimulator) -> None:
    headers = token_header(shared_sim.token_id, shared_sim.token_secret)
    async with httpx2.AsyncClient(verify=ssl_context(shared_sim), headers=headers) as c:
        r = await c.get(shared_sim.url + "/cluster/resources", headers={"Accept-Encoding": "gzip"})
        assert r.headers["content-encoding"] == "gzip"
        assert len(r.json()["data"]) > 12
        raw = await c.get(shared_sim.url + "/cluster/resources", headers={"Accept-Encoding": "identity"})
        assert "content-encoding" not in raw.headers
        small = await c.get(shared_sim.url + "/version", headers={"Accept-Encoding": "gzip"})
        assert "content-encoding" not in small.headers
    assert gzip.decompress(gzip.compress(raw.content)) == raw.content


async def test_total_is_set_and_zero_total_omitted(shared_admin: Api) -> None:
    r = await shared_admin.get("/nodes/pve1/tasks")
    body = r.json()
    assert body["total"] == len(body["data"]) > 0
    r = await shared_admin.get("/nodes/pve1/tasks", typefilter="nonexistent")
    assert r.json() == {"data": []}


async def test_json_body_accepted_and_query_wins(admin: Api) -> None:
    url = admin.sim.url + "/nodes/pve1/qemu/100/config"
    r = await admin.client.put(
        url,
        content=json.dumps({"description": "from json", "onboot": True}),
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 200 and r.json() == {"data": None}
    cfg = await admin.data("GET", "/nodes/pve1/qemu/100/config")
    assert cfg["description"] == "from json" and cfg["onboot"] == 1
    r = await admin.client.put(url, params={"description": "from query"}, data={"description": "from body"})
    assert r.status_code == 200
    cfg = await admin.data("GET", "/nodes/pve1/qemu/100/config")
    assert cfg["description"] == "from query"


async def test_conflicting_duplicate_of_path_parameter(admin: Api) -> None:
    r = await admin.put("/nodes/pve1/qemu/100/config", data={"vmid": "101", "description": "x"})
    assert r.status_code == 400
    assert r.json()["errors"] == {"vmid": "duplicate parameter (already defined in URI) with conflicting values!"}
    r = await admin.put("/nodes/pve1/qemu/100/config", data={"vmid": "100", "description": "same"})
    assert r.status_code == 200


async def test_unknown_node_is_a_hostname_lookup_error(shared_admin: Api) -> None:
    r = await shared_admin.get("/nodes/nosuchnode/qemu")
    assert r.status_code == 500
    assert r.json()["message"] == (
        "hostname lookup 'nosuchnode' failed - failed to get address info for: nosuchnode: Name or service not known\n"
    )


async def test_offline_node_answers_595_with_empty_body(sim: RunningSimulator, admin: Api) -> None:
    sim.faults.add("offline_node", node="pve3")
    r = await admin.get("/nodes/pve3/qemu", bogus="parameter-not-validated-first")
    assert r.status_code == 595
    assert r.content == b""
    assert r.reason_phrase == "No route to host"
    nodes = {n["node"]: n for n in await admin.data("GET", "/nodes")}
    assert nodes["pve3"]["status"] == "offline" and "cpu" not in nodes["pve3"]
    status = {e["id"]: e for e in await admin.data("GET", "/cluster/status")}
    assert status["node/pve3"]["online"] == 0
    res = await admin.data("GET", "/cluster/resources")
    node3 = next(e for e in res if e["id"] == "node/pve3")
    assert node3 == {
        "id": "node/pve3",
        "type": "node",
        "node": "pve3",
        "status": "offline",
        "maxcpu": node3["maxcpu"],
        "maxmem": node3["maxmem"],
        "maxdisk": node3["maxdisk"],
        "level": "",
    }
    assert {e["status"] for e in res if e.get("type") in ("qemu", "lxc") and e["node"] == "pve3"} == {"unknown"}
    sim.faults.clear()
    assert (await admin.get("/nodes/pve3/qemu")).status_code == 200


async def test_request_log_records_without_secrets(sim: RunningSimulator, anon: Api) -> None:
    r = await anon.post("/access/ticket", data={"username": sim.user, "password": sim.password})
    ticket = r.json()["data"]["ticket"]
    await anon.get("/version", password="oops-a-secret")
    await anon.get("/version")
    rec = sim.request_log[-3:]
    assert [(x.method, x.path, x.status) for x in rec] == [
        ("POST", "/access/ticket", 200),
        ("GET", "/version", 401),
        ("GET", "/version", 401),
    ]
    assert rec[1].query == {"password": "***"}
    assert rec[0].auth == "password" and rec[0].user == "root@pam" and rec[2].auth == "none"
    dump = repr(sim.request_log)
    for secret in (sim.password, ticket, sim.token_secret, "oops-a-secret"):
        assert secret not in dump
