"""Shared state in PostgreSQL, for several replicas of ``pvemcp serve --http`` behind a load balancer.

Four tables, created on first use (under an advisory lock, so replicas starting together agree):

* ``pvemcp_ledger`` — the audit ledger, one row per record holding exactly the line the file ledger
  would hold (same format, same HMAC chain), in insertion order (``id``);
* ``pvemcp_ledger_head`` — the head anchor: one row with the last ``seq``/``mac`` under its own MAC.
  Every append locks this row (``SELECT … FOR UPDATE``), chains the record after it, inserts the
  record and moves the head in one transaction, so concurrent replicas write **one** chain;
* ``pvemcp_spent_tokens`` — a confirm token is spent by ``INSERT … ON CONFLICT DO NOTHING`` on its
  id: exactly one replica's insert succeeds;
* ``pvemcp_rate`` — per-caller call counters of fixed one-minute windows.

:func:`verify_database` reads the ledger and its head row back and runs the file ledger's own
verifier over them, so every edit, deletion, insertion, reordering and truncation is reported the same
way. The driver is psycopg 3 (``pip install 'pvemcp[postgres]'``), imported only when configured.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pvemcp.core.policy._canonical import canonical_json
from pvemcp.core.policy.config import hide_password
from pvemcp.core.policy.ledger import (
    GENESIS,
    HeadAnchor,
    LedgerError,
    Outcome,
    VerifyReport,
    anchor_text,
    load_key,
    parse_anchor_text,
    record_fields,
    seal_record,
    verify,
)
from pvemcp.core.state.secret import derive, load_shared_secret
from pvemcp.core.state.store import StateError, rate_message

if TYPE_CHECKING:
    from psycopg import AsyncConnection
    from psycopg_pool import AsyncConnectionPool

    from pvemcp.core.policy.config import PolicyConfig

__all__ = ["PostgresState", "SharedLedger", "TokenSpenderPg", "verify_database"]

_SCHEMA_LOCK = 0x7076656D  # "pvem": serialises schema creation between replicas starting together
SCHEMA = (
    "CREATE TABLE IF NOT EXISTS pvemcp_ledger ( id BIGSERIAL PRIMARY KEY, seq BIGINT NOT NULL, line TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS pvemcp_ledger_head ("
    " id INT PRIMARY KEY CHECK (id = 1), seq BIGINT NOT NULL, mac TEXT NOT NULL, anchor TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS pvemcp_spent_tokens (token_id BYTEA PRIMARY KEY, expires_at DOUBLE PRECISION NOT NULL)",
    "CREATE TABLE IF NOT EXISTS pvemcp_rate ("
    " caller TEXT NOT NULL, window_start BIGINT NOT NULL, calls INT NOT NULL, PRIMARY KEY (caller, window_start))",
)
_PRUNE_EVERY = 500  # spends / admissions between two clean-ups of expired rows


def _driver() -> Any:
    try:
        import psycopg_pool
    except ImportError:
        raise StateError(
            "state_url needs the PostgreSQL driver: pip install 'pvemcp[postgres]' (psycopg 3 with its pool)"
        ) from None
    return psycopg_pool


def _unreachable(url: str, exc: BaseException) -> StateError:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return StateError(f"the shared state {hide_password(url)} cannot be reached ({hide_password(text)})")


class SharedLedger:
    """Appends chained records to the ledger in PostgreSQL (see module docstring)."""

    def __init__(self, pool: AsyncConnectionPool[Any], key: bytes, clock: Callable[[], float] = time.time) -> None:
        self._pool = pool
        self._key = key
        self._clock = clock

    async def append_async(self, outcome: Outcome | str, **fields: Any) -> dict[str, Any]:
        """Write one record after the current head, under the head row's lock; :class:`LedgerError` if not."""
        if "call" in fields:  # the older name of call_id, as AuditLedger.append accepts it
            fields["call_id"] = fields.get("call_id") or fields.pop("call")
        record = record_fields(outcome, **fields)
        try:
            async with self._pool.connection() as conn, conn.transaction():
                cur = await conn.execute("SELECT seq, mac, anchor FROM pvemcp_ledger_head WHERE id = 1 FOR UPDATE")
                row = await cur.fetchone()
                if row is None:
                    raise LedgerError("the shared ledger has no head row (deleted?); run `pvemcp audit verify`")
                seq, head, anchor = int(row[0]), str(row[1]), str(row[2])
                stored = parse_anchor_text(anchor, self._key, "row of pvemcp_ledger_head")
                if stored != HeadAnchor(seq, head):
                    raise LedgerError("the shared ledger's head row was edited; run `pvemcp audit verify`")
                seal_record(self._key, record, seq=seq + 1, prev=head, ts=self._clock())
                await conn.execute(
                    "INSERT INTO pvemcp_ledger (seq, line) VALUES (%s, %s)", (record["seq"], canonical_json(record))
                )
                new = HeadAnchor(record["seq"], record["mac"])
                await conn.execute(
                    "UPDATE pvemcp_ledger_head SET seq = %s, mac = %s, anchor = %s WHERE id = 1",
                    (new.seq, new.head, anchor_text(self._key, new)),
                )
        except LedgerError:
            raise
        except Exception as exc:  # the driver's errors: the call must not go ahead unaudited
            raise LedgerError(f"cannot append to the shared ledger: {hide_password(str(exc).strip())}") from None
        return record


