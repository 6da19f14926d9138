"""Three replicas of ``pvemcp serve --http`` behind HAProxy, sharing one PostgreSQL: the real thing.

Everything runs on 127.0.0.1: a throw-away PostgreSQL, the simulator, three replica processes with
the same keys and ``state_url``, and HAProxy balancing every request round-robin (no sticky
sessions; the 2026-era protocol is sessionless). 1,000 calls run concurrently through the balancer:
reads, and for every guest a confirmed stop then a confirmed start whose preview (token) comes
from one replica and whose redemption is raced on two *other* replicas at once. One replica is
killed (SIGKILL) mid-run. Asserted:

* no token is redeemed twice — of each raced pair exactly one runs, the other's token is refused;
* no mutation is sent twice (the simulator's request log);
* every mutation sent is audited exactly once as confirmed, before it was sent;
* the shared ledger is one valid chain (``pvemcp audit verify postgresql://…``);
* the only client errors are calls that were in flight when the replica died.
"""

from __future__ import annotations

import json
import secrets
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import httpx2
import mcp_types as types
import psycopg
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from pvemcp.sim import running_simulator
from reliability.helpers import cluster_env, mutations, subprocess_env, text_of

from .infra import Replica, running_haproxy, running_postgres, running_replicas

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(600), pytest.mark.usefixtures("binaries")]

REPLICAS = 3
TOTAL_CALLS = 1000
CONCURRENCY = 40  # calls in flight at once through the balancer
RUN_DEADLINE_S = 300.0
POLICY = '[policy]\nconfirm_fallback = "token"\n[policy.rules]\nwrite = "confirm"\ndestructive = "confirm"\n'


def write_private(path: Path, text: str) -> Path:
    path.write_text(text, encoding="ascii")
    path.chmod(0o600)
    return path


async def call(url: str, tool: str, args: dict[str, Any]) -> types.CallToolResult:
    """One call on a fresh sessionless client (the 2026 era): nothing ties it to a replica."""
    async with (
        httpx2.AsyncClient(timeout=httpx2.Timeout(120.0)) as http,
        Client(streamable_http_client(url, http_client=http)) as client,
    ):
        return await client.call_tool(tool, args)


