"""Client behaviour that needs exact control of the wire: an in-memory transport standing in for PVE.

The simulator tests (test_pve_sim_*.py) prove the same properties over real HTTPS; these pin down the
decision logic (what is retried, what is refused before sending, how tickets are renewed) precisely.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

import anyio
import httpx2
import pytest

from pvemcp.core.pve import client as client_mod
from pvemcp.core.pve.client import PveClient
from pvemcp.core.pve.config import ClientConfig
from pvemcp.core.pve.errors import PveError

SECRET = "5f0e1d2c-3b4a-5968-7788-99aabbccddee"
PASSWORD = "hunter2-correct-horse"
URL = "https://pve.test:8006"


def token_cfg(**kw: Any) -> ClientConfig:
    return ClientConfig(url=URL, token_id="root@pam!mcp", token_secret=SECRET, retry_backoff_s=0.0, **kw)


def ticket_cfg(**kw: Any) -> ClientConfig:
    return ClientConfig(url=URL, user="alice@pve", password=PASSWORD, retry_backoff_s=0.0, **kw)


def ok(data: Any, **extra: Any) -> httpx2.Response:
    return httpx2.Response(200, json={"data": data, **extra})


def fail(status: int, reason: str, body: dict[str, Any] | None = None) -> httpx2.Response:
    content = json.dumps(body).encode() if body is not None else b""
    return httpx2.Response(status, content=content, extensions={"reason_phrase": reason.encode()})


class Recorder:
    """A fake PVE endpoint: records requests, answers with a handler."""

    def __init__(self, handler: Callable[[httpx2.Request], httpx2.Response]) -> None:
        self.handler = handler
        self.requests: list[httpx2.Request] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        return self.handler(request)

    def count(self, method: str, suffix: str) -> int:
        return sum(1 for r in self.requests if r.method == method and r.url.path.endswith(suffix))


def client(cfg: ClientConfig, rec: Recorder, **kw: Any) -> PveClient:
    return PveClient(cfg, transport=httpx2.MockTransport(rec), **kw)


@pytest.mark.anyio
async def test_token_header_url_and_envelope() -> None:
    rec = Recorder(lambda r: ok([{"n": 1, "t": "x"}], total=7))
    async with client(token_cfg(), rec) as pve:
        env = await pve.request("GET", "/nodes/{node}/tasks", path={"node": "pve1"}, params={"errors": True})
    assert env.data == [{"n": 1, "t": "x"}] and env.total == 7
    req = rec.requests[0]
    assert str(req.url) == "https://pve.test:8006/api2/json/nodes/pve1/tasks?errors=1"
    assert req.headers["Authorization"] == f"PVEAPIToken=root@pam!mcp={SECRET}"
    assert "CSRFPreventionToken" not in req.headers


@pytest.mark.anyio
async def test_form_body_booleans_and_mutation_epoch() -> None:
    rec = Recorder(lambda r: ok("UPID:pve1:0000ABCD:00001234:65A1B2C3:qmclone:100:root@pam!mcp:"))
    async with client(token_cfg(), rec) as pve:
        assert pve.mutation_epoch == 0
        await pve.post(
            "/nodes/{node}/qemu/{vmid}/clone", path={"node": "pve1", "vmid": 100}, data={"newid": 101, "full": True}
        )
        assert pve.mutation_epoch == 1
    req = rec.requests[0]
    assert req.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert parse_qsl(req.content.decode()) == [("newid", "101"), ("full", "1")]


@pytest.mark.anyio
async def test_unknown_operation_and_bad_path_send_nothing() -> None:
    rec = Recorder(lambda r: ok(None))
    async with client(token_cfg(), rec) as pve:
        with pytest.raises(PveError) as info:
            await pve.get("/nodes/{node}/qemu/{vmid}/secret-backdoor", path={"node": "pve1", "vmid": 100})
        assert info.value.kind == "refused" and "unknown API operation" in info.value.message
        with pytest.raises(PveError) as info:
            await pve.get("/nodes/{node}/status", path={"node": "pve1/qemu/100/status/stop"})
        assert info.value.kind == "params"
        with pytest.raises(PveError):
            await pve.request("PATCH", "/nodes/{node}/status", path={"node": "pve1"})
        with pytest.raises(PveError, match="takes no body"):
            await pve.request(
                "DELETE", "/nodes/{node}/qemu/{vmid}", path={"node": "pve1", "vmid": 100}, data={"purge": 1}
            )
    assert rec.requests == []


@pytest.mark.anyio
async def test_spec_unavailable_fails_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken() -> Any:
        raise ImportError("no spec")

    monkeypatch.setattr(client_mod, "spec_known_operation", broken)
    rec = Recorder(lambda r: ok(None))
    async with client(token_cfg(), rec) as pve:
        with pytest.raises(PveError, match="spec is unavailable") as info:
            await pve.get("/version")
    assert info.value.kind == "refused" and rec.requests == []


@pytest.mark.anyio
async def test_default_known_operation_is_the_spec() -> None:
    rec = Recorder(lambda r: ok({"version": "9.1.1"}))
    async with client(token_cfg(), rec) as pve:
        assert (await pve.get("/version"))["version"] == "9.1.1"
        with pytest.raises(PveError, match="unknown API operation 'DELETE /version'"):
            await pve.request("DELETE", "/version")


@pytest.mark.anyio
async def test_injected_known_operation() -> None:
    rec = Recorder(lambda r: ok(1))
    async with client(token_cfg(), rec, known_operation=lambda m, t: t == "/only") as pve:
        assert await pve.get("/only") == 1
        with pytest.raises(PveError):
            await pve.get("/version")


@pytest.mark.anyio
async def test_get_retried_on_reset_and_5xx_post_never() -> None:
    answers: list[Any] = [httpx2.RemoteProtocolError("Server disconnected"), fail(503, "busy"), ok("fine")]

    def handler(r: httpx2.Request) -> httpx2.Response:
        if r.method == "GET":
            a = answers.pop(0)
            if isinstance(a, Exception):
                raise a
            return a  # type: ignore[no-any-return]
        raise httpx2.ReadError("connection reset by peer")

    rec = Recorder(handler)
    async with client(token_cfg(), rec) as pve:
        assert await pve.get("/version") == "fine"
        with pytest.raises(PveError) as info:
            await pve.post("/nodes/{node}/qemu/{vmid}/status/start", path={"node": "pve1", "vmid": 100})
    assert rec.count("GET", "/version") == 3
    assert rec.count("POST", "/status/start") == 1
    assert info.value.kind == "connection" and "may have reached Proxmox" in info.value.hint


@pytest.mark.anyio
async def test_post_retried_when_connect_failed_before_sending() -> None:
    calls = {"n": 0}

    def handler(r: httpx2.Request) -> httpx2.Response:
        calls["n"] += 1
        if calls["n"] == 1:
            raise httpx2.ConnectError("connect failed")
        return ok("UPID:pve1:0000ABCD:00001234:65A1B2C3:qmstart:100:root@pam!mcp:")

    rec = Recorder(handler)
    async with client(token_cfg(), rec) as pve:
        await pve.post("/nodes/{node}/qemu/{vmid}/status/start", path={"node": "pve1", "vmid": 100})
    assert rec.count("POST", "/status/start") == 2


@pytest.mark.anyio
async def test_retries_are_bounded() -> None:
    rec = Recorder(lambda r: fail(503, "Service Unavailable"))
    async with client(token_cfg(retries=3), rec) as pve:
        with pytest.raises(PveError) as info:
            await pve.get("/version")
    assert info.value.status == 503 and info.value.kind == "server"
    assert len(rec.requests) == 3


@pytest.mark.anyio
async def test_500_is_not_retried_and_keeps_words() -> None:
    text = "Configuration file 'nodes/pve1/qemu-server/999.conf' does not exist"
    rec = Recorder(lambda r: fail(500, text, {"data": None, "message": text + "\n"}))
    async with client(token_cfg(), rec) as pve:
        with pytest.raises(PveError) as info:
            await pve.get("/nodes/{node}/qemu/{vmid}/status/current", path={"node": "pve1", "vmid": 999})
    assert len(rec.requests) == 1
    assert info.value.message == text and info.value.node == "pve1"


def fake_pve_with_tickets(state: dict[str, Any]) -> Callable[[httpx2.Request], httpx2.Response]:
    """Minimal ticket/CSRF semantics: tickets are 'T<n>', valid while n >= state['min_valid']."""

    def handler(r: httpx2.Request) -> httpx2.Response:
        if r.url.path.endswith("/access/ticket"):
            form = dict(parse_qsl(r.content.decode()))
            state.setdefault("logins", []).append(form)
            pw = form.get("password", "")
            valid_ticket = pw.startswith("T") and int(pw[1:]) >= state["min_valid"]
            if form.get("username") != "alice@pve" or not (pw == PASSWORD or valid_ticket):
                return fail(401, "authentication failure", {"data": None, "message": "authentication failure\n"})
            if state.get("tfa"):
                return ok({"username": "alice@pve", "ticket": "PVE:!tfa!x", "CSRFPreventionToken": "c", "NeedTFA": 1})
            state["issued"] = state.get("issued", 0) + 1
            n = state["issued"]
            return ok({"username": "alice@pve", "ticket": f"T{n}", "CSRFPreventionToken": f"C{n}"})
        cookie = r.headers.get("Cookie", "")
        if not cookie.startswith("PVEAuthCookie=T") or int(cookie.split("T", 1)[1]) < state["min_valid"]:
            return fail(401, "Authentication failed!")
        n = cookie.split("T", 1)[1]
        if r.method != "GET" and r.headers.get("CSRFPreventionToken") != f"C{n}":
            return fail(401, "Permission denied - invalid csrf token")
        return ok("ok")

    return handler


@pytest.mark.anyio
async def test_ticket_login_cookie_and_csrf() -> None:
    state: dict[str, Any] = {"min_valid": 0}
    rec = Recorder(fake_pve_with_tickets(state))
    async with client(ticket_cfg(), rec) as pve:
        assert await pve.get("/version") == "ok"
        answer = await pve.request(
            "PUT", "/nodes/{node}/qemu/{vmid}/config", path={"node": "pve1", "vmid": 100}, data={"name": "x"}
        )
        assert answer.data == "ok"
    get, put = rec.requests[1], rec.requests[2]
    assert get.headers["Cookie"] == "PVEAuthCookie=T1" and "CSRFPreventionToken" not in get.headers
    assert put.headers["CSRFPreventionToken"] == "C1"
    assert state["logins"] == [{"username": "alice@pve", "password": PASSWORD}]


@pytest.mark.anyio
async def test_fifty_concurrent_calls_on_expired_ticket_renew_once() -> None:
    state: dict[str, Any] = {"min_valid": 0}
    rec = Recorder(fake_pve_with_tickets(state))
    async with client(ticket_cfg(), rec) as pve:
        await pve.get("/version")
        state["min_valid"] = 2  # every ticket issued so far is now expired
        results: list[Any] = []

        async def call() -> None:
            results.append(await pve.post("/nodes/{node}/qemu/{vmid}/status/start", path={"node": "pve1", "vmid": 100}))

        async with anyio.create_task_group() as tg:
            for _ in range(50):
                tg.start_soon(call)
        assert results == ["ok"] * 50
        assert pve.ticket_renewals == 2
    assert len(state["logins"]) == 2  # initial login + exactly one renewal
    assert state["logins"][1]["password"] == PASSWORD  # a rejected ticket cannot renew itself


@pytest.mark.anyio
async def test_proactive_renewal_posts_ticket_as_password_once() -> None:
    now = {"t": 1000.0}
    state: dict[str, Any] = {"min_valid": 0}
    rec = Recorder(fake_pve_with_tickets(state))
    async with client(ticket_cfg(), rec, clock=lambda: now["t"]) as pve:
        await pve.get("/version")
        now["t"] += 3700  # past renew_after (1 h), well before expiry (2 h)
        async with anyio.create_task_group() as tg:
            for _ in range(50):
                tg.start_soon(pve.get, "/version")
    assert [f["password"] for f in state["logins"]] == [PASSWORD, "T1"]
    # after expiry by our clock, the password is used directly
    assert rec.count("POST", "/access/ticket") == 2


@pytest.mark.anyio
async def test_tfa_account_gets_clear_error() -> None:
    state: dict[str, Any] = {"min_valid": 0, "tfa": True}
    rec = Recorder(fake_pve_with_tickets(state))
    async with client(ticket_cfg(), rec) as pve:
        with pytest.raises(PveError) as info:
            await pve.get("/version")
    assert info.value.kind == "auth"
    assert "two-factor" in info.value.message and "API token" in info.value.hint
    assert PASSWORD not in str(info.value)


@pytest.mark.anyio
async def test_bad_password_is_auth_error_without_secret() -> None:
    rec = Recorder(lambda r: fail(401, "authentication failure", {"data": None, "message": "authentication failure\n"}))
    async with client(ticket_cfg(), rec) as pve:
        with pytest.raises(PveError) as info:
            await pve.get("/version")
    err = info.value
    assert err.kind == "auth" and err.status == 401 and "alice@pve" in err.hint
    assert PASSWORD not in str(err) and PASSWORD not in repr(err)
    assert rec.count("POST", "/access/ticket") == 1


@pytest.mark.anyio
async def test_bad_token_401_not_retried() -> None:
    rec = Recorder(lambda r: fail(401, "Authentication failed!"))
    async with client(token_cfg(), rec) as pve:
        with pytest.raises(PveError) as info:
            await pve.get("/version")
    assert len(rec.requests) == 1
    assert info.value.kind == "auth" and "root@pam!mcp" in info.value.hint
    assert SECRET not in str(info.value)


@pytest.mark.anyio
async def test_non_envelope_answer() -> None:
    rec = Recorder(lambda r: httpx2.Response(200, content=b"<html>login</html>"))
    async with client(token_cfg(), rec) as pve:
        with pytest.raises(PveError) as info:
            await pve.get("/version")
    assert info.value.kind == "server"


@pytest.mark.anyio
async def test_use_outside_context_is_refused() -> None:
    pve = PveClient(token_cfg(), transport=httpx2.MockTransport(lambda r: ok(1)))
    with pytest.raises(PveError, match="not open"):
        await pve.get("/version")


@pytest.mark.anyio
async def test_concurrency_is_bounded() -> None:
    inflight = {"now": 0, "max": 0}

    async def handler(r: httpx2.Request) -> httpx2.Response:
        inflight["now"] += 1
        inflight["max"] = max(inflight["max"], inflight["now"])
        await anyio.sleep(0.01)
        inflight["now"] -= 1
        return ok(1)

    pve = PveClient(token_cfg(max_concurrency=3), transport=httpx2.MockTransport(handler))
    async with pve, anyio.create_task_group() as tg:
        for _ in range(20):
            tg.start_soon(pve.get, "/version")
    assert inflight["max"] == 3


@pytest.mark.anyio
async def test_mutation_epoch_moves_on_maybe_applied_writes_only() -> None:
    answers: list[Any] = [
        fail(400, "Parameter verification failed.", {"data": None, "errors": {"x": "bad"}}),
        fail(500, "VM is locked (backup)"),
        httpx2.ReadTimeout("no answer"),
        httpx2.ConnectError("refused"),
    ]

    def handler(r: httpx2.Request) -> httpx2.Response:
        a = answers.pop(0) if answers else httpx2.ConnectError("refused")
        if isinstance(a, Exception):
            raise a
        return a  # type: ignore[no-any-return]

    async with client(token_cfg(retries=1), Recorder(handler)) as pve:
        epochs = []
        for _ in range(4):
            with pytest.raises(PveError):
                await pve.post("/nodes/{node}/qemu/{vmid}/status/start", path={"node": "pve1", "vmid": 100})
            epochs.append(pve.mutation_epoch)
    # 400: refused, nothing changed; 500: may be half-done; read timeout: may have been applied;
    # connect error: provably nothing sent
    assert epochs == [0, 1, 2, 2]