class TokenSpenderPg:
    """Spends confirm-token ids once across replicas."""

    def __init__(self, pool: AsyncConnectionPool[Any], clock: Callable[[], float] = time.time) -> None:
        self._pool = pool
        self._clock = clock
        self._count = 0

    async def spend(self, token_id: bytes, expires_at: float) -> bool:
        self._count += 1
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "INSERT INTO pvemcp_spent_tokens (token_id, expires_at) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                (token_id, expires_at),
            )
            spent = bool(cur.rowcount == 1)
            if self._count % _PRUNE_EVERY == 0:  # an expired token is refused by its MAC'd expiry anyway
                await conn.execute("DELETE FROM pvemcp_spent_tokens WHERE expires_at < %s", (self._clock() - 60,))
        return spent


def shared_keys(policy: PolicyConfig) -> tuple[bytes, bytes]:
    """(ledger key, shared secret) for ``state_url``; :class:`StateError` saying what to set when missing."""
    if policy.audit_key_file is None:
        raise StateError(
            "state_url is set but audit_key_file is not: every replica must sign the shared ledger with "
            "the same key (a file of 64 hex characters, mode 600)"
        )
    if policy.secret_key_file is None:
        raise StateError(
            "state_url is set but secret_key_file is not: confirm tokens and sealed request state must "
            "verify on every replica (a file with `openssl rand -hex 32`, mode 600)"
        )
    try:
        ledger_key = load_key(policy.audit_key_file)
    except LedgerError as exc:
        raise StateError(str(exc)) from None
    return ledger_key, load_shared_secret(policy.secret_key_file)