def leaf(exc: BaseException) -> str:
    """The first real error inside (possibly nested) exception groups."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return f"{type(exc).__name__}: {exc}"


@dataclass
class Outcome:
    started: float
    ended: float
    error: str | None


async def test_three_replicas_behind_haproxy_share_one_state(tmp_path: Path) -> None:
    audit_key = write_private(tmp_path / "audit.key", secrets.token_hex(32))
    write_private(tmp_path / "secret.key", secrets.token_hex(32))
    (tmp_path / "pvemcp.toml").write_text(POLICY, encoding="ascii")
    with running_postgres() as db_url:
        async with running_simulator(seed=1, task_speed=50.0) as sim:
            env = subprocess_env(
                **cluster_env(sim),
                PVEMCP_CONFIG=str(tmp_path / "pvemcp.toml"),
                PVEMCP_STATE_URL=db_url,
                PVEMCP_AUDIT_KEY_FILE=str(audit_key),
                PVEMCP_SECRET_KEY_FILE=str(tmp_path / "secret.key"),
                PVEMCP_CACHE_DIR=str(tmp_path / "cache"),
            )
            async with running_replicas(env, REPLICAS, tmp_path) as replicas:
                with running_haproxy([r.port for r in replicas], tmp_path / "haproxy.log") as lb_port:
                    await exercise(sim, replicas, f"http://127.0.0.1:{lb_port}/mcp", db_url, env)


async def exercise(sim: Any, replicas: list[Replica], lb: str, db_url: str, env: dict[str, str]) -> None:
    guests = sorted(v for v, g in sim.state.guests.items() if not getattr(g, "template", False))
    survivors = replicas[:2]  # replicas[2] is killed mid-run
    victim = replicas[2]
    outcomes: list[Outcome] = []
    redeemed: Counter[str] = Counter()
    refused: Counter[str] = Counter()
    lost: Counter[str] = Counter()  # redemptions whose replica died under them (in flight at the kill)
    tokens: list[str] = []
    killed_at: list[float] = []
    failures: list[str] = []

    async def timed(
        work: Callable[[], Awaitable[types.CallToolResult]], *, token_refusal_expected: bool = False
    ) -> types.CallToolResult | None:
        """Run one call, recording when it ran and its error; the loser of a token race is no error."""
        started = time.monotonic()
        try:
            result = await work()
        except Exception as exc:  # a transport error: the call's replica died under it
            outcomes.append(Outcome(started, time.monotonic(), leaf(exc)))
            return None
        expected = token_refusal_expected and "token" in text_of(result)
        error = text_of(result) if result.is_error and not expected else None
        outcomes.append(Outcome(started, time.monotonic(), error))
        return result

    async def confirmed(tool: str, vmid: int, issuer: Replica, racers: tuple[str, str]) -> None:
        """Preview on ``issuer``; race the redemption on two other endpoints at once."""
        args = {"vmids": [vmid], "wait": 60}  # the next preview sees the settled state
        preview = await timed(lambda: call(issuer.url, tool, args))
        if preview is None:
            return
        token = (preview.structured_content or {}).get("confirmation", {}).get("confirm_token")
        assert token, f"{tool} {vmid}: no preview token: {text_of(preview)}"
        tokens.append(token)

        async def redeem(url: str) -> None:
            result = await timed(lambda: call(url, tool, {**args, "confirm_token": token}), token_refusal_expected=True)
            if result is None:
                lost[token] += 1
                return
            if not result.is_error:
                redeemed[token] += 1
            elif "token" in text_of(result):  # already used, or its plan changed by the winner's run
                refused[token] += 1
            else:
                failures.append(f"{tool} {vmid}: {text_of(result)}")

        async with anyio.create_task_group() as pair:
            for url in racers:
                pair.start_soon(redeem, url)

    # The work: per guest a stop then a start (each previewed on one replica, raced on the other two
    # endpoints), and reads through the balancer until TOTAL_CALLS calls have been made.
    confirm_jobs: list[Callable[[], Coroutine[Any, Any, None]]] = []
    for i, vmid in enumerate(guests):
        issuer, other = survivors[i % 2], survivors[(i + 1) % 2]
        running = sim.state.guests[vmid].status == "running"
        for tool in ("guest_stop", "guest_start") if running else ("guest_start", "guest_stop"):
            confirm_jobs.append(partial(confirmed, tool, vmid, issuer, (other.url, lb)))
    reads = TOTAL_CALLS - 3 * len(confirm_jobs)
    limiter = anyio.Semaphore(CONCURRENCY)

    async def read(n: int) -> None:
        async with limiter:
            vmid = guests[n % len(guests)]
            await timed(
                lambda: call(
                    lb, ("guest_status", "guest_config", "guest_list")[n % 3], {"vmid": vmid} if n % 3 < 2 else {}
                )
            )

    async def stops_then_starts() -> None:
        for half in (confirm_jobs[0::2], confirm_jobs[1::2]):  # each guest's first action before its second
            async with anyio.create_task_group() as tg:
                for job in half:
                    tg.start_soon(job)

    async def kill_mid_run() -> None:
        while len(outcomes) < TOTAL_CALLS // 3:
            await anyio.sleep(0.05)
        killed_at.append(time.monotonic())
        victim.proc.send_signal(signal.SIGKILL)

    with anyio.fail_after(RUN_DEADLINE_S):
        async with anyio.create_task_group() as tg:
            tg.start_soon(kill_mid_run)
            tg.start_soon(stops_then_starts)
            for n in range(reads):
                tg.start_soon(read, n)
    assert len(outcomes) == TOTAL_CALLS and killed_at

    # No token redeemed twice: of each raced pair one ran and the other's token was refused — unless one of
    # the pair went to the replica as it was killed (lost: it may or may not have run before it died).
    assert len(tokens) == len(confirm_jobs) and not failures, failures
    for token in tokens:
        assert redeemed[token] <= 1 and redeemed[token] + refused[token] + lost[token] == 2, token
        assert lost[token] or (redeemed[token], refused[token]) == (1, 1), token
    unsure = sum(lost.values())

    # No mutation sent twice, and each one sent was audited once as confirmed (before it was sent).
    sent = mutations(sim.request_log)
    paths = Counter(r.path for r in sent)
    assert len(confirm_jobs) - unsure <= len(paths) <= len(confirm_jobs) and set(paths.values()) == {1}, paths
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        lines = [r[0] for r in await (await conn.execute("SELECT line FROM pvemcp_ledger ORDER BY id")).fetchall()]
    confirmed_paths: Counter[str] = Counter()
    for line in lines:
        record = json.loads(line)
        if record["outcome"] == "confirmed":
            for request in record["details"]["requests"]:
                confirmed_paths[request["path"]] += 1
    assert {p: confirmed_paths[p] for p in paths} == {p: 1 for p in paths}
    # a confirmed record with no request sent: only where the replica died between the audit and the send
    assert len(paths) <= sum(confirmed_paths.values()) <= len(paths) + unsure

    # One valid chain, read back from the database by the CLI.
    check = subprocess.run(
        [sys.executable, "-m", "pvemcp", "audit", "verify", db_url, "--key-file", env["PVEMCP_AUDIT_KEY_FILE"]],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert f"{len(lines)} record(s), chain intact" in check.stdout

    # The only errors: calls in flight when the replica was killed.
    kill = killed_at[0]
    errors = [o for o in outcomes if o.error is not None]
    late = [(round(o.started - kill, 2), o.error) for o in errors if not o.started <= kill <= o.ended]
    assert not late, late
    in_flight = sum(1 for o in outcomes if o.started <= kill <= o.ended)
    print(f"\nreplicas: {TOTAL_CALLS} calls, {len(errors)} error(s) among {in_flight} in flight at the kill")
