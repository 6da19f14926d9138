"""The PostgreSQL state store against a real, throw-away PostgreSQL server (no mocks).

One chain from concurrent writers, every kind of tampering reported by ``verify_database``, a
writer that refuses a ledger whose head row is gone, tokens spent once across replicas, and a rate
limit shared by replicas.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import psycopg
import pytest

from pvemcp.core.policy.confirm import ConfirmationError, ConfirmationFailure, ConfirmationStore
from pvemcp.core.policy.ledger import HeadAnchor, LedgerError
from pvemcp.core.state.postgres import PostgresState, verify_database

from .infra import running_postgres, skip_unless_binaries

pytestmark = pytest.mark.anyio

KEY = bytes.fromhex("ab" * 32)
SECRET = b"s" * 40


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    skip_unless_binaries()
    with running_postgres() as url:
        yield url


@pytest.fixture
def db(server: str) -> str:
    """A fresh database on the module's server, so every test starts from an empty state."""
    name = "t_" + secrets.token_hex(6)
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return server.rsplit("/", 1)[0] + "/" + name


@asynccontextmanager
async def replica(url: str, rate_limit: int | None = None) -> AsyncIterator[PostgresState]:
    async with PostgresState(url, ledger_key=KEY, secret=SECRET, rate_limit=rate_limit, pool_size=4) as state:
        yield state


async def sql(url: str, statement: str) -> list[Any]:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        cur = await conn.execute(statement)
        return await cur.fetchall() if cur.description else []


async def test_concurrent_replicas_write_one_chain(db: str) -> None:
    async with replica(db) as a, replica(db) as b, anyio.create_task_group() as tg:
        for i in range(60):
            tg.start_soon(
                lambda s, n: s.ledger.append_async("succeeded", tool="guest_stop", target=n), (a, b)[i % 2], i
            )
    report = await verify_database(db, KEY)
    assert report.intact, report.format()
    assert report.records == 60 and report.last_seq == 60
    seqs = [r[0] for r in await sql(db, "SELECT seq FROM pvemcp_ledger ORDER BY id")]
    assert seqs == list(range(1, 61))


async def _five(db: str) -> None:
    async with replica(db) as state:
        for i in range(5):
            await state.ledger.append_async("succeeded", tool="guest_stop", target=f"vm{i}", caller="alice")


TAMPERING: dict[str, tuple[str, str]] = {
    "edit": ("UPDATE pvemcp_ledger SET line = replace(line, 'vm2', 'vm9') WHERE seq = 3", "altered"),
    "delete": ("DELETE FROM pvemcp_ledger WHERE seq = 3", "seq"),
    "truncate": ("DELETE FROM pvemcp_ledger WHERE seq = 5", "anchor"),
    "reorder": (
        "UPDATE pvemcp_ledger SET line = CASE seq WHEN 2 THEN (SELECT line FROM pvemcp_ledger WHERE seq = 3) "
        "ELSE (SELECT line FROM pvemcp_ledger WHERE seq = 2) END WHERE seq IN (2, 3)",
        "order",
    ),
    "insert": ("INSERT INTO pvemcp_ledger (seq, line) VALUES (6, '{\"v\":1}')", "not a ledger record"),
    "head row": ("UPDATE pvemcp_ledger_head SET anchor = replace(anchor, '\"seq\":5', '\"seq\":4')", "anchor"),
}


@pytest.mark.parametrize("how", sorted(TAMPERING))
async def test_verify_reports_tampering(db: str, how: str) -> None:
    await _five(db)
    assert (await verify_database(db, KEY)).intact
    statement, words = TAMPERING[how]
    await sql(db, statement)
    report = await verify_database(db, KEY)
    assert not report.intact
    assert words in report.format().lower(), report.format()


async def test_verify_checks_a_pinned_head(db: str) -> None:
    await _five(db)
    good = await verify_database(db, KEY)
    pinned = HeadAnchor(good.last_seq, good.head)
    assert (await verify_database(db, KEY, expect_head=pinned)).intact
    await sql(db, "DELETE FROM pvemcp_ledger")
    await sql(db, "DELETE FROM pvemcp_ledger_head")
    assert not (await verify_database(db, KEY, expect_head=pinned)).intact


async def test_a_replica_refuses_a_ledger_without_its_head_row(db: str) -> None:
    await _five(db)
    await sql(db, "DELETE FROM pvemcp_ledger_head")
    with pytest.raises(LedgerError, match="no head row"):
        async with replica(db):
            pass


async def test_a_token_is_spent_once_across_replicas(db: str) -> None:
    async with replica(db) as a, replica(db) as b:
        issuer = ConfirmationStore(a.confirm_secret(), spender=a.spender)
        other = ConfirmationStore(b.confirm_secret(), spender=b.spender)
        args = {"vmids": [100]}
        token = issuer.issue("guest_stop", args, "alice")
        await other.redeem_once(token, "guest_stop", args, "alice")  # issued on a, redeemed on b
        with pytest.raises(ConfirmationError) as used:
            await issuer.redeem_once(token, "guest_stop", args, "alice")
        assert used.value.reason is ConfirmationFailure.USED

        # Raced on both replicas at once: exactly one wins.
        token = issuer.issue("guest_stop", args, "alice")
        wins: list[str] = []

        async def race(name: str, store: ConfirmationStore) -> None:
            try:
                await store.redeem_once(token, "guest_stop", args, "alice")
                wins.append(name)
            except ConfirmationError as exc:
                assert exc.reason is ConfirmationFailure.USED

        async with anyio.create_task_group() as tg:
            for name, store in (("a", issuer), ("b", other), ("b2", other)):
                tg.start_soon(race, name, store)
        assert len(wins) == 1


async def test_the_rate_limit_is_shared_by_replicas(db: str) -> None:
    async with replica(db, rate_limit=3) as a, replica(db, rate_limit=3) as b:
        admitted: list[Callable[[str | None], Awaitable[str | None]]] = [a.admit, b.admit, a.admit]
        for admit in admitted:
            assert await admit("alice") is None
        refusal = await b.admit("alice")
        assert refusal is not None and "at most 3 tool calls per minute" in refusal and "Nothing was sent" in refusal
        assert await b.admit("bob") is None  # per caller


async def test_an_unreachable_database_is_a_clear_error() -> None:
    from pvemcp.core.state.store import StateError
    from reliability.helpers import free_port

    url = f"postgresql://pvemcp:hunter2@127.0.0.1:{free_port()}/pvemcp?connect_timeout=2"
    state = PostgresState(url, ledger_key=KEY, secret=SECRET, open_timeout_s=2)
    with pytest.raises(StateError, match="cannot be reached") as caught:
        await state.__aenter__()
    assert "hunter2" not in str(caught.value)