class PostgresState:
    """Ledger, spent tokens and rate limits in one PostgreSQL database, shared by every replica."""

    shared = True

    def __init__(
        self,
        url: str,
        *,
        ledger_key: bytes,
        secret: bytes,
        rate_limit: int | None = None,
        window_s: float = 60.0,
        pool_size: int = 10,
        open_timeout_s: float = 15.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.url = url
        self.secret = secret
        self._ledger_key = ledger_key
        self._rate_limit = rate_limit
        self._window_s = window_s
        self._clock = clock
        self._admitted = 0
        self._open_timeout_s = open_timeout_s
        self._pool: AsyncConnectionPool[Any] = _driver().AsyncConnectionPool(
            conninfo=url, min_size=1, max_size=pool_size, open=False, kwargs={"autocommit": True}
        )
        self.ledger = SharedLedger(self._pool, ledger_key, clock)
        self.spender = TokenSpenderPg(self._pool, clock)

    @classmethod
    def from_policy(cls, policy: PolicyConfig) -> PostgresState:
        """The shared state of ``policy``; it needs both keys, which every replica must share."""
        assert policy.state_url is not None
        ledger_key, secret = shared_keys(policy)
        return cls(policy.state_url, ledger_key=ledger_key, secret=secret, rate_limit=policy.rate_limit_per_minute)

    def confirm_secret(self) -> bytes:
        """The confirm-token key derived from the shared secret (the same on every replica)."""
        return derive(self.secret, "confirm-token")

    async def __aenter__(self) -> PostgresState:
        try:
            await self._pool.open(wait=True, timeout=self._open_timeout_s)
        except Exception as exc:
            await self._pool.close()
            raise _unreachable(self.url, exc) from None
        try:
            async with self._pool.connection() as conn:
                await self._migrate(conn)
        except BaseException:
            await self._pool.close()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._pool.close()

    async def _migrate(self, conn: AsyncConnection[Any]) -> None:
        """Create the tables and the genesis head; refuse a ledger whose head row is gone."""
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
            for statement in SCHEMA:
                await conn.execute(statement)
            head = await (await conn.execute("SELECT anchor FROM pvemcp_ledger_head WHERE id = 1")).fetchone()
            if head is None:
                records = await (await conn.execute("SELECT count(*) FROM pvemcp_ledger")).fetchone()
                if records is not None and int(records[0]) > 0:
                    raise LedgerError(
                        "the shared ledger has records but no head row (deleted?): refusing to write; "
                        f"run `pvemcp audit verify {hide_password(self.url)}`"
                    )
                genesis = HeadAnchor(0, GENESIS)
                await conn.execute(
                    "INSERT INTO pvemcp_ledger_head (id, seq, mac, anchor) VALUES (1, 0, %s, %s)",
                    (GENESIS, anchor_text(self._ledger_key, genesis)),
                )
            else:
                parse_anchor_text(str(head[0]), self._ledger_key, "row of pvemcp_ledger_head")

    async def admit(self, caller: str | None) -> str | None:
        if self._rate_limit is None:
            return None
        now = self._clock()
        window = int(now // self._window_s)
        self._admitted += 1
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "INSERT INTO pvemcp_rate (caller, window_start, calls) VALUES (%s, %s, 1) "
                "ON CONFLICT (caller, window_start) DO UPDATE SET calls = pvemcp_rate.calls + 1 RETURNING calls",
                (caller or "", window),
            )
            row = await cur.fetchone()
            if self._admitted % _PRUNE_EVERY == 0:
                await conn.execute("DELETE FROM pvemcp_rate WHERE window_start < %s", (window - 1,))
        calls = int(row[0]) if row is not None else 0
        if calls > self._rate_limit:
            return rate_message(self._rate_limit, (window + 1) * self._window_s - now)
        return None

    async def ping(self) -> None:
        try:
            async with self._pool.connection(timeout=5) as conn:
                await conn.execute("SELECT 1")
        except Exception as exc:
            raise _unreachable(self.url, exc) from None


async def verify_database(url: str, key: bytes, *, expect_head: HeadAnchor | None = None) -> VerifyReport:
    """Verify the shared ledger exactly as a ledger file is verified (same checks, same report)."""
    psycopg = __import__("psycopg")
    try:
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            lines = [
                str(r[0]) for r in await (await conn.execute("SELECT line FROM pvemcp_ledger ORDER BY id")).fetchall()
            ]
            head = await (await conn.execute("SELECT anchor FROM pvemcp_ledger_head WHERE id = 1")).fetchone()
    except psycopg.Error as exc:
        raise LedgerError(str(_unreachable(url, exc))) from None
    with tempfile.TemporaryDirectory(prefix="pvemcp-verify-") as scratch:
        ledger = Path(scratch) / "ledger.jsonl"
        ledger.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        anchor = Path(scratch) / "ledger.head"
        if head is not None:
            anchor.write_text(str(head[0]), encoding="utf-8")
        report = verify(ledger, key, head_file=anchor, expect_head=expect_head)
    report.path = hide_password(url)
    return report


@asynccontextmanager
async def connect(url: str) -> AsyncIterator[AsyncConnection[Any]]:
    """One autocommit connection (for tools and tests that inspect the shared state)."""
    import psycopg

    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        yield conn
