"""Replica pieces that need no database: stateless confirm tokens, the shared secret file, the
in-process rate limit, and the ``/healthz`` / ``/readyz`` probes of the HTTP door."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import httpx2
import pytest

from pvemcp.core.policy.confirm import ConfirmationError, ConfirmationFailure, ConfirmationStore
from pvemcp.core.state.secret import derive, load_shared_secret
from pvemcp.core.state.store import RateLimiter, StateError
from pvemcp.door._core import App, load_app_config
from pvemcp.door.auth import load_bearer_tokens
from pvemcp.door.transports import HttpSettings, http_endpoint
from pvemcp.sim import running_simulator
from reliability.helpers import free_port
from simenv import cluster_env

ARGS = {"vmids": [100], "wait": 0}


class SpentOnce:
    """A spender keeping ids in a set: what the database's unique key does, for one process."""

    def __init__(self) -> None:
        self.ids: set[bytes] = set()

    async def spend(self, token_id: bytes, expires_at: float) -> bool:
        if token_id in self.ids:
            return False
        self.ids.add(token_id)
        return True


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def pair(clock: Clock, secret: bytes = b"k" * 32) -> tuple[ConfirmationStore, ConfirmationStore]:
    """Two replicas' stores: same secret, one shared spender, separate memories."""
    spender = SpentOnce()
    return (
        ConfirmationStore(secret, clock=clock, spender=spender),
        ConfirmationStore(secret, clock=clock, spender=spender),
    )


async def refused(
    store: ConfirmationStore, token: object, tool: str, args: dict[str, Any], caller: str
) -> ConfirmationFailure:
    with pytest.raises(ConfirmationError) as caught:
        await store.redeem_once(token, tool, args, caller)
    return caught.value.reason


@pytest.mark.anyio
async def test_a_token_issued_on_one_replica_runs_once_on_another() -> None:
    a, b = pair(Clock())
    token = a.issue("guest_stop", ARGS, "alice")
    await b.redeem_once(token, "guest_stop", ARGS, "alice")
    assert await refused(a, token, "guest_stop", ARGS, "alice") is ConfirmationFailure.USED
    assert await refused(b, token, "guest_stop", ARGS, "alice") is ConfirmationFailure.USED


@pytest.mark.anyio
async def test_another_replica_still_tells_what_does_not_match() -> None:
    a, b = pair(Clock())
    token = a.issue("guest_stop", ARGS, "alice")
    assert await refused(b, token, "guest_reboot", ARGS, "alice") is ConfirmationFailure.OTHER_TOOL
    assert await refused(b, token, "guest_stop", ARGS, "mallory") is ConfirmationFailure.OTHER_CALLER
    assert (
        await refused(b, token, "guest_stop", {**ARGS, "vmids": [101]}, "alice") is ConfirmationFailure.OTHER_ARGUMENTS
    )
    await b.redeem_once(token, "guest_stop", ARGS, "alice")  # the mismatches did not burn it


@pytest.mark.anyio
async def test_forged_foreign_and_expired_tokens_are_refused() -> None:
    clock = Clock()
    a, b = pair(clock)
    token = a.issue("guest_stop", ARGS, "alice")
    flipped = token[:20] + ("A" if token[20] != "A" else "B") + token[21:]
    assert await refused(b, flipped, "guest_stop", ARGS, "alice") is ConfirmationFailure.UNKNOWN
    other, _ = pair(clock, secret=b"x" * 32)
    assert await refused(other, token, "guest_stop", ARGS, "alice") is ConfirmationFailure.UNKNOWN
    single = ConfirmationStore(b"k" * 32, clock=clock).issue("guest_stop", ARGS, "alice")
    assert await refused(b, single, "guest_stop", ARGS, "alice") is ConfirmationFailure.UNKNOWN
    clock.now += 301
    assert await refused(b, token, "guest_stop", ARGS, "alice") is ConfirmationFailure.EXPIRED


def test_the_shared_secret_file_must_be_private_and_long(tmp_path: Path) -> None:
    key = tmp_path / "secret.key"
    key.write_text("z" * 64 + "\n")
    key.chmod(0o644)
    with pytest.raises(StateError, match="chmod 600"):
        load_shared_secret(key)
    key.chmod(0o600)
    assert load_shared_secret(key) == b"z" * 64
    key.write_text("short")
    with pytest.raises(StateError, match="at least 32"):
        load_shared_secret(key)
    with pytest.raises(StateError, match="cannot be read"):
        load_shared_secret(tmp_path / "missing")
    assert derive(b"z" * 64, "confirm-token") != derive(b"z" * 64, "request-state")


def test_the_local_rate_limit_is_per_caller_and_per_minute() -> None:
    clock = Clock()
    limiter = RateLimiter(2, clock=clock)
    assert limiter.admit("alice") is None and limiter.admit("alice") is None
    refusal = limiter.admit("alice")
    assert refusal is not None and "at most 2 tool calls per minute" in refusal
    assert limiter.admit("bob") is None
    clock.now += 60
    assert limiter.admit("alice") is None


