"""Streamable HTTP: served in-process by uvicorn on a free loopback port, driven by the official client.

Security witnesses: unauthenticated or wrong-token requests get 401 and the simulator sees zero
requests; a foreign Host header is refused (DNS-rebinding protection); a non-loopback bind without a
token refuses to start; the authenticated caller's name reaches the audit ledger.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from pvemcp.door._core import App, load_app_config
from pvemcp.door.auth import BearerTokens, load_bearer_tokens
from pvemcp.door.transports import HttpConfigError, HttpSettings, RunningHttp, http_endpoint
from pvemcp.sim.runner import RunningSimulator

from .helpers import MODES, Answers, cluster_env, guest_with, ledger, mutating, python, subprocess_env, text_of

pytestmark = pytest.mark.anyio

TOKEN = "s3cret-token-for-tests-0123456789"
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}},
}
MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


@asynccontextmanager
async def serving(
    sim: RunningSimulator, audit_log: Path, tokens: BearerTokens | None = None
) -> AsyncIterator[RunningHttp]:
    app = App(load_app_config(config_path=None, env=cluster_env(sim, PVEMCP_AUDIT_LOG=str(audit_log))))
    async with http_endpoint(app, HttpSettings(host="127.0.0.1", port=0, tokens=tokens)) as running:
        yield running


@asynccontextmanager
async def client_for(url: str, mode: str, bearer: str | None = None, **kwargs: object) -> AsyncIterator[Client]:
    headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30.0)) as http,
        Client(streamable_http_client(url, http_client=http), mode=mode, **kwargs) as client,  # type: ignore[arg-type]
    ):
        yield client


@pytest.mark.parametrize("mode", sorted(MODES))
async def test_http_session_both_eras(sim: RunningSimulator, audit_log: Path, mode: str) -> None:
    stopped = guest_with(sim, status="stopped")
    running = guest_with(sim, status="running")
    answers = Answers("accept")
    reported: list[float] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        reported.append(progress)

    async with serving(sim, audit_log) as endpoint:
        assert endpoint.url.startswith("http://127.0.0.1:") and endpoint.url.endswith("/mcp")
        async with client_for(endpoint.url, mode, elicitation_callback=answers) as client:
            assert client.protocol_version == MODES[mode]
            tools = (await client.list_tools()).tools
            assert all(t.title and t.output_schema and t.annotations for t in tools)
            status = await client.call_tool("guest_status", {"vmid": running})
            assert not status.is_error and status.structured_content is not None
            assert status.structured_content["data"]["status"] == "running"
            started = await client.call_tool("guest_start", {"vmid": stopped}, progress_callback=on_progress)
            assert not started.is_error, text_of(started)
            stopped_now = await client.call_tool("guest_stop", {"vmid": running})
            assert not stopped_now.is_error, text_of(stopped_now)
    assert sim.state.guests[stopped].status == "running"
    assert sim.state.guests[running].status == "stopped"
    assert len(answers.questions) == 1 and reported
    assert {r["caller"] for r in ledger(audit_log)} == {"http"}


@pytest.mark.parametrize("mode", sorted(MODES))
async def test_http_declined_confirmation_sends_nothing(sim: RunningSimulator, audit_log: Path, mode: str) -> None:
    running = guest_with(sim, status="running")
    async with (
        serving(sim, audit_log) as endpoint,
        client_for(endpoint.url, mode, elicitation_callback=Answers("decline")) as client,
    ):
        result = await client.call_tool("guest_stop", {"vmid": running})
    assert "nothing was sent" in text_of(result).lower()
    assert mutating(sim) == []


async def test_bearer_required_when_configured(sim: RunningSimulator, audit_log: Path, tmp_path: Path) -> None:
    token_file = tmp_path / "tokens"
    token_file.write_text(f"# name token\nalice {TOKEN}\nbob {TOKEN[::-1]}\n")
    tokens = load_bearer_tokens({"PVEMCP_HTTP_TOKEN_FILE": str(token_file)})
    stopped = guest_with(sim, status="stopped")
    async with serving(sim, audit_log, tokens) as endpoint:
        async with httpx2.AsyncClient(timeout=10.0) as raw:
            for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}):
                answer = await raw.post(endpoint.url, json=INITIALIZE, headers={**MCP_HEADERS, **headers})
                assert answer.status_code == 401, headers
                assert answer.headers["www-authenticate"].startswith("Bearer")
                assert TOKEN not in answer.text
        assert sim.request_log == []  # nothing reached "Proxmox"

        for mode in sorted(MODES):
            async with client_for(endpoint.url, mode, bearer=TOKEN) as client:
                listed = await client.call_tool("guest_list", {"limit": 2})
                assert not listed.is_error, text_of(listed)
        async with client_for(endpoint.url, "auto", bearer=TOKEN) as client:
            started = await client.call_tool("guest_start", {"vmid": stopped})
            assert not started.is_error, text_of(started)
    assert sim.state.guests[stopped].status == "running"
    records = ledger(audit_log)
    assert records and {r["caller"] for r in records} == {"alice"}
    assert TOKEN not in audit_log.read_text()


async def test_foreign_host_header_is_refused(sim: RunningSimulator, audit_log: Path) -> None:
    async with serving(sim, audit_log) as endpoint, httpx2.AsyncClient(timeout=10.0) as raw:
        answer = await raw.post(
            endpoint.url, json=INITIALIZE, headers={**MCP_HEADERS, "Host": f"evil.example:{endpoint.port}"}
        )
        assert answer.status_code in (400, 403, 421)
        origin = await raw.post(endpoint.url, json=INITIALIZE, headers={**MCP_HEADERS, "Origin": "http://evil.example"})
        assert origin.status_code in (400, 403)
    assert sim.request_log == []


def test_non_loopback_bind_requires_a_token() -> None:
    with pytest.raises(HttpConfigError, match="PVEMCP_HTTP_TOKEN"):
        HttpSettings(host="0.0.0.0", port=8765)
    with pytest.raises(HttpConfigError):
        HttpSettings(host="192.0.2.10", port=8765)
    with pytest.raises(HttpConfigError):
        HttpSettings(host="pve-mcp.example", port=8765)
    tokens = BearerTokens.from_mapping({"ops": TOKEN})
    settings = HttpSettings(host="192.0.2.10", port=8765, tokens=tokens)
    security = settings.transport_security()
    assert security.enable_dns_rebinding_protection
    assert "192.0.2.10:*" in security.allowed_hosts and "127.0.0.1:*" in security.allowed_hosts


async def test_cli_refuses_non_loopback_without_token(sim: RunningSimulator) -> None:
    done = await anyio.run_process(
        [python(), "-m", "pvemcp", "serve", "--http", "0.0.0.0:0"], env=subprocess_env(sim), check=False
    )
    assert done.returncode == 2
    assert b"PVEMCP_HTTP_TOKEN" in done.stderr
    assert done.stdout == b""


async def test_cli_serves_http_until_interrupted(sim: RunningSimulator) -> None:
    """`pvemcp serve --http 127.0.0.1:PORT` serves, logs to stderr only, and stops cleanly on SIGINT."""
    import signal
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = subprocess_env(sim, PVEMCP_LOG_LEVEL="INFO")
    async with await anyio.open_process(
        [python(), "-m", "pvemcp", "serve", "--http", f"127.0.0.1:{port}"], env=env
    ) as process:
        assert process.stderr is not None and process.stdout is not None
        seen = b""
        async for chunk in process.stderr:
            seen += chunk
            if b"serving streamable HTTP" in seen:
                break
        async with client_for(f"http://127.0.0.1:{port}/mcp", "auto") as client:
            tools = (await client.list_tools()).tools
            assert tools
        process.send_signal(signal.SIGINT)
        code = await process.wait()
        out = b""
        try:
            while True:
                out += await process.stdout.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            pass
    assert code == 0
    assert out == b""  # logs go to stderr only


async def test_sealed_state_is_bound_to_the_authenticated_principal(sim: RunningSimulator, audit_log: Path) -> None:
    import mcp_types as types
    from mcp.shared.exceptions import MCPError

    tokens = BearerTokens.from_mapping({"alice": TOKEN, "bob": TOKEN[::-1]})
    vmid = guest_with(sim, status="running")
    accept: types.InputResponses = {"confirm": types.ElicitResult(action="accept", content={"confirm": True})}
    async with serving(sim, audit_log, tokens) as endpoint:
        async with client_for(endpoint.url, "auto", bearer=TOKEN, elicitation_callback=Answers()) as alice:
            asked = await alice.session.call_tool("guest_stop", {"vmid": vmid}, allow_input_required=True)
            assert isinstance(asked, types.InputRequiredResult)
        async with client_for(endpoint.url, "auto", bearer=TOKEN[::-1], elicitation_callback=Answers()) as bob:
            with pytest.raises(MCPError):
                await bob.session.call_tool(
                    "guest_stop",
                    {"vmid": vmid},
                    input_responses=accept,
                    request_state=asked.request_state,
                    allow_input_required=True,
                )
        assert mutating(sim) == []
        async with client_for(endpoint.url, "auto", bearer=TOKEN, elicitation_callback=Answers()) as alice:
            done = await alice.call_tool("guest_stop", {"vmid": vmid})
            assert not done.is_error, text_of(done)
    assert sim.state.guests[vmid].status == "stopped"
    assert {r["caller"] for r in ledger(audit_log)} == {"alice"}