@pytest.mark.anyio
async def test_probes_answer_without_auth_and_report_readiness() -> None:
    token = "probe-test-token-0123456789abcdef"
    async with running_simulator(seed=1) as sim:
        env = cluster_env(sim)
        settings = HttpSettings(host="127.0.0.1", port=0, tokens=load_bearer_tokens({"PVEMCP_HTTP_TOKEN": token}))
        async with (
            http_endpoint(App(load_app_config(config_path=None, env=env)), settings) as running,
            httpx2.AsyncClient(timeout=30) as http,
        ):
            base = running.url.removesuffix("/mcp")
            assert (await http.get(base + "/healthz")).json() == {"status": "ok"}
            ready = await http.get(base + "/readyz")
            assert ready.status_code == 200
            assert ready.json() == {"status": "ready", "checks": {"catalog": "ok", "cluster": "ok", "state": "ok"}}
            assert (await http.post(running.url, json={})).status_code == 401  # the MCP endpoint keeps its auth

    unreachable = {**env, "PROXMOX_URL": f"https://127.0.0.1:{free_port()}"}
    async with (
        http_endpoint(App(load_app_config(config_path=None, env=unreachable)), settings) as running,
        httpx2.AsyncClient(timeout=60) as http,
    ):
        ready = await http.get(running.url.removesuffix("/mcp") + "/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["cluster"] == "unreachable"
        assert "127.0.0.1" not in ready.text  # no address or secret in the answer


@pytest.mark.anyio
async def test_a_shared_question_is_answered_once_on_any_replica() -> None:
    from mcp.shared.exceptions import MCPError

    from pvemcp.door.shared_pending import SharedPendingQuestions

    spender = SpentOnce()
    a, b = SharedPendingQuestions(spender), SharedPendingQuestions(spender)
    fields: dict[str, Any] = {"tool": "guest_stop", "wire_arguments": ARGS, "caller": "alice"}
    state = a.mint(**fields, question="Stop 100?", confirm_tool="guest_stop", confirm_arguments=dict(ARGS))
    for wrong in ({**fields, "caller": "mallory"}, {**fields, "wire_arguments": {"vmids": [101]}}):
        with pytest.raises(MCPError):
            await b.take_once(state, **wrong)
    pending = await b.take_once(state, **fields)
    assert pending.confirm_arguments == ARGS and pending.question == "Stop 100?"
    for replica in (a, b):
        with pytest.raises(MCPError):
            await replica.take_once(state, **fields)
    with pytest.raises(MCPError):
        await b.take_once(state[:-4] + "AAAA", **fields)


@pytest.mark.anyio
async def test_the_rate_limit_refuses_a_caller_over_it_through_the_door() -> None:
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    from reliability.helpers import text_of

    async with running_simulator(seed=1) as sim:
        app = App(load_app_config(config_path=None, env=cluster_env(sim, PVEMCP_RATE_LIMIT_PER_MINUTE="2")))
        async with (
            http_endpoint(app, HttpSettings(host="127.0.0.1", port=0)) as running,
            httpx2.AsyncClient(timeout=30) as http,
            Client(streamable_http_client(running.url, http_client=http)) as client,
        ):
            first, second = [await client.call_tool("guest_list", {}) for _ in range(2)]
            assert not first.is_error and not second.is_error
            before = len(sim.request_log)
            third = await client.call_tool("guest_list", {})
            assert third.is_error and "rate limit reached: at most 2 tool calls per minute" in text_of(third)
            assert len(sim.request_log) == before  # refused before anything reached Proxmox


def test_replicas_refuse_to_start_without_both_shared_keys(tmp_path: Path) -> None:
    from pvemcp.core.policy.config import PolicyConfig
    from pvemcp.core.state import check_state_config

    key = tmp_path / "k"
    key.write_text("ab" * 32)
    key.chmod(0o600)
    url = "postgresql://db/pvemcp"
    with pytest.raises(StateError, match="audit_key_file is not"):
        check_state_config(PolicyConfig(state_url=url, secret_key_file=key))
    with pytest.raises(StateError, match="secret_key_file is not"):
        check_state_config(PolicyConfig(state_url=url, audit_key_file=key))
    check_state_config(PolicyConfig(state_url=url, audit_key_file=key, secret_key_file=key))
    check_state_config(PolicyConfig())  # a single user needs nothing


def test_shared_tokens_expire_on_the_wall_clock_every_replica_reads() -> None:
    import time

    store = ConfirmationStore(b"k" * 32, spender=SpentOnce())
    raw = base64.urlsafe_b64decode(store.issue("t", {}, None) + "==")
    expires_ms = int.from_bytes(raw[12:18], "big")  # nonce, then the 6-byte expiry
    assert abs(expires_ms / 1000 - (time.time() + 300)) < 60  # an absolute time, not one process's uptime
